//! `/api/v1/app/{app_id}/endpoint`: where an application's messages are delivered.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Application, Endpoint, Metadata};
use herald_core::signing::EndpointSecret;
use herald_core::store::Order;
use herald_core::validation::{self, FieldError, Validator};
use herald_core::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{parse_json, ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::patch::{self, nullable};
use crate::http::v1::endpoint_extras;
use crate::state::AppState;

/// A new endpoint, or the full replacement of one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Deliveries per second (`rateLimit` also accepted).
    #[serde(alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Only these event types are delivered (`filterTypes` also accepted).
    #[serde(alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    /// Only messages on one of these channels are delivered.
    pub channels: Option<Vec<String>>,
    /// `whsec_…`; generated when absent.
    pub secret: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    /// Extra headers sent with every delivery.
    pub headers: Option<BTreeMap<String, String>>,
    /// Accepted for compatibility; Herald does not use it.
    pub version: Option<i32>,
}

/// An endpoint. Both the current field names and older aliases are sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u16>,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to an endpoint; absent fields are kept, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
    pub metadata: Option<Metadata>,
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "nullable", alias = "rateLimit")]
    #[schema(value_type = Option<u16>)]
    pub throttle_rate: Option<Option<u16>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", alias = "filterTypes")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub channels: Option<Option<Vec<String>>>,
}

/// An endpoint's signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSecretOut {
    /// `whsec_…`
    pub key: String,
}

/// A secret rotation; the old secret keeps signing for the grace period.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecretRotateIn {
    /// The new secret; generated when absent.
    pub key: Option<String>,
    /// How long the old secret keeps signing (0 to 604800; default from the config, 24 h).
    pub grace_period_seconds: Option<u32>,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        let rate = e.rate_limit.map(|r| r.min(u32::from(u16::MAX)) as u16);
        Self {
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            version: e.version,
            throttle_rate: rate,
            rate_limit: rate,
            disabled: e.disabled,
            event_types: e.filter_types.clone(),
            filter_types: e.filter_types,
            channels: e.channels,
            metadata: e.metadata,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Parses a secret given as `whsec_<base64>` or bare base64.
pub fn parse_secret(field: &str, text: &str) -> Result<EndpointSecret, FieldError> {
    let full = if text.starts_with("whsec_") {
        text.to_owned()
    } else {
        format!("whsec_{text}")
    };
    EndpointSecret::parse(&full).map_err(|e| FieldError::body(field, e.to_string(), "value_error"))
}

/// The settings of an endpoint that requests may set, validated together.
struct Settings<'a> {
    url: &'a str,
    description: &'a str,
    uid: Option<&'a str>,
    rate: Option<u16>,
    event_types: Option<&'a [String]>,
    channels: Option<&'a [String]>,
}

async fn validate(state: &AppState, s: Settings<'_>) -> ApiResult<()> {
    let mut v = Validator::default();
    v.check(validation::endpoint_url("url", s.url));
    v.check(validation::length("description", s.description, 0, 8192));
    if let Some(uid) = s.uid {
        v.check(validation::uid("uid", uid));
    }
    if s.rate == Some(0) {
        v.check(Err(FieldError::body(
            "throttleRate",
            "must be at least 1",
            "value_error.number",
        )));
    }
    if let Some(channels) = s.channels {
        if channels.is_empty() || channels.len() > 10 {
            v.check(Err(FieldError::body(
                "channels",
                "must list 1 to 10 channels",
                "value_error.list",
            )));
        }
        for c in channels {
            v.check(
                validation::length("channels", c, 1, 128)
                    .and(validation::event_type_name("channels", c)),
            );
        }
    }
    for name in s.event_types.unwrap_or_default() {
        if let Err(e) = validation::event_type_name("filterTypes", name) {
            v.check(Err(e));
            continue;
        }
        match state.store.get_event_type(name).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => v.check(Err(FieldError::body(
                "filterTypes",
                format!("event type `{name}` does not exist"),
                "value_error",
            ))),
            Err(e) => return Err(e.into()),
        }
    }
    if s.event_types.is_some_and(<[String]>::is_empty) {
        v.check(Err(FieldError::body(
            "filterTypes",
            "must list at least one event type",
            "value_error.list",
        )));
    }
    v.finish().map_err(ApiError::Validation)
}

/// The application and one of its endpoints, if `caller` may see them.
pub async fn endpoint_for(
    state: &AppState,
    caller: &Caller,
    app_id: &str,
    endpoint_id: &str,
) -> ApiResult<(Application, Endpoint)> {
    let app = state.app_for(caller, app_id).await?;
    let endpoint = state.store.get_endpoint(&app.id, endpoint_id).await?;
    Ok((app, endpoint))
}

async fn new_endpoint(
    state: &AppState,
    app: &Application,
    body: EndpointIn,
) -> ApiResult<Endpoint> {
    validate(
        state,
        Settings {
            url: &body.url,
            description: &body.description,
            uid: body.uid.as_deref(),
            rate: body.throttle_rate,
            event_types: body.event_types.as_deref(),
            channels: body.channels.as_deref(),
        },
    )
    .await?;
    let secret = match &body.secret {
        Some(text) => parse_secret("secret", text).map_err(|e| ApiError::Validation(vec![e]))?,
        None => EndpointSecret::generate(),
    };
    let headers = body.headers.unwrap_or_default();
    endpoint_extras::check_headers(&headers)?;
    let now = state.clock.now();
    let endpoint = Endpoint {
        id: IdKind::Endpoint.new_id(),
        app_id: app.id.clone(),
        uid: body.uid,
        url: body.url,
        description: body.description,
        version: body.version.unwrap_or(1),
        rate_limit: body.throttle_rate.map(u32::from),
        disabled: body.disabled,
        filter_types: body.event_types,
        channels: body.channels,
        metadata: body.metadata,
        headers,
        secret,
        previous_secret: None,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .create_endpoint(&endpoint)
        .await
        .map_err(uid_conflict)?;
    Ok(endpoint)
}

fn uid_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => {
            ApiError::Conflict("An endpoint with this uid already exists.".into())
        }
        e => e.into(),
    }
}

/// List an application's endpoints, newest first.
#[utoipa::path(get, path = "/app/{app_id}/endpoint", tag = "Endpoint", params(("app_id" = String, Path), Pagination),
    responses((status = 200, body = ListResponse<EndpointOut>), (status = 404, body = HttpErrorOut)))]
async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<EndpointOut>>> {
    let app = state.app_for(&caller, &app_id).await?;
    let page = state
        .store
        .list_endpoints(&app.id, &page.to_request(Order::Descending)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        page,
        |e| &e.id,
        EndpointOut::from,
    )))
}

/// Create an endpoint.
#[utoipa::path(post, path = "/app/{app_id}/endpoint", tag = "Endpoint", params(("app_id" = String, Path)),
    request_body = EndpointIn,
    responses((status = 201, body = EndpointOut), (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let app = state.app_for(&caller, &app_id).await?;
    let endpoint = new_endpoint(&state, &app, body).await?;
    Ok((StatusCode::CREATED, Json(endpoint.into())))
}

/// Get an endpoint by id or uid.
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointOut), (status = 404, body = HttpErrorOut)))]
async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    let (_, endpoint) = endpoint_for(&state, &caller, &app_id, &endpoint_id).await?;
    Ok(Json(endpoint.into()))
}

/// Replace an endpoint, creating it if it does not exist.
#[utoipa::path(put, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = EndpointIn,
    responses((status = 200, body = EndpointOut), (status = 201, body = EndpointOut), (status = 422, body = HttpValidationError)))]
async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let app = state.app_for(&caller, &app_id).await?;
    let mut endpoint = match state.store.get_endpoint(&app.id, &endpoint_id).await {
        Ok(e) => e,
        Err(StoreError::NotFound) => {
            if body.uid.is_none() && !IdKind::Endpoint.is_id(&endpoint_id) {
                body.uid = Some(endpoint_id);
            }
            let endpoint = new_endpoint(&state, &app, body).await?;
            return Ok((StatusCode::CREATED, Json(endpoint.into())));
        }
        Err(e) => return Err(e.into()),
    };
    validate(
        &state,
        Settings {
            url: &body.url,
            description: &body.description,
            uid: body.uid.as_deref(),
            rate: body.throttle_rate,
            event_types: body.event_types.as_deref(),
            channels: body.channels.as_deref(),
        },
    )
    .await?;
    if let Some(text) = &body.secret {
        endpoint.secret =
            parse_secret("secret", text).map_err(|e| ApiError::Validation(vec![e]))?;
    }
    if let Some(headers) = body.headers {
        endpoint_extras::check_headers(&headers)?;
        endpoint.headers = headers;
    }
    endpoint.url = body.url;
    endpoint.description = body.description;
    endpoint.uid = body.uid;
    endpoint.rate_limit = body.throttle_rate.map(u32::from);
    endpoint.disabled = body.disabled;
    endpoint.filter_types = body.event_types;
    endpoint.channels = body.channels;
    endpoint.metadata = body.metadata;
    endpoint.updated_at = state.clock.now();
    state
        .store
        .update_endpoint(&endpoint)
        .await
        .map_err(uid_conflict)?;
    Ok((StatusCode::OK, Json(endpoint.into())))
}

/// Change some fields of an endpoint.
#[utoipa::path(patch, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = EndpointPatch,
    responses((status = 200, body = EndpointOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn patch_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> ApiResult<Json<EndpointOut>> {
    let (_, mut endpoint) = endpoint_for(&state, &caller, &app_id, &endpoint_id).await?;
    if let Some(url) = body.url {
        endpoint.url = url;
    }
    if let Some(description) = body.description {
        endpoint.description = description;
    }
    if let Some(disabled) = body.disabled {
        endpoint.disabled = disabled;
    }
    if let Some(metadata) = body.metadata {
        endpoint.metadata = metadata;
    }
    if let Some(text) = &body.secret {
        endpoint.secret =
            parse_secret("secret", text).map_err(|e| ApiError::Validation(vec![e]))?;
    }
    patch::apply(
        &mut endpoint.rate_limit,
        body.throttle_rate.map(|r| r.map(u32::from)),
    );
    patch::apply(&mut endpoint.uid, body.uid);
    patch::apply(&mut endpoint.filter_types, body.event_types);
    patch::apply(&mut endpoint.channels, body.channels);
    validate(
        &state,
        Settings {
            url: &endpoint.url,
            description: &endpoint.description,
            uid: endpoint.uid.as_deref(),
            rate: endpoint
                .rate_limit
                .map(|r| r.min(u32::from(u16::MAX)) as u16),
            event_types: endpoint.filter_types.as_deref(),
            channels: endpoint.channels.as_deref(),
        },
    )
    .await?;
    endpoint.updated_at = state.clock.now();
    state
        .store
        .update_endpoint(&endpoint)
        .await
        .map_err(uid_conflict)?;
    Ok(Json(endpoint.into()))
}

/// Delete an endpoint with its deliveries and attempts.
#[utoipa::path(delete, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (app, endpoint) = endpoint_for(&state, &caller, &app_id, &endpoint_id).await?;
    state.store.delete_endpoint(&app.id, &endpoint.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the endpoint's signing secret.
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/secret", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointSecretOut), (status = 404, body = HttpErrorOut)))]
async fn get_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointSecretOut>> {
    let (_, endpoint) = endpoint_for(&state, &caller, &app_id, &endpoint_id).await?;
    Ok(Json(EndpointSecretOut {
        key: endpoint.secret.expose(),
    }))
}

const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;

/// Rotate the signing secret; the previous one keeps signing during the grace period.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = EndpointSecretRotateIn,
    responses((status = 200, body = EndpointSecretOut, description = "The new secret"), (status = 422, body = HttpValidationError)))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<EndpointSecretOut>> {
    // Older clients send no body at all.
    let body: EndpointSecretRotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        EndpointSecretRotateIn::default()
    } else {
        parse_json(&body)?
    };
    let (_, mut endpoint) = endpoint_for(&state, &caller, &app_id, &endpoint_id).await?;
    let new_secret = match &body.key {
        Some(text) => parse_secret("key", text).map_err(|e| ApiError::Validation(vec![e]))?,
        None => EndpointSecret::generate(),
    };
    let grace = match body.grace_period_seconds {
        Some(s) if s > MAX_GRACE_SECONDS => {
            return Err(ApiError::invalid(
                "gracePeriodSeconds",
                "must be at most 604800 (7 days)",
            ))
        }
        Some(s) => chrono::Duration::seconds(i64::from(s)),
        None => chrono::Duration::from_std(state.config.delivery.secret_rotation_overlap)
            .unwrap_or(chrono::Duration::hours(24)),
    };
    let now = state.clock.now();
    let old = std::mem::replace(&mut endpoint.secret, new_secret);
    endpoint.previous_secret = (!grace.is_zero()).then(|| herald_core::model::PreviousSecret {
        secret: old,
        expires_at: now + grace,
    });
    endpoint.updated_at = now;
    state.store.update_endpoint(&endpoint).await?;
    Ok(Json(EndpointSecretOut {
        key: endpoint.secret.expose(),
    }))
}

/// The endpoint routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(
            get_endpoint,
            update_endpoint,
            patch_endpoint,
            delete_endpoint
        ))
        .routes(routes!(get_secret))
        .routes(routes!(rotate_secret))
        .merge(endpoint_extras::router())
}

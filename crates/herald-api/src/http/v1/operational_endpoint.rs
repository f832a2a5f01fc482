//! `/api/v1/operational-webhook/endpoint`: where Herald sends events about itself
//! (`endpoint.disabled`, `message.attempt.exhausted`, …). Admin tokens only.
//!
//! These endpoints are stored as endpoints of the reserved operational application, so
//! they share delivery, signing, retries and secret rotation with every other endpoint.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Endpoint, Metadata, OPERATIONAL_APP_ID};
use herald_core::sealing::{url_for_display, url_for_update};
use herald_core::store::Order;
use herald_core::validation::FieldError;
use herald_core::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::v1::endpoint_header_types::{
    check_headers, EndpointHeadersIn, EndpointHeadersOut,
};
use crate::http::v1::endpoint_types::rotate;
use crate::http::v1::endpoint_types::{
    check_fields, parse_secret, EndpointSecretOut, EndpointSecretRotateIn,
};
use crate::http::v1::throttle::rate_out;
use crate::state::AppState;
use herald_delivery::operational::EVENT_TYPES;

/// A new operational endpoint, or (without `secret`) the replacement of one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationalEndpointIn {
    pub url: String,
    #[serde(default)]
    pub description: String,
    pub throttle_rate: Option<u16>,
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Only these operational events are sent (all when absent).
    pub event_types: Option<BTreeSet<String>>,
    /// `whsec_…`; generated when absent. Ignored when replacing.
    pub secret: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    pub headers: Option<BTreeMap<String, String>>,
}

/// An operational endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationalEndpointOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<u16>,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for OperationalEndpointOut {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            uid: e.uid,
            url: url_for_display(&e.url),
            description: e.description,
            throttle_rate: rate_out(e.rate_limit),
            disabled: e.disabled,
            event_types: e.filter_types,
            metadata: e.metadata,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

impl OperationalEndpointIn {
    /// Sets every field of `endpoint` from this body; the secret only when `with_secret`.
    fn apply(self, endpoint: &mut Endpoint, with_secret: bool) -> ApiResult<()> {
        if let (true, Some(text)) = (with_secret, &self.secret) {
            endpoint.secret =
                parse_secret("secret", text).map_err(|e| ApiError::Validation(vec![e]))?;
        }
        if let Some(headers) = self.headers {
            endpoint.headers = headers;
        }
        endpoint.url = url_for_update(&self.url, &endpoint.url);
        endpoint.description = self.description;
        endpoint.rate_limit = self.throttle_rate.map(u32::from);
        endpoint.uid = self.uid;
        endpoint.disabled = self.disabled;
        endpoint.filter_types = self.event_types.map(|t| t.into_iter().collect());
        endpoint.metadata = self.metadata;
        Ok(())
    }
}

/// The endpoint rules, with event types that must be operational ones.
fn validate(e: &Endpoint) -> ApiResult<()> {
    let mut v = check_fields(e);
    for name in e.filter_types.iter().flatten() {
        if !EVENT_TYPES.contains(&name.as_str()) {
            v.check(Err(FieldError::body(
                "eventTypes",
                format!(
                    "`{name}` is not an operational event type (one of {})",
                    EVENT_TYPES.join(", ")
                ),
                "value_error",
            )));
        }
    }
    v.finish().map_err(ApiError::Validation)
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Endpoint> {
    caller.require_admin()?;
    Ok(state.store.get_endpoint(OPERATIONAL_APP_ID, id).await?)
}

async fn create(state: &AppState, body: OperationalEndpointIn) -> ApiResult<Endpoint> {
    let mut endpoint = Endpoint::new(OPERATIONAL_APP_ID, String::new(), state.clock.now());
    body.apply(&mut endpoint, true)?;
    validate(&endpoint)?;
    state
        .store
        .create_endpoint(&endpoint)
        .await
        .map_err(uid_conflict)?;
    Ok(endpoint)
}

fn uid_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict("uid") => {
            ApiError::Conflict("An endpoint with this uid already exists.".into())
        }
        e => e.into(),
    }
}

/// List the operational endpoints, newest first.
#[utoipa::path(get, path = "/operational-webhook/endpoint", tag = "Operational webhook", params(Pagination),
    responses((status = 200, body = ListResponse<OperationalEndpointOut>), (status = 403, body = HttpErrorOut)))]
async fn list_operational_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<OperationalEndpointOut>>> {
    caller.require_admin()?;
    let page = state
        .store
        .list_endpoints(OPERATIONAL_APP_ID, &page.to_request(Order::Descending)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        page,
        |e| &e.id,
        OperationalEndpointOut::from,
    )))
}

/// Create an operational endpoint.
#[utoipa::path(post, path = "/operational-webhook/endpoint", tag = "Operational webhook",
    request_body = OperationalEndpointIn,
    responses((status = 201, body = OperationalEndpointOut), (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn create_operational_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OperationalEndpointIn>,
) -> ApiResult<(StatusCode, Json<OperationalEndpointOut>)> {
    caller.require_admin()?;
    let endpoint = create(&state, body).await?;
    Ok((StatusCode::CREATED, Json(endpoint.into())))
}

/// Get an operational endpoint by id or uid.
#[utoipa::path(get, path = "/operational-webhook/endpoint/{endpoint_id}", tag = "Operational webhook",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = OperationalEndpointOut), (status = 404, body = HttpErrorOut)))]
async fn get_operational_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Json<OperationalEndpointOut>> {
    Ok(Json(find(&state, &caller, &endpoint_id).await?.into()))
}

/// Replace an operational endpoint, creating it if it does not exist.
#[utoipa::path(put, path = "/operational-webhook/endpoint/{endpoint_id}", tag = "Operational webhook",
    params(("endpoint_id" = String, Path)), request_body = OperationalEndpointIn,
    responses((status = 200, body = OperationalEndpointOut), (status = 201, body = OperationalEndpointOut), (status = 422, body = HttpValidationError)))]
async fn update_operational_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
    ApiJson(mut body): ApiJson<OperationalEndpointIn>,
) -> ApiResult<(StatusCode, Json<OperationalEndpointOut>)> {
    let mut endpoint = match find(&state, &caller, &endpoint_id).await {
        Ok(e) => e,
        Err(ApiError::NotFound) => {
            if body.uid.is_none() && !IdKind::Endpoint.is_id(&endpoint_id) {
                body.uid = Some(endpoint_id);
            }
            let endpoint = create(&state, body).await?;
            return Ok((StatusCode::CREATED, Json(endpoint.into())));
        }
        Err(e) => return Err(e),
    };
    let read_at = endpoint.updated_at;
    body.apply(&mut endpoint, false)?;
    validate(&endpoint)?;
    endpoint.updated_at = state.clock.now();
    state
        .store
        .update_endpoint(&endpoint, read_at)
        .await
        .map_err(uid_conflict)?;
    Ok((StatusCode::OK, Json(endpoint.into())))
}

/// Delete an operational endpoint.
#[utoipa::path(delete, path = "/operational-webhook/endpoint/{endpoint_id}", tag = "Operational webhook",
    params(("endpoint_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_operational_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
) -> ApiResult<StatusCode> {
    let endpoint = find(&state, &caller, &endpoint_id).await?;
    state
        .store
        .delete_endpoint(OPERATIONAL_APP_ID, &endpoint.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get an operational endpoint's signing secret.
#[utoipa::path(get, path = "/operational-webhook/endpoint/{endpoint_id}/secret", tag = "Operational webhook",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointSecretOut), (status = 404, body = HttpErrorOut)))]
async fn get_operational_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Json<EndpointSecretOut>> {
    let endpoint = find(&state, &caller, &endpoint_id).await?;
    Ok(Json(EndpointSecretOut {
        key: endpoint.secret.verification_key(),
    }))
}

/// Rotate an operational endpoint's signing secret.
#[utoipa::path(post, path = "/operational-webhook/endpoint/{endpoint_id}/secret/rotate", tag = "Operational webhook",
    params(("endpoint_id" = String, Path)), request_body = EndpointSecretRotateIn,
    responses((status = 204), (status = 422, body = HttpValidationError)))]
async fn rotate_operational_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let mut endpoint = find(&state, &caller, &endpoint_id).await?;
    rotate(&state, &mut endpoint, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get an operational endpoint's custom headers.
#[utoipa::path(get, path = "/operational-webhook/endpoint/{endpoint_id}/headers", tag = "Operational webhook",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointHeadersOut), (status = 404, body = HttpErrorOut)))]
async fn get_operational_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Json<EndpointHeadersOut>> {
    Ok(Json(find(&state, &caller, &endpoint_id).await?.into()))
}

/// Replace an operational endpoint's custom headers.
#[utoipa::path(put, path = "/operational-webhook/endpoint/{endpoint_id}/headers", tag = "Operational webhook",
    params(("endpoint_id" = String, Path)), request_body = EndpointHeadersIn,
    responses((status = 204), (status = 422, body = HttpValidationError)))]
async fn update_operational_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
    ApiJson(body): ApiJson<EndpointHeadersIn>,
) -> ApiResult<StatusCode> {
    check_headers(&body.headers)?;
    let mut endpoint = find(&state, &caller, &endpoint_id).await?;
    let read_at = endpoint.updated_at;
    endpoint.headers = body.headers;
    endpoint.updated_at = state.clock.now();
    state.store.update_endpoint(&endpoint, read_at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The operational endpoint routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            list_operational_endpoints,
            create_operational_endpoint
        ))
        .routes(routes!(
            get_operational_endpoint,
            update_operational_endpoint,
            delete_operational_endpoint
        ))
        .routes(routes!(get_operational_secret))
        .routes(routes!(rotate_operational_secret))
        .routes(routes!(get_operational_headers, update_operational_headers))
}

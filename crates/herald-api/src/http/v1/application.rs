//! `/api/v1/app`: applications, one per customer of the provider.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Application, Metadata};
use herald_core::store::Order;
use herald_core::validation::{self, Validator};
use herald_core::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::patch::{self, nullable};
use crate::http::v1::{check_rate, rate_out};
use crate::state::AppState;

/// A new application, or the full replacement of one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    pub name: String,
    /// Your own unique id for the application; usable wherever its id is.
    pub uid: Option<String>,
    /// Deliveries per second to each endpoint of the application (`rateLimit` also accepted).
    #[serde(alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// An application.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<u16>,
    /// The same as `throttleRate`, under the name older clients use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u16>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to an application; absent fields are kept, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", alias = "rateLimit")]
    #[schema(value_type = Option<u16>)]
    pub throttle_rate: Option<Option<u16>>,
    pub metadata: Option<Metadata>,
}

/// `POST /app` options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateAppQuery {
    /// Return the existing application (200) instead of a 409 when the uid is taken.
    #[serde(default)]
    pub get_if_exists: bool,
}

impl From<Application> for ApplicationOut {
    fn from(a: Application) -> Self {
        let rate = rate_out(a.rate_limit);
        Self {
            id: a.id,
            uid: a.uid,
            name: a.name,
            throttle_rate: rate,
            rate_limit: rate,
            metadata: a.metadata,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

fn check_name(v: &mut Validator, name: &str) {
    v.check(validation::length("name", name, 1, 256));
}

fn check_uid(v: &mut Validator, uid: Option<&str>) {
    if let Some(uid) = uid {
        v.check(validation::own_uid("uid", uid, IdKind::Application));
    }
}

impl ApplicationIn {
    /// Every invalid field at once.
    pub fn validate(&self) -> ApiResult<()> {
        let mut v = Validator::default();
        check_name(&mut v, &self.name);
        check_uid(&mut v, self.uid.as_deref());
        check_rate(&mut v, self.throttle_rate);
        v.check(validation::metadata("metadata", &self.metadata));
        v.finish().map_err(ApiError::Validation)
    }

    /// A new application made of this body.
    pub fn into_app(self, now: DateTime<Utc>) -> Application {
        Application {
            id: IdKind::Application.new_id(),
            uid: self.uid,
            name: self.name,
            rate_limit: self.throttle_rate.map(u32::from),
            metadata: self.metadata,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Creates `body` as a new application, or returns the one holding its uid when
/// `get_if_exists`: `(created, application)`.
pub async fn create_or_get(
    state: &AppState,
    body: ApplicationIn,
    get_if_exists: bool,
) -> ApiResult<(bool, Application)> {
    body.validate()?;
    let uid = body.uid.clone();
    let app = body.into_app(state.clock.now());
    match state.store.create_app(&app).await {
        Ok(()) => Ok((true, app)),
        Err(StoreError::Conflict(_)) if get_if_exists => {
            let existing = state
                .store
                .get_app(uid.as_deref().unwrap_or_default())
                .await?;
            Ok((false, existing))
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "An application with this uid already exists.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// List applications, oldest first.
#[utoipa::path(get, path = "/app", tag = "Application", params(Pagination),
    responses((status = 200, body = ListResponse<ApplicationOut>), (status = 401, body = HttpErrorOut)))]
async fn list_apps(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<ApplicationOut>>> {
    caller.require_admin()?;
    let page = state
        .store
        .list_apps(&page.to_request(Order::Ascending)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        page,
        |a| &a.id,
        ApplicationOut::from,
    )))
}

/// Create an application.
#[utoipa::path(post, path = "/app", tag = "Application", params(CreateAppQuery), request_body = ApplicationIn,
    responses((status = 201, body = ApplicationOut), (status = 200, description = "Existing application (get_if_exists)", body = ApplicationOut),
        (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn create_app(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CreateAppQuery>,
    ApiJson(body): ApiJson<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    caller.require_admin()?;
    let (created, app) = create_or_get(&state, body, query.get_if_exists).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(app.into())))
}

/// Get an application by id or uid.
#[utoipa::path(get, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    responses((status = 200, body = ApplicationOut), (status = 404, body = HttpErrorOut)))]
async fn get_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<ApplicationOut>> {
    Ok(Json(state.app_for(&caller, &app_id).await?.into()))
}

/// Replace an application, creating it if it does not exist.
#[utoipa::path(put, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    request_body = ApplicationIn,
    responses((status = 200, body = ApplicationOut), (status = 201, body = ApplicationOut), (status = 422, body = HttpValidationError)))]
async fn update_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(mut body): ApiJson<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    // An application's identity (uid) and limits are the provider's to set, not its
    // customer's: a portal token changing its uid could take over another tenant's name.
    caller.require_admin()?;
    body.validate()?;
    let mut app = match state.app_for(&caller, &app_id).await {
        Ok(app) => app,
        Err(ApiError::NotFound) => {
            if body.uid.is_none() && !IdKind::Application.is_id(&app_id) {
                body.uid = Some(app_id);
            }
            let (_, app) = create_or_get(&state, body, false).await?;
            return Ok((StatusCode::CREATED, Json(app.into())));
        }
        Err(e) => return Err(e),
    };
    app.name = body.name;
    app.uid = body.uid;
    app.rate_limit = body.throttle_rate.map(u32::from);
    app.metadata = body.metadata;
    app.updated_at = state.clock.now();
    state.store.update_app(&app).await?;
    state.lookups.apps.forget();
    Ok((StatusCode::OK, Json(app.into())))
}

/// Change some fields of an application.
#[utoipa::path(patch, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    request_body = ApplicationPatch,
    responses((status = 200, body = ApplicationOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn patch_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<ApplicationPatch>,
) -> ApiResult<Json<ApplicationOut>> {
    caller.require_admin()?;
    let mut app = state.app_for(&caller, &app_id).await?;
    let mut v = Validator::default();
    if let Some(name) = &body.name {
        check_name(&mut v, name);
    }
    check_uid(&mut v, body.uid.as_ref().and_then(|u| u.as_deref()));
    check_rate(&mut v, body.throttle_rate.flatten());
    if let Some(metadata) = &body.metadata {
        v.check(validation::metadata("metadata", metadata));
    }
    v.finish().map_err(ApiError::Validation)?;
    if let Some(name) = body.name {
        app.name = name;
    }
    patch::apply(&mut app.uid, body.uid);
    patch::apply(
        &mut app.rate_limit,
        body.throttle_rate.map(|r| r.map(u32::from)),
    );
    if let Some(metadata) = body.metadata {
        app.metadata = metadata;
    }
    app.updated_at = state.clock.now();
    state.store.update_app(&app).await?;
    state.lookups.apps.forget();
    Ok(Json(app.into()))
}

/// Delete an application with its endpoints, messages and attempts.
#[utoipa::path(delete, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let app = state.app_for(&caller, &app_id).await?;
    state.store.delete_app(&app.id).await?;
    state.lookups.apps.forget();
    // Its portal tokens went with it.
    state.lookups.tokens.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// The application routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, update_app, patch_app, delete_app))
}

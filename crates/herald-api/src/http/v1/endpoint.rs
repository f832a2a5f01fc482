//! `/api/v1/app/{app_id}/endpoint`: where an application's messages are delivered.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald_core::ids::IdKind;
use herald_core::model::{Application, Endpoint};
use herald_core::store::Order;
use herald_core::StoreError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::v1::endpoint_types::{
    fresh_verification, rotate, validate, EndpointIn, EndpointOut, EndpointPatch,
    EndpointSecretOut, EndpointSecretRotateIn,
};
use crate::state::AppState;
use herald_delivery::operational::{self, DisableTrigger};

async fn new_endpoint(
    state: &AppState,
    app: &Application,
    body: EndpointIn,
) -> ApiResult<Endpoint> {
    let mut endpoint = body.into_new(&app.id, state.clock.now())?;
    validate(state, &endpoint).await?;
    if let Some(verification) = fresh_verification(app, &endpoint, state.clock.now()) {
        endpoint.verification = verification;
    }
    // A soft bound: two creations at the same moment may both pass it.
    let limit = state.config.api.max_endpoints_per_app;
    if state.store.count_endpoints(&app.id).await? >= u64::from(limit) {
        return Err(ApiError::Conflict(format!(
            "This application already has {limit} endpoints, the most allowed \
             (api.max_endpoints_per_app)."
        )));
    }
    state
        .store
        .create_endpoint(&endpoint)
        .await
        .map_err(uid_conflict)?;
    if endpoint.verification.status.holds() {
        state.verifications.notify_one();
    }
    state
        .operational
        .endpoint_changed(operational::ENDPOINT_CREATED, app, &endpoint)
        .await;
    Ok(endpoint)
}

/// Stores an edited endpoint and tells the operational endpoints what changed.
pub(super) async fn save_edited(
    state: &AppState,
    app: &Application,
    read: &Endpoint,
    endpoint: &mut Endpoint,
) -> ApiResult<()> {
    let was_disabled = read.disabled;
    if was_disabled && !endpoint.disabled {
        // Enabled again: a fresh start (the store clears it too).
        endpoint.failing_since = None;
    }
    // A new URL must show it wants the events too; until then they are held.
    let moved = endpoint.url != read.url;
    let fresh = moved.then(|| fresh_verification(app, endpoint, state.clock.now()));
    if let Some(verification) = fresh.flatten() {
        endpoint.verification = verification;
    }
    state
        .store
        .update_endpoint(endpoint, read.updated_at)
        .await
        .map_err(uid_conflict)?;
    if endpoint.verification.status.holds() && moved {
        state.verifications.notify_one();
    }
    let ops = &state.operational;
    ops.endpoint_changed(operational::ENDPOINT_UPDATED, app, endpoint)
        .await;
    match (was_disabled, endpoint.disabled) {
        (false, true) => {
            let since = endpoint.failing_since.unwrap_or(endpoint.updated_at);
            ops.endpoint_disabled(app.uid.as_deref(), endpoint, since, DisableTrigger::Manual)
                .await;
        }
        (true, false) => {
            ops.endpoint_changed(operational::ENDPOINT_ENABLED, app, endpoint)
                .await;
        }
        _ => {}
    }
    Ok(())
}

fn uid_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict("uid") => {
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
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
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
    let read = endpoint.clone();
    body.replace(&mut endpoint)?;
    validate(&state, &endpoint).await?;
    endpoint.updated_at = state.clock.now();
    save_edited(&state, &app, &read, &mut endpoint).await?;
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
    let (app, mut endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let read = endpoint.clone();
    body.apply(&mut endpoint)?;
    validate(&state, &endpoint).await?;
    endpoint.updated_at = state.clock.now();
    save_edited(&state, &app, &read, &mut endpoint).await?;
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
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    state.store.delete_endpoint(&app.id, &endpoint.id).await?;
    state
        .operational
        .endpoint_changed(operational::ENDPOINT_DELETED, &app, &endpoint)
        .await;
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
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    Ok(Json(EndpointSecretOut {
        key: endpoint.secret.verification_key(),
    }))
}

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
    let (_, mut endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    rotate(&state, &mut endpoint, &body).await?;
    Ok(Json(EndpointSecretOut {
        key: endpoint.secret.verification_key(),
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
}

//! `/api/v1/app/{app_id}/adhoc-secret`: the secret that signs an application's one-off
//! callbacks (`callbackUrls` on a message), which their receivers verify with. A Herald
//! extension; the provider shares it once with whoever receives the callbacks.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use herald_core::model::AdhocSecret;
use herald_core::signing::EndpointSecret;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::v1::callback_types::AdhocSecretOut;
use crate::http::v1::endpoint_types::{rotation, EndpointSecretRotateIn};
use crate::state::AppState;

/// Get the application's ad-hoc secret (made on first use).
#[utoipa::path(get, path = "/app/{app_id}/adhoc-secret", tag = "Callback",
    params(("app_id" = String, Path)),
    responses((status = 200, body = AdhocSecretOut), (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut)))]
async fn get_adhoc_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<AdhocSecretOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    caller.require_admin()?;
    let fresh = EndpointSecret::generate();
    let secret = state.store.adhoc_secret(&app.id, &fresh).await?;
    Ok(Json(AdhocSecretOut {
        key: secret.secret.verification_key(),
    }))
}

/// Rotate the application's ad-hoc secret; the old one keeps signing for the grace period.
#[utoipa::path(post, path = "/app/{app_id}/adhoc-secret/rotate", tag = "Callback",
    params(("app_id" = String, Path)), request_body = EndpointSecretRotateIn,
    responses((status = 200, body = AdhocSecretOut, description = "The new secret"), (status = 403, body = HttpErrorOut),
        (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn rotate_adhoc_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AdhocSecretOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    caller.require_admin()?;
    let fresh = EndpointSecret::generate();
    let current = state.store.adhoc_secret(&app.id, &fresh).await?;
    let (secret, previous) = rotation(&state, current.secret, &body)?;
    let key = secret.verification_key();
    let rotated = AdhocSecret { secret, previous };
    state.store.set_adhoc_secret(&app.id, &rotated).await?;
    Ok(Json(AdhocSecretOut { key }))
}

/// The ad-hoc secret routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_adhoc_secret))
        .routes(routes!(rotate_adhoc_secret))
}

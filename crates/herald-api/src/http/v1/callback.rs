//! One-off callbacks beyond `callbackUrls`: `POST /api/v1/app/{app_id}/callback` sends an
//! event to one callback URL only, and `/app/{app_id}/adhoc-secret` is the secret that signs
//! callbacks, which their receivers verify with. Herald extensions; the provider shares the
//! secret once with whoever receives the callbacks.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald_core::model::AdhocSecret;
use herald_core::model::Message;
use herald_core::signing::EndpointSecret;
use herald_core::store::{NewMessage, Published};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::error::{ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::ApiJson;
use crate::http::v1::callback_types::{
    self, AdhocSecretOut, CallbackIn, CallbackPolicyInOut, CallbackUrlIn,
};
use crate::http::v1::endpoint_types::{rotation, EndpointSecretRotateIn};
use crate::http::v1::message_types::{check_event, check_schema, MessageOut};
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

/// Get where the application's callbacks may go (Herald extension).
#[utoipa::path(get, path = "/app/{app_id}/callback-policy", tag = "Callback",
    params(("app_id" = String, Path)),
    responses((status = 200, body = CallbackPolicyInOut), (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut)))]
async fn get_callback_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<CallbackPolicyInOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    caller.require_admin()?;
    let policy = state.store.callback_policy(&app.id).await?;
    Ok(Json(policy.into()))
}

/// Set where the application's callbacks may go: HTTPS only, and host patterns. It applies
/// to callbacks given from now on (Herald extension).
#[utoipa::path(put, path = "/app/{app_id}/callback-policy", tag = "Callback",
    params(("app_id" = String, Path)), request_body = CallbackPolicyInOut,
    responses((status = 200, body = CallbackPolicyInOut), (status = 403, body = HttpErrorOut),
        (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn set_callback_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<CallbackPolicyInOut>,
) -> ApiResult<Json<CallbackPolicyInOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    caller.require_admin()?;
    let policy = body.into_policy()?;
    state.store.set_callback_policy(&app.id, &policy).await?;
    Ok(Json(policy.into()))
}

/// Send an event to one callback URL only, with the usual retries, signed with the
/// application's ad-hoc secret; none of its endpoints receive it.
#[utoipa::path(post, path = "/app/{app_id}/callback", tag = "Callback",
    params(("app_id" = String, Path)), request_body = CallbackIn,
    responses((status = 202, body = MessageOut), (status = 404, body = HttpErrorOut),
        (status = 413, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn send_callback(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<CallbackIn>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    let app = state.app_for(&caller, &app_id).await?;
    // Signed with the application's secret: only the provider may send.
    caller.require_admin()?;
    let max_payload = state.config.api.max_payload_bytes;
    check_event(&body.event_type, &body.payload, max_payload)?
        .finish()
        .map_err(ApiError::Validation)?;
    let callback = [CallbackUrlIn {
        url: body.url,
        headers: body.headers,
    }];
    callback_types::check(&state, &app.id, &callback).await?;
    check_schema(&state, &body.event_type, &body.payload).await?;
    let adhoc = callback_types::endpoints(&state, &app.id, &callback).await?;
    let message = Message::new(
        &app.id,
        &body.event_type,
        body.payload.get(),
        state.clock.now(),
    );
    let new = NewMessage {
        // Naming the callback's endpoint as the only one keeps every subscriber out.
        only_endpoint: adhoc.first().cloned(),
        adhoc_endpoints: adhoc,
        ..message.into()
    };
    let message = match state.store.create_message(&new).await? {
        Published::Created { message, .. } => {
            state.metrics.messages_published.inc();
            state.metrics.callback_urls.inc();
            message
        }
        Published::Existing(message) => message,
    };
    Ok((StatusCode::ACCEPTED, Json(MessageOut::new(message, true))))
}

/// The callback routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_callback))
        .routes(routes!(get_callback_policy, set_callback_policy))
        .routes(routes!(get_adhoc_secret))
        .routes(routes!(rotate_adhoc_secret))
}

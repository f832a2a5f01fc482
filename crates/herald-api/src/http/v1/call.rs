//! `POST /api/v1/app/{app_id}/call`: a synchronous call, whose receiver's answer decides
//! (allow or deny an action, a text to reply with) within a deadline. A Herald extension;
//! the engine makes the call (`herald_delivery::sync_call`), this router checks and
//! answers it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald_core::model::Message;
use herald_delivery::sync_call::Call;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use herald_core::metrics::Metrics;

use crate::auth::Caller;
use crate::error::{ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::ApiJson;
use crate::http::v1::call_types::{check, targets, CallIn, CallOut};
use crate::http::v1::message_types::check_schema;
use crate::state::AppState;

/// Call the application's endpoints now and return their answer.
///
/// Each endpoint asked gets one request, signed like any webhook, with the deadline in
/// `webhook-deadline` (unix milliseconds) and `webhook-sync: 1`. A 2xx with
/// `{"allow": bool}` or `{"decision": "allow"|"deny"}` decides that; another 2xx allows,
/// its body being the reply; a 4xx denies. A timeout, an error or a 5xx decides by
/// `onTimeout` / `onError`; `fail` answers 504 or 502 with the same body. Nothing is
/// queued for later; the call is recorded as a message with attempts of trigger `sync`.
#[utoipa::path(post, path = "/app/{app_id}/call", tag = "Call", params(("app_id" = String, Path)),
    request_body = CallIn,
    responses((status = 200, body = CallOut), (status = 502, body = CallOut, description = "No usable answer, and the policy is `fail`"),
        (status = 504, body = CallOut, description = "No answer in time, and the policy is `fail`"),
        (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn call(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<CallIn>,
) -> ApiResult<(StatusCode, Json<CallOut>)> {
    let app = state.app_for(&caller, &app_id).await?;
    // Signed with the customer's secrets, like a message: only the provider may call.
    caller.require_admin()?;
    let timeout = check(&state, &body)?;
    check_schema(&state, &body.event_type, &body.payload).await?;
    let endpoints = targets(&state, &app.id, &body).await?;
    let message = Message::new(
        &app.id,
        &body.event_type,
        body.payload.get(),
        state.clock.now(),
    );
    let msg_id = message.id.clone();
    let call = Call {
        message,
        endpoints,
        timeout,
        mode: body
            .mode
            .map_or(herald_delivery::sync_call::Mode::First, Into::into),
        on_timeout: body
            .on_timeout
            .map_or(herald_delivery::sync_call::Policy::Fail, Into::into),
        on_error: body
            .on_error
            .map_or(herald_delivery::sync_call::Policy::Fail, Into::into),
    };
    let result = state.sync_calls.call(&call).await;
    Metrics::count(&state.metrics.sync_calls, result.outcome.as_str());
    if !call.endpoints.is_empty() {
        // Recorded as a message (just after this answer).
        state.metrics.messages_published.inc();
    }
    Ok((
        CallOut::status(&result),
        Json(CallOut::new(&result, msg_id)),
    ))
}

/// The call route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(call))
}

//! `/api/v1/app/{app_id}/msg`: publishing events and reading them back.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use herald_core::destination::valid_traceparent;
use herald_core::ids::IdKind;
use herald_core::model::Message;
use herald_core::store::{NewMessage, Order, Published};
use herald_core::StoreError;
use herald_delivery::trace_context;
use tracing::Instrument as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::v1::callback_types;
use crate::http::v1::message_types::{
    check_schema, deliver_at, expires_at, idempotency_key, target_app, validate, ContentQuery,
    MessageCancelOut, MessageIn, MessageListQuery, MessageOut,
};
use crate::state::AppState;

/// Publish a message: committed with one delivery per subscribed endpoint before the 202.
#[utoipa::path(post, path = "/app/{app_id}/msg", tag = "Message",
    params(("app_id" = String, Path), ContentQuery, ("idempotency-key" = Option<String>, Header, description = "The same key returns the same message")),
    request_body = MessageIn,
    responses((status = 202, body = MessageOut), (status = 404, body = HttpErrorOut), (status = 409, body = HttpErrorOut),
        (status = 413, body = HttpErrorOut),
        (status = 422, description = "Invalid fields (`validation`); or, as an `HttpErrorOut`, a callback URL the address policy refuses (`url_not_allowed`)", body = HttpValidationError),
        (status = 503, description = "Too many publishes waiting; try again after `Retry-After`", body = HttpErrorOut)))]
async fn create_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(query): ApiQuery<ContentQuery>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<MessageIn>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    // Messages are signed with the customer's own secrets: only the provider may publish,
    // or a portal user could forge authentic webhooks into the customer's systems.
    caller.require_admin()?;
    validate(&body, state.config.api.max_payload_bytes)?;
    let now = state.clock.now();
    let deliver_at = deliver_at(&body, now, state.config.content_retention)?;
    let expires_at = expires_at(&body, now, deliver_at)?;
    let idempotency_key = idempotency_key(&headers)?;
    let app = target_app(&state, &caller, &app_id, &mut body).await?;
    let callbacks = body.callback_urls.take().unwrap_or_default();
    callback_types::check(&state, &app.id, &callbacks).await?;
    check_schema(&state, &body.event_type, &body.payload).await?;
    let adhoc_endpoints = callback_types::endpoints(&state, &app.id, &callbacks).await?;
    let new = NewMessage {
        message: Message {
            id: IdKind::Message.new_id(),
            app_id: app.id,
            event_type: body.event_type,
            event_id: body.event_id,
            channels: body.channels,
            tags: body.tags,
            payload: Some(body.payload.get().into()),
            created_at: now,
            traceparent: traceparent(&headers),
            expires_at,
        },
        idempotency_key,
        only_endpoint: None,
        adhoc_endpoints,
        deliver_at,
    };
    // The commit is a span of the publisher's trace, if it sent one.
    let span = tracing::info_span!("publish", msg = %new.message.id, app = %new.message.app_id);
    trace_context::continue_trace(&span, new.message.traceparent.as_deref());
    let message = match state.store.create_message(&new).instrument(span).await {
        Ok(Published::Created { message, .. }) => {
            state.metrics.messages_published.inc();
            (state.metrics.callback_urls).inc_by(callbacks.len() as u64);
            message
        }
        Ok(Published::Existing(message)) => message,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(
                "A message with this eventId already exists.".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let with_content = query.with_content.unwrap_or(true);
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(message, with_content)),
    ))
}

/// The W3C `traceparent` of the publish request, carried to the deliveries; one that is
/// not well formed is ignored, as the W3C recommendation asks.
fn traceparent(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    valid_traceparent(value).then(|| value.to_owned())
}

/// List an application's messages, newest first.
#[utoipa::path(get, path = "/app/{app_id}/msg", tag = "Message", params(("app_id" = String, Path), Pagination, MessageListQuery),
    responses((status = 200, body = ListResponse<MessageOut>), (status = 404, body = HttpErrorOut)))]
async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(page): ApiQuery<Pagination>,
    ApiQuery(query): ApiQuery<MessageListQuery>,
) -> ApiResult<Json<ListResponse<MessageOut>>> {
    let app = state.app_for(&caller, &app_id).await?;
    let request = page.to_request(Order::Descending)?;
    let page = state
        .store
        .list_messages(&app.id, &query.filter()?, &request)
        .await?;
    let with_content = query.with_content.unwrap_or(true);
    Ok(Json(ListResponse::from_page(
        page,
        |m| &m.id,
        |m| MessageOut::new(m, with_content),
    )))
}

/// Get a message by id or by its `eventId`.
#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}", tag = "Message",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ContentQuery),
    responses((status = 200, body = MessageOut), (status = 404, body = HttpErrorOut)))]
async fn get_message(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ContentQuery>,
) -> ApiResult<Json<MessageOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    let message = state.store.get_message(&app.id, &msg_id).await?;
    Ok(Json(MessageOut::new(
        message,
        query.with_content.unwrap_or(true),
    )))
}

/// Delete a message's payload, keeping its metadata and attempts.
#[utoipa::path(delete, path = "/app/{app_id}/msg/{msg_id}/content", tag = "Message",
    params(("app_id" = String, Path), ("msg_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_message_content(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = state.app_for(&caller, &app_id).await?;
    let message = state.store.get_message(&app.id, &msg_id).await?;
    state
        .store
        .delete_message_content(&app.id, &message.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Herald extension: cancel the deliveries of a message that have not been made yet, such
/// as a message scheduled with `deliverAt`. Its attempts so far stay in the log.
#[utoipa::path(post, path = "/app/{app_id}/msg/{msg_id}/cancel", tag = "Message",
    params(("app_id" = String, Path), ("msg_id" = String, Path)),
    responses((status = 200, body = MessageCancelOut), (status = 404, body = HttpErrorOut)))]
async fn cancel_message(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
) -> ApiResult<Json<MessageCancelOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    // Only the provider, who publishes, may take back what it published.
    caller.require_admin()?;
    let message = state.store.get_message(&app.id, &msg_id).await?;
    let now = state.clock.now();
    let canceled = state
        .store
        .cancel_pending(&app.id, &message.id, now)
        .await?;
    Ok(Json(MessageCancelOut { canceled }))
}

/// The message routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, create_message))
        .routes(routes!(get_message))
        .routes(routes!(delete_message_content))
        .routes(routes!(cancel_message))
}

//! Delivery attempts, and the per-endpoint state of a message: listing, resending.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::store::{EndpointDelivery, Order};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut};
use crate::http::extract::ApiQuery;
use crate::http::list::{ListResponse, Pagination};
use crate::http::v1::attempt_types::{status_text, AttemptListQuery, MessageAttemptOut};
use crate::state::AppState;

/// List the attempts made to an endpoint, newest first.
#[utoipa::path(get, path = "/app/{app_id}/attempt/endpoint/{endpoint_id}", tag = "Message Attempt",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path), Pagination, AttemptListQuery),
    responses((status = 200, body = ListResponse<MessageAttemptOut>), (status = 404, body = HttpErrorOut)))]
async fn list_attempts_by_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<Pagination>,
    ApiQuery(query): ApiQuery<AttemptListQuery>,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let (app, endpoint) = state
        .any_endpoint_for(&caller, &app_id, &endpoint_id)
        .await?;
    let request = page.to_request(Order::Descending)?;
    let page = state
        .store
        .list_attempts_by_endpoint(&app.id, &endpoint.id, &query.filter(None)?, &request)
        .await?;
    let with_content = query.with_content.unwrap_or(true);
    Ok(Json(ListResponse::from_page(
        page,
        |a| &a.id,
        |a| MessageAttemptOut::new(a, with_content),
    )))
}

/// The attempts of a message, optionally to one endpoint (id or uid), newest first.
async fn attempts_of_message(
    state: &AppState,
    caller: &Caller,
    (app_id, msg_id): (&str, &str),
    endpoint: Option<&str>,
    page: &Pagination,
    query: &AttemptListQuery,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let app = state.app_for(caller, app_id).await?;
    let message = state.store.get_message(&app.id, msg_id).await?;
    let endpoint_id = match endpoint {
        Some(id) => Some(state.store.get_endpoint(&app.id, id).await?.id),
        None => None,
    };
    let request = page.to_request(Order::Descending)?;
    let page = state
        .store
        .list_attempts_by_message(&app.id, &message.id, &query.filter(endpoint_id)?, &request)
        .await?;
    let with_content = query.with_content.unwrap_or(true);
    Ok(Json(ListResponse::from_page(
        page,
        |a| &a.id,
        |a| MessageAttemptOut::new(a, with_content),
    )))
}

/// List the attempts made for a message, newest first.
#[utoipa::path(get, path = "/app/{app_id}/attempt/msg/{msg_id}", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), Pagination, AttemptListQuery),
    responses((status = 200, body = ListResponse<MessageAttemptOut>), (status = 404, body = HttpErrorOut)))]
async fn list_attempts_by_message(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<Pagination>,
    ApiQuery(query): ApiQuery<AttemptListQuery>,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let endpoint = query.endpoint_id.clone();
    attempts_of_message(
        &state,
        &caller,
        (&app_id, &msg_id),
        endpoint.as_deref(),
        &page,
        &query,
    )
    .await
}

/// The older path of the attempts of a message (Svix keeps it for old clients).
#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}/attempt", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), Pagination, AttemptListQuery),
    responses((status = 200, body = ListResponse<MessageAttemptOut>), (status = 404, body = HttpErrorOut)))]
#[deprecated = "use /app/{app_id}/attempt/msg/{msg_id}"]
async fn list_message_attempts_deprecated(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<Pagination>,
    ApiQuery(query): ApiQuery<AttemptListQuery>,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let endpoint = query.endpoint_id.clone();
    attempts_of_message(
        &state,
        &caller,
        (&app_id, &msg_id),
        endpoint.as_deref(),
        &page,
        &query,
    )
    .await
}

/// The older path of the attempts of a message to one endpoint.
#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/attempt", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("endpoint_id" = String, Path), Pagination, AttemptListQuery),
    responses((status = 200, body = ListResponse<MessageAttemptOut>), (status = 404, body = HttpErrorOut)))]
#[deprecated = "use /app/{app_id}/attempt/msg/{msg_id}?endpoint_id=…"]
async fn list_message_endpoint_attempts_deprecated(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, endpoint_id)): Path<(String, String, String)>,
    ApiQuery(page): ApiQuery<Pagination>,
    ApiQuery(query): ApiQuery<AttemptListQuery>,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    attempts_of_message(
        &state,
        &caller,
        (&app_id, &msg_id),
        Some(&endpoint_id),
        &page,
        &query,
    )
    .await
}

/// Get one attempt.
#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("attempt_id" = String, Path)),
    responses((status = 200, body = MessageAttemptOut), (status = 404, body = HttpErrorOut)))]
async fn get_attempt(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<Json<MessageAttemptOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    let message = state.store.get_message(&app.id, &msg_id).await?;
    let attempt = state
        .store
        .get_attempt(&app.id, &message.id, &attempt_id)
        .await?;
    Ok(Json(MessageAttemptOut::new(attempt, true)))
}

/// Delete the stored response of an attempt.
#[utoipa::path(delete, path = "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("attempt_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_attempt_content(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let app = state.app_for(&caller, &app_id).await?;
    let message = state.store.get_message(&app.id, &msg_id).await?;
    state
        .store
        .delete_attempt_content(&app.id, &message.id, &attempt_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint a message is delivered to, with the delivery's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// 0 success, 1 pending, 2 failure, 3 sending.
    pub status: i64,
    /// Svix's names, and Herald's for two kinds of pending: `held` (until the endpoint
    /// verifies its subscription) and `queued` (behind an earlier message to an ordered
    /// endpoint; it has no `nextAttempt` until its turn comes).
    pub status_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<DateTime<Utc>>,
}

impl From<EndpointDelivery> for MessageEndpointOut {
    fn from(d: EndpointDelivery) -> Self {
        let (e, delivery) = (d.endpoint, d.delivery);
        Self {
            id: e.id,
            uid: e.uid,
            url: herald_core::sealing::url_for_display(&e.url),
            description: e.description,
            disabled: e.disabled,
            event_types: e.filter_types,
            channels: e.channels,
            created_at: e.created_at,
            updated_at: e.updated_at,
            status: delivery.status.svix(),
            status_text: status_text(delivery.status),
            next_attempt: delivery.next_attempt_at,
        }
    }
}

/// List the endpoints a message is delivered to.
#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}/endpoint", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), Pagination),
    responses((status = 200, body = ListResponse<MessageEndpointOut>), (status = 404, body = HttpErrorOut)))]
async fn list_message_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<MessageEndpointOut>>> {
    let app = state.app_for(&caller, &app_id).await?;
    let message = state.store.get_message(&app.id, &msg_id).await?;
    let request = page.to_request(Order::Ascending)?;
    let page = state
        .store
        .list_message_deliveries(&app.id, &message.id, &request)
        .await?;
    Ok(Json(ListResponse::from_page(
        page,
        |d| &d.endpoint.id,
        MessageEndpointOut::from,
    )))
}

/// An empty JSON object, the body of accepted background operations.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmptyResponse {}

/// Send the message to the endpoint again, now.
#[utoipa::path(post, path = "/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 202, body = EmptyResponse), (status = 400, body = HttpErrorOut), (status = 404, body = HttpErrorOut)))]
async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, endpoint_id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<EmptyResponse>)> {
    let (app, endpoint) = state
        .any_endpoint_for(&caller, &app_id, &endpoint_id)
        .await?;
    let message = state.store.get_message(&app.id, &msg_id).await?;
    if endpoint.disabled {
        return Err(ApiError::BadRequest {
            code: "endpoint_disabled",
            detail: "The endpoint is disabled; enable it before sending to it.".into(),
        });
    }
    if message.payload.is_none() {
        return Err(ApiError::BadRequest {
            code: "missing_payload",
            detail: "The message's payload was deleted, so it cannot be sent again.".into(),
        });
    }
    state
        .store
        .resend(&app.id, &message.id, &endpoint.id, state.clock.now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(EmptyResponse {})))
}

/// The attempt routes. (Serving the deprecated paths is deliberate: older clients use them.)
#[allow(deprecated)]
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_attempts_by_endpoint))
        .routes(routes!(list_attempts_by_message))
        .routes(routes!(list_message_attempts_deprecated))
        .routes(routes!(list_message_endpoint_attempts_deprecated))
        .routes(routes!(get_attempt))
        .routes(routes!(delete_attempt_content))
        .routes(routes!(list_message_endpoints))
        .routes(routes!(resend))
}

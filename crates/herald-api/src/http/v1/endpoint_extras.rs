//! Endpoint sub-resources: custom headers, stats, the messages sent to it, recover and
//! send-example.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::Message;
use herald_core::store::{BulkRange, MessageDelivery, NewMessage, Order, Published, MAX_REPLAY};
use herald_core::task::{BackgroundTask, EndpointRange, TaskInput, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::v1::attempt_types::{parse_status, status_text};
use crate::http::v1::endpoint_header_types::{
    check_headers, EndpointHeadersIn, EndpointHeadersOut, EndpointHeadersPatchIn,
};
use crate::http::v1::endpoint_types::{fresh_verification, EndpointOut};
use crate::http::v1::message_types::{MessageListQuery, MessageOut};
use crate::schema;
use crate::state::AppState;

type EndpointPath = Path<(String, String)>;

/// Get the custom headers.
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointHeadersOut), (status = 404, body = HttpErrorOut)))]
async fn get_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<Json<EndpointHeadersOut>> {
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    Ok(Json(EndpointHeadersOut::from(endpoint)))
}

/// Replace the custom headers.
#[utoipa::path(put, path = "/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = EndpointHeadersIn,
    responses((status = 204), (status = 422, body = HttpValidationError)))]
async fn update_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<EndpointHeadersIn>,
) -> ApiResult<StatusCode> {
    check_headers(&body.headers)?;
    let (_, mut endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let read_at = endpoint.updated_at;
    endpoint.headers = body.headers;
    endpoint.updated_at = state.clock.now();
    state.store.update_endpoint(&endpoint, read_at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add, change or remove some custom headers.
#[utoipa::path(patch, path = "/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = EndpointHeadersPatchIn,
    responses((status = 204), (status = 422, body = HttpValidationError)))]
async fn patch_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<EndpointHeadersPatchIn>,
) -> ApiResult<StatusCode> {
    let (_, mut endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let read_at = endpoint.updated_at;
    for (name, value) in body.headers {
        match value {
            Some(value) => endpoint.headers.insert(name, value),
            None => endpoint.headers.remove(&name),
        };
    }
    for name in &body.delete_headers {
        endpoint
            .headers
            .retain(|k, _| !k.eq_ignore_ascii_case(name));
    }
    check_headers(&endpoint.headers)?;
    endpoint.updated_at = state.clock.now();
    state.store.update_endpoint(&endpoint, read_at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask the endpoint to verify its subscription again (Herald extension), as after a URL
/// change: its messages are held until it does. Only for applications that verify.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/verify", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 202, body = EndpointOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpErrorOut)))]
async fn verify_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let (app, mut endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let now = state.clock.now();
    let Some(fresh) = fresh_verification(&app, &endpoint, now) else {
        return Err(ApiError::Unprocessable {
            code: "verification_off",
            detail: "This application does not verify its endpoints (its `verification` is \
                     `none`), or the endpoint is not an HTTP endpoint."
                .into(),
        });
    };
    let read_at = endpoint.updated_at;
    endpoint.verification = fresh;
    endpoint.updated_at = now;
    state.store.update_endpoint(&endpoint, read_at).await?;
    state.verifications.notify_one();
    Ok((StatusCode::ACCEPTED, Json(endpoint.into())))
}

/// Counts of an endpoint's deliveries by state.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
    pub canceled: u64,
}

/// `stats` options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Count deliveries updated since this time (default: all).
    pub since: Option<DateTime<Utc>>,
}

/// Count the endpoint's deliveries by state.
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/stats", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path), StatsQuery),
    responses((status = 200, body = EndpointStats), (status = 404, body = HttpErrorOut)))]
async fn endpoint_stats(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> ApiResult<Json<EndpointStats>> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let s = state
        .store
        .endpoint_stats(&app.id, &endpoint.id, query.since)
        .await?;
    Ok(Json(EndpointStats {
        success: s.success,
        pending: s.pending,
        sending: s.sending,
        fail: s.failed,
        canceled: s.canceled,
    }))
}

/// A message as delivered to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    pub message: MessageOut,
    /// 0 success, 1 pending, 2 failure, 3 sending.
    pub status: i64,
    pub status_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<DateTime<Utc>>,
}

/// `endpoint/{id}/msg` options beyond the message filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndpointMessagesQuery {
    /// Only deliveries in this state: 0 success, 1 pending, 2 failure, 3 sending.
    pub status: Option<i64>,
}

/// List the messages sent to an endpoint, with their delivery state, newest first.
// `status` is documented once, by `MessageListQuery`: here it is the state of the delivery to
// this endpoint (`EndpointMessagesQuery`), which the message filter's meaning then agrees with.
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/msg", tag = "Message Attempt",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path), Pagination, MessageListQuery),
    responses((status = 200, body = ListResponse<EndpointMessageOut>), (status = 404, body = HttpErrorOut)))]
async fn list_endpoint_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiQuery(page): ApiQuery<Pagination>,
    ApiQuery(filter): ApiQuery<MessageListQuery>,
    ApiQuery(query): ApiQuery<EndpointMessagesQuery>,
) -> ApiResult<Json<ListResponse<EndpointMessageOut>>> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let status = parse_status("status", query.status)?;
    let request = page.to_request(Order::Descending)?;
    let page = state
        .store
        .list_endpoint_messages(&app.id, &endpoint.id, &filter.filter()?, status, &request)
        .await?;
    let with_content = filter.with_content.unwrap_or(true);
    Ok(Json(ListResponse::from_page(
        page,
        |d| &d.message.id,
        |d: MessageDelivery| EndpointMessageOut {
            message: MessageOut::new(d.message, with_content),
            status: d.delivery.status.svix(),
            status_text: status_text(d.delivery.status),
            next_attempt: d.delivery.next_attempt_at,
        },
    )))
}

/// A time range of messages to recover or replay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverIn {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    /// Herald extension: only count what would be sent (the task's `recovered` or
    /// `replayed`), and send nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Records a recover or replay as a background task, so that `GET /background-task/{id}`
/// finds it (Svix's SDKs look tasks up by the id they were given): finished when the
/// request did it all, or running, with what is left, for a node's task runner, which is
/// woken. Its id. A dry run is not recorded, and gets an id nothing knows.
async fn record_task(
    state: &AppState,
    range: &BulkRange,
    task: BackgroundTask,
) -> ApiResult<String> {
    if range.dry_run {
        return Ok(IdKind::Task.new_id());
    }
    let id = state.store.create_task(&task, None).await?.id;
    if task.status == TaskStatus::Running {
        state.background_tasks.notify_one();
    }
    Ok(id)
}

impl RecoverIn {
    /// The endpoint's range this asks about.
    fn endpoint_range(&self, app_id: &str, endpoint_id: &str) -> EndpointRange {
        EndpointRange {
            app_id: app_id.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
            since: self.since,
            until: self.until,
        }
    }

    /// The range, with the most the request itself queues.
    fn range(&self, now: DateTime<Utc>, at_most: u64) -> ApiResult<BulkRange> {
        if self.until.is_some_and(|until| until <= self.since) {
            return Err(ApiError::invalid("until", "must be after `since`"));
        }
        Ok(BulkRange {
            since: self.since,
            until: self.until,
            now,
            dry_run: self.dry_run,
            at_most,
        })
    }
}

/// The recover task.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    /// The task, as `GET /background-task/{id}` shows it (not for a dry run).
    pub id: String,
    /// `finished`: the failed deliveries were queued again by the request. `running`: the
    /// range holds more than `api.bulk_in_request`; a background task queues them, and
    /// shows their `total` and how many it `recovered` so far.
    pub status: &'static str,
    pub task: &'static str,
    pub updated_at: DateTime<Utc>,
    /// How many deliveries were queued again by the request (on a dry run, how many would
    /// be).
    pub recovered: u64,
}

/// Send again every failed message of a time range to the endpoint.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/recover", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = RecoverIn,
    responses((status = 202, body = RecoverOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<RecoverIn>,
) -> ApiResult<(StatusCode, Json<RecoverOut>)> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let now = state.clock.now();
    let range = body.range(now, u64::MAX)?;
    // Counted first: a range too large to queue within the request is a running task
    // that says from the start how many it will touch.
    let counting = BulkRange {
        dry_run: true,
        ..range
    };
    let total = state
        .store
        .recover_failed(&app.id, &endpoint.id, &counting)
        .await?;
    let input = TaskInput::Recover(body.endpoint_range(&app.id, &endpoint.id));
    let (task, recovered) = if range.dry_run || total <= state.config.api.bulk_in_request {
        let recovered = state
            .store
            .recover_failed(&app.id, &endpoint.id, &range)
            .await?;
        let data = serde_json::json!({"total": total, "recovered": recovered});
        let task = BackgroundTask {
            status: TaskStatus::Finished,
            ..BackgroundTask::new(input, data, now)
        };
        (task, recovered)
    } else {
        let data = serde_json::json!({"total": total, "recovered": 0});
        (BackgroundTask::new(input, data, now), 0)
    };
    let status = task.status.as_str();
    let id = record_task(&state, &range, task).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RecoverOut {
            id,
            status,
            task: "endpoint.recover",
            updated_at: now,
            recovered,
        }),
    ))
}

/// The replay task.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOut {
    /// The task, as `GET /background-task/{id}` shows it (not for a dry run).
    pub id: String,
    /// `finished`: the messages were queued by the request. `running`: the range holds
    /// more than `api.bulk_in_request`; a background task queues the rest, counting them
    /// in its `replayed`.
    pub status: &'static str,
    pub task: &'static str,
    pub updated_at: DateTime<Utc>,
    /// How many messages the request queued for the endpoint (on a dry run, how many it
    /// would, up to 10,000).
    pub replayed: u64,
}

/// Send the endpoint every message of a time range it should have had and never got: those
/// published before it existed, or before its filters took them in.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/replay-missing", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = RecoverIn,
    responses((status = 202, body = ReplayOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn replay_missing(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<RecoverIn>,
) -> ApiResult<(StatusCode, Json<ReplayOut>)> {
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let now = state.clock.now();
    // The request queues the range's first messages; where it stops, a task goes on. A
    // dry run counts as far as one call reads.
    let at_most = match body.dry_run {
        true => MAX_REPLAY,
        false => state.config.api.bulk_in_request,
    };
    let range = body.range(now, at_most)?;
    let done = state.store.replay_missing(&endpoint, &range).await?;
    let input = TaskInput::ReplayMissing(body.endpoint_range(&endpoint.app_id, &endpoint.id));
    let data = serde_json::json!({"replayed": done.count});
    let mut task = BackgroundTask::new(input, data, now);
    match done.resume_at {
        Some(at) if !range.dry_run => task.cursor = Some(at.to_rfc3339()),
        _ => task.status = TaskStatus::Finished,
    }
    let status = task.status.as_str();
    let id = record_task(&state, &range, task).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayOut {
            id,
            status,
            task: "endpoint.replay",
            updated_at: now,
            replayed: done.count,
        }),
    ))
}

/// Which example to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    /// An event type with an example in its schema, or `svix.ping`.
    pub event_type: String,
    /// Which of the schema's `examples` (default 0).
    #[serde(default)]
    pub example_index: usize,
}

const PING_EVENT: &str = "svix.ping";

/// Send an example event (from the event type's schema) to this endpoint only.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/send-example", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), request_body = EventExampleIn,
    responses((status = 202, body = MessageOut), (status = 400, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
        (status = 503, description = "Too many publishes waiting; try again after `Retry-After`", body = HttpErrorOut)))]
async fn send_example(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<EventExampleIn>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let payload = if body.event_type == PING_EVENT {
        serde_json::json!({ "success": true })
    } else {
        let event_type = state.store.get_event_type(&body.event_type).await?;
        schema::example(&event_type, body.example_index)
            .filter(Value::is_object)
            .ok_or_else(|| ApiError::BadRequest {
                code: "no_example",
                detail: format!(
                    "The event type `{}` has no example object at index {} to send; add one \
                     to its schema's `examples`, or send `svix.ping`.",
                    body.event_type, body.example_index
                ),
            })?
    };
    let message = Message::new(
        &app.id,
        &body.event_type,
        &payload.to_string(),
        state.clock.now(),
    );
    let new = NewMessage {
        only_endpoint: Some(endpoint.id),
        ..message.into()
    };
    let message = match state.store.create_message(&new).await? {
        Published::Created { message, .. } | Published::Existing(message) => message,
    };
    Ok((StatusCode::ACCEPTED, Json(MessageOut::new(message, true))))
}

/// The endpoint sub-resource routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_headers, update_headers, patch_headers))
        .routes(routes!(endpoint_stats))
        .routes(routes!(list_endpoint_messages))
        .routes(routes!(recover))
        .routes(routes!(replay_missing))
        .routes(routes!(send_example))
        .routes(routes!(verify_endpoint))
}

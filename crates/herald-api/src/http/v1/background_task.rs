//! Broadcasts (`POST /msg/broadcast`), an endpoint's bulk replay (`…/bulk-replay`), and
//! the background tasks that run them (`/background-task`), in Svix's shapes. Each is
//! committed once as a task and answered at once; a node's task runner does the work.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::model::DeliveryStatus;
use herald_core::model::Metadata;
use herald_core::task::{BackgroundTask, Broadcast, EndpointMessages, PurgeContent, TaskInput};
use herald_core::validation::{self, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{parse_json, ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::v1::message_types::{check_schema, idempotency_key, validate, MessageIn};
use crate::state::AppState;

/// Most application uids a broadcast may name.
const MAX_APP_UIDS: usize = 1_000;

/// An event for many applications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageBroadcastIn {
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// Herald extension: only the applications with these uids (at most 1,000).
    pub app_uids: Option<Vec<String>>,
    /// Herald extension: only the applications whose metadata holds all these pairs.
    pub app_metadata: Option<Metadata>,
    /// Accepted for compatibility; retention is global.
    pub payload_retention_period: Option<i64>,
    /// Accepted for compatibility; retention is global.
    pub payload_retention_hours: Option<i64>,
}

/// A background task (Svix's `BackgroundTaskOut`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundTaskOut {
    pub id: String,
    /// `running`, `finished` or `failed`.
    pub status: &'static str,
    /// What it does: `message.broadcast`, `endpoint.bulk-replay`, `endpoint.bulk-cancel`
    /// or `application.purge_content`.
    pub task: &'static str,
    /// Its progress, then its result: for a broadcast, `applications` reached and
    /// `messages` published so far; for a bulk replay or cancel, the `total` counted
    /// before it started, and how many were `replayed` or `canceled`; for a purge, how
    /// many payloads were `expunged`.
    #[schema(value_type = Object)]
    pub data: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<BackgroundTask> for BackgroundTaskOut {
    fn from(t: BackgroundTask) -> Self {
        Self {
            task: t.input.kind(),
            id: t.id,
            status: t.status.as_str(),
            data: t.data,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl MessageBroadcastIn {
    /// The broadcast, once its fields are checked as a message's are.
    fn into_broadcast(self, max_payload: usize) -> ApiResult<Broadcast> {
        let as_message = MessageIn {
            event_type: self.event_type,
            payload: self.payload,
            event_id: None,
            channels: self.channels,
            tags: self.tags,
            application: None,
            payload_retention_period: self.payload_retention_period,
            payload_retention_hours: self.payload_retention_hours,
            callback_urls: None,
            deliver_at: None,
            expires_at: None,
        };
        validate(&as_message, max_payload)?;
        if let Some(uids) = &self.app_uids {
            let mut errors = Vec::new();
            if let Err(e) = validation::list_len("appUids", uids, 1, MAX_APP_UIDS) {
                errors.push(e);
            }
            errors.extend(
                uids.iter()
                    .filter_map(|u| validation::uid("appUids", u).err()),
            );
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
        }
        let app_metadata = self.app_metadata.unwrap_or_default();
        validation::metadata("appMetadata", &app_metadata)
            .map_err(|e: FieldError| ApiError::Validation(vec![e]))?;
        Ok(Broadcast {
            event_type: as_message.event_type,
            payload: as_message.payload.get().to_owned(),
            channels: as_message.channels,
            tags: as_message.tags,
            app_uids: self.app_uids,
            app_metadata,
        })
    }
}

/// Publish one event to every application (or to those chosen): committed once as a
/// background task, which publishes it to each application as any message is published.
#[utoipa::path(post, path = "/msg/broadcast", tag = "Broadcast",
    params(("idempotency-key" = Option<String>, Header, description = "The same key returns the same task")),
    request_body = MessageBroadcastIn,
    responses((status = 202, body = BackgroundTaskOut), (status = 422, body = HttpValidationError)))]
async fn create_broadcast(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<(StatusCode, Json<BackgroundTaskOut>)> {
    // The same rule as publishing: only the provider speaks for its customers.
    caller.require_admin()?;
    let body: MessageBroadcastIn = parse_json(body.get().as_bytes())?;
    check_schema(&state, &body.event_type, &body.payload).await?;
    let broadcast = body.into_broadcast(state.config.api.max_payload_bytes)?;
    let now = state.clock.now();
    let task = BackgroundTask::new(
        TaskInput::Broadcast(broadcast),
        serde_json::json!({"applications": 0, "messages": 0}),
        now,
    );
    start(&state, &headers, "broadcast", task).await
}

/// Commits `task` and wakes this node's runner; the `202` answer. A request retried with
/// the same `idempotency-key` (within `scope`) gets the task the first one made.
async fn start(
    state: &AppState,
    headers: &HeaderMap,
    scope: &str,
    task: BackgroundTask,
) -> ApiResult<(StatusCode, Json<BackgroundTaskOut>)> {
    let key = idempotency_key(headers)?.map(|key| format!("{scope}:{key}"));
    let stored = state.store.create_task(&task, key.as_deref()).await?;
    state.background_tasks.notify_one();
    Ok((StatusCode::ACCEPTED, Json(stored.into())))
}

/// Get a background task: how far it got, or what it did. A task about one application
/// (a bulk replay) may be read by that application's tokens and portal sessions too.
#[utoipa::path(get, path = "/background-task/{task_id}", tag = "Background Tasks",
    params(("task_id" = String, Path)),
    responses((status = 200, body = BackgroundTaskOut), (status = 404, body = HttpErrorOut)))]
async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> ApiResult<Json<BackgroundTaskOut>> {
    let task = state.store.get_task(&task_id).await?;
    match &task.app_id {
        Some(app_id) => drop(state.app_for(&caller, app_id).await?),
        // Not theirs to know of.
        None if !matches!(caller, Caller::Admin) => return Err(ApiError::NotFound),
        None => {}
    }
    Ok(Json(task.into()))
}

/// Which of an endpoint's messages to send it again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkReplayIn {
    /// Messages created at or after this time.
    pub since: DateTime<Utc>,
    /// …and before this one (default: now).
    pub until: Option<DateTime<Utc>>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    /// Only messages whose delivery to the endpoint is in this state (0 success, 1
    /// pending, 2 failed, 3 sending, 4 canceled; 1 covers held and queued ones too).
    pub status: Option<i64>,
}

/// Which of an endpoint's messages to stop delivering there (those whose delivery still
/// waits).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkCancelIn {
    /// Messages created at or after this time.
    pub since: DateTime<Utc>,
    /// …and before this one (default: now).
    pub until: Option<DateTime<Utc>>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    pub tag: Option<String>,
}

impl From<BulkCancelIn> for BulkReplayIn {
    /// The same choice of messages, limited to those whose delivery waits.
    fn from(c: BulkCancelIn) -> Self {
        Self {
            since: c.since,
            until: c.until,
            event_types: c.event_types,
            channel: c.channel,
            tag: c.tag,
            status: Some(DeliveryStatus::Pending as i64),
        }
    }
}

/// Herald extension: cancel what an endpoint still waits to receive of the messages of a
/// time range that meet the filters (pending, scheduled, held, or queued behind an earlier
/// message), as a background task: for an endpoint that was down and whose backlog is no
/// longer wanted. Its `data` says first how many deliveries it will cancel (`total`), then
/// how many it has (`canceled`). An attempt under way at that moment is left to finish.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/bulk-cancel", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path),
        ("idempotency-key" = Option<String>, Header, description = "The same key returns the same task")),
    request_body = BulkCancelIn,
    responses((status = 202, body = BackgroundTaskOut), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError)))]
async fn bulk_cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<(StatusCode, Json<BackgroundTaskOut>)> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let body: BulkCancelIn = parse_json(body.get().as_bytes())?;
    let now = state.clock.now();
    let chosen = BulkReplayIn::from(body).into_replay(&app.id, &endpoint.id, now)?;
    let waiting = chosen.delivery_status();
    let total = (state.store)
        .count_endpoint_messages(&app.id, &endpoint.id, &chosen.filter(), waiting)
        .await?;
    let task = BackgroundTask::new(
        TaskInput::BulkCancel(chosen),
        serde_json::json!({"total": total, "canceled": 0}),
        now,
    );
    start(&state, &headers, &format!("cancel:{}", endpoint.id), task).await
}

/// Send an endpoint again every message of a time range that meets the filters, whatever
/// became of it before, as a background task; its `data` says first how many messages it
/// will send (`total`), then how many it has queued (`replayed`).
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/bulk-replay", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path),
        ("idempotency-key" = Option<String>, Header, description = "The same key returns the same task")),
    request_body = BulkReplayIn,
    responses((status = 202, body = BackgroundTaskOut), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError)))]
async fn bulk_replay(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<(StatusCode, Json<BackgroundTaskOut>)> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let body: BulkReplayIn = parse_json(body.get().as_bytes())?;
    let now = state.clock.now();
    let replay = body.into_replay(&app.id, &endpoint.id, now)?;
    // What it will touch, said before it starts.
    let total = (state.store)
        .count_endpoint_messages(
            &app.id,
            &endpoint.id,
            &replay.filter(),
            replay.delivery_status(),
        )
        .await?;
    let task = BackgroundTask::new(
        TaskInput::BulkReplay(replay),
        serde_json::json!({"total": total, "replayed": 0}),
        now,
    );
    start(&state, &headers, &endpoint.id, task).await
}

/// Delete the payload of every message of the application, as a background task (the
/// messages, their deliveries and attempts stay; `data.expunged` counts the payloads).
#[utoipa::path(post, path = "/app/{app_id}/msg/expunge-all-contents", tag = "Message",
    params(("app_id" = String, Path),
        ("idempotency-key" = Option<String>, Header, description = "The same key returns the same task")),
    responses((status = 202, body = BackgroundTaskOut), (status = 404, body = HttpErrorOut)))]
async fn expunge_all_contents(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<BackgroundTaskOut>)> {
    let app = state.app_for(&caller, &app_id).await?;
    // What the provider keeps of its customers' events is the provider's to decide.
    caller.require_admin()?;
    let now = state.clock.now();
    let task = BackgroundTask::new(
        TaskInput::PurgeContent(PurgeContent {
            app_id: app.id.clone(),
        }),
        serde_json::json!({"expunged": 0}),
        now,
    );
    start(&state, &headers, &format!("purge:{}", app.id), task).await
}

/// Most event types a bulk replay may name.
const MAX_REPLAY_TYPES: usize = 256;

impl BulkReplayIn {
    /// The replay it asks for, every field checked.
    fn into_replay(
        self,
        app_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<EndpointMessages> {
        let until = self.until.unwrap_or(now);
        let mut v = validation::Validator::default();
        if until <= self.since {
            v.check(Err(FieldError::body(
                "until",
                "must be after `since` (and `since` before now)",
                "value_error",
            )));
        }
        if self
            .status
            .is_some_and(|n| DeliveryStatus::from_i64(n).is_none())
        {
            v.check(Err(FieldError::body(
                "status",
                "must be 0, 1, 2, 3, 4, 5 or 6",
                "value_error",
            )));
        }
        if let Some(types) = &self.event_types {
            v.check(validation::list_len(
                "eventTypes",
                types,
                1,
                MAX_REPLAY_TYPES,
            ));
            for name in types.iter().take(MAX_REPLAY_TYPES) {
                v.check(validation::event_type_name("eventTypes", name));
            }
        }
        for (field, text) in [("channel", &self.channel), ("tag", &self.tag)] {
            if let Some(text) = text {
                v.check(validation::length(field, text, 1, 128));
            }
        }
        v.finish().map_err(ApiError::Validation)?;
        Ok(EndpointMessages {
            app_id: app_id.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
            since: self.since,
            until: Some(until),
            event_types: self.event_types,
            channel: self.channel,
            tag: self.tag,
            status: self.status,
        })
    }
}

/// List background tasks, newest first.
#[utoipa::path(get, path = "/background-task", tag = "Background Tasks", params(Pagination),
    responses((status = 200, body = ListResponse<BackgroundTaskOut>)))]
async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<BackgroundTaskOut>>> {
    caller.require_admin()?;
    let request = page.to_request(herald_core::store::Order::Descending)?;
    let found = state.store.list_tasks(&request).await?;
    Ok(Json(ListResponse::from_page(
        found,
        |t| &t.id,
        BackgroundTaskOut::from,
    )))
}

/// The broadcast and background task routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_broadcast))
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(bulk_replay))
        .routes(routes!(bulk_cancel))
        .routes(routes!(expunge_all_contents))
}

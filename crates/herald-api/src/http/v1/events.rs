//! `/api/v1/app/{app_id}/events`: an application's messages as a stream, for consumers
//! that poll rather than receive pushes (Svix's shape). A read returns an `iterator` to go
//! on from; the stream runs in commit order, so going on never skips a message. Herald
//! adds a long poll: `wait_ms` holds an empty read open until a message comes.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::store::StreamFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::ApiQuery;
use crate::http::list::comma_list;
use crate::http::v1::message_types::MessageOut;
use crate::http::v1::stream_types::{self, ReadOut, StreamRead};
use crate::state::AppState;

/// Where a read of the stream starts, and what it returns.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// How many messages to return (1 to 250, default 50).
    pub limit: Option<u32>,
    /// The `iterator` of a previous read. Without it the stream starts after `after`, or
    /// at its oldest message still kept.
    pub iterator: Option<String>,
    /// Only these event types (comma-separated or repeated).
    pub event_types: Option<Vec<String>>,
    /// Only messages on any of these channels (comma-separated or repeated).
    pub channels: Option<Vec<String>>,
    /// Without an iterator: start with the messages created after this time.
    pub after: Option<DateTime<Utc>>,
    /// Herald extension: when no message is there yet, wait up to this many milliseconds
    /// (at most 30000) for one, and answer as soon as it comes.
    pub wait_ms: Option<u64>,
}

/// A read of the stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageEventsOut {
    pub data: Vec<MessageOut>,
    /// Give it back to read on from here (from the same place when nothing came).
    pub iterator: String,
    /// Nothing more is there now (more may come later).
    pub done: bool,
}

/// Read an application's messages as a stream, in the order they were committed.
#[utoipa::path(get, path = "/app/{app_id}/events", tag = "Message",
    params(("app_id" = String, Path), EventsQuery),
    responses((status = 200, body = MessageEventsOut), (status = 404, body = HttpErrorOut),
        (status = 410, body = HttpErrorOut, description = "The iterator points before what Herald keeps"),
        (status = 422, body = HttpValidationError)))]
async fn read_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<MessageEventsOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    let out = stream_types::read(&state, &app.id, &query.read(), &query.filter()?).await?;
    Ok(Json(MessageEventsOut::from(out)))
}

/// Read an application's messages like `events`, from where the last read with this
/// `subscription_id` stopped: Herald keeps the iterator. `iterator` or `after` moves it.
/// A read moves it on before it answers, so a consumer that must not lose a page (an
/// answer lost on the way) keeps its own iterator with `events` instead.
#[utoipa::path(get, path = "/app/{app_id}/events/subscription/{subscription_id}", tag = "Message",
    params(("app_id" = String, Path), ("subscription_id" = String, Path, description = "1 to 256 of A-Z a-z 0-9 . _ -"), EventsQuery),
    responses((status = 200, body = MessageEventsOut), (status = 404, body = HttpErrorOut),
        (status = 410, body = HttpErrorOut, description = "The iterator points before what Herald keeps"),
        (status = 422, body = HttpValidationError)))]
async fn read_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, subscription_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<MessageEventsOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    stream_types::check_reader_name("subscription_id", &subscription_id)?;
    let reader = format!("subscription/{subscription_id}");
    let out =
        stream_types::read_as(&state, &app.id, &reader, &query.read(), &query.filter()?).await?;
    Ok(Json(MessageEventsOut::from(out)))
}

impl EventsQuery {
    fn read(&self) -> StreamRead {
        StreamRead {
            limit: self.limit,
            iterator: self.iterator.clone(),
            after: self.after,
            wait_ms: self.wait_ms,
        }
    }

    fn filter(&self) -> ApiResult<StreamFilter> {
        Ok(StreamFilter {
            event_types: comma_list("event_types", self.event_types.as_deref())?,
            channels: comma_list("channels", self.channels.as_deref())?,
        })
    }
}

impl From<ReadOut> for MessageEventsOut {
    fn from(out: ReadOut) -> Self {
        let (data, iterator, done) = out.into_messages();
        MessageEventsOut {
            data,
            iterator,
            done,
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_events))
        .routes(routes!(read_subscription))
}

//! `/api/v1/app/{app_id}/events`: an application's messages as a stream, for consumers
//! that poll rather than receive pushes (Svix's shape). A read returns an `iterator` to go
//! on from; the stream runs in commit order, so going on never skips a message. Herald
//! adds a long poll: `wait_ms` holds an empty read open until a message comes.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::store::{StreamFilter, StreamPage, StreamPosition};
use herald_core::validation::FieldError;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::ApiQuery;
use crate::http::list::{comma_list, DEFAULT_LIMIT, MAX_LIMIT};
use crate::http::v1::message_types::MessageOut;
use crate::state::AppState;

/// The longest a read may wait for a message.
const MAX_WAIT_MS: u64 = 30_000;
/// How often a waiting read looks again without news. On PostgreSQL a committed message
/// can be held back behind another transaction still in flight, whose end brings no news.
const RECHECK: Duration = Duration::from_millis(250);

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
    Ok(Json(read(&state, &app.id, &query).await?))
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
    ApiQuery(mut query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<MessageEventsOut>> {
    let named = (1..=256).contains(&subscription_id.len())
        && subscription_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !named {
        return Err(ApiError::Validation(vec![FieldError {
            loc: vec!["path".into(), "subscription_id".into()],
            msg: "must be 1 to 256 of A-Z a-z 0-9 . _ -".into(),
            kind: "value_error",
        }]));
    }
    let app = state.app_for(&caller, &app_id).await?;
    let reader = format!("subscription/{subscription_id}");
    if query.iterator.is_none() && query.after.is_none() {
        query.iterator = state.store.stream_reader(&app.id, &reader).await?;
    }
    let out = read(&state, &app.id, &query).await?;
    state
        .store
        .save_stream_reader(&app.id, &reader, &out.iterator, state.clock.now())
        .await?;
    Ok(Json(out))
}

/// One read of the stream, as the query asks.
async fn read(state: &AppState, app_id: &str, query: &EventsQuery) -> ApiResult<MessageEventsOut> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(query_error(
            "limit",
            &format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let wait_ms = query.wait_ms.unwrap_or(0);
    if wait_ms > MAX_WAIT_MS {
        return Err(query_error(
            "wait_ms",
            &format!("must be at most {MAX_WAIT_MS}"),
        ));
    }
    let filter = StreamFilter {
        event_types: comma_list("event_types", query.event_types.as_deref())?,
        channels: comma_list("channels", query.channels.as_deref())?,
    };
    let from = start_of(state, query)?;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let page = read_or_wait(state, app_id, &from, &filter, limit, deadline).await?;
    Ok(MessageEventsOut {
        data: page
            .items
            .into_iter()
            .map(|m| MessageOut::new(m, true))
            .collect(),
        iterator: encode(&page.next),
        done: page.done,
    })
}

/// Reads the stream; while it has nothing and the deadline has not passed, waits for news
/// of a commit (or looks again now and then) and reads again.
async fn read_or_wait(
    state: &AppState,
    app_id: &str,
    from: &StreamPosition,
    filter: &StreamFilter,
    limit: u32,
    deadline: Instant,
) -> ApiResult<StreamPage> {
    let mut news = state.store.news();
    loop {
        // Marked seen before reading: a commit during the read is news for the next wait.
        news.borrow_and_update();
        let page = state.store.read_stream(app_id, from, filter, limit).await?;
        let now = Instant::now();
        if !page.items.is_empty() || now >= deadline {
            return Ok(page);
        }
        let recheck = deadline.min(now + RECHECK);
        tokio::select! {
            changed = news.changed() => {
                if changed.is_err() {
                    // The store is closing; nothing more will come.
                    tokio::time::sleep_until(recheck).await;
                }
            }
            () = tokio::time::sleep_until(recheck) => {}
        }
    }
}

/// Where the read starts: the iterator's position, or `after`, or the oldest message
/// whose payload is still kept. An iterator after a message whose payload may be gone is
/// refused (410), with where to start again: what came after it may have lost its payload.
fn start_of(state: &AppState, query: &EventsQuery) -> ApiResult<StreamPosition> {
    let kept_since = state
        .config
        .content_retention
        .and_then(|period| chrono::Duration::from_std(period).ok())
        .and_then(|period| state.clock.now().checked_sub_signed(period));
    let from = match query.iterator.as_deref().filter(|i| !i.is_empty()) {
        Some(iterator) => decode(iterator)
            .ok_or_else(|| query_error("iterator", "is not an iterator of this stream"))?,
        None => match (query.after, kept_since) {
            (Some(after), Some(since)) => StreamPosition::Since(after.max(since)),
            (Some(after), None) => StreamPosition::Since(after),
            (None, Some(since)) => StreamPosition::Since(since),
            (None, None) => StreamPosition::Start,
        },
    };
    match (from, kept_since) {
        // A read that found nothing yet: it goes on from what is kept.
        (StreamPosition::Since(time), Some(since)) => Ok(StreamPosition::Since(time.max(since))),
        (StreamPosition::After { msg_id, .. }, Some(since))
            if IdKind::Message
                .created_at(&msg_id)
                .is_some_and(|at| at < since) =>
        {
            Err(ApiError::Gone {
                code: "iterator_expired",
                detail: format!(
                    "This iterator is after a message older than the oldest payload Herald \
                     keeps; read again without it and with after={} (the earliest valid \
                     position).",
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            })
        }
        (from, _) => Ok(from),
    }
}

/// Iterators are opaque to clients: a position, base64-encoded.
fn encode(position: &StreamPosition) -> String {
    let plain = match position {
        StreamPosition::Start => "s".to_owned(),
        StreamPosition::Since(time) => format!("t.{}", time.timestamp_micros()),
        StreamPosition::After { seq, msg_id } => format!("p.{seq}.{msg_id}"),
    };
    URL_SAFE_NO_PAD.encode(plain)
}

fn decode(iterator: &str) -> Option<StreamPosition> {
    let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(iterator).ok()?).ok()?;
    let mut parts = plain.splitn(3, '.');
    match (parts.next()?, parts.next(), parts.next()) {
        ("s", None, None) => Some(StreamPosition::Start),
        ("t", Some(micros), None) => Some(StreamPosition::Since(DateTime::from_timestamp_micros(
            micros.parse().ok()?,
        )?)),
        ("p", Some(seq), Some(msg_id)) if IdKind::Message.is_id(msg_id) => {
            Some(StreamPosition::After {
                seq: seq.parse().ok()?,
                msg_id: msg_id.to_owned(),
            })
        }
        _ => None,
    }
}

fn query_error(param: &str, msg: &str) -> ApiError {
    ApiError::Validation(vec![FieldError {
        loc: vec!["query".into(), param.into()],
        msg: msg.into(),
        kind: "value_error",
    }])
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_events))
        .routes(routes!(read_subscription))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_round_trip_and_garbage_is_refused() {
        let positions = [
            StreamPosition::Start,
            StreamPosition::Since(DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap()),
            StreamPosition::After {
                seq: 42,
                msg_id: IdKind::Message.new_id(),
            },
        ];
        for position in positions {
            assert_eq!(decode(&encode(&position)), Some(position));
        }
        for garbage in [
            "",
            "%%%",
            "cA",
            &URL_SAFE_NO_PAD.encode("p.x.msg_1"),
            &URL_SAFE_NO_PAD.encode("p.1.app_01"),
        ] {
            assert_eq!(decode(garbage), None, "{garbage}");
        }
    }
}

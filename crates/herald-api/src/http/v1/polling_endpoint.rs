//! `/api/v1/app/{app_id}/polling-endpoint/{sink_id}/consumer/{consumer_id}`: polling with
//! leases and commits (Svix's second polling shape). Each message a consumer is given
//! carries an `offset`; the consumer commits the offset of the last one it handled. What it
//! was given and did not commit comes back once the lease runs out, so a consumer that
//! crashes mid-batch loses nothing.
//!
//! Offsets count the messages of the endpoint's stream from where the consumer started:
//! the same message keeps the same offset when it is given again. They are the consumer's
//! own numbers, kept with its committed position and its lease in `stream_readers`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::v1::message_types::MessageOut;
use crate::http::v1::stream_types::{self, StreamRead};
use crate::state::AppState;

/// How long a lease lasts unless the poll says.
const DEFAULT_LEASE_MS: u64 = 30_000;
/// The longest lease a poll may ask for: an hour.
const MAX_LEASE_MS: u64 = 3_600_000;

/// Where a consumer without a committed position starts.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartingPosition {
    /// At the oldest message still kept.
    #[default]
    Earliest,
    /// With the messages created from its first poll on.
    Latest,
}

/// A leasing poll.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeasePollQuery {
    /// How many messages to give (1 to 250, default 50).
    pub limit: Option<u32>,
    /// How long the messages given are the consumer's to commit before they are given
    /// again (1 to 3600000 ms, default 30000).
    pub lease_duration_ms: Option<u64>,
    /// Where a consumer that never committed starts: `earliest` (default) or `latest`.
    #[param(value_type = Option<String>)]
    pub starting_position: Option<StartingPosition>,
    /// Herald extension: when no message is there yet, wait up to this many milliseconds
    /// (at most 30000) for one.
    pub wait_ms: Option<u64>,
}

/// A message given to a leasing consumer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollerV2MessageOut {
    /// Commit this to acknowledge the message and every one given before it.
    pub offset: u64,
    #[serde(flatten)]
    pub message: MessageOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PollerV2PollOut {
    pub data: Vec<PollerV2MessageOut>,
    /// Nothing more is there now (more may come later).
    pub done: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PollerV2CommitIn {
    /// The offset of the last message handled.
    pub offset: u64,
}

/// What Herald keeps of a leasing consumer.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LeaseConsumer {
    /// The iterator after the last committed message; `None` reads from the oldest kept.
    committed: Option<String>,
    /// The offset of the first message after `committed`.
    next_offset: u64,
    /// Messages given and not yet committed.
    lease: Option<Lease>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    until: DateTime<Utc>,
    /// Each message given, by offset, with the iterator after it (where a commit of that
    /// offset moves the consumer).
    given: Vec<(u64, String)>,
}

/// Take the next messages the endpoint subscribes to, leased to this consumer.
#[utoipa::path(get, path = "/app/{app_id}/polling-endpoint/{sink_id}/consumer/{consumer_id}", tag = "Message Poller",
    params(("app_id" = String, Path), ("sink_id" = String, Path, description = "The endpoint's id or uid"),
        ("consumer_id" = String, Path, description = "1 to 256 of A-Z a-z 0-9 . _ -"), LeasePollQuery),
    responses((status = 200, body = PollerV2PollOut), (status = 404, body = HttpErrorOut),
        (status = 410, body = HttpErrorOut, description = "The committed position is before what Herald keeps"),
        (status = 422, body = HttpValidationError)))]
async fn lease_poll(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, sink_id, consumer_id)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<LeasePollQuery>,
) -> ApiResult<Json<PollerV2PollOut>> {
    let (app, endpoint) =
        stream_types::polled_endpoint(&state, &caller, &app_id, &sink_id, Some(&consumer_id))
            .await?;
    let lease_ms = query.lease_duration_ms.unwrap_or(DEFAULT_LEASE_MS);
    if !(1..=MAX_LEASE_MS).contains(&lease_ms) {
        return Err(stream_types::query_error(
            "lease_duration_ms",
            &format!("must be between 1 and {MAX_LEASE_MS}"),
        ));
    }
    let reader = format!("lease/{}/{consumer_id}", endpoint.id);
    let start = query.starting_position.unwrap_or_default();
    let mut consumer = load_or_start(&state, &app.id, &reader, start).await?;
    let now = state.clock.now();
    // A live lease: go on after what it holds. A lapsed one: give it all again.
    let mut given = match consumer.lease.take() {
        Some(lease) if lease.until > now => lease.given,
        _ => Vec::new(),
    };
    let read = StreamRead {
        limit: query.limit,
        iterator: match given.last() {
            Some((_, after)) => Some(after.clone()),
            None => consumer.committed.clone(),
        },
        after: None,
        wait_ms: query.wait_ms,
    };
    let filter = stream_types::subscribed(&endpoint, None, None);
    let out = stream_types::read(&state, &app.id, &read, &filter).await?;
    let first_offset = consumer.next_offset + given.len() as u64;
    let mut data = Vec::with_capacity(out.page.items.len());
    for (i, (message, after)) in out
        .page
        .items
        .into_iter()
        .zip(&out.page.positions)
        .enumerate()
    {
        let offset = first_offset + i as u64;
        given.push((offset, stream_types::encode(after)));
        data.push(PollerV2MessageOut {
            offset,
            message: MessageOut::new(message, true),
        });
    }
    if !given.is_empty() {
        consumer.lease = Some(Lease {
            until: now + chrono::Duration::milliseconds(lease_ms as i64),
            given,
        });
    }
    save(&state, &app.id, &reader, &consumer).await?;
    Ok(Json(PollerV2PollOut {
        data,
        done: out.page.done,
    }))
}

/// The consumer's saved state, or a new consumer's: from the earliest message kept, or
/// from now.
async fn load_or_start(
    state: &AppState,
    app_id: &str,
    reader: &str,
    start: StartingPosition,
) -> ApiResult<LeaseConsumer> {
    Ok(match load(state, app_id, reader).await? {
        Some(consumer) => consumer,
        None => LeaseConsumer {
            committed: match start {
                StartingPosition::Earliest => None,
                StartingPosition::Latest => Some(stream_types::from_now(state)),
            },
            ..LeaseConsumer::default()
        },
    })
}

/// Acknowledge the message at `offset` and every one given before it: the consumer's
/// next polls go on after it.
#[utoipa::path(post, path = "/app/{app_id}/polling-endpoint/{sink_id}/consumer/{consumer_id}/commit", tag = "Message Poller",
    params(("app_id" = String, Path), ("sink_id" = String, Path, description = "The endpoint's id or uid"),
        ("consumer_id" = String, Path, description = "1 to 256 of A-Z a-z 0-9 . _ -")),
    request_body = PollerV2CommitIn,
    responses((status = 204), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError, description = "The offset was never given to this consumer")))]
async fn lease_commit(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, sink_id, consumer_id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<PollerV2CommitIn>,
) -> ApiResult<StatusCode> {
    let (app, endpoint) =
        stream_types::polled_endpoint(&state, &caller, &app_id, &sink_id, Some(&consumer_id))
            .await?;
    let reader = format!("lease/{}/{consumer_id}", endpoint.id);
    let mut consumer = load(&state, &app.id, &reader).await?.unwrap_or_default();
    if body.offset < consumer.next_offset {
        // Committed already: committing again changes nothing.
        return Ok(StatusCode::NO_CONTENT);
    }
    // A lapsed lease still names what was given, so a slow consumer's commit counts.
    let lease = consumer
        .lease
        .as_mut()
        .filter(|lease| lease.given.iter().any(|(offset, _)| *offset == body.offset));
    let Some(lease) = lease else {
        return Err(ApiError::Validation(vec![FieldError {
            loc: vec!["body".into(), "offset".into()],
            msg: format!(
                "offset {} was not given to this consumer (committed up to {})",
                body.offset, consumer.next_offset
            ),
            kind: "value_error",
        }]));
    };
    // What was given up to the offset is done; the rest stays leased.
    let done = lease
        .given
        .iter()
        .position(|(offset, _)| *offset == body.offset)
        .map_or(0, |i| i + 1);
    let (_, after) = lease.given.drain(..done).next_back().unwrap_or_default();
    consumer.committed = Some(after);
    consumer.next_offset = body.offset + 1;
    if consumer.lease.as_ref().is_some_and(|l| l.given.is_empty()) {
        consumer.lease = None;
    }
    save(&state, &app.id, &reader, &consumer).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn load(state: &AppState, app_id: &str, reader: &str) -> ApiResult<Option<LeaseConsumer>> {
    match state.store.stream_reader(app_id, reader).await? {
        Some(saved) => serde_json::from_str(&saved)
            .map(Some)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("consumer {reader} unreadable: {e}"))),
        None => Ok(None),
    }
}

async fn save(
    state: &AppState,
    app_id: &str,
    reader: &str,
    consumer: &LeaseConsumer,
) -> ApiResult<()> {
    let saved = serde_json::to_string(consumer)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("consumer {reader} not saved: {e}")))?;
    state
        .store
        .save_stream_reader(app_id, reader, &saved, state.clock.now())
        .await?;
    Ok(())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(lease_poll))
        .routes(routes!(lease_commit))
}

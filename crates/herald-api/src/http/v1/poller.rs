//! `/api/v1/app/{app_id}/poller/{sink_id}`: Svix's polling endpoints. The sink is one of
//! the application's endpoints, and polling it reads the messages that endpoint subscribes
//! to (its event types and channels) from the application's stream, with an iterator the
//! client keeps or, for a named consumer, one Herald keeps. Disabling an endpoint stops
//! its pushes but not its polls, so a disabled endpoint is a poll-only one. A poller token
//! (`auth/app/{app}/poller/{sink}/token/rotate`) reads one endpoint and nothing else.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::model::{Endpoint, Token};
use herald_core::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{issue_token_record, Caller, NewToken};
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::v1::message_types::MessageOut;
use crate::http::v1::stream_types::{self, ReadOut, StreamRead};
use crate::state::AppState;

/// A poll of an endpoint's messages.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// How many messages to return (1 to 250, default 50).
    pub limit: Option<u32>,
    /// The `iterator` of a previous poll.
    pub iterator: Option<String>,
    /// Only this one of the endpoint's event types.
    pub event_type: Option<String>,
    /// Only this one of the endpoint's channels.
    pub channel: Option<String>,
    /// Without an iterator: start with the messages created after this time.
    pub after: Option<DateTime<Utc>>,
    /// Herald extension: when no message is there yet, wait up to this many milliseconds
    /// (at most 30000) for one.
    pub wait_ms: Option<u64>,
}

/// A consumer's poll: from where it last stopped, unless an iterator is given.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsumerPollQuery {
    /// How many messages to return (1 to 250, default 50).
    pub limit: Option<u32>,
    /// Read from this iterator instead of the consumer's position (and move it there).
    pub iterator: Option<String>,
    /// Only this one of the endpoint's event types.
    pub event_type: Option<String>,
    /// Only this one of the endpoint's channels.
    pub channel: Option<String>,
    /// Herald extension: when no message is there yet, wait up to this many milliseconds
    /// (at most 30000) for one.
    pub wait_ms: Option<u64>,
}

/// A poll's messages and where to go on from.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollingEndpointOut {
    pub data: Vec<MessageOut>,
    /// Give it back to read on from here (from the same place when nothing came).
    pub iterator: String,
    /// Nothing more is there now (more may come later).
    pub done: bool,
}

/// Where a consumer is to go on from.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PollingEndpointConsumerSeekIn {
    /// The consumer's next poll reads the messages created after this time.
    pub after: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PollingEndpointConsumerSeekOut {
    pub iterator: String,
}

/// How long a new poller token lives, and how long the ones it replaces go on working.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatePollerTokenIn {
    /// Seconds the new token is good for (at most 31,536,000, a year); forever without it.
    pub expiry: Option<i64>,
    /// Seconds the endpoint's earlier poller tokens go on working (0 to 86,400; default
    /// 300). 0 revokes them at once.
    pub old_token_expiry: Option<i64>,
}

/// A poller token. Its value is shown once, when it is made; afterwards `token` holds its
/// first characters only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollerTokenOut {
    pub id: String,
    pub token: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// What the token may do: poll this one endpoint.
    pub scopes: Vec<String>,
}

const MAX_TOKEN_EXPIRY_SECS: i64 = 31_536_000;
const MAX_OLD_TOKEN_EXPIRY_SECS: i64 = 86_400;
const DEFAULT_OLD_TOKEN_EXPIRY_SECS: i64 = 300;

/// Make a token that polls this endpoint and can do nothing else (Herald extension), for a
/// consumer that should not hold the application's keys. The endpoint's earlier poller
/// tokens stop working after `oldTokenExpiry`.
#[utoipa::path(post, path = "/auth/app/{app_id}/poller/{sink_id}/token/rotate", tag = "Message Poller",
    params(("app_id" = String, Path), ("sink_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = RotatePollerTokenIn,
    responses((status = 201, body = PollerTokenOut, description = "The token, shown this once"),
        (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError)))]
async fn rotate_poller_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, sink_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RotatePollerTokenIn>,
) -> ApiResult<(axum::http::StatusCode, Json<PollerTokenOut>)> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &sink_id).await?;
    let expiry = seconds("expiry", body.expiry, 1, MAX_TOKEN_EXPIRY_SECS)?;
    let old_expiry = seconds(
        "oldTokenExpiry",
        body.old_token_expiry,
        0,
        MAX_OLD_TOKEN_EXPIRY_SECS,
    )?
    .unwrap_or(chrono::Duration::seconds(DEFAULT_OLD_TOKEN_EXPIRY_SECS));
    let now = state.clock.now();
    state
        .store
        .expire_poller_tokens(&endpoint.id, now + old_expiry)
        .await?;
    // This node stops accepting revoked tokens at once; others within the lookups' second.
    state.lookups.tokens.forget();
    let new = NewToken {
        app_id: Some(app.id),
        description: format!("poller of {}", endpoint.id),
        now,
        expires_at: expiry.map(|e| now + e),
        portal: None,
        one_time: false,
        poller_endpoint_id: Some(endpoint.id),
    };
    let (value, token) = issue_token_record(state.store.as_ref(), new).await?;
    let mut out = PollerTokenOut::from(token);
    out.token = value;
    Ok((axum::http::StatusCode::CREATED, Json(out)))
}

/// The endpoint's newest poller token still working, by its first characters (Herald
/// keeps only a hash of the value).
#[utoipa::path(get, path = "/auth/app/{app_id}/poller/{sink_id}/token", tag = "Message Poller",
    params(("app_id" = String, Path), ("sink_id" = String, Path, description = "The endpoint's id or uid")),
    responses((status = 200, body = PollerTokenOut), (status = 403, body = HttpErrorOut),
        (status = 404, body = HttpErrorOut, description = "No such endpoint, or it has no working poller token")))]
async fn get_poller_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, sink_id)): Path<(String, String)>,
) -> ApiResult<Json<PollerTokenOut>> {
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &sink_id).await?;
    let now = state.clock.now();
    let newest = state
        .store
        .poller_tokens(&endpoint.id)
        .await?
        .into_iter()
        .rfind(|t| t.expires_at.is_none_or(|at| at > now))
        .ok_or(ApiError::NotFound)?;
    Ok(Json(PollerTokenOut::from(newest)))
}

impl From<Token> for PollerTokenOut {
    fn from(t: Token) -> Self {
        PollerTokenOut {
            id: t.id,
            token: t.hint,
            created_at: t.created_at,
            expires_at: t.expires_at,
            scopes: t
                .poller_endpoint_id
                .map(|ep| vec![format!("poll:{ep}")])
                .unwrap_or_default(),
        }
    }
}

/// A number of seconds from a body field, checked against its bounds.
fn seconds(
    field: &str,
    value: Option<i64>,
    min: i64,
    max: i64,
) -> ApiResult<Option<chrono::Duration>> {
    match value {
        None => Ok(None),
        Some(n) if (min..=max).contains(&n) => Ok(Some(chrono::Duration::seconds(n))),
        Some(_) => Err(ApiError::Validation(vec![FieldError {
            loc: vec!["body".into(), field.into()],
            msg: format!("must be between {min} and {max} seconds"),
            kind: "value_error",
        }])),
    }
}

/// Read the messages an endpoint subscribes to, in the order they were committed.
#[utoipa::path(get, path = "/app/{app_id}/poller/{sink_id}", tag = "Message Poller",
    params(("app_id" = String, Path), ("sink_id" = String, Path, description = "The endpoint's id or uid"), PollQuery),
    responses((status = 200, body = PollingEndpointOut), (status = 404, body = HttpErrorOut),
        (status = 410, body = HttpErrorOut, description = "The iterator points before what Herald keeps"),
        (status = 422, body = HttpValidationError)))]
async fn poll(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, sink_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PollQuery>,
) -> ApiResult<Json<PollingEndpointOut>> {
    let (app, endpoint) =
        stream_types::polled_endpoint(&state, &caller, &app_id, &sink_id, None).await?;
    let read = StreamRead {
        limit: query.limit,
        iterator: query.iterator,
        after: query.after,
        wait_ms: query.wait_ms,
    };
    let filter = stream_types::subscribed(&endpoint, query.event_type, query.channel);
    let out = stream_types::read(&state, &app.id, &read, &filter).await?;
    Ok(Json(PollingEndpointOut::from(out)))
}

/// Read the messages an endpoint subscribes to as a named consumer, from where its last
/// poll stopped: Herald keeps each consumer's position. Consumers of one endpoint are
/// independent of each other.
#[utoipa::path(get, path = "/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}", tag = "Message Poller",
    params(("app_id" = String, Path), ("sink_id" = String, Path, description = "The endpoint's id or uid"),
        ("consumer_id" = String, Path, description = "1 to 256 of A-Z a-z 0-9 . _ -"), ConsumerPollQuery),
    responses((status = 200, body = PollingEndpointOut), (status = 404, body = HttpErrorOut),
        (status = 410, body = HttpErrorOut, description = "The position is before what Herald keeps"),
        (status = 422, body = HttpValidationError)))]
async fn consumer_poll(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, sink_id, consumer_id)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<ConsumerPollQuery>,
) -> ApiResult<Json<PollingEndpointOut>> {
    let (app, endpoint) =
        stream_types::polled_endpoint(&state, &caller, &app_id, &sink_id, Some(&consumer_id))
            .await?;
    let read = StreamRead {
        limit: query.limit,
        iterator: query.iterator,
        after: None,
        wait_ms: query.wait_ms,
    };
    let filter = stream_types::subscribed(&endpoint, query.event_type, query.channel);
    let reader = consumer_reader(&endpoint, &consumer_id);
    let out = stream_types::read_as(&state, &app.id, &reader, &read, &filter).await?;
    Ok(Json(PollingEndpointOut::from(out)))
}

/// Move a consumer to the first message created after a time.
#[utoipa::path(post, path = "/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}/seek", tag = "Message Poller",
    params(("app_id" = String, Path), ("sink_id" = String, Path, description = "The endpoint's id or uid"),
        ("consumer_id" = String, Path, description = "1 to 256 of A-Z a-z 0-9 . _ -")),
    request_body = PollingEndpointConsumerSeekIn,
    responses((status = 200, body = PollingEndpointConsumerSeekOut), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError)))]
async fn consumer_seek(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, sink_id, consumer_id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<PollingEndpointConsumerSeekIn>,
) -> ApiResult<Json<PollingEndpointConsumerSeekOut>> {
    let (app, endpoint) =
        stream_types::polled_endpoint(&state, &caller, &app_id, &sink_id, Some(&consumer_id))
            .await?;
    let reader = consumer_reader(&endpoint, &consumer_id);
    let iterator = stream_types::seek(&state, &app.id, &reader, body.after).await?;
    Ok(Json(PollingEndpointConsumerSeekOut { iterator }))
}

/// A consumer's key among the application's stream readers: by endpoint id, so renaming
/// the endpoint's uid keeps the position.
fn consumer_reader(endpoint: &Endpoint, consumer_id: &str) -> String {
    format!("poller/{}/{consumer_id}", endpoint.id)
}

impl From<ReadOut> for PollingEndpointOut {
    fn from(out: ReadOut) -> Self {
        let (data, iterator, done) = out.into_messages();
        PollingEndpointOut {
            data,
            iterator,
            done,
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(poll))
        .routes(routes!(consumer_poll))
        .routes(routes!(consumer_seek))
        .routes(routes!(rotate_poller_token))
        .routes(routes!(get_poller_token))
}

//! The shapes of synchronous calls (`POST /app/{app_id}/call`), a Herald extension: the
//! request, its checks, which endpoints it asks, and the answer.

use std::sync::Arc;
use std::time::Duration;

use herald_core::model::Endpoint;
use herald_core::store::read_all;
use herald_core::validation::FieldError;
use herald_delivery::destinations::Kind;
use herald_delivery::sync_call::{Answer, CallResult, Decision, Mode, Outcome, Policy};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::http::v1::message_types::check_event;
use crate::state::AppState;

/// The deadline of a call that names none, as Slack gives slash commands.
const DEFAULT_TIMEOUT_MS: u64 = 3_000;

/// A synchronous call: one event, delivered now, whose answer the caller waits for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallIn {
    /// e.g. `payment.authorize`.
    pub event_type: String,
    /// The JSON object sent as the request body, byte for byte.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Ask this endpoint (id or uid) only. Otherwise every enabled HTTP endpoint of the
    /// application whose `filterTypes` name the event type (an endpoint that takes every
    /// type is not asked: a blocking call must be subscribed to by name).
    pub endpoint_id: Option<String>,
    /// How long to wait for the answer, in milliseconds (default 3000, at most the server's
    /// `api.max_call_timeout`).
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
    /// What a timeout decides (default `fail`).
    pub on_timeout: Option<PolicyIn>,
    /// What a connection error or a 5xx decides (default `fail`).
    pub on_error: Option<PolicyIn>,
    /// With several endpoints: `first` asks them one at a time, oldest first, until one
    /// answers; `all` asks them at once and any deny vetoes (default `first`).
    pub mode: Option<ModeIn>,
}

/// What a missing answer decides.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyIn {
    Allow,
    Deny,
    Fail,
}

impl From<PolicyIn> for Policy {
    fn from(p: PolicyIn) -> Self {
        match p {
            PolicyIn::Allow => Self::Allow,
            PolicyIn::Deny => Self::Deny,
            PolicyIn::Fail => Self::Fail,
        }
    }
}

/// How several endpoints are asked.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeIn {
    First,
    All,
}

impl From<ModeIn> for Mode {
    fn from(m: ModeIn) -> Self {
        match m {
            ModeIn::First => Self::First,
            ModeIn::All => Self::All,
        }
    }
}

/// How a call ended. The top-level fields are those of the endpoint whose answer decided;
/// `results` has every endpoint asked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallOut {
    /// `answered`, `policy_applied`, `timeout`, `error` or `no_endpoint`.
    pub outcome: &'static str,
    /// `allow` or `deny`; `null` when the policy was `fail` or no endpoint was asked.
    pub decision: Option<&'static str>,
    /// The endpoint whose answer (or silence) decided; `null` when none was asked.
    pub endpoint_id: Option<String>,
    /// Its attempt, in the log.
    pub attempt_id: Option<String>,
    /// Why, when the receiver said: its `reason`, or the body of a 4xx.
    pub reason: Option<String>,
    /// The HTTP status it answered, if a response came.
    pub status: Option<u16>,
    /// Its response body: JSON when it is JSON, else text; a 2xx's text is the reply;
    /// `null` when no endpoint answered. Any JSON value.
    pub body: Value,
    pub duration_ms: Option<u64>,
    /// The message the call was recorded as (in the log, with trigger `sync`).
    pub msg_id: String,
    pub results: Vec<CallAnswerOut>,
}

/// One endpoint's part of a call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallAnswerOut {
    pub endpoint_id: String,
    pub attempt_id: String,
    /// What this endpoint's answer (or silence) gave on its own.
    #[serde(rename = "endpointOutcome")]
    pub outcome: &'static str,
    /// Why, when the receiver said: its `reason`, or the body of a 4xx.
    pub reason: Option<String>,
    /// The HTTP status, if a response came.
    pub status: Option<u16>,
    /// The response body: JSON when it is JSON, else text (cut at
    /// `delivery.max_response_bytes`); a 2xx's text is the reply (Slack-style). Any JSON
    /// value.
    pub body: Value,
    pub duration_ms: u64,
}

impl From<&Answer> for CallAnswerOut {
    fn from(a: &Answer) -> Self {
        let json = a
            .content_type
            .as_deref()
            .is_some_and(|t| t.contains("json"));
        let body = match serde_json::from_str::<Value>(&a.body) {
            Ok(value) if json => value,
            _ => Value::String(a.body.clone()),
        };
        Self {
            endpoint_id: a.endpoint_id.clone(),
            attempt_id: a.attempt_id.clone(),
            outcome: a.outcome.as_str(),
            reason: a.reason.clone(),
            status: a.status,
            body,
            duration_ms: a.duration.as_millis().try_into().unwrap_or(u64::MAX),
        }
    }
}

impl CallOut {
    pub fn new(result: &CallResult, msg_id: String) -> Self {
        let results: Vec<CallAnswerOut> = result.answers.iter().map(Into::into).collect();
        let deciding = result.deciding.and_then(|i| results.get(i));
        Self {
            outcome: result.outcome.as_str(),
            decision: result.decision.map(|d| match d {
                Decision::Allow => "allow",
                Decision::Deny => "deny",
            }),
            endpoint_id: deciding.map(|a| a.endpoint_id.clone()),
            attempt_id: deciding.map(|a| a.attempt_id.clone()),
            reason: deciding.and_then(|a| a.reason.clone()),
            status: deciding.and_then(|a| a.status),
            body: deciding.map_or(Value::Null, |a| a.body.clone()),
            duration_ms: deciding.map(|a| a.duration_ms),
            msg_id,
            results,
        }
    }

    /// The HTTP status of the answer: a failure the caller asked to hear of (`fail`) is a
    /// 504 (no answer in time) or a 502 (no usable answer), still with this body.
    pub fn status(result: &CallResult) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match result.outcome {
            Outcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Outcome::Error => StatusCode::BAD_GATEWAY,
            _ => StatusCode::OK,
        }
    }
}

/// Checks a call before anything is sent; its deadline.
pub fn check(state: &AppState, body: &CallIn) -> ApiResult<Duration> {
    let max_payload = state.config.api.max_payload_bytes;
    let mut v = check_event(&body.event_type, &body.payload, max_payload)?;
    if body.timeout_ms == Some(0) {
        v.check(Err(FieldError::body(
            "timeoutMs",
            "must be at least 1",
            "value_error.number",
        )));
    }
    v.finish().map_err(ApiError::Validation)?;
    let cap = state.config.api.max_call_timeout;
    let timeout = Duration::from_millis(body.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    if timeout > cap {
        return Err(ApiError::Unprocessable {
            code: "timeout_too_large",
            detail: format!(
                "timeoutMs is {} ms; this server allows at most {} ms (api.max_call_timeout).",
                timeout.as_millis(),
                cap.as_millis()
            ),
        });
    }
    Ok(timeout.min(cap))
}

/// The endpoints a call asks, oldest first.
pub async fn targets(
    state: &AppState,
    app_id: &str,
    body: &CallIn,
) -> ApiResult<Vec<Arc<Endpoint>>> {
    if let Some(id) = &body.endpoint_id {
        let endpoint = state.store.get_endpoint(app_id, id).await?;
        if !callable(&endpoint) {
            return Err(ApiError::Unprocessable {
                code: "endpoint_not_callable",
                detail: "A call goes to an enabled endpoint with an http or https URL that \
                         has verified its subscription if its application asks."
                    .into(),
            });
        }
        return Ok(vec![Arc::new(endpoint)]);
    }
    let named = |e: &Endpoint| {
        e.filter_types
            .as_ref()
            .is_some_and(|types| types.contains(&body.event_type))
    };
    let all = read_all(
        |p| async move { state.store.list_endpoints(app_id, &p).await },
        |e| e.id.clone(),
    )
    .await?;
    Ok(all
        .into_iter()
        .filter(|e| callable(e) && named(e))
        .map(Arc::new)
        .collect())
}

/// Whether a call may go to `endpoint`: enabled, HTTP, not a callback URL, and not waiting
/// to verify its subscription.
fn callable(endpoint: &Endpoint) -> bool {
    !endpoint.disabled
        && !endpoint.adhoc
        && !endpoint.verification.status.holds()
        && is_http(endpoint)
}

fn is_http(endpoint: &Endpoint) -> bool {
    url::Url::parse(&endpoint.url)
        .ok()
        .and_then(|u| Kind::of(&u))
        == Some(Kind::Http)
}

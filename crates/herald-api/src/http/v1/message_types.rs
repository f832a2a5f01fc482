//! The shapes of `/api/v1/app/{app_id}/msg` (`MessageIn`, `MessageOut`, list filters) and
//! the checks of a publish.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Application, Message};
use herald_core::search::SearchWords;
use herald_core::store::MessageFilter;
use herald_core::validation::{self, FieldError, Validator};
use herald_core::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::list::comma_list;
use crate::http::v1::application_types::{create_or_get, ApplicationIn};
use crate::http::v1::callback_types::CallbackUrlIn;
use crate::schema;
use crate::state::AppState;

pub(crate) const MAX_IDEMPOTENCY_KEY: usize = 256;

/// An event to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    /// e.g. `user.created`.
    pub event_type: String,
    /// The JSON object delivered as the webhook body, byte for byte.
    #[serde(alias = "data")]
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Your own unique id for the event (unique per application).
    pub event_id: Option<String>,
    /// Only endpoints subscribed to one of these channels (or to none) receive it.
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// Creates the application alongside the message when the path names none.
    pub application: Option<ApplicationIn>,
    /// Days to keep the payload (accepted; retention is global for now).
    pub payload_retention_period: Option<i64>,
    /// Hours to keep the payload (accepted; retention is global for now).
    pub payload_retention_hours: Option<i64>,
    /// Herald extension: URLs called back once with this message (besides the subscribed
    /// endpoints), with the usual retries, signed with the application's ad-hoc secret;
    /// at most 10.
    pub callback_urls: Option<Vec<CallbackUrlIn>>,
    /// When to deliver it: deliveries wait until then (at most 30 days ahead, and within the
    /// payload retention). The message itself is published, and can be read, at once.
    pub deliver_at: Option<DateTime<Utc>>,
    /// Herald extension: after this, deliveries not yet made stop (a retry that would come
    /// later is not made; a delivery still waiting is canceled). After `deliverAt`, at
    /// most 30 days ahead.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A published message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// When the message was published.
    pub timestamp: DateTime<Utc>,
    /// Herald extension: when its undelivered deliveries stop, if it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl MessageOut {
    /// The API form of `m`; the payload is `{}` without content and `{"expired": true}` once
    /// deleted.
    pub fn new(m: Message, with_content: bool) -> Self {
        let payload = match (&m.payload, with_content) {
            (Some(p), true) => RawValue::from_string(p.to_string()),
            (None, true) => RawValue::from_string(r#"{"expired":true}"#.into()),
            (_, false) => RawValue::from_string("{}".into()),
        }
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("valid JSON"));
        Self {
            id: m.id,
            event_type: m.event_type,
            payload,
            event_id: m.event_id,
            channels: m.channels,
            tags: m.tags,
            timestamp: m.created_at,
            expires_at: m.expires_at,
        }
    }
}

/// How many deliveries a cancel stopped.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageCancelOut {
    /// Deliveries that were waiting (scheduled by `deliverAt`, or for a retry) and will
    /// not be made; one being attempted at this moment is not stopped.
    pub canceled: u64,
}

/// Whether to include payloads.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// Include the payload (default true).
    pub with_content: Option<bool>,
}

/// Filters of message lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListQuery {
    /// Only messages on this channel.
    pub channel: Option<String>,
    /// Only messages carrying this tag.
    pub tag: Option<String>,
    /// Only messages published before this time.
    pub before: Option<DateTime<Utc>>,
    /// Only messages published after this time.
    pub after: Option<DateTime<Utc>>,
    /// Only these event types (comma-separated or repeated).
    pub event_types: Option<Vec<String>>,
    /// Include payloads (default true).
    pub with_content: Option<bool>,
    /// Herald extension: only messages with a delivery in this state (0 succeeded,
    /// 1 pending, 2 failed, 3 sending, 4 canceled).
    pub status: Option<i64>,
    /// Herald extension: only messages with an attempt answered in this class: 0 (no
    /// response), 100, 200, 300, 400 or 500.
    pub status_code_class: Option<i32>,
    /// Herald extension: only messages whose payload contains this text
    /// (case-sensitive, 1 to 256 characters).
    pub payload_contains: Option<String>,
    /// Herald extension: only messages whose payload has these words (1 to 256
    /// characters, at most 16 words). A word is a run of letters and digits; each matches
    /// the start of a word of the payload, without regard to ASCII case, and a message
    /// matches when all do (`ada example` finds `"email": "ada@example.com"`). Served
    /// from an index, so it stays fast on a large log, unlike `payload_contains`.
    pub search: Option<String>,
}

impl MessageListQuery {
    /// The store filter these parameters describe.
    pub fn filter(&self) -> ApiResult<MessageFilter> {
        Ok(MessageFilter {
            event_types: comma_list("event_types", self.event_types.as_deref())?,
            channel: self.channel.clone(),
            tag: self.tag.clone(),
            before: self.before,
            after: self.after,
            delivery_status: crate::http::v1::attempt_types::parse_status("status", self.status)?,
            status_code_class: match self.status_code_class {
                Some(c) if !(0..=500).contains(&c) || c % 100 != 0 => {
                    return Err(query_error(
                        "status_code_class",
                        "must be 0, 100, 200, 300, 400 or 500",
                    ))
                }
                class => class,
            },
            payload_contains: match &self.payload_contains {
                Some(text) if text.is_empty() || text.chars().count() > 256 => {
                    return Err(query_error(
                        "payload_contains",
                        "must be 1 to 256 characters",
                    ))
                }
                text => text.clone(),
            },
            search: search_words(self.search.as_deref())?,
        })
    }
}

/// The words of a `search` parameter, or a 422 saying what is wrong with it.
pub fn search_words(text: Option<&str>) -> ApiResult<Option<SearchWords>> {
    text.map(|text| SearchWords::parse(text).map_err(|e| query_error("search", &e.to_string())))
        .transpose()
}

fn query_error(param: &str, msg: &str) -> ApiError {
    ApiError::Validation(vec![FieldError {
        loc: vec!["query".into(), param.into()],
        msg: msg.into(),
        kind: "value_error",
    }])
}

/// Checks what every event sent carries, a message's or a synchronous call's: the payload's
/// size (413 past `max_payload`), then the event type's name and the payload's shape, whose
/// problems are added to the returned validator for the caller's own checks.
pub(crate) fn check_event(
    event_type: &str,
    payload: &RawValue,
    max_payload: usize,
) -> ApiResult<Validator> {
    let size = payload.get().len();
    if size > max_payload {
        return Err(ApiError::TooLarge(format!(
            "The payload is {size} bytes; the limit is {max_payload} bytes."
        )));
    }
    let mut v = Validator::default();
    v.check(validation::event_type_name("eventType", event_type));
    if !payload.get().trim_start().starts_with('{') {
        v.check(Err(FieldError::body(
            "payload",
            "must be a JSON object",
            "type_error.dict",
        )));
    }
    Ok(v)
}

/// The furthest ahead `deliverAt` may be.
const MAX_DELIVER_AHEAD: chrono::Duration = chrono::Duration::days(30);
/// How far in the past `deliverAt` may be (clocks differ): it then means now.
const DELIVER_AT_SLACK: chrono::Duration = chrono::Duration::minutes(5);

/// When a message's deliveries are first due, from its `deliverAt`: `None` for at once.
/// Refused: a time well in the past (a mistake, not "now"), too far ahead, or after its
/// payload would be deleted.
pub(crate) fn deliver_at(
    body: &MessageIn,
    now: DateTime<Utc>,
    retention: Option<std::time::Duration>,
) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(at) = body.deliver_at else {
        return Ok(None);
    };
    let kept = retention
        .and_then(|r| chrono::Duration::from_std(r).ok())
        .map_or(MAX_DELIVER_AHEAD, |r| r.min(MAX_DELIVER_AHEAD));
    let problem = if at < now - DELIVER_AT_SLACK {
        "is in the past; leave it out to deliver at once"
    } else if at > now + kept {
        "is too far ahead: at most 30 days, and before the payload retention ends"
    } else {
        return Ok((at > now).then_some(at));
    };
    Err(ApiError::Validation(vec![FieldError::body(
        "deliverAt",
        format!("`{}` {problem}", at.to_rfc3339()),
        "value_error.datetime",
    )]))
}

/// When a message's deliveries stop, from its `expiresAt`: it must come after `now` and
/// after `deliver_at` (a message that expires before it may go would never go), at most
/// 30 days ahead.
pub(crate) fn expires_at(
    body: &MessageIn,
    now: DateTime<Utc>,
    deliver_at: Option<DateTime<Utc>>,
) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(at) = body.expires_at else {
        return Ok(None);
    };
    let problem = if at <= deliver_at.unwrap_or(now) {
        "must be later than now and than `deliverAt`"
    } else if at > now + MAX_DELIVER_AHEAD {
        "is too far ahead: at most 30 days"
    } else {
        return Ok(Some(at));
    };
    Err(ApiError::Validation(vec![FieldError::body(
        "expiresAt",
        format!("`{}` {problem}", at.to_rfc3339()),
        "value_error.datetime",
    )]))
}

pub(crate) fn validate(body: &MessageIn, max_payload: usize) -> ApiResult<()> {
    let mut v = check_event(&body.event_type, &body.payload, max_payload)?;
    if let Some(event_id) = &body.event_id {
        v.check(validation::uid("eventId", event_id));
    }
    if let Some(channels) = &body.channels {
        if channels.is_empty() || channels.len() > 5 {
            v.check(Err(FieldError::body(
                "channels",
                "must list 1 to 5 channels",
                "value_error.list",
            )));
        }
        for c in channels {
            v.check(
                validation::length("channels", c, 1, 128)
                    .and(validation::event_type_name("channels", c)),
            );
        }
    }
    if let Some(tags) = &body.tags {
        v.check(validation::list_len("tags", tags, 1, 5));
        for tag in tags {
            v.check(validation::length("tags", tag, 1, 128));
        }
    }
    if let Some(days) = body.payload_retention_period {
        if !(1..=90).contains(&days) {
            v.check(Err(FieldError::body(
                "payloadRetentionPeriod",
                "must be 1 to 90 days",
                "value_error.number",
            )));
        }
    }
    v.finish().map_err(ApiError::Validation)
}

/// Refuses a payload that breaks its event type's schema.
pub(crate) async fn check_schema(
    state: &AppState,
    event_type_name: &str,
    payload: &RawValue,
) -> ApiResult<()> {
    let remembered = state.lookups.event_types.get(&event_type_name.to_owned());
    let found = match remembered {
        Some(found) => found,
        None => {
            let stamp = state.lookups.event_types.stamp();
            let found = match state.store.get_event_type(event_type_name).await {
                Ok(e) => Some(e),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            };
            let name = event_type_name.to_owned();
            state.lookups.event_types.put(name, found.clone(), stamp);
            found
        }
    };
    let Some(event_type) = found.filter(|e| e.schemas.is_some()) else {
        return Ok(());
    };
    let payload: Value = serde_json::from_str(payload.get())
        .map_err(|e| ApiError::invalid("payload", e.to_string()))?;
    let problems = schema::payload_problems(&event_type, &payload);
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::Validation(
        problems
            .into_iter()
            .map(|p| {
                FieldError::body(
                    "payload",
                    format!("does not match the schema of `{event_type_name}`: {p}"),
                    "value_error.jsonschema",
                )
            })
            .collect(),
    ))
}

/// The application of the path, created from `application` when it does not exist yet.
pub(crate) async fn target_app(
    state: &AppState,
    caller: &Caller,
    app_id: &str,
    body: &mut MessageIn,
) -> ApiResult<Application> {
    match (
        state.remembered_app_for(caller, app_id).await,
        body.application.take(),
    ) {
        (Err(ApiError::NotFound), Some(mut app_in)) => {
            if app_in.uid.is_none() && !IdKind::Application.is_id(app_id) {
                app_in.uid = Some(app_id.to_owned());
            }
            Ok(create_or_get(state, app_in, true).await?.1)
        }
        (found, _) => found,
    }
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => Ok(Some(key.to_owned())),
        _ => Err(ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: format!("The idempotency-key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters."),
        }),
    }
}

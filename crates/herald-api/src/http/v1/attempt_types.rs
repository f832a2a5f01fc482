//! The shapes of attempts and of a message's state per endpoint, and Svix's status names.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::model::{Attempt, DeliveryStatus};
use herald_core::store::AttemptFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::http::list::comma_list;

/// Svix's name of a delivery status.
pub fn status_text(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Success => "success",
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Failed => "fail",
        DeliveryStatus::Sending => "sending",
        DeliveryStatus::Canceled => "canceled",
        DeliveryStatus::Held => "held",
        DeliveryStatus::Queued => "queued",
    }
}

/// One attempt to deliver a message to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    /// The URL the attempt was made to.
    pub url: String,
    /// The response body, cut at the configured limit.
    pub response: String,
    /// 0 when no response arrived.
    pub response_status_code: i32,
    pub response_duration_ms: i64,
    /// 0 success, 2 failure.
    pub status: i64,
    pub status_text: &'static str,
    /// 0 scheduled, 1 manual (Svix's numbers; Herald's other triggers show as 0 here).
    pub trigger_type: i64,
    /// Herald extension: what made the attempt, `scheduled`, `manual`, `adhoc` (a one-off
    /// callback URL), `sync` or `verification`.
    pub trigger: &'static str,
    /// When the attempt was made.
    pub timestamp: DateTime<Utc>,
    /// Why the attempt failed: `http_status`, `timeout`, `connection_refused`, `dns`, `tls`,
    /// `connection`, `invalid_response`, `blocked`, `template` (the endpoint's template did
    /// not render), `rejected` (refused for good, e.g. an SMTP 5xx reply), `listener_offline` (no `herald listen`
    /// session attached), `token` (no OAuth 2.0 access token could be had), `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
    pub response_headers: BTreeMap<String, String>,
    /// Herald extension: whether `response` is only the start of a longer body.
    pub response_truncated: bool,
    /// Herald extension: the headers sent (values of secret-looking custom headers
    /// masked); empty for destinations other than HTTP.
    pub request_headers: BTreeMap<String, String>,
}

impl MessageAttemptOut {
    pub fn new(a: Attempt, with_content: bool) -> Self {
        Self {
            id: a.id,
            msg_id: a.msg_id,
            endpoint_id: a.endpoint_id,
            url: a.url,
            response: if with_content {
                a.response
            } else {
                "{}".into()
            },
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status: a.status as i64,
            status_text: status_text(a.status),
            trigger_type: a.trigger.svix(),
            trigger: a.trigger.as_str(),
            timestamp: a.created_at,
            error_kind: a.error_kind.map(|k| k.as_str()),
            error_detail: a.error_detail,
            response_headers: if with_content {
                a.response_headers
            } else {
                BTreeMap::new()
            },
            response_truncated: a.response_truncated,
            request_headers: a.request_headers,
        }
    }
}

/// Filters of attempt lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptListQuery {
    /// 0 success, 1 pending, 2 failure, 3 sending, 4 canceled.
    pub status: Option<i64>,
    /// 0 (no response), 100, 200, 300, 400 or 500.
    pub status_code_class: Option<i32>,
    pub channel: Option<String>,
    /// Only attempts of messages carrying this tag.
    pub tag: Option<String>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    /// Only attempts of these event types (comma-separated or repeated).
    pub event_types: Option<Vec<String>>,
    /// Only attempts to this endpoint (when listing by message).
    pub endpoint_id: Option<String>,
    /// Herald extension: only attempts of messages whose payload has these words (as
    /// `search` on the message list).
    pub search: Option<String>,
    /// Include response bodies (default true).
    pub with_content: Option<bool>,
}

/// Parses a Svix status number, or a 422 naming `field`.
pub fn parse_status(field: &str, status: Option<i64>) -> ApiResult<Option<DeliveryStatus>> {
    status
        .map(|n| {
            DeliveryStatus::from_i64(n).ok_or_else(|| {
                ApiError::Validation(vec![herald_core::validation::FieldError {
                    loc: vec!["query".into(), field.into()],
                    msg: "must be 0, 1, 2, 3, 4, 5 or 6".into(),
                    kind: "value_error",
                }])
            })
        })
        .transpose()
}

impl AttemptListQuery {
    pub fn filter(&self, endpoint_id: Option<String>) -> ApiResult<AttemptFilter> {
        Ok(AttemptFilter {
            status: parse_status("status", self.status)?,
            status_code_class: self.status_code_class,
            event_types: comma_list("event_types", self.event_types.as_deref())?,
            channel: self.channel.clone(),
            tag: self.tag.clone(),
            before: self.before,
            after: self.after,
            endpoint_id,
            search: crate::http::v1::message_types::search_words(self.search.as_deref())?,
        })
    }
}

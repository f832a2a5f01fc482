//! The `Destination` trait: how a message reaches an endpoint. HTTP, chat, email and the
//! message brokers each implement it; the server routes an endpoint to its kind by the
//! scheme of its URL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{AttemptErrorKind, Endpoint};

/// Everything needed to make one attempt.
#[derive(Debug, Clone)]
pub struct DeliveryRequest {
    pub msg_id: String,
    pub event_type: String,
    /// The payload exactly as published (raw JSON).
    pub payload: Arc<str>,
    pub endpoint: Arc<Endpoint>,
    /// When this attempt is made; signed as `webhook-timestamp`.
    pub attempted_at: DateTime<Utc>,
    /// What the endpoint's template made of the event; `None`: send the payload as is.
    pub rendered: Option<Rendered>,
    /// The W3C `traceparent` the message was published with, if any: the request carries
    /// the same trace on (see [`child_traceparent`]).
    pub traceparent: Option<String>,
}

/// Whether `value` is a W3C `traceparent` Herald carries on: version `00`, a trace id and
/// a parent id in lower-case hex, neither all zeros, and flags.
pub fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [version, trace, parent, flags]
        if *version == "00" && hex(trace, 32) && nonzero(trace) && hex(parent, 16)
            && nonzero(parent) && hex(flags, 2))
}

/// The `traceparent` of a delivery of a message published under `parent`: the same trace
/// and flags, and a parent id of its own (the attempt is a step of its own in the trace).
pub fn child_traceparent(parent: &str) -> Option<String> {
    if !valid_traceparent(parent) {
        return None;
    }
    let mut parts = parent.split('-');
    let (_, trace, _, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let span: u64 = loop {
        let id = rand::random::<u64>();
        if id != 0 {
            break id;
        }
    };
    Some(format!("00-{trace}-{span:016x}-{flags}"))
}

impl DeliveryRequest {
    /// The bytes to send: the rendered body, or the payload as published.
    pub fn body(&self) -> &str {
        match self.rendered.as_ref().and_then(|r| r.body.as_deref()) {
            Some(body) => body,
            None => &self.payload,
        }
    }
}

/// The output of an endpoint's template: each part is `None` where the template has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub body: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub method: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub content_type: Option<String>,
}

/// What came back from one attempt.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOutcome {
    /// The HTTP status, if a response arrived.
    pub status_code: Option<u16>,
    pub headers: BTreeMap<String, String>,
    /// The response body, already cut at the configured limit.
    pub body: String,
    /// Whether `body` was cut.
    pub body_truncated: bool,
    /// The request headers as recorded in the attempt log (secrets masked).
    pub request_headers: BTreeMap<String, String>,
    pub duration: Duration,
    /// `None` on success.
    pub error: Option<DeliveryError>,
    /// How long the receiver asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl DeliveryOutcome {
    /// Whether the attempt delivered the message.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The status recorded for an attempt a message broker confirmed (a JetStream ack, a
/// RabbitMQ publisher confirm, a Redis `XADD` id): the message was taken, as a `202
/// Accepted` would say; whether a consumer processed it is not known.
pub const BROKER_ACCEPTED: u16 = 202;

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    pub kind: AttemptErrorKind,
    /// A short human-readable description; never contains secrets.
    pub detail: String,
    /// Trying again cannot help (an SMTP 5xx reply, a template that does not render): the
    /// delivery fails now instead of going through its retry schedule.
    pub permanent: bool,
}

impl DeliveryError {
    /// A failure worth retrying.
    pub fn new(kind: AttemptErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            permanent: false,
        }
    }

    /// A failure that retrying cannot mend.
    pub fn permanent(kind: AttemptErrorKind, detail: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::new(kind, detail)
        }
    }
}

impl From<DeliveryError> for DeliveryOutcome {
    fn from(error: DeliveryError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// A kind of destination: HTTP, email, chat, broker…
#[async_trait]
pub trait Destination: Send + Sync + 'static {
    /// Makes one attempt. Never panics and never returns early without an outcome: every
    /// failure is described in the outcome so that it can be logged.
    async fn deliver(&self, request: &DeliveryRequest) -> DeliveryOutcome;
}

#[cfg(test)]
mod traceparent_tests {
    use super::*;

    #[test]
    fn a_delivery_continues_the_trace_with_a_parent_id_of_its_own() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let child = child_traceparent(parent).unwrap();
        assert!(valid_traceparent(&child), "{child}");
        assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(child.ends_with("-01"));
        assert_ne!(child, parent);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(child_traceparent(bad).is_none(), "{bad}");
        }
    }
}

//! The `Destination` trait: how a message reaches an endpoint. HTTP is the first kind;
//! email, chat and brokers implement the same trait.

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
}

/// What came back from one attempt.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOutcome {
    /// The HTTP status, if a response arrived.
    pub status_code: Option<u16>,
    pub headers: BTreeMap<String, String>,
    /// The response body, already cut at the configured limit.
    pub body: String,
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

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    pub kind: AttemptErrorKind,
    /// A short human-readable description; never contains secrets.
    pub detail: String,
}

/// A kind of destination: HTTP, email, chat, broker…
#[async_trait]
pub trait Destination: Send + Sync + 'static {
    /// Makes one attempt. Never panics and never returns early without an outcome: every
    /// failure is described in the outcome so that it can be logged.
    async fn deliver(&self, request: &DeliveryRequest) -> DeliveryOutcome;
}

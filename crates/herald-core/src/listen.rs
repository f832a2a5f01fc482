//! The frames of `herald listen --server`: a WebSocket from the CLI to Herald over which
//! the dispatcher delivers an application's messages, and the CLI answers with what the
//! developer's local server replied. Both ends (the API's `/app/{app_id}/listen` route and
//! the CLI) speak these types, as JSON text frames.
//!
//! 1. The CLI opens `GET /api/v1/app/{app_id}/listen?name=…` (with `filterTypes`,
//!    `channels` and `force` as it wants). Herald attaches the session to the app's listen
//!    endpoint for that name, created on first use so its secret stays the same across
//!    restarts; a refusal (`session_in_use`, an unknown event type) is an ordinary HTTP
//!    error before the upgrade.
//! 2. The first frame is [`ServerFrame::Ready`].
//! 3. Each attempt is a [`ServerFrame::Deliver`]; the CLI answers [`ClientFrame::Result`]
//!    with the same `attempt_id`, which becomes the attempt's outcome.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How often the node holding a session says so again, for the other nodes sharing the
/// store (PostgreSQL), which leave that endpoint's deliveries to it.
pub const SESSION_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// A node's word on a session older than this is stale: the node died without letting go,
/// so the session may attach elsewhere and other nodes deliver (or fail) as before.
pub const SESSION_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(15);

/// Before when a node's word on a session, seen at `now`, is stale.
pub fn stale_before(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    now - chrono::Duration::from_std(SESSION_STALE_AFTER).unwrap_or_default()
}

/// The URL scheme of a listen endpoint: `listen://NAME`.
pub const SCHEME: &str = "listen";

/// The uid of the listen endpoint a session named `name` attaches to.
pub fn endpoint_uid(name: &str) -> String {
    format!("listen-{name}")
}

/// Whether a session name is usable (it becomes part of a uid and a URL host).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// What the CLI sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientFrame {
    /// What the local server answered to a delivery (or why it could not be reached).
    Result {
        attempt_id: u64,
        /// The local server's status; absent when it could not be reached.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// The response body (text; the CLI cuts it to a few kilobytes).
        #[serde(default)]
        body: String,
        /// Why the local server was not reached.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// What Herald sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerFrame {
    /// The session is attached: the first frame.
    Ready {
        endpoint_id: String,
        /// The endpoint's verification key (`whsec_…`), the same each time for this name.
        secret: String,
        /// Event types the endpoint receives; `None`: all.
        filter_types: Option<Vec<String>>,
    },
    /// One attempt: the request Herald would have sent to an HTTP endpoint.
    Deliver {
        attempt_id: u64,
        msg_id: String,
        event_type: String,
        method: String,
        /// Signed Standard Webhooks headers, and the endpoint's custom headers.
        headers: BTreeMap<String, String>,
        /// The body exactly as signed.
        body: String,
        /// How long Herald waits for the result: an answer later than this is not heard,
        /// and the delivery is retried.
        timeout_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_camel_case_json() {
        let result: ClientFrame =
            serde_json::from_str(r#"{"type":"result","attemptId":3,"status":204}"#).unwrap();
        assert_eq!(
            result,
            ClientFrame::Result {
                attempt_id: 3,
                status: Some(204),
                headers: BTreeMap::new(),
                body: String::new(),
                error: None,
            }
        );
        let deliver = serde_json::to_value(ServerFrame::Deliver {
            attempt_id: 7,
            msg_id: "msg_1".into(),
            event_type: "a".into(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body: "{}".into(),
            timeout_ms: 15_000,
        })
        .unwrap();
        assert_eq!(deliver["type"], "deliver");
        assert_eq!(deliver["attemptId"], 7);
        assert_eq!(deliver["eventType"], "a");
    }

    #[test]
    fn names_are_short_words_joined_by_hyphens() {
        assert!(valid_name("dev-laptop"));
        assert!(valid_name("a1"));
        for bad in ["", "-a", "a-", "a b", "a/b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}

//! The domain objects Herald stores. API shapes (Svix's `…In`/`…Out`) live in the server
//! and convert to and from these.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::endpoint_auth::{KeyPin, OAuthClient};
use crate::ids::IdKind;
use crate::payload_filter::PayloadFilter;
use crate::signature_scheme::SignatureScheme;
use crate::signing::EndpointSecret;

/// Free-form string labels a user attaches to an object.
pub type Metadata = BTreeMap<String, String>;

/// One customer of the provider (a tenant): the owner of endpoints and messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub rate_limit: Option<u32>,
    pub metadata: Metadata,
    /// Whether its endpoints must verify their subscription first.
    pub verification: VerificationMode,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A named kind of event, optionally with JSON Schemas (by version, e.g. `"1"`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub schemas: Option<Value>,
    pub archived: bool,
    pub deprecated: bool,
    pub feature_flags: Option<Vec<String>>,
    pub group_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A destination of an application: where matching messages are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub app_id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: i32,
    pub rate_limit: Option<u32>,
    /// At most this many attempts to this endpoint at once (per node); `None`: the
    /// configured default.
    pub max_concurrency: Option<u32>,
    /// Messages go out one at a time in publish order: the next is not sent before the
    /// one ahead of it succeeded or ran out of retries (see `DeliveryStatus::Queued`).
    pub ordered: bool,
    pub disabled: bool,
    /// Since when every attempt to this endpoint has failed; `None` while it is healthy.
    /// Kept by the dispatcher (an API update never changes it; enabling clears it).
    pub failing_since: Option<DateTime<Utc>>,
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    /// A condition on the payload that a message must meet to be sent here, checked at
    /// publishing beside the event-type and channel filters.
    pub payload_filter: Option<PayloadFilter>,
    pub metadata: Metadata,
    /// A signature in another style, sent beside the Standard Webhooks headers.
    pub signature_scheme: Option<SignatureScheme>,
    /// Extra headers sent with every delivery to this endpoint.
    pub headers: BTreeMap<String, String>,
    pub secret: EndpointSecret,
    /// The secret that was current before the last rotation, still signing until it expires.
    pub previous_secret: Option<PreviousSecret>,
    /// A client certificate presented to the endpoint's server (mutual TLS).
    pub client_identity: Option<ClientIdentity>,
    /// Certificate authorities (PEM) trusted for the endpoint's server instead of the
    /// public roots and the operator's extra ones.
    pub server_ca: Option<String>,
    /// Pins on the server's public key: when any is set, one must match.
    pub key_pins: Vec<KeyPin>,
    /// An OAuth 2.0 client whose access token goes with each delivery.
    pub oauth: Option<OAuthClient>,
    /// How what is sent is rendered from the event; `None`: the payload as published (or
    /// the destination kind's default, for email and chat).
    pub template: Option<EndpointTemplate>,
    /// A hidden endpoint standing for a one-off callback URL (`callbackUrls`): it receives
    /// only the messages that name it, is signed with the application's ad-hoc secret, is
    /// never listed nor disabled, yet its attempts are logged, counted and resendable.
    pub adhoc: bool,
    /// Whether it has shown it wants the events, when its application asks.
    pub verification: Verification,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How an application's endpoints show they want its events before any is sent
/// (subscription intent verification), Svix's behaviour (`None`) by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerificationMode {
    #[default]
    None,
    /// A signed POST `{"type": "webhook.verification", "challenge": …}`, to be echoed.
    Challenge,
    /// A WebSub GET with `hub.mode`, `hub.topic`, `hub.challenge`, `hub.lease_seconds`,
    /// answered with the challenge as the body.
    WebSub,
}

impl VerificationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Challenge => "challenge",
            Self::WebSub => "websub",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "challenge" => Self::Challenge,
            "websub" => Self::WebSub,
            _ => return None,
        })
    }
}

/// The event type of the messages that record subscription verification challenges; they
/// are left out of the application's stream and of replays.
pub const VERIFICATION_EVENT_TYPE: &str = "webhook.verification";

/// Where an endpoint stands in verifying its subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerificationStatus {
    /// Never asked: its application does not verify.
    #[default]
    None = 0,
    /// Asked, not yet answered right: its messages are held.
    Pending = 1,
    /// Every try failed: its messages are held until it is verified again.
    Failed = 2,
    Verified = 3,
}

impl VerificationStatus {
    pub fn from_i64(n: i64) -> Self {
        match n {
            1 => Self::Pending,
            2 => Self::Failed,
            3 => Self::Verified,
            _ => Self::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Failed => "verification_failed",
            Self::Verified => "verified",
        }
    }

    /// Whether messages wait (held) instead of being delivered.
    pub fn holds(self) -> bool {
        matches!(self, Self::Pending | Self::Failed)
    }
}

/// An endpoint's verification state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub status: VerificationStatus,
    /// Failed tries since it was last asked afresh.
    pub tries: u32,
    /// When the next try is due (while pending).
    pub due_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Verification {
    /// Asked afresh, due at `now`.
    pub fn pending(now: DateTime<Utc>) -> Self {
        Self {
            status: VerificationStatus::Pending,
            due_at: Some(now),
            ..Self::default()
        }
    }
}

/// Templates (minijinja syntax) rendering what an endpoint is sent from the event. Each
/// part is optional; what a part means depends on the destination kind (`subject` and `html`
/// are for email, `method` for HTTP).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointTemplate {
    /// The body (HTTP, chat, brokers) or the plain-text part (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The email subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The email's HTML part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The HTTP method (default `POST`); may itself be a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Extra headers (HTTP) or header fields (brokers), values rendered as templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body's content type (default `application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// The reserved application whose endpoints receive Herald's operational webhooks (events
/// about Herald itself, such as `endpoint.disabled`). Hidden from the application API.
pub const OPERATIONAL_APP_ID: &str = "app_00000000000000000000000000";

/// A TLS client certificate chain and its private key, PEM-encoded in one text. `Debug`
/// never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity(pub String);

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity(<redacted>)")
    }
}

/// An application's ad-hoc secret, which signs its one-off callbacks: the current one and,
/// for a while after a rotation, the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct AdhocSecret {
    pub secret: EndpointSecret,
    pub previous: Option<PreviousSecret>,
}

/// Where an application's one-off callbacks may go, beside the server's address policy
/// (which still applies): the provider narrows what its API's callers may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackPolicy {
    /// Only `https` callback URLs.
    pub https_only: bool,
    /// Host patterns a callback's host must match: `hooks.example.com`, or `*.example.com`
    /// for any name below it. Empty: any host.
    pub allowed_hosts: Vec<String>,
}

impl CallbackPolicy {
    /// Why `url` may not be called back, if it may not.
    pub fn refusal(&self, url: &url::Url) -> Option<String> {
        if self.https_only && url.scheme() != "https" {
            return Some("this application takes only https callback URLs".into());
        }
        if self.allowed_hosts.is_empty() {
            return None;
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = self.allowed_hosts.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => host == pattern,
            }
        });
        (!allowed).then(|| format!("{host} is not among this application's callback hosts"))
    }

    /// Whether `pattern` is a host name, or `*.` and one.
    pub fn is_host_pattern(pattern: &str) -> bool {
        let name = pattern.strip_prefix("*.").unwrap_or(pattern);
        !name.is_empty()
            && name.len() <= 253
            && !name.contains("*")
            && matches!(url::Host::parse(name), Ok(url::Host::Domain(_)))
    }
}

#[cfg(test)]
mod callback_policy_tests {
    use super::CallbackPolicy;

    #[test]
    fn hosts_match_exactly_or_below_a_wildcard_and_https_can_be_required() {
        let policy = CallbackPolicy {
            https_only: true,
            allowed_hosts: vec!["hooks.example.com".into(), "*.client.example".into()],
        };
        let refusal = |u: &str| policy.refusal(&url::Url::parse(u).unwrap());
        assert_eq!(refusal("https://hooks.example.com/x"), None);
        assert_eq!(refusal("https://HOOKS.example.com/x"), None);
        assert_eq!(refusal("https://a.b.client.example/x"), None);
        assert!(
            refusal("https://client.example/x").is_some(),
            "not the bare domain"
        );
        assert!(refusal("https://evilclient.example/x").is_some());
        assert!(refusal("https://hooks.example.com.evil/x").is_some());
        assert!(refusal("http://hooks.example.com/x")
            .unwrap()
            .contains("https"));
        assert_eq!(
            CallbackPolicy::default().refusal(&url::Url::parse("http://x.y/").unwrap()),
            None
        );

        assert!(CallbackPolicy::is_host_pattern("*.example.com"));
        assert!(CallbackPolicy::is_host_pattern("hooks.example.com"));
        for bad in ["", "*.", "a.*.com", "http://x", "127.0.0.1", "a b"] {
            assert!(!CallbackPolicy::is_host_pattern(bad), "{bad}");
        }
    }
}

/// A rotated-out secret that keeps signing beside the new one for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousSecret {
    pub secret: EndpointSecret,
    pub expires_at: DateTime<Utc>,
}

impl Endpoint {
    /// A new endpoint of `app_id` at `url`, with a fresh id and secret and every option
    /// unset; callers set what they have with struct update syntax.
    pub fn new(app_id: &str, url: String, now: DateTime<Utc>) -> Self {
        Self {
            id: IdKind::Endpoint.new_id(),
            app_id: app_id.to_owned(),
            uid: None,
            url,
            description: String::new(),
            version: 1,
            rate_limit: None,
            max_concurrency: None,
            ordered: false,
            disabled: false,
            failing_since: None,
            filter_types: None,
            channels: None,
            payload_filter: None,
            signature_scheme: None,
            metadata: Metadata::new(),
            headers: BTreeMap::new(),
            secret: EndpointSecret::generate(),
            previous_secret: None,
            client_identity: None,
            server_ca: None,
            key_pins: Vec::new(),
            oauth: None,
            template: None,
            adhoc: false,
            verification: Verification::default(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The secrets that sign a delivery made at `now`: the current one, and the previous one
    /// while its overlap lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&EndpointSecret> {
        let mut secrets = vec![&self.secret];
        if let Some(prev) = &self.previous_secret {
            if prev.expires_at > now {
                secrets.push(&prev.secret);
            }
        }
        secrets
    }
}

/// An event published for an application.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub app_id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// The payload exactly as the publisher sent it (raw JSON text); `None` once deleted.
    pub payload: Option<Arc<str>>,
    pub created_at: DateTime<Utc>,
    /// The W3C `traceparent` it was published with, carried to its deliveries.
    pub traceparent: Option<String>,
    /// After this, deliveries not yet made stop (`expiresAt`); `None`: they go on until
    /// their retries run out.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Message {
    /// A new message of `app_id` with a fresh id, and no event id, channels or tags.
    pub fn new(app_id: &str, event_type: &str, payload: &str, now: DateTime<Utc>) -> Self {
        Self {
            id: IdKind::Message.new_id(),
            app_id: app_id.to_owned(),
            event_type: event_type.to_owned(),
            event_id: None,
            channels: None,
            tags: None,
            payload: Some(payload.into()),
            created_at: now,
            traceparent: None,
            expires_at: None,
        }
    }
}

/// The state of one message's delivery to one endpoint. The numbers are Svix's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Success = 0,
    Pending = 1,
    Failed = 2,
    Sending = 3,
    /// Not attempted because the endpoint was disabled before its turn came.
    Canceled = 4,
    /// Waiting for the endpoint to verify its subscription; pending once it does.
    Held = 5,
    /// Behind an earlier message to an ordered endpoint; pending once that one succeeded,
    /// failed for good or was canceled.
    Queued = 6,
}

impl DeliveryStatus {
    /// From the stored/wire number.
    pub fn from_i64(n: i64) -> Option<Self> {
        Some(match n {
            0 => Self::Success,
            1 => Self::Pending,
            2 => Self::Failed,
            3 => Self::Sending,
            4 => Self::Canceled,
            5 => Self::Held,
            6 => Self::Queued,
            _ => return None,
        })
    }

    /// The number Svix's SDKs know: a held or queued delivery is pending to them.
    pub fn svix(self) -> i64 {
        match self {
            Self::Held | Self::Queued => Self::Pending as i64,
            other => other as i64,
        }
    }
}

/// Why an attempt was made. 0 and 1 are Svix's numbers; the rest are Herald's patterns,
/// which Svix's `triggerType` shows as `Scheduled` (see [`TriggerType::svix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    /// Published and delivered to a subscribed endpoint, or retried on schedule.
    Scheduled = 0,
    /// Resent, recovered or replayed by hand.
    Manual = 1,
    /// A one-off callback URL given with the message.
    Adhoc = 2,
    /// A synchronous call, whose answer the caller waited for.
    Sync = 3,
    /// A subscription's verification challenge.
    Verification = 4,
}

impl TriggerType {
    /// From the stored number; unknown numbers read as `Scheduled`.
    pub fn from_i64(n: i64) -> Self {
        match n {
            1 => Self::Manual,
            2 => Self::Adhoc,
            3 => Self::Sync,
            4 => Self::Verification,
            _ => Self::Scheduled,
        }
    }

    /// The number Svix's `triggerType` has for it: Svix knows only scheduled (0) and
    /// manual (1), and its SDKs refuse other numbers.
    pub fn svix(self) -> i64 {
        match self {
            Self::Manual => 1,
            _ => 0,
        }
    }

    /// The stable name used in the API (`trigger`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Manual => "manual",
            Self::Adhoc => "adhoc",
            Self::Sync => "sync",
            Self::Verification => "verification",
        }
    }
}

/// One message's delivery to one endpoint, with its current state.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub trigger: TriggerType,
    pub updated_at: DateTime<Utc>,
}

/// What kind of failure an attempt met, in terms a human understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptErrorKind {
    /// The endpoint answered with a non-2xx status.
    HttpStatus,
    Timeout,
    ConnectionRefused,
    Dns,
    Tls,
    /// Could not connect for another reason (reset, unreachable…).
    Connection,
    /// The response was not valid HTTP, or its body could not be read.
    InvalidResponse,
    /// The destination address is not allowed (private, loopback…).
    Blocked,
    /// The endpoint's template failed to render.
    Template,
    /// The destination refused the message for good (an SMTP 5xx reply, a broker's nack).
    Rejected,
    /// A `herald listen` endpoint with no session attached to this node.
    ListenerOffline,
    /// No OAuth 2.0 access token could be had for the endpoint; the detail says why.
    Token,
    /// Anything else; the detail says what.
    Other,
}

impl AttemptErrorKind {
    /// The stable name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpStatus => "http_status",
            Self::Timeout => "timeout",
            Self::ConnectionRefused => "connection_refused",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Connection => "connection",
            Self::InvalidResponse => "invalid_response",
            Self::Blocked => "blocked",
            Self::Template => "template",
            Self::Rejected => "rejected",
            Self::ListenerOffline => "listener_offline",
            Self::Token => "token",
            Self::Other => "other",
        }
    }

    /// From the stable name; unknown names map to `Other`.
    pub fn parse(s: &str) -> Self {
        [
            Self::HttpStatus,
            Self::Timeout,
            Self::ConnectionRefused,
            Self::Dns,
            Self::Tls,
            Self::Connection,
            Self::InvalidResponse,
            Self::Blocked,
            Self::Template,
            Self::Rejected,
            Self::ListenerOffline,
            Self::Token,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Self::Other)
    }
}

/// One try at delivering a message to an endpoint, as recorded in the attempt log.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub delivery_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub url: String,
    /// `Success` or `Failed`.
    pub status: DeliveryStatus,
    /// 0 when no HTTP response was received.
    pub response_status_code: i32,
    pub response_headers: BTreeMap<String, String>,
    /// The response body, cut at the configured limit; emptied by content deletion.
    pub response: String,
    /// Whether the response body was longer than the limit and `response` holds its start.
    pub response_truncated: bool,
    /// The headers Herald sent, values of secret-looking custom headers masked; empty
    /// for destinations other than HTTP.
    pub request_headers: BTreeMap<String, String>,
    pub response_duration_ms: i64,
    pub error_kind: Option<AttemptErrorKind>,
    pub error_detail: Option<String>,
    pub trigger: TriggerType,
    pub created_at: DateTime<Utc>,
}

/// An API token record; only the hash of the token is ever stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// `None` for an admin token; the application an app-scoped token is limited to.
    pub app_id: Option<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// What a customer-portal session may do; `None` for tokens made otherwise.
    pub portal: Option<PortalSession>,
    /// Good for one exchange (`auth/one-time-token`) for a token of the same scope, and
    /// for nothing else: what a sign-in link carries.
    pub one_time: bool,
    /// The token's first characters (`hrld_ab12`), by which lists name it once its value
    /// is no longer shown; empty when the token was chosen, not generated.
    pub hint: String,
    /// A poller token: it may only poll this endpoint of its application.
    pub poller_endpoint_id: Option<String>,
}

/// The limits of one customer-portal session (`app-portal-access`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalSession {
    /// What the session may do beyond viewing.
    pub capabilities: Vec<Capability>,
    /// Event types carrying feature flags are shown only when the session has one of them.
    pub feature_flags: Vec<String>,
    /// Names the session for `expire-all`.
    pub session_id: Option<String>,
}

impl PortalSession {
    pub fn allows(&self, capability: Capability) -> bool {
        capability == Capability::ViewBase || self.capabilities.contains(&capability)
    }
}

/// What a portal token may do (Svix's `AppPortalCapability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Capability {
    /// See the application, its endpoints, messages and attempts. Always granted.
    ViewBase,
    ViewEndpointSecret,
    ManageEndpointSecret,
    /// Accepted for compatibility; Herald has no transformations, so it grants nothing.
    ManageTransformations,
    /// Resend, recover, replay and send examples.
    CreateAttempts,
    /// Create, change and delete endpoints.
    ManageEndpoint,
}

impl Capability {
    /// Everything a session may do when it is neither read-only nor given a list.
    pub const ALL: [Capability; 6] = [
        Capability::ViewBase,
        Capability::ViewEndpointSecret,
        Capability::ManageEndpointSecret,
        Capability::ManageTransformations,
        Capability::CreateAttempts,
        Capability::ManageEndpoint,
    ];
}

/// An inbound source: a URL a provider (GitHub, Stripe…) sends its webhooks to, which
/// Herald verifies and publishes as messages of the source's application.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    /// The provider's scheme (`github`, `stripe`, `hmac`…), Svix's `type`.
    pub kind: String,
    /// The scheme's settings, secrets included (sealed at rest).
    pub config: serde_json::Value,
    /// The application whose messages the source's requests become.
    pub app_id: String,
    /// The last part of the receive URL: whoever knows it may send.
    pub token: String,
    /// The token before the last rotation, accepted until it expires.
    pub previous_token: Option<String>,
    pub previous_token_expires_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A request an inbound source refused, and why: the sender is told only that it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRejection {
    pub id: String,
    pub source_id: String,
    /// The status answered (401, 413…).
    pub status: u16,
    /// Which check failed, e.g. `signature_mismatch`.
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

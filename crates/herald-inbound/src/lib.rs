//! Inbound sources, without I/O: what a provider's webhook must carry to be believed
//! ([`verify`]), the handshakes some providers make before sending events ([`handshake`]),
//! and the Herald event a verified request becomes ([`event_of`], [`payload_of`]).
//!
//! The HTTP side (the source routes and the receive URL) is in `herald-api`; this crate
//! only decides, so each scheme is tested with its providers' own vectors.

pub mod config;
pub mod verify;

use serde_json::Value;

pub use config::{verifier, Verifier, TYPES};
pub use verify::{verify, Inbound, Rejection};

/// What a handshake is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub content_type: &'static str,
    pub body: String,
}

/// The answer to a handshake, if `req` is one: Slack's `url_verification` (echo the
/// challenge), Zoom's `endpoint.url_validation` (the plain token and its HMAC), and a
/// WebSub or Meta subscription check, a GET with `hub.challenge` (echo it, for Meta only
/// with the source's `verifyToken` as `hub.verify_token`). POST handshakes
/// are signed like events and are answered only once verified.
pub fn handshake(verifier: &Verifier, req: &Inbound<'_>, is_get: bool) -> Option<Reply> {
    if is_get {
        let query = req.path_and_query.split_once('?')?.1;
        let param = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let challenge = param("hub.challenge")?;
        // Meta proves the check is its own with the verify token it was given.
        if let Verifier::Meta {
            verify_token: Some(expected),
            ..
        } = verifier
        {
            let given = param("hub.verify_token").unwrap_or_default();
            if !verify::same_bytes(expected.as_bytes(), given.as_bytes()) {
                return None;
            }
        }
        return Some(Reply {
            content_type: "text/plain",
            body: challenge,
        });
    }
    let body: Value = serde_json::from_slice(req.body).ok()?;
    match verifier {
        Verifier::Slack(..) if body["type"] == "url_verification" => Some(Reply {
            content_type: "application/json",
            body: serde_json::json!({"challenge": body["challenge"]}).to_string(),
        }),
        Verifier::Zoom(secrets, _) if body["event"] == "endpoint.url_validation" => {
            let plain = body["payload"]["plainToken"].as_str()?;
            let secret = secrets.first()?;
            let encrypted =
                verify::sign_hex(config::Algorithm::Sha256, secret, &[plain.as_bytes()]);
            Some(Reply {
                content_type: "application/json",
                body: serde_json::json!({"plainToken": plain, "encryptedToken": encrypted})
                    .to_string(),
            })
        }
        _ => None,
    }
}

/// The event a verified request becomes: its type, and the provider's id for it (which
/// de-duplicates redeliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_type: String,
    pub event_id: Option<String>,
}

/// The event of a request to a source of type `kind`, from the provider's headers or body.
/// A type the provider does not say is `<kind>.received`.
pub fn event_of(kind: &str, req: &Inbound<'_>) -> Event {
    let body: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let header = |name: &str| req.header(name).map(str::to_owned);
    let (event_type, event_id) = match kind {
        "github" => {
            let event = header("x-github-event");
            let action = text(&body["action"]);
            let name = match (event, action) {
                (Some(e), Some(a)) => Some(format!("{e}.{a}")),
                (e, _) => e,
            };
            (name, header("x-github-delivery"))
        }
        "stripe" => (text(&body["type"]), text(&body["id"])),
        "slack" => (
            text(&body["event"]["type"]).or_else(|| text(&body["type"])),
            text(&body["event_id"]),
        ),
        "shopify" => (header("x-shopify-topic"), header("x-shopify-webhook-id")),
        "standard-webhooks" | "svix" => (
            text(&body["type"]).or_else(|| text(&body["eventType"])),
            header("webhook-id").or_else(|| header("svix-id")),
        ),
        "twilio" => (None, header("i-twilio-idempotency-token")),
        "zoom" => (text(&body["event"]), None),
        // `{"object": "page", "entry": [{"changes": [{"field": "feed", …}]}]}` is `page.feed`.
        "meta" => {
            let object = text(&body["object"]);
            let field = text(&body["entry"][0]["changes"][0]["field"]);
            let name = match (object, field) {
                (Some(o), Some(f)) => Some(format!("{o}.{f}")),
                (o, _) => o,
            };
            (name, None)
        }
        _ => (None, None),
    };
    let event_type = event_type
        .map(|t| event_type_name(&t))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("{kind}.received"));
    Event {
        event_type,
        event_id: event_id.map(|id| event_id_text(&id)),
    }
}

/// A provider's type as a Herald event type name: letters, digits, `.`, `_` and `-`
/// (Shopify's `orders/create` becomes `orders.create`), at most 256 characters.
fn event_type_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| match c {
            '/' | ':' => '.',
            c if c.is_ascii_alphanumeric() || "._-".contains(c) => c,
            _ => '_',
        })
        .take(256)
        .collect();
    name.trim_start_matches('-').to_owned()
}

/// A provider's delivery id as a Herald `eventId`: kept when it is one already, else its
/// SHA-256, so any id de-duplicates.
fn event_id_text(raw: &str) -> String {
    use sha2::Digest as _;
    let fits = !raw.is_empty()
        && raw.len() <= 256
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if fits {
        raw.to_owned()
    } else {
        verify::to_hex(&sha2::Sha256::digest(raw.as_bytes()))
    }
}

/// The message payload of a request body: a JSON object as received, byte for byte;
/// anything else (a form post, text, bytes) inside an object that says what it was:
/// `{"contentType": …, "body": "<text>"}`, or `"bodyBase64"` when it is not UTF-8.
pub fn payload_of(content_type: Option<&str>, body: &[u8]) -> String {
    let is_object = serde_json::from_slice::<Value>(body).is_ok_and(|v| v.is_object());
    if is_object {
        if let Ok(text) = std::str::from_utf8(body) {
            return text.to_owned();
        }
    }
    let mut wrapped = serde_json::Map::new();
    wrapped.insert(
        "contentType".into(),
        content_type.map_or(Value::Null, Into::into),
    );
    match std::str::from_utf8(body) {
        Ok(text) => wrapped.insert("body".into(), text.into()),
        Err(_) => {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(body);
            wrapped.insert("bodyBase64".into(), encoded.into())
        }
    };
    Value::Object(wrapped).to_string()
}

#[cfg(test)]
mod tests;

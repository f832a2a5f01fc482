//! What the broker destinations share: the address guard (the host is resolved here,
//! checked against the delivery policy, and the connection is made to the checked address,
//! as the HTTP client's resolver does), their connection cache, and the headers every
//! broker message carries.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use herald_core::destination::{DeliveryError, DeliveryRequest};
use herald_core::model::AttemptErrorKind;
use herald_core::network::AddressPolicy;
use herald_core::signing::signature_header;
use url::Url;

/// The first address of `host` that deliveries may reach.
pub async fn permitted_address(
    policy: &AddressPolicy,
    host: &str,
    port: u16,
) -> Result<SocketAddr, DeliveryError> {
    // `[::1]` in a URL is the host `::1` to the resolver.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| DeliveryError::new(AttemptErrorKind::Dns, format!("resolving {bare}: {e}")))?
        .collect();
    found
        .iter()
        .find(|a| policy.permits(a.ip()))
        .copied()
        .ok_or_else(|| {
            DeliveryError::new(
                AttemptErrorKind::Blocked,
                format!(
                    "{bare} resolves only to addresses deliveries may not reach \
                     (private, loopback, link-local…)"
                ),
            )
        })
}

/// Checks that every address of `host` is one deliveries may reach, for clients that
/// resolve the name again themselves (TLS connections that verify the name): then no
/// answer they can get from the same records is refused.
pub async fn all_addresses_permitted(
    policy: &AddressPolicy,
    host: &str,
    port: u16,
) -> Result<SocketAddr, DeliveryError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let first = permitted_address(policy, host, port).await?;
    let all = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| DeliveryError::new(AttemptErrorKind::Dns, format!("resolving {bare}: {e}")))?;
    for addr in all {
        if !policy.permits(addr.ip()) {
            return Err(DeliveryError::new(
                AttemptErrorKind::Blocked,
                format!(
                    "{bare} resolves to {}, which deliveries may not reach",
                    addr.ip()
                ),
            ));
        }
    }
    Ok(first)
}

/// `host:port` of an address, as connection strings write it.
pub fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Open connections to brokers, one per connection key (scheme, credentials, host, port),
/// made on first use and dropped after a failure so the next attempt connects afresh. Each
/// key connects on its own: a broker that is slow to answer delays only its endpoints.
pub struct Connections<C> {
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<C>>>>>,
}

/// Past this many keys, idle entries are dropped and reconnect when next used.
const MAX_CONNECTIONS: usize = 1_000;

impl<C: Clone> Connections<C> {
    pub fn new() -> Self {
        Self {
            slots: std::sync::Mutex::default(),
        }
    }

    /// The open connection for `key`, or a new one from `connect`.
    pub async fn get<F, Fut>(&self, key: &str, connect: F) -> Result<C, DeliveryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, DeliveryError>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.len() >= MAX_CONNECTIONS && !slots.contains_key(key) {
                slots.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
            slots.entry(key.to_owned()).or_default().clone()
        };
        let mut open = slot.lock().await;
        if let Some(connection) = open.as_ref() {
            return Ok(connection.clone());
        }
        let connection = connect().await?;
        *open = Some(connection.clone());
        Ok(connection)
    }

    /// Drops the connection for `key` after it failed.
    pub fn forget(&self, key: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.remove(key);
    }
}

/// The part of a broker URL that names a connection: everything before the path.
pub fn connection_key(url: &Url) -> String {
    let mut base = url.clone();
    base.set_path("");
    base.set_query(None);
    base.set_fragment(None);
    base.into()
}

/// Headers every broker message carries: the Standard Webhooks `webhook-id` (for
/// de-duplication), `webhook-timestamp` and `webhook-signature` (so consumers can verify
/// it as they would an HTTP webhook), the event type, and the template's headers.
pub fn message_headers(req: &DeliveryRequest) -> Vec<(String, String)> {
    let timestamp = req.attempted_at.timestamp();
    let secrets = req.endpoint.signing_secrets(req.attempted_at);
    let signature = signature_header(secrets, &req.msg_id, timestamp, req.body().as_bytes());
    // Template headers pass only as HTTP would take them: visible ASCII names of at most
    // 255 bytes (an AMQP field name's limit), values without control characters (a line
    // break would corrupt a NATS header block), never Herald's own.
    let fit = |(name, value): &(String, String)| {
        !name.is_empty()
            && name.len() <= 255
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            && !value.chars().any(char::is_control)
            && !name.to_ascii_lowercase().starts_with("webhook-")
            && !name.eq_ignore_ascii_case("nats-msg-id")
    };
    let mut headers: Vec<(String, String)> = req
        .rendered
        .iter()
        .flat_map(|r| r.headers.clone())
        .filter(fit)
        .collect();
    headers.extend([
        ("webhook-id".to_owned(), req.msg_id.clone()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), signature),
        ("webhook-event-type".to_owned(), req.event_type.clone()),
    ]);
    headers
}

/// The user and password written in a URL, percent-decoded.
pub fn credentials(url: &Url) -> Option<(String, String)> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    Some((
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::destination::Rendered;

    #[test]
    fn template_headers_that_would_corrupt_a_message_or_pose_as_herald_are_dropped() {
        let endpoint = herald_core::conformance::endpoint("app_1", None);
        let headers = [
            ("x-fine", "ok"),
            ("x-broken", "line\r\nInjected: yes"),
            ("bad name", "v"),
            ("webhook-id", "forged"),
            ("Nats-Msg-Id", "forged"),
        ];
        let req = DeliveryRequest {
            msg_id: "msg_1".into(),
            event_type: "a".into(),
            payload: "{}".into(),
            endpoint: Arc::new(endpoint),
            attempted_at: chrono::Utc::now(),
            traceparent: None,
            rendered: Some(Rendered {
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                ..Rendered::default()
            }),
        };
        let sent = message_headers(&req);
        let names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-fine",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "webhook-event-type"
            ]
        );
        assert_eq!(sent[1].1, "msg_1");
    }

    #[test]
    fn connection_keys_and_credentials_come_from_the_url() {
        let url = Url::parse("nats://us%40er:p%2Fw@broker.example:4222/a.b?x=1").unwrap();
        assert_eq!(
            connection_key(&url),
            "nats://us%40er:p%2Fw@broker.example:4222"
        );
        assert_eq!(
            credentials(&url),
            Some(("us@er".to_owned(), "p/w".to_owned()))
        );
        assert_eq!(credentials(&Url::parse("redis://h/s").unwrap()), None);
    }
}

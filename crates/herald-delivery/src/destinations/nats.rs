//! NATS JetStream: `nats://[user:password@]host[:port]/subject` publishes each event on the
//! subject and waits for the stream's acknowledgement, so a delivery counts only once a
//! stream has stored it.
//!
//! `Nats-Msg-Id` is `<message id>.<endpoint id>`, so JetStream drops a redelivery within
//! the stream's duplicate window; the `webhook-*` headers let consumers verify and
//! de-duplicate beyond it.
//! The ack (stream, sequence) is the attempt's response.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use herald_core::destination::{
    DeliveryError, DeliveryOutcome, DeliveryRequest, Destination, BROKER_ACCEPTED,
};
use herald_core::model::AttemptErrorKind;
use herald_core::network::AddressPolicy;
use url::Url;

use super::guard::{
    connection_key, credentials, host_port, message_headers, permitted_address, Connections,
};

const DEFAULT_PORT: u16 = 4222;

/// The subject of a `nats://` URL.
fn subject(url: &Url) -> Result<&str, String> {
    let subject = url.path().trim_start_matches('/');
    let valid = !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token.contains(|c: char| c.is_whitespace() || c == '%')
        });
    if valid {
        Ok(subject)
    } else {
        Err("must end in a subject without wildcards (nats://host:4222/orders.created)".into())
    }
}

/// Checks a `nats://` URL: a host and a subject.
pub fn check(url: &Url) -> Result<(), String> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name the NATS server's host".into());
    }
    if url.query().is_some() {
        return Err("takes no query parameters".into());
    }
    subject(url).map(drop)
}

/// Publishes to NATS JetStream.
pub struct NatsDestination {
    policy: Arc<AddressPolicy>,
    timeout: Duration,
    clients: Connections<jetstream::Context>,
}

impl NatsDestination {
    pub fn new(policy: Arc<AddressPolicy>, timeout: Duration) -> Self {
        Self {
            policy,
            timeout,
            clients: Connections::new(),
        }
    }

    async fn connect(&self, url: &Url) -> Result<jetstream::Context, DeliveryError> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let addr = permitted_address(&self.policy, host, port).await?;
        let mut options = async_nats::ConnectOptions::new()
            // A server may advertise other servers to reconnect to; they would bypass the
            // address check, so only the checked address is ever used.
            .ignore_discovered_servers()
            .connection_timeout(self.timeout)
            .name(concat!("herald/", env!("CARGO_PKG_VERSION")));
        if let Some((user, password)) = credentials(url) {
            options = options.user_and_password(user, password);
        }
        let client = options
            .connect(format!("nats://{}", host_port(addr)))
            .await
            .map_err(|e| DeliveryError::new(AttemptErrorKind::Connection, format!("NATS: {e}")))?;
        Ok(jetstream::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client))
    }

    async fn publish(&self, req: &DeliveryRequest) -> Result<DeliveryOutcome, DeliveryError> {
        let url = Url::parse(&req.endpoint.url)
            .map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e.to_string()))?;
        let subject = subject(&url)
            .map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e))?
            .to_owned();
        let key = connection_key(&url);
        let js = self.clients.get(&key, || self.connect(&url)).await?;
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in message_headers(req) {
            headers.insert(name.as_str(), value.as_str());
        }
        // Per message and endpoint: two endpoints publishing into one stream are two
        // messages to it, while a retry of the same delivery is dropped as a duplicate.
        // Set last, so that no template header can replace it.
        let dedup_id = format!("{}.{}", req.msg_id, req.endpoint.id);
        headers.insert("Nats-Msg-Id", dedup_id.as_str());
        let body = req.body().as_bytes().to_vec();
        let published = async {
            js.publish_with_headers(subject, headers, body.into())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        let ack = match published.await {
            Ok(ack) => ack,
            Err(e) => {
                // The connection reconnects on its own, but a new one costs little and
                // never leaves an endpoint on a connection that went bad.
                self.clients.forget(&key);
                return Err(DeliveryError::new(
                    AttemptErrorKind::Connection,
                    format!("NATS JetStream did not acknowledge: {e}"),
                ));
            }
        };
        Ok(DeliveryOutcome {
            body: serde_json::json!({
                "stream": ack.stream,
                "sequence": ack.sequence,
                "duplicate": ack.duplicate,
            })
            .to_string(),
            status_code: Some(BROKER_ACCEPTED),
            ..DeliveryOutcome::default()
        })
    }
}

#[async_trait]
impl Destination for NatsDestination {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        self.publish(req).await.unwrap_or_else(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_literal() {
        let ok = |u: &str| check(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("nats://localhost/orders.created"));
        assert!(ok("nats://user:pw@localhost:4222/a"));
        assert!(!ok("nats://localhost/"));
        assert!(!ok("nats://localhost/orders.*"));
        assert!(!ok("nats://localhost/orders.>"));
        assert!(!ok("nats://localhost/orders..x"));
        assert!(!ok("nats://localhost/a?x=1"));
    }
}

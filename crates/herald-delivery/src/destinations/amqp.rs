//! RabbitMQ (AMQP 0-9-1):
//! `amqp://[user:password@]host[:port]/[vhost]?exchange=events&routing_key=orders` publishes
//! each event persistently with publisher confirms, so a delivery counts only once the
//! broker has taken responsibility for it.
//!
//! The routing key defaults to the event type, the exchange to the default exchange.
//! Publishes are `mandatory`: a message no queue is bound to receive comes back, and the
//! attempt fails (and is retried) instead of vanishing. The message id is the AMQP
//! `message_id`, and the `webhook-*` headers are message headers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::destination::{
    DeliveryError, DeliveryOutcome, DeliveryRequest, Destination, BROKER_ACCEPTED,
};
use herald_core::model::AttemptErrorKind;
use herald_core::network::AddressPolicy;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use url::Url;

use super::guard::{all_addresses_permitted, message_headers, permitted_address, Connections};

/// The longest AMQP short string (exchange, routing key): 255 bytes.
const MAX_SHORT: usize = 255;

/// Where a URL's messages go.
struct Route {
    exchange: String,
    /// `None`: the event type.
    routing_key: Option<String>,
}

fn route(url: &Url) -> Result<Route, String> {
    let mut route = Route {
        exchange: String::new(),
        routing_key: None,
    };
    for (name, value) in url.query_pairs() {
        if value.len() > MAX_SHORT {
            return Err(format!("`{name}` is longer than {MAX_SHORT} bytes"));
        }
        match name.as_ref() {
            "exchange" => route.exchange = value.into_owned(),
            "routing_key" => route.routing_key = Some(value.into_owned()),
            other => {
                return Err(format!(
                    "knows no parameter `{other}` (only exchange and routing_key)"
                ))
            }
        }
    }
    Ok(route)
}

/// Checks an `amqp://` URL: a host, and only the `exchange` and `routing_key` parameters.
pub fn check(url: &Url) -> Result<(), String> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name the AMQP broker's host".into());
    }
    route(url).map(drop)
}

/// An open connection and its confirming channel.
#[derive(Clone)]
struct Link {
    _connection: Arc<Connection>,
    channel: Channel,
}

/// Publishes to RabbitMQ.
pub struct AmqpDestination {
    policy: Arc<AddressPolicy>,
    timeout: Duration,
    links: Connections<Link>,
}

impl AmqpDestination {
    pub fn new(policy: Arc<AddressPolicy>, timeout: Duration) -> Self {
        Self {
            policy,
            timeout,
            links: Connections::new(),
        }
    }

    async fn connect(&self, url: &Url) -> Result<Link, DeliveryError> {
        let tls = url.scheme() == "amqps";
        let host = url.host_str().unwrap_or_default();
        let port = url.port().unwrap_or(if tls { 5671 } else { 5672 });
        // Plain connections go to the checked address. TLS ones need the name to verify the
        // certificate, and lapin resolves it again: every address it has must be permitted.
        let addr = if tls {
            all_addresses_permitted(&self.policy, host, port).await?
        } else {
            permitted_address(&self.policy, host, port).await?
        };
        let mut target = url.clone();
        target.set_query(None);
        if !tls {
            target.set_ip_host(addr.ip()).map_err(|()| {
                DeliveryError::new(AttemptErrorKind::Other, "AMQP: the URL takes no address")
            })?;
            let _ = target.set_port(Some(addr.port()));
        }
        let failed = |e: lapin::Error| {
            DeliveryError::new(AttemptErrorKind::Connection, format!("AMQP: {e}"))
        };
        let open = async {
            let connection = Connection::connect(target.as_str(), ConnectionProperties::default())
                .await
                .map_err(failed)?;
            let channel = connection.create_channel().await.map_err(failed)?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(failed)?;
            Ok(Link {
                _connection: Arc::new(connection),
                channel,
            })
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .map_err(|_| {
                DeliveryError::new(AttemptErrorKind::Timeout, "AMQP: connecting timed out")
            })?
    }

    async fn publish(&self, req: &DeliveryRequest) -> Result<DeliveryOutcome, DeliveryError> {
        let url = Url::parse(&req.endpoint.url)
            .map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e.to_string()))?;
        let route =
            route(&url).map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e))?;
        let routing_key = route.routing_key.unwrap_or_else(|| req.event_type.clone());
        let mut key = url.clone();
        key.set_query(None);
        let key = key.to_string();
        let link = self.links.get(&key, || self.connect(&url)).await?;
        let properties = properties(req);
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirmed = async {
            link.channel
                .basic_publish(
                    ShortString::from(route.exchange.clone()),
                    ShortString::from(routing_key.clone()),
                    options,
                    req.body().as_bytes(),
                    properties,
                )
                .await?
                .await
        };
        let confirmation = match tokio::time::timeout(self.timeout, confirmed).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(e)) => {
                self.links.forget(&key);
                return Err(DeliveryError::new(
                    AttemptErrorKind::Connection,
                    format!("AMQP: {e}"),
                ));
            }
            Err(_) => {
                self.links.forget(&key);
                return Err(DeliveryError::new(
                    AttemptErrorKind::Timeout,
                    "AMQP: the broker did not confirm in time",
                ));
            }
        };
        answer(confirmation, &route.exchange, &routing_key)
    }
}

/// The message's AMQP properties: its id, event type and content type, the signature
/// headers, persistent delivery.
fn properties(req: &DeliveryRequest) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in message_headers(req) {
        headers.insert(
            ShortString::from(name),
            AMQPValue::LongString(LongString::from(value)),
        );
    }
    let content_type = req
        .rendered
        .as_ref()
        .and_then(|r| r.content_type.clone())
        .unwrap_or_else(|| "application/json".to_owned());
    BasicProperties::default()
        .with_message_id(ShortString::from(req.msg_id.clone()))
        .with_type(ShortString::from(req.event_type.clone()))
        .with_content_type(ShortString::from(content_type))
        .with_timestamp(u64::try_from(req.attempted_at.timestamp()).unwrap_or_default())
        // Persistent: a durable queue keeps it across a broker restart.
        .with_delivery_mode(2)
        .with_headers(headers)
}

/// What the broker's confirmation of a mandatory publish means for the attempt: a plain
/// ack is delivered; an ack that returned the message (no queue bound) or a nack fails.
fn answer(
    confirmation: Confirmation,
    exchange: &str,
    routing_key: &str,
) -> Result<DeliveryOutcome, DeliveryError> {
    let detail =
        |what: &str| format!("{what} (exchange `{exchange}`, routing key `{routing_key}`)");
    match confirmation {
        Confirmation::Ack(None) => Ok(DeliveryOutcome {
            body: serde_json::json!({
                "confirmed": true,
                "exchange": exchange,
                "routingKey": routing_key,
            })
            .to_string(),
            status_code: Some(BROKER_ACCEPTED),
            ..DeliveryOutcome::default()
        }),
        Confirmation::Ack(Some(_)) => Err(DeliveryError::new(
            AttemptErrorKind::Rejected,
            detail("no queue is bound to receive the message"),
        )),
        Confirmation::Nack(_) => Err(DeliveryError::new(
            AttemptErrorKind::Rejected,
            detail("the broker refused the message (nack)"),
        )),
        Confirmation::NotRequested => Err(DeliveryError::new(
            AttemptErrorKind::Other,
            "AMQP: the channel does not confirm publishes",
        )),
    }
}

#[async_trait]
impl Destination for AmqpDestination {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        self.publish(req).await.unwrap_or_else(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_an_exchange_and_a_routing_key() {
        let url = Url::parse("amqp://u:p@localhost/%2f?exchange=ev&routing_key=a.b").unwrap();
        let r = route(&url).unwrap();
        assert_eq!(
            (r.exchange.as_str(), r.routing_key.as_deref()),
            ("ev", Some("a.b"))
        );
        assert!(check(&Url::parse("amqp://localhost").unwrap()).is_ok());
        assert!(check(&Url::parse("amqp://localhost/?queue=x").unwrap()).is_err());
        let long = format!("amqp://localhost/?exchange={}", "x".repeat(256));
        assert!(check(&Url::parse(&long).unwrap()).is_err());
    }
}

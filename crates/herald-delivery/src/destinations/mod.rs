//! Destination kinds, and the router that sends each endpoint's deliveries to its kind.
//!
//! An endpoint's URL scheme names its kind, so every kind is created, filtered, retried and
//! logged through the same endpoint API (and so through Svix's SDKs):
//!
//! | scheme | kind | module |
//! |---|---|---|
//! | `http`, `https` | signed HTTP POST | [`http`] |
//! | `slack+https`, `discord+https`, `teams+https` | chat incoming webhook | [`chat`] |
//! | `mailto` | email over SMTP | [`email`] |
//! | `nats` | NATS JetStream publish | [`nats`] |
//! | `amqp`, `amqps` | RabbitMQ publish with confirms | [`amqp`] |
//! | `redis` | Redis Streams `XADD` | [`redis_stream`] |
//! | `listen` | a `herald listen --server` session's WebSocket | [`listen`] |
//!
//! A new kind is one module implementing [`Destination`] with a `check` of its URLs, and
//! one line in [`Kind`].

pub mod amqp;
pub mod chat;
pub mod email;
mod guard;
pub mod http;
pub mod listen;
pub mod nats;
mod oauth;
pub mod redis_stream;
mod resolver;
pub mod template;
mod tls;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest, Destination};
use herald_core::model::{AttemptErrorKind, EndpointTemplate};
use herald_core::network::AddressPolicy;
use url::Url;

use crate::settings::{DeliveryConfig, EmailConfig};
use chat::ChatService;
use template::TemplateInput;

/// What an endpoint's URL says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http,
    Chat(ChatService),
    Email,
    Nats,
    Amqp,
    Redis,
    Listen,
}

impl Kind {
    /// The kind a URL names, by its scheme.
    pub fn of(url: &Url) -> Option<Self> {
        Self::of_scheme(url.scheme())
    }

    /// The kind a (lower-case) URL scheme names.
    pub fn of_scheme(scheme: &str) -> Option<Self> {
        Some(match scheme {
            "http" | "https" => Self::Http,
            "mailto" => Self::Email,
            "nats" => Self::Nats,
            "amqp" | "amqps" => Self::Amqp,
            "redis" => Self::Redis,
            herald_core::listen::SCHEME => Self::Listen,
            scheme => Self::Chat(ChatService::of_scheme(scheme)?),
        })
    }

    /// Its name in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Chat(_) => "chat",
            Self::Email => "email",
            Self::Nats => "nats",
            Self::Amqp => "amqp",
            Self::Redis => "redis",
            Self::Listen => "listen",
        }
    }

    /// Checks the rest of a URL of this kind; the message is shown to the API caller.
    fn check(self, url: &Url) -> Result<(), String> {
        match self {
            Self::Http => Ok(()),
            Self::Chat(_) => chat::check(url),
            Self::Email => email::check(url),
            Self::Nats => nats::check(url),
            Self::Amqp => amqp::check(url),
            Self::Redis => redis_stream::check(url),
            Self::Listen => listen::check(url),
        }
    }

    /// The template used when the endpoint has none: chat services need their own JSON,
    /// email a subject. Other kinds send the payload as published.
    pub fn default_template(self) -> Option<EndpointTemplate> {
        match self {
            Self::Chat(service) => Some(service.default_template()),
            Self::Email => Some(email::default_template()),
            _ => None,
        }
    }

    /// Which template parts mean something to this kind.
    pub fn template_parts(self) -> &'static [&'static str] {
        match self {
            Self::Http | Self::Listen => &["body", "method", "headers", "contentType"],
            Self::Chat(_) => &["body", "headers"],
            Self::Email => &["body", "subject", "html"],
            Self::Nats | Self::Redis => &["body", "headers"],
            Self::Amqp => &["body", "headers", "contentType"],
        }
    }
}

/// The URL schemes Herald delivers to, for error messages.
const SCHEMES: &str = "http, https, slack+https, discord+https, teams+https, mailto, nats, \
                       amqp, amqps, redis, listen";

/// Checks that an endpoint URL names a destination Herald can deliver to, and how.
pub fn check_url(url: &Url) -> Result<Kind, String> {
    let kind = Kind::of(url).ok_or_else(|| {
        format!(
            "the scheme `{}` is not a destination; use one of: {SCHEMES}",
            url.scheme()
        )
    })?;
    kind.check(url)?;
    Ok(kind)
}

/// Every destination kind behind one [`Destination`]: it renders the endpoint's template,
/// then hands the delivery to the kind its URL names.
pub struct Destinations {
    http: Arc<http::HttpDestination>,
    chat: chat::ChatDestination,
    email: Option<email::EmailDestination>,
    nats: nats::NatsDestination,
    amqp: amqp::AmqpDestination,
    redis: redis_stream::RedisDestination,
    listen: listen::ListenDestination,
    sessions: listen::ListenSessions,
}

impl Destinations {
    /// Every kind, configured by the `[delivery]` settings, and `[email]` if any.
    pub fn new(delivery: &DeliveryConfig, email: Option<&EmailConfig>) -> anyhow::Result<Self> {
        let http = Arc::new(http::HttpDestination::new(delivery)?);
        let policy = Arc::new(AddressPolicy::new(delivery.allowed_networks.clone()));
        let timeout = delivery.timeout;
        let sessions = listen::ListenSessions::default();
        Ok(Self {
            listen: listen::ListenDestination::new(sessions.clone(), http.clone(), timeout),
            sessions,
            chat: chat::ChatDestination::new(http.clone()),
            http,
            email: email.map(email::EmailDestination::new).transpose()?,
            nats: nats::NatsDestination::new(policy.clone(), timeout),
            amqp: amqp::AmqpDestination::new(policy.clone(), timeout),
            redis: redis_stream::RedisDestination::new(policy, timeout),
        })
    }

    /// The HTTP destination, for what only HTTP does (subscription verification).
    pub fn http(&self) -> Arc<http::HttpDestination> {
        self.http.clone()
    }

    /// The `herald listen` sessions attached to this node, for the API's WebSocket route.
    pub fn listen_sessions(&self) -> listen::ListenSessions {
        self.sessions.clone()
    }

    fn kind_destination(&self, kind: Kind) -> Result<&dyn Destination, DeliveryError> {
        Ok(match kind {
            Kind::Http => self.http.as_ref(),
            Kind::Chat(_) => &self.chat,
            Kind::Email => self.email.as_ref().ok_or_else(|| {
                DeliveryError::permanent(
                    AttemptErrorKind::Other,
                    "email delivery is not configured on this server ([email] in its settings)",
                )
            })?,
            Kind::Nats => &self.nats,
            Kind::Amqp => &self.amqp,
            Kind::Redis => &self.redis,
            Kind::Listen => &self.listen,
        })
    }

    async fn route(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        // Parsed, not read as text: a URL stored as `HTTPS://…` names its scheme in
        // lower case only once parsed.
        let kind = Url::parse(&req.endpoint.url)
            .ok()
            .and_then(|url| Kind::of(&url));
        let Some(kind) = kind else {
            return DeliveryError::permanent(
                AttemptErrorKind::Other,
                "the endpoint's URL names no destination Herald knows",
            )
            .into();
        };
        let destination = match self.kind_destination(kind) {
            Ok(d) => d,
            Err(e) => return e.into(),
        };
        let template = req
            .endpoint
            .template
            .clone()
            .or_else(|| kind.default_template());
        let Some(template) = template else {
            return destination.deliver(req).await;
        };
        // Rendering is CPU work bounded by fuel, but not by little: off the async workers,
        // so a heavy template never stalls other deliveries or the API.
        let (event_type, msg_id) = (req.event_type.clone(), req.msg_id.clone());
        let (payload, timestamp) = (req.payload.clone(), req.attempted_at);
        let rendered = tokio::task::spawn_blocking(move || {
            let input = TemplateInput {
                event_type: &event_type,
                msg_id: &msg_id,
                payload: &payload,
                timestamp,
            };
            template::render(&template, &input)
        })
        .await;
        let Ok(rendered) = rendered else {
            return DeliveryError::new(AttemptErrorKind::Template, "rendering the template failed")
                .into();
        };
        match rendered {
            Ok(rendered) => {
                let mut req = req.clone();
                req.rendered = Some(rendered);
                destination.deliver(&req).await
            }
            // The same template and event fail the same way every time: no retries. A
            // fixed template applies to a resend.
            Err(e) => DeliveryError::permanent(AttemptErrorKind::Template, e.to_string()).into(),
        }
    }
}

#[async_trait]
impl Destination for Destinations {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        let started = Instant::now();
        let mut outcome = self.route(req).await;
        outcome.duration = started.elapsed();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<Kind, String> {
        check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn the_scheme_names_the_kind() {
        assert_eq!(check("https://example.com/hook"), Ok(Kind::Http));
        assert_eq!(
            check("slack+https://hooks.slack.com/services/T/B/X"),
            Ok(Kind::Chat(ChatService::Slack))
        );
        assert_eq!(check("mailto:a@example.com,b@example.com"), Ok(Kind::Email));
        assert_eq!(
            check("nats://localhost:4222/events.contacts"),
            Ok(Kind::Nats)
        );
        assert_eq!(
            check("amqp://localhost:5672/%2f?exchange=events&routing_key=x"),
            Ok(Kind::Amqp)
        );
        assert_eq!(
            check("redis://localhost:6379/herald-events"),
            Ok(Kind::Redis)
        );
        let e = check("ftp://example.com").unwrap_err();
        assert!(e.contains("`ftp`") && e.contains("mailto"), "{e}");
    }
}

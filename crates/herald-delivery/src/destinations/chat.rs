//! Chat notifications: an event posted to a Slack, Discord or Microsoft Teams incoming
//! webhook, as that service's message JSON.
//!
//! The URL is the service's webhook URL with the service's name in front of the scheme
//! (`slack+https://hooks.slack.com/services/…`). The body comes from the endpoint's
//! template, or else from the service's default below. Delivery itself is HTTP's: same
//! client, same address guard, same retries.

use std::sync::Arc;

use async_trait::async_trait;
use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest, Destination};
use herald_core::model::{AttemptErrorKind, EndpointTemplate};
use url::Url;

use super::http::HttpDestination;

/// A chat service with incoming webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatService {
    Slack,
    Discord,
    Teams,
}

/// The text every default message shows: the event type, the message id and the payload,
/// pretty-printed and cut short enough for every service's message limit.
const SUMMARY: &str = "{%- set text -%}\
*{{ event_type }}* ({{ msg_id }})\n```\n{{ (payload | tojson(indent=2))[:1500] }}\n```\
{%- endset -%}";

impl ChatService {
    /// The service a URL scheme names (`slack+https` → Slack).
    pub fn of_scheme(scheme: &str) -> Option<Self> {
        let (service, transport) = scheme.split_once('+')?;
        if !matches!(transport, "http" | "https") {
            return None;
        }
        match service {
            "slack" => Some(Self::Slack),
            "discord" => Some(Self::Discord),
            "teams" => Some(Self::Teams),
            _ => None,
        }
    }

    /// The message JSON Herald sends when the endpoint has no template of its own.
    pub fn default_template(self) -> EndpointTemplate {
        let message = match self {
            // https://api.slack.com/messaging/webhooks: `text` in mrkdwn.
            Self::Slack => r#"{"text": {{ text | tojson }}}"#,
            // Discord webhooks: `content`, up to 2,000 characters, markdown.
            Self::Discord => r#"{"content": {{ text[:2000] | tojson }}}"#,
            // Teams workflows: a message carrying one Adaptive Card.
            Self::Teams => {
                r#"{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": {{ text | tojson }}, "wrap": true}]}}]}"#
            }
        };
        EndpointTemplate {
            body: Some(format!("{SUMMARY}{message}")),
            ..EndpointTemplate::default()
        }
    }
}

/// The service's own webhook URL: the endpoint URL without the service's name.
fn webhook_url(url: &Url) -> Option<String> {
    let (_, transport) = url.scheme().split_once('+')?;
    let rest = url.as_str().split_once(':')?.1;
    Some(format!("{transport}:{rest}"))
}

/// Checks a chat endpoint URL: the service's webhook URL must be HTTP(S) with a host.
pub fn check(url: &Url) -> Result<(), String> {
    let inner = webhook_url(url)
        .and_then(|u| Url::parse(&u).ok())
        .ok_or("is not a chat webhook URL (for example slack+https://hooks.slack.com/…)")?;
    if inner.host_str().is_none_or(str::is_empty) {
        return Err("must name the chat service's host".into());
    }
    Ok(())
}

/// Posts rendered chat messages over HTTP.
pub struct ChatDestination {
    http: Arc<HttpDestination>,
}

impl ChatDestination {
    pub fn new(http: Arc<HttpDestination>) -> Self {
        Self { http }
    }
}

#[async_trait]
impl Destination for ChatDestination {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        let target = Url::parse(&req.endpoint.url)
            .ok()
            .and_then(|u| webhook_url(&u));
        match target {
            Some(target) => self.http.deliver_to(&target, req).await,
            None => DeliveryError::permanent(
                AttemptErrorKind::Other,
                "the endpoint's URL is not a chat webhook URL",
            )
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::template::{render, TemplateInput};

    #[test]
    fn the_webhook_url_drops_the_service_name() {
        let url = Url::parse("slack+https://hooks.slack.com/services/T1/B2/x?y=1").unwrap();
        assert_eq!(
            webhook_url(&url).as_deref(),
            Some("https://hooks.slack.com/services/T1/B2/x?y=1")
        );
        assert_eq!(
            ChatService::of_scheme("teams+http"),
            Some(ChatService::Teams)
        );
        assert_eq!(ChatService::of_scheme("slack+ftp"), None);
        assert_eq!(ChatService::of_scheme("irc+https"), None);
    }

    #[test]
    fn every_default_renders_valid_json_that_names_the_event() {
        for service in [ChatService::Slack, ChatService::Discord, ChatService::Teams] {
            let input = TemplateInput {
                event_type: "invoice.paid",
                msg_id: "msg_9",
                payload: r#"{"note": "quotes \" and\nlines", "long": "x"}"#,
                timestamp: chrono::Utc::now(),
            };
            let out = render(&service.default_template(), &input).unwrap();
            let body = out.body.unwrap();
            let json: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{service:?}: {e}: {body}"));
            assert!(
                json.to_string().contains("invoice.paid"),
                "{service:?}: {body}"
            );
        }
    }
}

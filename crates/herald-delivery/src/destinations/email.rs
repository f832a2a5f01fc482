//! Email: an event sent to one or more addresses (`mailto:a@example.com,b@example.com`)
//! through the SMTP server in Herald's `[email]` settings.
//!
//! The subject and the text and HTML parts come from the endpoint's template (or the default
//! below). The SMTP server's reply is the attempt's response: a 2xx reply delivered it, a
//! 4xx reply (try later) is retried, a 5xx reply (refused) fails it at once.

use std::str::FromStr;

use anyhow::Context as _;
use async_trait::async_trait;
use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest, Destination};
use herald_core::model::{AttemptErrorKind, EndpointTemplate};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

use crate::settings::{EmailConfig, SmtpSecurity};

/// The most recipients one email endpoint may have.
const MAX_RECIPIENTS: usize = 50;

/// What an email says when the endpoint has no template of its own.
pub fn default_template() -> EndpointTemplate {
    EndpointTemplate {
        subject: Some("{{ event_type }}".into()),
        body: Some(
            "Event {{ event_type }} ({{ msg_id }}) at {{ timestamp }}:\n\n\
             {{ payload | tojson(indent=2) }}\n"
                .into(),
        ),
        ..EndpointTemplate::default()
    }
}

/// The recipients of a `mailto:` URL.
fn recipients(url: &Url) -> Result<Vec<Address>, String> {
    if url.query().is_some() || url.fragment().is_some() {
        return Err(
            "takes only addresses (mailto:a@example.com,b@example.com); \
                    the subject and body come from the endpoint's template"
                .into(),
        );
    }
    let list: Vec<&str> = url.path().split(',').map(str::trim).collect();
    if list.len() > MAX_RECIPIENTS {
        return Err(format!("names more than {MAX_RECIPIENTS} recipients"));
    }
    list.into_iter()
        .map(|a| Address::from_str(a).map_err(|_| format!("`{a}` is not an email address")))
        .collect()
}

/// Checks a `mailto:` URL: 1 to 50 addresses, separated by commas.
pub fn check(url: &Url) -> Result<(), String> {
    recipients(url).map(drop)
}

/// Sends email through one SMTP server.
pub struct EmailDestination {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailDestination {
    /// A destination sending through the server `config` names.
    pub fn new(config: &EmailConfig) -> anyhow::Result<Self> {
        let from = Mailbox::from_str(&config.from)
            .with_context(|| format!("email.from `{}` is not an address", config.from))?;
        let host = config.host.as_str();
        let builder = match config.security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        let mut builder = builder.timeout(Some(config.timeout));
        if let Some(port) = config.port {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    fn message(&self, req: &DeliveryRequest, to: Vec<Address>) -> Result<Message, DeliveryError> {
        let rendered = req.rendered.clone().unwrap_or_default();
        let subject = rendered.subject.unwrap_or_else(|| req.event_type.clone());
        let text = rendered.body.unwrap_or_else(|| req.payload.to_string());
        let header = |name: &str, value: &str| {
            HeaderName::new_from_ascii(name.to_owned())
                .map(|n| HeaderValue::new(n, value.to_owned()))
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            // One id per message: a resend shows up in the same thread.
            .message_id(Some(format!(
                "<{}@{}>",
                req.msg_id,
                self.from.email.domain()
            )));
        for (name, value) in [
            ("Webhook-Id", &req.msg_id),
            ("X-Event-Type", &req.event_type),
        ] {
            if let Ok(h) = header(name, value) {
                builder = builder.raw_header(h);
            }
        }
        for address in to {
            builder = builder.to(Mailbox::new(None, address));
        }
        let built = match rendered.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html)),
            None => builder.singlepart(SinglePart::plain(text)),
        };
        built.map_err(|e| {
            DeliveryError::permanent(
                AttemptErrorKind::Template,
                format!("building the email: {e}"),
            )
        })
    }

    async fn send(&self, req: &DeliveryRequest) -> Result<DeliveryOutcome, DeliveryError> {
        let url = Url::parse(&req.endpoint.url)
            .map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e.to_string()))?;
        let to =
            recipients(&url).map_err(|e| DeliveryError::permanent(AttemptErrorKind::Other, e))?;
        let message = self.message(req, to)?;
        match self.transport.send(message).await {
            Ok(reply) => Ok(DeliveryOutcome {
                status_code: reply.code().to_string().parse().ok(),
                body: reply.message().collect::<Vec<_>>().join("\n"),
                ..DeliveryOutcome::default()
            }),
            Err(e) => Ok(DeliveryOutcome {
                // The reply code stays visible in the attempt log, as an HTTP status would.
                status_code: e.status().and_then(|c| c.to_string().parse().ok()),
                ..classify(&e).into()
            }),
        }
    }
}

/// What an SMTP failure means for the delivery: 5xx replies are final, the rest retried.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryError {
    let code = e.status().map(|c| c.to_string());
    let detail = match &code {
        Some(code) => format!("the SMTP server answered {code}: {e}"),
        None => format!("SMTP: {e}"),
    };
    if e.is_permanent() {
        DeliveryError::permanent(AttemptErrorKind::Rejected, detail)
    } else if e.is_timeout() {
        DeliveryError::new(AttemptErrorKind::Timeout, detail)
    } else if e.is_tls() {
        DeliveryError::new(AttemptErrorKind::Tls, detail)
    } else if e.is_transient() {
        DeliveryError::new(AttemptErrorKind::Other, detail)
    } else {
        DeliveryError::new(AttemptErrorKind::Connection, detail)
    }
}

#[async_trait]
impl Destination for EmailDestination {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        self.send(req).await.unwrap_or_else(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_urls_list_addresses() {
        let ok = Url::parse("mailto:a@example.com,b@example.org").unwrap();
        assert_eq!(recipients(&ok).unwrap().len(), 2);
        for bad in [
            "mailto:not-an-address",
            "mailto:a@example.com?subject=hi",
            "mailto:",
        ] {
            assert!(check(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
        let many = format!("mailto:{}", vec!["a@example.com"; 51].join(","));
        assert!(check(&Url::parse(&many).unwrap()).is_err());
    }
}

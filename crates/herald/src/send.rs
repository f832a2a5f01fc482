//! `herald send`: publish a message to a running Herald, and with `--wait` report what
//! each endpoint answered to its first attempt.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::{json, Value};

use crate::remote::{Remote, ServerArgs};
use crate::signature::{read_payload, Verdict};

/// How often `--wait` asks for the attempts.
const POLL_EVERY: Duration = Duration::from_millis(200);

#[derive(Args)]
#[command(
    after_help = "Prints the message id. With --wait, one line per endpoint, and exits 0 \
only if every endpoint accepted the message (1 otherwise)."
)]
pub struct SendArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The application (id or uid).
    #[arg(long)]
    app: String,
    /// The event type.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    event_type: String,
    /// The payload, a JSON object: text, `@FILE`, or `-` for standard input [default: {}].
    #[arg(long)]
    data: Option<String>,
    /// Your id for the event (unique per application).
    #[arg(long)]
    event_id: Option<String>,
    /// Channels (comma-separated).
    #[arg(long, value_delimiter = ',')]
    channels: Option<Vec<String>>,
    /// Sent as `idempotency-key`: the same key publishes once.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Wait for each endpoint's first attempt (at most this long; `--wait` alone: 30s).
    #[arg(long, num_args = 0..=1, default_missing_value = "30s", value_parser = humantime::parse_duration)]
    wait: Option<Duration>,
}

/// Publishes, prints the id, and with `--wait` each endpoint's outcome.
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let data = read_payload(args.data.as_deref())?.unwrap_or_else(|| b"{}".to_vec());
    let payload: Value = serde_json::from_slice(&data).context("--data must be JSON")?;
    let mut body = json!({"eventType": args.event_type, "payload": payload});
    if let Some(id) = &args.event_id {
        body["eventId"] = json!(id);
    }
    if let Some(channels) = &args.channels {
        body["channels"] = json!(channels);
    }
    let headers: Vec<(&str, &str)> = args
        .idempotency_key
        .as_deref()
        .map(|key| ("idempotency-key", key))
        .into_iter()
        .collect();
    let app = &args.app;
    let msg = remote
        .post(&format!("/app/{app}/msg"), &body, &headers)
        .await?;
    let Some(msg_id) = msg["id"].as_str() else {
        bail!("the server's answer has no message id: {msg}");
    };
    println!("{msg_id}");
    let Some(wait) = args.wait else {
        return Ok(());
    };
    let outcomes = wait_for_attempts(&remote, app, msg_id, wait).await?;
    if outcomes.is_empty() {
        println!("no endpoint receives this message");
    }
    let mut all_delivered = true;
    for outcome in outcomes.values() {
        println!("{}", outcome.line());
        all_delivered &= outcome.delivered;
    }
    if all_delivered {
        Ok(())
    } else {
        Err(Verdict(1).into())
    }
}

/// What one endpoint made of the message.
struct Outcome {
    endpoint: String,
    url: String,
    delivered: bool,
    /// The latest attempt, if any.
    attempt: Option<Value>,
    next_attempt: Option<String>,
}

impl Outcome {
    fn line(&self) -> String {
        let what = match &self.attempt {
            None => "no attempt yet".to_owned(),
            Some(a) => {
                let status = match a["responseStatusCode"].as_i64() {
                    Some(code) if code > 0 => code.to_string(),
                    _ => a["errorKind"].as_str().unwrap_or("no answer").to_owned(),
                };
                let verdict = if self.delivered {
                    "delivered"
                } else {
                    "failed"
                };
                match &self.next_attempt {
                    Some(at) if !self.delivered => format!("{status} {verdict}, retrying at {at}"),
                    _ => format!("{status} {verdict}"),
                }
            }
        };
        format!("{} {} {what}", self.endpoint, self.url)
    }
}

/// Asks until every endpoint has had an attempt, or `wait` is over; each endpoint's
/// outcome, by endpoint id.
async fn wait_for_attempts(
    remote: &Remote,
    app: &str,
    msg_id: &str,
    wait: Duration,
) -> anyhow::Result<BTreeMap<String, Outcome>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let outcomes = outcomes(remote, app, msg_id).await?;
        let settled = outcomes.values().all(|o| o.attempt.is_some());
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(outcomes);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn outcomes(
    remote: &Remote,
    app: &str,
    msg_id: &str,
) -> anyhow::Result<BTreeMap<String, Outcome>> {
    let endpoints = remote
        .get(&format!("/app/{app}/msg/{msg_id}/endpoint"))
        .await?;
    let attempts = remote
        .get(&format!("/app/{app}/attempt/msg/{msg_id}"))
        .await?;
    let mut outcomes = BTreeMap::new();
    for e in endpoints["data"].as_array().into_iter().flatten() {
        let id = e["id"].as_str().unwrap_or_default().to_owned();
        outcomes.insert(
            id.clone(),
            Outcome {
                endpoint: id,
                url: e["url"].as_str().unwrap_or_default().to_owned(),
                delivered: e["status"] == 0,
                attempt: None,
                next_attempt: e["nextAttempt"].as_str().map(str::to_owned),
            },
        );
    }
    // Newest first: the first attempt seen for an endpoint is its latest, and says whether
    // it delivered (the endpoint list, read a moment before, may still say "sending").
    for a in attempts["data"].as_array().into_iter().flatten() {
        let endpoint = a["endpointId"].as_str().unwrap_or_default();
        if let Some(outcome) = outcomes.get_mut(endpoint) {
            if outcome.attempt.is_none() {
                outcome.delivered = a["status"] == 0;
                outcome.attempt = Some(a.clone());
            }
        }
    }
    Ok(outcomes)
}

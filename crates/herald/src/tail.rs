//! `herald tail`: the attempts an application's endpoints get, as they are made, one line
//! each (or one JSON object with `--json`).
//!
//! It reads the attempt lists of the API every second (Svix's shape has no stream of
//! attempts), remembering what it has printed. An endpoint with more than a page (250) of
//! attempts in one second shows only the newest page of that second.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};

use crate::remote::{Remote, ServerArgs};

const POLL_EVERY: Duration = Duration::from_secs(1);
/// Endpoints are listed again this often (in rounds), to see new ones.
const ENDPOINTS_EVERY: u32 = 10;
/// How far back each round reads again: an attempt is listed under the time it started,
/// and may be recorded up to a delivery timeout (15 s by default) later.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(90);

#[derive(Args)]
pub struct TailArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The application (id or uid).
    #[arg(long)]
    app: String,
    /// Only this endpoint (id or uid).
    #[arg(long)]
    endpoint: Option<String>,
    /// Only failed attempts.
    #[arg(long)]
    failed: bool,
    /// Start this far back (e.g. 1h) instead of now.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Prints attempts until Ctrl-C.
pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let remote = args.server.remote()?;
    let app = args.app.clone();
    // Checked now, so a wrong app or token is an error, not silence.
    remote.get(&format!("/app/{app}")).await?;
    let mut from = Utc::now() - chrono::Duration::from_std(args.since.unwrap_or_default())?;
    // What has been printed, by attempt id, with its time (forgotten once out of the window).
    let mut printed: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut event_types: HashMap<String, String> = HashMap::new();
    let mut endpoints = Vec::new();
    let mut round = 0u32;
    loop {
        if round.is_multiple_of(ENDPOINTS_EVERY) {
            endpoints = match &args.endpoint {
                Some(one) => vec![one.clone()],
                None => endpoint_ids(&remote, &app).await?,
            };
        }
        let mut new = Vec::new();
        for endpoint in &endpoints {
            let mut path = format!(
                "/app/{app}/attempt/endpoint/{endpoint}?with_content=false&limit=250&after={}",
                from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            if args.failed {
                path.push_str("&status=2");
            }
            let page = remote.get(&path).await?;
            for attempt in page["data"].as_array().into_iter().flatten() {
                let id = attempt["id"].as_str().unwrap_or_default().to_owned();
                let at = attempt["timestamp"].as_str().and_then(|t| t.parse().ok());
                if printed.insert(id, at.unwrap_or(from)).is_none() {
                    new.push(attempt.clone());
                }
            }
        }
        // Oldest first; attempt ids sort by time.
        new.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        for attempt in &new {
            let msg_id = attempt["msgId"].as_str().unwrap_or_default().to_owned();
            if !event_types.contains_key(&msg_id) {
                let msg = remote
                    .get(&format!("/app/{app}/msg/{msg_id}?with_content=false"))
                    .await;
                let event_type = msg
                    .ok()
                    .and_then(|m| m["eventType"].as_str().map(str::to_owned));
                event_types.insert(msg_id.clone(), event_type.unwrap_or_default());
            }
            println!("{}", line(attempt, &event_types[&msg_id], args.json));
        }
        // Read again a window back: an attempt recorded late, with an earlier time, still
        // shows; what was printed is remembered for that window.
        from = Utc::now() - OVERLAP;
        printed.retain(|_, at| *at >= from);
        round = round.wrapping_add(1);
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn endpoint_ids(remote: &Remote, app: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut iterator: Option<String> = None;
    loop {
        let mut path = format!("/app/{app}/endpoint?limit=250");
        if let Some(it) = &iterator {
            path.push_str(&format!("&iterator={it}"));
        }
        let page = remote.get(&path).await?;
        for e in page["data"].as_array().into_iter().flatten() {
            ids.extend(e["id"].as_str().map(str::to_owned));
        }
        iterator = page["iterator"].as_str().map(str::to_owned);
        if page["done"] == true || iterator.is_none() {
            return Ok(ids);
        }
    }
}

/// One attempt as a line of text or JSON.
fn line(attempt: &Value, event_type: &str, as_json: bool) -> String {
    let status = attempt["responseStatusCode"].as_i64().unwrap_or(0);
    let outcome = if attempt["status"] == 0 {
        "ok"
    } else {
        "failed"
    };
    if as_json {
        let mut out = json!({
            "timestamp": attempt["timestamp"],
            "attemptId": attempt["id"],
            "msgId": attempt["msgId"],
            "eventType": event_type,
            "endpointId": attempt["endpointId"],
            "outcome": outcome,
            "responseStatusCode": status,
            "durationMs": attempt["responseDurationMs"],
            "trigger": attempt["trigger"],
        });
        if let Some(kind) = attempt["errorKind"].as_str() {
            out["errorKind"] = json!(kind);
        }
        return out.to_string();
    }
    let answer = match attempt["errorKind"].as_str() {
        Some(kind) if status == 0 => kind.to_owned(),
        _ => status.to_string(),
    };
    format!(
        "{} {} {event_type} {} {answer} {outcome} {} ms",
        attempt["timestamp"].as_str().unwrap_or_default(),
        attempt["msgId"].as_str().unwrap_or_default(),
        attempt["endpointId"].as_str().unwrap_or_default(),
        attempt["responseDurationMs"].as_i64().unwrap_or(0),
    )
}

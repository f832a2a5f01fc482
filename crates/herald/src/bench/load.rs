//! Setting up the applications and endpoints, and publishing the messages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::receiver::Receivers;
use super::target::Target;

/// How messages are published.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as this many concurrent publishers can.
    Saturate { concurrency: u32 },
    /// This many messages a second, whatever the server's answers take.
    Rate { per_second: u32 },
}

/// A client of the server's API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    token: String,
}

impl Api {
    pub fn new(target: &Target) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            bases: Arc::new(target.bases.clone()),
            token: target.token.clone(),
        })
    }

    async fn post(&self, node: usize, path: &str, body: &Value) -> anyhow::Result<Value> {
        let base = &self.bases[node % self.bases.len()];
        let response = self
            .http
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{path} answered {status}: {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Creates `apps` applications with `endpoints` endpoints each; returns the application ids.
pub async fn setup(
    api: &Api,
    receivers: &Receivers,
    apps: u32,
    endpoints: u32,
) -> anyhow::Result<Vec<String>> {
    let run = herald_core::ids::IdKind::Task.new_id().to_lowercase();
    let mut ids = Vec::new();
    for a in 0..apps {
        let app = api
            .post(
                0,
                "/app",
                &json!({"name": format!("bench {a}"), "uid": format!("bench-{run}-{a}")}),
            )
            .await
            .context("creating an application")?;
        let id = app["id"].as_str().context("an application id")?.to_owned();
        for e in 0..endpoints {
            api.post(
                0,
                &format!("/app/{id}/endpoint"),
                &json!({"url": receivers.url(a, e)}),
            )
            .await
            .context("creating an endpoint")?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// What publishing measured.
pub struct Published {
    /// When each message's publish request was sent, by number (`None`: refused).
    pub sent: Vec<Option<Instant>>,
    pub started: Instant,
    pub finished: Instant,
    pub refused: u64,
}

/// Publishes `messages` messages, numbered 0…, spread over the applications and nodes.
pub async fn publish(api: &Api, apps: &[String], messages: u64, pace: Pace) -> Published {
    let sent: Arc<Vec<std::sync::Mutex<Option<Instant>>>> =
        Arc::new((0..messages).map(|_| std::sync::Mutex::new(None)).collect());
    let refused = Arc::new(AtomicU64::new(0));
    let apps = Arc::new(apps.to_vec());
    let started = Instant::now();
    let one = {
        let (api, sent, refused, apps) = (api.clone(), sent.clone(), refused.clone(), apps.clone());
        move |n: u64| {
            let (api, sent, refused, apps) =
                (api.clone(), sent.clone(), refused.clone(), apps.clone());
            async move {
                let app = &apps[(n % apps.len() as u64) as usize];
                let body = json!({"eventType": "bench.event", "payload": {"n": n, "padding": "herald-bench"}});
                let at = Instant::now();
                match api
                    .post(n as usize, &format!("/app/{app}/msg"), &body)
                    .await
                {
                    Ok(_) => *sent[n as usize].lock().unwrap_or_else(|e| e.into_inner()) = Some(at),
                    Err(e) => {
                        if refused.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("a publish failed: {e:#}");
                        }
                    }
                }
            }
        }
    };
    match pace {
        Pace::Saturate { concurrency } => {
            let next = Arc::new(AtomicU64::new(0));
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..concurrency.max(1) {
                let (next, one) = (next.clone(), one.clone());
                workers.spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= messages {
                            break;
                        }
                        one(n).await;
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
        Pace::Rate { per_second } => {
            // Publishes on a fixed schedule; a bound on requests in flight keeps a stalled
            // server from piling up unbounded work in the bench itself.
            let in_flight = Arc::new(Semaphore::new(4096));
            let mut ticker =
                tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1))));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..messages {
                ticker.tick().await;
                let permit = in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("never closed");
                let one = one.clone();
                tasks.spawn(async move {
                    one(n).await;
                    drop(permit);
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    let finished = Instant::now();
    let sent = sent
        .iter()
        .map(|s| *s.lock().unwrap_or_else(|e| e.into_inner()))
        .collect();
    Published {
        sent,
        started,
        finished,
        refused: refused.load(Ordering::Relaxed),
    }
}

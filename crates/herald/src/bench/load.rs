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
        self.post_at(node, &format!("/api/v1{path}"), body).await
    }

    /// A POST to `path` on the node, outside `/api/v1` too (the ingest API).
    async fn post_at(&self, node: usize, path: &str, body: &Value) -> anyhow::Result<Value> {
        let base = &self.bases[node % self.bases.len()];
        let response = self
            .http
            .post(format!("{base}{path}"))
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

/// What each request of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pattern {
    /// Messages published through the API (`POST /app/{app}/msg`).
    Publish,
    /// Signed GitHub deliveries to an inbound source's receive URL, published on to the
    /// source's application's endpoints.
    Ingest,
    /// Synchronous calls (`POST /app/{app}/call`) to one endpoint; each answer is timed.
    Call,
}

/// The requests of a run, set up on the server.
#[derive(Clone)]
pub enum Workload {
    Publish {
        apps: Arc<Vec<String>>,
    },
    /// `path` is the source's receive path; each delivery is signed with `secret`.
    Ingest {
        path: String,
        secret: String,
    },
    Call {
        app: String,
    },
}

/// The event type synchronous calls are made with; the bench's endpoints name it.
const CALL_TYPE: &str = "bench.call";

/// A payload filter of the size providers write (a few conditions, a nested `$or`), which
/// every bench message meets: with it the deliveries are the same, and what differs is the
/// filter's cost.
pub fn bench_filter() -> Value {
    json!({
        "padding": "herald-bench",
        "n": {"$gte": 0},
        "$or": [{"kind": {"$exists": false}}, {"kind": {"$in": ["a", "b"]}}]
    })
}

impl Workload {
    /// Creates what `pattern` needs: applications (or a source and its application) with
    /// `endpoints` endpoints each, at the bench's receivers; with `payload_filter`, each
    /// published-to endpoint has [`bench_filter`].
    pub async fn setup(
        pattern: Pattern,
        api: &Api,
        receivers: &Receivers,
        (apps, endpoints): (u32, u32),
        payload_filter: bool,
    ) -> anyhow::Result<Self> {
        match pattern {
            Pattern::Publish => {
                let extra = match payload_filter {
                    true => json!({ "payloadFilter": bench_filter() }),
                    false => json!({}),
                };
                let ids = setup(api, receivers, apps, endpoints, &extra).await?;
                Ok(Self::Publish {
                    apps: Arc::new(ids),
                })
            }
            Pattern::Ingest => {
                let secret = format!("bench-{}", herald_core::ids::IdKind::Token.new_id());
                let source = api
                    .post_at(
                        0,
                        "/ingest/api/v1/source",
                        &json!({"name": "bench", "type": "github", "config": {"secret": secret}}),
                    )
                    .await
                    .context("creating an inbound source")?;
                let app = source["appId"]
                    .as_str()
                    .context("the source's application")?;
                add_endpoints(api, receivers, app, 0, endpoints, &json!({})).await?;
                let url = source["ingestUrl"].as_str().context("the ingest URL")?;
                let path = url::Url::parse(url)?.path().to_owned();
                Ok(Self::Ingest { path, secret })
            }
            Pattern::Call => {
                // Endpoints are asked only for types they name; an existing type is fine.
                let _ = api
                    .post(
                        0,
                        "/event-type",
                        &json!({"name": CALL_TYPE, "description": "herald bench calls"}),
                    )
                    .await;
                let filter = json!({"filterTypes": [CALL_TYPE]});
                let ids = setup(api, receivers, 1, endpoints, &filter).await?;
                Ok(Self::Call {
                    app: ids[0].clone(),
                })
            }
        }
    }

    /// Sends request `n` to a node; for a call, how long its answer took.
    async fn send(&self, api: &Api, n: u64) -> anyhow::Result<Option<Duration>> {
        let node = n as usize;
        let payload = json!({"n": n, "padding": "herald-bench"});
        match self {
            Self::Publish { apps } => {
                let app = &apps[(n % apps.len() as u64) as usize];
                let body = json!({"eventType": "bench.event", "payload": payload});
                api.post(node, &format!("/app/{app}/msg"), &body).await?;
                Ok(None)
            }
            Self::Ingest { path, secret } => {
                let body = payload.to_string();
                let signature = herald_inbound::verify::sign_hex(
                    herald_inbound::config::Algorithm::Sha256,
                    secret,
                    &[body.as_bytes()],
                );
                let base = &api.bases[node % api.bases.len()];
                let response = api
                    .http
                    .post(format!("{base}{path}"))
                    .header("content-type", "application/json")
                    .header("x-github-event", "push")
                    .header("x-github-delivery", format!("bench-{n}"))
                    .header("x-hub-signature-256", format!("sha256={signature}"))
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                anyhow::ensure!(status.is_success(), "the receive URL answered {status}");
                Ok(None)
            }
            Self::Call { app } => {
                let body = json!({"eventType": CALL_TYPE, "payload": payload});
                let started = Instant::now();
                api.post(node, &format!("/app/{app}/call"), &body).await?;
                Ok(Some(started.elapsed()))
            }
        }
    }
}

/// Creates `apps` applications with `endpoints` endpoints each (with the `extra` fields);
/// returns the application ids.
async fn setup(
    api: &Api,
    receivers: &Receivers,
    apps: u32,
    endpoints: u32,
    extra: &Value,
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
        add_endpoints(api, receivers, &id, a, endpoints, extra).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Creates application `app`'s endpoints at the receivers of application number `a`.
async fn add_endpoints(
    api: &Api,
    receivers: &Receivers,
    app: &str,
    a: u32,
    endpoints: u32,
    extra: &Value,
) -> anyhow::Result<()> {
    for e in 0..endpoints {
        let mut body = json!({"url": receivers.url(a, e)});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        api.post(0, &format!("/app/{app}/endpoint"), &body)
            .await
            .context("creating an endpoint")?;
    }
    Ok(())
}

/// What publishing measured.
pub struct Published {
    /// When each message's publish request was sent, by number (`None`: refused).
    pub sent: Vec<Option<Instant>>,
    pub started: Instant,
    pub finished: Instant,
    pub refused: u64,
    /// How long each answered call took, in milliseconds.
    pub answers_ms: Vec<f64>,
}

/// What the requests of a run note as they finish.
struct Tally {
    /// When each request was sent, by number (`None`: refused).
    sent: Vec<std::sync::Mutex<Option<Instant>>>,
    refused: AtomicU64,
    answers_ms: std::sync::Mutex<Vec<f64>>,
}

impl Tally {
    fn new(requests: u64) -> Self {
        Self {
            sent: (0..requests).map(|_| std::sync::Mutex::new(None)).collect(),
            refused: AtomicU64::new(0),
            answers_ms: std::sync::Mutex::default(),
        }
    }

    /// Notes how request `n`, sent `at`, ended.
    fn note(&self, n: u64, at: Instant, result: anyhow::Result<Option<Duration>>) {
        match result {
            Ok(took) => {
                *self.sent[n as usize]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(at);
                if let Some(took) = took {
                    let mut answers = self.answers_ms.lock().unwrap_or_else(|e| e.into_inner());
                    answers.push(took.as_secs_f64() * 1000.0);
                }
            }
            Err(e) => {
                if self.refused.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("a publish failed: {e:#}");
                }
            }
        }
    }
}

/// Runs `one(0)`, `one(1)`, … `one(messages - 1)` on `concurrency` workers, each taking the
/// next as soon as its last is answered.
async fn saturate<F, Fut>(one: F, concurrency: u32, messages: u64)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
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

/// Starts `one(0)`, `one(1)`, … on a fixed schedule of `per_second`, whatever the answers
/// take; a bound on requests in flight keeps a stalled server from piling up unbounded
/// work in the bench itself.
async fn at_rate<F, Fut>(one: F, per_second: u32, messages: u64)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
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

/// Sends `messages` requests of the workload, numbered 0…, spread over the nodes.
pub async fn publish(api: &Api, workload: &Workload, messages: u64, pace: Pace) -> Published {
    let tally = Arc::new(Tally::new(messages));
    let started = Instant::now();
    let one = {
        let (api, workload, tally) = (api.clone(), workload.clone(), tally.clone());
        move |n: u64| {
            let (api, workload, tally) = (api.clone(), workload.clone(), tally.clone());
            async move {
                let at = Instant::now();
                tally.note(n, at, workload.send(&api, n).await);
            }
        }
    };
    match pace {
        Pace::Saturate { concurrency } => saturate(one, concurrency, messages).await,
        Pace::Rate { per_second } => at_rate(one, per_second, messages).await,
    }
    let finished = Instant::now();
    let sent = (tally.sent.iter())
        .map(|s| *s.lock().unwrap_or_else(|e| e.into_inner()))
        .collect();
    let answers_ms =
        std::mem::take(&mut *tally.answers_ms.lock().unwrap_or_else(|e| e.into_inner()));
    Published {
        sent,
        started,
        finished,
        refused: tally.refused.load(Ordering::Relaxed),
        answers_ms,
    }
}

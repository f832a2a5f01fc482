//! The bench's receivers: one HTTP server on port 0 answering every webhook at once with
//! 200 (or, for endpoints marked slow, after a delay), noting when each arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::sync::watch;

/// One delivery as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Which endpoint (application × endpoints per application + endpoint).
    pub endpoint: u32,
    /// The message's number, from its payload.
    pub n: u64,
    pub at: Instant,
}

struct Shared {
    arrivals: Mutex<Vec<Arrival>>,
    count: watch::Sender<u64>,
    /// Endpoints numbered below this answer after `delay`.
    slow_below_index: u32,
    endpoints_per_app: u32,
    delay: Duration,
}

/// The running receivers.
pub struct Receivers {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    shared: Arc<Shared>,
}

#[derive(serde::Deserialize)]
struct Probe {
    n: u64,
}

impl Receivers {
    /// Starts the server; endpoints whose index within their application is below `slow`
    /// answer after `delay`.
    pub async fn start(endpoints_per_app: u32, slow: u32, delay: Duration) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            arrivals: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            slow_below_index: slow,
            endpoints_per_app,
            delay,
        });
        let app = Router::new()
            .route("/e/{app}/{endpoint}", post(receive))
            .route("/baseline", post(|| async { StatusCode::OK }))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { base, shared })
    }

    /// The URL of endpoint `endpoint` of application `app`.
    pub fn url(&self, app: u32, endpoint: u32) -> String {
        format!("{}/e/{app}/{endpoint}", self.base)
    }

    /// Whether endpoint `index` (as numbered in arrivals) is a slow one.
    pub fn is_slow(&self, index: u32) -> bool {
        index % self.shared.endpoints_per_app < self.shared.slow_below_index
    }

    /// How many deliveries arrived so far (duplicates included).
    pub fn count(&self) -> watch::Receiver<u64> {
        self.shared.count.subscribe()
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path((app, endpoint)): Path<(u32, u32)>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let Ok(probe) = serde_json::from_slice::<Probe>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let arrival = Arrival {
        endpoint: app * shared.endpoints_per_app + endpoint,
        n: probe.n,
        at,
    };
    shared
        .arrivals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(arrival);
    shared.count.send_modify(|c| *c += 1);
    if endpoint < shared.slow_below_index {
        tokio::time::sleep(shared.delay).await;
    }
    StatusCode::OK
}

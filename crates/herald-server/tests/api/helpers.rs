//! Test fixtures: a running Herald and programmable webhook receivers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use herald_core::{Clock, ManualClock, SystemClock};
use herald_server::config::{Config, Secret};
use herald_server::Server;
use herald_store_postgres::testing::TestDatabase;
use serde_json::Value;
use tokio::sync::watch;

/// How long a test waits for something that should happen before failing.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A Herald running for one test.
pub struct TestHerald {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    server: Option<Server>,
    config: Config,
    clock: Arc<dyn Clock>,
    _dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

/// The store these tests run on: SQLite by default, PostgreSQL with
/// `HERALD_TEST_STORE=postgres` (and `HERALD_TEST_POSTGRES_URL`), so the same end-to-end
/// suite covers both backends.
async fn test_database() -> Option<TestDatabase> {
    match std::env::var("HERALD_TEST_STORE").as_deref() {
        Ok("postgres") => Some(
            TestDatabase::create()
                .await
                .expect("HERALD_TEST_STORE=postgres needs HERALD_TEST_POSTGRES_URL"),
        ),
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("unknown HERALD_TEST_STORE `{other}`: use sqlite or postgres"),
    }
}

impl TestHerald {
    /// Herald with the defaults, loopback deliveries allowed, on the wall clock.
    pub async fn start() -> Self {
        Self::start_with(Arc::new(SystemClock), |_| {}).await
    }

    /// Herald with a clock of the test's choosing and configuration changes.
    pub async fn start_with(clock: Arc<dyn Clock>, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let token = herald_server::auth::generate_token();
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().to_owned();
        config.admin_token = Some(Secret::new(token.clone()));
        config.delivery.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        let database = test_database().await;
        if let Some(db) = &database {
            config.database.url = db.url.clone();
        }
        configure(&mut config);
        let server = herald_server::start(config.clone(), clock.clone())
            .await
            .expect("Herald starts");
        Self {
            base: format!("http://{}", server.addr),
            token,
            http: reqwest::Client::new(),
            server: Some(server),
            config,
            clock,
            _dir: dir,
            _database: database,
        }
    }

    /// Herald on a manual clock that only the test moves.
    pub async fn start_manual() -> (Self, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        (Self::start_with(clock.clone(), |_| {}).await, clock)
    }

    /// The official Svix SDK, pointed at this Herald.
    pub fn svix(&self) -> svix::api::Svix {
        svix::api::Svix::new(
            self.token.clone(),
            Some(svix::api::SvixOptions {
                server_url: Some(self.base.clone()),
                ..Default::default()
            }),
        )
    }

    /// A request to `path` (below `/api/v1`) with the admin token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends `body` and returns the status and the JSON answer (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(method.clone(), path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let (status, answer) = read(req.send().await.expect("request sent")).await;
        crate::contract::check(&method, path, status, &answer);
        (status, answer)
    }

    /// [`call`](Self::call) with `token` instead of the admin token.
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let (status, answer) = read(req.send().await.expect("request sent")).await;
        crate::contract::check(&method, path, status, &answer);
        (status, answer)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates an application and returns its id.
    pub async fn app(&self, uid: &str) -> String {
        let (status, app) = self
            .post("/app", serde_json::json!({"name": uid, "uid": uid}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        app["id"].as_str().unwrap().to_owned()
    }

    /// Creates an event type.
    pub async fn event_type(&self, name: &str) {
        let (status, body) = self
            .post(
                "/event-type",
                serde_json::json!({"name": name, "description": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Creates an endpoint from `body` and returns it.
    pub async fn endpoint(&self, app: &str, body: Value) -> Value {
        let (status, endpoint) = self.post(&format!("/app/{app}/endpoint"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        endpoint
    }

    /// The database URL this Herald runs on, for tests that look at the database itself.
    pub fn database_url(&self) -> String {
        self.config.database_url()
    }

    /// Whether this Herald runs on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self._database.is_some()
    }

    /// Waits until the application's message stream (`/events`) shows `n` messages. On
    /// PostgreSQL a committed message joins the stream once every transaction older than
    /// it has ended, anywhere on the server: tests creating their databases beside this
    /// one hold it back for a moment. The wait is Herald's own long poll, which answers
    /// as soon as the stream moves on.
    pub async fn wait_streamed(&self, app: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (mut iterator, mut shown) = (String::new(), 0);
        while shown < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the stream shows {shown} of {n} messages"
            );
            let path = format!("/app/{app}/events?limit=250&wait_ms=5000&iterator={iterator}");
            let (status, page) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            shown += page["data"].as_array().map_or(0, Vec::len);
            iterator = page["iterator"].as_str().unwrap_or_default().to_owned();
        }
    }

    /// Publishes and returns the message id.
    pub async fn publish(&self, app: &str, body: Value) -> String {
        let (status, msg) = self.post(&format!("/app/{app}/msg"), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{msg}");
        msg["id"].as_str().unwrap().to_owned()
    }

    /// What `GET /metrics` shows now (Herald's own, with no token asked).
    /// Where `/metrics` is served apart from the API, when `api.metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().and_then(|s| s.metrics_addr)
    }

    pub async fn metrics(&self) -> String {
        let response = self.http.get(format!("{}/metrics", self.base)).send().await;
        response
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Waits until this Herald has settled `n` deliveries in all: each recorded attempt and
    /// each delivery canceled unattempted counts one.
    pub async fn wait_recorded(&self, n: u64) {
        let server = self.server.as_ref().expect("running");
        wait_count(server.progress.settled.clone(), n, "deliveries settled").await;
    }

    /// Waits until this Herald has settled `n` subscription verification tries in all.
    pub async fn wait_verification_tries(&self, n: u64) {
        let server = self.server.as_ref().expect("running");
        wait_count(
            server.progress.verification_tries.clone(),
            n,
            "verification tries",
        )
        .await;
    }

    /// Waits until this Herald has recorded `n` synchronous calls (written just after
    /// each is answered).
    pub async fn wait_calls_recorded(&self, n: u64) {
        let server = self.server.as_ref().expect("running");
        wait_count(server.progress.calls_recorded.clone(), n, "recorded calls").await;
    }

    /// Waits until this Herald's dispatcher has held `n` claimed deliveries for their
    /// endpoint's verification.
    pub async fn wait_held(&self, n: u64) {
        let server = self.server.as_ref().expect("running");
        wait_count(server.progress.held.clone(), n, "deliveries held").await;
    }

    /// How many deliveries the dispatcher has moved to their endpoint's probe time while
    /// its circuit was open, so far.
    pub fn held_back(&self) -> u64 {
        *self
            .server
            .as_ref()
            .expect("running")
            .progress
            .held_back
            .borrow()
    }

    /// Waits until the dispatcher has moved `n` deliveries behind open circuits.
    pub async fn wait_held_back(&self, n: u64) {
        let server = self.server.as_ref().expect("running");
        wait_count(server.progress.held_back.clone(), n, "deliveries held back").await;
    }

    /// Waits until this Herald's task runner has run `n` background tasks to their end.
    pub async fn wait_tasks_finished(&self, n: u64) {
        let server = self.server.as_ref().expect("running");
        wait_count(
            server.progress.tasks_finished.clone(),
            n,
            "background tasks finished",
        )
        .await;
    }

    /// Waits until the retention cleaner has removed `n` payloads and response bodies.
    pub async fn wait_purged(&self, n: u64) {
        let server = self.server.as_ref().expect("running");
        wait_count(server.progress.purged.clone(), n, "purged").await;
    }

    /// The attempts of a message, newest first.
    /// The delivery of `msg` to `endpoint`, as `…/msg/{id}/endpoint` shows it.
    pub async fn delivery_to(&self, app: &str, msg: &str, endpoint: &str) -> Value {
        let (status, page) = self.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["data"].as_array().unwrap();
        let found = items.iter().find(|d| d["id"] == endpoint);
        found.expect("a delivery to the endpoint").clone()
    }

    pub async fn attempts(&self, app: &str, msg: &str) -> Vec<Value> {
        let (status, list) = self.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["data"].as_array().cloned().unwrap_or_default()
    }

    /// The store the running server uses.
    pub fn store(&self) -> std::sync::Arc<dyn herald_core::Store> {
        self.server.as_ref().expect("running").store.clone()
    }

    /// Stops this Herald and starts it again on the same data with a changed
    /// configuration, as an operator would.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut Config)) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            server.wait().await.expect("clean shutdown");
        }
        configure(&mut self.config);
        let server = herald_server::start(self.config.clone(), self.clock.clone())
            .await
            .expect("Herald starts again");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            server.wait().await.expect("clean shutdown");
        }
    }
}

/// Waits until the counter `rx` reaches `n`, failing the test after [`DEADLINE`].
async fn wait_count(mut rx: tokio::sync::watch::Receiver<u64>, n: u64, what: &str) {
    let got = tokio::time::timeout(DEADLINE, rx.wait_for(|c| *c >= n))
        .await
        .is_ok();
    assert!(got, "expected {n} {what}, saw {}", *rx.borrow());
}

impl Drop for TestHerald {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.shutdown();
        }
    }
}

/// Splits a response into its status and JSON body.
pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, body)
}

/// Verifies a delivery with the independent `standardwebhooks` crate.
pub fn verify(secret: &str, got: &Received) -> bool {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, got.header(name).parse().unwrap());
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&got.body, &headers)
        .is_ok()
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: axum::http::Method,
    pub uri: axum::http::Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A reply a receiver is told to give.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    count: Option<watch::Sender<usize>>,
    /// How long to take over each answer (a slow endpoint, on purpose).
    delay: Duration,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

/// A webhook receiver on port 0 that records requests and answers as scripted (200 when
/// the script is empty).
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
    count: watch::Receiver<usize>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_with_delay(Duration::ZERO).await
    }

    /// A receiver that takes `delay` to answer each request.
    pub async fn start_with_delay(delay: Duration) -> Self {
        let (tx, rx) = watch::channel(0);
        let state = Arc::new(ReceiverState {
            count: Some(tx),
            delay,
            ..Default::default()
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            state,
            count: rx,
        }
    }

    /// The next replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Answer the next requests with these statuses.
    pub fn statuses(&self, statuses: impl IntoIterator<Item = u16>) {
        self.script(statuses.into_iter().map(|status| Reply {
            status,
            retry_after: None,
        }));
    }

    /// Waits until `n` requests have arrived; returns all so far.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut rx = self.count.clone();
        let got = tokio::time::timeout(DEADLINE, rx.wait_for(|c| *c >= n)).await;
        assert!(
            got.is_ok(),
            "expected {n} requests at {}, got {}",
            self.url,
            self.received().len()
        );
        self.received()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// The most requests this receiver was answering at once.
    pub fn peak_concurrency(&self) -> usize {
        self.state.in_flight.lock().unwrap().1
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let reply = state.script.lock().unwrap().pop_front().unwrap_or(Reply {
        status: 200,
        retry_after: None,
    });
    state.got.lock().unwrap().push(Received {
        method,
        uri,
        headers,
        body,
    });
    if let Some(tx) = &state.count {
        tx.send_modify(|c| *c += 1);
    }
    {
        let mut in_flight = state.in_flight.lock().unwrap();
        in_flight.0 += 1;
        in_flight.1 = in_flight.1.max(in_flight.0);
    }
    // A deliberately slow endpoint, not a wait for work: tests wait on `count`.
    tokio::time::sleep(state.delay).await;
    state.in_flight.lock().unwrap().0 -= 1;
    let mut response_headers = HeaderMap::new();
    if let Some(secs) = reply.retry_after {
        response_headers.insert("retry-after", secs.to_string().parse().unwrap());
    }
    (
        StatusCode::from_u16(reply.status).unwrap(),
        response_headers,
        "received",
    )
}

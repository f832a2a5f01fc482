//! Herald in the test's own process, on a manual clock, for tests that run a `herald`
//! command as a child against it; and a local server that records what reaches it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use herald_core::{Clock, ManualClock};
use herald_server::config::{Config, Secret};
use herald_server::Server;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::{DEADLINE, TOKEN};

/// Herald on a manual clock, with an app `test` and the event types `a` and `b`.
pub struct Herald {
    pub server: Server,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Herald {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().to_owned();
        config.admin_token = Some(Secret::new(TOKEN.to_owned()));
        // The endpoints of these tests are local servers.
        config.delivery.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let server = herald_server::start(config, clock.clone() as Arc<dyn Clock>)
            .await
            .unwrap();
        let herald = Self {
            server,
            clock,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        for name in ["a", "b"] {
            let body = json!({"name": name, "description": name});
            herald.post("/event-type", body).await;
        }
        herald
            .post("/app", json!({"name": "Test", "uid": "test"}))
            .await;
        herald
    }

    /// Where its SQLite database lives (`--data-dir` for a command run beside it).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/api/v1{path}", self.base());
        let answer = self.http.post(url).bearer_auth(TOKEN).json(&body);
        let answer = answer.send().await.unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.unwrap()
    }

    /// PUTs `body`; the status.
    pub async fn put(&self, path: &str, body: Value) -> reqwest::StatusCode {
        let url = format!("{}/api/v1{path}", self.base());
        let answer = self
            .http
            .put(url)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await;
        answer.unwrap().status()
    }

    pub async fn get(&self, path: &str) -> Value {
        let url = format!("{}/api/v1{path}", self.base());
        let answer = self.http.get(url).bearer_auth(TOKEN).send().await.unwrap();
        answer.json().await.unwrap()
    }

    /// Publishes `payload` as type `event_type`; the message id.
    pub async fn publish(&self, event_type: &str, payload: Value) -> String {
        let msg = json!({"eventType": event_type, "payload": payload});
        let msg = self.post("/app/test/msg", msg).await;
        msg["id"].as_str().unwrap().to_owned()
    }

    /// Waits until `n` deliveries have been settled (an attempt recorded) in all.
    pub async fn wait_settled(&self, n: u64) {
        let mut settled = self.server.progress.settled.clone();
        let done = tokio::time::timeout(DEADLINE, settled.wait_for(|c| *c >= n)).await;
        assert!(done.is_ok(), "{n} attempts recorded");
    }

    /// The attempts of a message, oldest first.
    pub async fn attempts(&self, msg_id: &str) -> Vec<Value> {
        let page = self.get(&format!("/app/test/attempt/msg/{msg_id}")).await;
        let mut attempts = page["data"].as_array().cloned().unwrap_or_default();
        attempts.reverse();
        attempts
    }
}

/// A local server recording each request and answering with the status it is set to.
pub struct LocalServer {
    pub url: String,
    pub status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    count: watch::Receiver<usize>,
}

impl LocalServer {
    pub async fn start() -> Self {
        let status = Arc::new(AtomicU16::new(200));
        let received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let (tx, count) = watch::channel(0);
        let (answer, log) = (status.clone(), received.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (answer, log, tx) = (answer.clone(), log.clone(), tx.clone());
            async move {
                log.lock().unwrap().push((headers, body));
                tx.send_modify(|n| *n += 1);
                let status = StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap();
                (status, "local answer")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            status,
            received,
            count,
        }
    }

    pub async fn wait_for(&self, n: usize) {
        let mut count = self.count.clone();
        let done = tokio::time::timeout(DEADLINE, count.wait_for(|c| *c >= n)).await;
        assert!(done.is_ok(), "{n} requests reached the local server");
    }

    pub fn request(&self, i: usize) -> (HeaderMap, Bytes) {
        self.received.lock().unwrap()[i].clone()
    }

    pub fn len(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// A `herald` command running as a child with the admin token in `HERALD_TOKEN`, its
/// stdout read line by line on a thread and handed over a channel the test awaits (the
/// server under test shares the test's runtime, which must not block). Killed when dropped.
pub struct Command {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Command {
    pub fn start(args: &[&str]) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .env("HERALD_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("herald starts");
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// Runs `herald ARGS` to its end (the admin token in `HERALD_TOKEN`), without blocking
    /// the runtime the server under test shares.
    pub async fn run(args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .env("HERALD_TOKEN", TOKEN)
            .output()
            .await
            .expect("herald runs")
    }

    /// The next line that contains `needle`.
    pub async fn line_with(&mut self, needle: &str) -> String {
        loop {
            let line = tokio::time::timeout(DEADLINE, self.lines.recv()).await;
            let line = line.ok().flatten();
            let line = line.unwrap_or_else(|| panic!("a line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

impl Drop for Command {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

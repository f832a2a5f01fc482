//! What the process-level tests share: `herald serve` child processes, and receivers that
//! count what they get.

#![allow(dead_code)] // each test file uses its own part of this module

pub mod in_process;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;
use tokio::sync::watch;

/// The admin token every test node runs with.
pub const TOKEN: &str = "hrld_process_test_token_0123456789abcdef";
/// How long a test waits for deliveries before failing.
pub const DEADLINE: Duration = Duration::from_secs(180);

/// One `herald serve` process on port 0.
pub struct Node {
    child: Child,
    /// `http://127.0.0.1:PORT/api/v1`
    pub base: String,
    /// Its log, line by line, as it is written.
    log: Mutex<mpsc::Receiver<String>>,
}

impl Node {
    /// Starts a node with `store_args` (`--data-dir DIR` or `--database-url URL`), an optional
    /// config file, and extra environment.
    pub fn start(store_args: &[&str], config: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow-network",
                "127.0.0.0/8",
            ])
            .args(store_args)
            .env("HERALD_ADMIN_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(file) = config {
            command.arg("--config").arg(file);
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("herald starts");
        let (tx, rx) = mpsc::channel();
        let (log_tx, log) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        // Reads the log until the process ends: the bound address, any error, and every
        // line for `wait_for_log`.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("api=http://").nth(1) {
                    let _ = tx.send(rest.chars().take_while(|c| *c != '/').collect::<String>());
                } else if line.contains("ERROR") {
                    eprintln!("herald: {line}");
                }
                let _ = log_tx.send(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("herald logs its address");
        Self {
            child,
            base: format!("http://{addr}/api/v1"),
            log: Mutex::new(log),
        }
    }

    /// Waits (blocking, up to the deadline) for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let log = self.log.lock().unwrap();
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?} at {}", self.base),
            }
        }
    }

    /// Waits (blocking, up to the deadline each) for `n` more log lines containing
    /// `needle`.
    pub fn wait_for_logs(&self, needle: &str, n: usize) {
        for _ in 0..n {
            self.wait_for_log(needle);
        }
    }

    /// SIGKILL: no shutdown, no lease given back.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status once the process has shut down.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        self.child.wait().expect("herald exits")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A receiver counting deliveries per `webhook-id` and noting each payload's `n`.
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<HashMap<String, u32>>>,
    pub numbers: Arc<Mutex<HashSet<i64>>>,
    pub total: watch::Receiver<usize>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_with_delay(Duration::ZERO).await
    }

    /// A receiver that takes `delay` to answer each request (a slow endpoint, on purpose).
    pub async fn start_with_delay(delay: Duration) -> Self {
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let numbers: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let (tx, total) = watch::channel(0usize);
        let (counts, ns) = (seen.clone(), numbers.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (counts, ns, tx) = (counts.clone(), ns.clone(), tx.clone());
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                *counts.lock().unwrap().entry(id.to_owned()).or_default() += 1;
                let n = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["n"].as_i64());
                if let Some(n) = n {
                    ns.lock().unwrap().insert(n);
                }
                tx.send_modify(|n| *n += 1);
                // A deliberately slow receiver (the endpoint under test is slow), not a
                // wait for work: tests wait on `total`, which counts arrivals.
                tokio::time::sleep(delay).await;
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            seen,
            numbers,
            total,
        }
    }

    /// Whether every id in `ids` arrives before the deadline.
    pub async fn arrives_all(&self, ids: &HashSet<String>) -> bool {
        let mut total = self.total.clone();
        tokio::time::timeout(DEADLINE, async {
            while !ids
                .iter()
                .all(|id| self.seen.lock().unwrap().contains_key(id))
            {
                if total.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Waits until every id in `ids` has arrived at least once; fails naming how many did not.
    pub async fn wait_for_all(&self, ids: &HashSet<String>) {
        let all_there = self.arrives_all(ids).await;
        let seen = self.seen.lock().unwrap();
        let missing = ids.iter().filter(|id| !seen.contains_key(*id)).count();
        assert!(
            all_there && missing == 0,
            "{missing} of {} messages never arrived at {}",
            ids.len(),
            self.url
        );
    }

    /// Deliveries beyond the first of each message.
    pub fn duplicates(&self) -> u32 {
        self.seen.lock().unwrap().values().map(|n| n - 1).sum()
    }

    /// Whether some message arrives twice before the deadline.
    pub async fn sees_a_duplicate(&self) -> bool {
        let mut total = self.total.clone();
        tokio::time::timeout(DEADLINE, async {
            while self.duplicates() == 0 {
                if total.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }
}

/// Prints what Herald knows of a few messages that never arrived, to tell a lost message
/// from one that failed every attempt.
pub async fn explain_missing(
    client: &reqwest::Client,
    base: &str,
    app_id: &str,
    r: &Receiver,
    ids: &HashSet<String>,
) {
    let missing: Vec<String> = {
        let seen = r.seen.lock().unwrap();
        ids.iter()
            .filter(|id| !seen.contains_key(*id))
            .take(3)
            .cloned()
            .collect()
    };
    for id in missing {
        for path in [format!("msg/{id}/endpoint"), format!("attempt/msg/{id}")] {
            let url = format!("{base}/app/{app_id}/{path}?with_content=false");
            let body = client
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .map(|r| r.text());
            match body {
                Ok(text) => eprintln!("{id} {path}: {}", text.await.unwrap_or_default()),
                Err(e) => eprintln!("{id} {path}: {e}"),
            }
        }
    }
}

/// What a POST got back.
#[derive(Debug)]
pub enum Answer {
    /// A 2xx with its JSON body.
    Accepted(Value),
    /// An HTTP error status: Herald refused the request.
    Refused(u16),
    /// No answer (the process died, the connection broke): the request may or may not
    /// have been committed.
    Unknown,
}

/// POSTs `body` with the admin token.
pub async fn post(client: &reqwest::Client, url: String, body: &Value) -> Answer {
    let Ok(resp) = client.post(url).bearer_auth(TOKEN).json(body).send().await else {
        return Answer::Unknown;
    };
    let status = resp.status();
    match resp.json::<Value>().await {
        Ok(json) if status.is_success() => Answer::Accepted(json),
        _ if status.is_client_error() || status.is_server_error() => {
            Answer::Refused(status.as_u16())
        }
        _ => Answer::Unknown,
    }
}

/// POSTs and expects a 2xx.
pub async fn call(client: &reqwest::Client, url: String, body: Value) -> Result<Value, String> {
    match post(client, url, &body).await {
        Answer::Accepted(json) => Ok(json),
        other => Err(format!("{other:?}")),
    }
}

/// GETs `url` with the admin token; the JSON answer.
pub async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let answer = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    answer.json().await.unwrap()
}

/// An application with one endpoint per receiver, created through `base`.
pub async fn setup(client: &reqwest::Client, base: &str, receivers: &[Receiver]) -> String {
    let app = call(
        client,
        format!("{base}/app"),
        serde_json::json!({"name": "test", "uid": "test"}),
    )
    .await
    .expect("app created");
    let app_id = app["id"].as_str().unwrap().to_owned();
    for r in receivers {
        call(
            client,
            format!("{base}/app/{app_id}/endpoint"),
            serde_json::json!({"url": r.url}),
        )
        .await
        .expect("endpoint created");
    }
    app_id
}

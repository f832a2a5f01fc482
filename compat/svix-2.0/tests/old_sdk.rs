//! The oldest 2.x Svix SDK (2.0.0) against a real `herald serve` process. Newer answers (a
//! JSON body from secret rotation, extra and renamed fields) must not break it.
//!
//! `HERALD_TEST_BIN` names the binary to run; `.ci/run` builds it and sets the variable.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::json;
use svix::api::{Svix, SvixOptions};
use svix::models::{ApplicationIn, EndpointIn, EndpointSecretRotateIn, EventTypeIn, MessageIn};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const DEADLINE: Duration = Duration::from_secs(20);

/// A `herald serve` child process on a free port with a temporary database.
struct HeraldProcess {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl HeraldProcess {
    fn start() -> Self {
        let bin = std::env::var("HERALD_TEST_BIN")
            .expect("HERALD_TEST_BIN must name a built `herald` binary (.ci/run sets it)");
        let dir = tempfile::tempdir().unwrap();
        let token = "hrld_compat_test_token_0123456789abcdef".to_string();
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow-network",
                "127.0.0.0/8",
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .env("HERALD_ADMIN_TOKEN", &token)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("herald starts");
        // Read the log until the bound address appears, then keep draining it.
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("herald: {line}");
                if let Some(rest) = line.split("api=http://").nth(1) {
                    let addr: String = rest.chars().take_while(|c| *c != '/').collect();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(DEADLINE).expect("herald logs its address");
        Self {
            child,
            base: format!("http://{addr}"),
            token,
            _dir: dir,
        }
    }

    fn sdk(&self) -> Svix {
        Svix::new(
            self.token.clone(),
            Some(SvixOptions {
                server_url: Some(self.base.clone()),
                ..Default::default()
            }),
        )
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A receiver on port 0 that forwards the `webhook-id` of each request it gets.
async fn receiver() -> (String, UnboundedReceiver<String>) {
    let (tx, rx) = unbounded_channel();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let tx = tx.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let _ = tx.send(id.to_owned());
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next_delivery(rx: &mut UnboundedReceiver<String>) -> String {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a delivery arrives in time")
        .expect("receiver running")
}

#[tokio::test]
async fn svix_sdk_2_0_publishes_rotates_lists_and_resends() {
    let herald = HeraldProcess::start();
    let svix = herald.sdk();
    let (url, mut deliveries) = receiver().await;

    svix.event_type()
        .create(
            EventTypeIn::new("invoice.paid".into(), "An invoice was paid".into()),
            None,
        )
        .await
        .expect("event type created");
    let mut app_in = ApplicationIn::new("Acme".into());
    app_in.uid = Some("acme".into());
    let app = svix
        .application()
        .create(app_in, None)
        .await
        .expect("app created");
    assert_eq!(app.uid.as_deref(), Some("acme"));

    let mut endpoint_in = EndpointIn::new(url);
    endpoint_in.event_types = Some(["invoice.paid".to_string()].into());
    let endpoint = svix
        .endpoint()
        .create(app.id.clone(), endpoint_in, None)
        .await
        .expect("endpoint created");
    assert_eq!(
        endpoint.event_types,
        Some(["invoice.paid".to_string()].into())
    );

    // 2.0 expects no body from a rotation; Herald answers with the new key for newer SDKs.
    let before = svix
        .endpoint()
        .get_secret(app.id.clone(), endpoint.id.clone())
        .await
        .unwrap();
    svix.endpoint()
        .rotate_secret(
            app.id.clone(),
            endpoint.id.clone(),
            EndpointSecretRotateIn::new(),
            None,
        )
        .await
        .expect("rotation accepted by the old SDK");
    let after = svix
        .endpoint()
        .get_secret(app.id.clone(), endpoint.id.clone())
        .await
        .unwrap();
    assert_ne!(before.key, after.key);

    let msg = svix
        .message()
        .create(
            app.id.clone(),
            MessageIn::new("invoice.paid".into(), json!({"amount": 42})),
            None,
        )
        .await
        .expect("message published");
    assert_eq!(next_delivery(&mut deliveries).await, msg.id);

    svix.message_attempt()
        .resend(app.id.clone(), msg.id.clone(), endpoint.id.clone(), None)
        .await
        .expect("resend accepted");
    assert_eq!(next_delivery(&mut deliveries).await, msg.id);

    let destinations = svix
        .message_attempt()
        .list_attempted_destinations(app.id.clone(), msg.id.clone(), None)
        .await
        .expect("destinations listed");
    assert_eq!(destinations.data.len(), 1);
    assert_eq!(destinations.data[0].id, endpoint.id);

    let messages = svix
        .message()
        .list(app.id.clone(), None)
        .await
        .expect("messages listed");
    assert_eq!(messages.data.len(), 1);
    assert_eq!(messages.data[0].id, msg.id);
}

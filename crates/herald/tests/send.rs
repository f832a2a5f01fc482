//! `herald send` against an in-process Herald (spec patterns.md §6.4, check 9).

mod support;

use std::sync::atomic::Ordering;

use serde_json::json;

use support::in_process::{Command, Herald, LocalServer};
use support::TOKEN;

async fn send(herald: &Herald, extra: &[&str]) -> (i32, Vec<String>) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "send",
            "--server",
            &herald.base(),
            "--app",
            "test",
            "--type",
            "a",
        ])
        .args(extra)
        .env("HERALD_TOKEN", TOKEN)
        .output()
        .await
        .expect("herald send runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout.lines().map(str::to_owned).collect();
    (out.status.code().expect("an exit code"), lines)
}

#[tokio::test]
async fn send_wait_reports_each_endpoint_and_fails_if_one_did() {
    let herald = Herald::start().await;
    let (healthy, failing) = (LocalServer::start().await, LocalServer::start().await);
    failing.status.store(503, Ordering::SeqCst);
    for local in [&healthy, &failing] {
        herald
            .post("/app/test/endpoint", json!({"url": local.url}))
            .await;
    }

    let (code, lines) = send(&herald, &["--data", r#"{"x":1}"#, "--wait", "60s"]).await;
    assert_eq!(code, 1, "one endpoint failed: {lines:?}");
    assert_eq!(
        lines.len(),
        3,
        "the id, then one line per endpoint: {lines:?}"
    );
    let msg_id = &lines[0];
    assert!(msg_id.starts_with("msg_"), "{lines:?}");
    let line_of = |url: &str| lines.iter().find(|l| l.contains(url)).cloned().unwrap();
    assert!(line_of(&healthy.url).contains("200 delivered"), "{lines:?}");
    assert!(line_of(&failing.url).contains("503 failed"), "{lines:?}");
    let (_, body) = healthy.request(0);
    assert_eq!(&body[..], br#"{"x":1}"#);

    // All healthy: exit 0. Without --wait, only the id.
    failing.status.store(200, Ordering::SeqCst);
    let (code, lines) = send(&herald, &["--wait"]).await;
    assert_eq!(code, 0, "{lines:?}");
    let (code, lines) = send(&herald, &["--idempotency-key", "k1"]).await;
    assert_eq!((code, lines.len()), (0, 1));
    let (_, again) = send(&herald, &["--idempotency-key", "k1"]).await;
    assert_eq!(again, lines, "the same key publishes once");
}

#[tokio::test]
async fn send_explains_what_the_server_refused() {
    let herald = Herald::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "send",
            "--server",
            &herald.base(),
            "--app",
            "nope",
            "--type",
            "a",
        ])
        .args(["--token", TOKEN])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not_found"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn tail_prints_each_attempt_as_one_json_line_in_order() {
    let herald = Herald::start().await;
    let local = LocalServer::start().await;
    herald
        .post("/app/test/endpoint", json!({"url": local.url}))
        .await;
    let base = herald.base();
    let mut tail = Command::start(&[
        "tail", "--server", &base, "--app", "test", "--json", "--since", "1m",
    ]);
    let mut sent = Vec::new();
    for n in 1..=3 {
        sent.push(herald.publish("a", json!({"n": n})).await);
        local.wait_for(n).await;
    }
    for msg_id in &sent {
        let line = tail.line_with("msgId").await;
        let attempt: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(&attempt["msgId"], msg_id, "in send order: {line}");
        assert_eq!(attempt["eventType"], "a");
        assert_eq!(attempt["responseStatusCode"], 200);
        assert_eq!(attempt["outcome"], "ok");
    }
}

//! `herald listen --server` as a developer meets it (spec patterns.md §6.4): Herald runs in
//! this process on a manual clock, the CLI is a child process, and a local server on
//! loopback is what the CLI forwards to.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::HeaderMap;
use herald_core::signing::VerificationKey;
use serde_json::{json, Value};

use support::in_process::{Command, Herald, LocalServer};
use support::TOKEN;

/// `herald listen ARGS` against `herald`'s app `test`.
fn listen(herald: &Herald, args: &[&str]) -> Command {
    let base = herald.base();
    let mut all = vec!["listen"];
    all.extend_from_slice(args);
    all.extend(["--server", &base, "--app", "test"]);
    Command::start(&all)
}

/// The signing secret a session prints once attached.
async fn secret(cli: &mut Command) -> String {
    let line = cli.line_with("Signing secret:").await;
    let secret = line.split_whitespace().find(|w| w.starts_with("whsec_"));
    secret.expect("a whsec_ secret").to_owned()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn a_session_forwards_signed_messages_and_the_log_records_the_local_answers() {
    let herald = Herald::start().await;
    let local = LocalServer::start().await;
    let mut cli = listen(&herald, &[&local.url, "--name", "laptop", "--events", "a"]);
    let key = VerificationKey::parse(&secret(&mut cli).await).unwrap();

    // Only type `a` is asked for: `b` is never forwarded (it gets no delivery at all).
    herald.publish("b", json!({"x": 0})).await;
    let first = herald.publish("a", json!({"x": 1})).await;
    local.wait_for(1).await;
    herald.wait_settled(1).await;
    let (headers, body) = local.request(0);
    assert_eq!(&body[..], br#"{"x":1}"#);
    assert_eq!(header(&headers, "webhook-id"), first);
    let timestamp = header(&headers, "webhook-timestamp").parse().unwrap();
    let signature = header(&headers, "webhook-signature");
    assert!(
        key.verifies(&first, timestamp, &body, signature),
        "the signature verifies with the secret the CLI printed"
    );
    let attempts = herald.attempts(&first).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["responseStatusCode"], 200);
    assert_eq!(attempts[0]["response"], "local answer");

    // The local server fails: the attempt is failed with its status, and retried on the
    // schedule (moved along by the clock), when it succeeds.
    local.status.store(500, Ordering::SeqCst);
    let second = herald.publish("a", json!({"x": 2})).await;
    local.wait_for(2).await;
    herald.wait_settled(2).await;
    let attempts = herald.attempts(&second).await;
    assert_eq!(attempts[0]["responseStatusCode"], 500, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 2, "failed");
    local.status.store(200, Ordering::SeqCst);
    herald.clock.advance(Duration::from_secs(3600));
    local.wait_for(3).await;
    herald.wait_settled(3).await;
    assert_eq!(header(&local.request(2).0, "webhook-id"), second);
    let attempts = herald.attempts(&second).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[1]["responseStatusCode"], 200);
    assert_eq!(local.len(), 3, "nothing of type b arrived");
}

#[tokio::test]
async fn a_session_that_comes_back_gets_what_was_sent_while_it_was_away_once() {
    let herald = Herald::start().await;
    let local = LocalServer::start().await;
    let mut cli = listen(&herald, &[&local.url, "--name", "laptop"]);
    let first_secret = secret(&mut cli).await;

    // The name is taken while the first session is attached.
    let base = herald.base();
    let same_name = ["listen", &local.url, "--name", "laptop", "--app", "test"];
    let second = Command::run(&[&same_name[..], &["--server", &base]].concat()).await;
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("session_in_use"), "{stderr}");

    // Away: each attempt fails as `listener_offline` and waits for its retry. More of them
    // than it takes to open a circuit (5): being away says nothing of the endpoint's health.
    drop(cli);
    let mut missed = Vec::new();
    for x in 0..6 {
        missed.push(herald.publish("a", json!({"x": x})).await);
    }
    herald.wait_settled(6).await;
    let attempts = herald.attempts(&missed[0]).await;
    assert_eq!(attempts[0]["errorKind"], "listener_offline", "{attempts:?}");

    // Back under the same name: same secret, and the retry comes at once, not on its
    // schedule (the clock does not move).
    let mut back = listen(&herald, &[&local.url, "--name", "laptop"]);
    assert_eq!(
        secret(&mut back).await,
        first_secret,
        "the secret is the same for the same name"
    );
    local.wait_for(6).await;
    herald.wait_settled(12).await;
    let mut arrived: Vec<String> = (0..6)
        .map(|i| header(&local.request(i).0, "webhook-id").to_owned())
        .collect();
    arrived.sort();
    missed.sort();
    assert_eq!(arrived, missed, "each once");
    assert_eq!(local.len(), 6);
}

#[tokio::test]
async fn a_name_whose_uid_belongs_to_another_endpoint_is_not_taken_over() {
    let herald = Herald::start().await;
    let body = json!({"url": "https://example.com/hook", "uid": "listen-laptop"});
    herald.post("/app/test/endpoint", body).await;
    let base = herald.base();
    let out = Command::run(&[
        "listen", "--name", "laptop", "--app", "test", "--server", &base,
    ])
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("uid_taken"), "{stderr}");
}

#[tokio::test]
async fn without_a_target_the_session_prints_json_and_answers_200() {
    let herald = Herald::start().await;
    let mut cli = listen(&herald, &["--print-json"]);
    secret(&mut cli).await;
    let metrics = herald.http.get(format!("{}/metrics", herald.base()));
    let metrics = metrics.send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l == "herald_listen_sessions 1"),
        "the session is counted: {metrics}"
    );
    let msg = herald.publish("a", json!({"x": 1})).await;
    let line = cli.line_with(&msg).await;
    let printed: Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(printed["payload"], json!({"x": 1}));
    assert_eq!(printed["eventType"], "a");
    herald.wait_settled(1).await;
    let attempts = herald.attempts(&msg).await;
    assert_eq!(attempts[0]["responseStatusCode"], 200, "{attempts:?}");
}

#[tokio::test]
async fn the_listen_route_answers_plain_requests_with_an_error_a_client_can_read() {
    let herald = Herald::start().await;
    let ask = |query: &str| {
        let url = format!("{}/api/v1/app/test/listen?{query}", herald.base());
        herald.http.get(url).bearer_auth(TOKEN).send()
    };
    let answer = ask("name=laptop").await.unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "websocket_required", "{body}");

    let answer = ask("name=no%20spaces").await.unwrap();
    assert_eq!(answer.status(), 422);
}

#[test]
fn a_server_that_does_not_answer_is_one_line_naming_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "listen",
            "--app",
            "test",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            TOKEN,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("connecting to http://127.0.0.1:9/api/v1"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("refused").count(),
        1,
        "the cause once: {stderr}"
    );
}

#[test]
fn a_forward_target_off_this_machine_is_refused_unless_allowed() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["listen", "http://10.0.0.1:9/hook", "--app", "test"])
        .args(["--server", "http://127.0.0.1:9", "--token", TOKEN])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-external"), "{stderr}");
}

#[tokio::test]
async fn a_session_on_an_inbound_source_forwards_what_the_provider_sent() {
    let herald = Herald::start().await;
    let local = LocalServer::start().await;
    let created = herald
        .http
        .post(format!("{}/ingest/api/v1/source", herald.base()))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Hooks", "uid": "hooks", "type": "generic-webhook"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let source: Value = created.json().await.unwrap();
    let mut cli = Command::start(&[
        "listen",
        &local.url,
        "--source",
        "hooks",
        "--server",
        &herald.base(),
    ]);
    let key = VerificationKey::parse(&secret(&mut cli).await).unwrap();

    // A provider posts to the source's receive URL: Herald publishes it to the source's
    // application, whose listen session forwards it, signed, to the local server.
    let ingest_url = url::Url::parse(source["ingestUrl"].as_str().unwrap()).unwrap();
    let receive = format!("{}{}", herald.base(), ingest_url.path());
    let sent = herald
        .http
        .post(receive)
        .header("content-type", "application/json")
        .body(r#"{"ref": "main"}"#)
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());
    local.wait_for(1).await;
    let (headers, body) = local.request(0);
    assert_eq!(&body[..], br#"{"ref": "main"}"#, "byte for byte");
    let timestamp = header(&headers, "webhook-timestamp").parse().unwrap();
    let id = header(&headers, "webhook-id");
    let signature = header(&headers, "webhook-signature");
    assert!(key.verifies(id, timestamp, &body, signature));

    // --source and --app name the same thing two ways: both is a usage error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["listen", "--source", "hooks", "--app", "test"])
        .args(["--server", &herald.base(), "--token", TOKEN])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap refuses the pair");
}

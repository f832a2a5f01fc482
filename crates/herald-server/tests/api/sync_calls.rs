//! Synchronous calls (`POST /app/{app}/call`): the receiver's answer decides within a
//! deadline, a missing answer decides by the caller's policy, and every call is in the log
//! (patterns spec §2.3).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::helpers::{verify, Received, TestHerald};

/// A receiver that gives one fixed answer, after `delay`, and records what it got.
struct Answerer {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    count: watch::Receiver<usize>,
}

#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: &'static str,
    delay: Duration,
    got: Arc<Mutex<Vec<Received>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Answerer {
    async fn start(status: u16, content_type: &'static str, body: &'static str) -> Self {
        Self::start_slow(status, content_type, body, Duration::ZERO).await
    }

    /// An answerer that takes `delay` over each answer (a slow receiver, on purpose).
    async fn start_slow(
        status: u16,
        content_type: &'static str,
        body: &'static str,
        delay: Duration,
    ) -> Self {
        let (tx, count) = watch::channel(0);
        let got = Arc::new(Mutex::new(Vec::new()));
        let answer = Answer {
            status,
            content_type,
            body,
            delay,
            got: got.clone(),
            count: Arc::new(tx),
        };
        let app = axum::Router::new().fallback(answer_one).with_state(answer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/decide", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, got, count }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests so far, once no request is still being answered: a call returns when
    /// its answer is in, so this is its count.
    fn count(&self) -> usize {
        *self.count.borrow()
    }
}

async fn answer_one(
    State(answer): State<Answer>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    answer.got.lock().unwrap().push(Received {
        method,
        uri,
        headers,
        body,
    });
    answer.count.send_modify(|c| *c += 1);
    // A deliberately slow receiver, not a wait for work.
    tokio::time::sleep(answer.delay).await;
    (
        StatusCode::from_u16(answer.status).unwrap(),
        [("content-type", answer.content_type)],
        answer.body,
    )
}

const JSON: &str = "application/json";

/// An application with one endpoint subscribed to `payment.authorize` at `url`.
async fn app_calling(herald: &TestHerald, url: &str) -> (String, Value) {
    let app = herald.app("shop").await;
    herald.event_type("payment.authorize").await;
    let endpoint = herald
        .endpoint(
            &app,
            json!({"url": url, "filterTypes": ["payment.authorize"]}),
        )
        .await;
    (app, endpoint)
}

async fn call(herald: &TestHerald, app: &str, body: Value) -> (StatusCode, Value) {
    herald.post(&format!("/app/{app}/call"), body).await
}

fn authorize(extra: Value) -> Value {
    let mut body = json!({"eventType": "payment.authorize", "payload": {"amount": 4200}});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test]
async fn a_deny_with_a_reason_is_returned_and_logged_as_a_sync_attempt() {
    let herald = TestHerald::start().await;
    let receiver = Answerer::start_slow(
        200,
        JSON,
        r#"{"allow": false, "reason": "x"}"#,
        Duration::from_millis(50),
    )
    .await;
    let (app, endpoint) = app_calling(&herald, &receiver.url).await;

    let (status, answer) = call(&herald, &app, authorize(json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "answered");
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["reason"], "x");
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["endpointId"], endpoint["id"]);
    let took = answer["durationMs"].as_u64().unwrap();
    assert!((50..1000).contains(&took), "{took} ms");

    // In the log just after the call returns, with what triggered it.
    herald.wait_calls_recorded(1).await;
    let msg = answer["msgId"].as_str().unwrap();
    let attempts = herald.attempts(&app, msg).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["trigger"], "sync");
    assert_eq!(attempts[0]["id"], answer["attemptId"]);
    assert_eq!(attempts[0]["responseStatusCode"], 200);
    let (_, message) = herald.get(&format!("/app/{app}/msg/{msg}")).await;
    assert_eq!(message["eventType"], "payment.authorize");
    assert_eq!(message["payload"]["amount"], 4200);
}

#[tokio::test]
async fn a_call_answered_just_before_a_shutdown_is_still_recorded() {
    // The recording follows the answer; a graceful shutdown waits for it.
    let mut herald = TestHerald::start().await;
    let receiver = Answerer::start(200, JSON, r#"{"allow": true}"#).await;
    let (app, _) = app_calling(&herald, &receiver.url).await;
    let (status, answer) = call(&herald, &app, authorize(json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    herald.restart_with(|_| {}).await;
    let attempts = herald
        .attempts(&app, answer["msgId"].as_str().unwrap())
        .await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["trigger"], "sync");
}

#[tokio::test]
async fn a_slow_receiver_times_out_at_the_deadline_and_the_policy_decides() {
    let herald = TestHerald::start().await;
    let receiver = Answerer::start_slow(200, JSON, "{}", Duration::from_secs(5)).await;
    let (app, _) = app_calling(&herald, &receiver.url).await;

    let started = Instant::now();
    let body = authorize(json!({"timeoutMs": 300, "onTimeout": "allow"}));
    let (status, answer) = call(&herald, &app, body).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "policy_applied");
    assert_eq!(answer["decision"], "allow");
    assert_eq!(answer["status"], Value::Null);

    let started = Instant::now();
    let body = authorize(json!({"timeoutMs": 300, "onTimeout": "fail"}));
    let (status, answer) = call(&herald, &app, body).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 504, "{answer}");
    assert_eq!(answer["outcome"], "timeout");
    assert_eq!(answer["decision"], Value::Null);
    herald.wait_calls_recorded(2).await;
    let attempts = herald
        .attempts(&app, answer["msgId"].as_str().unwrap())
        .await;
    assert_eq!(attempts[0]["status"], 2, "a failed attempt: {attempts:?}");
}

#[tokio::test]
async fn a_text_answer_allows_and_is_the_reply() {
    let herald = TestHerald::start().await;
    let receiver = Answerer::start(200, "text/plain", "hello").await;
    let (app, _) = app_calling(&herald, &receiver.url).await;

    let (status, answer) = call(&herald, &app, authorize(json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "allow");
    assert_eq!(answer["outcome"], "answered");
    assert_eq!(answer["body"], "hello");
}

#[tokio::test]
async fn a_failing_receiver_is_asked_once_and_the_error_policy_decides() {
    let herald = TestHerald::start().await;
    let receiver = Answerer::start(500, "text/plain", "boom").await;
    let (app, endpoint) = app_calling(&herald, &receiver.url).await;

    let (status, answer) = call(&herald, &app, authorize(json!({"onError": "deny"}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["outcome"], "policy_applied");
    assert_eq!(answer["status"], 500);
    assert_eq!(receiver.count(), 1);

    // Failed for good, not queued for a retry the dispatcher would make later.
    herald.wait_calls_recorded(1).await;
    let msg = answer["msgId"].as_str().unwrap();
    let (_, deliveries) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    let delivery = &deliveries["data"][0];
    assert_eq!(delivery["id"], endpoint["id"]);
    assert_eq!(delivery["status"], 2, "{deliveries}");
    assert_eq!(delivery["nextAttempt"], Value::Null, "{deliveries}");

    let (status, answer) = call(&herald, &app, authorize(json!({}))).await;
    assert_eq!(status, 502, "the default policy is fail: {answer}");
    assert_eq!(answer["outcome"], "error");
    assert_eq!(receiver.count(), 2);

    let metrics = herald.metrics().await;
    for outcome in ["policy_applied", "error"] {
        let line = format!("herald_sync_calls_total{{outcome=\"{outcome}\"}} 1");
        assert!(metrics.contains(&line), "missing `{line}` in:\n{metrics}");
    }
}

#[tokio::test]
async fn with_mode_all_every_endpoint_is_asked_and_one_deny_vetoes() {
    let herald = TestHerald::start().await;
    let allows = Answerer::start(200, JSON, r#"{"decision": "allow"}"#).await;
    let denies = Answerer::start(403, "text/plain", "over the limit").await;
    let (app, _) = app_calling(&herald, &allows.url).await;
    let vetoer = herald
        .endpoint(
            &app,
            json!({"url": denies.url, "filterTypes": ["payment.authorize"]}),
        )
        .await;

    let (status, answer) = call(&herald, &app, authorize(json!({"mode": "all"}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["reason"], "over the limit");
    assert_eq!(answer["endpointId"], vetoer["id"]);
    assert_eq!((allows.count(), denies.count()), (1, 1));
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{answer}");

    // `first` (the default) stops at the first answer: the oldest endpoint allows.
    let (_, answer) = call(&herald, &app, authorize(json!({}))).await;
    assert_eq!(answer["decision"], "allow", "{answer}");
    assert_eq!((allows.count(), denies.count()), (2, 1));
}

#[tokio::test]
async fn a_timeout_above_the_cap_or_a_bad_call_is_refused_and_nothing_is_sent() {
    let herald = TestHerald::start().await;
    let receiver = Answerer::start(200, JSON, r#"{"allow": true}"#).await;
    let (app, _) = app_calling(&herald, &receiver.url).await;

    let (status, body) = call(&herald, &app, authorize(json!({"timeoutMs": 60_000}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "timeout_too_large");
    assert!(body["detail"].as_str().unwrap().contains("15000"), "{body}");

    for bad in [
        authorize(json!({"timeoutMs": 0})),
        authorize(json!({"mode": "some"})),
        authorize(json!({"onError": "maybe"})),
        json!({"eventType": "payment.authorize", "payload": [1]}),
    ] {
        let (status, body) = call(&herald, &app, bad.clone()).await;
        assert_eq!(status, 422, "{bad} → {body}");
        assert!(
            body["code"].is_string() && !body["detail"].is_null(),
            "{body}"
        );
    }
    let (status, body) = call(&herald, &app, authorize(json!({"endpointId": "ep_none"}))).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = call(&herald, "app_none", authorize(json!({}))).await;
    assert_eq!(status, 404);

    assert_eq!(receiver.count(), 0);
    let (_, messages) = herald.get(&format!("/app/{app}/msg")).await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 0, "{messages}");
}

#[tokio::test]
async fn the_request_is_signed_with_the_endpoint_secret_and_carries_its_deadline() {
    let herald = TestHerald::start().await;
    let receiver = Answerer::start(200, JSON, r#"{"allow": true}"#).await;
    let (app, endpoint) = app_calling(&herald, &receiver.url).await;
    // Endpoints that take every event type are not asked: a blocking call is subscribed
    // to by name.
    let everything = Answerer::start(200, JSON, r#"{"allow": false}"#).await;
    herald.endpoint(&app, json!({"url": everything.url})).await;

    let sent_at = chrono::Utc::now().timestamp_millis();
    let body = authorize(json!({"timeoutMs": 2000}));
    let (status, answer) = call(&herald, &app, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "allow");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let ep = endpoint["id"].as_str().unwrap();
    let (_, secret) = herald
        .get(&format!("/app/{app}/endpoint/{ep}/secret"))
        .await;
    assert!(verify(secret["key"].as_str().unwrap(), &got[0]));
    assert_eq!(got[0].header("webhook-sync"), "1");
    assert_eq!(
        got[0].header("webhook-id"),
        answer["msgId"].as_str().unwrap()
    );
    let deadline: i64 = got[0].header("webhook-deadline").parse().unwrap();
    assert!(
        deadline > sent_at && deadline <= sent_at + 2000 + 1000,
        "deadline {deadline}, sent at {sent_at}"
    );
    assert_eq!(got[0].body, r#"{"amount":4200}"#);
    assert_eq!(everything.count(), 0);

    // Asking an endpoint by id reaches it whatever its filters.
    let (_, answer) = call(
        &herald,
        &app,
        authorize(json!({"endpointId": endpoint["id"]})),
    )
    .await;
    assert_eq!(answer["endpointId"], endpoint["id"]);

    // No endpoint subscribed: nobody is asked and the caller hears so.
    let (status, answer) = call(
        &herald,
        &app,
        json!({"eventType": "refund.authorize", "payload": {}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "no_endpoint");
    assert_eq!(answer["decision"], Value::Null);
}

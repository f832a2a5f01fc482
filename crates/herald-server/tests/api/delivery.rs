//! Delivery end to end: fan-out, filters, signatures, retries, resend, recover, rotation,
//! idempotency and payload fidelity, against real receivers.

use std::sync::Arc;
use std::time::Duration;

use herald_core::{Clock, ManualClock, SystemClock};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{verify, Receiver, Reply, TestHerald};

async fn secret_of(herald: &TestHerald, app: &str, endpoint: &Value) -> String {
    let (_, secret) = herald
        .get(&format!(
            "/app/{app}/endpoint/{}/secret",
            endpoint["id"].as_str().unwrap()
        ))
        .await;
    secret["key"].as_str().unwrap().to_owned()
}

async fn deliveries_of(herald: &TestHerald, app: &str, msg: &str) -> Vec<Value> {
    let (_, list) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    list["data"].as_array().cloned().unwrap()
}

#[tokio::test]
async fn fan_out_reaches_three_endpoints_each_signed_with_its_own_secret() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    let mut secrets = Vec::new();
    for r in &receivers {
        let endpoint = herald.endpoint(&app, json!({"url": r.url})).await;
        secrets.push(secret_of(&herald, &app, &endpoint).await);
    }
    assert_eq!(secrets.len(), 3);
    assert!(secrets[0] != secrets[1] && secrets[1] != secrets[2]);

    let msg = herald
        .publish(
            &app,
            json!({"eventType": "contact.created", "payload": {"email": "a@example.com"}}),
        )
        .await;
    for (r, secret) in receivers.iter().zip(&secrets) {
        let got = r.wait_for(1).await;
        assert_eq!(got[0].header("webhook-id"), msg);
        assert_eq!(got[0].header("svix-id"), msg);
        assert_eq!(got[0].header("content-type"), "application/json");
        assert_eq!(&got[0].body[..], br#"{"email":"a@example.com"}"#);
        assert!(
            verify(secret, &got[0]),
            "signed with the endpoint's own secret"
        );
        let other = secrets.iter().find(|s| *s != secret).unwrap();
        assert!(
            !verify(other, &got[0]),
            "not verifiable with another endpoint's secret"
        );
    }
    herald.stop().await;
}

/// Verifies an ed25519 (`v1a`) signature with the public key `whpk_…`, independently of
/// Herald's code. (The `standardwebhooks` crate, 1.0, verifies only `v1`.)
fn verify_ed25519(public_key: &str, got: &crate::helpers::Received) -> bool {
    use base64::Engine;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(public_key.strip_prefix("whpk_").unwrap())
        .unwrap();
    let key = VerifyingKey::from_bytes(&key.try_into().unwrap()).unwrap();
    let mut content = format!(
        "{}.{}.",
        got.header("webhook-id"),
        got.header("webhook-timestamp")
    )
    .into_bytes();
    content.extend_from_slice(&got.body);
    got.header("webhook-signature").split(' ').any(|sig| {
        let Some(encoded) = sig.strip_prefix("v1a,") else {
            return false;
        };
        let Ok(bytes) = b64.decode(encoded) else {
            return false;
        };
        Signature::from_slice(&bytes).is_ok_and(|s| key.verify(&content, &s).is_ok())
    })
}

#[tokio::test]
async fn an_ed25519_endpoint_gets_v1a_signatures_that_verify_with_its_public_key() {
    use base64::Engine;
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let seed = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let endpoint = herald
        .endpoint(
            &app,
            json!({"url": receiver.url, "secret": format!("whsk_{seed}")}),
        )
        .await;
    let public = secret_of(&herald, &app, &endpoint).await;
    assert!(
        public.starts_with("whpk_"),
        "the secret key is never shown: {public}"
    );
    herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert!(got[0].header("webhook-signature").starts_with("v1a,"));
    assert!(verify_ed25519(&public, &got[0]));
    let mut tampered = got[0].clone();
    tampered.body = axum::body::Bytes::from_static(br#"{"n":2}"#);
    assert!(!verify_ed25519(&public, &tampered));

    // A malformed key is a 422 that says why.
    let (status, refused) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": receiver.url, "secret": "whsk_YWJj"}),
        )
        .await;
    assert_eq!(
        status,
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        "{refused}"
    );
    assert!(refused["detail"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("ed25519"));
}

#[tokio::test]
async fn event_type_and_channel_filters_choose_the_endpoints() {
    let herald = TestHerald::start().await;
    herald.event_type("user.created").await;
    let app = herald.app("acme").await;
    let (typed, eu, all) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    herald
        .endpoint(
            &app,
            json!({"url": typed.url, "filterTypes": ["user.created"]}),
        )
        .await;
    herald
        .endpoint(&app, json!({"url": eu.url, "channels": ["eu"]}))
        .await;
    herald.endpoint(&app, json!({"url": all.url})).await;

    let created_us = herald
        .publish(
            &app,
            json!({"eventType": "user.created", "channels": ["us"], "payload": {}}),
        )
        .await;
    let deleted_eu = herald
        .publish(
            &app,
            json!({"eventType": "user.deleted", "channels": ["eu"], "payload": {}}),
        )
        .await;

    let ids = |got: Vec<crate::helpers::Received>| -> Vec<String> {
        let mut ids: Vec<_> = got
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(typed.wait_for(1).await), [created_us.as_str()]);
    assert_eq!(ids(eu.wait_for(1).await), [deleted_eu.as_str()]);
    let mut both = vec![created_us.clone(), deleted_eu.clone()];
    both.sort();
    assert_eq!(ids(all.wait_for(2).await), both);
    // Deliveries exist only for matching endpoints, so nothing else can arrive later.
    assert_eq!(deliveries_of(&herald, &app, &created_us).await.len(), 2);
    assert_eq!(deliveries_of(&herald, &app, &deleted_eu).await.len(), 2);
}

#[tokio::test]
async fn disabled_endpoint_receives_nothing() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let (on, off) = (Receiver::start().await, Receiver::start().await);
    herald.endpoint(&app, json!({"url": on.url})).await;
    let disabled = herald
        .endpoint(&app, json!({"url": off.url, "disabled": true}))
        .await;

    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    on.wait_for(1).await;
    herald.wait_recorded(1).await;
    let deliveries = deliveries_of(&herald, &app, &msg).await;
    assert_eq!(deliveries.len(), 1);
    assert_ne!(deliveries[0]["id"], disabled["id"]);
    assert!(off.received().is_empty());
}

#[tokio::test]
async fn failed_attempt_is_retried_on_schedule_and_both_are_logged() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500]);
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;

    herald.wait_recorded(1).await;
    let deliveries = deliveries_of(&herald, &app, &msg).await;
    assert_eq!(deliveries[0]["status"], 1, "pending a retry");
    assert_eq!(deliveries[0]["statusText"], "pending");
    let next: chrono::DateTime<chrono::Utc> = deliveries[0]["nextAttempt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let wait = (next - clock.now()).num_milliseconds();
    assert!(
        (3_900..=6_100).contains(&wait),
        "second attempt 5 s ± 20 % later, got {wait} ms"
    );

    clock.advance(Duration::from_secs(6));
    receiver.wait_for(2).await;
    herald.wait_recorded(2).await;
    let attempts = herald.attempts(&app, &msg).await;
    let codes: Vec<_> = attempts
        .iter()
        .map(|a| a["responseStatusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [200, 500], "newest first");
    assert_eq!(attempts[1]["status"], 2);
    assert_eq!(attempts[1]["errorKind"], "http_status");
    assert_eq!(attempts[0]["status"], 0);
    assert_eq!(attempts[0]["response"], "received");
    assert_eq!(
        deliveries_of(&herald, &app, &msg).await[0]["statusText"],
        "success"
    );
}

#[tokio::test]
async fn retry_after_postpones_the_next_attempt() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.script([Reply {
        status: 429,
        retry_after: Some(120),
    }]);
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    let next: chrono::DateTime<chrono::Utc> = deliveries_of(&herald, &app, &msg).await[0]
        ["nextAttempt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (next - clock.now()).num_seconds() >= 119,
        "Retry-After: 120 honoured"
    );
}

#[tokio::test]
async fn exhausted_delivery_is_failed_then_resent_by_hand() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.retry_schedule = vec![]
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([503]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    assert_eq!(
        deliveries_of(&herald, &app, &msg).await[0]["statusText"],
        "fail"
    );

    let ep = endpoint["id"].as_str().unwrap();
    let (status, body) = herald
        .post(
            &format!("/app/{app}/msg/{msg}/endpoint/{ep}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body, json!({}));
    receiver.wait_for(2).await;
    herald.wait_recorded(2).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts[0]["triggerType"], 1, "manual");
    assert_eq!(attempts[0]["status"], 0);
    assert_eq!(
        deliveries_of(&herald, &app, &msg).await[0]["statusText"],
        "success"
    );
}

/// The task an answer names, once the task runner has run `n` tasks to their end.
async fn task_once_finished(herald: &TestHerald, answer: &Value, n: u64) -> Value {
    herald.wait_tasks_finished(n).await;
    let id = answer["id"].as_str().unwrap();
    let (_, found) = herald.get(&format!("/background-task/{id}")).await;
    assert_eq!(found["status"], "finished", "{found}");
    found
}

/// A range larger than `api.bulk_in_request` becomes a running background task: a recover
/// says first how many deliveries it will touch, a replay-missing queues the first
/// messages in the request and leaves the rest to the task. Both finish, and every
/// message arrives once more.
#[tokio::test]
async fn large_recover_and_replay_ranges_run_as_background_tasks() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.retry_schedule = vec![];
        // Five failures in a row would open the circuit and hold the recovered back.
        c.delivery.circuit_breaker_failures = 100;
        c.api.bulk_in_request = 2;
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500; 5]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    for n in 0..5 {
        let body = json!({"eventType": "a", "payload": {"n": n}});
        herald.publish(&app, body).await;
    }
    herald.wait_recorded(5).await;

    let ep = endpoint["id"].as_str().unwrap();
    let path = format!("/app/{app}/endpoint/{ep}/recover");
    let (status, task) = herald.post(&path, json!({"since": since})).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(
        (task["status"].as_str(), task["recovered"].as_u64()),
        (Some("running"), Some(0))
    );
    let found = task_once_finished(&herald, &task, 1).await;
    assert_eq!(found["data"], json!({"total": 5, "recovered": 5}));
    receiver.wait_for(10).await;

    let late = Receiver::start().await;
    let late_endpoint = herald.endpoint(&app, json!({"url": late.url})).await;
    let late_ep = late_endpoint["id"].as_str().unwrap();
    let path = format!("/app/{app}/endpoint/{late_ep}/replay-missing");
    let (status, task) = herald.post(&path, json!({"since": since})).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(
        (task["status"].as_str(), task["replayed"].as_u64()),
        (Some("running"), Some(2))
    );
    let found = task_once_finished(&herald, &task, 2).await;
    assert_eq!(found["data"], json!({"replayed": 5}));
    let got = late.wait_for(5).await;
    let ids: std::collections::HashSet<_> = got
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(ids.len(), 5, "each message once");
}

#[tokio::test]
async fn recover_sends_failed_messages_since_a_time_again() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.retry_schedule = vec![]
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500, 500]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let first = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    let second = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 2}}))
        .await;
    herald.wait_recorded(2).await;

    let ep = endpoint["id"].as_str().unwrap();
    let (status, task) = herald
        .post(
            &format!("/app/{app}/endpoint/{ep}/recover"),
            json!({"since": since}),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["task"], "endpoint.recover");
    assert_eq!(task["recovered"], 2);
    // Svix's SDKs look the task up by its id: it is there, finished, with the count.
    let id = task["id"].as_str().unwrap();
    let (status, found) = herald.get(&format!("/background-task/{id}")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["status"], "finished");
    assert_eq!(found["task"], "endpoint.recover");
    assert_eq!(found["data"], json!({"total": 2, "recovered": 2}));
    let got = receiver.wait_for(4).await;
    let mut ids: Vec<_> = got[2..]
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn rotated_secret_signs_beside_the_old_one_during_the_overlap() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let old = secret_of(&herald, &app, &endpoint).await;
    let ep = endpoint["id"].as_str().unwrap();
    let (status, rotated) = herald
        .post(
            &format!("/app/{app}/endpoint/{ep}/secret/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let new = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert_eq!(secret_of(&herald, &app, &endpoint).await, new);

    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(verify(&new, &got[0]), "verifies with the new secret");
    assert!(
        verify(&old, &got[0]),
        "and with the old one during the overlap"
    );
}

#[tokio::test]
async fn old_secret_stops_signing_after_the_overlap() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let ep = endpoint["id"].as_str().unwrap();
    let (_, rotated) = herald
        .post(
            &format!("/app/{app}/endpoint/{ep}/secret/rotate"),
            json!({"gracePeriodSeconds": 60}),
        )
        .await;
    clock.advance(Duration::from_secs(61));
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 1);
    assert!(got[0].header("webhook-signature").starts_with("v1,"));
    assert!(!rotated["key"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn same_idempotency_key_publishes_once() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = herald
            .request(Method::POST, &format!("/app/{app}/msg"))
            .header("idempotency-key", "order-42")
            .json(&json!({"eventType": "a", "payload": {"order": 42}}))
            .send()
            .await
            .unwrap();
        let (status, msg) = crate::helpers::read(resp).await;
        assert_eq!(status, 202);
        ids.push(msg["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1]);
    let (_, list) = herald.get(&format!("/app/{app}/msg")).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "one message, so one delivery"
    );
    assert_eq!(receiver.wait_for(1).await[0].header("webhook-id"), ids[0]);
}

#[tokio::test]
async fn unicode_and_large_payloads_arrive_byte_for_byte() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let text = "Zoë → 東京 🚀 \\\"quoted\\\" ".repeat(20_000);
    // Raw JSON with unusual spacing: it must reach the receiver exactly as sent.
    let payload = format!("{{ \"note\" :  \"{text}\",\n \"n\": 1.50 }}");
    assert!(payload.len() > 512 * 1024, "{}", payload.len());
    let body = format!(r#"{{"eventType": "a", "payload": {payload}}}"#);
    let resp = herald
        .request(Method::POST, &format!("/app/{app}/msg"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body.len(), payload.len());
    assert!(
        got[0].body == payload.as_bytes(),
        "payload changed in transit"
    );
}

#[tokio::test]
async fn attempt_log_names_connection_refused_and_stores_what_was_sent_and_a_capped_response() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.retry_schedule = vec![];
        c.delivery.max_response_bytes = 4;
    })
    .await;
    let app = herald.app("acme").await;
    // A port that was just free: nothing listens there, so the connection is refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    herald
        .endpoint(&app, json!({"url": format!("http://{closed}/hook")}))
        .await;
    let receiver = Receiver::start().await;
    herald
        .endpoint(
            &app,
            json!({"url": receiver.url, "headers": {"X-Auth-Token": "t0ps3cret", "X-Tenant": "7"}}),
        )
        .await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(2).await;
    let attempts = herald.attempts(&app, &msg).await;
    let refused = attempts
        .iter()
        .find(|a| a["responseStatusCode"] == 0)
        .expect("refused attempt");
    assert_eq!(refused["errorKind"], "connection_refused", "{refused}");
    assert_eq!(refused["status"], 2);
    let ok = attempts
        .iter()
        .find(|a| a["responseStatusCode"] == 200)
        .expect("good attempt");
    assert_eq!(ok["response"], "rece", "cut at max_response_bytes");
    assert_eq!(ok["responseTruncated"], true);
    assert_eq!(refused["responseTruncated"], false);
    // What was sent is recorded, even when nothing answered; credentials are masked.
    for attempt in [ok, refused] {
        let sent = &attempt["requestHeaders"];
        assert_eq!(sent["webhook-id"], msg.as_str(), "{attempt}");
        assert!(sent["webhook-signature"]
            .as_str()
            .unwrap()
            .starts_with("v1,"));
    }
    assert_eq!(ok["requestHeaders"]["x-tenant"], "7");
    assert_eq!(ok["requestHeaders"]["x-auth-token"], "••••••");
    assert_eq!(receiver.received()[0].header("x-auth-token"), "t0ps3cret");
}

#[tokio::test]
async fn slow_endpoint_attempt_times_out() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.retry_schedule = vec![];
        c.delivery.timeout = Duration::from_millis(300);
    })
    .await;
    let app = herald.app("acme").await;
    // Accepts connections but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    herald
        .endpoint(&app, json!({"url": format!("http://{addr}/hook")}))
        .await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts[0]["errorKind"], "timeout", "{}", attempts[0]);
}

#[tokio::test]
async fn loopback_is_refused_unless_allowed() {
    // Endpoints made while loopback was allowed, then the operator takes it away.
    let mut herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.retry_schedule = vec![];
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    herald.endpoint(&app, json!({"url": by_name})).await;
    herald
        .restart_with(|c| c.delivery.allowed_networks = vec![])
        .await;
    // New ones are refused at once, naming the setting that would allow them.
    for url in [&receiver.url, &by_name] {
        let (status, body) = herald
            .post(&format!("/app/{app}/endpoint"), json!({"url": url}))
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(
            body.to_string().contains("delivery.allowed_networks"),
            "{body}"
        );
    }
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(2).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a["errorKind"], "blocked", "{a}");
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn custom_headers_are_sent_but_cannot_override_signatures() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald
        .endpoint(&app, json!({"url": receiver.url, "headers": {"X-Team": "billing", "Authorization": "Bearer abc"}}))
        .await;
    let (status, refused) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": receiver.url, "headers": {"webhook-signature": "x"}}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("x-team"), "billing");
    assert_eq!(got[0].header("authorization"), "Bearer abc");
}

#[tokio::test]
async fn endpoint_disabled_after_publishing_gets_nothing_more() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;

    let ep = endpoint["id"].as_str().unwrap();
    let (status, _) = herald
        .call(
            Method::PATCH,
            &format!("/app/{app}/endpoint/{ep}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    clock.advance(Duration::from_secs(7));
    herald.wait_recorded(2).await; // the retry is settled by canceling it
    assert_eq!(receiver.received().len(), 1, "no attempt after disabling");
    let delivery = &deliveries_of(&herald, &app, &msg).await[0];
    assert_eq!(delivery["statusText"], "canceled");
    assert_eq!(delivery["status"], 4);
    let (status, body) = herald
        .post(
            &format!("/app/{app}/msg/{msg}/endpoint/{ep}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "endpoint_disabled");
}

#[tokio::test]
async fn backlog_deeper_than_a_lane_drains_without_further_signals() {
    // On a manual clock the periodic sweep never fires: the backlog must drain on attempts
    // finishing alone, one lane-full at a time.
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock, |c| {
        c.delivery.retry_schedule = vec![];
        c.delivery.endpoint_concurrency = 2;
        // Forty failures in a row would open the circuit, which this test is not about.
        c.delivery.circuit_breaker_failures = 0;
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500; 40]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    for i in 0..40 {
        herald
            .publish(&app, json!({"eventType": "a", "payload": {"i": i}}))
            .await;
    }
    herald.wait_recorded(40).await;

    // One recover: one wake-up for 40 deliveries, ten times a lane's depth of 4.
    let ep = endpoint["id"].as_str().unwrap();
    let (status, task) = herald
        .post(
            &format!("/app/{app}/endpoint/{ep}/recover"),
            json!({"since": since}),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(receiver.wait_for(80).await.len(), 80);
}

#[tokio::test]
async fn slow_and_dead_endpoints_do_not_hold_back_healthy_ones() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.timeout = Duration::from_secs(60);
        c.delivery.endpoint_concurrency = 2;
    })
    .await;
    let (slow_app, healthy_app) = (herald.app("slow-co").await, herald.app("healthy-co").await);
    // Answers after 30 s: its lane stays saturated for the whole test.
    let slow = crate::helpers::Receiver::start_with_delay(Duration::from_secs(30)).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let healthy = Receiver::start().await;
    herald.endpoint(&slow_app, json!({"url": slow.url})).await;
    herald.endpoint(&slow_app, json!({"url": dead})).await;
    herald
        .endpoint(&slow_app, json!({"url": healthy.url}))
        .await;
    herald
        .endpoint(&healthy_app, json!({"url": healthy.url}))
        .await;

    for i in 0..20 {
        herald
            .publish(&slow_app, json!({"eventType": "a", "payload": {"i": i}}))
            .await;
        herald
            .publish(&healthy_app, json!({"eventType": "a", "payload": {"i": i}}))
            .await;
    }
    // 40 healthy deliveries (20 per application) while the slow lane holds every slot it has.
    assert_eq!(healthy.wait_for(40).await.len(), 40);
    let in_flight = slow.received().len();
    assert!(
        in_flight <= 2,
        "the slow lane runs at its own concurrency, no more: {in_flight}"
    );
}

#[tokio::test]
async fn content_past_retention_is_removed_and_metadata_kept() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock.clone(), |c| {
        c.retention.period = Duration::from_secs(3600);
        c.retention.interval = Duration::from_secs(600);
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {"card": "4242"}}))
        .await;
    herald.wait_recorded(1).await;

    clock.advance(Duration::from_secs(2 * 3600));
    herald.wait_purged(2).await; // the payload and the response body
    let (_, message) = herald.get(&format!("/app/{app}/msg/{msg}")).await;
    assert_eq!(message["payload"], json!({"expired": true}));
    assert_eq!(message["eventType"], "a", "metadata kept");
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts[0]["response"], "EXPUNGED");
    assert_eq!(attempts[0]["responseStatusCode"], 200, "metadata kept");
}

#[tokio::test]
async fn messages_past_delete_after_are_deleted_with_their_attempts() {
    use reqwest::StatusCode;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock.clone(), |c| {
        c.retention.period = Duration::from_secs(3600);
        c.retention.delete_after = Some(Duration::from_secs(2 * 3600));
        c.retention.interval = Duration::from_secs(600);
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    herald.wait_recorded(1).await;

    // Past the payload period only: the message stays, without its payload.
    clock.advance(Duration::from_secs(90 * 60));
    herald.wait_purged(2).await;
    let (status, _) = herald.get(&format!("/app/{app}/msg/{msg}")).await;
    assert_eq!(status, StatusCode::OK);
    // A newer message (on SQLite the newest is always kept: the stream counts from it).
    let newer = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 2}}))
        .await;
    herald.wait_recorded(2).await;
    // Past `delete_after`: gone, with its attempts.
    clock.advance(Duration::from_secs(60 * 60));
    herald.wait_purged(3).await;
    let (status, _) = herald.get(&format!("/app/{app}/msg/{msg}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, listed) = herald.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
    assert!(
        status == StatusCode::NOT_FOUND || listed["data"] == json!([]),
        "{status} {listed}"
    );
    let (status, _) = herald.get(&format!("/app/{app}/msg/{newer}")).await;
    assert_eq!(status, StatusCode::OK, "not old enough");
}

#[tokio::test]
async fn endpoint_rate_limit_spaces_attempts() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald
        .endpoint(&app, json!({"url": receiver.url, "throttleRate": 1}))
        .await;
    for i in 0..3 {
        herald
            .publish(&app, json!({"eventType": "a", "payload": {"i": i}}))
            .await;
    }
    // One a second: each attempt waits for the clock.
    herald.wait_recorded(1).await;
    clock.advance(Duration::from_secs(1));
    herald.wait_recorded(2).await;
    clock.advance(Duration::from_secs(1));
    herald.wait_recorded(3).await;
    let (_, msgs) = herald.get(&format!("/app/{app}/msg")).await;
    let mut times = Vec::new();
    for m in msgs["data"].as_array().unwrap() {
        let attempts = herald.attempts(&app, m["id"].as_str().unwrap()).await;
        let at: chrono::DateTime<chrono::Utc> =
            attempts[0]["timestamp"].as_str().unwrap().parse().unwrap();
        times.push(at);
    }
    times.sort();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::seconds(1),
            "attempts at {times:?}"
        );
    }
}

#[tokio::test]
async fn an_endpoint_answering_410_gone_is_disabled() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([410]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    let ep = endpoint["id"].as_str().unwrap();
    let (_, now) = herald.get(&format!("/app/{app}/endpoint/{ep}")).await;
    assert_eq!(now["disabled"], true);
    assert_eq!(
        deliveries_of(&herald, &app, &msg).await[0]["statusText"],
        "fail",
        "no retry"
    );
    let (_, later) = herald
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a", "payload": {}}),
        )
        .await;
    let later_id = later["id"].as_str().unwrap();
    assert!(
        deliveries_of(&herald, &app, later_id).await.is_empty(),
        "nothing more is queued"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_the_whole_endpoint() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald =
        TestHerald::start_with(clock.clone(), |c| c.delivery.endpoint_concurrency = 1).await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.script([Reply {
        status: 429,
        retry_after: Some(30),
    }]);
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let first = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    // Published a moment apart, so the first is attempted first.
    clock.advance(Duration::from_millis(1));
    let second = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 2}}))
        .await;
    herald.wait_recorded(1).await;
    clock.advance(Duration::from_secs(31));
    herald.wait_recorded(3).await;
    let at = |attempt: &Value| -> chrono::DateTime<chrono::Utc> {
        attempt["timestamp"].as_str().unwrap().parse().unwrap()
    };
    let refused = herald.attempts(&app, &first).await.last().cloned().unwrap();
    assert_eq!(refused["responseStatusCode"], 429);
    let next = herald.attempts(&app, &second).await[0].clone();
    assert!(
        at(&next) - at(&refused) >= chrono::Duration::seconds(30),
        "the other message waited too"
    );
}

#[tokio::test]
async fn secrets_sealed_at_rest_still_sign_and_a_bad_key_stops_the_start() {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.encryption.key = Some(herald_server::config::Secret::new(key));
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let secret = secret_of(&herald, &app, &endpoint).await;
    assert!(
        secret.starts_with("whsec_"),
        "the owner sees the secret itself"
    );
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert!(verify(&secret, &got[0]));

    let mut config = herald_server::Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = dir.path().to_owned();
    config.encryption.key = Some(herald_server::config::Secret::new("c2hvcnQ="));
    let refused = herald_server::start(config, Arc::new(SystemClock)).await;
    let error = format!("{:#}", refused.err().expect("a short key is refused"));
    assert!(error.contains("32 bytes"), "{error}");
}

#[tokio::test]
async fn credentials_in_the_endpoint_url_are_sent_as_basic_auth() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let url = receiver.url.replace("http://", "http://hook-user:s3cret@");
    herald.endpoint(&app, json!({"url": url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    // "hook-user:s3cret" in base64.
    assert_eq!(
        got[0].header("authorization"),
        "Basic aG9vay11c2VyOnMzY3JldA=="
    );
    herald.wait_recorded(1).await;
    let logged = herald.attempts(&app, &msg).await[0]["url"].to_string();
    assert!(
        !logged.contains("s3cret"),
        "the attempt log hides them: {logged}"
    );
}

#[tokio::test]
async fn an_endpoint_url_written_in_capitals_is_delivered_to() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let shouted = receiver.url.replace("http://", "HTTP://");
    herald.endpoint(&app, json!({"url": shouted})).await;
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    receiver.wait_for(1).await;
}

#[tokio::test]
async fn a_password_in_the_endpoint_url_is_write_only_and_survives_updates() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let url = receiver.url.replace("http://", "http://hook-user:s3cret@");
    let endpoint = herald.endpoint(&app, json!({"url": url})).await;
    let shown = endpoint["url"].as_str().unwrap().to_owned();
    assert_eq!(shown, url.replace("s3cret", "********"), "{endpoint}");
    let path = format!("/app/{app}/endpoint/{}", endpoint["id"].as_str().unwrap());
    let (_, listed) = herald.get(&format!("/app/{app}/endpoint")).await;
    assert!(!listed.to_string().contains("s3cret"), "{listed}");

    // Sending back what was shown (a full update, as SDKs do) keeps the password.
    let (status, updated) = herald
        .call(
            reqwest::Method::PUT,
            &path,
            Some(json!({"url": shown, "description": "renamed"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(
        got[0].header("authorization"),
        "Basic aG9vay11c2VyOnMzY3JldA==",
        "still hook-user:s3cret"
    );
    // Nor does any other view of the endpoint show it.
    let msg = got[0].header("webhook-id").to_owned();
    let (_, by_message) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    assert!(by_message.to_string().contains("hook-user"), "{by_message}");
    assert!(!by_message.to_string().contains("s3cret"), "{by_message}");

    // The hidden password never follows the URL to another host.
    let elsewhere = shown.replace("127.0.0.1", "localhost");
    let (status, moved) = herald
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"url": elsewhere})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[1].header("authorization"),
        "Basic aG9vay11c2VyOioqKioqKioq",
        "the literal placeholder, not the secret"
    );
}

#[tokio::test]
async fn a_message_with_deliver_at_is_delivered_then_and_not_before() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let at = clock.now() + chrono::Duration::hours(1);
    let body = json!({"eventType": "a", "payload": {"later": true}, "deliverAt": at});
    let later = herald.publish(&app, body).await;
    // Readable at once, and it says when it will go.
    let (_, destinations) = herald
        .get(&format!("/app/{app}/msg/{later}/endpoint"))
        .await;
    let next: chrono::DateTime<chrono::Utc> = destinations["data"][0]["nextAttempt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(next.timestamp_millis(), at.timestamp_millis());

    // A minute before: a message published now goes, the scheduled one waits.
    clock.advance(Duration::from_secs(59 * 60));
    let now = herald
        .publish(&app, json!({"eventType": "a", "payload": {"later": false}}))
        .await;
    herald.wait_recorded(1).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["webhook-id"], now.as_str());

    clock.advance(Duration::from_secs(2 * 60));
    herald.wait_recorded(2).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].headers["webhook-id"], later.as_str());

    // Well in the past, or further ahead than 30 days: refused, naming the field.
    for wrong in [
        clock.now() - chrono::Duration::hours(1),
        clock.now() + chrono::Duration::days(40),
    ] {
        let body = json!({"eventType": "a", "payload": {}, "deliverAt": wrong});
        let (status, refused) = herald.post(&format!("/app/{app}/msg"), body).await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["detail"][0]["loc"], json!(["body", "deliverAt"]));
    }
}

#[tokio::test]
async fn the_trace_of_the_publish_request_goes_on_to_the_receiver() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut ids = Vec::new();
    for traceparent in [Some(parent), None, Some("00-not-a-trace-01")] {
        let mut request = herald
            .request(Method::POST, &format!("/app/{app}/msg"))
            .json(&json!({"eventType": "a", "payload": {}}));
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 202);
        let msg: Value = response.json().await.unwrap();
        ids.push(msg["id"].as_str().unwrap().to_owned());
    }
    let got = receiver.wait_for(3).await;
    // What the delivery of the i-th message carried (deliveries may arrive in any order).
    let sent = |i: usize| {
        let delivery = got
            .iter()
            .find(|r| r.headers["webhook-id"] == ids[i].as_str())
            .expect("delivered");
        (delivery.headers.get("traceparent")).map(|v| v.to_str().unwrap().to_owned())
    };
    let first = sent(0).expect("the trace goes on");
    let [version, trace, span, flags]: [&str; 4] =
        first.split('-').collect::<Vec<_>>().try_into().unwrap();
    assert_eq!(
        (version, trace, flags),
        ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    );
    assert_ne!(
        span, "00f067aa0ba902b7",
        "the delivery is a step of its own"
    );
    assert_eq!(span.len(), 16);
    assert_eq!(sent(1), None, "no trace, none invented");
    assert_eq!(sent(2), None, "a malformed one is ignored");
}

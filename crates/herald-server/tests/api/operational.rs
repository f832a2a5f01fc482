//! Endpoint health end to end: the circuit breaker, auto-disable, per-endpoint concurrency
//! caps, and the operational webhooks that tell the provider about them.

use std::sync::Arc;
use std::time::Duration;

use herald_core::{Clock, ManualClock, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Receiver, TestHerald};

/// Registers `receiver` as an operational endpoint, for the given event types (all when
/// `None`); returns the endpoint as Herald answered.
async fn operational_endpoint(
    herald: &TestHerald,
    receiver: &Receiver,
    types: Option<&[&str]>,
) -> Value {
    let mut body = json!({ "url": receiver.url });
    if let Some(types) = types {
        body["eventTypes"] = json!(types);
    }
    let (status, endpoint) = herald.post("/operational-webhook/endpoint", body).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    endpoint
}

/// The operational events a receiver got, as JSON.
fn events(receiver: &Receiver) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn types_of(events: &[Value]) -> Vec<&str> {
    let mut types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort_unstable();
    types
}

fn timestamp(attempt: &Value) -> chrono::DateTime<chrono::Utc> {
    attempt["timestamp"].as_str().unwrap().parse().unwrap()
}

/// Asserts that `msg`'s next attempt is when the circuit opened at `opened_at` (60 s of
/// cool-down) lets a probe through, not earlier.
async fn assert_waits_for_the_probe(
    herald: &TestHerald,
    app: &str,
    msg: &str,
    opened_at: chrono::DateTime<chrono::Utc>,
) {
    let (_, destinations) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    let next: chrono::DateTime<chrono::Utc> = destinations["data"][0]["nextAttempt"]
        .as_str()
        .expect("a next attempt")
        .parse()
        .unwrap();
    assert!(
        next >= opened_at + chrono::Duration::seconds(59),
        "{destinations}"
    );
}

#[tokio::test]
async fn an_open_circuit_holds_attempts_back_until_a_probe_succeeds() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock.clone(), |c| {
        c.delivery.endpoint_concurrency = 1;
        c.delivery.circuit_breaker_failures = 3;
        c.delivery.circuit_breaker_cooldown = Duration::from_secs(60);
        c.delivery.jitter = 0.0;
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500, 500, 500]);
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let mut msgs = Vec::new();
    for n in 0..5 {
        msgs.push(
            herald
                .publish(&app, json!({"eventType": "a", "payload": {"n": n}}))
                .await,
        );
        clock.advance(Duration::from_millis(1));
    }
    // Three failures open the circuit: the other two messages are not attempted.
    herald.wait_recorded(3).await;
    let opened_at = clock.now();
    let open = "herald_endpoint_circuits_open";
    assert!(
        herald.metrics().await.contains(&format!("{open} 1\n")),
        "counted open"
    );
    // The failed ones show when they will be tried again: when the circuit lets a probe
    // through, not their schedule's 5 s, which would be in the past while it is open.
    let mut held_back = 0;
    for msg in &msgs {
        if herald.attempts(&app, msg).await.is_empty() {
            continue; // published after the circuit opened: its own time until the probe
        }
        assert_waits_for_the_probe(&herald, &app, msg, opened_at).await;
        held_back += 1;
    }
    assert_eq!(held_back, 3);
    // Published while the circuit is open, a message is due at once yet waits for the
    // probe: it soon says so too.
    let moved = herald.held_back();
    let late = herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 5}}))
        .await;
    herald.wait_held_back(moved + 1).await;
    assert_waits_for_the_probe(&herald, &app, &late, opened_at).await;
    msgs.push(late);
    // The first retries fall due (5 s) while the circuit is open: still nothing is sent.
    clock.advance(Duration::from_secs(10));
    clock.advance(Duration::from_secs(51));
    // After the cool-down one probe goes; it succeeds and the rest follows.
    herald.wait_recorded(9).await;
    assert_eq!(receiver.received().len(), 9, "3 failures, then 6 successes");
    assert!(
        herald.metrics().await.contains(&format!("{open} 0\n")),
        "closed again"
    );
    let mut all = Vec::new();
    for msg in &msgs {
        all.extend(herald.attempts(&app, msg).await);
    }
    let failed: Vec<_> = all
        .iter()
        .filter(|a| a["responseStatusCode"] == 500)
        .collect();
    let later: Vec<_> = all
        .iter()
        .filter(|a| a["responseStatusCode"] == 200)
        .collect();
    assert_eq!((failed.len(), later.len()), (3, 6));
    for attempt in &later {
        assert!(
            timestamp(attempt) >= opened_at + chrono::Duration::seconds(60),
            "no attempt while the circuit was open: {attempt}"
        );
    }
    // Held-back deliveries were not charged an attempt.
    for msg in &msgs[3..] {
        assert_eq!(herald.attempts(&app, msg).await.len(), 1);
    }
}

#[tokio::test]
async fn an_endpoint_disabled_while_its_circuit_is_open_starts_afresh_when_enabled() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock.clone(), |c| {
        c.delivery.circuit_breaker_failures = 2;
        c.delivery.circuit_breaker_cooldown = Duration::from_secs(60);
        c.delivery.retry_schedule = vec![Duration::from_secs(30).into()];
        c.delivery.jitter = 0.0;
    })
    .await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500, 500]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let ep = format!("/app/{app}/endpoint/{}", endpoint["id"].as_str().unwrap());
    for n in 0..2 {
        herald
            .publish(&app, json!({"eventType": "a", "payload": {"n": n}}))
            .await;
    }
    herald.wait_recorded(2).await; // two failures: the circuit opens
    let (status, _) = herald
        .call(Method::PATCH, &ep, Some(json!({"disabled": true})))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The retries fall due after the cool-down, to a disabled endpoint: canceled.
    clock.advance(Duration::from_secs(61));
    herald.wait_recorded(4).await;
    let (status, _) = herald
        .call(Method::PATCH, &ep, Some(json!({"disabled": false})))
        .await;
    assert_eq!(status, StatusCode::OK);
    herald
        .publish(&app, json!({"eventType": "a", "payload": {"n": 2}}))
        .await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3, "delivered at once after being enabled again");
}

#[tokio::test]
async fn an_endpoint_failing_past_disable_after_is_disabled_and_the_provider_told() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock.clone(), |c| {
        c.delivery.disable_after = Duration::from_secs(3600);
        c.delivery.circuit_breaker_failures = 0;
        c.delivery.jitter = 0.0;
        c.delivery.retry_schedule = vec![Duration::from_secs(1800).into(); 3];
    })
    .await;
    let ops = Receiver::start().await;
    operational_endpoint(&herald, &ops, None).await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500; 10]);
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let ep_id = endpoint["id"].as_str().unwrap();
    ops.wait_for(1).await; // endpoint.created
    let first_failure = clock.now();
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(2).await; // endpoint.created, attempt 1
    let (_, ep) = herald.get(&format!("/app/{app}/endpoint/{ep_id}")).await;
    assert_eq!(ep["disabled"], false);
    let since: chrono::DateTime<chrono::Utc> =
        ep["failingSince"].as_str().unwrap().parse().unwrap();
    assert_eq!(since.timestamp_millis(), first_failure.timestamp_millis());
    clock.advance(Duration::from_secs(1800));
    herald.wait_recorded(3).await; // attempt 2, 30 minutes on: not yet disabled
    clock.advance(Duration::from_secs(1800));
    herald.wait_recorded(5).await; // attempt 3, an hour on: disabled, and the provider told
    let (_, ep) = herald.get(&format!("/app/{app}/endpoint/{ep_id}")).await;
    assert_eq!(ep["disabled"], true);

    let got = events(&ops);
    assert_eq!(types_of(&got), ["endpoint.created", "endpoint.disabled"]);
    let disabled = got
        .iter()
        .find(|e| e["type"] == "endpoint.disabled")
        .unwrap();
    assert_eq!(disabled["data"]["appId"], app);
    assert_eq!(disabled["data"]["appUid"], "acme");
    assert_eq!(disabled["data"]["endpointId"], ep_id);
    assert_eq!(disabled["data"]["trigger"], "automatic");
    let fail_since: chrono::DateTime<chrono::Utc> = disabled["data"]["failSince"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        fail_since.timestamp_millis(),
        first_failure.timestamp_millis()
    );

    // The remaining attempt is canceled, not made, and the provider learns the message
    // was given up on, with its last attempt.
    clock.advance(Duration::from_secs(1800));
    herald.wait_recorded(6).await;
    assert_eq!(receiver.received().len(), 3);
    ops.wait_for(3).await;
    let got = events(&ops);
    let exhausted = got
        .iter()
        .find(|e| e["type"] == "message.attempt.exhausted")
        .expect("message.attempt.exhausted");
    assert_eq!(exhausted["data"]["endpointId"], ep_id);
    assert_eq!(exhausted["data"]["lastAttempt"]["responseStatusCode"], 500);

    // Its owner enables it again: a fresh start, and the provider hears of it.
    let (status, ep) = herald
        .call(
            Method::PATCH,
            &format!("/app/{app}/endpoint/{ep_id}"),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ep}");
    assert!(ep.get("failingSince").is_none(), "{ep}");
    ops.wait_for(5).await;
    assert_eq!(
        types_of(&events(&ops)),
        [
            "endpoint.created",
            "endpoint.disabled",
            "endpoint.enabled",
            "endpoint.updated",
            "message.attempt.exhausted"
        ]
    );
}

#[tokio::test]
async fn failing_exhausted_and_recovered_messages_are_reported() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let herald = TestHerald::start_with(clock.clone(), |c| {
        c.delivery.circuit_breaker_failures = 0;
        c.delivery.jitter = 0.0;
        c.delivery.retry_schedule = vec![Duration::from_secs(1).into(); 4];
    })
    .await;
    let ops = Receiver::start().await;
    let watched = [
        "message.attempt.failing",
        "message.attempt.exhausted",
        "message.attempt.recovered",
    ];
    operational_endpoint(&herald, &ops, Some(&watched)).await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;

    // Four failures, then delivered: failing, then recovered.
    receiver.statuses([500, 500, 500, 500]);
    let recovered = herald
        .publish(
            &app,
            json!({"eventType": "a", "eventId": "evt-1", "payload": {}}),
        )
        .await;
    for settled in [1, 2, 3] {
        herald.wait_recorded(settled).await;
        clock.advance(Duration::from_secs(1));
    }
    herald.wait_recorded(5).await; // attempt 4 and the `failing` event
    clock.advance(Duration::from_secs(1));
    herald.wait_recorded(7).await; // attempt 5 and the `recovered` event

    // Five failures: failing, then exhausted.
    receiver.statuses([500; 5]);
    let exhausted = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    for settled in [8, 9, 10] {
        herald.wait_recorded(settled).await;
        clock.advance(Duration::from_secs(1));
    }
    herald.wait_recorded(12).await;
    clock.advance(Duration::from_secs(1));
    herald.wait_recorded(14).await;

    let got = events(&ops);
    let of = |msg: &str| -> Vec<&str> {
        got.iter()
            .filter(|e| e["data"]["msgId"] == msg)
            .map(|e| e["type"].as_str().unwrap())
            .collect()
    };
    assert_eq!(
        of(&recovered),
        ["message.attempt.failing", "message.attempt.recovered"]
    );
    assert_eq!(
        of(&exhausted),
        ["message.attempt.failing", "message.attempt.exhausted"]
    );
    let event = got
        .iter()
        .find(|e| e["type"] == "message.attempt.recovered")
        .unwrap();
    assert_eq!(event["data"]["appId"], app);
    assert_eq!(event["data"]["msgEventId"], "evt-1");
    assert_eq!(event["data"]["endpointId"], endpoint["id"]);
    assert_eq!(event["data"]["lastAttempt"]["responseStatusCode"], 200);
    let last = &herald.attempts(&app, &recovered).await[0];
    assert_eq!(event["data"]["lastAttempt"]["id"], last["id"]);
    let failing = got
        .iter()
        .find(|e| e["type"] == "message.attempt.failing")
        .unwrap();
    assert_eq!(failing["data"]["lastAttempt"]["responseStatusCode"], 500);
}

#[tokio::test]
async fn an_endpoint_concurrency_cap_is_honoured() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.endpoint_concurrency = 8;
    })
    .await;
    let app = herald.app("acme").await;
    let (status, refused) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "http://127.0.0.1:9/", "maxConcurrency": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["detail"][0]["loc"],
        json!(["body", "maxConcurrency"])
    );

    let capped = Receiver::start_with_delay(Duration::from_millis(100)).await;
    let open = Receiver::start_with_delay(Duration::from_millis(100)).await;
    let ep = herald
        .endpoint(&app, json!({"url": capped.url, "maxConcurrency": 2}))
        .await;
    assert_eq!(ep["maxConcurrency"], 2);
    herald.endpoint(&app, json!({"url": open.url})).await;
    for n in 0..12 {
        herald
            .publish(&app, json!({"eventType": "a", "payload": {"n": n}}))
            .await;
    }
    capped.wait_for(12).await;
    open.wait_for(12).await;
    assert_eq!(capped.peak_concurrency(), 2, "capped at its own limit");
    assert!(
        open.peak_concurrency() > 2,
        "the default allows more: {}",
        open.peak_concurrency()
    );
}

#[tokio::test]
async fn operational_endpoints_are_managed_by_admins_and_sign_their_webhooks() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    let ops_api = svix.operational_webhook().endpoint();
    let ops = Receiver::start().await;
    let mut new = svix::models::OperationalWebhookEndpointIn::new(ops.url.clone());
    new.uid = Some("pager".into());
    new.event_types = Some(["endpoint.created".to_string()].into());
    let created = ops_api.create(new, None).await.unwrap();
    assert_eq!(created.uid.as_deref(), Some("pager"));
    let listed = ops_api.list(None).await.unwrap();
    assert_eq!(listed.data.len(), 1);
    let fetched = ops_api.get("pager".into()).await.unwrap();
    assert_eq!(fetched.id, created.id);
    let secret = ops_api.get_secret(created.id.clone()).await.unwrap().key;

    let headers = [("x-team".to_string(), "ops".to_string())].into();
    ops_api
        .set_headers(
            created.id.clone(),
            svix::models::OperationalWebhookEndpointHeadersIn::new(headers),
        )
        .await
        .unwrap();
    let shown = ops_api.get_headers(created.id.clone()).await.unwrap();
    assert_eq!(shown.headers["x-team"], "ops");

    // The hidden application does not show among the customer's applications.
    let (_, apps) = herald.get("/app").await;
    assert_eq!(apps["data"], json!([]));
    let (status, _) = herald.get("/app/app_00000000000000000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An event arrives signed with the operational endpoint's own secret.
    let app = herald.app("acme").await;
    let customer = Receiver::start().await;
    herald.endpoint(&app, json!({"url": customer.url})).await;
    let got = ops.wait_for(1).await;
    assert_eq!(got[0].header("x-team"), "ops");
    let mut sig = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        sig.insert(name, got[0].header(name).parse().unwrap());
    }
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&got[0].body, &sig)
        .expect("signed with the operational endpoint's secret");
    let event: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["type"], "endpoint.created");

    // Unknown event types are refused; a portal token may not touch any of it.
    let (status, refused) = herald
        .post(
            "/operational-webhook/endpoint",
            json!({"url": ops.url, "eventTypes": ["contact.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (_, portal) = herald
        .post(&format!("/auth/app-portal-access/{app}"), json!({}))
        .await;
    let portal_token = portal["token"].as_str().unwrap();
    let as_portal = herald
        .http
        .get(format!(
            "{}/api/v1/operational-webhook/endpoint",
            herald.base
        ))
        .bearer_auth(portal_token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_portal.status().as_u16(), 403);

    ops_api
        .rotate_secret(
            created.id.clone(),
            svix::models::OperationalWebhookEndpointSecretIn::new(),
            None,
        )
        .await
        .unwrap();
    let rotated = ops_api.get_secret(created.id.clone()).await.unwrap().key;
    assert_ne!(rotated, secret);
    ops_api.delete(created.id.clone()).await.unwrap();
    assert!(ops_api.list(None).await.unwrap().data.is_empty());
}

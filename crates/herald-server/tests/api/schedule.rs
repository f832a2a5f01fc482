//! A message's deliveries in time (Herald extensions): `expiresAt`, after which deliveries
//! not yet made stop (a retry that would come later is not made, a delivery still waiting
//! then is canceled), and canceling by hand what waits, such as a message scheduled with
//! `deliverAt`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use herald_core::{Clock, ManualClock};
use serde_json::{json, Value};

use crate::helpers::{Receiver, TestHerald};

/// The delivery of `msg` to the app's one endpoint, as `…/msg/{id}/endpoint` shows it.
async fn delivery(h: &TestHerald, app: &str, msg: &str) -> Value {
    let (status, page) = h.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"][0].clone()
}

fn at(clock: &ManualClock, seconds: i64) -> String {
    (clock.now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

#[tokio::test]
async fn no_retry_is_made_after_a_message_expires() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let h = TestHerald::start_with(clock.clone(), |c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(5).into(); 4];
        c.delivery.jitter = 0.0;
        c.delivery.circuit_breaker_failures = 100;
    })
    .await;
    let app = h.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500; 10]);
    h.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = h
        .publish(
            &app,
            json!({"eventType": "a", "payload": {}, "expiresAt": at(&clock, 8)}),
        )
        .await;
    let (_, shown) = h.get(&format!("/app/{app}/msg/{msg}")).await;
    let shown: chrono::DateTime<chrono::Utc> =
        shown["expiresAt"].as_str().unwrap().parse().unwrap();
    let sent = clock.now() + chrono::Duration::seconds(8);
    assert!(
        (shown - sent).num_milliseconds().abs() <= 1,
        "{shown} vs {sent}"
    );

    h.wait_recorded(1).await;
    assert_eq!(
        delivery(&h, &app, &msg).await["status"],
        1,
        "a retry at +5 s, before +8 s"
    );
    clock.advance(Duration::from_secs(5));
    h.wait_recorded(2).await;
    // The next retry would be at +10 s, after the expiry: the delivery has failed.
    let ended = delivery(&h, &app, &msg).await;
    assert_eq!(ended["status"], 2, "{ended}");
    assert!(
        ended.get("nextAttempt").is_none_or(Value::is_null),
        "{ended}"
    );
    assert_eq!(h.attempts(&app, &msg).await.len(), 2);

    // Sent again by hand, it goes: someone wants it now, whatever its expiry.
    let endpoint = ended["id"].as_str().unwrap();
    let (status, _) = h
        .post(
            &format!("/app/{app}/msg/{msg}/endpoint/{endpoint}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    h.wait_recorded(3).await;
    assert_eq!(h.attempts(&app, &msg).await.len(), 3);
}

#[tokio::test]
async fn a_delivery_still_waiting_when_its_message_expires_is_canceled() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let h = TestHerald::start_with(clock.clone(), |c| {
        c.delivery.circuit_breaker_failures = 1;
        c.delivery.circuit_breaker_cooldown = Duration::from_secs(60);
        c.delivery.jitter = 0.0;
        c.delivery.endpoint_concurrency = 1;
    })
    .await;
    let app = h.app("acme").await;
    let receiver = Receiver::start().await;
    receiver.statuses([500]);
    h.endpoint(&app, json!({"url": receiver.url})).await;
    let first = h
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    h.wait_recorded(1).await; // one failure opens the circuit for 60 s
                              // Published while it is open, it waits for the probe, which comes after its expiry.
    let moved = h.held_back();
    let expiring = h
        .publish(
            &app,
            json!({"eventType": "a", "payload": {}, "expiresAt": at(&clock, 30)}),
        )
        .await;
    h.wait_held_back(moved + 1).await;
    clock.advance(Duration::from_secs(61));
    h.wait_recorded(3).await;
    let canceled = delivery(&h, &app, &expiring).await;
    assert_eq!(canceled["status"], 4, "{canceled}");
    assert_eq!(canceled["statusText"], "canceled", "{canceled}");
    assert!(h.attempts(&app, &expiring).await.is_empty(), "never sent");
    assert_eq!(
        delivery(&h, &app, &first).await["status"],
        0,
        "the probe went"
    );
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn an_expiry_that_leaves_no_time_to_deliver_is_refused() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let h = TestHerald::start_with(clock.clone(), |_| {}).await;
    let app = h.app("acme").await;
    let cases = [
        json!({"eventType": "a", "payload": {}, "expiresAt": at(&clock, -60)}),
        json!({"eventType": "a", "payload": {}, "deliverAt": at(&clock, 600), "expiresAt": at(&clock, 300)}),
        json!({"eventType": "a", "payload": {}, "expiresAt": at(&clock, 40 * 86_400)}),
    ];
    for body in cases {
        let (status, answer) = h.post(&format!("/app/{app}/msg"), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body", "expiresAt"]));
    }
    let (_, listed) = h.get(&format!("/app/{app}/msg")).await;
    assert_eq!(listed["data"], json!([]), "nothing was published");
}

#[tokio::test]
async fn a_scheduled_message_can_be_canceled_until_it_goes() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let h = TestHerald::start_with(clock.clone(), |_| {}).await;
    let app = h.app("acme").await;
    let receiver = Receiver::start().await;
    h.endpoint(&app, json!({"url": receiver.url})).await;
    let scheduled = h
        .publish(
            &app,
            json!({"eventType": "a", "payload": {}, "deliverAt": at(&clock, 60)}),
        )
        .await;
    let waiting = delivery(&h, &app, &scheduled).await;
    assert_eq!(waiting["status"], 1, "{waiting}");
    assert!(
        waiting["nextAttempt"].is_string(),
        "shows when it will go: {waiting}"
    );

    let cancel = format!("/app/{app}/msg/{scheduled}/cancel");
    let (status, out) = h.post(&cancel, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["canceled"], 1);
    assert_eq!(delivery(&h, &app, &scheduled).await["status"], 4);
    let (_, again) = h.post(&cancel, json!({})).await;
    assert_eq!(again["canceled"], 0, "nothing left to cancel");
    // It expires now, so that an attempt under way at the cancel would not be retried.
    let (_, shown) = h.get(&format!("/app/{app}/msg/{scheduled}")).await;
    assert!(shown["expiresAt"].is_string(), "{shown}");

    // Its time comes and goes: only a message published after it is sent.
    clock.advance(Duration::from_secs(61));
    let later = h
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-id"), later);
    h.wait_recorded(1).await; // the later message, settled
    assert_eq!(receiver.received().len(), 1);

    let (status, _) = h
        .post(&format!("/app/{app}/msg/msg_nope/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

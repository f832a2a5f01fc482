//! Ordered endpoints (`"ordered": true`, a Herald extension): one message at a time, in
//! publish order, through retries and failures; other endpoints of the app are not held up.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use herald_core::ManualClock;
use serde_json::json;

use crate::helpers::{Receiver, TestHerald};

/// A Herald on a manual clock whose retries come `retry` apart, `retries` of them.
async fn start(retries: usize) -> (TestHerald, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let h = TestHerald::start_with(clock.clone(), |c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(5).into(); retries];
        c.delivery.jitter = 0.0;
        c.delivery.circuit_breaker_failures = 100;
    })
    .await;
    (h, clock)
}

/// Publishes `n` messages, each once the one before was accepted; their ids.
async fn publish(h: &TestHerald, app: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            h.publish(app, json!({"eventType": "a", "payload": {"n": i}}))
                .await,
        );
    }
    ids
}

/// The message ids `receiver` got, in the order it got them.
fn arrivals(receiver: &Receiver) -> Vec<String> {
    let got = receiver.received();
    got.iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect()
}

#[tokio::test]
async fn an_ordered_endpoint_waits_for_each_message_while_another_gets_them_all() {
    let (h, clock) = start(3).await;
    let app = h.app("acme").await;
    let (fifo, free) = (Receiver::start().await, Receiver::start().await);
    fifo.statuses([500, 500]);
    let ordered = h
        .endpoint(&app, json!({"url": fifo.url, "ordered": true}))
        .await;
    assert_eq!(ordered["ordered"], true, "{ordered}");
    let other = h.endpoint(&app, json!({"url": free.url})).await;
    assert_eq!(other["ordered"], false, "{other}");
    let ordered = ordered["id"].as_str().unwrap();
    let ids = publish(&h, &app, 5).await;

    // The other endpoint gets all five at once; the ordered one only the first, which
    // failed and waits for its retry, with the rest queued behind it.
    free.wait_for(5).await;
    h.wait_recorded(6).await;
    assert_eq!(arrivals(&fifo), ids[..1]);
    let second = h.delivery_to(&app, &ids[1], ordered).await;
    assert_eq!(second["statusText"], "queued", "{second}");
    assert_eq!(second["status"], 1, "pending, to Svix's SDKs");
    assert!(second.get("nextAttempt").is_none(), "{second}");

    clock.advance(Duration::from_secs(5));
    h.wait_recorded(7).await;
    assert_eq!(arrivals(&fifo), [ids[0].clone(), ids[0].clone()]);

    // The third try succeeds; then the rest go, one at a time, in publish order.
    clock.advance(Duration::from_secs(5));
    fifo.wait_for(7).await;
    let mut expected = vec![ids[0].clone(); 2];
    expected.extend(ids.iter().cloned());
    assert_eq!(arrivals(&fifo), expected);
    assert_eq!(fifo.peak_concurrency(), 1);
    h.wait_recorded(12).await;
    let last = h.delivery_to(&app, &ids[4], ordered).await;
    assert_eq!(last["statusText"], "success", "{last}");
}

#[tokio::test]
async fn a_message_that_fails_for_good_lets_the_next_go() {
    let (h, clock) = start(1).await;
    let app = h.app("acme").await;
    let fifo = Receiver::start().await;
    fifo.statuses([500, 500]);
    let ordered = h
        .endpoint(&app, json!({"url": fifo.url, "ordered": true}))
        .await;
    let ordered = ordered["id"].as_str().unwrap();
    let ids = publish(&h, &app, 3).await;
    h.wait_recorded(1).await;
    clock.advance(Duration::from_secs(5));

    fifo.wait_for(4).await;
    let expected = [&ids[0], &ids[0], &ids[1], &ids[2]].map(String::clone);
    assert_eq!(arrivals(&fifo), expected);
    h.wait_recorded(4).await;
    let first = h.delivery_to(&app, &ids[0], ordered).await;
    assert_eq!(first["statusText"], "fail", "{first}");
}

#[tokio::test]
async fn turning_ordering_off_sends_what_waited_in_line_at_once() {
    let (h, _clock) = start(3).await;
    let app = h.app("acme").await;
    let fifo = Receiver::start().await;
    fifo.statuses([500]);
    let ordered = h
        .endpoint(&app, json!({"url": fifo.url, "ordered": true}))
        .await;
    let ordered = ordered["id"].as_str().unwrap();
    let ids = publish(&h, &app, 3).await;
    h.wait_recorded(1).await;
    assert_eq!(arrivals(&fifo), ids[..1], "the rest wait behind the retry");

    let path = format!("/app/{app}/endpoint/{ordered}");
    let (status, patched) = h
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"ordered": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["ordered"], false);
    // The first still waits for its retry (the clock stands still); the others go now.
    let got = fifo.wait_for(3).await;
    let later: Vec<&str> = got[1..].iter().map(|r| r.header("webhook-id")).collect();
    assert!(later.contains(&ids[1].as_str()) && later.contains(&ids[2].as_str()));
}

//! The events API (`GET /api/v1/app/{app}/events`): consumers that cannot receive pushes
//! poll the application's messages with an iterator, optionally holding the read open
//! until a message comes (patterns spec §5.3, checks 1, 2 and 5, and its bad input).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestHerald;

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn read(herald: &TestHerald, app: &str, query: &str) -> Value {
    let (status, page) = herald.get(&format!("/app/{app}/events?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page
}

#[tokio::test]
async fn polling_reads_every_message_once_in_order_and_resumes_after_a_restart() {
    let mut herald = TestHerald::start().await;
    let app = herald.app("poller").await;
    let mut sent = Vec::new();
    for n in 0..25 {
        let kind = if n % 5 == 0 {
            "invoice.paid"
        } else {
            "user.created"
        };
        sent.push(
            herald
                .publish(&app, json!({"eventType": kind, "payload": {"n": n}}))
                .await,
        );
    }
    herald.wait_streamed(&app, 25).await;
    let first = read(&herald, &app, "limit=10").await;
    assert_eq!(ids(&first), sent[..10]);
    assert_eq!(first["done"], false);
    assert_eq!(first["data"][3]["payload"], json!({"n": 3}));
    let iterator = first["iterator"].as_str().unwrap().to_owned();
    let second = read(&herald, &app, &format!("limit=10&iterator={iterator}")).await;
    assert_eq!(ids(&second), sent[10..20]);
    let third = read(
        &herald,
        &app,
        &format!("limit=10&iterator={}", second["iterator"].as_str().unwrap()),
    )
    .await;
    assert_eq!(ids(&third), sent[20..]);
    assert_eq!(third["done"], true);
    // At the end the iterator stays put, and a later message is read from it.
    let end = read(
        &herald,
        &app,
        &format!("iterator={}", third["iterator"].as_str().unwrap()),
    )
    .await;
    assert!(ids(&end).is_empty());
    assert_eq!(end["iterator"], third["iterator"]);

    herald.restart_with(|_| {}).await;
    let again = read(&herald, &app, &format!("limit=10&iterator={iterator}")).await;
    assert_eq!(ids(&again), sent[10..20], "an iterator outlives a restart");

    let paid = read(&herald, &app, "event_types=invoice.paid").await;
    let expected: Vec<String> = sent.iter().step_by(5).cloned().collect();
    assert_eq!(ids(&paid), expected);
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_message_comes_and_empty_at_its_deadline() {
    let herald = TestHerald::start().await;
    let app = herald.app("waiter").await;
    let end = read(&herald, &app, "").await;
    let iterator = end["iterator"].as_str().unwrap().to_owned();

    // Nothing comes: the read waits out its time, then answers empty, with an iterator that
    // still reads on from the same place (the message published below).
    let started = Instant::now();
    let quiet = read(&herald, &app, &format!("iterator={iterator}&wait_ms=300")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(ids(&quiet).is_empty());
    let iterator = quiet["iterator"].as_str().unwrap().to_owned();

    let waiting = {
        let (http, url) = (herald.http.clone(), herald.base.clone());
        let (iterator, token, app) = (iterator.clone(), herald.token.clone(), app.clone());
        tokio::spawn(async move {
            let resp = http
                .get(format!(
                    "{url}/api/v1/app/{app}/events?iterator={iterator}&wait_ms=10000"
                ))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (Instant::now(), resp.json::<Value>().await.unwrap())
        })
    };
    let msg = herald
        .publish(&app, json!({"eventType": "user.created", "payload": {}}))
        .await;
    let published = Instant::now();
    let (answered, page) = waiting.await.unwrap();
    assert_eq!(ids(&page), [msg]);
    let after = answered.saturating_duration_since(published);
    // On PostgreSQL the message joins the stream once every older transaction on the
    // server has ended, and tests creating their databases beside this one hold it back.
    let bound = Duration::from_secs(if herald.on_postgres() { 5 } else { 1 });
    assert!(after < bound, "answered {after:?} after the publish");
}

#[tokio::test]
async fn an_iterator_older_than_the_kept_payloads_is_gone_with_where_to_start_again() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("late").await;
    herald
        .publish(&app, json!({"eventType": "user.created", "payload": {}}))
        .await;
    herald.wait_streamed(&app, 1).await;
    let page = read(&herald, &app, "").await;
    let iterator = page["iterator"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(91 * 24 * 3600));
    let (status, body) = herald
        .get(&format!("/app/{app}/events?iterator={iterator}"))
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["code"], "iterator_expired");
    assert!(
        body["detail"].as_str().unwrap().contains("after="),
        "{body}"
    );
    // Starting again without it works, from what is still kept.
    let fresh = read(&herald, &app, "").await;
    assert!(ids(&fresh).is_empty());
}

#[tokio::test]
async fn bad_reads_are_clear_errors() {
    let herald = TestHerald::start().await;
    let app = herald.app("strict").await;
    for (query, param) in [
        ("iterator=not-an-iterator", "iterator"),
        ("wait_ms=30001", "wait_ms"),
        ("limit=0", "limit"),
        ("limit=251", "limit"),
    ] {
        let (status, body) = herald.get(&format!("/app/{app}/events?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"][1], param, "{body}");
    }
    let (status, body) = herald.get("/app/app_nope/events").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = herald.get(&format!("/app/{app}/events?wait_ms=x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// One read of the application's stream through the named subscription.
async fn read_as(herald: &TestHerald, app: &str, name: &str, query: &str) -> Value {
    let path = format!("/app/{app}/events/subscription/{name}?{query}");
    let (status, page) = herald.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {page}");
    page
}

#[tokio::test]
async fn a_named_subscription_goes_on_where_its_last_read_stopped() {
    let mut herald = TestHerald::start().await;
    let app = herald.app("subscriber").await;
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(
            herald
                .publish(
                    &app,
                    json!({"eventType": "user.created", "payload": {"n": n}}),
                )
                .await,
        );
    }
    herald.wait_streamed(&app, 5).await;
    let name = "nightly-sync.v1";
    assert_eq!(
        ids(&read_as(&herald, &app, name, "limit=2").await),
        sent[..2]
    );
    assert_eq!(
        ids(&read_as(&herald, &app, name, "limit=2").await),
        sent[2..4]
    );
    // The plain stream and another name are not moved by it.
    assert_eq!(ids(&read(&herald, &app, "").await), sent);
    assert_eq!(ids(&read_as(&herald, &app, "weekly", "").await), sent);
    // The position outlives a restart.
    herald.restart_with(|_| {}).await;
    assert_eq!(ids(&read_as(&herald, &app, name, "").await), sent[4..]);
    // `after` moves the subscription back to a time; the next read goes on from there.
    let again = read_as(&herald, &app, name, "after=2000-01-01T00:00:00Z&limit=1").await;
    assert_eq!(ids(&again), sent[..1]);
    assert_eq!(
        ids(&read_as(&herald, &app, name, "limit=1").await),
        sent[1..2]
    );

    for bad in ["has%20space".to_owned(), "x".repeat(257)] {
        let (status, body) = herald
            .get(&format!("/app/{app}/events/subscription/{bad}"))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["detail"][0]["loc"][1], "subscription_id", "{body}");
    }
}

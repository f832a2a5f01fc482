//! Svix's polling endpoints (`/api/v1/app/{app}/poller/{sink}`): an endpoint's messages read
//! by polling, with an iterator the client keeps or a consumer position Herald keeps
//! (patterns spec §5.3, check 3).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestHerald;

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {page}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn poll(herald: &TestHerald, path: &str) -> Value {
    let (status, page) = herald.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {page}");
    page
}

/// An application with a poll-only endpoint (disabled, so nothing is pushed) that takes
/// `order.paid` and `order.refunded`, and what was published: (event type, message id).
async fn orders(herald: &TestHerald) -> (String, String, Vec<(String, String)>) {
    for name in ["order.paid", "order.refunded", "user.created"] {
        herald.event_type(name).await;
    }
    let app = herald.app("shop").await;
    let endpoint = herald
        .endpoint(
            &app,
            json!({"url": "https://example.com/never-pushed", "uid": "orders-feed", "disabled": true,
                   "filterTypes": ["order.paid", "order.refunded"]}),
        )
        .await;
    let mut sent = Vec::new();
    for kind in [
        "order.paid",
        "user.created",
        "order.refunded",
        "order.paid",
        "user.created",
    ] {
        let id = herald
            .publish(&app, json!({"eventType": kind, "payload": {}}))
            .await;
        sent.push((kind.to_owned(), id));
    }
    (app, endpoint["id"].as_str().unwrap().to_owned(), sent)
}

fn of(sent: &[(String, String)], kinds: &[&str]) -> Vec<String> {
    sent.iter()
        .filter(|(kind, _)| kinds.contains(&kind.as_str()))
        .map(|(_, id)| id.clone())
        .collect()
}

#[tokio::test]
async fn a_poll_reads_what_the_endpoint_subscribes_to_narrowed_as_asked() {
    let herald = TestHerald::start().await;
    let (app, endpoint, sent) = orders(&herald).await;
    let orders = of(&sent, &["order.paid", "order.refunded"]);

    // By id or uid; pages go on with the iterator.
    let first = poll(&herald, &format!("/app/{app}/poller/orders-feed?limit=2")).await;
    assert_eq!(ids(&first), orders[..2]);
    assert_eq!(first["done"], false);
    let it = first["iterator"].as_str().unwrap();
    let rest = poll(
        &herald,
        &format!("/app/{app}/poller/{endpoint}?iterator={it}"),
    )
    .await;
    assert_eq!(ids(&rest), orders[2..]);
    assert_eq!(rest["done"], true);

    let paid = poll(
        &herald,
        &format!("/app/{app}/poller/{endpoint}?event_type=order.paid"),
    )
    .await;
    assert_eq!(ids(&paid), of(&sent, &["order.paid"]));
    // A type the endpoint does not take is not read through it, even when asked for.
    let users = poll(
        &herald,
        &format!("/app/{app}/poller/{endpoint}?event_type=user.created"),
    )
    .await;
    assert!(ids(&users).is_empty(), "{users}");
}

#[tokio::test]
async fn a_consumer_goes_on_where_it_stopped_and_seeks_to_a_time() {
    let (mut herald, clock) = TestHerald::start_manual().await;
    let (app, endpoint, sent) = orders(&herald).await;
    let orders = of(&sent, &["order.paid", "order.refunded"]);
    let consumer =
        |name: &str, query: &str| format!("/app/{app}/poller/{endpoint}/consumer/{name}?{query}");

    assert_eq!(
        ids(&poll(&herald, &consumer("billing", "limit=2")).await),
        orders[..2]
    );
    assert_eq!(
        ids(&poll(&herald, &consumer("billing", "limit=2")).await),
        orders[2..]
    );
    // Consumers are independent, and their positions outlive a restart.
    assert_eq!(ids(&poll(&herald, &consumer("audit", "")).await), orders);
    herald.restart_with(|_| {}).await;
    let drained = poll(&herald, &consumer("billing", "")).await;
    assert!(ids(&drained).is_empty(), "{drained}");

    // Seek to a time: the next poll reads what was created after it.
    clock.advance(Duration::from_secs(60));
    let mark = clock_now(&herald).await;
    clock.advance(Duration::from_secs(60));
    let later = herald
        .publish(&app, json!({"eventType": "order.paid", "payload": {}}))
        .await;
    let (status, seek) = herald
        .post(
            &format!("/app/{app}/poller/{endpoint}/consumer/audit/seek"),
            json!({"after": mark}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{seek}");
    assert!(seek["iterator"].is_string(), "{seek}");
    assert_eq!(
        ids(&poll(&herald, &consumer("audit", "")).await),
        std::slice::from_ref(&later)
    );
    // The seek's iterator reads from the same place.
    let it = seek["iterator"].as_str().unwrap();
    let again = poll(
        &herald,
        &format!("/app/{app}/poller/{endpoint}?iterator={it}"),
    )
    .await;
    assert_eq!(ids(&again), [later]);
}

/// The server's time, as an RFC 3339 string: the timestamp of a message published now.
async fn clock_now(herald: &TestHerald) -> String {
    let app = herald.app("clock").await;
    let (status, msg) = herald
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "user.created", "payload": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{msg}");
    msg["timestamp"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn bad_polls_are_clear_errors() {
    let herald = TestHerald::start().await;
    let (app, endpoint, _) = orders(&herald).await;
    let other = herald.app("elsewhere").await;
    let (status, body) = herald.get(&format!("/app/{other}/poller/{endpoint}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another app's endpoint: {body}"
    );
    let (status, body) = herald
        .get(&format!(
            "/app/{app}/poller/{endpoint}/consumer/has%20space"
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"][1], "consumer_id", "{body}");
    let (status, body) = herald
        .post(
            &format!("/app/{app}/poller/{endpoint}/consumer/c1/seek"),
            json!({"after": "yesterday"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = herald
        .get(&format!("/app/{app}/poller/{endpoint}?iterator=garbage"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

//! Svix's polling endpoints (`/api/v1/app/{app}/poller/{sink}`): an endpoint's messages read
//! by polling, with an iterator the client keeps or a consumer position Herald keeps
//! (patterns spec §5.3, checks 3 and 6).

use std::time::Duration;

use reqwest::{Method, StatusCode};
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
    herald.wait_streamed(&app, sent.len()).await;
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
    herald.wait_streamed(&app, sent.len() + 1).await;
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

#[tokio::test]
async fn a_poller_token_polls_its_endpoint_and_nothing_else() {
    let (herald, clock) = TestHerald::start_manual().await;
    let (app, endpoint, _) = orders(&herald).await;
    let other = herald
        .endpoint(
            &app,
            json!({"url": "https://example.com/other", "disabled": true}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotate = format!("/auth/app/{app}/poller/orders-feed/token/rotate");
    let (status, first) = herald.post(&rotate, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_token = first["token"].as_str().unwrap().to_owned();
    assert_eq!(first["scopes"], json!([format!("poll:{endpoint}")]));

    let poll_own = format!("/app/{app}/poller/{endpoint}");
    for (method, path, body, expected) in [
        (Method::GET, poll_own.clone(), None, StatusCode::OK),
        (
            Method::GET,
            format!("/app/{app}/poller/orders-feed/consumer/c1"),
            None,
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/app/{app}/poller/{endpoint}/consumer/c1/seek"),
            Some(json!({"after": "2020-01-01T00:00:00Z"})),
            StatusCode::OK,
        ),
        (
            Method::GET,
            format!("/app/{app}/polling-endpoint/{endpoint}/consumer/c2"),
            None,
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/app/{app}/polling-endpoint/{endpoint}/consumer/c2/commit"),
            Some(json!({"offset": 0})),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::GET,
            format!("/app/{app}/poller/{other}"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            format!("/app/{app}/polling-endpoint/{other}/consumer/c2"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            format!("/app/{app}/events"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            format!("/app/{app}/msg"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            format!("/app/{app}/endpoint/{endpoint}"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            rotate.clone(),
            Some(json!({})),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let status = herald
            .call_as(&first_token, method.clone(), &path, body)
            .await
            .0;
        assert_eq!(status, expected, "{method} {path}");
    }

    // The value is shown once; afterwards the token is named by its first characters.
    let (status, shown) = herald
        .get(&format!("/auth/app/{app}/poller/{endpoint}/token"))
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["id"], first["id"]);
    let hint = shown["token"].as_str().unwrap();
    assert!(
        first_token.starts_with(hint) && hint.len() < first_token.len(),
        "{hint}"
    );

    // Rotating keeps the old token working for the overlap (300 s by default), then not.
    let (status, second) = herald.post(&rotate, json!({"expiry": 3600})).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_token = second["token"].as_str().unwrap().to_owned();
    assert!(second["expiresAt"].is_string(), "{second}");
    assert_eq!(
        herald
            .call_as(&first_token, Method::GET, &poll_own, None)
            .await
            .0,
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(301));
    assert_eq!(
        herald
            .call_as(&first_token, Method::GET, &poll_own, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        herald
            .call_as(&second_token, Method::GET, &poll_own, None)
            .await
            .0,
        StatusCode::OK
    );
    // `oldTokenExpiry: 0` revokes at once.
    let (_, third) = herald.post(&rotate, json!({"oldTokenExpiry": 0})).await;
    assert_eq!(
        herald
            .call_as(&second_token, Method::GET, &poll_own, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let third_token = third["token"].as_str().unwrap();
    assert_eq!(
        herald
            .call_as(third_token, Method::GET, &poll_own, None)
            .await
            .0,
        StatusCode::OK
    );

    for bad in [json!({"expiry": 0}), json!({"oldTokenExpiry": 86_401})] {
        let (status, body) = herald.post(&rotate, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
}

/// The ids and offsets of a leasing poll.
fn offsets(page: &Value) -> Vec<(u64, String)> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {page}"))
        .iter()
        .map(|m| {
            (
                m["offset"].as_u64().unwrap(),
                m["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_leasing_consumer_gets_again_what_it_did_not_commit() {
    let (herald, clock) = TestHerald::start_manual().await;
    let (app, endpoint, sent) = orders(&herald).await;
    let orders = of(&sent, &["order.paid", "order.refunded"]);
    let numbered = |from: usize, to: usize| -> Vec<(u64, String)> {
        (from..to).map(|i| (i as u64, orders[i].clone())).collect()
    };
    let base = format!("/app/{app}/polling-endpoint/{endpoint}/consumer");
    let lease = |name: &str, query: &str| format!("{base}/{name}?{query}");
    let commit = |name: &str, offset: u64| {
        let path = format!("{base}/{name}/commit");
        let herald = &herald;
        async move { herald.post(&path, json!({"offset": offset})).await }
    };

    // Leased messages are not given twice while the lease lasts.
    let first = poll(&herald, &lease("worker", "limit=2&lease_duration_ms=1000")).await;
    assert_eq!(offsets(&first), numbered(0, 2));
    assert_eq!(first["done"], false);
    let next = poll(&herald, &lease("worker", "lease_duration_ms=1000")).await;
    assert_eq!(offsets(&next), numbered(2, 3));
    // Nothing committed when the lease runs out: all of it again, same offsets.
    clock.advance(Duration::from_secs(2));
    let again = poll(&herald, &lease("worker", "lease_duration_ms=1000")).await;
    assert_eq!(offsets(&again), numbered(0, 3));

    // Committing 1 acknowledges 0 and 1; 2 comes back after the lease.
    let (status, body) = commit("worker", 1).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    clock.advance(Duration::from_secs(2));
    let rest = poll(&herald, &lease("worker", "lease_duration_ms=1000")).await;
    assert_eq!(offsets(&rest), numbered(2, 3));
    assert_eq!(commit("worker", 2).await.0, StatusCode::NO_CONTENT);
    clock.advance(Duration::from_secs(2));
    let drained = poll(&herald, &lease("worker", "")).await;
    assert!(offsets(&drained).is_empty(), "{drained}");
    assert_eq!(drained["done"], true);
    // Committing again is harmless; an offset never given is refused.
    assert_eq!(commit("worker", 0).await.0, StatusCode::NO_CONTENT);
    let (status, body) = commit("worker", 7).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"][1], "offset", "{body}");

    // Consumers are independent; `latest` starts with what comes next.
    assert_eq!(
        offsets(&poll(&herald, &lease("audit", "")).await),
        numbered(0, 3)
    );
    let late = poll(&herald, &lease("late", "starting_position=latest")).await;
    assert!(offsets(&late).is_empty(), "{late}");
    clock.advance(Duration::from_secs(1));
    let new = herald
        .publish(&app, json!({"eventType": "order.paid", "payload": {}}))
        .await;
    herald.wait_streamed(&app, sent.len() + 1).await;
    let late = poll(&herald, &lease("late", "starting_position=latest")).await;
    assert_eq!(offsets(&late), [(0, new)]);

    let (status, body) = herald.get(&lease("worker", "lease_duration_ms=0")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

//! The load balancer's probes, and what clients hear while the database is out of reach:
//! `503` with `Retry-After` (so SDKs retry), never a `500`.

use std::sync::Arc;
use std::time::Duration;

use herald_core::SystemClock;
use herald_store_postgres::testing::TestDatabase;
use serde_json::{json, Value};
use url::Url;

use crate::helpers::{Receiver, TestHerald, DEADLINE};
use crate::services::Proxy;

async fn probe(herald: &TestHerald, path: &str) -> (u16, Option<String>, Value) {
    let response = herald
        .http
        .get(format!("{}{path}", herald.base))
        .send()
        .await
        .expect("the probe answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn liveness_and_readiness_answer_without_a_token() {
    let herald = TestHerald::start().await;
    let (status, _, body) = probe(&herald, "/health/live").await;
    assert_eq!((status, &body["status"]), (200, &json!("live")));
    let (status, _, body) = probe(&herald, "/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"store": "ok", "migrations": "applied", "dispatcher": "running"}})
    );

    // An API-only node has no dispatcher to wait for, and is ready.
    let api_only =
        TestHerald::start_with(Arc::new(SystemClock), |c| c.delivery.dispatch = false).await;
    let (status, _, body) = probe(&api_only, "/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["dispatcher"], "off");
}

/// A node whose binary knows a migration the database lacks (started with
/// `database.migrate = false` before `herald migrate` ran) is not ready.
#[tokio::test]
async fn a_migration_not_applied_makes_the_node_not_ready() {
    let herald = TestHerald::start().await;
    let forget_the_last = "DELETE FROM _sqlx_migrations \
        WHERE version = (SELECT max(version) FROM _sqlx_migrations)";
    let url = herald.database_url();
    if herald.on_postgres() {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(forget_the_last).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(forget_the_last).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let (status, retry_after, body) = probe(&herald, "/health/ready").await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("2")), "{body}");
    assert_eq!(body["checks"]["migrations"], "pending");
    assert_eq!(body["checks"]["store"], "ok");
}

#[tokio::test]
async fn a_database_out_of_reach_is_503_with_retry_after_and_not_ready() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    // Herald reaches PostgreSQL through a proxy the test can cut.
    let mut url = Url::parse(&database.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(&upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.database.url = url.to_string();
        c.database.acquire_timeout = Duration::from_millis(500);
    })
    .await;
    let app = herald.app("acme").await;
    let message = json!({"eventType": "user.created", "payload": {"id": 1}});
    herald.publish(&app, message.clone()).await;

    proxy.stop().await;
    let publish = || {
        herald
            .http
            .post(format!("{}/api/v1/app/{app}/msg", herald.base))
            .bearer_auth(&herald.token)
            .json(&message)
            .send()
    };
    let refused = publish().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "2");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable", "{body}");
    let (status, retry_after, body) = probe(&herald, "/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert_eq!(body["status"], "not_ready");
    assert_ne!(body["checks"]["store"], "ok", "{body}");
    let (status, _, _) = probe(&herald, "/health/live").await;
    assert_eq!(status, 200, "alive all along");

    // Back: the pool connects again, and the publish the SDK retries is taken.
    proxy.resume();
    let accepted = publish().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let (status, _, _) = probe(&herald, "/health/ready").await;
    assert_eq!(status, 200);
    let (_, list) = herald.get(&format!("/app/{app}/msg")).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        2,
        "nothing of the refused one"
    );
}

async fn scrape(herald: &TestHerald, token: Option<&str>) -> (u16, String) {
    let mut request = herald.http.get(format!("{}/metrics", herald.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_publishes_attempts_and_requests_by_route_not_by_id() {
    let herald = TestHerald::start().await;
    let receiver = Receiver::start().await;
    let app = herald.app("acme").await;
    herald.endpoint(&app, json!({"url": receiver.url})).await;
    let callback = json!([{"url": receiver.url}]);
    let body = json!({"eventType": "user.created", "payload": {}, "callbackUrls": callback});
    herald.publish(&app, body).await;
    herald.wait_recorded(2).await;

    let (status, text) = scrape(&herald, None).await;
    assert_eq!(status, 200);
    for line in [
        "herald_messages_published_total 1",
        "herald_callback_urls_total 1",
        "herald_attempts_total{destination=\"http\",trigger=\"scheduled\",outcome=\"success\"} 1",
        "herald_attempts_total{destination=\"http\",trigger=\"adhoc\",outcome=\"success\"} 1",
        "herald_http_requests_total{method=\"POST\",route=\"/api/v1/app/{app_id}/msg\",status=\"202\"} 1",
        "herald_queue_waiting_deliveries 0",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(
        text.contains("herald_attempt_duration_seconds_bucket{le=\"+Inf\",destination=\"http\"} 2")
    );
    assert!(!text.contains(&app), "no application id is ever a label");
    // The store: one publish in one group commit, both attempts recorded, and its pools
    // (`writer` and `reader` on SQLite, one `shared` pool on PostgreSQL). Both deliveries
    // went from the publish straight to the dispatcher, with no claim.
    for line in [
        "herald_store_commit_batch_size_count{commit=\"publish\"} 1",
        "herald_store_commit_batch_size_sum{commit=\"record\"} 2.0",
        "herald_deliveries_handed_over_total 2",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(
        !text.contains("commit=\"claim\""),
        "nothing claimed:\n{text}"
    );
    let max_connections: Vec<i64> = text
        .lines()
        .filter(|l| l.starts_with("herald_store_pool_connections{") && l.contains("state=\"max\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        !max_connections.is_empty() && max_connections.iter().all(|n| *n >= 1),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_be_served_on_an_address_of_their_own_and_then_only_there() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.api.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (status, _) = scrape(&herald, None).await;
    assert_eq!(status, 404, "not beside the API");
    let apart = herald.metrics_addr().expect("a metrics address");
    assert_ne!(apart.port(), 0);
    let response = herald
        .http
        .get(format!("http://{apart}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE herald_messages_published counter"),
        "{text}"
    );
}

#[tokio::test]
async fn a_metrics_token_keeps_metrics_from_everyone_else() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.api.metrics_token = Some(herald_core::secret::Secret::new("scrape-me".to_owned()));
    })
    .await;
    assert_eq!(scrape(&herald, None).await.0, 401);
    assert_eq!(scrape(&herald, Some("nope")).await.0, 401);
    let (status, text) = scrape(&herald, Some("scrape-me")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE herald_messages_published counter"),
        "{text}"
    );
}

#[tokio::test]
async fn past_the_concurrency_limit_a_request_is_shed_at_once_with_a_503() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.api.max_concurrent_requests = 1;
    })
    .await;
    let app = herald.app("acme").await;

    // A long poll holds the one slot while it waits for a message that never comes.
    let poll = herald
        .http
        .get(format!(
            "{}/api/v1/app/{app}/events?wait_ms=2000",
            herald.base
        ))
        .bearer_auth(&herald.token)
        .send();
    let poll = tokio::spawn(poll);
    let started = std::time::Instant::now();
    let shed = loop {
        let (status, retry_after, body) = probe(&herald, "/health/live").await;
        if status == 503 {
            break (retry_after, body);
        }
        assert!(started.elapsed() < DEADLINE, "never shed");
    };
    assert_eq!(shed.0.as_deref(), Some("1"));
    assert_eq!(shed.1["code"], "service_unavailable", "{}", shed.1);

    // The poll itself was served, and once it is done the slot is free again.
    let poll = poll.await.unwrap().unwrap();
    assert_eq!(poll.status(), 200);
    let (status, _, _) = probe(&herald, "/health/live").await;
    assert_eq!(status, 200);
    let metrics = herald.metrics().await;
    assert!(
        metrics.contains("route=\"/health/live\",status=\"503\""),
        "shed requests are counted: {metrics}"
    );
}

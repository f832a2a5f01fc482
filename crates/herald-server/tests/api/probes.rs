//! The load balancer's probes, and what clients hear while the database is out of reach:
//! `503` with `Retry-After` (so SDKs retry), never a `500`.

use std::sync::Arc;
use std::time::Duration;

use herald_core::SystemClock;
use herald_store_postgres::testing::TestDatabase;
use serde_json::{json, Value};
use url::Url;

use crate::helpers::TestHerald;
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
        json!({"status": "ready", "checks": {"store": "ok", "dispatcher": "running"}})
    );

    // An API-only node has no dispatcher to wait for, and is ready.
    let api_only =
        TestHerald::start_with(Arc::new(SystemClock), |c| c.delivery.dispatch = false).await;
    let (status, _, body) = probe(&api_only, "/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["dispatcher"], "off");
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

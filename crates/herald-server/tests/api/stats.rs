//! Delivery statistics through the API: Svix's attempt series and Herald's grouped series,
//! after real deliveries to real receivers.

use std::sync::Arc;

use herald_core::SystemClock;
use serde_json::{json, Value};

use crate::helpers::{Receiver, TestHerald};

/// Two endpoints: one answers 200 to everything, the other 500 to everything.
async fn delivered(herald: &TestHerald) -> (String, String, String) {
    let app = herald.app("acme").await;
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.statuses([500; 8]);
    let good_ep = herald.endpoint(&app, json!({"url": good.url})).await;
    let bad_ep = herald.endpoint(&app, json!({"url": bad.url})).await;
    for (i, event_type) in ["user.created", "order.paid", "order.paid", "order.paid"]
        .iter()
        .enumerate()
    {
        herald
            .publish(&app, json!({"eventType": event_type, "payload": {"i": i}}))
            .await;
    }
    herald.wait_recorded(8).await;
    (
        app,
        good_ep["id"].as_str().unwrap().to_owned(),
        bad_ep["id"].as_str().unwrap().to_owned(),
    )
}

fn no_retries() -> impl FnOnce(&mut herald_server::config::Config) {
    |c| c.delivery.retry_schedule = vec![]
}

#[tokio::test]
async fn the_grouped_series_counts_every_attempt_once_per_view() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), no_retries()).await;
    let (app, good, bad) = delivered(&herald).await;
    let (status, stats) = herald
        .get(&format!(
            "/app/{app}/stats/series?range=1h&group_by=endpoint,event_type,status_code"
        ))
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["granularity"], "1m");
    assert_eq!(stats["messages"], 4);
    let totals = &stats["total"]["totals"];
    assert_eq!(
        (totals["attempts"].as_u64(), totals["succeeded"].as_u64()),
        (Some(8), Some(4))
    );
    assert_eq!(totals["successRate"], 50.0);
    assert!(totals["latencyP95Ms"].as_f64().unwrap() > 0.0, "{totals}");
    let points = &stats["total"]["points"]["attempts"];
    let summed: u64 = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .sum();
    assert_eq!(summed, 8, "every attempt falls in one bucket");
    assert_eq!(
        points.as_array().unwrap().len(),
        stats["buckets"].as_array().unwrap().len()
    );

    let group = |dimension: &str, key: &str| -> Value {
        stats["groups"][dimension]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {dimension} {key} in {stats}"))
    };
    assert_eq!(group("endpoint", &good)["health"], "healthy");
    assert_eq!(group("endpoint", &bad)["health"], "failing");
    assert_eq!(group("endpoint", &bad)["totals"]["failed"], 4);
    assert_eq!(group("event_type", "order.paid")["totals"]["attempts"], 6);
    assert_eq!(group("status_code", "500")["totals"]["attempts"], 4);

    // One endpoint's view.
    let (_, one) = herald
        .get(&format!(
            "/app/{app}/stats/series?range=24h&endpoint_id={good}"
        ))
        .await;
    assert_eq!(one["total"]["totals"]["attempts"], 4);
    assert_eq!(one["granularity"], "1h");
    assert!(one.get("messages").is_none());

    // A month, from the daily rollups: the same attempts, grouped the same.
    let (_, month) = herald
        .get(&format!(
            "/app/{app}/stats/series?range=30d&group_by=status_code"
        ))
        .await;
    assert_eq!(month["granularity"], "1d");
    assert_eq!(month["total"]["totals"]["attempts"], 8);
    let days = month["buckets"].as_array().unwrap().len();
    assert!((30..=31).contains(&days), "{days} buckets: {month}");
    assert_eq!(month["groups"]["status_code"][0]["totals"]["attempts"], 4);
}

#[tokio::test]
async fn svix_attempt_statistics_count_per_period() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), no_retries()).await;
    let (app, _, _) = delivered(&herald).await;
    let (status, stats) = herald.get(&format!("/stats/app/{app}/attempt")).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["period"], "OneDay");
    let sum = |key: &str| -> u64 {
        stats["data"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum()
    };
    assert_eq!((sum("successCount"), sum("failureCount")), (4, 4));
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (_, recent) = herald
        .call(
            reqwest::Method::GET,
            &format!("/stats/app/{app}/attempt?startDate={}", urlencode(&since)),
            None,
        )
        .await;
    assert_eq!(recent["period"], "FiveMinutes");
}

#[tokio::test]
async fn bad_statistics_queries_are_clear_422s() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    for query in [
        "range=2y",
        "",
        "range=30d&granularity=1m",
        "range=1h&granularity=7m",
        "range=1h&group_by=colour",
    ] {
        let (status, body) = herald
            .get(&format!("/app/{app}/stats/series?{query}"))
            .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body["detail"].to_string().len() > 10, "{body}");
    }
    let (status, _) = herald
        .get(&format!(
            "/app/{app}/stats/series?range=1h&endpoint_id=ep_none"
        ))
        .await;
    assert_eq!(status, 404);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

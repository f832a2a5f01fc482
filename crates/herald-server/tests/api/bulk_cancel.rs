//! Bulk cancel (a Herald extension): what an endpoint still waits to receive of a time
//! range, canceled by a background task that says first how much it will cancel.

use herald_core::Clock;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Receiver, TestHerald};

#[tokio::test]
async fn a_bulk_cancel_counts_what_waits_then_cancels_only_that() {
    // The clock stands still: failed deliveries wait for a retry that does not come.
    let (h, clock) = TestHerald::start_manual().await;
    let app = h.app("acme").await;
    let (down, up) = (Receiver::start().await, Receiver::start().await);
    down.statuses([500; 4]);
    // Ordered: the first message fails and waits for its retry, the rest queue behind it,
    // so the cancel must find pending and queued deliveries alike.
    let broken = h
        .endpoint(&app, json!({"url": down.url, "ordered": true}))
        .await;
    let broken = broken["id"].as_str().unwrap();
    let fine = h.endpoint(&app, json!({"url": up.url})).await;
    let fine = fine["id"].as_str().unwrap();
    let mut chosen = Vec::new();
    for n in 0..3 {
        let body = json!({"eventType": "a", "payload": {"n": n}});
        chosen.push(h.publish(&app, body).await);
    }
    let other_type = h
        .publish(&app, json!({"eventType": "b", "payload": {}}))
        .await;
    h.wait_recorded(5).await;

    let before = h.delivery_to(&app, &chosen[0], broken).await;
    assert_eq!(
        before["statusText"], "pending",
        "waiting for a retry: {before}"
    );
    let behind = h.delivery_to(&app, &chosen[1], broken).await;
    assert_eq!(behind["statusText"], "queued", "{behind}");
    // `until` is now by default, and only what was published before it counts: a second
    // on (the retries are due five seconds after the failures).
    clock.advance(std::time::Duration::from_secs(1));
    let since = (clock.now() - chrono::Duration::hours(1)).to_rfc3339();
    let path = format!("/app/{app}/endpoint/{broken}/bulk-cancel");
    let (status, task) = h
        .post(&path, json!({"since": since, "eventTypes": ["a"]}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["task"], "endpoint.bulk-cancel");
    assert_eq!(task["data"]["total"], 3, "said before it starts: {task}");
    h.wait_tasks_finished(1).await;
    let (_, done) = h
        .get(&format!(
            "/background-task/{}",
            task["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(done["data"], json!({"total": 3, "canceled": 3}));

    for msg in &chosen {
        let canceled = h.delivery_to(&app, msg, broken).await;
        assert_eq!(canceled["statusText"], "canceled", "{canceled}");
        assert_eq!(canceled["status"], 4);
        let delivered = h.delivery_to(&app, msg, fine).await;
        assert_eq!(delivered["statusText"], "success", "{delivered}");
    }
    // The line moved on past them: the other type's message was attempted (and failed).
    h.wait_recorded(6).await;
    let untouched = h.delivery_to(&app, &other_type, broken).await;
    assert_eq!(
        untouched["statusText"], "pending",
        "another type, waiting for its retry: {untouched}"
    );
    assert_eq!(down.received().len(), 2);

    // Nothing is left to cancel: a second run counts none and cancels none.
    let (status, again) = h
        .post(&path, json!({"since": since, "eventTypes": ["a"]}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["data"]["total"], 0, "{again}");
    h.wait_tasks_finished(2).await;
}

#[tokio::test]
async fn a_bulk_cancel_with_bad_input_is_refused_and_starts_nothing() {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = h.endpoint(&app, json!({"url": receiver.url})).await;
    let endpoint = endpoint["id"].as_str().unwrap();
    let path = format!("/app/{app}/endpoint/{endpoint}/bulk-cancel");
    let now = chrono::Utc::now();
    let later = (now + chrono::Duration::hours(1)).to_rfc3339();
    let earlier = (now - chrono::Duration::hours(1)).to_rfc3339();
    for (body, field) in [
        (json!({"since": later}), "until"),
        (json!({"since": earlier, "until": earlier}), "until"),
        (json!({"since": earlier, "eventTypes": []}), "eventTypes"),
        (json!({"since": earlier, "status": 1}), "status"),
    ] {
        let (status, error) = h.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert!(error.to_string().contains(field), "{body}: {error}");
    }
    let (status, _) = h
        .post(
            &format!("/app/{app}/endpoint/ep_nope/bulk-cancel"),
            json!({"since": earlier}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, tasks) = h.get("/background-task").await;
    assert_eq!(tasks["data"], json!([]), "no task was started");
}

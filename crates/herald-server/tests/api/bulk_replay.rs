//! Bulk replay: an endpoint's messages of a time range sent again as a background task,
//! which says first how many it will send.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Receiver, TestHerald};

#[tokio::test]
async fn a_bulk_replay_counts_first_then_sends_each_chosen_message_again() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let endpoint = endpoint["id"].as_str().unwrap();
    let mut wanted = Vec::new();
    for n in 0..3 {
        let msg = herald
            .publish(&app, json!({"eventType": "a", "payload": {"n": n}}))
            .await;
        wanted.push(msg);
    }
    herald
        .publish(&app, json!({"eventType": "b", "payload": {}}))
        .await;
    receiver.wait_for(4).await;
    herald.wait_recorded(4).await;

    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let path = format!("/app/{app}/endpoint/{endpoint}/bulk-replay");
    let (status, task) = herald
        .post(&path, json!({"since": since, "eventTypes": ["a"]}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["task"], "endpoint.bulk-replay");
    assert_eq!(task["data"]["total"], 3, "said before it starts: {task}");
    herald.wait_tasks_finished(1).await;

    let got = receiver.wait_for(7).await;
    let mut again: Vec<String> = got[4..]
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    again.sort();
    wanted.sort();
    assert_eq!(again, wanted, "the three of type a, once each");

    // The application's own portal session follows its task.
    let (_, access) = herald.post("/auth/app-portal-access/acme", json!({})).await;
    let portal = access["token"].as_str().unwrap();
    let id = task["id"].as_str().unwrap();
    let (status, done) = herald
        .call_as(portal, Method::GET, &format!("/background-task/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "finished");
    assert_eq!(done["data"], json!({"total": 3, "replayed": 3}));

    // Another customer's portal knows nothing of it; nor of the provider's broadcasts.
    herald.app("globex").await;
    let (_, access) = herald
        .post("/auth/app-portal-access/globex", json!({}))
        .await;
    let other = access["token"].as_str().unwrap();
    let (status, _) = herald
        .call_as(other, Method::GET, &format!("/background-task/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, broadcast) = herald
        .post("/msg/broadcast", json!({"eventType": "a", "payload": {}}))
        .await;
    let broadcast = broadcast["id"].as_str().unwrap();
    let (status, _) = herald
        .call_as(
            portal,
            Method::GET,
            &format!("/background-task/{broadcast}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_retried_request_gets_the_task_the_first_one_made() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let replay = format!(
        "/app/{app}/endpoint/{}/bulk-replay",
        endpoint["id"].as_str().unwrap()
    );
    for (path, body) in [
        (replay.as_str(), json!({"since": since})),
        ("/msg/broadcast", json!({"eventType": "a", "payload": {}})),
    ] {
        let mut ids = Vec::new();
        for _ in 0..2 {
            let answer = herald
                .request(Method::POST, path)
                .header("idempotency-key", "retry-1")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::ACCEPTED);
            let task: serde_json::Value = answer.json().await.unwrap();
            ids.push(task["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(ids[0], ids[1], "{path}: one task");
    }
    let (_, listed) = herald.get("/background-task").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_bulk_replays_are_refused_and_an_empty_one_ends_at_once() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let path = format!(
        "/app/{app}/endpoint/{}/bulk-replay",
        endpoint["id"].as_str().unwrap()
    );
    let now = chrono::Utc::now();
    let hour_ago = (now - chrono::Duration::hours(1)).to_rfc3339();
    for (body, field) in [
        (
            json!({"since": now.to_rfc3339(), "until": hour_ago}),
            "until",
        ),
        (
            json!({"since": (now + chrono::Duration::hours(1)).to_rfc3339()}),
            "until",
        ),
        (json!({"since": hour_ago, "status": 9}), "status"),
        (json!({"since": hour_ago, "eventTypes": []}), "eventTypes"),
        (json!({"since": hour_ago, "tag": ""}), "tag"),
    ] {
        let (status, answer) = herald.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"][1], field, "{answer}");
    }
    let (status, answer) = herald
        .post(&path, json!({"since": hour_ago, "statusCodeClass": 500}))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not silently ignored: {answer}"
    );
    let (status, _) = herald
        .post(
            &format!("/app/{app}/endpoint/ep_none/bulk-replay"),
            json!({"since": hour_ago}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nothing in the range: a task that has nothing to do, and says so.
    let (status, task) = herald.post(&path, json!({"since": hour_ago})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(task["data"]["total"], 0);
    herald.wait_tasks_finished(1).await;
    let (_, done) = herald
        .get(&format!(
            "/background-task/{}",
            task["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (done["status"].as_str(), &done["data"]["replayed"]),
        (Some("finished"), &json!(0))
    );
    assert!(receiver.received().is_empty());
}

//! Expunging every payload of an application (Svix's `expunge-all-contents`), as a
//! background task: the payloads go, the messages and their log stay, other applications
//! are untouched.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Receiver, TestHerald};

#[tokio::test]
async fn every_payload_of_one_application_is_expunged_and_nothing_else() {
    let herald = TestHerald::start().await;
    let acme = herald.app("acme").await;
    let globex = herald.app("globex").await;
    let receiver = Receiver::start().await;
    herald.endpoint(&acme, json!({"url": receiver.url})).await;
    let mut msgs = Vec::new();
    for n in 0..3 {
        msgs.push(
            herald
                .publish(&acme, json!({"eventType": "a", "payload": {"n": n}}))
                .await,
        );
    }
    let kept = herald
        .publish(
            &globex,
            json!({"eventType": "a", "payload": {"kept": true}}),
        )
        .await;
    receiver.wait_for(3).await;

    // Only the provider decides what is kept of its customers' events.
    let (_, access) = herald.post("/auth/app-portal-access/acme", json!({})).await;
    let portal = access["token"].as_str().unwrap();
    let path = format!("/app/{acme}/msg/expunge-all-contents");
    let (status, _) = herald.call_as(portal, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, task) = herald.call(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["task"], "application.purge_content");
    herald.wait_tasks_finished(1).await;

    for msg in &msgs {
        let (status, shown) = herald.get(&format!("/app/{acme}/msg/{msg}")).await;
        assert_eq!(status, StatusCode::OK, "the message stays");
        assert_eq!(shown["payload"], json!({"expired": true}), "{shown}");
    }
    let (_, other) = herald.get(&format!("/app/{globex}/msg/{kept}")).await;
    assert_eq!(other["payload"], json!({"kept": true}));
    let id = task["id"].as_str().unwrap();
    let (_, done) = herald.get(&format!("/background-task/{id}")).await;
    assert_eq!(done["status"], "finished");
    assert_eq!(done["data"], json!({"expunged": 3}));
}

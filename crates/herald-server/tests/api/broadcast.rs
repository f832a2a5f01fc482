//! Broadcasts: one call, committed once as a background task, published by the task
//! runner to every chosen application's subscribers; a task a dead node left half done is
//! finished by the next one without publishing anything twice.

use herald_core::store::{NewMessage, Published};
use herald_core::task::{BackgroundTask, Broadcast, TaskInput, TaskStatus};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Receiver, TestHerald};

/// An application with metadata and one endpoint at its own receiver.
async fn customer(herald: &TestHerald, uid: &str, tier: &str) -> (String, Receiver) {
    let (status, app) = herald
        .post(
            "/app",
            json!({"name": uid, "uid": uid, "metadata": {"tier": tier}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let id = app["id"].as_str().unwrap().to_owned();
    let receiver = Receiver::start().await;
    herald.endpoint(&id, json!({"url": receiver.url})).await;
    (id, receiver)
}

async fn messages_of(herald: &TestHerald, app: &str) -> Vec<Value> {
    let (_, list) = herald.get(&format!("/app/{app}/msg")).await;
    list["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_broadcast_reaches_the_chosen_applications_once_each() {
    let herald = TestHerald::start().await;
    let (acme, acme_hooks) = customer(&herald, "acme", "gold").await;
    let (globex, globex_hooks) = customer(&herald, "globex", "gold").await;
    let (initech, _) = customer(&herald, "initech", "free").await;

    let (status, task) = herald
        .post(
            "/msg/broadcast",
            json!({"eventType": "status.incident", "payload": {"severity": "minor"},
                   "appMetadata": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["task"], "message.broadcast");
    assert_eq!(task["status"], "running");
    herald.wait_tasks_finished(1).await;

    for hooks in [&acme_hooks, &globex_hooks] {
        let got = hooks.wait_for(1).await;
        assert_eq!(
            got[0].body.as_ref(),
            br#"{"severity":"minor"}"#,
            "byte for byte"
        );
    }
    assert_eq!(messages_of(&herald, &acme).await.len(), 1);
    assert_eq!(messages_of(&herald, &globex).await.len(), 1);
    assert!(messages_of(&herald, &initech).await.is_empty(), "not gold");

    let id = task["id"].as_str().unwrap();
    let (_, done) = herald.get(&format!("/background-task/{id}")).await;
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(done["data"], json!({"applications": 2, "messages": 2}));
    let (_, listed) = herald.get("/background-task").await;
    assert_eq!(listed["data"][0]["id"], id);
}

#[tokio::test]
async fn a_task_left_half_done_is_finished_after_a_restart_without_duplicates() {
    let (mut herald, _clock) = TestHerald::start_manual().await;
    let mut apps = Vec::new();
    for uid in ["one", "two", "three"] {
        apps.push(customer(&herald, uid, "gold").await);
    }
    let mut ids: Vec<String> = apps.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();

    // As a node leaves it when it dies: the first application done (the cursor), the
    // second one's message published but the step not recorded.
    let store = herald.store();
    let now = chrono::Utc::now();
    let broadcast = Broadcast {
        event_type: "status.incident".into(),
        payload: r#"{"n":1}"#.into(),
        channels: None,
        tags: None,
        app_uids: None,
        app_metadata: Default::default(),
    };
    let task = BackgroundTask {
        id: herald_core::ids::IdKind::Task.new_id(),
        app_id: None,
        input: TaskInput::Broadcast(broadcast.clone()),
        status: TaskStatus::Running,
        data: json!({"applications": 1, "messages": 1}),
        cursor: Some(ids[0].clone()),
        created_at: now,
        updated_at: now,
    };
    store.create_task(&task, None).await.unwrap();
    let early = herald_core::model::Message::new(&ids[1], "status.incident", r#"{"n":1}"#, now);
    let early = NewMessage {
        idempotency_key: Some(Broadcast::idempotency_key(&task.id)),
        ..NewMessage::from(early)
    };
    assert!(matches!(
        store.create_message(&early).await.unwrap(),
        Published::Created { .. }
    ));

    herald.restart_with(|_| {}).await;
    herald.wait_tasks_finished(1).await;
    let counts = [
        messages_of(&herald, &ids[0]).await.len(),
        messages_of(&herald, &ids[1]).await.len(),
        messages_of(&herald, &ids[2]).await.len(),
    ];
    assert_eq!(counts, [0, 1, 1], "none before the cursor, none twice");
    let (_, done) = herald.get(&format!("/background-task/{}", task.id)).await;
    assert_eq!(done["status"], "finished");
    assert_eq!(done["data"], json!({"applications": 3, "messages": 3}));
}

#[tokio::test]
async fn bad_broadcasts_are_refused_and_create_no_task() {
    let herald = TestHerald::start().await;
    for body in [
        json!({"eventType": "bad type!", "payload": {}}),
        json!({"eventType": "a", "payload": {}, "appUids": []}),
        json!({"eventType": "a", "payload": {}, "appUids": ["no spaces allowed"]}),
        json!({"eventType": "a", "payload": {}, "deliverAt": "2030-01-01T00:00:00Z"}),
        json!({"eventType": "a"}),
    ] {
        let (status, answer) = herald.post("/msg/broadcast", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
    }
    let (_, listed) = herald.get("/background-task").await;
    assert_eq!(listed["data"], json!([]));
    let (status, _) = herald
        .call(Method::GET, "/background-task/qtask_none", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_broadcast_goes_on_step_by_step_across_pages() {
    // The server's own runner is not woken (the task is written to the store directly and
    // its clock stands still); a runner taking two applications a step does the work.
    let (herald, clock) = TestHerald::start_manual().await;
    let mut ids = Vec::new();
    for uid in ["a1", "a2", "a3", "a4", "a5"] {
        ids.push(customer(&herald, uid, "gold").await.0);
    }
    ids.sort();
    let store = herald.store();
    let now = herald_core::Clock::now(clock.as_ref());
    let task = BackgroundTask {
        id: herald_core::ids::IdKind::Task.new_id(),
        app_id: None,
        input: TaskInput::Broadcast(Broadcast {
            event_type: "status.incident".into(),
            payload: "{}".into(),
            channels: None,
            tags: Some(vec!["incident".into()]),
            app_uids: Some(vec!["a1".into(), "a3".into(), "a4".into(), "a5".into()]),
            app_metadata: Default::default(),
        }),
        status: TaskStatus::Running,
        data: json!({}),
        cursor: None,
        created_at: now,
        updated_at: now,
    };
    store.create_task(&task, None).await.unwrap();
    let runner = herald_delivery::tasks::TaskRunner::new(store.clone(), clock.clone()).with_page(2);
    let mut finished = runner.finished();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(runner.run(stop.clone()));
    let ended =
        tokio::time::timeout(crate::helpers::DEADLINE, finished.wait_for(|n| *n >= 1)).await;
    assert!(ended.is_ok(), "the task ended");
    stop.cancel();

    let done = store.get_task(&task.id).await.unwrap();
    assert_eq!(done.status, TaskStatus::Finished);
    assert_eq!(done.data, json!({"applications": 4, "messages": 4}));
    assert_eq!(
        done.cursor.as_deref(),
        Some(ids[4].as_str()),
        "three steps, to the last"
    );
    let mut reached = Vec::new();
    for id in &ids {
        let messages = messages_of(&herald, id).await;
        if let Some(first) = messages.first() {
            assert_eq!(messages.len(), 1);
            assert_eq!(first["tags"], json!(["incident"]));
            reached.push(id.clone());
        }
    }
    assert_eq!(
        reached.len(),
        4,
        "every chosen application, whichever page it was on"
    );
}

//! Crash safety and shutdown of a real `herald serve` process.
//!
//! - Publishing runs without pause while the process is killed with SIGKILL at five random
//!   moments and started again on the same database: every message that got a 202 must
//!   reach the receiver at least once, and none that got an error may. Duplicates (expected
//!   after a crash) are counted. On SQLite always; on PostgreSQL when
//!   `HERALD_TEST_POSTGRES_URL` is set.
//! - SIGTERM lets the attempt in flight finish, records it, and exits 0.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_store_postgres::testing::TestDatabase;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::watch;

use support::{explain_missing, get_json, post, setup, Answer, Node, Receiver, DEADLINE, TOKEN};

const CRASHES: usize = 5;
const PUBLISHERS: usize = 4;

/// Short attempts make short leases (six timeouts), so a crashed process's deliveries are
/// taken over soon after it comes back; quick retries keep a failed attempt from waiting.
fn fast_config(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("herald.toml");
    let retries = vec!["\"1s\""; 30].join(", ");
    std::fs::write(
        &file,
        format!("[delivery]\ntimeout = \"1s\"\nretry_schedule = [{retries}]\n"),
    )
    .unwrap();
    file
}

/// What the publishers learned.
#[derive(Default)]
struct Outcomes {
    accepted: Mutex<HashSet<String>>,
    /// The `n` of every publish Herald refused: none of them may ever be delivered.
    refused: Mutex<HashSet<i64>>,
}

/// Publishes until `stop`, to whichever node `base` names. Every tenth message is invalid
/// (its event type has a space), so refusals are exercised too.
async fn publish_until_stopped(
    client: reqwest::Client,
    base: watch::Receiver<String>,
    app_id: String,
    next: Arc<AtomicI64>,
    outcomes: Arc<Outcomes>,
    accepted_count: watch::Sender<usize>,
    stop: Arc<AtomicBool>,
) {
    let mut base = base;
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let event_type = if n % 10 == 9 {
            "not valid"
        } else {
            "order.created"
        };
        let body = json!({"eventType": event_type, "payload": {"n": n}});
        let url = format!("{}/app/{app_id}/msg", base.borrow().clone());
        match post(&client, url, &body).await {
            Answer::Accepted(msg) => {
                let id = msg["id"].as_str().unwrap().to_owned();
                outcomes.accepted.lock().unwrap().insert(id);
                accepted_count.send_modify(|c| *c += 1);
            }
            Answer::Refused(_) => {
                outcomes.refused.lock().unwrap().insert(n);
            }
            // The node is down: wait for the next one to come up (or a second, if this was
            // a passing network error).
            Answer::Unknown => {
                let _ = tokio::time::timeout(Duration::from_secs(1), base.changed()).await;
            }
        }
    }
}

async fn crash_repeatedly(store_args: &[&str], label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = fast_config(dir.path());
    let mut node = Node::start(store_args, Some(&config), &[]);
    let receiver = Receiver::start().await;
    let client = reqwest::Client::new();
    let app_id = setup(&client, &node.base, std::slice::from_ref(&receiver)).await;

    let (base_tx, base_rx) = watch::channel(node.base.clone());
    let (count_tx, mut count_rx) = watch::channel(0usize);
    let outcomes = Arc::new(Outcomes::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicI64::new(0));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            tokio::spawn(publish_until_stopped(
                client.clone(),
                base_rx.clone(),
                app_id.clone(),
                next.clone(),
                outcomes.clone(),
                count_tx.clone(),
                stop.clone(),
            ))
        })
        .collect();

    for _ in 0..CRASHES {
        // A random moment: after some more messages were accepted.
        let target = *count_rx.borrow() + rand::thread_rng().gen_range(50..300);
        tokio::time::timeout(DEADLINE, count_rx.wait_for(|c| *c >= target))
            .await
            .expect("publishing goes on")
            .unwrap();
        node.kill();
        node = Node::start(store_args, Some(&config), &[]);
        base_tx.send_replace(node.base.clone());
    }
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        p.await.unwrap();
    }

    let accepted = outcomes.accepted.lock().unwrap().clone();
    if !receiver.arrives_all(&accepted).await {
        explain_missing(&client, &node.base, &app_id, &receiver, &accepted).await;
    }
    receiver.wait_for_all(&accepted).await;
    let refused = outcomes.refused.lock().unwrap().clone();
    let delivered = receiver.numbers.lock().unwrap().clone();
    assert!(!refused.is_empty(), "the test sent invalid messages");
    assert!(
        refused.is_disjoint(&delivered),
        "a refused message was delivered"
    );
    eprintln!(
        "{label}: {} messages accepted across {CRASHES} SIGKILLs, all delivered; {} refused, none delivered; {} duplicate deliveries",
        accepted.len(),
        refused.len(),
        receiver.duplicates()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_accepted_message_across_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    crash_repeatedly(&["--data-dir", data], "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_no_accepted_message_across_sigkills() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    crash_repeatedly(&["--database-url", &db.url], "PostgreSQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_attempt_in_flight_finish_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let mut node = Node::start(&["--data-dir", &data], None, &[]);
    // Slow on purpose: the attempt is still in flight when SIGTERM arrives.
    let receiver = Receiver::start_with_delay(Duration::from_millis(1500)).await;
    let client = reqwest::Client::new();
    let app_id = setup(&client, &node.base, std::slice::from_ref(&receiver)).await;
    let body = json!({"eventType": "a", "payload": {"n": 1}});
    let Answer::Accepted(msg) =
        post(&client, format!("{}/app/{app_id}/msg", node.base), &body).await
    else {
        panic!("publish accepted");
    };
    let mut arrived = receiver.total.clone();
    tokio::time::timeout(DEADLINE, arrived.wait_for(|n| *n >= 1))
        .await
        .unwrap()
        .unwrap();

    let status = tokio::task::spawn_blocking(move || {
        let status = node.terminate();
        drop(node);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "clean exit: {status:?}");

    // Back up on the same database: the attempt was recorded as a success before the exit,
    // so nothing is sent again.
    let node = Node::start(&["--data-dir", &data], None, &[]);
    let msg_id = msg["id"].as_str().unwrap();
    let attempts: Value = get_json(
        &client,
        format!("{}/app/{app_id}/attempt/msg/{msg_id}", node.base),
    )
    .await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 1, "{attempts}");
    assert_eq!(attempts["data"][0]["status"], 0, "{attempts}");
    let deliveries: Value = get_json(
        &client,
        format!("{}/app/{app_id}/msg/{msg_id}/endpoint", node.base),
    )
    .await;
    assert_eq!(deliveries["data"][0]["statusText"], "success");
    assert_eq!(*receiver.total.borrow(), 1);
}

/// Patterns spec §1.4 check 9: an inbound request answered 2xx is already committed, so a
/// SIGKILL right after the answer loses none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_inbound_request_survives_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let mut node = Node::start(&["--data-dir", &data], None, &[]);
    let client = reqwest::Client::new();
    let root = node.base.trim_end_matches("/api/v1").to_owned();
    let source: Value = client
        .post(format!("{root}/ingest/api/v1/source"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "anything", "type": "generic-webhook"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = source["ingestUrl"]
        .as_str()
        .expect("an ingest URL")
        .to_owned();
    const SENT: usize = 20;
    for n in 0..SENT {
        let answer = client
            .post(&url)
            .json(&json!({"n": n}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "request {n}");
    }
    // No shutdown: whatever was acknowledged must already be on disk.
    node.kill();

    let node = Node::start(&["--data-dir", &data], None, &[]);
    let app = source["appId"].as_str().unwrap();
    let listed: Value = get_json(&client, format!("{}/app/{app}/msg?limit=100", node.base)).await;
    let mut seen: Vec<i64> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["payload"]["n"].as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..SENT as i64).collect::<Vec<_>>());
}

//! `herald backup` taken while a node publishes, restored into a new data directory: every
//! message acknowledged before the backup began is there, and the restored node serves.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::{call, get_json, setup, Node};

fn herald(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .expect("herald runs")
}

/// Every message id of `app`, page by page.
async fn message_ids(client: &reqwest::Client, base: &str, app: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut iterator = String::new();
    loop {
        let page = get_json(
            client,
            format!("{base}/app/{app}/msg?limit=250&iterator={iterator}"),
        )
        .await;
        let data = page["data"].as_array().expect("a page of messages");
        ids.extend(data.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match (&page["done"], &page["iterator"]) {
            (Value::Bool(false), Value::String(next)) => iterator = next.clone(),
            _ => return ids,
        }
    }
}

#[tokio::test]
async fn a_backup_taken_while_publishing_restores_every_message_acknowledged_before_it() {
    let original = tempfile::tempdir().unwrap();
    let dir = original.path().to_str().unwrap().to_owned();
    let mut node = Node::start(&["--data-dir", &dir], None, &[]);
    let client = reqwest::Client::new();
    let app = setup(&client, &node.base, &[]).await;

    // Publishing goes on during the backup; what was acknowledged before it began must
    // be in it.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (published, mut count) = tokio::sync::watch::channel(0usize);
    let publisher = tokio::spawn({
        let (client, url) = (client.clone(), format!("{}/app/{app}/msg", node.base));
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let body = json!({"eventType": "backup.test", "payload": {"n": n}});
                let msg = call(&client, url.clone(), body).await.expect("published");
                let id = msg["id"].as_str().unwrap().to_owned();
                acknowledged.lock().unwrap().push(id);
                published.send_replace(n);
            }
        }
    });
    tokio::time::timeout(support::DEADLINE, count.wait_for(|n| *n >= 100))
        .await
        .expect("100 messages published in time")
        .unwrap();
    let before_backup: Vec<String> = acknowledged.lock().unwrap().clone();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("herald-backup.db");
    let file = file.to_str().unwrap();
    let out = herald(&["backup", "--data-dir", &dir, file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop.store(true, Ordering::SeqCst);
    publisher.await.unwrap();
    let after_backup = acknowledged.lock().unwrap().len();
    assert!(node.terminate().success());
    assert!(
        after_backup > before_backup.len(),
        "publishing went on during the backup"
    );

    // A second backup to the same file is refused rather than overwriting it.
    let again = herald(&["backup", "--data-dir", &dir, file]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));

    let restored = tempfile::tempdir().unwrap();
    let new_dir = restored.path().to_str().unwrap().to_owned();
    let out = herald(&["restore", "--data-dir", &new_dir, file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Restoring over a database needs --replace.
    let over = herald(&["restore", "--data-dir", &new_dir, file]);
    assert!(String::from_utf8_lossy(&over.stderr).contains("--replace"));

    let node = Node::start(&["--data-dir", &new_dir], None, &[]);
    let ids = message_ids(&client, &node.base, &app).await;
    let missing: Vec<_> = before_backup
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(missing.is_empty(), "lost in the backup: {missing:?}");
    assert!(ids.len() <= after_backup);
}

#[test]
fn a_backup_of_a_postgres_database_names_postgres_tools() {
    let out = herald(&[
        "backup",
        "--database-url",
        "postgres://127.0.0.1:1/none",
        "/tmp/never-written.db",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}

//! Several real `herald serve` processes on one PostgreSQL: every message published on any
//! node reaches every endpoint, none twice while no node crashes, and a node killed with
//! SIGKILL loses nothing (its leased deliveries are taken over when the leases end).
//!
//! Runs when `HERALD_TEST_POSTGRES_URL` is set (`.ci/run` sets it).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use herald_store_postgres::testing::TestDatabase;
use serde_json::{json, Value};
use tokio::sync::watch;

use support::{call, explain_missing, get_json, setup, Node, Receiver, DEADLINE, TOKEN};

/// The tests of this file take turns: each runs several servers, and two at once on a
/// two-core machine would mostly measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Publishes `count` messages, spread over `bases` round-robin, 32 at a time, each with an
/// idempotency key of its own: a publish that failed (its node died) is retried on the next
/// node and still makes one message. Counts accepted messages into `progress`.
async fn publish(
    client: &reqwest::Client,
    bases: Arc<Mutex<Vec<String>>>,
    app_id: &str,
    range: std::ops::Range<usize>,
    progress: Option<watch::Sender<usize>>,
) -> HashMap<usize, String> {
    stream::iter(range)
        .map(|i| {
            let (client, bases, progress) = (client.clone(), bases.clone(), progress.clone());
            let app_id = app_id.to_owned();
            async move {
                for attempt in 0..10 {
                    let base = {
                        let bases = bases.lock().unwrap();
                        bases[(i + attempt) % bases.len()].clone()
                    };
                    // Every tenth message is also on the "slow" channel.
                    let channels = if i % 10 == 0 { vec!["all", "slow"] } else { vec!["all"] };
                    let body = json!({"eventType": "order.created", "channels": channels, "payload": {"n": i}});
                    let sent = client
                        .post(format!("{base}/app/{app_id}/msg"))
                        .bearer_auth(TOKEN)
                        .header("idempotency-key", format!("order-{i}"))
                        .json(&body)
                        .send()
                        .await;
                    let Ok(resp) = sent else { continue };
                    if let Ok(msg) = resp.json::<Value>().await {
                        if let Some(id) = msg["id"].as_str() {
                            if let Some(p) = &progress {
                                p.send_modify(|n| *n += 1);
                            }
                            return Some((i, id.to_owned()));
                        }
                    }
                }
                None
            }
        })
        .buffer_unordered(32)
        .filter_map(|published| async move { published })
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_message_to_every_endpoint_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node::start(&["--database-url", &db.url], None, &[]))
        .collect();
    let receivers = futures_util::future::join_all((0..5).map(|_| Receiver::start())).await;
    let client = reqwest::Client::new();
    let app_id = setup(&client, &nodes[0].base, &receivers).await;

    let bases = Arc::new(Mutex::new(nodes.iter().map(|n| n.base.clone()).collect()));
    let started = Instant::now();
    let accepted: HashSet<String> = publish(&client, bases, &app_id, 0..5000, None)
        .await
        .into_values()
        .collect();
    assert_eq!(accepted.len(), 5000, "every publish accepted");
    for r in &receivers {
        r.wait_for_all(&accepted).await;
        assert_eq!(r.duplicates(), 0, "no message delivered twice to {}", r.url);
    }
    eprintln!(
        "3 nodes: 5000 messages × 5 endpoints delivered in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_no_accepted_message() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // A short timeout makes a short lease (6 × 2 s), so takeover comes soon; many quick
    // retries keep an attempt that timed out on this busy machine from failing for good.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    let retries = format!("retry_schedule = [{}]", vec!["\"1s\""; 30].join(", "));
    std::fs::write(
        &config,
        format!("[delivery]\ntimeout = \"2s\"\n{retries}\n"),
    )
    .unwrap();
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| Node::start(&["--database-url", &db.url], Some(&config), &[]))
        .collect();
    // A slow endpoint (1 s per answer, at most 8 at once per node) on the "slow" channel,
    // which every tenth message is on: its lane is full on every node, so the node that is
    // killed certainly has attempts to it in flight, which the others must make again.
    let slow = Receiver::start_with_delay(std::time::Duration::from_secs(1)).await;
    let receivers = futures_util::future::join_all((0..4).map(|_| Receiver::start())).await;
    let client = reqwest::Client::new();
    let app_id = setup(&client, &nodes[0].base, &receivers).await;
    let slow_endpoint = json!({"url": slow.url, "channels": ["slow"], "maxConcurrency": 8});
    call(
        &client,
        format!("{}/app/{app_id}/endpoint", nodes[0].base),
        slow_endpoint,
    )
    .await
    .expect("slow endpoint created");

    let bases = Arc::new(Mutex::new(
        nodes.iter().map(|n| n.base.clone()).collect::<Vec<_>>(),
    ));
    let (progress, mut accepted_so_far) = watch::channel(0usize);
    let publishing = {
        let (client, bases, app_id) = (client.clone(), bases.clone(), app_id.clone());
        tokio::spawn(async move { publish(&client, bases, &app_id, 0..5000, Some(progress)).await })
    };
    // Kill a node while publishing and delivering are in full swing.
    tokio::time::timeout(DEADLINE, accepted_so_far.wait_for(|n| *n >= 2000))
        .await
        .unwrap()
        .unwrap();
    bases.lock().unwrap().remove(1);
    nodes[1].kill();
    let published = publishing.await.unwrap();
    assert_eq!(
        published.len(),
        5000,
        "every message accepted once, retried publishes included"
    );
    let accepted: HashSet<String> = published.values().cloned().collect();
    let slow_ones: HashSet<String> = published
        .iter()
        .filter(|(i, _)| *i % 10 == 0)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(
        accepted.len(),
        5000,
        "every message accepted once, retried publishes included"
    );
    for r in &receivers {
        if !r.arrives_all(&accepted).await {
            explain_missing(&client, &nodes[0].base, &app_id, r, &accepted).await;
        }
        r.wait_for_all(&accepted).await;
        // After a crash, duplicates are allowed (at least once); they are counted.
        eprintln!(
            "{}: {} duplicate deliveries after the kill",
            r.url,
            r.duplicates()
        );
    }
    slow.wait_for_all(&slow_ones).await;
    // Those attempts arrived before the kill; they are made again once their leases end.
    assert!(
        slow.sees_a_duplicate().await,
        "the killed node's attempts in flight were taken over"
    );
}

/// Publish→deliver latency when the node that accepts a message is not the one that
/// delivers it (LISTEN/NOTIFY carries the wake-up), beside the same-node figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_latency() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let api_only = Node::start(
        &["--database-url", &db.url],
        None,
        &[("HERALD_DELIVERY__DISPATCH", "false")],
    );
    let worker = Node::start(&["--database-url", &db.url], None, &[]);
    let receiver = Receiver::start().await;
    let client = reqwest::Client::new();
    let app_id = setup(&client, &worker.base, std::slice::from_ref(&receiver)).await;
    for (label, node) in [("cross-node", &api_only), ("same-node", &worker)] {
        let mut latencies = Vec::new();
        for i in 0..200 {
            let before = receiver.total.borrow().to_owned();
            let mut total = receiver.total.clone();
            let started = Instant::now();
            call(
                &client,
                format!("{}/app/{app_id}/msg", node.base),
                json!({"eventType": "a", "payload": {"i": i}}),
            )
            .await
            .expect("published");
            tokio::time::timeout(DEADLINE, total.wait_for(|n| *n > before))
                .await
                .expect("delivered")
                .unwrap();
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        eprintln!(
            "{label}: publish→deliver over 200 sequential messages: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            at(0.5),
            at(0.9),
            at(0.99),
            latencies[latencies.len() - 1]
        );
        // Far from a benchmark: only proof that the wake-up crosses nodes (the sweep alone
        // would make this seconds).
        assert!(
            at(0.9) < std::time::Duration::from_secs(1),
            "{label}: p90 {:?}",
            at(0.9)
        );
    }
}

/// The same idempotency key sent to every node at once yields one message, and the same
/// uid created on every node at once yields one application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_across_nodes_are_resolved_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node::start(&["--database-url", &db.url], None, &[]))
        .collect();
    let client = reqwest::Client::new();

    let apps = futures_util::future::join_all((0..12).map(|i| {
        let url = format!("{}/app", nodes[i % 3].base);
        call(&client, url, json!({"name": "same", "uid": "same-uid"}))
    }))
    .await;
    let created: Vec<&Value> = apps.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 1, "one create wins: {apps:?}");
    let conflicts = apps
        .iter()
        .filter(|r| matches!(r, Err(e) if e.contains("409")))
        .count();
    assert_eq!(conflicts, 11, "the others get 409: {apps:?}");
    let app_id = created[0]["id"].as_str().unwrap().to_owned();

    let published = futures_util::future::join_all((0..12).map(|i| {
        let request = client
            .post(format!("{}/app/{app_id}/msg", nodes[i % 3].base))
            .bearer_auth(TOKEN)
            .header("idempotency-key", "order-7")
            .json(&json!({"eventType": "order.created", "payload": {"order": 7}}))
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap()["id"].clone() }
    }))
    .await;
    assert!(
        published
            .iter()
            .all(|id| *id == published[0] && id.is_string()),
        "{published:?}"
    );
    let list: Value = get_json(&client, format!("{}/app/{app_id}/msg", nodes[2].base)).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

/// A receiver that notes the order messages arrive in (their payload's `n`), when each
/// arrived, and the most it answers at once. The first arrival of message `hold` is
/// answered only once `release` is notified, so that a test knows which node has it in
/// flight.
struct OrderReceiver {
    url: String,
    arrivals: Arc<Mutex<Vec<i64>>>,
    times: Arc<Mutex<Vec<Instant>>>,
    /// Answering now, and the most ever at once.
    in_flight: Arc<Mutex<(usize, usize)>>,
    count: watch::Receiver<usize>,
    release: Arc<tokio::sync::Notify>,
}

/// Counts a request out when its handler ends, however it ends (a connection closed by a
/// killed node may drop the handler).
struct Answering(Arc<Mutex<(usize, usize)>>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

impl OrderReceiver {
    async fn start(hold: i64) -> Self {
        Self::answering_in(hold, std::time::Duration::ZERO).await
    }

    /// Like [`OrderReceiver::start`], answering each request only `answer_in` after it came.
    async fn answering_in(hold: i64, answer_in: std::time::Duration) -> Self {
        let arrivals: Arc<Mutex<Vec<i64>>> = Arc::default();
        let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let at = times.clone();
        let in_flight: Arc<Mutex<(usize, usize)>> = Arc::default();
        let release = Arc::new(tokio::sync::Notify::new());
        let (tx, count) = watch::channel(0usize);
        let (seen, busy, gate) = (arrivals.clone(), in_flight.clone(), release.clone());
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let (seen, busy, gate, tx) = (seen.clone(), busy.clone(), gate.clone(), tx.clone());
            at.lock().unwrap().push(Instant::now());
            async move {
                let _answering = {
                    let mut busy_now = busy.lock().unwrap();
                    busy_now.0 += 1;
                    busy_now.1 = busy_now.1.max(busy_now.0);
                    Answering(busy.clone())
                };
                let n = serde_json::from_slice::<Value>(&body).unwrap()["n"]
                    .as_i64()
                    .unwrap();
                let first_time = {
                    let mut seen = seen.lock().unwrap();
                    let first_time = !seen.contains(&n);
                    seen.push(n);
                    first_time
                };
                tx.send_modify(|c| *c += 1);
                if n == hold && first_time {
                    gate.notified().await;
                }
                // A slow receiver on purpose: attempts must overlap for a cap to matter.
                tokio::time::sleep(answer_in).await;
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            arrivals,
            times,
            in_flight,
            count,
            release,
        }
    }

    /// Waits until `n` requests have arrived; the order of all so far.
    async fn wait_for(&self, n: usize) -> Vec<i64> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(DEADLINE, count.wait_for(|c| *c >= n)).await;
        let arrivals = self.arrivals.lock().unwrap().clone();
        assert!(arrived.is_ok(), "{n} expected, got {arrivals:?}");
        arrivals
    }
}

/// An ordered endpoint gets its messages one at a time and in publish order from several
/// nodes, and across a SIGKILL of the node with one in flight: that one is made again
/// (once its lease ends, by another node) before anything behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_endpoint_keeps_its_order_across_nodes_and_a_killed_node() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // A short timeout makes a short lease (6 × 2 s), so the takeover comes soon.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, "[delivery]\ntimeout = \"2s\"\n").unwrap();
    let store = ["--database-url", db.url.as_str()];
    let api_only = [("HERALD_DELIVERY__DISPATCH", "false")];
    let publisher = Node::start(&store, Some(&config), &api_only);
    let mut first = Node::start(&store, Some(&config), &[]);
    const HOLD: i64 = 30;
    const TOTAL: i64 = 100;
    let receiver = OrderReceiver::start(HOLD).await;
    let client = reqwest::Client::new();
    let app = call(
        &client,
        format!("{}/app", publisher.base),
        json!({"name": "fifo"}),
    )
    .await
    .expect("app created");
    let app_id = app["id"].as_str().unwrap();
    let endpoint = json!({"url": receiver.url, "ordered": true});
    let url = format!("{}/app/{app_id}/endpoint", publisher.base);
    call(&client, url, endpoint).await.expect("endpoint made");
    // Publish order is the order the publishes were accepted in: one after another.
    for n in 0..TOTAL {
        let body = json!({"eventType": "ledger.entry", "payload": {"n": n}});
        let url = format!("{}/app/{app_id}/msg", publisher.base);
        call(&client, url, body).await.expect("published");
    }

    // The one delivering node has message 30 in flight when it is killed.
    let before_kill = receiver.wait_for(HOLD as usize + 1).await;
    assert_eq!(before_kill, (0..=HOLD).collect::<Vec<_>>());
    first.kill();
    receiver.release.notify_one();
    let _others: Vec<Node> = (0..2)
        .map(|_| Node::start(&store, Some(&config), &[]))
        .collect();

    // Two nodes take over: message 30 again, then the rest, in order, one at a time.
    let all = receiver.wait_for(TOTAL as usize + 1).await;
    let mut expected: Vec<i64> = (0..=HOLD).collect();
    expected.extend(HOLD..TOTAL);
    assert_eq!(all, expected);
    assert_eq!(receiver.in_flight.lock().unwrap().1, 1, "one at a time");
}

/// An endpoint's `rateLimit` holds for the cluster: three nodes delivering to an endpoint
/// limited to 10 a second deliver 10 a second in all (each node alone would allow 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_keep_an_endpoints_rate_limit_together() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = ["--database-url", db.url.as_str()];
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&store, None, &[])).collect();
    let receiver = OrderReceiver::start(-1).await;
    let client = reqwest::Client::new();
    let app = call(
        &client,
        format!("{}/app", nodes[0].base),
        json!({"name": "paced"}),
    )
    .await
    .expect("app created");
    let app_id = app["id"].as_str().unwrap().to_owned();
    const RATE: usize = 10;
    const TOTAL: usize = 60;
    // One attempt at a time per node: each node claims two at most, so all three share
    // the work (one node claiming all sixty would keep the limit alone).
    let endpoint = json!({"url": receiver.url, "rateLimit": RATE, "maxConcurrency": 1});
    let url = format!("{}/app/{app_id}/endpoint", nodes[0].base);
    call(&client, url, endpoint).await.expect("endpoint made");
    // Published through every node at once, so that every node has some to deliver.
    let bases = Arc::new(Mutex::new(nodes.iter().map(|n| n.base.clone()).collect()));
    let published = publish(&client, bases, &app_id, 0..TOTAL, None).await;
    assert_eq!(published.len(), TOTAL);

    receiver.wait_for(TOTAL).await;
    let times = receiver.times.lock().unwrap().clone();
    let span = times[TOTAL - 1] - times[0];
    // 59 gaps of 100 ms: 5.9 s at the limit; ten percent less is allowed for timing.
    let least = std::time::Duration::from_millis(1000 * (TOTAL as u64 - 1) / RATE as u64);
    eprintln!(
        "rate limit {RATE}/s on 3 nodes: {TOTAL} deliveries in {span:?}, {:.1}/s",
        (TOTAL - 1) as f64 / span.as_secs_f64()
    );
    assert!(span >= least.mul_f64(0.9), "{TOTAL} deliveries in {span:?}");
    let most_in_a_second = (0..TOTAL)
        .map(|i| {
            let window = times[i]..times[i] + std::time::Duration::from_secs(1);
            times.iter().filter(|t| window.contains(*t)).count()
        })
        .max()
        .unwrap();
    // A little more than the rate may fall in a window when an attempt ran late and
    // the next on time (a busy two-core machine); without a shared pace it would be ~30.
    assert!(
        most_in_a_second <= RATE + 2,
        "{most_in_a_second} in one second"
    );
}

/// An endpoint's `maxConcurrency` holds for the cluster: three nodes delivering to an
/// endpoint capped at 2 never make more than 2 attempts to it at once (each node alone
/// allows 2, so 6 in all without a shared count), and every message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_keep_an_endpoints_concurrency_cap_together() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = ["--database-url", db.url.as_str()];
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&store, None, &[])).collect();
    let receiver = OrderReceiver::answering_in(-1, std::time::Duration::from_millis(100)).await;
    let client = reqwest::Client::new();
    let app = call(
        &client,
        format!("{}/app", nodes[0].base),
        json!({"name": "capped"}),
    )
    .await
    .expect("app created");
    let app_id = app["id"].as_str().unwrap().to_owned();
    const CAP: usize = 2;
    const TOTAL: usize = 30;
    let endpoint = json!({"url": receiver.url, "maxConcurrency": CAP});
    let url = format!("{}/app/{app_id}/endpoint", nodes[0].base);
    call(&client, url, endpoint).await.expect("endpoint made");
    // Published through every node at once, so that every node has some to deliver.
    let bases = Arc::new(Mutex::new(nodes.iter().map(|n| n.base.clone()).collect()));
    let published = publish(&client, bases, &app_id, 0..TOTAL, None).await;
    assert_eq!(published.len(), TOTAL);

    let mut arrived = receiver.wait_for(TOTAL).await;
    assert_eq!(arrived.len(), TOTAL, "no message twice: {arrived:?}");
    arrived.sort_unstable();
    arrived.dedup();
    assert_eq!(arrived.len(), TOTAL, "every message: {arrived:?}");
    let most_at_once = receiver.in_flight.lock().unwrap().1;
    assert_eq!(most_at_once, CAP, "attempts at once, over three nodes");
}

/// The attempts to `endpoint` as recorded (newest first).
async fn attempts_to(
    client: &reqwest::Client,
    base: &str,
    app: &str,
    endpoint: &str,
) -> Vec<Value> {
    let url = format!("{base}/app/{app}/attempt/endpoint/{endpoint}?limit=250");
    let page = get_json(client, url).await;
    page["data"].as_array().cloned().unwrap_or_default()
}

/// The log line a node writes once it has recorded an attempt.
const RECORDED: &str = "attempt recorded";

/// A `herald listen` session is one node's, yet messages published on any node reach it:
/// the other nodes leave its deliveries to that node, so each message is one successful
/// attempt (no `listener_offline` failures and retries). A second session under the name
/// is refused on another node; one forced there takes the name over, and from then on
/// that node delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_session_on_one_node_gets_what_every_node_accepts() {
    use support::in_process::Command;

    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = ["--database-url", db.url.as_str()];
    // Each node logs every attempt it records, for the test to wait on.
    let log = [(
        "HERALD_LOG",
        "info,herald_delivery::dispatch::attempt=debug",
    )];
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&store, None, &log)).collect();
    let client = reqwest::Client::new();
    let app = call(
        &client,
        format!("{}/app", nodes[0].base),
        json!({"name": "dev", "uid": "dev"}),
    )
    .await
    .expect("app created");
    let app_id = app["id"].as_str().unwrap().to_owned();
    let listen = |node: &Node, target: &str, force: bool| {
        let mut args = vec![
            "listen", target, "--server", &node.base, "--app", "dev", "--name", "laptop",
        ];
        if force {
            args.push("--force");
        }
        Command::start(&args)
    };
    let publish_round = |count: usize, first: usize| {
        let (client, app_id) = (client.clone(), app_id.clone());
        let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
        async move {
            let mut ids = HashSet::new();
            for i in first..first + count {
                let body = json!({"eventType": "dev.event", "payload": {"n": i}});
                let url = format!("{}/app/{app_id}/msg", bases[i % bases.len()]);
                let msg = call(&client, url, body).await.expect("published");
                ids.insert(msg["id"].as_str().unwrap().to_owned());
            }
            ids
        }
    };

    let first_laptop = Receiver::start().await;
    let mut first_cli = listen(&nodes[0], &first_laptop.url, false);
    first_cli.line_with("Signing secret:").await;
    let sent = publish_round(30, 0).await;
    first_laptop.wait_for_all(&sent).await;
    nodes[0].wait_for_logs(RECORDED, 30);
    let attempts = attempts_to(&client, &nodes[1].base, &app_id, "listen-laptop").await;
    let statuses: Vec<_> = attempts
        .iter()
        .map(|a| a["responseStatusCode"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!(200); 30],
        "one attempt each, none failed offline"
    );
    assert_eq!(first_laptop.duplicates(), 0);

    // The name is taken: a session on another node is refused...
    let refused = Command::run(&[
        "listen",
        "--print-json",
        "--server",
        &nodes[1].base,
        "--app",
        "dev",
        "--name",
        "laptop",
    ])
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("session_in_use"), "{stderr}");

    // ...unless it takes the name over; the first session's node lets go.
    let second_laptop = Receiver::start().await;
    drop(first_cli);
    let mut second_cli = listen(&nodes[2], &second_laptop.url, true);
    second_cli.line_with("Signing secret:").await;
    let sent = publish_round(15, 30).await;
    second_laptop.wait_for_all(&sent).await;
    nodes[2].wait_for_logs(RECORDED, 15);
    let attempts = attempts_to(&client, &nodes[0].base, &app_id, "listen-laptop").await;
    assert_eq!(attempts.len(), 45, "one attempt each: {attempts:?}");
    assert!(
        attempts.iter().all(|a| a["responseStatusCode"] == 200),
        "{attempts:?}"
    );

    // Taken over on the same node: the replaced session's end does not undo the new
    // one's hold, so the other nodes still leave the deliveries to that node.
    let third_laptop = Receiver::start().await;
    let mut third_cli = listen(&nodes[2], &third_laptop.url, true);
    third_cli.line_with("Signing secret:").await;
    drop(second_cli);
    let sent = publish_round(15, 45).await;
    third_laptop.wait_for_all(&sent).await;
    nodes[2].wait_for_logs(RECORDED, 15);
    let attempts = attempts_to(&client, &nodes[1].base, &app_id, "listen-laptop").await;
    assert_eq!(attempts.len(), 60, "one attempt each: {attempts:?}");
    assert!(
        attempts.iter().all(|a| a["responseStatusCode"] == 200),
        "{attempts:?}"
    );
}

/// An API token's rate limit holds for the cluster: three nodes that count each other
/// (`/instance` says 3) allow a third of the limit each, so a client spreading its
/// requests over them gets the limit in all, not three times it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_an_api_tokens_rate_limit() {
    use support::in_process::Command;

    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    const RATE: usize = 30;
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(2);
    let store = ["--database-url", db.url.as_str()];
    let limits = [
        ("HERALD_API__RATE_LIMIT_PER_TOKEN", "30"),
        ("HERALD_API__RATE_LIMIT_BURST", "30"),
    ];
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&store, None, &limits)).collect();
    let client = reqwest::Client::new();
    // Each node counts the others at its next heartbeat (every 5 s), and says so.
    for node in &nodes {
        node.wait_for_log("nodes=3");
    }
    for node in &nodes {
        let instance = get_json(&client, format!("{}/instance", node.base)).await;
        assert_eq!(instance["nodes"], 3, "{instance}");
    }
    // A token of its own, whose buckets the polling above has not touched.
    let made = Command::run(&["token", "create", "--database-url", &db.url]).await;
    let said = String::from_utf8_lossy(&made.stderr);
    assert!(made.status.success(), "{said}");
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();

    let bases: Vec<String> = nodes.iter().map(|n| format!("{}/app", n.base)).collect();
    let started = Instant::now();
    let answers = stream::iter(0..)
        .take_while(|_| std::future::ready(started.elapsed() < WINDOW))
        .map(|i| {
            let request = client.get(&bases[i % bases.len()]).bearer_auth(&token);
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    let allowed = answers.iter().filter(|s| **s == 200).count();
    let refused = answers.iter().filter(|s| **s == 429).count();
    // The cluster's burst, then its rate for the window: 30 + 30 × 2 = 90 (each node
    // alone would allow that much, 270 in all).
    let expected = RATE + RATE * WINDOW.as_secs() as usize;
    assert!(refused > 0, "the limit was reached: {allowed} allowed");
    assert!(
        allowed <= expected + expected / 5 && allowed >= expected / 2,
        "{allowed} allowed in {WINDOW:?}, {refused} refused; the cluster's limit allows about {expected}"
    );
}

/// A receiver that answers every request `500`, counting them.
async fn failing_receiver() -> (String, watch::Receiver<usize>) {
    let (tx, count) = watch::channel(0usize);
    let app = axum::Router::new().fallback(move || {
        tx.send_modify(|n| *n += 1);
        async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

/// An endpoint's circuit, once open on one node, is open on every node: the others stop
/// sending to it too, rather than each learning it is down from failures of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_one_node_opens_is_open_on_every_node() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = ["--database-url", db.url.as_str()];
    // One failure opens a circuit, for longer than the test.
    let breaker = [
        ("HERALD_DELIVERY__CIRCUIT_BREAKER_FAILURES", "1"),
        ("HERALD_DELIVERY__CIRCUIT_BREAKER_COOLDOWN", "10m"),
        ("HERALD_DELIVERY__CIRCUIT_BREAKER_MAX_COOLDOWN", "10m"),
    ];
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node::start(&store, None, &breaker))
        .collect();
    let client = reqwest::Client::new();
    let (down, mut down_hits) = failing_receiver().await;
    let healthy = Receiver::start().await;
    let app = call(
        &client,
        format!("{}/app", nodes[0].base),
        json!({"name": "x"}),
    )
    .await
    .expect("app created");
    let app_id = app["id"].as_str().unwrap().to_owned();
    for url in [&down, &healthy.url] {
        let endpoint = format!("{}/app/{app_id}/endpoint", nodes[0].base);
        call(&client, endpoint, json!({"url": url}))
            .await
            .expect("endpoint made");
    }

    // The first message fails at the endpoint that is down, which opens its circuit on the
    // node that tried; every node says once it has the circuit open.
    let single = Arc::new(Mutex::new(vec![nodes[0].base.clone()]));
    let first = publish(&client, single, &app_id, 0..1, None).await;
    tokio::time::timeout(DEADLINE, down_hits.wait_for(|n| *n == 1))
        .await
        .expect("the first attempt")
        .unwrap();
    for node in &nodes {
        node.wait_for_log("circuit opened");
    }

    // Thirty more, through every node: each reaches the healthy endpoint, none the other.
    let bases = Arc::new(Mutex::new(nodes.iter().map(|n| n.base.clone()).collect()));
    let rest = publish(&client, bases, &app_id, 1..31, None).await;
    let ids: HashSet<String> = first.into_values().chain(rest.into_values()).collect();
    assert_eq!(ids.len(), 31);
    healthy.wait_for_all(&ids).await;
    assert_eq!(
        *down_hits.borrow(),
        1,
        "the endpoint that is down was tried again while its circuit was open"
    );
}

//! Runs the shared store conformance suite against PostgreSQL, one fresh database per test.

use crate::testing::TestDatabase;
use crate::{connect, PgStore};

async fn fresh_store() -> Option<(PgStore, TestDatabase)> {
    let db = TestDatabase::create().await?;
    let store = connect(&db.url, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    Some((store, db))
}

herald_core::conformance_tests!(fresh_store);

/// A fresh store holding one application with one endpoint, for the tests of what the
/// nodes share about an endpoint.
async fn store_with_endpoint() -> Option<(PgStore, TestDatabase, herald_core::model::Endpoint)> {
    use herald_core::conformance::{app, endpoint};
    use herald_core::store::Catalog;

    let (store, db) = fresh_store().await?;
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let e = endpoint(&a.id, None);
    store.create_endpoint(&e).await.unwrap();
    Some((store, db, e))
}

#[tokio::test]
async fn secrets_are_sealed_at_rest() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let open = |sealer| {
        let url = db.url.clone();
        async move {
            let store = connect(&url, 2).await.expect("connect");
            store.migrate().await.expect("migrate");
            store.with_sealer(std::sync::Arc::new(sealer))
        }
    };
    let raw = herald_store_sql::store::endpoint_at_rest;
    herald_core::conformance::secrets_are_sealed_at_rest(open, raw).await;
}

/// The reason the stream is numbered by transaction: a message whose transaction began
/// first but commits last must not be skipped by a reader that already went past it.
#[tokio::test]
async fn the_stream_waits_for_a_transaction_still_in_flight() {
    use herald_core::conformance::{app, message};
    use herald_core::store::{Catalog, Messages, StreamFilter, StreamPosition};

    let Some((store, _db)) = fresh_store().await else {
        return;
    };
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let slow = message(&a.id, "slow");
    let mut tx = store.db().writer.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_type, payload, created_at) \
         VALUES ($1, $2, 'slow', '{}', now())",
    )
    .bind(&slow.message.id)
    .bind(&a.id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let fast = message(&a.id, "fast");
    store.create_message(&fast).await.unwrap();

    let all = StreamFilter::default();
    let read = || store.read_stream(&a.id, &StreamPosition::Start, &all, 10);
    let held = read().await.unwrap();
    assert!(
        held.items.is_empty(),
        "read past a transaction in flight: {:?}",
        held.items
    );
    assert_eq!(held.next, StreamPosition::Start);
    tx.commit().await.unwrap();
    // Once committed, both come, in commit order. Any transaction in flight on the server
    // (in any database: PostgreSQL's snapshots are cluster-wide) may hold the stream back a
    // moment longer (`slow` alone, even: another transaction may have begun between the
    // two), so this waits for them, and never sees `fast` before `slow`.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ids: Vec<String> = read()
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|m| m.id)
            .collect();
        // Always a prefix of the commit order: `slow` first, never `fast` alone.
        let expected = [slow.message.id.clone(), fast.message.id.clone()];
        assert_eq!(ids, expected[..ids.len()], "not in commit order");
        if ids.len() == expected.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never moved on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Nodes of a cluster are upgraded one at a time, so a migration runs while older nodes
/// still serve: it may only add (expand). What older nodes could trip over (dropping or
/// renaming, changing a type, a new NOT NULL without a default) waits for a later release
/// in a migration that says why no node needs the old shape any more (`-- contract: …`).
#[test]
fn migrations_only_add_unless_they_say_they_contract() {
    let breaking = [
        "DROP TABLE",
        "DROP COLUMN",
        "RENAME ",
        " TYPE ",
        "SET NOT NULL",
        "DROP DEFAULT",
    ];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 14, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if text
            .lines()
            .any(|l| l.trim_start().starts_with("-- contract:"))
        {
            continue;
        }
        // Statements only: comments say what they like.
        let sql: String = text
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        for word in breaking {
            assert!(
                !sql.contains(word),
                "{} has `{}`, which older nodes still serving may trip over: split it into an \
                 expand now and a `-- contract:` migration later",
                file.display(),
                word.trim()
            );
        }
        for added in sql.split("ADD COLUMN").skip(1) {
            let column = added.split([',', ';']).next().unwrap_or_default();
            assert!(
                !column.contains("NOT NULL") || column.contains("DEFAULT"),
                "{}: a column added NOT NULL needs a DEFAULT, or older nodes' inserts fail",
                file.display()
            );
        }
    }
}

/// A rate-limited endpoint's pace is one for all nodes: reservations made at once (as
/// from several nodes) get moments `spacing` apart, each once; a moment in the past is
/// not banked for a burst later.
#[tokio::test]
async fn a_shared_pace_hands_out_each_moment_once() {
    use herald_core::store::Queue;

    let Some((store, _db, e)) = store_with_endpoint().await else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let spacing = chrono::Duration::milliseconds(100);
    let reserve = |at| {
        let (store, id) = (store.clone(), e.id.clone());
        async move { store.reserve_pace(&id, spacing, at).await.unwrap().unwrap() }
    };
    let mut at_once = tokio::task::JoinSet::new();
    for _ in 0..20 {
        at_once.spawn(reserve(now));
    }
    let mut starts = at_once.join_all().await;
    starts.sort();
    let expected: Vec<_> = (0..20).map(|i| now + spacing * i).collect();
    assert_eq!(starts, expected);
    let much_later = now + chrono::Duration::seconds(60);
    assert_eq!(reserve(much_later).await, much_later);
    assert_eq!(reserve(much_later).await, much_later + spacing);
}

/// A database written at the first schema (0001) is brought up to this binary's with
/// nothing lost (the SQLite store's test of the same name says why the first schema).
#[tokio::test]
async fn a_database_from_the_first_schema_keeps_its_rows_through_every_migration() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let first = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_init.sql");
    std::fs::copy(first, dir.path().join("0001_init.sql")).unwrap();
    let store = connect(&db.url, 2).await.expect("connect");
    let then = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    then.run(&store.db().writer)
        .await
        .expect("the first schema");
    let rows = include_str!("../tests/fixtures/first_schema.sql");
    sqlx::raw_sql(rows)
        .execute(&store.db().writer)
        .await
        .expect("the old rows");

    store.migrate().await.expect("every later migration");
    herald_core::conformance::first_schema_rows_read_back(&store).await;
}

/// One node holds a `herald listen` session at a time: another is refused until the
/// holder's word goes stale or it takes over, renewing keeps it, and only the holder's
/// letting go removes it.
#[tokio::test]
async fn a_listen_session_is_one_nodes_until_its_word_goes_stale_or_is_taken_over() {
    use herald_core::store::{ListenSessionAt, Queue};

    let Some((store, _db, e)) = store_with_endpoint().await else {
        return;
    };
    let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let at = |node, secs: i64| ListenSessionAt {
        endpoint_id: &e.id,
        node,
        now: t0 + chrono::Duration::seconds(secs),
        stale_before: t0 + chrono::Duration::seconds(secs - 15),
    };
    let held = [e.id.clone()];
    let elsewhere = |node: &'static str, secs: i64| {
        let store = &store;
        async move {
            let stale_before = t0 + chrono::Duration::seconds(secs - 15);
            store
                .listen_sessions_elsewhere(node, stale_before)
                .await
                .unwrap()
        }
    };

    assert!(store.hold_listen_session(at("a", 0), false).await.unwrap());
    assert!(
        !store.hold_listen_session(at("b", 1), false).await.unwrap(),
        "a holds it"
    );
    assert_eq!(elsewhere("b", 1).await, held);
    assert!(
        elsewhere("a", 1).await.is_empty(),
        "a's own session is not elsewhere"
    );
    assert!(
        store.hold_listen_session(at("a", 5), false).await.unwrap(),
        "renewed"
    );
    assert!(
        !store.hold_listen_session(at("b", 19), false).await.unwrap(),
        "still fresh"
    );

    // a said nothing for 15 s (it died): b may attach, and a, back, is refused...
    assert!(store.hold_listen_session(at("b", 21), false).await.unwrap());
    assert!(!store.hold_listen_session(at("a", 22), false).await.unwrap());
    assert!(elsewhere("b", 22).await.is_empty());
    // ...unless it takes over.
    assert!(store.hold_listen_session(at("a", 23), true).await.unwrap());
    store.drop_listen_session(&e.id, "b").await.unwrap();
    assert_eq!(elsewhere("b", 24).await, held, "b's letting go is not a's");
    store.drop_listen_session(&e.id, "a").await.unwrap();
    assert!(elsewhere("b", 24).await.is_empty());
    assert!(elsewhere("b", 24 + 100).await.is_empty());
}

/// A search is served by the GIN index of the payloads' words, which the planner uses only
/// if the query repeats the index's expression exactly (migration 0024).
#[tokio::test]
async fn a_search_is_planned_on_the_word_index() {
    use herald_core::search::SearchWords;
    use herald_store_sql::dialect::{Dialect, PostgresDialect};

    let Some((store, _db)) = fresh_store().await else {
        return;
    };
    let (condition, _) = PostgresDialect::payload_has_words(&SearchWords::parse("ada").unwrap());
    let query = format!(
        "EXPLAIN SELECT m.id FROM messages m WHERE {}",
        condition.replace('?', "$1")
    );
    let mut tx = store.db().writer.begin().await.expect("begin");
    // The table is empty, so without this a sequential scan is as cheap as any plan.
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .expect("set");
    let plan: Vec<String> = sqlx::query_scalar(&query)
        .bind("'ada':*")
        .fetch_all(&mut *tx)
        .await
        .expect("explain");
    assert!(
        plan.iter().any(|line| line.contains("messages_words")),
        "{plan:#?}"
    );
}

/// Circuits are shared: one node's open circuit is every node's, a later time wins, one
/// node at a time takes the probe once the time is up, and a success closes it for all.
#[tokio::test]
async fn an_open_circuit_is_every_nodes_and_one_node_probes() {
    use chrono::{Duration, TimeZone, Utc};
    use herald_core::store::{CircuitNews, ProbeTurn, Queue};

    let Some((store, _db, e)) = store_with_endpoint().await else {
        return;
    };
    let t0 = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
    let at = |s: i64| t0 + Duration::seconds(s);
    let ep = e.id.as_str();
    assert!(store.open_circuits(t0).await.unwrap().is_empty());

    let opened = |s| CircuitNews::Opened {
        endpoint_id: ep,
        until: at(s),
    };
    store.share_circuit(opened(10)).await.unwrap();
    store.share_circuit(opened(5)).await.unwrap();
    assert_eq!(
        store.open_circuits(t0).await.unwrap(),
        [(e.id.clone(), at(10))],
        "the later time stays"
    );
    assert!(store.open_circuits(at(10)).await.unwrap().is_empty());

    // Too early: wait for the shared time.
    assert_eq!(
        store.take_probe(ep, at(5), at(20)).await.unwrap(),
        ProbeTurn::Theirs(at(10))
    );
    // Time is up: the first to ask probes, and the others wait for its answer.
    assert_eq!(
        store.take_probe(ep, at(10), at(25)).await.unwrap(),
        ProbeTurn::Mine
    );
    assert_eq!(
        store.take_probe(ep, at(11), at(26)).await.unwrap(),
        ProbeTurn::Theirs(at(25))
    );
    // A success closes it for every node.
    let closed = CircuitNews::Closed { endpoint_id: ep };
    store.share_circuit(closed).await.unwrap();
    assert_eq!(
        store.take_probe(ep, at(12), at(27)).await.unwrap(),
        ProbeTurn::Closed
    );
    assert!(store.open_circuits(t0).await.unwrap().is_empty());
}

/// The places under an endpoint's cap are every node's: no more than the cap are held at
/// once, a freed place is taken again, a holder frees only its own, a hold that ran out
/// (its node died) is taken over, and a lowered cap hands out only the places below it.
/// Many takers at once never hold more than the cap.
#[tokio::test]
async fn an_endpoints_cap_is_counted_over_every_node() {
    use chrono::{Duration, TimeZone, Utc};
    use herald_core::store::{Queue, SlotRequest, SlotTurn};

    let Some((store, _db, e)) = store_with_endpoint().await else {
        return;
    };
    let t0 = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
    let at = |s: i64| t0 + Duration::seconds(s);
    let ask = |cap: u32, holder: &'static str, now: i64| SlotRequest {
        endpoint_id: &e.id,
        cap,
        holder,
        now: at(now),
        hold_until: at(now + 30),
    };

    assert_eq!(
        store.take_slot(ask(2, "a", 0)).await.unwrap(),
        SlotTurn::Taken(0)
    );
    assert_eq!(
        store.take_slot(ask(2, "b", 0)).await.unwrap(),
        SlotTurn::Taken(1)
    );
    assert_eq!(
        store.take_slot(ask(2, "c", 1)).await.unwrap(),
        SlotTurn::Full
    );
    // Only its holder frees a place.
    store.free_slot(&e.id, 0, "c").await.unwrap();
    assert_eq!(
        store.take_slot(ask(2, "c", 1)).await.unwrap(),
        SlotTurn::Full
    );
    store.free_slot(&e.id, 0, "a").await.unwrap();
    assert_eq!(
        store.take_slot(ask(2, "c", 1)).await.unwrap(),
        SlotTurn::Taken(0)
    );
    // "b" never freed place 1 (its node died): once its hold is over, it is taken over,
    // and b's late word frees nothing of its successor's.
    assert_eq!(
        store.take_slot(ask(2, "d", 29)).await.unwrap(),
        SlotTurn::Full
    );
    assert_eq!(
        store.take_slot(ask(2, "d", 30)).await.unwrap(),
        SlotTurn::Taken(1)
    );
    store.free_slot(&e.id, 1, "b").await.unwrap();
    assert_eq!(
        store.take_slot(ask(2, "e", 30)).await.unwrap(),
        SlotTurn::Full
    );
    // The cap lowered to 1 while places 0 and 1 are held: place 1 freed is not handed out.
    store.free_slot(&e.id, 1, "d").await.unwrap();
    assert_eq!(
        store.take_slot(ask(1, "e", 30)).await.unwrap(),
        SlotTurn::Full
    );
    store.free_slot(&e.id, 0, "c").await.unwrap();
    assert_eq!(
        store.take_slot(ask(1, "e", 30)).await.unwrap(),
        SlotTurn::Taken(0)
    );
    store.free_slot(&e.id, 0, "e").await.unwrap();

    // Takers racing on the same free places: never more than the cap taken. (Sixteen at
    // once over a pool of four connections.)
    let mut racers = tokio::task::JoinSet::new();
    let (now, hold_until) = (at(40), at(70));
    for n in 0..16 {
        let (store, endpoint_id) = (store.clone(), e.id.clone());
        racers.spawn(async move {
            let holder = format!("racer-{n}");
            let request = SlotRequest {
                endpoint_id: &endpoint_id,
                cap: 3,
                holder: &holder,
                now,
                hold_until,
            };
            store.take_slot(request).await.unwrap()
        });
    }
    let turns = racers.join_all().await;
    let mut places: Vec<u32> = turns
        .iter()
        .filter_map(|t| match t {
            SlotTurn::Taken(n) => Some(*n),
            _ => None,
        })
        .collect();
    let held = places.len();
    places.sort_unstable();
    places.dedup();
    assert_eq!(held, places.len(), "a place given twice: {turns:?}");
    assert!((1..=3).contains(&held), "{held} places of 3: {turns:?}");
}

/// A dispatcher that takes every fresh delivery and never attempts it.
struct TakesEverything;

struct Taken;

impl herald_core::store::FreshIntake for TakesEverything {
    fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::minutes(5)
    }

    fn reserve(
        &self,
        _: &herald_core::model::Endpoint,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Option<Box<dyn herald_core::store::IntakeRoom>> {
        Some(Box::new(Taken))
    }
}

impl herald_core::store::IntakeRoom for Taken {
    fn start(
        self: Box<Self>,
        _: herald_core::store::ClaimedDelivery,
    ) -> Result<(), herald_core::store::IntakeStopped> {
        Ok(())
    }
}

/// A publish whose deliveries all went to its own node's dispatcher wakes the other nodes'
/// long polls, not their dispatchers (there is nothing for them to claim); one that leaves
/// a delivery for a claim wakes both.
#[tokio::test]
async fn other_nodes_dispatchers_are_woken_only_for_work_left_to_claim() {
    use futures_util::FutureExt;
    use herald_core::conformance::message;
    use herald_core::store::{Messages, Queue};

    let deadline = std::time::Duration::from_secs(10);
    let Some((here, db, e)) = store_with_endpoint().await else {
        return;
    };
    let there = connect(&db.url, 2).await.expect("a second node");
    let (work, mut news) = (there.work_signal(), there.news());
    // The second node's listener wakes everything once it has subscribed: from then on it
    // hears every notification.
    tokio::time::timeout(deadline, work.notified())
        .await
        .expect("the second node listens");
    news.borrow_and_update();

    here.hand_fresh_to(Some(std::sync::Arc::new(TakesEverything)));
    here.create_message(&message(&e.app_id, "x")).await.unwrap();
    tokio::time::timeout(deadline, news.changed())
        .await
        .expect("the second node hears of the message")
        .unwrap();
    // The dispatcher is woken in the same step as the news, before it: had it been, the
    // wake-up would be waiting now.
    assert!(
        work.notified().now_or_never().is_none(),
        "nothing to claim: the second node's dispatcher sleeps on"
    );

    here.hand_fresh_to(None);
    here.create_message(&message(&e.app_id, "x")).await.unwrap();
    tokio::time::timeout(deadline, work.notified())
        .await
        .expect("a delivery left to claim wakes the second node's dispatcher");
    tokio::time::timeout(deadline, news.changed())
        .await
        .expect("and its long polls")
        .unwrap();
}

/// Statistics rows of other nodes (other shards) are summed with this node's: a bucket's
/// counts are the same however many nodes recorded into it.
#[tokio::test]
async fn statistics_of_every_node_are_summed() {
    use herald_core::stats::{Dimension, Resolution, StatsQuery};
    use herald_core::store::Messages;

    let Some((store, _db, e)) = store_with_endpoint().await else {
        return;
    };
    let bucket = chrono::DateTime::from_timestamp(1_700_000_040, 0).unwrap();
    // What three nodes would have written for the same key and minute.
    for (shard, attempts, succeeded) in [(0, 2, 2), (17, 3, 1), (4242, 5, 5)] {
        sqlx::query(
            "INSERT INTO attempt_stats_minute (app_id, bucket, endpoint_id, event_type, \
             status_code, attempts, succeeded, duration_ms, shard) \
             VALUES ($1, $2, $3, 'x', 200, $4, $5, 10, $6)",
        )
        .bind(&e.app_id)
        .bind(bucket)
        .bind(&e.id)
        .bind(attempts)
        .bind(succeeded)
        .bind(shard as i16)
        .execute(&store.db().writer)
        .await
        .expect("a node's row");
    }
    let query = StatsQuery {
        app_id: e.app_id.clone(),
        endpoint_id: None,
        since: bucket - chrono::Duration::minutes(1),
        until: bucket + chrono::Duration::minutes(1),
        group_by: Some(Dimension::Endpoint),
        resolution: Resolution::Minute,
    };
    let rows = store.attempt_stats(&query).await.unwrap();
    assert_eq!(rows.len(), 1, "one bucket, one endpoint: {rows:?}");
    assert_eq!(rows[0].counts.attempts, 10);
    assert_eq!(rows[0].counts.succeeded, 8);
}

//! Runs the shared store conformance suite against SQLite, one fresh database file per test.

use crate::{open_dir, SqliteStore};

async fn fresh_store() -> Option<(SqliteStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_dir(dir.path(), 4).await.expect("open store");
    store.migrate().await.expect("migrate");
    Some((store, dir))
}

herald_core::conformance_tests!(fresh_store);

#[tokio::test]
async fn secrets_are_sealed_at_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    let open = |sealer| {
        let path = path.clone();
        async move {
            let store = open_dir(&path, 2).await.expect("open store");
            store.migrate().await.expect("migrate");
            store.with_sealer(std::sync::Arc::new(sealer))
        }
    };
    let raw = herald_store_sql::store::endpoint_at_rest;
    herald_core::conformance::secrets_are_sealed_at_rest(open, raw).await;
}

/// With the one writer held, publishes queue up to the queue's capacity; the next ones are
/// refused at once with `Busy` (but Herald's own events wait for room), and every publish
/// that was taken commits once the writer is free.
#[tokio::test]
async fn a_full_publish_queue_refuses_at_once_and_loses_nothing_it_took() {
    use herald_core::conformance::{app, message};
    use herald_core::store::{Catalog, MessageFilter, Messages, PageRequest, Published};
    use herald_core::StoreError;

    let (store, _dir) = fresh_store().await.expect("a store");
    let app = app(None);
    store.create_app(&app).await.expect("app");
    let held = store.db().writer.acquire().await.expect("the writer");
    const PUBLISHES: usize = 1_400;
    let (results, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..PUBLISHES {
        let (store, results, new) = (store.clone(), results.clone(), message(&app.id, "a.b"));
        tokio::spawn(async move {
            let _ = results.send(store.create_message(&new).await);
        });
    }
    drop(results);
    // Refusals come back while the writer is still held.
    let first = answers.recv().await.expect("an answer");
    assert!(matches!(first, Err(StoreError::Busy)), "{first:?}");
    // Herald's own events wait for room instead.
    let own = tokio::spawn({
        let (store, new) = (store.clone(), message(&app.id, "a.b"));
        async move { store.create_message_waiting(&new).await }
    });
    drop(held);
    let own = own.await.expect("task");
    assert!(matches!(own, Ok(Published::Created { .. })), "{own:?}");
    let (mut created, mut busy) = (0, 1);
    while let Some(answer) = answers.recv().await {
        match answer {
            Ok(Published::Created { .. }) => created += 1,
            Err(StoreError::Busy) => busy += 1,
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!(created + busy, PUBLISHES);
    assert!(created >= 1_024, "only {created} were queued");
    let page = PageRequest {
        limit: 250,
        cursor: None,
        order: Default::default(),
    };
    let mut stored = 0;
    let mut request = page.clone();
    loop {
        let found = store
            .list_messages(&app.id, &MessageFilter::default(), &request)
            .await
            .expect("list");
        stored += found.items.len();
        let Some(last) = found.items.last() else {
            break;
        };
        if found.done {
            break;
        }
        request.cursor = Some(herald_core::store::Cursor::After(last.id.clone()));
    }
    assert_eq!(
        stored,
        created + 1,
        "every accepted publish is stored, and no other"
    );
}

/// Retention that deletes old messages gives their space back to the file system: the
/// database file shrinks, rather than keeping free pages for later.
#[tokio::test]
async fn deleting_old_messages_shrinks_the_file() {
    use herald_core::conformance::{app, message};
    use herald_core::store::{Catalog, Messages, Queue};

    let Some((store, _dir)) = fresh_store().await else {
        return;
    };
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let payload = format!(r#"{{"blob": "{}"}}"#, "x".repeat(8 * 1024));
    let mut last = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    for _ in 0..300 {
        let mut m = message(&a.id, "x");
        m.message.payload = Some(payload.as_str().into());
        last = last.max(m.message.created_at);
        store.create_message(&m).await.unwrap();
    }
    let pages = |pragma: &'static str| {
        let pool = store.db().writer.clone();
        async move {
            sqlx::query_scalar::<_, i64>(pragma)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let before = pages("PRAGMA page_count").await;
    let cutoff = last + chrono::Duration::seconds(1);
    let mut deleted = 0;
    loop {
        let n = store.delete_old_messages(cutoff, 100).await.unwrap();
        deleted += n;
        if n < 100 {
            break;
        }
    }
    assert_eq!(deleted, 299, "all but the newest");
    assert!(
        pages("PRAGMA freelist_count").await > 0,
        "freed, not yet returned"
    );
    store.reclaim_space().await.unwrap();
    let after = pages("PRAGMA page_count").await;
    assert_eq!(pages("PRAGMA freelist_count").await, 0);
    assert!(after * 4 < before, "{before} pages before, {after} after");
}

/// The polling stream numbers messages by rowid, and SQLite gives a new row the highest
/// rowid plus one: so retention never deletes the newest message, or the next one would
/// take its number again, behind readers that had read past it.
#[tokio::test]
async fn the_newest_message_is_kept_so_that_stream_numbers_are_never_given_twice() {
    use herald_core::conformance::{app, message};
    use herald_core::store::{Catalog, Messages, Queue};

    let Some((store, _dir)) = fresh_store().await else {
        return;
    };
    let a = app(None);
    store.create_app(&a).await.unwrap();
    let (first, last) = (message(&a.id, "x"), message(&a.id, "x"));
    store.create_message(&first).await.unwrap();
    store.create_message(&last).await.unwrap();
    let cutoff = last.message.created_at + chrono::Duration::days(1);
    assert_eq!(store.delete_old_messages(cutoff, 10).await.unwrap(), 1);
    store.get_message(&a.id, &last.message.id).await.unwrap();
}

/// A database written at the first schema (0001) is brought up to this binary's with
/// nothing lost. No release is tagged yet, so the oldest schema a database can have stands
/// for "the previous one": every migration since runs over rows as Herald wrote them then.
#[tokio::test]
async fn a_database_from_the_first_schema_keeps_its_rows_through_every_migration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first_only = dir.path().join("first-schema");
    std::fs::create_dir(&first_only).unwrap();
    let first = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_init.sql");
    std::fs::copy(first, first_only.join("0001_init.sql")).unwrap();
    let store = open_dir(&dir.path().join("db"), 2)
        .await
        .expect("open store");
    let then = sqlx::migrate::Migrator::new(first_only.as_path())
        .await
        .unwrap();
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

/// Statements run together in one call bind their own values, in order, each statement
/// from where the one before stopped: the record path relies on it (sqlx's SQLite driver
/// does this; a driver that bound every statement from the first value would write the
/// wrong rows, which this catches).
#[tokio::test]
async fn statements_run_together_bind_their_own_values() {
    use herald_store_sql::dialect::{Dialect, SqliteDialect};
    use herald_store_sql::sql::{v, Sql};
    use sqlx::Connection;

    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .expect("in-memory database");
    sqlx::query("CREATE TABLE t (k TEXT, n INTEGER)")
        .execute(&mut conn)
        .await
        .unwrap();
    let statements = [
        Sql::new("INSERT INTO t VALUES (?, ?), (?, ?)")
            .bind(v::text("a"))
            .bind(v::int(1))
            .bind(v::text("b"))
            .bind(v::int(2)),
        Sql::new("UPDATE t SET n = n + ? WHERE k = ?")
            .bind(v::int(10))
            .bind(v::text("b")),
        Sql::new("INSERT INTO t VALUES (?, ?)")
            .bind(v::text("c"))
            .bind(v::int(3)),
    ];
    SqliteDialect::execute_each(&mut conn, &statements)
        .await
        .unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT k, n FROM t ORDER BY k")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let expected = [("a", 1), ("b", 12), ("c", 3)].map(|(k, n)| (k.to_owned(), n));
    assert_eq!(rows, expected);
    SqliteDialect::execute_each(&mut conn, &[]).await.unwrap();
}

//! Runs the shared store conformance suite against SQLite, one fresh database file per test.

use crate::SqliteStore;

async fn fresh_store() -> Option<(SqliteStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_dir(dir.path(), 4)
        .await
        .expect("open store");
    store.migrate().await.expect("migrate");
    Some((store, dir))
}

herald_core::conformance_tests!(fresh_store);

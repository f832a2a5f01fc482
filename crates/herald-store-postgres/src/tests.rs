//! Runs the shared store conformance suite against PostgreSQL, one fresh database per test.

use crate::testing::TestDatabase;
use crate::PgStore;

async fn fresh_store() -> Option<(PgStore, TestDatabase)> {
    let db = TestDatabase::create().await?;
    let store = PgStore::connect(&db.url, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    Some((store, db))
}

herald_core::conformance_tests!(fresh_store);

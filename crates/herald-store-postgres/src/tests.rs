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
    let raw = |store: PgStore, id: String| async move {
        sqlx::query_as::<_, (String, String)>("SELECT secret, url FROM endpoints WHERE id = $1")
            .bind(id)
            .fetch_one(&store.db().reader)
            .await
            .expect("stored secret and URL")
    };
    herald_core::conformance::secrets_are_sealed_at_rest(open, raw).await;
}

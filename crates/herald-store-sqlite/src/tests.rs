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
    let raw = |store: SqliteStore, id: String| async move {
        sqlx::query_as::<_, (String, String)>("SELECT secret, url FROM endpoints WHERE id = ?")
            .bind(id)
            .fetch_one(&store.db().reader)
            .await
            .expect("stored secret and URL")
    };
    herald_core::conformance::secrets_are_sealed_at_rest(open, raw).await;
}

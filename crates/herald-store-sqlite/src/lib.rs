//! Herald's embedded store: [`herald_core::Store`] on SQLite.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one
//! connection (no "database is locked" upgrades), while reads use a separate pool that WAL
//! mode lets run beside the writer. Every commit is fsynced (`synchronous = FULL`) before a
//! caller is told it succeeded.

mod dispatch;
mod publisher;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::store::{ClaimRequest, FinishedAttempt, NewMessage, StoreResult};
use herald_core::StoreError;
use herald_store_sql::dialect::{Dialect, SqliteDialect};
use herald_store_sql::fresh::NewDelivery;
use herald_store_sql::publish_plan::{Accepted, Known};
use herald_store_sql::sql::Sql;
use herald_store_sql::{Backend, Db, SqlStore};
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::SqliteConnection;

/// The SQLite-backed store.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// What SQLite does its own way: one writer, so publish batches one at a time and claims
/// without row locks; row values and multi-row `VALUES`; its own migrations.
#[derive(Debug)]
pub struct SqliteBackend;

/// The migrations of this store, applied by [`SqliteStore::migrate`].
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens (creating if needed) the database at `url` (`sqlite://path`; an in-memory database
/// is refused: a queue must survive restarts), with up to `readers` reading connections.
pub async fn connect(url: &str, readers: u32) -> Result<SqliteStore, StoreError> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::Internal(
            "an in-memory SQLite database would lose the queue at every restart; use a file".into(),
        ));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(internal)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    // A new database frees the pages of deleted rows on request (`reclaim_space`), so
    // that retention shrinks the file. (An existing database keeps the mode it was made
    // with: changing it takes a full `VACUUM`, which the README describes.)
    let writer_options = options.clone().auto_vacuum(SqliteAutoVacuum::Incremental);
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(writer_options)
        .await
        .map_err(internal)?;
    let reader = SqlitePoolOptions::new()
        .max_connections(readers.max(1))
        .connect_with(options.read_only(true))
        .await
        .map_err(internal)?;
    Ok(SqlStore::new(Db::new(writer, reader), SqliteBackend))
}

/// Opens `herald.db` in `dir`, creating the directory if needed.
pub async fn open_dir(dir: &Path, readers: u32) -> Result<SqliteStore, StoreError> {
    std::fs::create_dir_all(dir).map_err(internal)?;
    let url = format!("sqlite://{}", dir.join("herald.db").display());
    connect(&url, readers).await
}

#[async_trait]
impl Backend for SqliteBackend {
    type Dialect = SqliteDialect;
    const NAME: &'static str = "sqlite";

    // Every write goes through the one connection: one batch at a time.
    const PUBLISH_WRITERS: usize = 1;
    const MAX_PUBLISH_BATCH: usize = 128;

    async fn read_taken(
        &self,
        tx: &mut SqliteConnection,
        news: &[&NewMessage],
    ) -> StoreResult<Known> {
        publisher::read_taken(tx, news).await
    }

    async fn insert_accepted(
        &self,
        tx: &mut SqliteConnection,
        accepted: &[Accepted<'_>],
        deliveries: &[NewDelivery<'_>],
    ) -> StoreResult<()> {
        publisher::insert_messages(&mut *tx, accepted).await?;
        publisher::insert_deliveries(tx, deliveries).await
    }

    async fn lease_due(
        &self,
        tx: &mut SqliteConnection,
        request: &ClaimRequest,
        lease_token: &str,
    ) -> StoreResult<Vec<SqliteRow>> {
        // A sending row's `next_attempt_at` is its lease end, so one condition finds both
        // due rows and rows whose claimer died.
        let mut query = dispatch::lease_query(request, lease_token);
        query.build().fetch_all(tx).await.map_err(internal)
    }

    /// Every statement in one trip to the connection's thread.
    async fn record_attempts(
        &self,
        tx: &mut SqliteConnection,
        batch: &[FinishedAttempt],
        then: &[Sql],
    ) -> StoreResult<()> {
        let mut statements = vec![
            dispatch::insert_attempts(batch),
            dispatch::update_deliveries(batch),
        ];
        statements.extend_from_slice(then);
        SqliteDialect::execute_each(tx, &statements)
            .await
            .map_err(internal)
    }

    async fn reclaim_space(&self, db: &Db<SqliteDialect>) -> StoreResult<()> {
        // Returns the free pages to the file system a few thousand at a time, each step a
        // statement of its own on the one writer, so that publishes go on between steps.
        // A database made without incremental vacuum keeps its free pages for reuse.
        const PAGES_PER_STEP: i64 = 4096;
        const INCREMENTAL: i64 = 2;
        let read = |pragma: &'static str| async move {
            sqlx::query_scalar::<_, i64>(pragma)
                .fetch_one(&db.writer)
                .await
                .map_err(internal)
        };
        if read("PRAGMA auto_vacuum").await? != INCREMENTAL {
            return Ok(());
        }
        let step = format!("PRAGMA incremental_vacuum({PAGES_PER_STEP})");
        // As many steps as the free pages call for, and no more, whatever happens between.
        let steps = read("PRAGMA freelist_count").await? / PAGES_PER_STEP + 1;
        for _ in 0..steps {
            sqlx::query(&step)
                .execute(&db.writer)
                .await
                .map_err(internal)?;
            if read("PRAGMA freelist_count").await? == 0 {
                break;
            }
        }
        Ok(())
    }

    async fn migrate(&self, db: &Db<SqliteDialect>) -> StoreResult<()> {
        MIGRATOR.run(&db.writer).await.map_err(internal)
    }

    async fn pending_migrations(&self, db: &Db<SqliteDialect>) -> StoreResult<usize> {
        let mut conn = db.reader.acquire().await.map_err(internal)?;
        herald_store_sql::store::unapplied_migrations(&MIGRATOR, &mut *conn).await
    }
}

pub(crate) use herald_store_sql::internal;

#[cfg(test)]
mod tests;

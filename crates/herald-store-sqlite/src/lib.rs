//! Herald's embedded store: [`herald_core::Store`] on SQLite.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one
//! connection (no "database is locked" upgrades), while reads use a separate pool that WAL
//! mode lets run beside the writer. Every commit is fsynced (`synchronous = FULL`) before a
//! caller is told it succeeded.

mod catalog;
mod dispatch;
mod messages;
mod publisher;
mod rows;
mod store_impl;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use herald_core::sealing::SecretSealer;
use herald_core::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::Notify;

/// The SQLite-backed store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    work: Arc<Notify>,
    /// Seals endpoint secrets at rest, when a key is configured.
    sealer: Arc<SecretSealer>,
    /// Writes publishes in batches (group commit).
    publisher: herald_store_sql::publish_queue::PublishQueue,
}

/// The migrations of this store, applied by [`SqliteStore::migrate`].
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`
    /// is refused: a queue must survive restarts).
    pub async fn connect(url: &str, readers: u32) -> Result<Self, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::Internal(
                "an in-memory SQLite database would lose the queue at every restart; use a file"
                    .into(),
            ));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(internal)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(internal)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(options.read_only(true))
            .await
            .map_err(internal)?;
        let work = Arc::new(Notify::new());
        Ok(Self {
            publisher: publisher::start(writer.clone(), work.clone()),
            writer,
            reader,
            work,
            sealer: Arc::default(),
        })
    }

    /// Seals endpoint secrets with `sealer` from now on (and opens them with it).
    pub fn with_sealer(mut self, sealer: Arc<SecretSealer>) -> Self {
        self.sealer = sealer;
        self
    }

    /// Opens `herald.db` in `dir`, creating the directory if needed.
    pub async fn open_dir(dir: &Path, readers: u32) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(internal)?;
        let url = format!("sqlite://{}", dir.join("herald.db").display());
        Self::connect(&url, readers).await
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await.map_err(internal)
    }
}

pub(crate) use herald_store_sql::{conflict_on, internal, not_found};

#[cfg(test)]
mod tests;

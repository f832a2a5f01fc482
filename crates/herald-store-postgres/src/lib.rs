//! Herald's scale-out store: [`herald_core::Store`] on PostgreSQL.
//!
//! Many `herald serve` nodes share one database. Claims use `FOR UPDATE SKIP LOCKED`, so
//! nodes never take the same row while its lease holds; every change that creates due work
//! sends `NOTIFY herald_work` inside its transaction (delivered on commit), and each node
//! listens, so a message published on one node is picked up by any other at once.

mod catalog;
mod dispatch;
mod listener;
mod messages;
mod publisher;
mod rows;
mod store_impl;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use herald_core::sealing::SecretSealer;
use herald_core::StoreError;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::Notify;

/// The PostgreSQL-backed store. Cloning shares the pool and the listener.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    work: Arc<Notify>,
    _listener: Arc<listener::ListenerTask>,
    /// Seals endpoint secrets at rest, when a key is configured.
    sealer: Arc<SecretSealer>,
    /// Writes publishes in batches (group commit).
    publisher: herald_store_sql::publish_queue::PublishQueue,
}

/// The migrations of this store, applied by [`PgStore::migrate`]. sqlx takes an advisory
/// lock while applying them, so nodes starting together do not race.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The channel nodes notify each other on.
pub(crate) const WORK_CHANNEL: &str = "herald_work";

impl PgStore {
    /// Connects with a pool of up to `max_connections`, and starts listening for work.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .connect(url)
            .await
            .map_err(internal)?;
        let work = Arc::new(Notify::new());
        let listener = listener::ListenerTask::spawn(pool.clone(), work.clone());
        Ok(Self {
            publisher: publisher::start(pool.clone(), work.clone()),
            pool,
            work,
            _listener: Arc::new(listener),
            sealer: Arc::default(),
        })
    }

    /// Seals endpoint secrets with `sealer` from now on (and opens them with it).
    pub fn with_sealer(mut self, sealer: Arc<SecretSealer>) -> Self {
        self.sealer = sealer;
        self
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(internal)
    }
}

pub(crate) use herald_store_sql::{conflict_on, internal, not_found};

/// Tells every node (this one included, on commit) that work may be due.
pub(crate) async fn notify_work(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(conn)
        .await
        .map_err(internal)?;
    Ok(())
}

#[cfg(test)]
mod tests;

//! Herald's scale-out store: [`herald_core::Store`] on PostgreSQL.
//!
//! Many `herald serve` nodes share one database. Claims use `FOR UPDATE SKIP LOCKED`, so
//! nodes never take the same row while its lease holds; every change that creates due work
//! sends `NOTIFY herald_work` inside its transaction (delivered on commit), and each node
//! listens, so a message published on one node is picked up by any other at once.

mod dispatch;
mod listener;
mod publish_one;
mod publisher;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use async_trait::async_trait;
use herald_core::sealing::SecretSealer;
use herald_core::store::{
    ClaimRequest, FinishedAttempt, ListenSessionAt, NewMessage, Published, StoreResult,
};
use herald_core::StoreError;
use herald_store_sql::dialect::{Dialect, PostgresDialect};
use herald_store_sql::fresh::NewDelivery;
use herald_store_sql::publish_plan::{Accepted, Known};
use herald_store_sql::sql::Sql;
use herald_store_sql::{Backend, Db, SqlStore};
use sqlx::postgres::PgPoolOptions;
use sqlx::postgres::PgRow;
use sqlx::PgConnection;

/// The PostgreSQL-backed store. Cloning shares the pool and the listener.
pub type PgStore = SqlStore<PgBackend>;

/// What PostgreSQL does its own way: publishes in concurrent batches, claims with
/// `SKIP LOCKED`, a listener that other nodes' `NOTIFY` wakes, and its own migrations.
#[derive(Debug)]
pub struct PgBackend {
    _listener: listener::ListenerTask,
}

/// The migrations of this store, applied by [`PgStore::migrate`]. sqlx takes an advisory
/// lock while applying them, so nodes starting together do not race.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub(crate) use herald_store_sql::dialect::postgres::{NEWS_ONLY, WORK_CHANNEL};

/// How long a statement waits for a connection by default (`database.acquire_timeout`).
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects with a pool of up to `max_connections`, and starts listening for work.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
    connect_waiting(url, max_connections, ACQUIRE_TIMEOUT).await
}

/// [`connect`], with how long a statement may wait for a connection (a free one, or a new
/// one while the database is out of reach) before it fails as `Unavailable`.
pub async fn connect_waiting(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> Result<PgStore, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(acquire_timeout)
        .connect(url)
        .await
        .map_err(internal)?;
    let db = Db::shared(pool);
    let backend = PgBackend {
        _listener: listener::ListenerTask::spawn(
            db.writer.clone(),
            listener::Wake {
                work: db.work.clone(),
                news: db.news.clone(),
            },
        ),
    };
    Ok(SqlStore::new(db, backend))
}

#[async_trait]
impl Backend for PgBackend {
    type Dialect = PostgresDialect;
    const NAME: &'static str = "postgres";

    // A publish committed alone costs a round trip per statement plus a commit, and its
    // `NOTIFY` takes a database-wide lock at commit: a few batches at once, each with one.
    const PUBLISH_WRITERS: usize = 4;
    const MAX_PUBLISH_BATCH: usize = 64;

    async fn read_taken(&self, tx: &mut PgConnection, news: &[&NewMessage]) -> StoreResult<Known> {
        publisher::lock_idempotency_keys(&mut *tx, news).await?;
        publisher::read_taken(tx, news).await
    }

    async fn insert_accepted(
        &self,
        tx: &mut PgConnection,
        accepted: &[Accepted<'_>],
        deliveries: &[NewDelivery<'_>],
    ) -> StoreResult<()> {
        publisher::insert_messages(&mut *tx, accepted).await?;
        publisher::insert_deliveries(tx, deliveries).await
    }

    fn may_publish_alone(&self, error: &StoreError) -> bool {
        publisher::publishing_alone_may_help(error)
    }

    async fn publish_alone(
        &self,
        db: &Db<PostgresDialect>,
        new: &NewMessage,
        sealer: &SecretSealer,
    ) -> StoreResult<Published> {
        publish_one::publish_alone(db, new, sealer).await
    }

    async fn lease_due(
        &self,
        tx: &mut PgConnection,
        request: &ClaimRequest,
        lease_token: &str,
    ) -> StoreResult<Vec<PgRow>> {
        let limit = i64::from(request.limit);
        sqlx::query(dispatch::CLAIM)
            .bind(request.now)
            .bind(&request.skip_endpoints)
            .bind(limit * dispatch::SCAN_FACTOR)
            .bind(i64::from(request.per_endpoint_limit))
            .bind(limit)
            .bind(request.lease_until)
            .bind(lease_token)
            .fetch_all(tx)
            .await
            .map_err(internal)
    }

    async fn record_attempts(
        &self,
        tx: &mut PgConnection,
        batch: &[FinishedAttempt],
        then: &[Sql],
    ) -> StoreResult<()> {
        dispatch::insert_attempts(&mut *tx, batch).await?;
        dispatch::update_deliveries(&mut *tx, batch).await?;
        PostgresDialect::execute_each(tx, then)
            .await
            .map_err(internal)
    }

    async fn reserve_pace(
        &self,
        db: &Db<PostgresDialect>,
        endpoint_id: &str,
        spacing: chrono::Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        dispatch::reserve_pace(db, endpoint_id, spacing, now)
            .await
            .map(Some)
    }

    async fn hold_listen_session(
        &self,
        db: &Db<PostgresDialect>,
        session: ListenSessionAt<'_>,
        take_over: bool,
    ) -> StoreResult<bool> {
        dispatch::hold_listen_session(db, session, take_over).await
    }

    async fn drop_listen_session(
        &self,
        db: &Db<PostgresDialect>,
        endpoint_id: &str,
        node: &str,
    ) -> StoreResult<()> {
        dispatch::drop_listen_session(db, endpoint_id, node).await
    }

    async fn share_circuit(
        &self,
        db: &Db<PostgresDialect>,
        news: herald_core::store::CircuitNews<'_>,
    ) -> StoreResult<()> {
        dispatch::share_circuit(db, news).await
    }

    async fn open_circuits(
        &self,
        db: &Db<PostgresDialect>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        dispatch::open_circuits(db, now).await
    }

    async fn take_probe(
        &self,
        db: &Db<PostgresDialect>,
        endpoint_id: &str,
        times: [chrono::DateTime<chrono::Utc>; 2],
    ) -> StoreResult<herald_core::store::ProbeTurn> {
        dispatch::take_probe(db, endpoint_id, times).await
    }

    async fn take_slot(
        &self,
        db: &Db<PostgresDialect>,
        slot: herald_core::store::SlotRequest<'_>,
    ) -> StoreResult<herald_core::store::SlotTurn> {
        dispatch::take_slot(db, slot).await
    }

    async fn free_slot(
        &self,
        db: &Db<PostgresDialect>,
        endpoint_id: &str,
        slot: u32,
        holder: &str,
    ) -> StoreResult<()> {
        dispatch::free_slot(db, endpoint_id, slot, holder).await
    }

    async fn listen_sessions_elsewhere(
        &self,
        db: &Db<PostgresDialect>,
        node: &str,
        stale_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<String>> {
        dispatch::listen_sessions_elsewhere(db, node, stale_before).await
    }

    async fn heartbeat(
        &self,
        db: &Db<PostgresDialect>,
        node: &str,
        times: [chrono::DateTime<chrono::Utc>; 3],
    ) -> StoreResult<u32> {
        dispatch::heartbeat(db, node, times).await
    }

    async fn migrate(&self, db: &Db<PostgresDialect>) -> StoreResult<()> {
        MIGRATOR.run(&db.writer).await.map_err(internal)
    }

    async fn pending_migrations(&self, db: &Db<PostgresDialect>) -> StoreResult<usize> {
        let mut conn = db.reader.acquire().await.map_err(internal)?;
        herald_store_sql::store::unapplied_migrations(&MIGRATOR, &mut *conn).await
    }
}

pub(crate) use herald_store_sql::internal;

/// One field of every row, as the array that `UNNEST` turns back into a column: how a batch
/// is written in one statement whatever its size.
pub(crate) fn column<'a, T, U>(rows: &'a [T], field: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(field).collect()
}

/// Tells every node (this one included, on commit) that work may be due.
pub(crate) async fn notify_work(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    PostgresDialect::notify_work(conn).await
}

#[cfg(test)]
mod tests;

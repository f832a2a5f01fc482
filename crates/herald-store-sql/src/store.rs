//! The store of both SQL databases, written once: [`SqlStore`] implements the `Catalog`
//! (in `catalog.rs`), `Messages` (`messages.rs`) and `Queue` (`queue.rs`) parts of
//! [`Store`] with SQL that each database's [`Dialect`] runs, and leaves what each
//! database does its own way (a batch's lookups and inserts, which rows a claim leases,
//! how attempts are written, migrations) to its [`Backend`].

use std::sync::Arc;

use async_trait::async_trait;
use herald_core::sealing::SecretSealer;
use herald_core::store::*;
use herald_core::StoreError;

use crate::db::Db;
use crate::dialect::ReadRow as _;
use crate::dialect::{Conn, Dialect};
use crate::fresh::NewDelivery;
use crate::group_commit::{self, PublishQueue, RecordQueue};
use crate::publish_plan::{Accepted, Known};
use crate::sql::{v, Sql};

/// What one database does its own way.
#[async_trait]
pub trait Backend: Send + Sync + Sized + 'static {
    type Dialect: Dialect;

    /// The database's name, as the instance page shows it.
    const NAME: &'static str;

    /// How many batches of publishes may be written at once (1 for a single writer).
    const PUBLISH_WRITERS: usize;
    /// The most publishes one transaction writes.
    const MAX_PUBLISH_BATCH: usize;

    /// Within `tx`, reads what a batch of publishes may repeat: the stored messages of its
    /// idempotency keys and the event ids already taken, in a few statements whatever the
    /// batch's size. (`group_commit` adds the applications and endpoints.)
    async fn read_taken(
        &self,
        tx: &mut Conn<Self::Dialect>,
        news: &[&NewMessage],
    ) -> StoreResult<Known>;
    /// Within `tx`, inserts the accepted messages and their `deliveries`, many rows per
    /// statement.
    async fn insert_accepted(
        &self,
        tx: &mut Conn<Self::Dialect>,
        accepted: &[Accepted<'_>],
        deliveries: &[NewDelivery<'_>],
    ) -> StoreResult<()>;

    /// Whether, after a batch of publishes failed with `error` and was undone, each of
    /// them is worth writing again alone.
    fn may_publish_alone(&self, _error: &StoreError) -> bool {
        false
    }

    /// Publishes one message in a transaction of its own.
    async fn publish_alone(
        &self,
        db: &Db<Self::Dialect>,
        new: &NewMessage,
        sealer: &SecretSealer,
    ) -> StoreResult<Published> {
        group_commit::publish_one(db, self, new, sealer).await
    }
    /// Within `tx`, leases due deliveries to `lease_token` and returns their rows under
    /// the `rows::DELIVERY_COLUMNS` names (see `Queue::claim_due`); `queue::claim_due`
    /// reads them and loads what they need.
    async fn lease_due(
        &self,
        tx: &mut Conn<Self::Dialect>,
        request: &ClaimRequest,
        lease_token: &str,
    ) -> StoreResult<Vec<<Self::Dialect as Dialect>::Row>>;
    /// Within `tx`, writes the attempts and the deliveries' next states, a few statements
    /// whatever the batch's size (see `Queue::finish_attempts`), then the caller's `then`,
    /// all in one hand-off where the database allows it (`Dialect::execute_each`).
    async fn record_attempts(
        &self,
        tx: &mut Conn<Self::Dialect>,
        batch: &[FinishedAttempt],
        then: &[Sql],
    ) -> StoreResult<()>;
    /// See `Queue::reserve_pace`: only a database that several nodes share keeps the pace.
    async fn reserve_pace(
        &self,
        _db: &Db<Self::Dialect>,
        _endpoint_id: &str,
        _spacing: chrono::Duration,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(None)
    }
    /// See `Queue::hold_listen_session`: only a database that several nodes share says
    /// which node holds a session.
    async fn hold_listen_session(
        &self,
        _db: &Db<Self::Dialect>,
        _session: ListenSessionAt<'_>,
        _take_over: bool,
    ) -> StoreResult<bool> {
        Ok(true)
    }
    /// See `Queue::drop_listen_session`.
    async fn drop_listen_session(
        &self,
        _db: &Db<Self::Dialect>,
        _endpoint_id: &str,
        _node: &str,
    ) -> StoreResult<()> {
        Ok(())
    }
    /// See `Queue::share_circuit`: only a database that several nodes share keeps circuits.
    async fn share_circuit(
        &self,
        _db: &Db<Self::Dialect>,
        _news: CircuitNews<'_>,
    ) -> StoreResult<()> {
        Ok(())
    }
    /// See `Queue::open_circuits`.
    async fn open_circuits(
        &self,
        _db: &Db<Self::Dialect>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        Ok(Vec::new())
    }
    /// See `Queue::take_probe`.
    async fn take_probe(
        &self,
        _db: &Db<Self::Dialect>,
        _endpoint_id: &str,
        _times: [chrono::DateTime<chrono::Utc>; 2],
    ) -> StoreResult<ProbeTurn> {
        Ok(ProbeTurn::Mine)
    }
    /// See `Queue::take_slot`: only a database that several nodes share keeps slots.
    async fn take_slot(
        &self,
        _db: &Db<Self::Dialect>,
        _slot: SlotRequest<'_>,
    ) -> StoreResult<SlotTurn> {
        Ok(SlotTurn::Unshared)
    }
    /// See `Queue::free_slot`.
    async fn free_slot(
        &self,
        _db: &Db<Self::Dialect>,
        _endpoint_id: &str,
        _slot: u32,
        _holder: &str,
    ) -> StoreResult<()> {
        Ok(())
    }
    /// See `Queue::listen_sessions_elsewhere`.
    async fn listen_sessions_elsewhere(
        &self,
        _db: &Db<Self::Dialect>,
        _node: &str,
        _stale_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// See `Store::heartbeat`: only a database that several nodes share counts them.
    async fn heartbeat(
        &self,
        _db: &Db<Self::Dialect>,
        _node: &str,
        _times: [chrono::DateTime<chrono::Utc>; 3],
    ) -> StoreResult<u32> {
        Ok(1)
    }
    /// See `Queue::reclaim_space`.
    async fn reclaim_space(&self, _db: &Db<Self::Dialect>) -> StoreResult<()> {
        Ok(())
    }
    /// Applies pending migrations.
    async fn migrate(&self, db: &Db<Self::Dialect>) -> StoreResult<()>;
    /// How many migrations are not applied yet (see [`unapplied_migrations`]).
    async fn pending_migrations(&self, db: &Db<Self::Dialect>) -> StoreResult<usize>;
}

/// How many of `migrator`'s migrations the database behind `conn` has not applied. Reads
/// only: a database never migrated (no bookkeeping table yet) has all of them pending.
pub async fn unapplied_migrations(
    migrator: &sqlx::migrate::Migrator,
    conn: &mut impl sqlx::migrate::Migrate,
) -> StoreResult<usize> {
    let applied: std::collections::HashSet<i64> = match conn.list_applied_migrations().await {
        Ok(applied) => applied.into_iter().map(|m| m.version).collect(),
        Err(sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(_))) => Default::default(),
        Err(e) => return Err(crate::internal(e)),
    };
    Ok(migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .count())
}

/// A store on a SQL database: its connections and its backend.
pub struct SqlStore<B: Backend> {
    pub(crate) db: Db<B::Dialect>,
    pub(crate) backend: Arc<B>,
    pub(crate) publishes: PublishQueue,
    pub(crate) records: RecordQueue,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            backend: self.backend.clone(),
            publishes: self.publishes.clone(),
            records: self.records.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
}

impl<B: Backend> SqlStore<B> {
    /// A store over `db`, with `backend` for what its database does its own way; starts
    /// the group-commit tasks (on the current Tokio runtime).
    pub fn new(db: Db<B::Dialect>, backend: B) -> Self {
        let backend = Arc::new(backend);
        Self {
            publishes: group_commit::start_publishing(db.clone(), backend.clone()),
            records: group_commit::start_recording(db.clone(), backend.clone()),
            db,
            backend,
        }
    }

    /// Seals endpoint secrets with `sealer` from now on (and opens them with it).
    pub fn with_sealer(mut self, sealer: Arc<SecretSealer>) -> Self {
        self.db.sealer = sealer;
        self
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.backend.migrate(&self.db).await
    }

    /// The connections, for tests and tools that look at the database itself.
    pub fn db(&self) -> &Db<B::Dialect> {
        &self.db
    }
}

/// An endpoint's secret and URL as they are stored (sealed or not): what the check of
/// sealing at rest reads beside the store's own answers
/// (`conformance::secrets_are_sealed_at_rest`). For tests only: it panics where the
/// store would answer an error.
#[doc(hidden)]
pub async fn endpoint_at_rest<B: Backend>(
    store: SqlStore<B>,
    endpoint_id: String,
) -> (String, String) {
    let sql =
        Sql::new("SELECT secret, url FROM endpoints WHERE id = ?").bind(v::text(&endpoint_id));
    let row = store.db.read_one(&sql).await.expect("the endpoint's row");
    let text = |column| row.text(column).expect("a text column");
    (text("secret"), text("url"))
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn close(&self) {
        self.db.close().await;
    }

    async fn pending_migrations(&self) -> StoreResult<usize> {
        self.backend.pending_migrations(&self.db).await
    }

    async fn heartbeat(
        &self,
        node: &str,
        now: chrono::DateTime<chrono::Utc>,
        stale_before: chrono::DateTime<chrono::Utc>,
        forget_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<u32> {
        let times = [now, stale_before, forget_before];
        self.backend.heartbeat(&self.db, node, times).await
    }

    fn pools(&self) -> Vec<herald_core::store::PoolUsage> {
        self.db.pools()
    }

    fn attach_metrics(&self, metrics: &herald_core::metrics::Metrics) {
        let _ = self.db.metrics.set(metrics.clone());
    }
}

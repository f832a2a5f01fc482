//! The connections a store works through, and the few ways the shared queries use them.

use std::sync::{Arc, Mutex, OnceLock};

use herald_core::metrics::{CommitLabels, Metrics};
use herald_core::sealing::SecretSealer;
use herald_core::store::StoreResult;
use herald_core::store::{FreshIntake, PoolUsage};
use herald_core::StoreError;
use sqlx::{Pool, Transaction};
use tokio::sync::{watch, Notify};

use crate::dialect::Dialect;
use crate::sql::Sql;
use crate::{internal, not_found};

/// A store's pools, its secret sealer and its work signal.
///
/// SQLite writes through a pool of one connection (its single writer) and reads through
/// another; PostgreSQL uses one pool for both.
pub struct Db<D: Dialect> {
    pub writer: Pool<D::DB>,
    pub reader: Pool<D::DB>,
    /// Seals endpoint secrets at rest, when a key is configured.
    pub sealer: Arc<SecretSealer>,
    /// Signalled whenever new work may be due on this node.
    pub work: Arc<Notify>,
    /// Bumped whenever messages may have been committed (long polls wait on it).
    pub news: Arc<watch::Sender<u64>>,
    /// Whether `writer` and `reader` are one pool.
    pub shared_pool: bool,
    /// Where group commits count their sizes, once the server attaches its metrics.
    pub metrics: Arc<OnceLock<Metrics>>,
    /// This node's dispatcher, while it takes fresh deliveries straight from publishes.
    pub intake: Arc<Mutex<Option<Arc<dyn FreshIntake>>>>,
}

impl<D: Dialect> Clone for Db<D> {
    fn clone(&self) -> Self {
        Self {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            sealer: self.sealer.clone(),
            work: self.work.clone(),
            news: self.news.clone(),
            shared_pool: self.shared_pool,
            metrics: self.metrics.clone(),
            intake: self.intake.clone(),
        }
    }
}

impl<D: Dialect> std::fmt::Debug for Db<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl<D: Dialect> Db<D> {
    /// A handle over `writer` and `reader` (the same pool where the database has no single
    /// writer), sealing nothing until told to.
    pub fn new(writer: Pool<D::DB>, reader: Pool<D::DB>) -> Self {
        Self {
            writer,
            reader,
            sealer: Arc::default(),
            work: Arc::new(Notify::new()),
            news: Arc::new(watch::channel(0).0),
            shared_pool: false,
            metrics: Arc::default(),
            intake: Arc::default(),
        }
    }

    /// A handle over one pool that both writes and reads.
    pub fn shared(pool: Pool<D::DB>) -> Self {
        Self {
            shared_pool: true,
            ..Self::new(pool.clone(), pool)
        }
    }

    /// Each pool's use now.
    pub fn pools(&self) -> Vec<PoolUsage> {
        let usage = |name, pool: &Pool<D::DB>| PoolUsage {
            name,
            open: pool.size(),
            idle: pool.num_idle() as u32,
            max: pool.options().get_max_connections(),
        };
        if self.shared_pool {
            vec![usage("shared", &self.writer)]
        } else {
            vec![usage("writer", &self.writer), usage("reader", &self.reader)]
        }
    }

    /// Counts one group commit of `size` items, if metrics are attached.
    pub fn count_commit(&self, commit: &str, size: usize) {
        if let Some(metrics) = self.metrics.get() {
            let labels = CommitLabels {
                commit: commit.to_owned(),
            };
            let histogram = metrics.commit_batch_size.get_or_create(&labels);
            histogram.observe(size as f64);
        }
    }

    /// The dispatcher taking fresh deliveries now, if any.
    pub fn intake(&self) -> Option<Arc<dyn FreshIntake>> {
        self.intake
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tells long polls that messages may have been committed.
    pub fn announce_news(&self) {
        self.news.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Runs a write on its own; the number of rows it changed.
    pub async fn write(&self, sql: &Sql) -> sqlx::Result<u64> {
        let mut conn = self.writer.acquire().await?;
        D::execute(&mut conn, sql).await
    }

    /// Runs a write that must change a row: `NotFound` if it changed none.
    pub async fn write_one(&self, sql: &Sql) -> StoreResult<()> {
        match self.write(sql).await.map_err(internal)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Every row of a read.
    pub async fn read(&self, sql: &Sql) -> StoreResult<Vec<D::Row>> {
        self.read_on(&self.reader, sql).await
    }

    /// Every row of a statement that writes and returns rows (`… RETURNING`).
    pub async fn write_returning(&self, sql: &Sql) -> StoreResult<Vec<D::Row>> {
        self.read_on(&self.writer, sql).await
    }

    async fn read_on(&self, pool: &Pool<D::DB>, sql: &Sql) -> StoreResult<Vec<D::Row>> {
        let mut conn = pool.acquire().await.map_err(internal)?;
        D::fetch_all(&mut conn, sql).await.map_err(internal)
    }

    /// The first row of a read, `NotFound` if there is none.
    pub async fn read_one(&self, sql: &Sql) -> StoreResult<D::Row> {
        self.read_optional(sql).await?.ok_or(StoreError::NotFound)
    }

    /// The first row of a read, if any.
    pub async fn read_optional(&self, sql: &Sql) -> StoreResult<Option<D::Row>> {
        Ok(self.read(sql).await?.into_iter().next())
    }

    /// Starts a transaction on the writer.
    pub async fn begin(&self) -> StoreResult<Transaction<'static, D::DB>> {
        self.writer.begin().await.map_err(internal)
    }

    /// Closes the pools, waiting for queries in flight.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Runs a statement inside a transaction; the number of rows it changed.
pub async fn execute_in<D: Dialect>(
    tx: &mut Transaction<'static, D::DB>,
    sql: &Sql,
) -> StoreResult<u64> {
    D::execute(&mut *tx, sql).await.map_err(internal)
}

/// Reads inside a transaction; `NotFound` if there is no row.
pub async fn read_one_in<D: Dialect>(
    tx: &mut Transaction<'static, D::DB>,
    sql: &Sql,
) -> StoreResult<D::Row> {
    let rows = D::fetch_all(&mut *tx, sql).await.map_err(not_found)?;
    rows.into_iter().next().ok_or(StoreError::NotFound)
}

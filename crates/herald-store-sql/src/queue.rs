//! The delivery queue as both databases run it: a claim's transaction and what its rows
//! need, an attempt batch's transaction and the failing spells it ends, giving a lease
//! back, the next due time. (Which rows a claim leases, and how a batch of attempts is
//! written, are each backend's own: PostgreSQL claims with `SKIP LOCKED` and writes with
//! `UNNEST`, SQLite has one writer and row values.)

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::model::DeliveryStatus;
use herald_core::stats::RollupCutoffs;
use herald_core::store::{
    CircuitNews, ClaimRequest, ClaimedDelivery, FinishedAttempt, FreshIntake, ListenSessionAt,
    NextState, ProbeTurn, Queue, QueueSummary, SlotRequest, SlotTurn, StoreResult,
};
use tokio::sync::Notify;

use crate::db::{execute_in, read_one_in, Db};
use crate::dialect::{Conn, Dialect, ReadRow};
use crate::sql::{v, Sql};
use crate::store::{Backend, SqlStore};
use crate::{assemble_claimed, decode_each, internal, ordered, rows, unique_ids};

/// Leases due deliveries and loads their messages and endpoints, in one transaction: if a
/// read fails, the lease is undone rather than leaving rows leased to nobody until it ends.
pub async fn claim_due<B: Backend>(
    db: &Db<B::Dialect>,
    backend: &B,
    req: &ClaimRequest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let token = crate::fresh::lease_token();
    let mut tx = db.begin().await?;
    let leased = backend.lease_due(&mut tx, req, &token).await?;
    let deliveries = decode_each(&leased, rows::delivery);
    if deliveries.is_empty() {
        // Nothing leased (or nothing readable, which is then due again at once): the
        // transaction is dropped, so rolled back, without waiting for a commit.
        return Ok(Vec::new());
    }
    let msg_ids = deliveries.iter().map(|d| d.msg_id.as_str());
    let messages =
        fetch_by_ids::<B::Dialect, _>(&mut tx, "messages", msg_ids, rows::message).await?;
    let endpoint_ids = deliveries.iter().map(|d| d.endpoint_id.as_str());
    let endpoints = fetch_by_ids::<B::Dialect, _>(&mut tx, "endpoints", endpoint_ids, |row| {
        rows::endpoint(row, &db.sealer)
    })
    .await?;
    tx.commit().await.map_err(internal)?;
    db.count_commit("claim", deliveries.len());
    Ok(assemble_claimed(deliveries, messages, endpoints, &token))
}

/// Records finished attempts in one transaction: one commit for the batch, and a fixed
/// number of statements whatever its size (each is a round trip to SQLite's connection
/// thread or to PostgreSQL, which is what a delivery's cost is mostly made of).
pub async fn finish_attempts<B: Backend>(
    db: &Db<B::Dialect>,
    backend: &B,
    batch: &[FinishedAttempt],
) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut then: Vec<Sql> = end_failing_spells::<B::Dialect>(batch)
        .into_iter()
        .collect();
    then.extend(crate::stats::add_attempts::<B::Dialect>(batch));
    let mut tx = db.begin().await?;
    backend.record_attempts(&mut tx, batch, &then).await?;
    tx.commit().await.map_err(internal)?;
    if batch
        .iter()
        .any(|f| matches!(f.next, NextState::RetryAt(_)))
    {
        // Wake this node's loop, which may be asleep past a retry's time.
        db.work.notify_one();
    }
    Ok(())
}

/// Moves a leased delivery to `status`, due at `due_at`, if the lease still holds.
async fn end_lease<D: Dialect>(
    db: &Db<D>,
    delivery_id: &str,
    lease_token: &str,
    status: DeliveryStatus,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let sql = Sql::new(
        "UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_token = NULL, \
         updated_at = ? WHERE id = ? AND lease_token = ?",
    )
    .bind(v::code(status as i16))
    .bind(v::opt_time(due_at))
    .bind(v::time(now))
    .bind(v::text(delivery_id))
    .bind(v::text(lease_token));
    let mut tx = db.begin().await?;
    execute_in::<D>(&mut tx, &sql).await?;
    if due_at.is_some() {
        D::notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)
}

/// Loads the rows of `table` with the given ids (repeats are fine), leaving out rows that
/// cannot be read.
async fn fetch_by_ids<'a, D: Dialect, T>(
    conn: &mut Conn<D>,
    table: &str,
    ids: impl Iterator<Item = &'a str>,
    decode: impl Fn(&D::Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut sql = Sql::new(format!("SELECT * FROM {table} WHERE "));
    D::push_in_list(&mut sql, "id", unique_ids(ids));
    let found = D::fetch_all(conn, &sql).await.map_err(internal)?;
    Ok(decode_each(&found, decode))
}

/// A success ends its endpoint's failing spell: auto-disable counts only unbroken runs of
/// failures. The statement that says so for a batch, if any of it succeeded.
fn end_failing_spells<D: Dialect>(batch: &[FinishedAttempt]) -> Option<Sql> {
    let succeeded = unique_ids(
        batch
            .iter()
            .filter(|f| matches!(f.next, NextState::Succeeded))
            .map(|f| f.attempt.endpoint_id.as_str()),
    );
    if succeeded.is_empty() {
        return None;
    }
    let mut sql =
        Sql::new("UPDATE endpoints SET failing_since = NULL WHERE failing_since IS NOT NULL AND ");
    D::push_in_list(&mut sql, "id", succeeded);
    Some(sql)
}

#[async_trait]
impl<B: Backend> Queue for SqlStore<B> {
    fn work_signal(&self) -> Arc<Notify> {
        self.db.work.clone()
    }

    fn hand_fresh_to(&self, intake: Option<Arc<dyn FreshIntake>>) {
        *self.db.intake.lock().unwrap_or_else(|e| e.into_inner()) = intake;
    }

    async fn queue_summary(&self) -> StoreResult<QueueSummary> {
        let sql = Sql::new(
            "SELECT COUNT(*) AS waiting, MIN(updated_at) AS oldest FROM deliveries \
             WHERE status IN (?, ?, ?)",
        )
        .bind(v::code(DeliveryStatus::Pending as i16))
        .bind(v::code(DeliveryStatus::Sending as i16))
        .bind(v::code(DeliveryStatus::Queued as i16));
        let row = self.db.read_one(&sql).await?;
        Ok(QueueSummary {
            backend: B::NAME,
            waiting: row.int("waiting")?.max(0) as u64,
            oldest_waiting: row.opt_time("oldest")?,
        })
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        claim_due(&self.db, &*self.backend, request).await
    }

    async fn finish_attempt(&self, finished: &FinishedAttempt) -> StoreResult<()> {
        // Waits for room rather than failing: the attempt was made, its record must stay.
        self.records.submit_waiting(finished.clone()).await?
    }

    async fn finish_attempts(&self, batch: &[FinishedAttempt]) -> StoreResult<()> {
        finish_attempts(&self.db, &*self.backend, batch).await
    }

    async fn release(
        &self,
        delivery_id: &str,
        lease_token: &str,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let db = &self.db;
        let pending = DeliveryStatus::Pending;
        end_lease(db, delivery_id, lease_token, pending, Some(due_at), due_at).await?;
        db.work.notify_one();
        Ok(())
    }

    async fn set_aside(
        &self,
        delivery_id: &str,
        lease_token: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        end_lease(&self.db, delivery_id, lease_token, status, None, at).await
    }

    async fn release_held(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        const RELEASABLE: &str = "status = 5 AND endpoint_id IN \
             (SELECT id FROM endpoints WHERE verification_status IN (0, 3))";
        let db = &self.db;
        // Asked every second by every node, and almost always for nothing: a read first,
        // so that no write transaction is taken (SQLite's one writer) when none is needed.
        let probe = Sql::new(format!(
            "SELECT 1 AS found FROM deliveries WHERE {RELEASABLE} LIMIT 1"
        ));
        if db.read(&probe).await?.is_empty() {
            return Ok(0);
        }
        let sql = Sql::new(format!(
            "UPDATE deliveries SET status = 1, next_attempt_at = ?, updated_at = ? \
             WHERE {RELEASABLE}"
        ))
        .bind(v::time(now))
        .bind(v::time(now));
        let mut tx = db.begin().await?;
        let released = execute_in::<B::Dialect>(&mut tx, &sql).await?;
        if released > 0 {
            <B::Dialect as Dialect>::notify_work(&mut tx).await?;
        }
        tx.commit().await.map_err(internal)?;
        if released > 0 {
            db.work.notify_one();
        }
        Ok(released)
    }

    async fn advance_ordered(
        &self,
        endpoints: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let db = &self.db;
        if endpoints.is_none() {
            // The sweep, asked by every node every few seconds: a read first, so that no
            // write transaction (nor the ordering lock) is taken when nothing is queued.
            let probe = Sql::new("SELECT 1 AS found FROM deliveries WHERE status = 6 LIMIT 1");
            if db.read(&probe).await?.is_empty() {
                return Ok(0);
            }
        }
        let mut tx = db.begin().await?;
        <B::Dialect as Dialect>::lock_ordering(&mut tx).await?;
        let let_go =
            ordered::advance::<B::Dialect>(&mut tx, endpoints.map(<[_]>::to_vec), now).await?;
        tx.commit().await.map_err(internal)?;
        if let_go > 0 {
            db.work.notify_one();
        }
        Ok(let_go)
    }

    async fn reserve_pace(
        &self,
        endpoint_id: &str,
        spacing: chrono::Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let backend = &*self.backend;
        backend
            .reserve_pace(&self.db, endpoint_id, spacing, now)
            .await
    }

    async fn hold_listen_session(
        &self,
        session: ListenSessionAt<'_>,
        take_over: bool,
    ) -> StoreResult<bool> {
        let backend = &*self.backend;
        backend
            .hold_listen_session(&self.db, session, take_over)
            .await
    }

    async fn drop_listen_session(&self, endpoint_id: &str, node: &str) -> StoreResult<()> {
        let backend = &*self.backend;
        backend
            .drop_listen_session(&self.db, endpoint_id, node)
            .await
    }

    async fn listen_sessions_elsewhere(
        &self,
        node: &str,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let backend = &*self.backend;
        backend
            .listen_sessions_elsewhere(&self.db, node, stale_before)
            .await
    }

    async fn share_circuit(&self, news: CircuitNews<'_>) -> StoreResult<()> {
        self.backend.share_circuit(&self.db, news).await
    }

    async fn open_circuits(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        self.backend.open_circuits(&self.db, now).await
    }

    async fn take_probe(
        &self,
        endpoint_id: &str,
        now: DateTime<Utc>,
        hold_until: DateTime<Utc>,
    ) -> StoreResult<ProbeTurn> {
        let backend = &*self.backend;
        backend
            .take_probe(&self.db, endpoint_id, [now, hold_until])
            .await
    }

    async fn take_slot(&self, request: SlotRequest<'_>) -> StoreResult<SlotTurn> {
        self.backend.take_slot(&self.db, request).await
    }

    async fn free_slot(&self, endpoint_id: &str, slot: u32, holder: &str) -> StoreResult<()> {
        let backend = &*self.backend;
        backend.free_slot(&self.db, endpoint_id, slot, holder).await
    }

    async fn retry_now(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        move_pending(&self.db, endpoint_id, (now, now), ">").await
    }

    async fn defer_pending(
        &self,
        endpoint_id: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        move_pending(&self.db, endpoint_id, (until, now), "<").await
    }

    async fn cancel_pending(
        &self,
        app_id: &str,
        msg_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        // A delivery being attempted (`sending`) is left to finish. The message expires
        // now, so that if that attempt fails no retry follows it. Deliveries to ordered
        // endpoints that were in line make way for the next: under the ordering lock, taken
        // before any is changed.
        let in_line = Sql::new(
            "SELECT DISTINCT endpoint_id FROM deliveries \
             WHERE app_id = ? AND msg_id = ? AND seq IS NOT NULL",
        )
        .bind(v::text(app_id))
        .bind(v::text(msg_id));
        let in_line = self
            .db
            .read(&in_line)
            .await?
            .iter()
            .map(|row| row.text("endpoint_id"))
            .collect::<StoreResult<Vec<_>>>()?;
        let expire = Sql::new(
            "UPDATE messages SET expires_at = ? WHERE app_id = ? AND id = ? \
             AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(v::time(now))
        .bind(v::text(app_id))
        .bind(v::text(msg_id))
        .bind(v::time(now));
        let cancel = Sql::new(
            "UPDATE deliveries SET status = ?, updated_at = ? \
             WHERE app_id = ? AND msg_id = ? AND status IN (?, ?, ?)",
        )
        .bind(v::code(DeliveryStatus::Canceled as i16))
        .bind(v::time(now))
        .bind(v::text(app_id))
        .bind(v::text(msg_id))
        .bind(v::code(DeliveryStatus::Pending as i16))
        .bind(v::code(DeliveryStatus::Held as i16))
        .bind(v::code(DeliveryStatus::Queued as i16));
        let mut tx = self.db.begin().await?;
        if !in_line.is_empty() {
            <B::Dialect as Dialect>::lock_ordering(&mut tx).await?;
        }
        execute_in::<B::Dialect>(&mut tx, &expire).await?;
        let canceled = execute_in::<B::Dialect>(&mut tx, &cancel).await?;
        let let_go = match in_line.is_empty() {
            true => 0,
            false => ordered::advance::<B::Dialect>(&mut tx, Some(in_line), now).await?,
        };
        tx.commit().await.map_err(internal)?;
        if let_go > 0 {
            self.db.work.notify_one();
        }
        Ok(canceled)
    }

    async fn cancel_pending_to(
        &self,
        app_id: &str,
        endpoint_id: &str,
        msg_ids: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        if msg_ids.is_empty() {
            return Ok(0);
        }
        let db = &self.db;
        let mut tx = db.begin().await?;
        // Read in the transaction, before any row changes: an ordered endpoint's queued
        // rows change under the ordering lock, taken first (see `ordered`).
        let ordered = Sql::new("SELECT ordered FROM endpoints WHERE app_id = ? AND id = ?")
            .bind(v::text(app_id))
            .bind(v::text(endpoint_id));
        let fifo = read_one_in::<B::Dialect>(&mut tx, &ordered)
            .await?
            .flag("ordered")?;
        if fifo {
            <B::Dialect as Dialect>::lock_ordering(&mut tx).await?;
        }
        let mut cancel = Sql::new(
            "UPDATE deliveries SET status = 4, updated_at = ? \
             WHERE app_id = ? AND endpoint_id = ? AND status IN (1, 5, 6) AND ",
        )
        .bind(v::time(now))
        .bind(v::text(app_id))
        .bind(v::text(endpoint_id));
        <B::Dialect as Dialect>::push_in_list(&mut cancel, "msg_id", msg_ids.to_vec());
        let canceled = execute_in::<B::Dialect>(&mut tx, &cancel).await?;
        let let_go = match fifo && canceled > 0 {
            true => {
                let line = Some(vec![endpoint_id.to_owned()]);
                ordered::advance::<B::Dialect>(&mut tx, line, now).await?
            }
            false => 0,
        };
        tx.commit().await.map_err(internal)?;
        if let_go > 0 {
            db.work.notify_one();
        }
        Ok(canceled)
    }

    async fn next_due_at(&self, skip: &[String]) -> StoreResult<Option<DateTime<Utc>>> {
        let db = &self.db;
        let mut sql =
            Sql::new("SELECT MIN(next_attempt_at) AS next FROM deliveries WHERE status IN (1, 3)");
        if !skip.is_empty() {
            sql.push(" AND NOT (");
            <B::Dialect as Dialect>::push_in_list(&mut sql, "endpoint_id", skip.to_vec());
            sql.push(")");
        }
        db.read_one(&sql).await?.opt_time("next")
    }

    async fn purge_content(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        let db = &self.db;
        let lock = <B::Dialect as Dialect>::SKIP_LOCKED;
        let messages = Sql::new(format!(
            "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
             WHERE payload IS NOT NULL AND created_at < ? LIMIT ?{lock})"
        ))
        .bind(v::time(before))
        .bind(v::big(batch));
        let attempts = Sql::new(format!(
            "UPDATE attempts SET response = 'EXPUNGED', response_headers = '{{}}' WHERE id IN \
             (SELECT id FROM attempts WHERE response <> 'EXPUNGED' AND created_at < ? LIMIT ?{lock})"
        ))
        .bind(v::time(before))
        .bind(v::big(batch));
        let rejections = Sql::new(format!(
            "DELETE FROM ingest_log WHERE id IN \
             (SELECT id FROM ingest_log WHERE created_at < ? LIMIT ?{lock})"
        ))
        .bind(v::time(before))
        .bind(v::big(batch));
        let purged = db.write(&messages).await.map_err(internal)?;
        let purged = purged + db.write(&attempts).await.map_err(internal)?;
        Ok(purged + db.write(&rejections).await.map_err(internal)?)
    }

    async fn delete_old_messages(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        let lock = <B::Dialect as Dialect>::SKIP_LOCKED;
        let keep = <B::Dialect as Dialect>::KEEP_STREAM_HEAD;
        // Deliveries and attempts go with their message (`ON DELETE CASCADE`).
        let sql = Sql::new(format!(
            "DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m \
             WHERE m.created_at < ?{keep} AND NOT EXISTS (SELECT 1 FROM deliveries d \
             WHERE d.msg_id = m.id AND d.status IN (1, 3, 5, 6)) \
             ORDER BY m.created_at LIMIT ?{lock})"
        ))
        .bind(v::time(before))
        .bind(v::big(batch));
        self.db.write(&sql).await.map_err(internal)
    }

    async fn reclaim_space(&self) -> StoreResult<()> {
        self.backend.reclaim_space(&self.db).await
    }

    async fn purge_stats(&self, cutoffs: &RollupCutoffs) -> StoreResult<u64> {
        crate::stats::purge(&self.db, cutoffs).await
    }
}

/// Makes the pending deliveries of one endpoint due at `to`: those due later (`">"`, to
/// hasten them) or earlier (`"<"`, to hold them back), noting the change at `now`; how
/// many moved.
async fn move_pending<D: Dialect>(
    db: &Db<D>,
    endpoint_id: &str,
    (to, now): (DateTime<Utc>, DateTime<Utc>),
    due: &'static str,
) -> StoreResult<u64> {
    let sql = Sql::new(format!(
        "UPDATE deliveries SET next_attempt_at = ?, updated_at = ? \
         WHERE endpoint_id = ? AND status = 1 AND next_attempt_at {due} ?"
    ))
    .bind(v::time(to))
    .bind(v::time(now))
    .bind(v::text(endpoint_id))
    .bind(v::time(to));
    let mut tx = db.begin().await?;
    let moved = execute_in::<D>(&mut tx, &sql).await?;
    if moved > 0 {
        D::notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)?;
    if moved > 0 {
        db.work.notify_one();
    }
    Ok(moved)
}

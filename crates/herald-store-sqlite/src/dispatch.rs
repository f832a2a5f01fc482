//! The queue side of the store: leasing due deliveries and recording attempts.

use chrono::{DateTime, Utc};
use herald_core::model::{Delivery, DeliveryStatus};
use herald_core::store::{ClaimRequest, ClaimedDelivery, FinishedAttempt, NextState, StoreResult};
use rand::distributions::{Alphanumeric, DistString};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::rows::{self, json, ms, time};
use crate::{internal, SqliteStore};
use herald_store_sql::{assemble_claimed, decode_each, unique_ids};

/// A claim looks at no more than this many times its limit of due rows, so a huge backlog
/// does not make every claim slow; endpoints it leaves out are reached once their lanes
/// fill and are skipped.
const SCAN_FACTOR: u32 = 3;

/// Appends `AND endpoint_id NOT IN (…)` when there are endpoints to skip.
fn push_skip(qb: &mut QueryBuilder<'_, Sqlite>, skip: &[String]) {
    if skip.is_empty() {
        return;
    }
    qb.push(" AND endpoint_id NOT IN (");
    let mut list = qb.separated(", ");
    for id in skip {
        list.push_bind(id.clone());
    }
    qb.push(")");
}

/// The ids of the deliveries to lease: due, not of a skipped endpoint, earliest first, and
/// at most `per_endpoint_limit` of any one endpoint (less for an endpoint with a lower
/// concurrency cap: twice its cap, its lane's depth).
fn push_due_ids(qb: &mut QueryBuilder<'_, Sqlite>, req: &ClaimRequest) {
    qb.push(
        "SELECT id FROM (SELECT id, endpoint_id, next_attempt_at, ROW_NUMBER() OVER \
         (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS nth FROM \
         (SELECT id, endpoint_id, next_attempt_at FROM deliveries \
         WHERE status IN (1, 3) AND next_attempt_at <= ",
    )
    .push_bind(ms(req.now));
    push_skip(qb, &req.skip_endpoints);
    qb.push(" ORDER BY next_attempt_at LIMIT ")
        .push_bind(i64::from(req.limit.saturating_mul(SCAN_FACTOR)))
        .push(")) AS due WHERE nth <= MIN(")
        .push_bind(i64::from(req.per_endpoint_limit))
        .push(
            ", COALESCE((SELECT 2 * max_concurrency FROM endpoints e \
             WHERE e.id = due.endpoint_id), 1 << 30))",
        )
        .push(" ORDER BY next_attempt_at LIMIT ")
        .push_bind(i64::from(req.limit));
}

pub async fn claim_due(s: &SqliteStore, req: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
    let token = Alphanumeric.sample_string(&mut rand::thread_rng(), 20);
    let mut tx = s.writer.begin().await.map_err(internal)?;
    // A sending row's `next_attempt_at` is its lease end, so one condition finds both due
    // rows and rows whose claimer died.
    let mut qb =
        QueryBuilder::<Sqlite>::new("UPDATE deliveries SET status = 3, next_attempt_at = ");
    qb.push_bind(ms(req.lease_until))
        .push(", lease_token = ")
        .push_bind(token.clone())
        .push(" WHERE id IN (");
    push_due_ids(&mut qb, req);
    qb.push(
        ") RETURNING id AS d_id, msg_id AS d_msg_id, endpoint_id AS d_endpoint_id, \
         app_id AS d_app_id, status AS d_status, attempt_count AS d_attempt_count, \
         NULL AS d_next_attempt_at, trigger_type AS d_trigger_type, updated_at AS d_updated_at",
    );
    let claimed = qb.build().fetch_all(&mut *tx).await.map_err(internal)?;
    let deliveries: Vec<Delivery> = decode_each(&claimed, rows::delivery);
    if deliveries.is_empty() {
        tx.commit().await.map_err(internal)?;
        return Ok(Vec::new());
    }
    let msg_ids = deliveries.iter().map(|d| &d.msg_id);
    let messages = fetch_by_ids(&mut tx, "messages", msg_ids, rows::message).await?;
    let endpoint_ids = deliveries.iter().map(|d| &d.endpoint_id);
    let endpoints = fetch_by_ids(&mut tx, "endpoints", endpoint_ids, |row| {
        rows::endpoint(row, &s.sealer)
    })
    .await?;
    tx.commit().await.map_err(internal)?;
    Ok(assemble_claimed(deliveries, messages, endpoints, &token))
}

/// Loads the rows of `table` with the given ids (duplicates are fine).
async fn fetch_by_ids<'a, T>(
    conn: &mut SqliteConnection,
    table: &str,
    ids: impl Iterator<Item = &'a String>,
    decode: impl Fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let unique = unique_ids(ids.map(String::as_str));
    let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT * FROM {table} WHERE id IN ("));
    let mut list = qb.separated(", ");
    for id in unique {
        list.push_bind(id);
    }
    qb.push(")");
    let found = qb.build().fetch_all(&mut *conn).await.map_err(internal)?;
    Ok(decode_each(&found, decode))
}

/// Records finished attempts in one transaction: one commit (one fsync) for the batch, and
/// a fixed number of statements whatever its size (every statement is a round trip to the
/// connection's thread, which is what a delivery's cost is mostly made of).
pub async fn finish_attempts(s: &SqliteStore, batch: &[FinishedAttempt]) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut tx = s.writer.begin().await.map_err(internal)?;
    insert_attempts(&mut tx, batch).await?;
    update_deliveries(&mut tx, batch).await?;
    clear_failing_spells(&mut tx, batch).await?;
    tx.commit().await.map_err(internal)?;
    if batch
        .iter()
        .any(|f| matches!(f.next, NextState::RetryAt(_)))
    {
        // Wake this node's loop, which may be asleep past a retry's time.
        s.work.notify_one();
    }
    Ok(())
}

/// The attempt rows, all in one statement. An attempt whose message or endpoint was deleted
/// while it was in flight is left out: there is nothing left to record it against.
async fn insert_attempts(tx: &mut SqliteConnection, batch: &[FinishedAttempt]) -> StoreResult<()> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        "WITH v (id, delivery_id, msg_id, endpoint_id, app_id, url, status, \
         response_status_code, response_headers, response, response_duration_ms, error_kind, \
         error_detail, trigger_type, created_at) AS (",
    );
    qb.push_values(batch, |mut row, f| {
        let a = &f.attempt;
        row.push_bind(a.id.clone())
            .push_bind(a.delivery_id.clone())
            .push_bind(a.msg_id.clone())
            .push_bind(a.endpoint_id.clone())
            .push_bind(a.app_id.clone())
            .push_bind(a.url.clone())
            .push_bind(a.status as i64)
            .push_bind(i64::from(a.response_status_code))
            .push_bind(json(&a.response_headers))
            .push_bind(a.response.clone())
            .push_bind(a.response_duration_ms)
            .push_bind(a.error_kind.map(|k| k.as_str()))
            .push_bind(a.error_detail.clone())
            .push_bind(a.trigger as i64)
            .push_bind(ms(a.created_at));
    });
    qb.push(
        ") INSERT INTO attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, \
         response_status_code, response_headers, response, response_duration_ms, error_kind, \
         error_detail, trigger_type, created_at) \
         SELECT * FROM v WHERE EXISTS (SELECT 1 FROM messages m WHERE m.id = v.msg_id) \
         AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = v.endpoint_id)",
    );
    qb.build().execute(&mut *tx).await.map_err(internal)?;
    Ok(())
}

/// Each delivery's next state, if its lease still holds. Later attempts are scheduled ones,
/// whatever triggered this one.
async fn update_deliveries(
    tx: &mut SqliteConnection,
    batch: &[FinishedAttempt],
) -> StoreResult<()> {
    let mut qb = QueryBuilder::<Sqlite>::new("WITH v (id, token, status, next_at, at) AS (");
    qb.push_values(batch, |mut row, f| {
        let (status, next_at) = match f.next {
            NextState::Succeeded => (DeliveryStatus::Success, None),
            NextState::RetryAt(at) => (DeliveryStatus::Pending, Some(ms(at))),
            NextState::Failed => (DeliveryStatus::Failed, None),
        };
        row.push_bind(f.attempt.delivery_id.clone())
            .push_bind(f.lease_token.clone())
            .push_bind(status as i64)
            .push_bind(next_at)
            .push_bind(ms(f.attempt.created_at));
    });
    qb.push(
        ") UPDATE deliveries SET status = v.status, attempt_count = attempt_count + 1, \
         next_attempt_at = v.next_at, lease_token = NULL, trigger_type = 0, updated_at = v.at \
         FROM v WHERE deliveries.id = v.id AND deliveries.lease_token = v.token",
    );
    qb.build().execute(&mut *tx).await.map_err(internal)?;
    Ok(())
}

/// A success ends its endpoint's failing spell: auto-disable counts only unbroken runs of
/// failures.
async fn clear_failing_spells(
    tx: &mut SqliteConnection,
    batch: &[FinishedAttempt],
) -> StoreResult<()> {
    let succeeded = unique_ids(
        batch
            .iter()
            .filter(|f| matches!(f.next, NextState::Succeeded))
            .map(|f| f.attempt.endpoint_id.as_str()),
    );
    if succeeded.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::<Sqlite>::new(
        "UPDATE endpoints SET failing_since = NULL WHERE failing_since IS NOT NULL AND id IN (",
    );
    let mut list = qb.separated(", ");
    for id in succeeded {
        list.push_bind(id);
    }
    qb.push(")");
    qb.build().execute(&mut *tx).await.map_err(internal)?;
    Ok(())
}

/// Moves a leased delivery to `status`, due at `due_at`, if the lease still holds.
async fn end_lease(
    s: &SqliteStore,
    delivery_id: &str,
    lease_token: &str,
    status: DeliveryStatus,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_token = NULL, updated_at = ? \
         WHERE id = ? AND lease_token = ?",
    )
    .bind(status as i64)
    .bind(due_at.map(ms))
    .bind(ms(now))
    .bind(delivery_id)
    .bind(lease_token)
    .execute(&s.writer)
    .await
    .map_err(internal)?;
    Ok(())
}

pub async fn release(
    s: &SqliteStore,
    delivery_id: &str,
    lease_token: &str,
    due_at: DateTime<Utc>,
) -> StoreResult<()> {
    end_lease(
        s,
        delivery_id,
        lease_token,
        DeliveryStatus::Pending,
        Some(due_at),
        due_at,
    )
    .await?;
    s.work.notify_one();
    Ok(())
}

pub async fn cancel(
    s: &SqliteStore,
    delivery_id: &str,
    lease_token: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    end_lease(
        s,
        delivery_id,
        lease_token,
        DeliveryStatus::Canceled,
        None,
        at,
    )
    .await
}

pub async fn next_due_at(s: &SqliteStore, skip: &[String]) -> StoreResult<Option<DateTime<Utc>>> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN (1, 3)",
    );
    push_skip(&mut qb, skip);
    let next: Option<i64> = qb
        .build_query_scalar()
        .fetch_one(&s.reader)
        .await
        .map_err(internal)?;
    Ok(next.map(time))
}

//! The queue side of the store: leasing due deliveries and recording attempts. Nodes claim
//! with `FOR UPDATE SKIP LOCKED`, so concurrent claims never return the same row.

use chrono::{DateTime, Utc};
use herald_core::model::{Delivery, DeliveryStatus};
use herald_core::store::{ClaimRequest, ClaimedDelivery, FinishedAttempt, NextState, StoreResult};
use rand::distributions::{Alphanumeric, DistString};
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::rows;
use crate::{internal, notify_work, PgStore};
use herald_store_sql::{assemble_claimed, decode_each, unique_ids};

/// A claim takes candidates among at most this many times its limit of due rows (each one
/// locked), so that the per-endpoint cap has rows of several endpoints to choose from;
/// endpoints it leaves out are reached once their lanes fill and are skipped. (Rows of
/// skipped endpoints are still visited by the index scan: a very deep backlog of a skipped
/// endpoint makes claims slower; see the performance issue.)
const SCAN_FACTOR: i64 = 3;

/// Leases due rows: the scan locks candidates (skipping rows another node is claiming),
/// the window keeps at most `per_endpoint_limit` per endpoint (less for an endpoint with a
/// lower concurrency cap: twice its cap, its lane's depth), and the update takes the
/// earliest `limit` of those.
const CLAIM: &str = "
WITH scan AS MATERIALIZED (
    SELECT id, endpoint_id, next_attempt_at FROM deliveries
    WHERE status IN (1, 3) AND next_attempt_at <= $1 AND NOT (endpoint_id = ANY($2))
    ORDER BY next_attempt_at LIMIT $3
    FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT id, endpoint_id, next_attempt_at,
           ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS nth
    FROM scan
), chosen AS (
    SELECT ranked.id FROM ranked JOIN endpoints e ON e.id = ranked.endpoint_id
    WHERE nth <= LEAST($4, COALESCE(2 * e.max_concurrency, $4))
    ORDER BY ranked.next_attempt_at LIMIT $5
)
UPDATE deliveries d SET status = 3, next_attempt_at = $6, lease_token = $7
FROM chosen WHERE d.id = chosen.id
RETURNING d.id AS d_id, d.msg_id AS d_msg_id, d.endpoint_id AS d_endpoint_id,
          d.app_id AS d_app_id, d.status AS d_status, d.attempt_count AS d_attempt_count,
          NULL::timestamptz AS d_next_attempt_at, d.trigger_type AS d_trigger_type,
          d.updated_at AS d_updated_at";

pub async fn claim_due(s: &PgStore, req: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
    let token = Alphanumeric.sample_string(&mut rand::thread_rng(), 20);
    let limit = i64::from(req.limit);
    // Claim and read in one transaction: if a read fails, the claim is undone rather than
    // leaving rows leased to nobody until their lease ends.
    let mut tx = s.pool.begin().await.map_err(internal)?;
    let claimed = sqlx::query(CLAIM)
        .bind(req.now)
        .bind(&req.skip_endpoints)
        .bind(limit * SCAN_FACTOR)
        .bind(i64::from(req.per_endpoint_limit))
        .bind(limit)
        .bind(req.lease_until)
        .bind(&token)
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
    let deliveries: Vec<Delivery> = decode_each(&claimed, rows::delivery);
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let msg_ids: Vec<&str> = deliveries.iter().map(|d| d.msg_id.as_str()).collect();
    let messages = fetch_by_ids(&mut tx, "messages", &msg_ids, rows::message).await?;
    let endpoint_ids: Vec<&str> = deliveries.iter().map(|d| d.endpoint_id.as_str()).collect();
    let endpoints = fetch_by_ids(&mut tx, "endpoints", &endpoint_ids, |row| {
        rows::endpoint(row, &s.sealer)
    })
    .await?;
    tx.commit().await.map_err(internal)?;
    Ok(assemble_claimed(deliveries, messages, endpoints, &token))
}

async fn fetch_by_ids<T>(
    conn: &mut sqlx::PgConnection,
    table: &str,
    ids: &[&str],
    decode: impl Fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let unique = unique_ids(ids.iter().copied());
    let found = sqlx::query(&format!("SELECT * FROM {table} WHERE id = ANY($1)"))
        .bind(unique)
        .fetch_all(conn)
        .await
        .map_err(internal)?;
    Ok(decode_each(&found, decode))
}

/// Records finished attempts in one transaction: one commit (one fsync) for the batch.
pub async fn finish_attempts(s: &PgStore, batch: &[FinishedAttempt]) -> StoreResult<()> {
    let mut tx = s.pool.begin().await.map_err(internal)?;
    for finished in batch {
        record_one(&mut tx, finished).await?;
    }
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

/// Writes one attempt and its delivery's next state inside the caller's transaction.
async fn record_one(conn: &mut sqlx::PgConnection, f: &FinishedAttempt) -> StoreResult<()> {
    let a = &f.attempt;
    let (status, next_at) = match f.next {
        NextState::Succeeded => (DeliveryStatus::Success, None),
        NextState::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
        NextState::Failed => (DeliveryStatus::Failed, None),
    };
    // A savepoint: PostgreSQL would abort the whole batch's transaction on the error below.
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(internal)?;
    let inserted = sqlx::query(
        "INSERT INTO attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, \
         response_status_code, response_headers, response, response_duration_ms, error_kind, \
         error_detail, trigger_type, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&a.id)
    .bind(&a.delivery_id)
    .bind(&a.msg_id)
    .bind(&a.endpoint_id)
    .bind(&a.app_id)
    .bind(&a.url)
    .bind(a.status as i16)
    .bind(a.response_status_code)
    .bind(Json(&a.response_headers))
    .bind(&a.response)
    .bind(a.response_duration_ms)
    .bind(a.error_kind.map(|k| k.as_str()))
    .bind(&a.error_detail)
    .bind(a.trigger as i16)
    .bind(a.created_at)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // The message or endpoint was deleted while the attempt was in flight: there is
        // nothing left to record it against.
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            tx.rollback().await.map_err(internal)?;
            return Ok(());
        }
        Err(e) => return Err(internal(e)),
    }
    // Later attempts are scheduled ones, whatever triggered this one.
    sqlx::query(
        "UPDATE deliveries SET status = $1, attempt_count = attempt_count + 1, \
         next_attempt_at = $2, lease_token = NULL, trigger_type = 0, updated_at = $3 \
         WHERE id = $4 AND lease_token = $5",
    )
    .bind(status as i16)
    .bind(next_at)
    .bind(a.created_at)
    .bind(&a.delivery_id)
    .bind(&f.lease_token)
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    if matches!(f.next, NextState::Succeeded) {
        // A success ends the endpoint's failing spell: auto-disable counts only unbroken
        // runs of failures.
        sqlx::query(
            "UPDATE endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
        )
        .bind(&a.endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    }
    tx.commit().await.map_err(internal)?;
    Ok(())
}

/// Moves a leased delivery to `status`, due at `due_at`, if the lease still holds.
async fn end_lease(
    s: &PgStore,
    delivery_id: &str,
    lease_token: &str,
    status: DeliveryStatus,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = s.pool.begin().await.map_err(internal)?;
    sqlx::query(
        "UPDATE deliveries SET status = $1, next_attempt_at = $2, lease_token = NULL, \
         updated_at = $3 WHERE id = $4 AND lease_token = $5",
    )
    .bind(status as i16)
    .bind(due_at)
    .bind(now)
    .bind(delivery_id)
    .bind(lease_token)
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    if due_at.is_some() {
        notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)
}

pub async fn release(
    s: &PgStore,
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
    s: &PgStore,
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

pub async fn next_due_at(s: &PgStore, skip: &[String]) -> StoreResult<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM deliveries \
         WHERE status IN (1, 3) AND NOT (endpoint_id = ANY($1))",
    )
    .bind(skip)
    .fetch_one(&s.pool)
    .await
    .map_err(internal)
}

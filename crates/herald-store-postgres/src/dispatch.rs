//! The queue side of the store: leasing due deliveries and recording attempts. Nodes claim
//! with `FOR UPDATE SKIP LOCKED`, so concurrent claims never return the same row.

use chrono::{DateTime, Utc};
use herald_core::model::{Attempt, DeliveryStatus};
use herald_core::store::{
    CircuitNews, FinishedAttempt, ListenSessionAt, NextState, ProbeTurn, SlotRequest, SlotTurn,
    StoreResult,
};
use sqlx::types::Json;
use sqlx::PgConnection;

use herald_store_sql::dialect::PostgresDialect;
use herald_store_sql::Db;

use crate::{column, internal};

/// A claim takes candidates among at most this many times its limit of due rows (each one
/// locked), so that the per-endpoint cap has rows of several endpoints to choose from;
/// endpoints it leaves out are reached once their lanes fill and are skipped. (Rows of
/// skipped endpoints are still visited by the index scan: a very deep backlog of a skipped
/// endpoint makes claims slower; see the performance issue.)
pub const SCAN_FACTOR: i64 = 3;

/// Leases due rows: the scan locks candidates (skipping rows another node is claiming),
/// the window keeps at most `per_endpoint_limit` per endpoint (less for an endpoint with a
/// lower concurrency cap: twice its cap, its lane's depth), and the update takes the
/// earliest `limit` of those.
pub const CLAIM: &str = "
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

/// The attempt rows, in one statement. An attempt whose message or endpoint was deleted
/// while it was in flight is left out: there is nothing left to record it against. (The
/// check and the insert are one statement, but a delete committing between them would
/// still fail it on the foreign key; the recorder then records the batch one by one.)
pub async fn insert_attempts(
    conn: &mut PgConnection,
    batch: &[FinishedAttempt],
) -> StoreResult<()> {
    let attempts: Vec<&Attempt> = batch.iter().map(|b| &b.attempt).collect();
    let rows = attempts.as_slice();
    sqlx::query(
        "INSERT INTO attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, \
         response_status_code, response_headers, response, response_duration_ms, error_kind, \
         error_detail, trigger_type, created_at, request_headers, response_truncated) \
         SELECT v.* FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::int2[], $8::int4[], $9::jsonb[], $10::text[], $11::int8[], $12::text[], \
         $13::text[], $14::int2[], $15::timestamptz[], $16::jsonb[], $17::bool[]) \
         AS v(id, delivery_id, msg_id, endpoint_id, app_id, url, status, response_status_code, \
         response_headers, response, response_duration_ms, error_kind, error_detail, \
         trigger_type, created_at, request_headers, response_truncated) \
         WHERE EXISTS (SELECT 1 FROM messages m WHERE m.id = v.msg_id) \
         AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = v.endpoint_id)",
    )
    .bind(column(rows, |a| a.id.as_str()))
    .bind(column(rows, |a| a.delivery_id.as_str()))
    .bind(column(rows, |a| a.msg_id.as_str()))
    .bind(column(rows, |a| a.endpoint_id.as_str()))
    .bind(column(rows, |a| a.app_id.as_str()))
    .bind(column(rows, |a| a.url.as_str()))
    .bind(column(rows, |a| a.status as i16))
    .bind(column(rows, |a| a.response_status_code))
    .bind(column(rows, |a| Json(&a.response_headers)))
    .bind(column(rows, |a| a.response.as_str()))
    .bind(column(rows, |a| a.response_duration_ms))
    .bind(column(rows, |a| a.error_kind.map(|k| k.as_str())))
    .bind(column(rows, |a| a.error_detail.as_deref()))
    .bind(column(rows, |a| a.trigger as i16))
    .bind(column(rows, |a| a.created_at))
    .bind(column(rows, |a| Json(&a.request_headers)))
    .bind(column(rows, |a| a.response_truncated))
    .execute(conn)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Each delivery's next state, if its lease still holds. Later attempts are scheduled ones,
/// whatever triggered this one.
pub async fn update_deliveries(
    conn: &mut PgConnection,
    batch: &[FinishedAttempt],
) -> StoreResult<()> {
    let next: Vec<(DeliveryStatus, Option<DateTime<Utc>>)> = batch
        .iter()
        .map(|f| match f.next {
            NextState::Succeeded => (DeliveryStatus::Success, None),
            NextState::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            NextState::Failed => (DeliveryStatus::Failed, None),
        })
        .collect();
    sqlx::query(
        "UPDATE deliveries d SET status = v.status, attempt_count = d.attempt_count + 1, \
         next_attempt_at = v.next_at, lease_token = NULL, \
         trigger_type = CASE WHEN d.trigger_type = 1 THEN 0 ELSE d.trigger_type END, updated_at = v.at \
         FROM UNNEST($1::text[], $2::text[], $3::int2[], $4::timestamptz[], $5::timestamptz[]) \
         AS v(id, token, status, next_at, at) \
         WHERE d.id = v.id AND d.lease_token = v.token",
    )
    .bind(
        batch
            .iter()
            .map(|f| f.attempt.delivery_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .iter()
            .map(|f| f.lease_token.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        next.iter()
            .map(|(status, _)| *status as i16)
            .collect::<Vec<_>>(),
    )
    .bind(next.iter().map(|(_, at)| *at).collect::<Vec<_>>())
    .bind(
        batch
            .iter()
            .map(|f| f.attempt.created_at)
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Reserves the next start of an attempt to a rate-limited endpoint for the whole cluster:
/// one row per endpoint holds the earliest free moment, and each reservation takes it and
/// moves it `spacing` on, in one statement (the row lock orders nodes reserving at once).
/// A moment in the past is not banked: an endpoint idle for a while gets no burst.
pub async fn reserve_pace(
    db: &Db<PostgresDialect>,
    endpoint_id: &str,
    spacing: chrono::Duration,
    now: DateTime<Utc>,
) -> StoreResult<DateTime<Utc>> {
    let micros = spacing.num_microseconds().unwrap_or(i64::MAX).max(0);
    sqlx::query_scalar(
        "INSERT INTO endpoint_pace AS p (endpoint_id, next_at) \
         VALUES ($1, $2 + $3 * INTERVAL '1 microsecond') \
         ON CONFLICT (endpoint_id) DO UPDATE \
         SET next_at = GREATEST(p.next_at, $2) + $3 * INTERVAL '1 microsecond' \
         RETURNING p.next_at - $3 * INTERVAL '1 microsecond'",
    )
    .bind(endpoint_id)
    .bind(now)
    .bind(micros)
    .fetch_one(&db.writer)
    .await
    .map_err(internal)
}

/// Notes that `session.node` holds a `herald listen` session (see
/// `Queue::hold_listen_session`), in one statement: the row is written if it is new, its
/// own, stale, or `take_over` is set; otherwise the upsert changes nothing.
pub async fn hold_listen_session(
    db: &Db<PostgresDialect>,
    session: ListenSessionAt<'_>,
    take_over: bool,
) -> StoreResult<bool> {
    let written = sqlx::query(
        "INSERT INTO listen_sessions AS s (endpoint_id, node, seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (endpoint_id) DO UPDATE SET node = $2, seen_at = $3 \
         WHERE s.node = $2 OR s.seen_at < $4 OR $5",
    )
    .bind(session.endpoint_id)
    .bind(session.node)
    .bind(session.now)
    .bind(session.stale_before)
    .bind(take_over)
    .execute(&db.writer)
    .await
    .map_err(internal)?;
    Ok(written.rows_affected() == 1)
}

/// Forgets `node`'s word on the session of `endpoint_id` (another node's stays).
pub async fn drop_listen_session(
    db: &Db<PostgresDialect>,
    endpoint_id: &str,
    node: &str,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM listen_sessions WHERE endpoint_id = $1 AND node = $2")
        .bind(endpoint_id)
        .bind(node)
        .execute(&db.writer)
        .await
        .map_err(internal)?;
    Ok(())
}

/// The endpoints whose sessions other nodes hold (see `Queue::listen_sessions_elsewhere`).
pub async fn listen_sessions_elsewhere(
    db: &Db<PostgresDialect>,
    node: &str,
    stale_before: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT endpoint_id FROM listen_sessions WHERE node <> $1 AND seen_at >= $2")
        .bind(node)
        .bind(stale_before)
        .fetch_all(&db.reader)
        .await
        .map_err(internal)
}

/// Says `node` is alive and counts the live nodes (see `Store::heartbeat`), in one
/// statement. The count reads the table as it was before this statement (PostgreSQL's
/// snapshot), so it counts the others and adds this one.
pub async fn heartbeat(
    db: &Db<PostgresDialect>,
    node: &str,
    [now, stale_before, forget_before]: [DateTime<Utc>; 3],
) -> StoreResult<u32> {
    let others: i64 = sqlx::query_scalar(
        "WITH said AS (INSERT INTO nodes (id, seen_at) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET seen_at = $2 RETURNING id), \
         forgotten AS (DELETE FROM nodes WHERE seen_at < $4 AND id <> $1 RETURNING id) \
         SELECT COUNT(*) FROM nodes WHERE id <> $1 AND seen_at >= $3",
    )
    .bind(node)
    .bind(now)
    .bind(stale_before)
    .bind(forget_before)
    .fetch_one(&db.writer)
    .await
    .map_err(internal)?;
    Ok(u32::try_from(others).unwrap_or(u32::MAX - 1) + 1)
}

/// Says what became of an endpoint's circuit on one node (see `Queue::share_circuit`).
pub async fn share_circuit(db: &Db<PostgresDialect>, news: CircuitNews<'_>) -> StoreResult<()> {
    let query = match news {
        CircuitNews::Opened { endpoint_id, until } => sqlx::query(
            "INSERT INTO circuits AS c (endpoint_id, open_until) VALUES ($1, $2) \
             ON CONFLICT (endpoint_id) DO UPDATE \
             SET open_until = GREATEST(c.open_until, EXCLUDED.open_until)",
        )
        .bind(endpoint_id)
        .bind(until),
        CircuitNews::Closed { endpoint_id } => {
            sqlx::query("DELETE FROM circuits WHERE endpoint_id = $1").bind(endpoint_id)
        }
    };
    query.execute(&db.writer).await.map_err(internal)?;
    Ok(())
}

/// The circuits open at `now` (see `Queue::open_circuits`).
pub async fn open_circuits(
    db: &Db<PostgresDialect>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
    sqlx::query_as("SELECT endpoint_id, open_until FROM circuits WHERE open_until > $1")
        .bind(now)
        .fetch_all(&db.reader)
        .await
        .map_err(internal)
}

/// Takes the probe of an endpoint whose circuit's time is up, if no node took it since
/// (see `Queue::take_probe`), in one statement. Two nodes asking at once queue on the row:
/// the second sees the first's new `open_until` and does not take it. What the statement's
/// own read says of the row is as it was before the update.
pub async fn take_probe(
    db: &Db<PostgresDialect>,
    endpoint_id: &str,
    [now, hold_until]: [DateTime<Utc>; 2],
) -> StoreResult<ProbeTurn> {
    let (taken, until): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "WITH taken AS (UPDATE circuits SET open_until = $3 \
         WHERE endpoint_id = $1 AND open_until <= $2 RETURNING 1) \
         SELECT (SELECT COUNT(*) FROM taken), \
         (SELECT open_until FROM circuits WHERE endpoint_id = $1)",
    )
    .bind(endpoint_id)
    .bind(now)
    .bind(hold_until)
    .fetch_one(&db.writer)
    .await
    .map_err(internal)?;
    Ok(match (taken, until) {
        (1.., _) => ProbeTurn::Mine,
        (_, None) => ProbeTurn::Closed,
        // Not over yet (this node's clock or cool-down ran ahead): until then.
        (_, Some(until)) if until > now => ProbeTurn::Theirs(until),
        // Taken by another node just now: its probe has as long as this one would have.
        (_, Some(_)) => ProbeTurn::Theirs(hold_until),
    })
}

/// Takes the lowest free place under an endpoint's cap (see `Queue::take_slot`), in one
/// statement that also makes the place's row the first time. Two nodes that pick the same
/// free place queue on its row; the second then finds it held (the condition of `DO UPDATE`
/// is checked against the row as the first left it) and gets nothing: `Full`, and it asks
/// again, when it will find the next place.
pub async fn take_slot(
    db: &Db<PostgresDialect>,
    request: SlotRequest<'_>,
) -> StoreResult<SlotTurn> {
    let cap = i32::try_from(request.cap).unwrap_or(i32::MAX);
    let taken: Option<i32> = sqlx::query_scalar(
        "INSERT INTO endpoint_slots AS s (endpoint_id, slot, holder, held_until) \
         SELECT $1, n, $3, $5 FROM generate_series(0, $2 - 1) AS n \
         WHERE NOT EXISTS (SELECT 1 FROM endpoint_slots h \
                           WHERE h.endpoint_id = $1 AND h.slot = n AND h.held_until > $4) \
         ORDER BY n LIMIT 1 \
         ON CONFLICT (endpoint_id, slot) DO UPDATE \
         SET holder = EXCLUDED.holder, held_until = EXCLUDED.held_until \
         WHERE s.held_until <= $4 \
         RETURNING s.slot",
    )
    .bind(request.endpoint_id)
    .bind(cap)
    .bind(request.holder)
    .bind(request.now)
    .bind(request.hold_until)
    .fetch_optional(&db.writer)
    .await
    .map_err(internal)?;
    Ok(match taken {
        Some(n) => SlotTurn::Taken(u32::try_from(n).unwrap_or_default()),
        None => SlotTurn::Full,
    })
}

/// Frees a place its holder took (see `Queue::free_slot`). Only the hold's time changes, a
/// column no index holds, so PostgreSQL can write the new row version without touching
/// the index (a HOT update, when the page has room).
pub async fn free_slot(
    db: &Db<PostgresDialect>,
    endpoint_id: &str,
    slot: u32,
    holder: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE endpoint_slots SET held_until = '-infinity' \
         WHERE endpoint_id = $1 AND slot = $2 AND holder = $3",
    )
    .bind(endpoint_id)
    .bind(i32::try_from(slot).unwrap_or(i32::MAX))
    .bind(holder)
    .execute(&db.writer)
    .await
    .map_err(internal)?;
    Ok(())
}

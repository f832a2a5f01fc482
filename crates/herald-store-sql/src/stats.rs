//! The delivery-statistics rollups (`attempt_stats_minute`, `attempt_stats_hour`): added
//! to in the transaction that records a batch of attempts, read by statistics queries.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, DurationRound, Utc};
use herald_core::model::DeliveryStatus;
use herald_core::stats::{
    Counts, Dimension, Resolution, RollupCutoffs, StatsQuery, StatsRow, LATENCY_BUCKETS,
};
use herald_core::store::{FinishedAttempt, StoreResult};

use crate::db::Db;
use crate::dialect::{Dialect, ReadRow};
use crate::sql::{v, Sql};

/// The rollup table of a resolution.
fn table(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::Minute => "attempt_stats_minute",
        Resolution::Hour => "attempt_stats_hour",
        Resolution::Day => "attempt_stats_day",
    }
}

/// Rows per upsert: 21 values each, well under every database's limit of parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// One rollup row's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key<'a> {
    app_id: &'a str,
    bucket: DateTime<Utc>,
    endpoint_id: &'a str,
    event_type: &'a str,
    status_code: i32,
}

/// The statements that add a batch of finished attempts to every rollup: run in the
/// transaction that records the batch, so a recorded attempt is counted exactly once.
pub fn add_attempts<D: Dialect>(batch: &[FinishedAttempt]) -> Vec<Sql> {
    let mut statements = Vec::new();
    for resolution in Resolution::ALL {
        let span = resolution.span();
        let mut rows: HashMap<Key, Counts> = HashMap::new();
        for finished in batch {
            let a = &finished.attempt;
            let key = Key {
                app_id: &a.app_id,
                bucket: a.created_at.duration_trunc(span).unwrap_or(a.created_at),
                endpoint_id: &a.endpoint_id,
                event_type: &finished.event_type,
                status_code: a.response_status_code,
            };
            let succeeded = a.status == DeliveryStatus::Success;
            rows.entry(key)
                .or_default()
                .add_attempt(succeeded, a.response_duration_ms);
        }
        let rows: Vec<_> = rows.into_iter().collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            statements.push(upsert::<D>(table(resolution), chunk));
        }
    }
    statements
}

fn latency_columns() -> impl Iterator<Item = String> {
    (0..LATENCY_BUCKETS).map(|i| format!("l{i}"))
}

/// This process's statistics rows, where the dialect shards them (`SHARDED_STATS`): drawn
/// once, so that a node adds to its own rows only and never waits for another node's
/// record transaction to commit. A restarted node starts rows of its own; reads sum them.
fn stats_shard() -> i64 {
    static SHARD: OnceLock<i64> = OnceLock::new();
    *SHARD.get_or_init(|| rand::Rng::gen_range(&mut rand::thread_rng(), 0..=i64::from(i16::MAX)))
}

/// `INSERT … ON CONFLICT DO UPDATE` adding `rows` to what `table` holds.
fn upsert<D: Dialect>(table: &str, rows: &[(Key, Counts)]) -> Sql {
    let latency: Vec<String> = latency_columns().collect();
    let shard = D::SHARDED_STATS.then(stats_shard);
    let shard_column = if shard.is_some() { ", shard" } else { "" };
    let mut sql = Sql::new(format!(
        "INSERT INTO {table} (app_id, bucket, endpoint_id, event_type, status_code, attempts, \
         succeeded, duration_ms, {}{shard_column}) VALUES ",
        latency.join(", ")
    ));
    for (i, (key, counts)) in rows.iter().enumerate() {
        sql.push(if i == 0 { "(" } else { ", (" });
        sql.push_bind(v::text(key.app_id))
            .push(", ")
            .push_bind(v::time(key.bucket))
            .push(", ")
            .push_bind(v::text(key.endpoint_id))
            .push(", ")
            .push_bind(v::text(key.event_type))
            .push(", ")
            .push_bind(v::int(key.status_code))
            .push(", ")
            .push_bind(v::int(counts.attempts as i64))
            .push(", ")
            .push_bind(v::int(counts.succeeded as i64))
            .push(", ")
            .push_bind(v::big(counts.duration_ms as i64));
        for n in counts.latency {
            sql.push(", ").push_bind(v::int(n as i64));
        }
        if let Some(shard) = shard {
            sql.push(&format!(", {shard}"));
        }
        sql.push(")");
    }
    let added: Vec<String> = ["attempts", "succeeded", "duration_ms"]
        .into_iter()
        .map(str::to_owned)
        .chain(latency)
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    sql.push(&format!(
        " ON CONFLICT (app_id, bucket, endpoint_id, event_type, status_code{shard_column}) \
         DO UPDATE SET "
    ));
    sql.push(&added.join(", "));
    sql
}

/// The rollup rows of a query, summed per bucket (and group).
pub async fn query<D: Dialect>(db: &Db<D>, q: &StatsQuery) -> StoreResult<Vec<StatsRow>> {
    let (table, span) = (table(q.resolution), q.resolution.span());
    let group = match q.group_by {
        None => "CAST(NULL AS TEXT)",
        Some(Dimension::Endpoint) => "endpoint_id",
        Some(Dimension::EventType) => "event_type",
        // Cast so both databases hand back text, like the other groups.
        Some(Dimension::StatusCode) => "CAST(status_code AS TEXT)",
    };
    // Sums are cast because PostgreSQL widens SUM(bigint) to numeric.
    let sums: Vec<String> = ["attempts", "succeeded", "duration_ms"]
        .into_iter()
        .map(str::to_owned)
        .chain(latency_columns())
        .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
        .collect();
    let since = q.since.duration_trunc(span).unwrap_or(q.since);
    let mut sql = Sql::new(format!(
        "SELECT bucket, {group} AS grp, {} FROM {table} WHERE app_id = ? AND bucket >= ? \
         AND bucket < ?",
        sums.join(", ")
    ))
    .bind(v::text(&q.app_id))
    .bind(v::time(since))
    .bind(v::time(q.until));
    if let Some(endpoint) = &q.endpoint_id {
        sql.push(" AND endpoint_id = ").push_bind(v::text(endpoint));
    }
    sql.push(" GROUP BY bucket");
    if q.group_by.is_some() {
        sql.push(", grp");
    }
    sql.push(" ORDER BY bucket");
    let rows = db.read(&sql).await?;
    rows.iter()
        .map(|row| {
            let mut counts = Counts {
                attempts: row.int("attempts")?.max(0) as u64,
                succeeded: row.int("succeeded")?.max(0) as u64,
                duration_ms: row.int("duration_ms")?.max(0) as u64,
                ..Counts::default()
            };
            for (i, slot) in counts.latency.iter_mut().enumerate() {
                *slot = row.int(&format!("l{i}"))?.max(0) as u64;
            }
            Ok(StatsRow {
                bucket: row.time("bucket")?,
                group: row.opt_text("grp")?,
                counts,
            })
        })
        .collect()
}

/// Removes rollup rows of buckets before the given time of their resolution.
pub async fn purge<D: Dialect>(db: &Db<D>, cutoffs: &RollupCutoffs) -> StoreResult<u64> {
    let mut removed = 0;
    for resolution in Resolution::ALL {
        let sql = Sql::new(format!(
            "DELETE FROM {} WHERE bucket < ?",
            table(resolution)
        ))
        .bind(v::time(cutoffs.of(resolution)));
        removed += db.write(&sql).await.map_err(crate::internal)?;
    }
    Ok(removed)
}

/// How many messages the application published in `[since, until)`.
pub async fn count_messages<D: Dialect>(
    db: &Db<D>,
    app_id: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<u64> {
    let sql = Sql::new(
        "SELECT COUNT(*) AS n FROM messages WHERE app_id = ? AND created_at >= ? \
         AND created_at < ?",
    )
    .bind(v::text(app_id))
    .bind(v::time(since))
    .bind(v::time(until));
    Ok(db.read_one(&sql).await?.int("n")?.max(0) as u64)
}

//! The queue side of the store: leasing due deliveries and recording attempts.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::model::{DeliveryStatus, Endpoint, Message};
use herald_core::store::{ClaimRequest, ClaimedDelivery, FinishedAttempt, NextState, StoreResult};
use rand::distributions::{Alphanumeric, DistString};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::rows::{self, json, ms, time};
use crate::{internal, SqliteStore};

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
        .push(
            " WHERE id IN (SELECT id FROM deliveries WHERE status IN (1, 3) \
             AND next_attempt_at <= ",
        )
        .push_bind(ms(req.now));
    if !req.skip_endpoints.is_empty() {
        qb.push(" AND endpoint_id NOT IN (");
        let mut list = qb.separated(", ");
        for id in &req.skip_endpoints {
            list.push_bind(id.clone());
        }
        qb.push(")");
    }
    qb.push(" ORDER BY next_attempt_at LIMIT ")
        .push_bind(i64::from(req.limit))
        .push(
            ") RETURNING id AS d_id, msg_id AS d_msg_id, endpoint_id AS d_endpoint_id, \
             app_id AS d_app_id, status AS d_status, attempt_count AS d_attempt_count, \
             NULL AS d_next_attempt_at, trigger_type AS d_trigger_type, updated_at AS d_updated_at",
        );
    let claimed = qb.build().fetch_all(&mut *tx).await.map_err(internal)?;
    let deliveries = claimed
        .iter()
        .map(rows::delivery)
        .collect::<StoreResult<Vec<_>>>()?;
    if deliveries.is_empty() {
        tx.commit().await.map_err(internal)?;
        return Ok(Vec::new());
    }

    let messages = fetch_by_ids(
        &mut tx,
        "messages",
        deliveries.iter().map(|d| &d.msg_id),
        rows::message,
    )
    .await?;
    let endpoints = fetch_by_ids(
        &mut tx,
        "endpoints",
        deliveries.iter().map(|d| &d.endpoint_id),
        rows::endpoint,
    )
    .await?;
    tx.commit().await.map_err(internal)?;

    let messages: HashMap<String, Message> =
        messages.into_iter().map(|m| (m.id.clone(), m)).collect();
    let endpoints: HashMap<String, Arc<Endpoint>> = endpoints
        .into_iter()
        .map(|e| (e.id.clone(), Arc::new(e)))
        .collect();
    // Rows are joined to their message and endpoint by the foreign keys, so both exist.
    Ok(deliveries
        .into_iter()
        .filter_map(|delivery| {
            Some(ClaimedDelivery {
                message: messages.get(&delivery.msg_id)?.clone(),
                endpoint: endpoints.get(&delivery.endpoint_id)?.clone(),
                lease_token: token.clone(),
                delivery,
            })
        })
        .collect())
}

/// Loads the rows of `table` with the given ids (duplicates are fine).
async fn fetch_by_ids<'a, T>(
    conn: &mut SqliteConnection,
    table: &str,
    ids: impl Iterator<Item = &'a String>,
    decode: fn(&sqlx::sqlite::SqliteRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut unique: Vec<&String> = ids.collect();
    unique.sort();
    unique.dedup();
    let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT * FROM {table} WHERE id IN ("));
    let mut list = qb.separated(", ");
    for id in unique {
        list.push_bind(id.clone());
    }
    qb.push(")");
    let found = qb.build().fetch_all(&mut *conn).await.map_err(internal)?;
    found.iter().map(decode).collect()
}

pub async fn finish_attempt(s: &SqliteStore, f: &FinishedAttempt) -> StoreResult<()> {
    let a = &f.attempt;
    let (status, next_at) = match f.next {
        NextState::Succeeded => (DeliveryStatus::Success, None),
        NextState::RetryAt(at) => (DeliveryStatus::Pending, Some(ms(at))),
        NextState::Failed => (DeliveryStatus::Failed, None),
    };
    let mut tx = s.writer.begin().await.map_err(internal)?;
    sqlx::query(
        "INSERT INTO attempts (id, delivery_id, msg_id, endpoint_id, app_id, url, status, \
         response_status_code, response_headers, response, response_duration_ms, error_kind, \
         error_detail, trigger_type, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&a.id)
    .bind(&a.delivery_id)
    .bind(&a.msg_id)
    .bind(&a.endpoint_id)
    .bind(&a.app_id)
    .bind(&a.url)
    .bind(a.status as i64)
    .bind(i64::from(a.response_status_code))
    .bind(json(&a.response_headers))
    .bind(&a.response)
    .bind(a.response_duration_ms)
    .bind(a.error_kind.map(|k| k.as_str()))
    .bind(&a.error_detail)
    .bind(a.trigger as i64)
    .bind(ms(a.created_at))
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    // The message or endpoint may have been deleted while the attempt was in flight: the
    // foreign keys then refuse the attempt row, and there is nothing left to update.
    sqlx::query(
        "UPDATE deliveries SET status = ?, attempt_count = attempt_count + 1, \
         next_attempt_at = ?, lease_token = NULL, updated_at = ? \
         WHERE id = ? AND lease_token = ?",
    )
    .bind(status as i64)
    .bind(next_at)
    .bind(ms(a.created_at))
    .bind(&a.delivery_id)
    .bind(&f.lease_token)
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    if matches!(f.next, NextState::RetryAt(_)) {
        s.work.notify_one();
    }
    Ok(())
}

pub async fn release(
    s: &SqliteStore,
    delivery_id: &str,
    lease_token: &str,
    due_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE deliveries SET status = 1, next_attempt_at = ?, lease_token = NULL \
         WHERE id = ? AND lease_token = ?",
    )
    .bind(ms(due_at))
    .bind(delivery_id)
    .bind(lease_token)
    .execute(&s.writer)
    .await
    .map_err(internal)?;
    s.work.notify_one();
    Ok(())
}

pub async fn next_due_at(s: &SqliteStore) -> StoreResult<Option<DateTime<Utc>>> {
    let next: Option<i64> =
        sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN (1, 3)")
            .fetch_one(&s.reader)
            .await
            .map_err(internal)?;
    Ok(next.map(time))
}

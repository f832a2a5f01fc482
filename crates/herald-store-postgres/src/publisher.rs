//! A batch of publishes, written the PostgreSQL way: idempotency keys locked in one order,
//! `UNNEST` arrays for lookups and inserts. (The batching itself, a few batches at once
//! each with one `NOTIFY`, is `herald_store_sql::group_commit`.)

use herald_core::model::Message;
use herald_core::store::{NewMessage, StoreResult};
use herald_core::StoreError;
use herald_store_sql::fresh::NewDelivery;
use herald_store_sql::publish_plan::{Accepted, Known};
use herald_store_sql::rows;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use crate::{column, internal};

/// Takes the locks of the batch's idempotency keys (those `lock_idempotency_key` takes)
/// up front, in the order of the lock ids: two batches taking them in different orders
/// would deadlock, and in one order they queue instead.
pub async fn lock_idempotency_keys(tx: &mut PgConnection, news: &[&NewMessage]) -> StoreResult<()> {
    let (apps, keys): (Vec<&str>, Vec<&str>) = Known::keys_of(news).into_iter().unzip();
    if keys.is_empty() {
        return Ok(());
    }
    let lock_ids: Vec<i32> = sqlx::query_scalar(
        "SELECT DISTINCT hashtext(a || '/' || k) FROM UNNEST($1::text[], $2::text[]) AS t(a, k) \
         ORDER BY 1",
    )
    .bind(&apps)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await
    .map_err(internal)?;
    for id in lock_ids {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('herald.idempotency'), $1)")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
    }
    Ok(())
}

/// Whether a failed batch is worth writing again one publish at a time: it failed on a
/// constraint or a value one publish brought, or lost a deadlock. Anything else (the
/// database down, the pool exhausted) would fail every publish again, one after another.
pub fn publishing_alone_may_help(e: &StoreError) -> bool {
    match e {
        StoreError::InvalidInput | StoreError::Conflict(_) | StoreError::NotFound => true,
        StoreError::Busy | StoreError::Unavailable => false,
        StoreError::Internal(inner) => match inner.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|code| code.starts_with("23") || code == "40P01" || code == "40001"),
            _ => false,
        },
    }
}

/// Reads the stored messages of the batch's idempotency keys and the event ids already
/// taken, in two statements at most.
pub async fn read_taken(tx: &mut PgConnection, news: &[&NewMessage]) -> StoreResult<Known> {
    let mut known = Known::default();
    let (apps, keys): (Vec<&str>, Vec<&str>) = Known::keys_of(news).into_iter().unzip();
    if !keys.is_empty() {
        let found = sqlx::query(
            "SELECT m.* FROM messages m JOIN UNNEST($1::text[], $2::text[]) AS k(app_id, key) \
             ON m.app_id = k.app_id AND m.idempotency_key = k.key",
        )
        .bind(&apps)
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
        for row in found {
            let message = rows::message(&row)?;
            let key: String = row.try_get("idempotency_key").map_err(internal)?;
            known
                .messages_by_key
                .insert((message.app_id.clone(), key), message);
        }
    }
    let (apps, event_ids): (Vec<&str>, Vec<&str>) = Known::event_ids_of(news).into_iter().unzip();
    if !event_ids.is_empty() {
        let taken: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.app_id, m.event_id FROM messages m \
             JOIN UNNEST($1::text[], $2::text[]) AS e(app_id, event_id) \
             ON m.app_id = e.app_id AND m.event_id = e.event_id",
        )
        .bind(&apps)
        .bind(&event_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
        known.event_ids.extend(taken);
    }
    Ok(known)
}

pub async fn insert_messages(tx: &mut PgConnection, accepted: &[Accepted<'_>]) -> StoreResult<()> {
    if accepted.is_empty() {
        return Ok(());
    }
    let messages: Vec<&Message> = accepted.iter().map(|a| &a.new.message).collect();
    // Channels and tags are text arrays, which UNNEST would flatten: they go as JSON.
    let as_json = |list: &Option<Vec<String>>| list.as_ref().map(|l| Json(l.clone()));
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_type, event_id, channels, tags, payload, \
         idempotency_key, created_at, traceparent, expires_at) \
         SELECT id, app_id, event_type, event_id, \
         CASE WHEN channels IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(channels)) END, \
         CASE WHEN tags IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(tags)) END, \
         payload, idempotency_key, created_at, traceparent, expires_at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], \
         $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::timestamptz[]) \
         AS m(id, app_id, event_type, event_id, channels, tags, payload, idempotency_key, \
         created_at, traceparent, expires_at)",
    )
    .bind(messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.app_id.as_str()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.event_type.as_str()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.event_id.as_deref()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| as_json(&m.channels)).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| as_json(&m.tags)).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.payload.as_deref()).collect::<Vec<_>>())
    .bind(accepted.iter().map(|a| a.new.idempotency_key.as_deref()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.created_at).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.traceparent.as_deref()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.expires_at).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Inserts a batch's delivery rows, pending or already leased to this node's dispatcher.
pub async fn insert_deliveries(
    tx: &mut PgConnection,
    deliveries: &[NewDelivery<'_>],
) -> StoreResult<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, \
         next_attempt_at, trigger_type, updated_at, lease_token) \
         SELECT id, msg_id, endpoint_id, app_id, status, 0, due, trigger_type, at, lease_token \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], \
         $6::smallint[], $7::timestamptz[], $8::smallint[], $9::text[]) \
         AS d(id, msg_id, endpoint_id, app_id, at, trigger_type, due, status, lease_token)",
    )
    .bind(column(deliveries, |d| d.id.as_str()))
    .bind(column(deliveries, |d| message(d).id.as_str()))
    .bind(column(deliveries, |d| d.endpoint_id))
    .bind(column(deliveries, |d| message(d).app_id.as_str()))
    .bind(column(deliveries, |d| message(d).created_at))
    .bind(column(deliveries, NewDelivery::trigger))
    .bind(column(deliveries, NewDelivery::next_attempt_at))
    .bind(column(deliveries, NewDelivery::status))
    .bind(column(deliveries, NewDelivery::lease_token))
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    Ok(())
}

fn message<'a>(d: &NewDelivery<'a>) -> &'a Message {
    &d.new.message
}

//! Publishing, message and attempt queries, resend and recover.

use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Attempt, DeliveryStatus, Message, TriggerType};
use herald_core::sealing::SecretSealer;
use herald_core::store::{
    AttemptFilter, EndpointDelivery, MessageDelivery, MessageFilter, NewMessage, Page, PageRequest,
    Published, StoreResult,
};
use herald_core::StoreError;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use tokio::sync::Notify;

use crate::rows::{self, DELIVERY_COLUMNS, MESSAGE_COLUMNS};
use crate::{internal, not_found, notify_work, PgStore};
use herald_store_sql::publish_plan::wants;
use herald_store_sql::push_page;

pub async fn create_message(s: &PgStore, new: &NewMessage) -> StoreResult<Published> {
    s.publisher.publish(new, s.sealer.clone()).await
}

/// Publishes one message in a transaction of its own.
pub(crate) async fn publish_alone(
    pool: &PgPool,
    work: &Notify,
    new: &NewMessage,
    sealer: &SecretSealer,
) -> StoreResult<Published> {
    let mut tx = pool.begin().await.map_err(internal)?;
    let published = publish_in(&mut tx, new, sealer).await?;
    let created = matches!(published, Published::Created { deliveries, .. } if deliveries > 0);
    if created {
        notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)?;
    if created {
        work.notify_one();
    }
    Ok(published)
}

/// Makes concurrent publishes with one idempotency key, on any node, wait for the first one's
/// transaction to end. (Taking it again in the same transaction is free.)
async fn lock_idempotency_key(tx: &mut PgConnection, app_id: &str, key: &str) -> StoreResult<()> {
    // Two-key form, in Herald's own key space (sqlx's migration lock uses the one-key form).
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('herald.idempotency'), hashtext($1 || '/' || $2))",
    )
    .bind(app_id)
    .bind(key)
    .execute(tx)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Writes one message and its deliveries within the caller's transaction; an error leaves
/// the transaction aborted. The caller notifies the nodes of new work.
async fn publish_in(
    tx: &mut PgConnection,
    new: &NewMessage,
    sealer: &SecretSealer,
) -> StoreResult<Published> {
    let m = &new.message;
    if let Some(key) = &new.idempotency_key {
        lock_idempotency_key(&mut *tx, &m.app_id, key).await?;
        let existing =
            sqlx::query("SELECT * FROM messages WHERE app_id = $1 AND idempotency_key = $2")
                .bind(&m.app_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
        if let Some(row) = existing {
            return Ok(Published::Existing(rows::message(&row)?));
        }
    }
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_type, event_id, channels, tags, payload, \
         idempotency_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&m.id)
    .bind(&m.app_id)
    .bind(&m.event_type)
    .bind(&m.event_id)
    .bind(&m.channels)
    .bind(&m.tags)
    .bind(m.payload.as_deref())
    .bind(&new.idempotency_key)
    .bind(m.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("eventId"),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        _ => internal(e),
    })?;

    let found = sqlx::query("SELECT * FROM endpoints WHERE app_id = $1 AND NOT disabled")
        .bind(&m.app_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
    let endpoints = found
        .iter()
        .map(|row| rows::endpoint(row, sealer))
        .collect::<StoreResult<Vec<_>>>()?;
    let targets: Vec<&str> = endpoints
        .iter()
        .filter(|endpoint| wants(new, endpoint))
        .map(|endpoint| endpoint.id.as_str())
        .collect();
    if !targets.is_empty() {
        let ids: Vec<String> = targets.iter().map(|_| IdKind::Delivery.new_id()).collect();
        sqlx::query(
            "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, \
             next_attempt_at, trigger_type, updated_at) \
             SELECT id, $3, endpoint_id, $4, 1, 0, $5, 0, $5 FROM UNNEST($1::text[], $2::text[]) \
             AS t(id, endpoint_id)",
        )
        .bind(&ids)
        .bind(&targets)
        .bind(&m.id)
        .bind(&m.app_id)
        .bind(m.created_at)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    }
    Ok(Published::Created {
        message: m.clone(),
        deliveries: targets.len(),
    })
}

pub async fn get_message(s: &PgStore, app_id: &str, id_or_event_id: &str) -> StoreResult<Message> {
    let row = sqlx::query(
        "SELECT * FROM messages WHERE app_id = $1 AND (id = $2 OR event_id = $2) \
         ORDER BY id = $2 DESC LIMIT 1",
    )
    .bind(app_id)
    .bind(id_or_event_id)
    .fetch_one(&s.pool)
    .await
    .map_err(not_found)?;
    rows::message(&row)
}

/// Appends the message filter conditions on the `messages` table aliased `m`.
fn push_message_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &MessageFilter) {
    if let Some(types) = f.event_types.as_ref().filter(|t| !t.is_empty()) {
        qb.push(" AND m.event_type = ANY(")
            .push_bind(types.clone())
            .push(")");
    }
    if let Some(channel) = &f.channel {
        qb.push(" AND ")
            .push_bind(channel.clone())
            .push(" = ANY(m.channels)");
    }
    if let Some(tag) = &f.tag {
        qb.push(" AND ")
            .push_bind(tag.clone())
            .push(" = ANY(m.tags)");
    }
    if let Some(before) = f.before {
        qb.push(" AND m.created_at < ").push_bind(before);
    }
    if let Some(after) = f.after {
        qb.push(" AND m.created_at > ").push_bind(after);
    }
}

pub async fn list_messages(
    s: &PgStore,
    app_id: &str,
    filter: &MessageFilter,
    page: &PageRequest,
) -> StoreResult<Page<Message>> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = "
    ));
    qb.push_bind(app_id.to_owned());
    push_message_filter(&mut qb, filter);
    let shape = push_page(&mut qb, "m.id", page);
    let found = qb.build().fetch_all(&s.pool).await.map_err(internal)?;
    let items = found
        .iter()
        .map(rows::message)
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn delete_message_content(s: &PgStore, app_id: &str, msg_id: &str) -> StoreResult<()> {
    let r = sqlx::query("UPDATE messages SET payload = NULL WHERE app_id = $1 AND id = $2")
        .bind(app_id)
        .bind(msg_id)
        .execute(&s.pool)
        .await
        .map_err(internal)?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn list_message_deliveries(
    s: &PgStore,
    app_id: &str,
    msg_id: &str,
    page: &PageRequest,
) -> StoreResult<Page<EndpointDelivery>> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT e.*, {DELIVERY_COLUMNS} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
         WHERE d.app_id = "
    ));
    qb.push_bind(app_id.to_owned())
        .push(" AND d.msg_id = ")
        .push_bind(msg_id.to_owned());
    let shape = push_page(&mut qb, "d.endpoint_id", page);
    let found = qb.build().fetch_all(&s.pool).await.map_err(internal)?;
    let items = found
        .iter()
        .map(|row| {
            Ok(EndpointDelivery {
                endpoint: rows::endpoint(row, &s.sealer)?,
                delivery: rows::delivery(row)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn list_endpoint_messages(
    s: &PgStore,
    app_id: &str,
    endpoint_id: &str,
    filter: &MessageFilter,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> StoreResult<Page<MessageDelivery>> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {MESSAGE_COLUMNS}, {DELIVERY_COLUMNS} FROM deliveries d \
         JOIN messages m ON m.id = d.msg_id WHERE d.app_id = "
    ));
    qb.push_bind(app_id.to_owned())
        .push(" AND d.endpoint_id = ")
        .push_bind(endpoint_id.to_owned());
    if let Some(status) = status {
        qb.push(" AND d.status = ").push_bind(status as i16);
    }
    push_message_filter(&mut qb, filter);
    let shape = push_page(&mut qb, "d.msg_id", page);
    let found = qb.build().fetch_all(&s.pool).await.map_err(internal)?;
    let items = found
        .iter()
        .map(|row| {
            Ok(MessageDelivery {
                message: rows::message(row)?,
                delivery: rows::delivery(row)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

/// Lists attempts restricted by `column = value` and the filter.
async fn list_attempts(
    s: &PgStore,
    app_id: &str,
    column: &str,
    value: &str,
    f: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    let mut qb = QueryBuilder::new(
        "SELECT a.* FROM attempts a JOIN messages m ON m.id = a.msg_id WHERE a.app_id = ",
    );
    qb.push_bind(app_id.to_owned())
        .push(format!(" AND a.{column} = "))
        .push_bind(value.to_owned());
    if let Some(endpoint_id) = &f.endpoint_id {
        qb.push(" AND a.endpoint_id = ")
            .push_bind(endpoint_id.clone());
    }
    if let Some(status) = f.status {
        qb.push(" AND a.status = ").push_bind(status as i16);
    }
    if let Some(class) = f.status_code_class {
        qb.push(" AND a.response_status_code >= ")
            .push_bind(class)
            .push(" AND a.response_status_code < ")
            .push_bind(class.saturating_add(100));
    }
    let message_filter = MessageFilter {
        event_types: f.event_types.clone(),
        channel: f.channel.clone(),
        tag: f.tag.clone(),
        ..MessageFilter::default()
    };
    push_message_filter(&mut qb, &message_filter);
    if let Some(before) = f.before {
        qb.push(" AND a.created_at < ").push_bind(before);
    }
    if let Some(after) = f.after {
        qb.push(" AND a.created_at > ").push_bind(after);
    }
    let shape = push_page(&mut qb, "a.id", page);
    let found = qb.build().fetch_all(&s.pool).await.map_err(internal)?;
    let items = found
        .iter()
        .map(rows::attempt)
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn list_attempts_by_endpoint(
    s: &PgStore,
    app_id: &str,
    endpoint_id: &str,
    f: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    list_attempts(s, app_id, "endpoint_id", endpoint_id, f, page).await
}

pub async fn list_attempts_by_message(
    s: &PgStore,
    app_id: &str,
    msg_id: &str,
    f: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    list_attempts(s, app_id, "msg_id", msg_id, f, page).await
}

pub async fn get_attempt(
    s: &PgStore,
    app_id: &str,
    msg_id: &str,
    id: &str,
) -> StoreResult<Attempt> {
    let row = sqlx::query("SELECT * FROM attempts WHERE app_id = $1 AND msg_id = $2 AND id = $3")
        .bind(app_id)
        .bind(msg_id)
        .bind(id)
        .fetch_one(&s.pool)
        .await
        .map_err(not_found)?;
    rows::attempt(&row)
}

pub async fn delete_attempt_content(
    s: &PgStore,
    app_id: &str,
    msg_id: &str,
    id: &str,
) -> StoreResult<()> {
    let r = sqlx::query(
        "UPDATE attempts SET response = 'EXPUNGED', response_headers = '{}' \
         WHERE app_id = $1 AND msg_id = $2 AND id = $3",
    )
    .bind(app_id)
    .bind(msg_id)
    .bind(id)
    .execute(&s.pool)
    .await
    .map_err(internal)?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn purge_content(s: &PgStore, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
    let messages = sqlx::query(
        "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
         WHERE payload IS NOT NULL AND created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(before)
    .bind(i64::from(batch))
    .execute(&s.pool)
    .await
    .map_err(internal)?;
    let attempts = sqlx::query(
        "UPDATE attempts SET response = 'EXPUNGED', response_headers = '{}' WHERE id IN \
         (SELECT id FROM attempts WHERE response <> 'EXPUNGED' AND created_at < $1 LIMIT $2 \
         FOR UPDATE SKIP LOCKED)",
    )
    .bind(before)
    .bind(i64::from(batch))
    .execute(&s.pool)
    .await
    .map_err(internal)?;
    Ok(messages.rows_affected() + attempts.rows_affected())
}

pub async fn resend(
    s: &PgStore,
    app_id: &str,
    msg_id: &str,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = s.pool.begin().await.map_err(internal)?;
    for (table, id) in [("messages", msg_id), ("endpoints", endpoint_id)] {
        sqlx::query(&format!(
            "SELECT 1 FROM {table} WHERE app_id = $1 AND id = $2"
        ))
        .bind(app_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(not_found)?;
    }
    // Resetting the row (and its lease token) makes any attempt still in flight unable to
    // overwrite the new state when it finishes.
    sqlx::query(
        "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, \
         next_attempt_at, trigger_type, updated_at) VALUES ($1, $2, $3, $4, 1, 0, $5, 1, $5) \
         ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, attempt_count = 0, \
         next_attempt_at = excluded.next_attempt_at, lease_token = NULL, trigger_type = 1, \
         updated_at = excluded.updated_at",
    )
    .bind(IdKind::Delivery.new_id())
    .bind(msg_id)
    .bind(endpoint_id)
    .bind(app_id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    notify_work(&mut tx).await?;
    tx.commit().await.map_err(internal)?;
    s.work.notify_one();
    Ok(())
}

pub async fn recover_failed(
    s: &PgStore,
    app_id: &str,
    endpoint_id: &str,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let mut tx = s.pool.begin().await.map_err(internal)?;
    let r = sqlx::query(
        "UPDATE deliveries SET status = 1, attempt_count = 0, next_attempt_at = $1, \
         lease_token = NULL, trigger_type = $2, updated_at = $1 \
         WHERE app_id = $3 AND endpoint_id = $4 AND status = 2 AND msg_id IN \
         (SELECT id FROM messages WHERE app_id = $3 AND created_at >= $5 \
          AND ($6::timestamptz IS NULL OR created_at < $6))",
    )
    .bind(now)
    .bind(TriggerType::Manual as i16)
    .bind(app_id)
    .bind(endpoint_id)
    .bind(since)
    .bind(until)
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    if r.rows_affected() > 0 {
        notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)?;
    if r.rows_affected() > 0 {
        s.work.notify_one();
    }
    Ok(r.rows_affected())
}

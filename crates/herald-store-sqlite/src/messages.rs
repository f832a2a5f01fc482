//! Publishing, message and attempt queries, resend and recover.

use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Attempt, DeliveryStatus, Message, TriggerType};
use herald_core::store::{
    AttemptFilter, EndpointDelivery, MessageDelivery, MessageFilter, NewMessage, Page, PageRequest,
    Published, StoreResult,
};
use herald_core::StoreError;
use sqlx::{QueryBuilder, Sqlite};

use crate::rows::{self, ms, DELIVERY_COLUMNS, MESSAGE_COLUMNS};
use crate::{internal, not_found, SqliteStore};
use herald_store_sql::push_page;

pub async fn create_message(s: &SqliteStore, new: &NewMessage) -> StoreResult<Published> {
    s.publisher.publish(new, s.sealer.clone()).await
}

pub async fn get_message(
    s: &SqliteStore,
    app_id: &str,
    id_or_event_id: &str,
) -> StoreResult<Message> {
    let row = sqlx::query(
        "SELECT * FROM messages WHERE app_id = ?1 AND (id = ?2 OR event_id = ?2) \
         ORDER BY id = ?2 DESC LIMIT 1",
    )
    .bind(app_id)
    .bind(id_or_event_id)
    .fetch_one(&s.reader)
    .await
    .map_err(not_found)?;
    rows::message(&row)
}

/// Appends the message filter conditions on the `messages` table aliased `m`.
fn push_message_filter(qb: &mut QueryBuilder<'_, Sqlite>, f: &MessageFilter) {
    if let Some(types) = f.event_types.as_ref().filter(|t| !t.is_empty()) {
        qb.push(" AND m.event_type IN (");
        let mut list = qb.separated(", ");
        for t in types {
            list.push_bind(t.clone());
        }
        qb.push(")");
    }
    if let Some(channel) = &f.channel {
        qb.push(" AND EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ")
            .push_bind(channel.clone())
            .push(")");
    }
    if let Some(tag) = &f.tag {
        qb.push(" AND EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ")
            .push_bind(tag.clone())
            .push(")");
    }
    if let Some(before) = f.before {
        qb.push(" AND m.created_at < ").push_bind(ms(before));
    }
    if let Some(after) = f.after {
        qb.push(" AND m.created_at > ").push_bind(ms(after));
    }
}

pub async fn list_messages(
    s: &SqliteStore,
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
    let found = qb.build().fetch_all(&s.reader).await.map_err(internal)?;
    let items = found
        .iter()
        .map(rows::message)
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn delete_message_content(
    s: &SqliteStore,
    app_id: &str,
    msg_id: &str,
) -> StoreResult<()> {
    let r = sqlx::query("UPDATE messages SET payload = NULL WHERE app_id = ? AND id = ?")
        .bind(app_id)
        .bind(msg_id)
        .execute(&s.writer)
        .await
        .map_err(internal)?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn list_message_deliveries(
    s: &SqliteStore,
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
    let found = qb.build().fetch_all(&s.reader).await.map_err(internal)?;
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
    s: &SqliteStore,
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
        qb.push(" AND d.status = ").push_bind(status as i64);
    }
    push_message_filter(&mut qb, filter);
    let shape = push_page(&mut qb, "d.msg_id", page);
    let found = qb.build().fetch_all(&s.reader).await.map_err(internal)?;
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
    s: &SqliteStore,
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
        qb.push(" AND a.status = ").push_bind(status as i64);
    }
    if let Some(class) = f.status_code_class {
        qb.push(" AND a.response_status_code >= ")
            .push_bind(i64::from(class))
            .push(" AND a.response_status_code < ")
            .push_bind(i64::from(class) + 100);
    }
    let message_filter = MessageFilter {
        event_types: f.event_types.clone(),
        channel: f.channel.clone(),
        tag: f.tag.clone(),
        ..MessageFilter::default()
    };
    push_message_filter(&mut qb, &message_filter);
    if let Some(before) = f.before {
        qb.push(" AND a.created_at < ").push_bind(ms(before));
    }
    if let Some(after) = f.after {
        qb.push(" AND a.created_at > ").push_bind(ms(after));
    }
    let shape = push_page(&mut qb, "a.id", page);
    let found = qb.build().fetch_all(&s.reader).await.map_err(internal)?;
    let items = found
        .iter()
        .map(rows::attempt)
        .collect::<StoreResult<_>>()?;
    Ok(shape.finish(items))
}

pub async fn list_attempts_by_endpoint(
    s: &SqliteStore,
    app_id: &str,
    endpoint_id: &str,
    f: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    list_attempts(s, app_id, "endpoint_id", endpoint_id, f, page).await
}

pub async fn list_attempts_by_message(
    s: &SqliteStore,
    app_id: &str,
    msg_id: &str,
    f: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    list_attempts(s, app_id, "msg_id", msg_id, f, page).await
}

pub async fn get_attempt(
    s: &SqliteStore,
    app_id: &str,
    msg_id: &str,
    id: &str,
) -> StoreResult<Attempt> {
    let row = sqlx::query("SELECT * FROM attempts WHERE app_id = ? AND msg_id = ? AND id = ?")
        .bind(app_id)
        .bind(msg_id)
        .bind(id)
        .fetch_one(&s.reader)
        .await
        .map_err(not_found)?;
    rows::attempt(&row)
}

pub async fn delete_attempt_content(
    s: &SqliteStore,
    app_id: &str,
    msg_id: &str,
    id: &str,
) -> StoreResult<()> {
    let r = sqlx::query(
        "UPDATE attempts SET response = 'EXPUNGED', response_headers = '{}' \
         WHERE app_id = ? AND msg_id = ? AND id = ?",
    )
    .bind(app_id)
    .bind(msg_id)
    .bind(id)
    .execute(&s.writer)
    .await
    .map_err(internal)?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn purge_content(s: &SqliteStore, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
    let messages = sqlx::query(
        "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
         WHERE payload IS NOT NULL AND created_at < ? LIMIT ?)",
    )
    .bind(ms(before))
    .bind(i64::from(batch))
    .execute(&s.writer)
    .await
    .map_err(internal)?;
    let attempts = sqlx::query(
        "UPDATE attempts SET response = 'EXPUNGED', response_headers = '{}' WHERE id IN \
         (SELECT id FROM attempts WHERE response <> 'EXPUNGED' AND created_at < ? LIMIT ?)",
    )
    .bind(ms(before))
    .bind(i64::from(batch))
    .execute(&s.writer)
    .await
    .map_err(internal)?;
    Ok(messages.rows_affected() + attempts.rows_affected())
}

pub async fn resend(
    s: &SqliteStore,
    app_id: &str,
    msg_id: &str,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = s.writer.begin().await.map_err(internal)?;
    for (table, id) in [("messages", msg_id), ("endpoints", endpoint_id)] {
        sqlx::query(&format!(
            "SELECT 1 FROM {table} WHERE app_id = ? AND id = ?"
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
         next_attempt_at, trigger_type, updated_at) VALUES (?, ?, ?, ?, 1, 0, ?, 1, ?) \
         ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, attempt_count = 0, \
         next_attempt_at = excluded.next_attempt_at, lease_token = NULL, trigger_type = 1, \
         updated_at = excluded.updated_at",
    )
    .bind(IdKind::Delivery.new_id())
    .bind(msg_id)
    .bind(endpoint_id)
    .bind(app_id)
    .bind(ms(now))
    .bind(ms(now))
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    s.work.notify_one();
    Ok(())
}

pub async fn recover_failed(
    s: &SqliteStore,
    app_id: &str,
    endpoint_id: &str,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let r = sqlx::query(
        "UPDATE deliveries SET status = 1, attempt_count = 0, next_attempt_at = ?1, \
         lease_token = NULL, trigger_type = ?2, updated_at = ?1 \
         WHERE app_id = ?3 AND endpoint_id = ?4 AND status = 2 AND msg_id IN \
         (SELECT id FROM messages WHERE app_id = ?3 AND created_at >= ?5 AND created_at < ?6)",
    )
    .bind(ms(now))
    .bind(TriggerType::Manual as i64)
    .bind(app_id)
    .bind(endpoint_id)
    .bind(ms(since))
    .bind(until.map(ms).unwrap_or(i64::MAX))
    .execute(&s.writer)
    .await
    .map_err(internal)?;
    if r.rows_affected() > 0 {
        s.work.notify_one();
    }
    Ok(r.rows_affected())
}

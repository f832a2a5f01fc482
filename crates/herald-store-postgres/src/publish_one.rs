//! Publishing one message in a transaction of its own: what a batch falls back to when a
//! concurrent writer made it fail.

use herald_core::ids::IdKind;
use herald_core::sealing::SecretSealer;
use herald_core::store::{NewMessage, Published, StoreResult};
use herald_core::StoreError;
use herald_store_sql::dialect::PostgresDialect;
use herald_store_sql::group_commit;
use herald_store_sql::publish_plan::{recipients, Accepted};
use herald_store_sql::rows;
use herald_store_sql::Db;
use sqlx::PgConnection;

use crate::{internal, notify_work};

/// Publishes one message in a transaction of its own.
pub(crate) async fn publish_alone(
    db: &Db<PostgresDialect>,
    new: &NewMessage,
    sealer: &SecretSealer,
) -> StoreResult<Published> {
    let mut tx = db.begin().await?;
    let published = publish_in(&mut tx, new, sealer).await?;
    let created = matches!(published, Published::Created { .. });
    let work = matches!(published, Published::Created { deliveries, .. } if deliveries > 0);
    if created {
        // Also when it has no deliveries: other nodes' long polls of the stream hear it.
        notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)?;
    if work {
        db.work.notify_one();
    }
    if created {
        db.announce_news();
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
        if let Some(existing) = published_with_key(tx, &m.app_id, key).await? {
            return Ok(Published::Existing(existing));
        }
    }
    insert_message(tx, new).await?;
    let found = sqlx::query(
        "SELECT * FROM endpoints WHERE app_id = $1 \
         AND (NOT disabled AND NOT adhoc OR adhoc AND id = ANY($2))",
    )
    .bind(&m.app_id)
    .bind(&new.adhoc_endpoints)
    .fetch_all(&mut *tx)
    .await
    .map_err(internal)?;
    let endpoints = found
        .iter()
        .map(|row| rows::endpoint(row, sealer))
        .collect::<StoreResult<Vec<_>>>()?;
    let targets = recipients(new, &endpoints);
    if !targets.is_empty() {
        insert_deliveries(tx, new, &targets).await?;
        let targeted = endpoints
            .iter()
            .filter(|e| targets.contains(&e.id.as_str()));
        // In line first, then held (as in a batch).
        let ordered = group_commit::ordered_of(targeted.clone());
        if !ordered.is_empty() {
            let accepted = Accepted {
                new,
                endpoint_ids: targets.clone(),
            };
            group_commit::line_up::<PostgresDialect>(tx, &[accepted], ordered).await?;
        }
        let holding = group_commit::holding(targeted);
        group_commit::hold::<PostgresDialect>(tx, vec![m.id.clone()], holding).await?;
    }
    Ok(Published::Created {
        message: m.clone(),
        deliveries: targets.len(),
    })
}

/// The message already published with this idempotency key, if any; from here until the
/// transaction ends, other publishes with the key wait.
async fn published_with_key(
    tx: &mut PgConnection,
    app_id: &str,
    key: &str,
) -> StoreResult<Option<herald_core::model::Message>> {
    lock_idempotency_key(&mut *tx, app_id, key).await?;
    let existing = sqlx::query("SELECT * FROM messages WHERE app_id = $1 AND idempotency_key = $2")
        .bind(app_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
    existing.map(|row| rows::message(&row)).transpose()
}

/// Inserts the message itself: a taken event id is a conflict, an application gone
/// meanwhile not found.
async fn insert_message(tx: &mut PgConnection, new: &NewMessage) -> StoreResult<()> {
    let m = &new.message;
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_type, event_id, channels, tags, payload, \
         idempotency_key, created_at, traceparent, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
    .bind(&m.traceparent)
    .bind(m.expires_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("eventId"),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        _ => internal(e),
    })?;
    Ok(())
}

/// Inserts the message's deliveries to `targets`, pending and due at its first due time.
async fn insert_deliveries(
    tx: &mut PgConnection,
    new: &NewMessage,
    targets: &[&str],
) -> StoreResult<()> {
    let m = &new.message;
    let ids: Vec<String> = targets.iter().map(|_| IdKind::Delivery.new_id()).collect();
    let triggers: Vec<i16> = targets
        .iter()
        .map(|id| new.trigger_for(id) as i16)
        .collect();
    sqlx::query(
        "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, \
         next_attempt_at, trigger_type, updated_at) \
         SELECT id, $3, endpoint_id, $4, 1, 0, $7, trigger_type, $5 \
         FROM UNNEST($1::text[], $2::text[], $6::smallint[]) AS t(id, endpoint_id, trigger_type)",
    )
    .bind(&ids)
    .bind(targets)
    .bind(&m.id)
    .bind(&m.app_id)
    .bind(m.created_at)
    .bind(&triggers)
    .bind(new.first_due())
    .execute(&mut *tx)
    .await
    .map_err(internal)?;
    Ok(())
}

//! A batch of publishes, written the SQLite way: row values for the lookups, multi-row
//! `VALUES` for the inserts. (The batching itself is `herald_store_sql::group_commit`.)

use herald_core::store::{NewMessage, StoreResult};
use herald_store_sql::dialect::sqlite::ms;
use herald_store_sql::fresh::NewDelivery;
use herald_store_sql::publish_plan::{Accepted, Known};
use herald_store_sql::rows;
use herald_store_sql::sql::to_json as json;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::internal;

/// Rows per multi-row insert: 11 values at most each, well under SQLite's 32,766 parameters.
const ROWS_PER_INSERT: usize = 1_000;

/// Reads the stored messages of the batch's idempotency keys and the event ids already
/// taken, in two statements at most. Nothing else writes meanwhile
/// (this is SQLite's one writer), so the inserts that follow meet no constraint they were
/// not checked against; should one fail anyway, the whole batch is not committed, and
/// every publisher hears so.
pub async fn read_taken(tx: &mut SqliteConnection, news: &[&NewMessage]) -> StoreResult<Known> {
    let mut known = Known::default();
    let keyed = Known::keys_of(news);
    if !keyed.is_empty() {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT * FROM messages WHERE (app_id, idempotency_key) IN (",
        );
        push_pairs(&mut qb, &keyed);
        for row in qb.build().fetch_all(&mut *tx).await.map_err(internal)? {
            let message = rows::message(&row)?;
            let key: String = row.try_get("idempotency_key").map_err(internal)?;
            known
                .messages_by_key
                .insert((message.app_id.clone(), key), message);
        }
    }
    let with_event_id = Known::event_ids_of(news);
    if !with_event_id.is_empty() {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT app_id, event_id FROM messages WHERE (app_id, event_id) IN (",
        );
        push_pairs(&mut qb, &with_event_id);
        let taken: Vec<(String, String)> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(internal)?;
        known.event_ids.extend(taken);
    }
    Ok(known)
}

/// Appends `VALUES (?, ?), (?, ?)…)`, closing the `IN (` the query ends with (SQLite
/// compares row values only with a subquery's rows).
fn push_pairs(qb: &mut QueryBuilder<'_, Sqlite>, pairs: &[(&str, &str)]) {
    qb.push("VALUES ");
    let mut list = qb.separated(", ");
    for (a, b) in pairs {
        list.push("(")
            .push_bind_unseparated(a.to_string())
            .push_unseparated(", ")
            .push_bind_unseparated(b.to_string())
            .push_unseparated(")");
    }
    qb.push(")");
}

pub async fn insert_messages(
    tx: &mut SqliteConnection,
    accepted: &[Accepted<'_>],
) -> StoreResult<()> {
    for chunk in accepted.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (id, app_id, event_type, event_id, channels, tags, payload, \
             idempotency_key, created_at, traceparent, expires_at) ",
        );
        qb.push_values(chunk, |mut row, Accepted { new, .. }| {
            let m = &new.message;
            row.push_bind(m.id.clone())
                .push_bind(m.app_id.clone())
                .push_bind(m.event_type.clone())
                .push_bind(m.event_id.clone())
                .push_bind(m.channels.as_ref().map(json))
                .push_bind(m.tags.as_ref().map(json))
                .push_bind(m.payload.as_deref().map(str::to_owned))
                .push_bind(new.idempotency_key.clone())
                .push_bind(ms(m.created_at))
                .push_bind(m.traceparent.clone())
                .push_bind(m.expires_at.map(ms));
        });
        qb.build().execute(&mut *tx).await.map_err(internal)?;
    }
    Ok(())
}

/// Inserts a batch's delivery rows, pending or already leased to this node's dispatcher.
pub async fn insert_deliveries(
    tx: &mut SqliteConnection,
    deliveries: &[NewDelivery<'_>],
) -> StoreResult<()> {
    for chunk in deliveries.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO deliveries (id, msg_id, endpoint_id, app_id, status, attempt_count, \
             next_attempt_at, trigger_type, updated_at, lease_token) ",
        );
        qb.push_values(chunk, |mut row, d| {
            let m = &d.new.message;
            row.push_bind(d.id.clone())
                .push_bind(m.id.clone())
                .push_bind(d.endpoint_id.to_string())
                .push_bind(m.app_id.clone())
                .push_bind(d.status())
                .push_unseparated(", 0, ")
                .push_bind_unseparated(ms(d.next_attempt_at()))
                .push_bind(d.trigger())
                .push_bind(ms(m.created_at))
                .push_bind(d.lease_token().map(str::to_owned));
        });
        qb.build().execute(&mut *tx).await.map_err(internal)?;
    }
    Ok(())
}

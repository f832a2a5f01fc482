//! Ordered (FIFO) endpoints: one delivery under way at a time, in publish order.
//!
//! A delivery to an ordered endpoint is written queued (status 6) with its message's place
//! in publish order (`seq`: the message's stream position, the same one the polling API
//! reads by). It becomes pending only when no delivery of the endpoint that has a place is
//! pending, being attempted or held. [`advance`] lets the next one go: where a delivery
//! joins the line (a publish, a resend, a recover, a replay: see [`pending_by_hand`]),
//! where one leaves it (the
//! dispatcher asks once an attempt settled it or it was canceled; a message's cancel), and
//! in a periodic sweep that catches the rest (a message deleted while under way, a node
//! that died between recording an attempt and asking).
//!
//! Two transactions letting go at once could each see the endpoint idle and let a
//! different delivery go. So each takes the ordering lock ([`Dialect::lock_ordering`])
//! first, and so does every transaction that changes queued rows, before it touches them:
//! whoever holds the lock waits for no row another holds while waiting for the lock.

use chrono::{DateTime, Utc};
use herald_core::model::DeliveryStatus;
use herald_core::store::StoreResult;

use crate::dialect::{Conn, Dialect};
use crate::internal;
use crate::sql::{v, Sql};

/// The status of a delivery waiting in line.
pub const QUEUED: i16 = DeliveryStatus::Queued as i16;

/// An expression for the place in publish order of the message whose id is `msg_id` (a
/// column, or `?` for a bound id).
pub fn place_of<D: Dialect>(msg_id: &str) -> String {
    format!(
        "(SELECT {} FROM messages m WHERE m.id = {msg_id})",
        D::STREAM_SEQ
    )
}

/// How a delivery to an endpoint made pending by hand (a resend, a recover, a replay) is
/// written: its status, and its place (an expression on the message id `msg_id`). To an
/// ordered endpoint it joins the line at its message's place, ahead of later messages.
pub fn pending_by_hand<D: Dialect>(ordered: bool, msg_id: &str) -> (i16, String) {
    match ordered {
        true => (QUEUED, place_of::<D>(msg_id)),
        false => (DeliveryStatus::Pending as i16, "NULL".to_owned()),
    }
}

/// Within `tx`, puts the new deliveries of `messages` to the ordered `endpoints` in line
/// (written pending or held a moment ago, in the same transaction), then lets go the next
/// of each endpoint where none is under way. Takes the ordering lock.
pub async fn line_up_new<D: Dialect>(
    tx: &mut Conn<D>,
    messages: Vec<String>,
    endpoints: Vec<String>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if messages.is_empty() || endpoints.is_empty() {
        return Ok(());
    }
    D::lock_ordering(tx).await?;
    let mut sql = Sql::new(format!(
        "UPDATE deliveries SET status = {QUEUED}, seq = {} WHERE status IN (1, 5) AND ",
        place_of::<D>("deliveries.msg_id")
    ));
    D::push_in_list(&mut sql, "msg_id", messages);
    sql.push(" AND ");
    D::push_in_list(&mut sql, "endpoint_id", endpoints.clone());
    D::execute(tx, &sql).await.map_err(internal)?;
    advance::<D>(tx, Some(endpoints), now).await?;
    Ok(())
}

/// Within `tx`, which holds the ordering lock: for each of `endpoints` (every ordered
/// endpoint when `None`), lets its first queued delivery go if none of its deliveries in
/// line is pending, being attempted or held. How many were let go. A delivery let go keeps
/// its due time: it is due at once unless its message was scheduled for later.
pub async fn advance<D: Dialect>(
    tx: &mut Conn<D>,
    endpoints: Option<Vec<String>>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let only = |sql: &mut Sql| {
        if let Some(ids) = &endpoints {
            sql.push(" AND ");
            D::push_in_list(sql, "w.id", ids.clone());
        }
    };
    // The query goes from the endpoints to their queued rows (`deliveries_queued`), never
    // through all of an endpoint's deliveries: SQLite, which keeps no statistics, would
    // otherwise pick the index of every delivery by endpoint.
    let mut next = Sql::new(format!(
        "UPDATE deliveries SET status = 1, updated_at = ? WHERE status = {QUEUED} AND id IN \
         (SELECT (SELECT q.id FROM deliveries q WHERE q.endpoint_id = w.id \
         AND q.status = {QUEUED} ORDER BY q.seq, q.msg_id LIMIT 1) \
         FROM endpoints w WHERE w.ordered"
    ))
    .bind(v::time(now));
    only(&mut next);
    next.push(
        " AND NOT EXISTS (SELECT 1 FROM deliveries a WHERE a.endpoint_id = w.id \
         AND a.seq IS NOT NULL AND a.status IN (1, 3, 5)))",
    );
    let let_go = D::execute(tx, &next).await.map_err(internal)?;
    if let_go > 0 {
        D::notify_work(tx).await?;
    }
    Ok(let_go)
}

/// Within `tx`, lets every queued delivery of an endpoint that is no longer ordered go at
/// once (the caller has just written it so, in `tx`). No lock is needed: a concurrent
/// `advance` that still saw the endpoint ordered re-reads each row it would let go, and
/// finds it pending already. How many were let go.
pub async fn release_line<D: Dialect>(
    tx: &mut Conn<D>,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    // Through `deliveries_queued` (the `ORDER BY` makes it the planner's choice), not
    // through every delivery the endpoint ever had.
    let sql = Sql::new(format!(
        "UPDATE deliveries SET status = 1, seq = NULL, updated_at = ? WHERE status = {QUEUED} \
         AND id IN (SELECT q.id FROM deliveries q WHERE q.endpoint_id = ? \
         AND q.status = {QUEUED} ORDER BY q.seq, q.msg_id)"
    ))
    .bind(v::time(now))
    .bind(v::text(endpoint_id));
    let released = D::execute(tx, &sql).await.map_err(internal)?;
    if released > 0 {
        D::notify_work(tx).await?;
    }
    Ok(released)
}

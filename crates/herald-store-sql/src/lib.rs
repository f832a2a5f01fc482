//! Herald's SQL store, written once for SQLite and PostgreSQL.
//!
//! Every query that does not depend on the database lives here ([`catalog`], [`messages`],
//! [`queue`], [`ordered`], [`tasks`], [`rows`]), written as [`sql::Sql`] statements that each database's
//! [`dialect::Dialect`] binds and runs; [`store::SqlStore`] implements `Store` over them.
//! Group commit of publishes and attempt records is here too ([`group_commit`], over the
//! one bounded [`batcher`]). What truly differs (a publish batch's lookups and inserts,
//! which rows a claim leases, how attempts are written, `LISTEN/NOTIFY`, SQLite's single
//! writer, migrations) is each store crate's [`store::Backend`].

pub mod batcher;
pub mod catalog;
pub mod db;
pub mod dialect;
pub mod fresh;
pub mod group_commit;
pub mod messages;
pub mod ordered;
pub mod publish_plan;
pub mod queue;
pub mod rows;
pub mod sql;
pub mod stats;
pub mod store;
pub mod tasks;

pub use db::Db;
pub use dialect::{Dialect, ReadRow};
pub use sql::{v, Sql, Value};
pub use store::{Backend, SqlStore};

/// Below this many matches a word search is read from its matches and sorted (a few
/// milliseconds at a million messages); at or above it, from the application's log in
/// order, checking each message against the matches, which fills a page quickly when
/// the words are common.
pub const SEARCH_FEW: i64 = 1000;

use std::collections::HashMap;
use std::sync::Arc;

use herald_core::model::{Delivery, Endpoint, Message};
use herald_core::store::{ClaimedDelivery, Cursor, Order, Page, PageRequest, StoreResult};
use herald_core::StoreError;

/// Wraps a database error as a store error: a value the database cannot hold (SQL's
/// "data exception" class 22, e.g. a NUL character in text, a date out of range) is the
/// client's mistake; a database out of reach is [`StoreError::Unavailable`]; anything else
/// is internal.
pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    match boxed.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c.starts_with("22")) => {
            StoreError::InvalidInput
        }
        Some(e) if out_of_reach(e) => StoreError::Unavailable,
        _ => StoreError::Internal(boxed),
    }
}

/// Whether `e` says the database could not be reached, rather than that a statement
/// failed: a refused or cut connection, no connection free in time, or PostgreSQL shutting
/// down or starting (SQLSTATE class 08, and 57P01-57P03).
fn out_of_reach(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Internal`.
pub fn conflict_on(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => internal(e),
    }
}

/// Maps "no row" to `NotFound`.
pub fn not_found(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        e => internal(e),
    }
}

/// How a page query was built, needed to read its rows back.
pub struct PageShape {
    limit: usize,
    /// Rows were fetched in the opposite order (a previous page) and must be flipped.
    reversed: bool,
}

/// Appends ` AND <cursor condition> ORDER BY … LIMIT …` to a query that already has a
/// `WHERE` clause. Keyset pagination over time-sortable ids: a page is "the next `limit`
/// ids after (or before) the cursor", so no item is skipped or repeated while others are
/// inserted.
pub fn push_page(sql: &mut Sql, id_col: &str, page: &PageRequest) -> PageShape {
    use Order::*;
    let (bound, ascending, reversed) = match (&page.cursor, page.order) {
        (None, Descending) => (None, false, false),
        (None, Ascending) => (None, true, false),
        (Some(Cursor::After(id)), Descending) => (Some(("<", id)), false, false),
        (Some(Cursor::After(id)), Ascending) => (Some((">", id)), true, false),
        (Some(Cursor::Before(id)), Descending) => (Some((">", id)), true, true),
        (Some(Cursor::Before(id)), Ascending) => (Some(("<", id)), false, true),
    };
    if let Some((op, id)) = bound {
        sql.push(&format!(" AND {id_col} {op} "))
            .push_bind(v::text(id));
    }
    let direction = if ascending { "ASC" } else { "DESC" };
    let limit = page.limit as usize;
    sql.push(&format!(" ORDER BY {id_col} {direction} LIMIT "))
        .push_bind(v::big(limit as i64 + 1));
    PageShape { limit, reversed }
}

impl PageShape {
    /// Turns the fetched rows (one more than asked, if there are more) into a page.
    pub fn finish<T>(&self, mut items: Vec<T>) -> Page<T> {
        let done = items.len() <= self.limit;
        items.truncate(self.limit);
        if self.reversed {
            items.reverse();
        }
        Page { items, done }
    }
}

/// Decodes rows one by one: a row that cannot be read is logged and left out, so one bad
/// row never stops the delivery of all the others.
pub fn decode_each<R, T>(found: &[R], decode: impl Fn(&R) -> StoreResult<T>) -> Vec<T> {
    found
        .iter()
        .filter_map(|row| match decode(row) {
            Ok(item) => Some(item),
            Err(e) => {
                tracing::error!(error = %e, "a stored row could not be read; skipping it");
                None
            }
        })
        .collect()
}

/// Joins claimed deliveries to their message and endpoint (rows whose message or endpoint
/// is missing are left out).
pub fn assemble_claimed(
    deliveries: Vec<Delivery>,
    messages: Vec<Message>,
    endpoints: Vec<Endpoint>,
    lease_token: &str,
) -> Vec<ClaimedDelivery> {
    let messages: HashMap<String, Message> =
        messages.into_iter().map(|m| (m.id.clone(), m)).collect();
    let endpoints: HashMap<String, Arc<Endpoint>> = endpoints
        .into_iter()
        .map(|e| (e.id.clone(), Arc::new(e)))
        .collect();
    deliveries
        .into_iter()
        .filter_map(|delivery| {
            Some(ClaimedDelivery {
                message: messages.get(&delivery.msg_id)?.clone(),
                endpoint: endpoints.get(&delivery.endpoint_id)?.clone(),
                lease_token: lease_token.to_owned(),
                delivery,
            })
        })
        .collect()
}

/// Unique ids, sorted, from a list that may repeat them.
pub fn unique_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut unique: Vec<String> = ids.map(str::to_owned).collect();
    unique.sort_unstable();
    unique.dedup();
    unique
}

//! What differs between SQLite and PostgreSQL for the queries written once: how values are
//! bound and read back, how a statement is sent, and the few SQL fragments that are not
//! the same in both.
//!
//! Each database implements [`Dialect`] once (below); everything else in this crate is
//! generic over it. The traits have no generic bounds to repeat at every use: the
//! dialects' methods are concrete, so the shared code never needs `sqlx`'s executor bounds.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use herald_core::search::SearchWords;
use herald_core::store::StoreResult;
use serde::de::DeserializeOwned;

use crate::sql::{Sql, Value};

pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresDialect;
pub use sqlite::SqliteDialect;

/// A database's connection type.
pub type Conn<D> = <<D as Dialect>::DB as sqlx::Database>::Connection;

/// How one database runs the shared statements.
pub trait Dialect: Send + Sync + Sized + 'static {
    /// The `sqlx` database.
    type DB: sqlx::Database;
    /// A row read back, as this database gives it.
    type Row: ReadRow + Send + Sync + 'static;

    /// A condition that the list column `column` holds the next bound text.
    fn list_contains(column: &str) -> String;
    /// The expression on `messages m` that numbers messages in commit order, and the order
    /// of the stream (see `StreamPosition`).
    const STREAM_SEQ: &str;
    const STREAM_ORDER: &str;
    /// A condition on `messages m` that holds for rows no transaction still in flight can
    /// come before in the stream; a reader stops there and goes on at its next read.
    const STREAM_SETTLED: &str;
    /// A condition on `messages m` that keeps, when old messages are deleted, the row the
    /// stream's numbering goes on from (empty where the numbering does not depend on rows
    /// kept).
    const KEEP_STREAM_HEAD: &str;
    /// Appends a condition that a row of `messages m` comes after (`seq`, `msg_id`).
    fn push_stream_after(sql: &mut Sql, seq: i64, msg_id: &str);
    /// A condition that the text column `column` contains the next bound text, as is
    /// (case-sensitive, no wildcards).
    fn text_contains(column: &str) -> String;
    /// A condition that the payload of `messages m` has every word of the search (see
    /// `herald_core::search`) bound next, written so that the database's word index serves it.
    fn payload_has_words(words: &SearchWords) -> (String, Value);
    /// Where the planner cannot tell a rare word from a common one (SQLite keeps no
    /// statistics; PostgreSQL guesses for a word's start), a query counting a search's
    /// matches up to `SEARCH_FEW` (a column `n`): fewer, and the message list is read from
    /// the matches rather than from the whole application's log. `None` where the
    /// planner chooses well alone.
    fn count_word_matches(words: &SearchWords) -> Option<Sql>;
    /// As `payload_has_words`, for a search known to match fewer than `SEARCH_FEW`
    /// messages: written so that the matches drive the read.
    fn payload_has_few_words(words: &SearchWords) -> (String, Value);
    /// What goes before a column in a condition so that the planner does not read the
    /// rows from that column's index, for a search with few matches to drive the read
    /// (empty where no such hint is needed).
    const NOT_FROM_INDEX: &str;
    /// Appends a condition that `column` is one of `items`. PostgreSQL binds the list
    /// once (`= ANY($n)`), so a statement's text, and the prepared statement it caches
    /// for it, do not change with the list's length; SQLite, whose statements are cheap
    /// to prepare, compares with `IN (?, ?, …)`, which its planner serves from an index.
    fn push_in_list(sql: &mut Sql, column: &str, items: Vec<String>);
    /// What a retention query appends to the rows it selects to change, so that nodes
    /// cleaning at once do not wait for each other.
    const SKIP_LOCKED: &str;
    /// Whether each node adds its attempts to statistics rows of its own (a `shard`
    /// column), so that nodes recording at once do not wait for each other's rows; one
    /// writer (SQLite) has no one to wait for.
    const SHARDED_STATS: bool;

    /// Runs a statement; the number of rows it changed.
    fn execute<'c>(conn: &'c mut Conn<Self>, sql: &'c Sql) -> BoxFuture<'c, sqlx::Result<u64>>;
    /// Runs statements in order, their rows ignored, in one hand-off where the database
    /// takes several statements at once: SQLite runs a statement on its connection's
    /// thread, and each trip there and back (two thread switches) costs more than a small
    /// write itself. PostgreSQL runs each in turn.
    fn execute_each<'c>(
        conn: &'c mut Conn<Self>,
        statements: &'c [Sql],
    ) -> BoxFuture<'c, sqlx::Result<()>>;
    /// Runs a query; every row.
    fn fetch_all<'c>(
        conn: &'c mut Conn<Self>,
        sql: &'c Sql,
    ) -> BoxFuture<'c, sqlx::Result<Vec<Self::Row>>>;
    /// Within a transaction, tells the other nodes that work may be due once it commits.
    fn notify_work(conn: &mut Conn<Self>) -> BoxFuture<'_, StoreResult<()>>;
    /// Within a transaction, tells the other nodes that new messages will be in the stream
    /// once it commits, but no work for their dispatchers (every delivery it made went to
    /// this node's): it wakes their long polls only.
    fn notify_news(conn: &mut Conn<Self>) -> BoxFuture<'_, StoreResult<()>>;
    /// Within a transaction, waits until no other transaction is letting queued deliveries
    /// of ordered endpoints go (see `ordered`), and keeps the others waiting until it ends;
    /// its next statements see what those committed.
    fn lock_ordering(conn: &mut Conn<Self>) -> BoxFuture<'_, StoreResult<()>>;
}

/// Reads the columns of a row into domain values, whichever way the database stores them.
pub trait ReadRow {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    /// Any integer column, whatever its width.
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// A JSON column, decoded.
    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<Option<T>>;
    /// A list-of-strings column.
    fn opt_list(&self, col: &str) -> StoreResult<Option<Vec<String>>>;

    fn int(&self, col: &str) -> StoreResult<i64> {
        self.opt_int(col)?.ok_or_else(|| null(col))
    }
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        self.opt_time(col)?.ok_or_else(|| null(col))
    }
    fn json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<T> {
        self.opt_json(col)?.ok_or_else(|| null(col))
    }
}

fn null(col: &str) -> herald_core::StoreError {
    crate::internal(sqlx::Error::Decode(format!("column {col} is NULL").into()))
}

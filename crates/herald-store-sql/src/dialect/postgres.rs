//! PostgreSQL: typed columns (`timestamptz`, `text[]`, `jsonb`, 16- and 32-bit integers),
//! numbered placeholders, and `NOTIFY` to wake the other nodes.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use herald_core::search::SearchWords;
use herald_core::store::StoreResult;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::types::Json;
use sqlx::{Arguments, Column, PgConnection, Row, TypeInfo};

use super::{Dialect, ReadRow};

use crate::internal;
use crate::sql::{v, Sql, Value};

/// The words of `messages m`'s payload, as the index `messages_words` holds them.
const MESSAGE_WORDS: &str = "to_tsvector('simple'::regconfig, \
     regexp_replace(left(m.payload, 65536), '[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]+', ' ', 'g'))";

/// The scale-out database.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresDialect;

/// The channel nodes notify each other on.
pub const WORK_CHANNEL: &str = "herald_work";
/// The payload of a notification that wakes only long polls (see `notify_news`); any
/// other payload (`''`) wakes dispatchers too.
pub const NEWS_ONLY: &str = "news";

/// Within a transaction, notifies every node's listener, once it commits (PostgreSQL folds
/// identical notifications of one transaction into one).
async fn notify(conn: &mut PgConnection, payload: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WORK_CHANNEL)
        .bind(payload)
        .execute(conn)
        .await
        .map_err(internal)?;
    Ok(())
}

fn raw_json(text: String) -> sqlx::Result<Json<Box<RawValue>>> {
    RawValue::from_string(text)
        .map(Json)
        .map_err(|e| sqlx::Error::Encode(e.into()))
}

fn arguments(values: &[Value]) -> sqlx::Result<PgArguments> {
    let mut args = PgArguments::default();
    for value in values {
        let added = match value.clone() {
            Value::Text(s) => args.add(s),
            // INTEGER columns are 32 bits here; a larger limit means "no limit" anyway.
            Value::Int(n) => args.add(n.map(|n| i32::try_from(n).unwrap_or(i32::MAX))),
            Value::Code(n) => args.add(n),
            Value::Big(n) => args.add(n),
            Value::Flag(b) => args.add(b),
            Value::Time(t) => args.add(t),
            Value::Json(s) => args.add(s.map(raw_json).transpose()?),
            Value::List(items) => args.add(items),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

/// The advisory lock key that serializes letting go queued deliveries of ordered
/// endpoints across nodes (an arbitrary number no other part of Herald uses).
const ORDERING_LOCK: i64 = 0x4845_5241_4c44_0001;

impl Dialect for PostgresDialect {
    type DB = sqlx::Postgres;
    type Row = PgRow;

    fn list_contains(column: &str) -> String {
        format!("? = ANY({column})")
    }
    // A message row carries the id of the transaction that wrote it. Every transaction
    // below the current snapshot's xmin has ended, so those rows are all there is of them;
    // rows of a transaction still in flight have an id at or above it, and come later.
    const STREAM_SEQ: &str = "m.txid";
    const STREAM_ORDER: &str = "m.txid, m.id";
    const STREAM_SETTLED: &str = "m.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";
    // Transaction ids only grow, whatever rows are deleted.
    const KEEP_STREAM_HEAD: &str = "";
    fn push_stream_after(sql: &mut Sql, seq: i64, msg_id: &str) {
        sql.push(" AND (m.txid, m.id) > (")
            .push_bind(v::big(seq))
            .push(", ")
            .push_bind(v::text(msg_id))
            .push(")");
    }
    fn text_contains(column: &str) -> String {
        format!("strpos({column}, ?) > 0")
    }
    /// The expression is the one the GIN index `messages_words` was built on (migration
    /// 0024), character for character, or the planner would not use it; each word is a
    /// quoted prefix (`'ada':*`), and none contains a quote or a backslash.
    fn payload_has_words(words: &SearchWords) -> (String, Value) {
        let query = words
            .words()
            .iter()
            .map(|word| format!("'{word}':*"))
            .collect::<Vec<_>>()
            .join(" & ");
        (
            format!("{MESSAGE_WORDS} @@ to_tsquery('simple'::regconfig, ?)"),
            v::text(&query),
        )
    }
    /// The planner cannot tell how many messages a word's start matches (it guesses), and
    /// for a rare one it would read the application's log in order, working out each
    /// payload's words, rather than ask the index: seconds at a million messages.
    fn count_word_matches(words: &SearchWords) -> Option<Sql> {
        let (condition, query) = Self::payload_has_words(words);
        let sql = Sql::new(format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM messages m WHERE {condition} LIMIT {}) x",
            crate::SEARCH_FEW
        ));
        Some(sql.bind(query))
    }
    /// The matches' ids, found through the index once (an init plan), then read by id.
    fn payload_has_few_words(words: &SearchWords) -> (String, Value) {
        let (condition, query) = Self::payload_has_words(words);
        (
            format!("m.id = ANY(ARRAY(SELECT m.id FROM messages m WHERE {condition}))"),
            query,
        )
    }
    const NOT_FROM_INDEX: &str = "";
    fn push_in_list(sql: &mut Sql, column: &str, items: Vec<String>) {
        sql.push(column)
            .push(" = ANY(")
            .push_bind(Value::List(Some(items)))
            .push(")");
    }
    const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
    const SHARDED_STATS: bool = true;

    fn execute<'c>(conn: &'c mut PgConnection, sql: &'c Sql) -> BoxFuture<'c, sqlx::Result<u64>> {
        async move {
            let args = arguments(sql.values())?;
            let text = sql.numbered_text();
            let done = sqlx::query_with(&text, args).execute(conn).await?;
            Ok(done.rows_affected())
        }
        .boxed()
    }

    fn execute_each<'c>(
        conn: &'c mut PgConnection,
        statements: &'c [Sql],
    ) -> BoxFuture<'c, sqlx::Result<()>> {
        async move {
            for sql in statements {
                Self::execute(&mut *conn, sql).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn fetch_all<'c>(
        conn: &'c mut PgConnection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, sqlx::Result<Vec<PgRow>>> {
        async move {
            let args = arguments(sql.values())?;
            let text = sql.numbered_text();
            sqlx::query_with(&text, args).fetch_all(conn).await
        }
        .boxed()
    }

    fn notify_work(conn: &mut PgConnection) -> BoxFuture<'_, StoreResult<()>> {
        notify(conn, "").boxed()
    }
    fn notify_news(conn: &mut PgConnection) -> BoxFuture<'_, StoreResult<()>> {
        notify(conn, NEWS_ONLY).boxed()
    }
    fn lock_ordering(conn: &mut PgConnection) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            // A transaction-level advisory lock: released at commit or rollback, and the
            // statements after it take their snapshot once it is held.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ORDERING_LOCK)
                .execute(conn)
                .await
                .map_err(internal)?;
            Ok(())
        }
        .boxed()
    }
}

fn get<'r, T>(row: &'r PgRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col).map_err(internal)
}

impl ReadRow for PgRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        get(self, col)
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        get(self, col)
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        let column = self.try_column(col).map_err(internal)?;
        Ok(match column.type_info().name() {
            "INT2" => get::<Option<i16>>(self, col)?.map(i64::from),
            "INT4" => get::<Option<i32>>(self, col)?.map(i64::from),
            _ => get::<Option<i64>>(self, col)?,
        })
    }
    fn flag(&self, col: &str) -> StoreResult<bool> {
        get(self, col)
    }
    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        get(self, col)
    }
    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<Option<T>> {
        Ok(get::<Option<Json<T>>>(self, col)?.map(|j| j.0))
    }
    fn opt_list(&self, col: &str) -> StoreResult<Option<Vec<String>>> {
        get(self, col)
    }
}

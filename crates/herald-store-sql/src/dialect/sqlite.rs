//! SQLite: times as milliseconds since the epoch, lists and JSON as text, `?` placeholders.

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use herald_core::search::SearchWords;
use herald_core::store::StoreResult;
use serde::de::DeserializeOwned;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row, SqliteConnection};

use super::{Dialect, ReadRow};
use crate::internal;
use crate::sql::{to_json, v, Sql, Value};

/// The embedded database.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteDialect;

/// Milliseconds since the epoch, as stored.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`ms`].
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn arguments(values: &[Value]) -> sqlx::Result<SqliteArguments<'static>> {
    let mut args = SqliteArguments::default();
    for value in values {
        let added = match value.clone() {
            Value::Text(s) => args.add(s),
            Value::Int(n) => args.add(n),
            Value::Code(n) => args.add(i64::from(n)),
            Value::Big(n) => args.add(n),
            Value::Flag(b) => args.add(b),
            Value::Time(t) => args.add(t.map(ms)),
            Value::Json(s) => args.add(s),
            Value::List(items) => args.add(items.map(|l| to_json(&l))),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

impl Dialect for SqliteDialect {
    type DB = sqlx::Sqlite;
    type Row = SqliteRow;

    fn list_contains(column: &str) -> String {
        format!("EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)")
    }
    // One writer commits one transaction at a time, and a new row's rowid is above every
    // committed one: rowid order is commit order, and nothing in flight can come before.
    const STREAM_SEQ: &str = "m.rowid";
    const STREAM_ORDER: &str = "m.rowid";
    const STREAM_SETTLED: &str = "1 = 1";
    // A new row's rowid is one above the highest there is: were the highest deleted, the
    // next message would take its number again, behind a reader that already read it.
    const KEEP_STREAM_HEAD: &str = " AND m.rowid < (SELECT MAX(rowid) FROM messages)";
    fn push_stream_after(sql: &mut Sql, seq: i64, _msg_id: &str) {
        sql.push(" AND m.rowid > ").push_bind(v::big(seq));
    }
    fn text_contains(column: &str) -> String {
        format!("instr({column}, ?) > 0")
    }
    /// The FTS5 table `message_words` (migration 0022) is keyed by the message's rowid;
    /// each word is a quoted prefix query (`"ada"*`), and none contains a quote.
    fn payload_has_words(words: &SearchWords) -> (String, Value) {
        let query = words
            .words()
            .iter()
            .map(|word| format!("\"{word}\"*"))
            .collect::<Vec<_>>()
            .join(" AND ");
        (
            "m.rowid IN (SELECT rowid FROM message_words WHERE message_words MATCH ?)".into(),
            v::text(&query),
        )
    }
    fn count_word_matches(words: &SearchWords) -> Option<Sql> {
        let (_, query) = Self::payload_has_words(words);
        let sql = Sql::new(format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM message_words \
             WHERE message_words MATCH ? LIMIT {})",
            crate::SEARCH_FEW
        ));
        Some(sql.bind(query))
    }
    /// The same condition: `NOT_FROM_INDEX` is what makes the matches drive.
    fn payload_has_few_words(words: &SearchWords) -> (String, Value) {
        Self::payload_has_words(words)
    }
    /// A unary `+` keeps SQLite from using an index for the column.
    const NOT_FROM_INDEX: &str = "+";
    fn push_in_list(sql: &mut Sql, column: &str, items: Vec<String>) {
        sql.push(column)
            .push(" IN ")
            .push_list(items.into_iter().map(|s| Value::Text(Some(s))));
    }
    const SKIP_LOCKED: &str = "";
    const SHARDED_STATS: bool = false;

    fn execute<'c>(
        conn: &'c mut SqliteConnection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, sqlx::Result<u64>> {
        async move {
            let args = arguments(sql.values())?;
            let done = sqlx::query_with(sql.text(), args).execute(conn).await?;
            Ok(done.rows_affected())
        }
        .boxed()
    }

    /// One call with the statements joined: sqlx's SQLite driver steps through every
    /// statement of a text, binding each one's placeholders from the values in turn.
    /// sqlx calls that behaviour deprecated (launchbadge/sqlx#3108) though 0.8 keeps it;
    /// `statements_run_together_bind_their_own_values` fails if an upgrade drops it, and
    /// running the statements in turn, as PostgreSQL does, is then the way back.
    fn execute_each<'c>(
        conn: &'c mut SqliteConnection,
        statements: &'c [Sql],
    ) -> BoxFuture<'c, sqlx::Result<()>> {
        async move {
            let Some(together) = Sql::joined(statements) else {
                return Ok(());
            };
            let args = arguments(together.values())?;
            sqlx::query_with(together.text(), args)
                .execute(conn)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn fetch_all<'c>(
        conn: &'c mut SqliteConnection,
        sql: &'c Sql,
    ) -> BoxFuture<'c, sqlx::Result<Vec<SqliteRow>>> {
        async move {
            let args = arguments(sql.values())?;
            sqlx::query_with(sql.text(), args).fetch_all(conn).await
        }
        .boxed()
    }

    fn notify_work(_: &mut SqliteConnection) -> BoxFuture<'_, StoreResult<()>> {
        // One process owns the file: the caller's in-process signal is enough.
        futures_util::future::ready(Ok(())).boxed()
    }
    fn notify_news(_: &mut SqliteConnection) -> BoxFuture<'_, StoreResult<()>> {
        futures_util::future::ready(Ok(())).boxed()
    }
    fn lock_ordering(_: &mut SqliteConnection) -> BoxFuture<'_, StoreResult<()>> {
        // Every write goes through the one writer connection, one transaction at a time.
        futures_util::future::ready(Ok(())).boxed()
    }
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(col).map_err(internal)
}

impl ReadRow for SqliteRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        get(self, col)
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        get(self, col)
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        get(self, col)
    }
    fn flag(&self, col: &str) -> StoreResult<bool> {
        get(self, col)
    }
    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(get::<Option<i64>>(self, col)?.map(from_ms))
    }
    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<Option<T>> {
        get::<Option<String>>(self, col)?
            .map(|text| serde_json::from_str(&text).map_err(internal))
            .transpose()
    }
    fn opt_list(&self, col: &str) -> StoreResult<Option<Vec<String>>> {
        self.opt_json(col)
    }
}

//! A statement written once for both databases: SQL text with `?` placeholders and the
//! values to bind, each tagged with what it is rather than how a database stores it.
//!
//! The dialects decide the rest: PostgreSQL numbers the placeholders (`$1`, `$2`…) and
//! stores times as `timestamptz`, lists as `text[]` and JSON as `jsonb`; SQLite keeps `?`
//! and stores times as milliseconds since the epoch, lists and JSON as text.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One value to bind, by meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(Option<String>),
    /// An `INTEGER` column (32 bits on PostgreSQL; larger values are clamped).
    Int(Option<i64>),
    /// A `SMALLINT` code: a status or a trigger.
    Code(i16),
    /// A `BIGINT`, or a count such as a `LIMIT`.
    Big(i64),
    Flag(bool),
    Time(Option<DateTime<Utc>>),
    /// A JSON document, already serialised.
    Json(Option<String>),
    /// A list of strings (`text[]` on PostgreSQL, a JSON array on SQLite).
    List(Option<Vec<String>>),
}

/// Serialises a value for a JSON column.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// A statement under construction.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    /// Starts a statement; `text` may hold `?` placeholders, bound in order by [`bind`](Self::bind).
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            values: Vec::new(),
        }
    }

    /// Binds the next `?` of the text.
    pub fn bind(mut self, value: Value) -> Self {
        self.values.push(value);
        self
    }

    /// Appends text (which may hold placeholders of its own, bound after).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder and its value.
    pub fn push_bind(&mut self, value: Value) -> &mut Self {
        self.text.push('?');
        self.values.push(value);
        self
    }

    /// Appends `(?, ?, …)`, one placeholder per item.
    pub fn push_list(&mut self, items: impl IntoIterator<Item = Value>) -> &mut Self {
        self.text.push('(');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_bind(item);
        }
        self.text.push(')');
        self
    }

    /// Binds a value to a placeholder already in the text.
    pub fn add(&mut self, value: Value) -> &mut Self {
        self.values.push(value);
        self
    }

    /// Several statements as one text (`;` between them) with their values in order, for a
    /// database that runs several statements in one call; `None` when there are none.
    pub fn joined(statements: &[Sql]) -> Option<Sql> {
        let (first, rest) = statements.split_first()?;
        let mut together = first.clone();
        for sql in rest {
            together.text.push_str(";\n");
            together.text.push_str(&sql.text);
            together.values.extend(sql.values.iter().cloned());
        }
        Some(together)
    }

    /// The text with `?` placeholders.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The values, in placeholder order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The text with `$1, $2, …` placeholders, as PostgreSQL wants them. A `?` inside a
    /// quoted string or identifier is left alone.
    pub fn numbered_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        let mut quote: Option<char> = None;
        let mut n = 0;
        for c in self.text.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '\'' | '"') => quote = Some(c),
                (None, '?') => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                    continue;
                }
                _ => {}
            }
            out.push(c);
        }
        out
    }
}

/// Shorthands for values, so statements read as SQL rather than as enum variants.
pub mod v {
    use super::*;

    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(Some(s.into()))
    }
    pub fn opt_text(s: Option<impl Into<String>>) -> Value {
        Value::Text(s.map(Into::into))
    }
    pub fn int(n: impl Into<i64>) -> Value {
        Value::Int(Some(n.into()))
    }
    pub fn opt_int(n: Option<impl Into<i64>>) -> Value {
        Value::Int(n.map(Into::into))
    }
    pub fn big(n: impl Into<i64>) -> Value {
        Value::Big(n.into())
    }
    pub fn code(n: impl Into<i16>) -> Value {
        Value::Code(n.into())
    }
    pub fn flag(b: bool) -> Value {
        Value::Flag(b)
    }
    pub fn time(t: DateTime<Utc>) -> Value {
        Value::Time(Some(t))
    }
    pub fn opt_time(t: Option<DateTime<Utc>>) -> Value {
        Value::Time(t)
    }
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Value {
        Value::Json(Some(to_json(value)))
    }
    pub fn opt_json<T: Serialize>(value: Option<&T>) -> Value {
        Value::Json(value.map(to_json))
    }
    pub fn list(items: Option<&Vec<String>>) -> Value {
        Value::List(items.cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        let mut sql = Sql::new("SELECT '?', \"a?\" FROM t WHERE a = ? AND b IN ").bind(v::int(0));
        sql.push_list([v::int(1), v::int(2)]);
        assert_eq!(
            sql.numbered_text(),
            "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(sql.values().len(), 3);
    }
}

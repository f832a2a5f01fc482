//! Payload filters: an endpoint's condition on what a message carries, beside its
//! event-type and channel filters. The syntax is a small JSON document in the style of
//! MongoDB queries, which many developers already read:
//!
//! ```json
//! {"data.customer.tier": "gold",
//!  "data.amount": {"$gte": 100},
//!  "$or": [{"data.country": {"$in": ["DE", "FR"]}}, {"data.vip": true}]}
//! ```
//!
//! - A key that does not start with `$` is a path into the payload, its parts separated by
//!   dots; a part that is a number indexes an array. Its value is either the value the field
//!   must equal, or an object of operators that must all hold: `$eq`, `$ne`, `$in`, `$nin`,
//!   `$exists`, `$gt`, `$gte`, `$lt`, `$lte`, `$contains`.
//! - `$and` and `$or` take a list of filters, `$not` one filter.
//! - All the keys of one object must hold.
//!
//! Equality is JSON equality, except that numbers compare by value (`1` equals `1.0`).
//! The order operators compare two numbers or two strings (so ISO-8601 times compare as
//! times) and are false for anything else. `$contains` holds for an array with an element
//! equal to the value, or a string containing the given string. A field that is absent
//! fails every operator except `$ne`, `$nin` and `$exists: false`.
//!
//! Parsing checks the whole document against limits on depth, size and path length, so a
//! filter that was accepted is cheap to evaluate: evaluation allocates nothing.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// How deeply `$and`, `$or` and `$not` may nest.
pub const MAX_DEPTH: usize = 8;
/// Most field conditions in one filter (each operator of a field counts once).
pub const MAX_CONDITIONS: usize = 64;
/// Most values in one `$in` or `$nin` list.
pub const MAX_LIST: usize = 256;
/// Most parts in one path.
pub const MAX_PATH_PARTS: usize = 16;
/// The longest filter, as JSON text.
pub const MAX_FILTER_BYTES: usize = 16 * 1024;

/// A parsed, checked payload filter. It keeps the document it was parsed from, which is what
/// it shows and stores.
#[derive(Debug, Clone)]
pub struct PayloadFilter {
    source: Value,
    root: Condition,
}

impl PartialEq for PayloadFilter {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Why a document is not a valid filter, with where in it the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where, as a path of keys and indexes from the filter's root (`$or.1.data.amount`).
    pub at: String,
    pub problem: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "at `{}`: {}", self.at, self.problem)
        }
    }
}

impl std::error::Error for FilterError {}

#[derive(Debug, Clone)]
enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Field { path: Vec<Part>, test: Test },
}

#[derive(Debug, Clone)]
struct Part {
    key: String,
    /// The key read as an array index, when it is one.
    index: Option<usize>,
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Compare(Ordering, bool, Value),
    Contains(Value),
}

impl PayloadFilter {
    /// Parses and checks a filter document.
    pub fn parse(source: Value) -> Result<Self, FilterError> {
        let size = serde_json::to_string(&source).map_or(usize::MAX, |text| text.len());
        if size > MAX_FILTER_BYTES {
            return Err(FilterError {
                at: String::new(),
                problem: format!("is {size} bytes; at most {MAX_FILTER_BYTES} are allowed"),
            });
        }
        let mut parser = Parser {
            limited: true,
            ..Parser::default()
        };
        let root = parser.filter(&source, 0)?;
        Ok(Self { source, root })
    }

    /// Parses a filter that was checked when it was stored: its syntax is checked again,
    /// its size and depth are not, so that lowering a limit later never makes a stored
    /// endpoint unreadable (and its application unable to publish).
    fn parse_stored(source: Value) -> Result<Self, FilterError> {
        let root = Parser::default().filter(&source, 0)?;
        Ok(Self { source, root })
    }

    /// The document it was parsed from.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Whether `payload` passes the filter.
    pub fn matches(&self, payload: &Value) -> bool {
        self.root.matches(payload)
    }

    /// `Ok` when `payload` passes; else the first condition it fails, in words.
    pub fn explain(&self, payload: &Value) -> Result<(), String> {
        self.root.explain(payload)
    }
}

impl Serialize for PayloadFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PayloadFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = Value::deserialize(deserializer)?;
        Self::parse_stored(source).map_err(serde::de::Error::custom)
    }
}

/// Walks a document, counting conditions and remembering where it is for errors.
#[derive(Default)]
struct Parser {
    /// Whether the limits apply (to a filter given now, not to one stored before).
    limited: bool,
    conditions: usize,
    at: Vec<String>,
}

impl Parser {
    fn error(&self, problem: impl Into<String>) -> FilterError {
        FilterError {
            at: self.at.join("."),
            problem: problem.into(),
        }
    }

    /// A filter object: every key must hold.
    fn filter(&mut self, value: &Value, depth: usize) -> Result<Condition, FilterError> {
        if self.limited && depth > MAX_DEPTH {
            return Err(self.error(format!(
                "nests $and, $or and $not more than {MAX_DEPTH} deep"
            )));
        }
        let Value::Object(map) = value else {
            return Err(self.error("must be an object of conditions"));
        };
        if map.is_empty() {
            return Err(
                self.error("has no condition (to remove an endpoint's filter, set it to null)")
            );
        }
        let mut all = Vec::with_capacity(map.len());
        for (key, value) in map {
            self.at.push(key.clone());
            let condition = match key.as_str() {
                "$and" => Condition::All(self.list(value, depth)?),
                "$or" => Condition::Any(self.list(value, depth)?),
                "$not" => Condition::Not(Box::new(self.filter(value, depth + 1)?)),
                operator if operator.starts_with('$') => {
                    return Err(self.error(format!(
                        "`{operator}` is not a combinator (use $and, $or or $not, or a field path)"
                    )))
                }
                path => self.field(path, value)?,
            };
            self.at.pop();
            all.push(condition);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Condition::All(all)
        })
    }

    /// The filters of `$and` or `$or`.
    fn list(&mut self, value: &Value, depth: usize) -> Result<Vec<Condition>, FilterError> {
        let Value::Array(items) = value else {
            return Err(self.error("must be a list of filters"));
        };
        if items.is_empty() {
            return Err(self.error("must hold at least one filter"));
        }
        let mut conditions = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            self.at.push(i.to_string());
            conditions.push(self.filter(item, depth + 1)?);
            self.at.pop();
        }
        Ok(conditions)
    }

    /// A field's path and what its value must be.
    fn field(&mut self, path: &str, value: &Value) -> Result<Condition, FilterError> {
        let parts: Vec<Part> = path
            .split('.')
            .map(|key| Part {
                key: key.to_owned(),
                index: key.parse().ok(),
            })
            .collect();
        if parts.iter().any(|p| p.key.is_empty()) {
            return Err(self.error("a path's parts, separated by dots, must not be empty"));
        }
        if self.limited && parts.len() > MAX_PATH_PARTS {
            return Err(self.error(format!("a path has at most {MAX_PATH_PARTS} parts")));
        }
        let operators = match value {
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => map,
            // A plain value, or an object without operators: the field must equal it.
            _ => return self.condition(parts, Test::Eq(value.clone())),
        };
        if let Some(plain) = operators.keys().find(|k| !k.starts_with('$')) {
            return Err(self.error(format!(
                "mixes operators with the key `{plain}`; to compare with an object, use $eq"
            )));
        }
        let mut all = Vec::with_capacity(operators.len());
        for (operator, operand) in operators {
            self.at.push(operator.clone());
            let test = self.test(operator, operand)?;
            all.push(self.condition(parts.clone(), test)?);
            self.at.pop();
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Condition::All(all)
        })
    }

    fn condition(&mut self, path: Vec<Part>, test: Test) -> Result<Condition, FilterError> {
        self.conditions += 1;
        if self.limited && self.conditions > MAX_CONDITIONS {
            return Err(self.error(format!(
                "a filter holds at most {MAX_CONDITIONS} field conditions"
            )));
        }
        Ok(Condition::Field { path, test })
    }

    fn test(&self, operator: &str, operand: &Value) -> Result<Test, FilterError> {
        let compare = |order, or_equal| match operand {
            Value::Number(_) | Value::String(_) => {
                Ok(Test::Compare(order, or_equal, operand.clone()))
            }
            _ => Err(self.error("compares with a number or a string")),
        };
        Ok(match operator {
            "$eq" => Test::Eq(operand.clone()),
            "$ne" => Test::Ne(operand.clone()),
            "$in" => Test::In(self.values(operand)?),
            "$nin" => Test::Nin(self.values(operand)?),
            "$exists" => match operand {
                Value::Bool(wanted) => Test::Exists(*wanted),
                _ => return Err(self.error("takes true or false")),
            },
            "$gt" => compare(Ordering::Greater, false)?,
            "$gte" => compare(Ordering::Greater, true)?,
            "$lt" => compare(Ordering::Less, false)?,
            "$lte" => compare(Ordering::Less, true)?,
            "$contains" => Test::Contains(operand.clone()),
            other => {
                return Err(self.error(format!(
                    "`{other}` is not an operator (known: $eq, $ne, $in, $nin, $exists, \
                     $gt, $gte, $lt, $lte, $contains)"
                )))
            }
        })
    }

    fn values(&self, operand: &Value) -> Result<Vec<Value>, FilterError> {
        match operand {
            Value::Array(items) if !self.limited || items.len() <= MAX_LIST => Ok(items.clone()),
            Value::Array(_) => Err(self.error(format!("holds at most {MAX_LIST} values"))),
            _ => Err(self.error("takes a list of values")),
        }
    }
}

impl Condition {
    fn matches(&self, payload: &Value) -> bool {
        match self {
            Self::All(all) => all.iter().all(|c| c.matches(payload)),
            Self::Any(any) => any.iter().any(|c| c.matches(payload)),
            Self::Not(inner) => !inner.matches(payload),
            Self::Field { path, test } => test.holds(lookup(payload, path)),
        }
    }

    fn explain(&self, payload: &Value) -> Result<(), String> {
        if self.matches(payload) {
            return Ok(());
        }
        match self {
            Self::All(all) => all.iter().try_for_each(|c| c.explain(payload)),
            Self::Any(any) => {
                let reasons: Vec<String> = any
                    .iter()
                    .filter_map(|c| c.explain(payload).err())
                    .collect();
                Err(format!("no $or alternative holds ({})", reasons.join("; ")))
            }
            Self::Not(_) => Err("the condition under $not holds".into()),
            Self::Field { path, test } => {
                let name = path.iter().map(|p| p.key.as_str()).collect::<Vec<_>>();
                let found = match lookup(payload, path) {
                    Some(value) => format!("it is {value}"),
                    None => "it is absent".into(),
                };
                Err(format!("`{}` {}: {found}", name.join("."), test.describe()))
            }
        }
    }
}

/// The value at `path` in `payload`, if there is one.
fn lookup<'v>(payload: &'v Value, path: &[Part]) -> Option<&'v Value> {
    path.iter().try_fold(payload, |value, part| match value {
        Value::Object(map) => map.get(&part.key),
        Value::Array(items) => items.get(part.index?),
        _ => None,
    })
}

impl Test {
    fn holds(&self, field: Option<&Value>) -> bool {
        match (self, field) {
            (Self::Exists(wanted), field) => field.is_some() == *wanted,
            (Self::Ne(value), field) => !field.is_some_and(|f| same(f, value)),
            (Self::Nin(values), field) => !field.is_some_and(|f| values.iter().any(|v| same(f, v))),
            (_, None) => false,
            (Self::Eq(value), Some(f)) => same(f, value),
            (Self::In(values), Some(f)) => values.iter().any(|v| same(f, v)),
            (Self::Compare(wanted, or_equal, bound), Some(f)) => {
                order(f, bound).is_some_and(|o| o == *wanted || (*or_equal && o.is_eq()))
            }
            (Self::Contains(value), Some(Value::Array(items))) => {
                items.iter().any(|item| same(item, value))
            }
            (Self::Contains(Value::String(part)), Some(Value::String(text))) => {
                text.contains(part.as_str())
            }
            (Self::Contains(_), Some(_)) => false,
        }
    }

    fn describe(&self) -> String {
        let list = |values: &[Value]| Value::Array(values.to_vec()).to_string();
        match self {
            Self::Eq(v) => format!("must equal {v}"),
            Self::Ne(v) => format!("must not equal {v}"),
            Self::In(vs) => format!("must be one of {}", list(vs)),
            Self::Nin(vs) => format!("must be none of {}", list(vs)),
            Self::Exists(true) => "must exist".into(),
            Self::Exists(false) => "must be absent".into(),
            Self::Compare(order, or_equal, v) => {
                let word = match (order, or_equal) {
                    (Ordering::Greater, false) => ">",
                    (Ordering::Greater, true) => ">=",
                    (_, false) => "<",
                    (_, true) => "<=",
                };
                format!("must be {word} {v}")
            }
            Self::Contains(v) => format!("must contain {v}"),
        }
    }
}

/// JSON equality, with numbers compared by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => order(a, b) == Some(Ordering::Equal) || x == y,
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => same_objects(xs, ys),
        _ => a == b,
    }
}

fn same_objects(xs: &Map<String, Value>, ys: &Map<String, Value>) -> bool {
    xs.len() == ys.len()
        && xs
            .iter()
            .all(|(k, x)| ys.get(k).is_some_and(|y| same(x, y)))
}

/// How two numbers or two strings compare; `None` for anything else.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            // Integers compare exactly; beyond i64/u64 (or with fractions) as floats.
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Some(x.cmp(&y));
            }
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return Some(x.cmp(&y));
            }
            x.as_f64()?.partial_cmp(&y.as_f64()?)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

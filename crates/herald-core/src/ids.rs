//! Prefixed, time-sortable identifiers (`app_01J…`, `msg_01J…`).
//!
//! A ULID starts with its creation time in milliseconds, so sorting ids sorts by age;
//! list pagination relies on that.

use std::sync::{LazyLock, Mutex};

use ulid::{Generator, Ulid};

/// Within one millisecond, plain ULIDs are random; a generator makes each id greater than the
/// last, so ids made by this process sort in creation order. It is process-wide because
/// that order is: a per-caller generator could not keep it.
static GENERATOR: LazyLock<Mutex<Generator>> = LazyLock::new(|| Mutex::new(Generator::new()));

fn next_ulid() -> Ulid {
    let mut generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    // Fails only after 2^80 ids in one millisecond; a fresh random ULID is then fine.
    generator.generate().unwrap_or_else(|_| Ulid::new())
}

/// The kinds of object Herald names, each with its own id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Application,
    Endpoint,
    Message,
    Attempt,
    Delivery,
    Token,
    Task,
    Source,
    IngestLog,
}

impl IdKind {
    /// The prefix put before the ULID, Svix-style.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Application => "app_",
            IdKind::Endpoint => "ep_",
            IdKind::Message => "msg_",
            IdKind::Attempt => "atmpt_",
            IdKind::Delivery => "dlv_",
            IdKind::Token => "tok_",
            IdKind::Task => "qtask_",
            IdKind::Source => "src_",
            IdKind::IngestLog => "ilog_",
        }
    }

    /// A fresh id of this kind.
    pub fn new_id(self) -> String {
        format!("{}{}", self.prefix(), next_ulid())
    }

    /// When an id of this kind was made, read from its ULID.
    pub fn created_at(self, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let ulid = Ulid::from_string(id.strip_prefix(self.prefix())?).ok()?;
        chrono::DateTime::from_timestamp_millis(i64::try_from(ulid.timestamp_ms()).ok()?)
    }

    /// Whether `s` looks like an id of this kind (as opposed to a user's `uid`).
    pub fn is_id(self, s: &str) -> bool {
        s.strip_prefix(self.prefix())
            .is_some_and(|rest| Ulid::from_string(rest).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_are_recognised() {
        let id = IdKind::Message.new_id();
        assert!(id.starts_with("msg_"));
        assert!(IdKind::Message.is_id(&id));
        assert!(!IdKind::Application.is_id(&id));
        assert!(!IdKind::Message.is_id("msg_my-own-uid"));
    }

    #[test]
    fn ids_sort_in_creation_order_even_within_a_millisecond() {
        let ids: Vec<_> = (0..1000).map(|_| IdKind::Application.new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}

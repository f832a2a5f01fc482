//! Prefixed, time-sortable identifiers (`app_01J…`, `msg_01J…`).
//!
//! A ULID starts with its creation time in milliseconds, so sorting ids sorts by age;
//! list pagination relies on that.

use ulid::Ulid;

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
        }
    }

    /// A fresh id of this kind.
    pub fn new_id(self) -> String {
        format!("{}{}", self.prefix(), Ulid::new())
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
    fn later_ids_sort_after_earlier_ones() {
        let first = IdKind::Application.new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = IdKind::Application.new_id();
        assert!(first < second);
    }
}

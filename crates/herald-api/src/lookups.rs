//! A short memory of what every publish looks up before it writes: the caller's token, the
//! application, and the event type (for its schema); and of the inbound source every
//! request to a receive URL names. At thousands of publishes a second
//! those three reads cost more than the publish's own write; remembered for
//! [`REMEMBER_FOR`], they are read about once a second each.
//!
//! What this node changes it forgets at once. A change made elsewhere (another node, the
//! `herald token revoke` command) is seen within [`REMEMBER_FOR`]; a revoked token may be
//! accepted that long after its revocation, and ARCHITECTURE.md says so.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_core::model::{Application, EventType, Source, Token};

/// How long a lookup is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(1);
/// Entries a map may hold; past it, expired ones go, and if none have, all of them.
const CAPACITY: usize = 10_000;

/// The remembered lookups of one node.
#[derive(Debug, Default)]
pub struct Lookups {
    /// Tokens by hash. Only found tokens: a guess must not fill the map.
    pub tokens: Remembered<String, Token>,
    /// Applications by the id or uid they were asked for.
    pub apps: Remembered<String, Application>,
    /// Event types by name; `None` for a name with no event type.
    pub event_types: Remembered<String, Option<EventType>>,
    /// Inbound sources by the id in their receive URL. Only found sources.
    pub sources: Remembered<String, Source>,
}

/// A map whose entries are forgotten [`REMEMBER_FOR`] after they were stored.
#[derive(Debug)]
pub struct Remembered<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Counts [`forget`](Self::forget)s, so that a value read from the store before one
    /// is not stored after it (a token read just before its revocation).
    generation: AtomicU64,
}

/// When a lookup began: [`Remembered::put`] stores its answer only if nothing was
/// forgotten since.
#[derive(Debug, Clone, Copy)]
pub struct Stamp(u64);

impl<K, V> Default for Remembered<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            generation: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Remembered<K, V> {
    /// The value stored for `key`, unless it is older than [`REMEMBER_FOR`].
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (stored, value) = entries.get(key)?;
        (stored.elapsed() < REMEMBER_FOR).then(|| value.clone())
    }

    /// Taken before reading the store for a value that will be [`put`](Self::put).
    pub fn stamp(&self) -> Stamp {
        Stamp(self.generation.load(Ordering::SeqCst))
    }

    /// Stores `value`, read from the store after `stamp` was taken, unless something was
    /// forgotten since: the value may be older than that.
    pub fn put(&self, key: K, value: V, stamp: Stamp) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) != stamp.0 {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.retain(|_, (stored, _)| stored.elapsed() < REMEMBER_FOR);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets everything: something of this kind changed.
    pub fn forget(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_forgotten_when_told_and_when_old() {
        let map = Remembered::<String, u32>::default();
        map.put("a".into(), 1, map.stamp());
        assert_eq!(map.get(&"a".into()), Some(1));
        map.forget();
        assert_eq!(map.get(&"a".into()), None);

        map.put("b".into(), 2, map.stamp());
        map.entries.lock().unwrap().get_mut("b").unwrap().0 -= REMEMBER_FOR;
        assert_eq!(map.get(&"b".into()), None, "older than REMEMBER_FOR");
    }

    #[test]
    fn a_value_read_before_a_forget_is_not_stored_after_it() {
        let map = Remembered::<String, u32>::default();
        let stamp = map.stamp();
        // … the store is read; meanwhile the value changes here and is forgotten …
        map.forget();
        map.put("token".into(), 1, stamp);
        assert_eq!(map.get(&"token".into()), None);
    }

    #[test]
    fn a_full_map_makes_room() {
        let map = Remembered::<usize, usize>::default();
        for i in 0..CAPACITY + 5 {
            map.put(i, i, map.stamp());
        }
        let len = map.entries.lock().unwrap().len();
        assert!(len <= CAPACITY, "held {len}");
        assert_eq!(map.get(&(CAPACITY + 4)), Some(CAPACITY + 4));
    }
}

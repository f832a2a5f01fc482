//! PATCH bodies distinguish a field left out (keep it) from `null` (clear it).

use serde::{Deserialize, Deserializer};

/// Deserializes a present field into `Some(value)` or `Some(None)` for `null`; together with
/// `#[serde(default)]` an absent field stays `None`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Applies a tri-state patch to `target`.
pub fn apply<T>(target: &mut Option<T>, patch: Option<Option<T>>) {
    if let Some(value) = patch {
        *target = value;
    }
}

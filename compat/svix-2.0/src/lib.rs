//! Nothing here: see `tests/old_sdk.rs`.

//! Svix's `throttleRate`, as applications and endpoints share it.

use herald_core::validation::{FieldError, Validator};

/// A stored rate limit as Svix's 16-bit `throttleRate`.
pub fn rate_out(rate: Option<u32>) -> Option<u16> {
    rate.map(|r| u16::try_from(r).unwrap_or(u16::MAX))
}

/// A rate limit of 0 would stop all deliveries: refused.
pub fn check_rate(v: &mut Validator, rate: Option<u16>) {
    if rate == Some(0) {
        v.check(Err(FieldError::body(
            "throttleRate",
            "must be at least 1",
            "value_error.number",
        )));
    }
}

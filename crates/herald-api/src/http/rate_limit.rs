//! The API's rate limit, per token: a token bucket (GCRA) per token id, so one noisy
//! client (a leaked portal token, a runaway script) cannot starve the others.
//!
//! Only authenticated requests are counted, keyed by the id of a token that exists, so
//! the limiter's memory is bounded by the number of tokens, not by what clients send.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Past this many remembered tokens, the state of tokens that are idle again is dropped.
const MEMORY: usize = 10_000;

/// Requests allowed per token.
pub struct TokenRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl TokenRateLimit {
    /// `per_second` requests a second on average, bursts up to `burst`; 0 turns it off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// A quota of its own, for tests that need a limit measured in minutes.
    pub fn with_quota(quota: Quota) -> Self {
        Self {
            limiter: Some(RateLimiter::keyed(quota)),
        }
    }

    /// Counts one request of `token_id`, or says how long it must wait.
    pub fn check(&self, token_id: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > MEMORY {
            limiter.retain_recent();
        }
        limiter
            .check_key(&token_id.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::RateLimited(wait.max(Duration::from_millis(1)))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_has_its_own_bucket() {
        let limit = TokenRateLimit::with_quota(
            Quota::per_minute(NonZeroU32::new(1).unwrap()).allow_burst(NonZeroU32::new(2).unwrap()),
        );
        assert!(limit.check("tok_a").is_ok());
        assert!(limit.check("tok_a").is_ok());
        let Err(ApiError::RateLimited(wait)) = limit.check("tok_a") else {
            panic!("the third request in a minute is refused");
        };
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(
            limit.check("tok_b").is_ok(),
            "another token is not affected"
        );
    }

    #[test]
    fn zero_turns_it_off() {
        let limit = TokenRateLimit::new(0, 0);
        for _ in 0..10_000 {
            assert!(limit.check("tok").is_ok());
        }
    }
}

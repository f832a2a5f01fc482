//! The API's rate limit, per token: a token bucket (GCRA) per token id, so one noisy
//! client (a leaked portal token, a runaway script) cannot starve the others.
//!
//! Only authenticated requests are counted, keyed by the id of a token that exists, so
//! the limiter's memory is bounded by the number of tokens, not by what clients send.
//!
//! The limit is the cluster's: with several nodes sharing a database, each allows its
//! share (the rate and burst divided by the live nodes, counted by `Store::heartbeat`), so
//! a load balancer that spreads a client's requests keeps it to the limit in all.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Past this many remembered tokens, the state of tokens that are idle again is dropped.
const MEMORY: usize = 10_000;

/// Requests allowed per token.
pub struct TokenRateLimit {
    /// The cluster's limit: requests a second, and the burst (0: off).
    per_second: u32,
    burst: u32,
    /// How many nodes share it.
    nodes: AtomicU32,
    limiter: RwLock<Option<Arc<DefaultKeyedRateLimiter<String>>>>,
}

impl TokenRateLimit {
    /// `per_second` requests a second on average, bursts up to `burst`; 0 turns it off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second,
            burst,
            nodes: AtomicU32::new(1),
            limiter: RwLock::new(limiter_for(per_second, burst, 1)),
        }
    }

    /// A quota of its own, for tests that need a limit measured in minutes.
    pub fn with_quota(quota: Quota) -> Self {
        Self {
            per_second: 0,
            burst: 0,
            nodes: AtomicU32::new(1),
            limiter: RwLock::new(Some(Arc::new(RateLimiter::keyed(quota)))),
        }
    }

    /// How many nodes share the limit, as last told.
    pub fn nodes(&self) -> u32 {
        self.nodes.load(Ordering::Relaxed)
    }

    /// Shares the limit among `nodes` (at least 1). A new share starts with full buckets:
    /// the count changes rarely (a node starts or stops), and erring on allowing beats
    /// refusing clients for what another node's start did.
    pub fn share_among(&self, nodes: u32) {
        let nodes = nodes.max(1);
        if self.nodes.swap(nodes, Ordering::Relaxed) == nodes || self.per_second == 0 {
            return;
        }
        let limiter = limiter_for(self.per_second, self.burst, nodes);
        *self.limiter.write().unwrap_or_else(|e| e.into_inner()) = limiter;
    }

    /// Counts one request of `token_id`, or says how long it must wait.
    pub fn check(&self, token_id: &str) -> Result<(), ApiError> {
        let limiter = self
            .limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(limiter) = limiter else {
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

/// One node's share of the cluster's limit: the rate divided by `nodes` exactly (one
/// request every `nodes / per_second` seconds, so that the shares add up to the limit),
/// and the burst divided, rounded up (a node allows at least one request at once).
fn limiter_for(
    per_second: u32,
    burst: u32,
    nodes: u32,
) -> Option<Arc<DefaultKeyedRateLimiter<String>>> {
    if per_second == 0 {
        return None;
    }
    let period = Duration::from_secs_f64(f64::from(nodes) / f64::from(per_second));
    let burst = NonZeroU32::new(burst.max(per_second).div_ceil(nodes)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)?.allow_burst(burst);
    Some(Arc::new(RateLimiter::keyed(quota)))
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
    fn nodes_share_the_limit() {
        let limit = TokenRateLimit::new(1, 30);
        let allowed =
            |limit: &TokenRateLimit| (0..40).filter(|_| limit.check("tok").is_ok()).count();
        assert_eq!(allowed(&limit), 30, "alone, the whole burst");
        limit.share_among(3);
        assert_eq!(limit.nodes(), 3);
        assert_eq!(allowed(&limit), 10, "a third of it");
        limit.share_among(0);
        assert_eq!(limit.nodes(), 1, "never fewer than this node");
    }

    #[test]
    fn zero_turns_it_off() {
        let limit = TokenRateLimit::new(0, 0);
        for _ in 0..10_000 {
            assert!(limit.check("tok").is_ok());
        }
    }
}

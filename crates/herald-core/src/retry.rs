//! When to try again after a failed attempt.

use std::time::Duration;

use rand::Rng;

/// The retry schedule of deliveries: the delays between attempts, with jitter, and how far a
/// receiver's `Retry-After` may push the next attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The delay before the 2nd, 3rd… attempt. The first attempt is immediate, so a delivery
    /// gets `schedule.len() + 1` attempts in all.
    pub schedule: Vec<Duration>,
    /// Each delay is moved by a random fraction up to this (0.2 = ±20 %), so that endpoints
    /// coming back up are not hit by every retry at once.
    pub jitter: f64,
    /// The most a `Retry-After` header can delay the next attempt.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Svix's schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    fn default() -> Self {
        let (s, m, h) = (1, 60, 3600);
        Self {
            schedule: [5 * s, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(h),
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts_made` failed attempts, or `None`
    /// when the schedule is exhausted. `retry_after` (from the receiver) lengthens the delay,
    /// clamped to `max_retry_after`; it never shortens it.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        let base = *self.schedule.get(index)?;
        let jittered = self.apply_jitter(base, rng);
        let asked = retry_after.map(|d| d.min(self.max_retry_after));
        Some(asked.map_or(jittered, |asked| asked.max(jittered)))
    }

    fn apply_jitter(&self, base: Duration, rng: &mut impl Rng) -> Duration {
        if self.jitter <= 0.0 || base.is_zero() {
            return base;
        }
        let factor = 1.0 + rng.gen_range(-self.jitter..=self.jitter);
        base.mul_f64(factor.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    fn no_jitter() -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn default_schedule_is_svixs() {
        let policy = no_jitter();
        let mut rng = StepRng::new(0, 1);
        let delays: Vec<_> = (1..=8)
            .map(|n| policy.next_delay(n, None, &mut rng).map(|d| d.as_secs()))
            .collect();
        let expected = [5, 300, 1800, 7200, 18000, 36000, 36000].map(Some);
        assert_eq!(&delays[..7], &expected);
        assert_eq!(delays[7], None, "8 attempts in all");
        assert_eq!(policy.next_delay(0, None, &mut rng), None);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let policy = RetryPolicy::default();
        let mut rng = rand::thread_rng();
        for _ in 0..1000 {
            let d = policy.next_delay(2, None, &mut rng).unwrap().as_secs_f64();
            assert!((240.0..=360.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_lengthens_but_is_clamped_and_never_shortens() {
        let policy = no_jitter();
        let mut rng = StepRng::new(0, 1);
        let longer = policy.next_delay(1, Some(Duration::from_secs(60)), &mut rng);
        assert_eq!(longer, Some(Duration::from_secs(60)));
        let shorter = policy.next_delay(2, Some(Duration::from_secs(1)), &mut rng);
        assert_eq!(shorter, Some(Duration::from_secs(300)));
        let huge = policy.next_delay(1, Some(Duration::from_secs(999_999)), &mut rng);
        assert_eq!(huge, Some(Duration::from_secs(3600)));
    }
}

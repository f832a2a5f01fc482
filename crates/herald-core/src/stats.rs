//! Delivery statistics. Every recorded attempt is added, in the same transaction, to
//! rollups per application, endpoint, event type, status code and minute (and hour, and
//! day), so a query reads a few rows per time bucket however many attempts history holds. Latency is
//! kept as a histogram with fixed bounds, from which percentiles are estimated.

use chrono::{DateTime, TimeDelta, Utc};

/// Upper bounds (ms, inclusive) of the latency histogram's buckets; one more bucket holds
/// everything slower.
pub const LATENCY_BOUNDS_MS: [i64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
];
/// How many latency buckets a rollup row has.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The latency bucket a duration falls in.
pub fn latency_bucket(duration_ms: i64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| duration_ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// Attempt counts and latencies of some attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub attempts: u64,
    pub succeeded: u64,
    pub duration_ms: u64,
    pub latency: [u64; LATENCY_BUCKETS],
}

impl Counts {
    /// Counts one attempt.
    pub fn add_attempt(&mut self, succeeded: bool, duration_ms: i64) {
        self.attempts += 1;
        self.succeeded += u64::from(succeeded);
        self.duration_ms += duration_ms.max(0) as u64;
        self.latency[latency_bucket(duration_ms)] += 1;
    }

    pub fn merge(&mut self, other: &Counts) {
        self.attempts += other.attempts;
        self.succeeded += other.succeeded;
        self.duration_ms += other.duration_ms;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency.iter()) {
            *mine += theirs;
        }
    }

    pub fn failed(&self) -> u64 {
        self.attempts - self.succeeded.min(self.attempts)
    }

    /// Succeeded attempts over all, in percent; `None` without attempts.
    pub fn success_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| 100.0 * self.succeeded as f64 / self.attempts as f64)
    }

    /// The `q`-quantile (0..=1) of latency in ms, estimated by interpolating inside the
    /// histogram bucket it falls in; `None` without attempts.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0.0;
        for (i, n) in self.latency.iter().enumerate() {
            let n = *n as f64;
            if n > 0.0 && below + n >= rank {
                let low = if i == 0 {
                    0.0
                } else {
                    LATENCY_BOUNDS_MS[i - 1] as f64
                };
                // The open last bucket is drawn as twice its lower bound wide.
                let high = LATENCY_BOUNDS_MS.get(i).map_or(low * 2.0, |b| *b as f64);
                return Some(low + (high - low) * (rank - below) / n);
            }
            below += n;
        }
        None
    }
}

/// What a statistics query may group by, beside time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Endpoint,
    EventType,
    StatusCode,
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Endpoint => "endpoint",
            Dimension::EventType => "event_type",
            Dimension::StatusCode => "status_code",
        }
    }
}

/// The resolutions rollups are kept at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    /// The time one rollup row spans.
    pub fn span(self) -> TimeDelta {
        match self {
            Resolution::Minute => TimeDelta::minutes(1),
            Resolution::Hour => TimeDelta::hours(1),
            Resolution::Day => TimeDelta::days(1),
        }
    }

    /// The coarsest resolution whose rows fit whole in buckets of `step` (buckets start
    /// at multiples of `step` since the epoch): the one with the fewest rows to read.
    pub fn for_step(step: TimeDelta) -> Self {
        let seconds = step.num_seconds();
        Self::ALL
            .into_iter()
            .rev()
            .find(|r| seconds % r.span().num_seconds() == 0)
            .unwrap_or(Resolution::Minute)
    }
}

/// Per resolution, the time before which rollup rows are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupCutoffs {
    pub minute: DateTime<Utc>,
    pub hour: DateTime<Utc>,
    pub day: DateTime<Utc>,
}

impl RollupCutoffs {
    pub fn of(&self, resolution: Resolution) -> DateTime<Utc> {
        match resolution {
            Resolution::Minute => self.minute,
            Resolution::Hour => self.hour,
            Resolution::Day => self.day,
        }
    }
}

/// Which rollups to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub app_id: String,
    pub endpoint_id: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub group_by: Option<Dimension>,
    /// The rollups to read: the coarsest that fits the buckets asked for.
    pub resolution: Resolution,
}

/// The counts of one rollup bucket (of the table read), for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    pub bucket: DateTime<Utc>,
    /// The group's value (endpoint id, event type, status code); `None` when ungrouped.
    pub group: Option<String>,
    pub counts: Counts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_bucket_their_bound_names() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(5), 0);
        assert_eq!(latency_bucket(6), 1);
        assert_eq!(latency_bucket(30_000), 11);
        assert_eq!(latency_bucket(90_000), 12);
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let mut counts = Counts::default();
        for _ in 0..90 {
            counts.add_attempt(true, 20); // 10 < d <= 25
        }
        for _ in 0..10 {
            counts.add_attempt(false, 400); // 250 < d <= 500
        }
        assert_eq!(counts.success_rate(), Some(90.0));
        assert_eq!(counts.failed(), 10);
        let p50 = counts.latency_quantile(0.5).unwrap();
        assert!((10.0..=25.0).contains(&p50), "{p50}");
        let p95 = counts.latency_quantile(0.95).unwrap();
        assert!((250.0..=500.0).contains(&p95), "{p95}");
        assert_eq!(Counts::default().latency_quantile(0.5), None);
    }

    #[test]
    fn the_coarsest_fitting_rollup_serves_a_step() {
        assert_eq!(
            Resolution::for_step(TimeDelta::minutes(30)),
            Resolution::Minute
        );
        assert_eq!(Resolution::for_step(TimeDelta::hours(6)), Resolution::Hour);
        assert_eq!(Resolution::for_step(TimeDelta::days(1)), Resolution::Day);
        assert_eq!(
            Resolution::for_step(TimeDelta::seconds(90)),
            Resolution::Minute
        );
    }

    #[test]
    fn merging_adds_every_count() {
        let mut a = Counts::default();
        a.add_attempt(true, 3);
        let mut b = Counts::default();
        b.add_attempt(false, 7_000);
        a.merge(&b);
        assert_eq!((a.attempts, a.succeeded, a.duration_ms), (2, 1, 7_003));
        assert_eq!(a.latency[0] + a.latency[10], 2);
    }
}

//! `RetryPolicy::next_delay` with a receiver's arbitrary `Retry-After` (the header is parsed
//! in herald-server, privately; any `u64` seconds can come out of it) and any policy the
//! configuration accepts (jitter in [0, 1), schedule entries of up to ~136 years).
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use chrono::{TimeZone, Utc};
use herald_core::retry::RetryPolicy;
use libfuzzer_sys::fuzz_target;
use rand::rngs::mock::StepRng;

#[derive(Debug, Arbitrary)]
struct Input {
    schedule: Vec<(u32, u32)>,
    jitter: f64,
    max_retry_after: (u32, u32),
    attempts_made: u32,
    retry_after: Option<(u64, u32)>,
    rng: (u64, u64),
}

fuzz_target!(|input: Input| {
    let policy = RetryPolicy {
        schedule: input
            .schedule
            .iter()
            .map(|&(s, n)| duration(s.into(), n))
            .collect(),
        // The config refuses anything else.
        jitter: if (0.0..1.0).contains(&input.jitter) {
            input.jitter
        } else {
            0.2
        },
        max_retry_after: duration(input.max_retry_after.0.into(), input.max_retry_after.1),
    };
    let retry_after = input.retry_after.map(|(s, n)| duration(s, n));
    let rng = StepRng::new(input.rng.0, input.rng.1);

    let delay = policy.next_delay(input.attempts_made, retry_after, &mut rng.clone());
    let in_schedule = (1..=policy.schedule.len()).contains(&(input.attempts_made as usize));
    assert_eq!(
        delay.is_some(),
        in_schedule,
        "attempts {}",
        input.attempts_made
    );
    let Some(delay) = delay else { return };

    // The same random draw without Retry-After: the schedule's own (jittered) delay.
    let own = policy
        .next_delay(input.attempts_made, None, &mut rng.clone())
        .expect("in schedule");
    let base = policy.schedule[input.attempts_made as usize - 1].as_secs_f64();
    let slack = 1e-9 * base + 1e-6;
    let own_secs = own.as_secs_f64();
    assert!(
        own_secs >= base * (1.0 - policy.jitter) - slack,
        "{own:?} below jitter"
    );
    assert!(
        own_secs <= base * (1.0 + policy.jitter) + slack,
        "{own:?} above jitter"
    );

    // Retry-After lengthens, never shortens, and is clamped.
    let asked = retry_after.map(|d| d.min(policy.max_retry_after));
    assert_eq!(delay, asked.map_or(own, |a| a.max(own)));

    // The dispatcher adds the delay to "now" in chrono: that must not overflow.
    let now = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    let step = chrono::TimeDelta::from_std(delay).expect("delay fits chrono");
    assert!(now.checked_add_signed(step).is_some());
});

fn duration(secs: u64, nanos: u32) -> Duration {
    Duration::new(secs, nanos % 1_000_000_000)
}

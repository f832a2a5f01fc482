//! Deliveries that fall due while their endpoint's circuit is open (published since it
//! opened) stay in the queue until the probe, since the claimer leaves that endpoint alone.
//! Left as they are, they would show a `nextAttempt` in the past; moved to the probe's time,
//! they say when they will really be tried. (Those waiting when the circuit opened were
//! moved then, by the attempt that opened it.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::Context;

/// The least time between two moves: new work can arrive thousands of times a second, and
/// one statement per open circuit each time would cost more than a stale time for a moment.
/// It limits work, so it is real time, not the clock the deliveries are scheduled by.
const HOLD_INTERVAL: Duration = Duration::from_secs(1);

/// Whether work arrived that may have fallen due behind an open circuit, and when such
/// work was last moved.
#[derive(Debug, Default)]
pub(super) struct OpenCircuitHold {
    work_arrived: bool,
    last_moved: Option<Instant>,
}

impl OpenCircuitHold {
    /// New work was signalled, or claimed: some of it may be for an open circuit.
    pub fn work_arrived(&mut self) {
        self.work_arrived = true;
    }

    /// When to move what waits behind open circuits: at once if it was last done more than
    /// [`HOLD_INTERVAL`] ago, else that long after; `None` when there is nothing to do.
    pub fn due_at(&self, ctx: &Context, now: DateTime<Utc>) -> Option<Instant> {
        if !self.work_arrived || ctx.breakers.next_probe_at(now).is_none() {
            return None;
        }
        let soonest = Instant::now();
        Some(
            self.last_moved
                .map_or(soonest, |last| (last + HOLD_INTERVAL).max(soonest)),
        )
    }

    /// Moves the due deliveries of every open circuit to its probe's time, if it is time.
    pub async fn run(&mut self, ctx: &Context, now: DateTime<Utc>) {
        if self.due_at(ctx, now).is_none_or(|at| at > Instant::now()) {
            return;
        }
        for (endpoint, until) in ctx.breakers.open(now) {
            ctx.hold_back(&endpoint, until).await;
        }
        self.work_arrived = false;
        self.last_moved = Some(Instant::now());
    }
}

//! The dispatcher: claims due deliveries from the store, runs each attempt in its
//! endpoint's lane, and records the outcome with the delivery's next state.
//!
//! One loop claims; attempts run in a bounded set of tasks (at most `max_in_flight`). The
//! loop sleeps until new work is signalled, an attempt frees room, or the next delivery
//! falls due, whichever comes first; a periodic sweep is only a safety net.

mod attempt;
mod lanes;

use std::sync::Arc;
use std::time::Duration;

use herald_core::destination::Destination;
use herald_core::retry::RetryPolicy;
use herald_core::store::ClaimRequest;
use herald_core::{Clock, Store};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::lanes::Lanes;

/// Most deliveries claimed in one query.
const CLAIM_BATCH: usize = 100;
/// The longest the loop sleeps without a signal.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Wait after the store failed before claiming again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub max_in_flight: usize,
    pub endpoint_concurrency: usize,
    /// The total time allowed for one attempt.
    pub attempt_timeout: Duration,
    /// How long in-flight attempts may finish after shutdown begins.
    pub shutdown_grace: Duration,
}

impl DispatchSettings {
    /// Deliveries a lane may hold before its endpoint is skipped by the claimer.
    fn lane_depth(&self) -> usize {
        self.endpoint_concurrency * 2
    }

    /// A lease outlives the worst wait of a claimed delivery: a full lane plus one batch,
    /// worked through `endpoint_concurrency` at a time, each attempt up to its timeout.
    /// Only then may another dispatcher take it over, so a live one is never raced.
    pub fn lease(&self) -> Duration {
        let waiting = self.lane_depth() + CLAIM_BATCH;
        let rounds = waiting.div_ceil(self.endpoint_concurrency) as u32 + 1;
        self.attempt_timeout * rounds + Duration::from_secs(30)
    }
}

/// Everything an attempt task needs.
pub(crate) struct Context {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub destination: Arc<dyn Destination>,
    pub policy: RetryPolicy,
    /// Counts attempts recorded, for whoever watches progress (tests, metrics).
    pub recorded: watch::Sender<u64>,
}

/// The delivery loop of one Herald process.
pub struct Dispatcher {
    ctx: Arc<Context>,
    settings: DispatchSettings,
}

impl Dispatcher {
    /// A dispatcher delivering through `destination`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        destination: Arc<dyn Destination>,
        policy: RetryPolicy,
        settings: DispatchSettings,
    ) -> Self {
        let ctx = Arc::new(Context {
            store,
            clock,
            destination,
            policy,
            recorded: watch::Sender::new(0),
        });
        Self { ctx, settings }
    }

    /// The number of attempts recorded so far, updated as they are.
    pub fn recorded_attempts(&self) -> watch::Receiver<u64> {
        self.ctx.recorded.subscribe()
    }

    /// Runs until `shutdown` is cancelled, then lets attempts in flight finish within the
    /// grace period; waiting deliveries are given back to the queue.
    pub async fn run(self, shutdown: CancellationToken) {
        let lanes = Lanes::new(
            self.settings.endpoint_concurrency,
            self.settings.lane_depth(),
        );
        let lease = chrono::Duration::from_std(self.settings.lease())
            .unwrap_or(chrono::Duration::minutes(5));
        let work = self.ctx.store.work_signal();
        let mut tasks = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let room = self.settings.max_in_flight.saturating_sub(tasks.len());
            let skip = lanes.full();
            let constrained = room == 0 || !skip.is_empty();
            if room > 0 {
                let now = self.ctx.clock.now();
                let limit = room.min(CLAIM_BATCH);
                let request = ClaimRequest {
                    now,
                    lease_until: now + lease,
                    limit: limit as u32,
                    skip_endpoints: skip,
                };
                match self.ctx.store.claim_due(&request).await {
                    Ok(claimed) => {
                        let count = claimed.len();
                        for delivery in claimed {
                            let ticket = lanes.enter(&delivery.endpoint.id);
                            tasks.spawn(attempt::run(
                                self.ctx.clone(),
                                delivery,
                                ticket,
                                shutdown.clone(),
                            ));
                        }
                        if count == limit {
                            continue; // probably more due right now
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claiming deliveries failed");
                        tokio::select! {
                            _ = tokio::time::sleep(ERROR_BACKOFF) => continue,
                            _ = shutdown.cancelled() => break,
                        }
                    }
                }
            }
            let wake_at = self.next_wake().await;
            tokio::select! {
                _ = work.notified() => {}
                _ = tasks.join_next(), if constrained && !tasks.is_empty() => {}
                _ = self.ctx.clock.sleep_until(wake_at) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        self.drain(tasks).await;
    }

    /// When to look for due work again without a signal.
    async fn next_wake(&self) -> chrono::DateTime<chrono::Utc> {
        let now = self.ctx.clock.now();
        let sweep = now + chrono::Duration::from_std(SWEEP_INTERVAL).unwrap_or_default();
        match self.ctx.store.next_due_at().await {
            Ok(Some(due)) if due > now => due.min(sweep),
            _ => sweep,
        }
    }

    async fn drain(&self, mut tasks: JoinSet<()>) {
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, grace = ?self.settings.shutdown_grace, "waiting for attempts in flight");
        }
        let finished = tokio::time::timeout(self.settings.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "shutdown grace ended; unfinished deliveries are retried after their lease"
            );
            tasks.abort_all();
        }
    }
}

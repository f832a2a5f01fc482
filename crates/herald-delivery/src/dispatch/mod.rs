//! The dispatcher: claims due deliveries from the store, runs each attempt in its
//! endpoint's lane, and records the outcome with the delivery's next state.
//!
//! One loop claims; attempts run in a bounded set of tasks (at most `max_in_flight`). The
//! loop sleeps until new work is signalled, an attempt frees room, or the next delivery
//! falls due, whichever comes first; a periodic sweep is only a safety net. Deliveries
//! this node's publishes make come straight to the loop when it has room for them
//! (`intake`), already leased, and skip the claim.

pub(crate) mod attempt;
mod breaker;
mod hold;
mod intake;
mod lanes;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::destination::Destination;
use herald_core::listen::stale_before;
use herald_core::metrics::Metrics;
use herald_core::retry::RetryPolicy;
use herald_core::store::{CircuitNews, ClaimRequest, ClaimedDelivery};
use herald_core::{Clock, Store};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use self::breaker::BreakerSettings;
use self::breaker::{Adopted, Breakers};
use self::hold::OpenCircuitHold;
use self::intake::{Handed, Intake};
use self::lanes::{LaneTicket, Lanes};
use crate::destinations::listen::ListenSessions;
use crate::operational::Operational;

/// Most deliveries claimed in one query.
const CLAIM_BATCH: usize = 100;
/// The longest the loop sleeps without a signal.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How often the loop reads what other nodes said: which `herald listen` sessions they hold
/// and which circuits they opened.
const CLUSTER_REFRESH: Duration = Duration::from_secs(2);
/// Wait after the store failed, or when due rows could not be claimed, before trying again.
const BACKOFF: Duration = Duration::from_millis(200);
/// Rounds in a row that see due rows yet claim none before the loop pauses: a single one
/// is usually a publish committed between the claim and the look at what is due.
const FRUITLESS_ROUNDS: u32 = 4;

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub max_in_flight: usize,
    pub endpoint_concurrency: usize,
    /// The total time allowed for one attempt.
    pub attempt_timeout: Duration,
    /// How long in-flight attempts may finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// Disable an endpoint that answers `410 Gone`.
    pub disable_on_gone: bool,
    /// Disable an endpoint whose every attempt has failed for this long.
    pub disable_after: Option<Duration>,
    pub breaker: BreakerSettings,
    /// Where attempts are counted.
    pub metrics: Metrics,
    /// The `herald listen` sessions attached to this node, and its name among the nodes
    /// sharing the store: sessions other nodes hold are theirs to deliver to.
    pub listen_sessions: ListenSessions,
}

impl DispatchSettings {
    /// Deliveries a lane may hold before its endpoint is skipped by the claimer. One claim
    /// adds at most this many to a lane that is not full, so a lane never holds more than
    /// twice this.
    fn lane_depth(&self) -> usize {
        self.endpoint_concurrency * 2
    }

    /// A lease outlives the worst wait of a claimed delivery: a lane at its most
    /// (`2 × lane_depth`), worked through `endpoint_concurrency` at a time, each attempt up to
    /// its timeout, plus the attempt's own, plus one more timeout of slack for recording.
    /// Only then may another dispatcher take a delivery over, so a live one is never raced.
    pub fn lease(&self) -> Duration {
        let rounds = (2 * self.lane_depth()).div_ceil(self.endpoint_concurrency) as u32 + 2;
        self.attempt_timeout * rounds
    }
}

/// Everything an attempt task needs.
pub(crate) struct Context {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub destination: Arc<dyn Destination>,
    pub policy: RetryPolicy,
    /// Counts deliveries settled (attempt recorded, or canceled), for whoever watches
    /// progress (tests, metrics).
    pub settled: watch::Sender<u64>,
    /// Counts deliveries held at claim time for their endpoint's verification.
    pub held: watch::Sender<u64>,
    /// Counts deliveries moved to their endpoint's probe time because its circuit is open.
    pub held_back: watch::Sender<u64>,
    /// The leases held by running tasks (delivery id → lease token), given back on shutdown.
    pub leases: Mutex<HashMap<String, String>>,
    pub disable_on_gone: bool,
    pub disable_after: Option<Duration>,
    pub breakers: Breakers,
    pub operational: Operational,
    pub metrics: Metrics,
    pub listen_sessions: ListenSessions,
    /// Endpoints whose `herald listen` sessions other nodes hold, as last read (every
    /// `CLUSTER_REFRESH`, and when an attempt finds a session away): left to them.
    pub listen_elsewhere: Mutex<HashSet<String>>,
    /// How long an attempt's word to the other nodes holds if it never says more: a probe
    /// keeps the circuit open for them, a place under a cap stays taken. Time for the
    /// attempt's answer to come back and be acted on.
    pub attempt_window: chrono::Duration,
}

/// The delivery loop of one Herald process.
pub struct Dispatcher {
    ctx: Arc<Context>,
    settings: DispatchSettings,
    lanes: Lanes,
    /// Every attempt holds one of these, claimed or handed over by a publish.
    in_flight: Arc<Semaphore>,
    /// What this node's publishes hand over (see `intake`).
    handed: mpsc::UnboundedReceiver<Handed>,
    /// Whether the loop has claimed all the due work it can take: only then does it take
    /// fresh deliveries from publishes. Behind, it claims them in their turn, in batches,
    /// rather than letting new ones pass older ones and take the room its claims need.
    caught_up: Arc<AtomicBool>,
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
        let operational = Operational::new(store.clone(), clock.clone());
        let ctx = Arc::new(Context {
            store,
            clock,
            destination,
            policy,
            settled: watch::Sender::new(0),
            held: watch::Sender::new(0),
            held_back: watch::Sender::new(0),
            leases: Mutex::default(),
            disable_on_gone: settings.disable_on_gone,
            disable_after: settings.disable_after,
            breakers: Breakers::new(settings.breaker, settings.metrics.circuits_open.clone()),
            operational,
            metrics: settings.metrics.clone(),
            listen_sessions: settings.listen_sessions.clone(),
            listen_elsewhere: Mutex::default(),
            attempt_window: chrono::Duration::from_std(settings.attempt_timeout * 2)
                .unwrap_or(chrono::Duration::MAX),
        });
        let lanes = Lanes::new(settings.endpoint_concurrency, settings.lease());
        let in_flight = Arc::new(Semaphore::new(settings.max_in_flight));
        // Taken from now on: what is handed over before `run` waits for it (and goes back
        // to the queue should the dispatcher be dropped unrun).
        let (handed_to, handed) = mpsc::unbounded_channel();
        let lease = lease_of(&settings);
        let caught_up = Arc::new(AtomicBool::new(false));
        let room = (in_flight.clone(), lanes.clone(), caught_up.clone());
        let intake = Intake::new(&ctx, room, lease, handed_to);
        ctx.store.hand_fresh_to(Some(Arc::new(intake)));
        Self {
            ctx,
            settings,
            lanes,
            in_flight,
            handed,
            caught_up,
        }
    }

    /// How many deliveries were settled so far (attempts recorded, cancellations).
    pub fn settled(&self) -> watch::Receiver<u64> {
        self.ctx.settled.subscribe()
    }

    /// How many claimed deliveries were held for their endpoint's verification so far.
    pub fn held(&self) -> watch::Receiver<u64> {
        self.ctx.held.subscribe()
    }

    /// How many deliveries were moved to their endpoint's probe time while its circuit was
    /// open, so far.
    pub fn held_back(&self) -> watch::Receiver<u64> {
        self.ctx.held_back.subscribe()
    }

    /// Runs until `shutdown` is cancelled, then lets attempts in flight finish within the
    /// grace period; deliveries not finished by then are given back to the queue.
    ///
    /// Each pass looks around (what other nodes said, stalled ordered lines), claims what
    /// is due and has room, then either goes again at once or waits for the first thing
    /// that could make a claim worth it.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let work = self.ctx.store.work_signal();
        let mut state = LoopState::default();
        loop {
            self.look_around(&mut state, &shutdown).await;
            let pass = match self.claim_round(&mut state.tasks, &shutdown).await {
                Claimed::All => {
                    state.hold.work_arrived();
                    Pass::Again // probably more due now
                }
                Claimed::Failed => Pass::PauseThenAgain,
                Claimed::Some {
                    count,
                    skipped_in_claim,
                } => self.plan(&mut state, count, &skipped_in_claim).await,
            };
            let stop = match pass {
                Pass::Again => false,
                Pass::PauseThenAgain => pause(BACKOFF, &shutdown).await,
                Pass::Wait(wait) => self.wait(&mut state, wait, &work, &shutdown).await,
            };
            if stop {
                break;
            }
        }
        self.stop(state.tasks).await;
    }

    /// The work of a pass that is not claiming: finished tasks collected, deliveries handed
    /// over meanwhile started (so none waits in the channel for long; a claim that finds a
    /// backlog stops them), and the periodic reads and sweeps.
    async fn look_around(&mut self, state: &mut LoopState, shutdown: &CancellationToken) {
        reap(&mut state.tasks);
        while let Ok(fresh) = self.handed.try_recv() {
            self.start_handed(fresh, &mut state.tasks, shutdown);
        }
        if state
            .cluster_read
            .is_none_or(|at| at.elapsed() >= CLUSTER_REFRESH)
        {
            state.cluster_read = Some(tokio::time::Instant::now());
            self.ctx.read_listen_elsewhere().await;
            self.ctx.read_open_circuits().await;
        }
        // Ordered endpoints move on as their deliveries settle; this catches a line that
        // stopped anyway (a node died between recording an attempt and letting the next
        // go, or asking failed), at start and every sweep interval, busy or not.
        if state
            .lines_swept
            .is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL)
        {
            state.lines_swept = Some(tokio::time::Instant::now());
            let now = self.ctx.clock.now();
            if let Err(e) = self.ctx.store.advance_ordered(None, now).await {
                tracing::warn!(error = %e, "looking over ordered endpoints' queues failed");
            }
        }
    }

    /// Claims as much due work as there is room for, and starts it.
    async fn claim_round(&self, tasks: &mut JoinSet<()>, shutdown: &CancellationToken) -> Claimed {
        let skipped_in_claim = self.skipped();
        let room = self.in_flight.available_permits();
        let mut count = 0;
        if room > 0 {
            let skip = self.left_to_others(skipped_in_claim.clone());
            match self.claim(room, &skip, tasks, shutdown).await {
                Ok((claimed, limit)) if claimed == limit => {
                    self.caught_up.store(false, Ordering::Relaxed);
                    return Claimed::All;
                }
                Ok((claimed, _)) => count = claimed,
                Err(()) => return Claimed::Failed,
            }
        }
        Claimed::Some {
            count,
            skipped_in_claim,
        }
    }

    /// After a claim that did not fill its limit: whether to go again at once, or what to
    /// wait for. It depends on what limits this node now: a full set of tasks, or full lanes
    /// (whose endpoints' rows it leaves alone). Then a finishing task is a reason to claim
    /// again, and due rows of skipped endpoints are no reason to hurry.
    async fn plan(
        &self,
        state: &mut LoopState,
        claimed: usize,
        skipped_in_claim: &[String],
    ) -> Pass {
        let skip = self.skipped();
        let room = self.in_flight.available_permits();
        let now = self.ctx.clock.now();
        state.hold.run(&self.ctx, now).await;
        let not_ours = self.left_to_others(skip.clone());
        let next_due = self.ctx.store.next_due_at(&not_ours).await.ok().flatten();
        if room > 0 && next_due.is_some_and(|due| due <= now) {
            self.caught_up.store(false, Ordering::Relaxed);
            // Work fell due or was published since the claim, or a lane skipped in the
            // claim has room again, or other nodes hold due rows briefly: go again. Only
            // `FRUITLESS_ROUNDS` in a row that claim nothing (with no lane freed) pause, so
            // the loop never spins, and a publish landing between a claim and this check
            // costs no pause.
            let lane_freed = skip.len() < skipped_in_claim.len();
            state.fruitless = if claimed == 0 && !lane_freed {
                state.fruitless + 1
            } else {
                0
            };
            if state.fruitless >= FRUITLESS_ROUNDS {
                state.fruitless = 0;
                return Pass::PauseThenAgain;
            }
            return Pass::Again;
        }
        state.fruitless = 0;
        let sweep = now + chrono::Duration::from_std(SWEEP_INTERVAL).unwrap_or_default();
        // With no room, rows already due are no reason to wake (an attempt finishing is):
        // waking for them would only look again, at once, and again.
        let next_due_to_wake = next_due.filter(|due| room > 0 || *due > now);
        let wake_at = [next_due_to_wake, self.ctx.breakers.next_probe_at(now)]
            .into_iter()
            .flatten()
            .fold(sweep, DateTime::min);
        // Nothing due that this node could take: fresh deliveries may come straight in.
        // (With due rows left for want of room, a place freed goes to them first.)
        let behind = next_due.is_some_and(|due| due <= now);
        self.caught_up.store(!behind, Ordering::Relaxed);
        Pass::Wait(Wait {
            constrained: room == 0 || !skip.is_empty(),
            skipped_any: !skip.is_empty(),
            wake_at,
            hold_at: state.hold.due_at(&self.ctx, now),
        })
    }

    /// Waits for the first thing that could make a claim worth it: new work signalled, a
    /// task finishing while room is short, a skipped lane freed, the next due time or
    /// probe, a held circuit's moment. Deliveries handed over meanwhile are started without
    /// ending the wait. `true` if shutdown began.
    async fn wait(
        &mut self,
        state: &mut LoopState,
        wait: Wait,
        work: &tokio::sync::Notify,
        shutdown: &CancellationToken,
    ) -> bool {
        loop {
            // Deliveries handed over meanwhile take room: a finishing one may be what lets
            // a claim go on.
            let constrained = wait.constrained || self.in_flight.available_permits() == 0;
            let tasks = &mut state.tasks;
            tokio::select! {
                Some(fresh) = self.handed.recv() => {
                    self.start_handed(fresh, tasks, shutdown);
                    reap(tasks);
                    continue;
                }
                _ = work.notified() => state.hold.work_arrived(),
                _ = tokio::time::sleep_until(wait.hold_at.unwrap_or_else(tokio::time::Instant::now)),
                    if wait.hold_at.is_some() => {}
                _ = tasks.join_next(), if constrained && !tasks.is_empty() => {}
                _ = self.lanes.freed(), if wait.skipped_any => {}
                _ = self.ctx.clock.sleep_until(wait.wake_at) => {}
                _ = shutdown.cancelled() => return true,
            }
            return false;
        }
    }

    /// Shutdown: no more deliveries from publishes (those handed over but not started go
    /// back), then the attempts in flight get their grace period.
    async fn stop(&mut self, tasks: JoinSet<()>) {
        self.ctx.store.hand_fresh_to(None);
        self.handed.close();
        while let Ok(fresh) = self.handed.try_recv() {
            attempt::give_back(&self.ctx, &fresh.claimed).await;
        }
        self.drain(tasks).await;
    }
    /// Starts a delivery a publish handed over, in the room it reserved.
    fn start_handed(&self, fresh: Handed, tasks: &mut JoinSet<()>, shutdown: &CancellationToken) {
        let Handed {
            claimed,
            lease_until,
            in_flight,
            ticket,
        } = fresh;
        if lease_until - self.ctx.attempt_window <= self.ctx.clock.now() {
            // Waited too long to be attempted within its lease: back to the queue, as a
            // claimed delivery whose admission ran out is.
            let ctx = self.ctx.clone();
            tasks.spawn(async move { attempt::give_back(&ctx, &claimed).await });
            return;
        }
        self.ctx.metrics.deliveries_handed_over.inc();
        let attempt = Attempt {
            claimed,
            lease_until,
            ticket,
        };
        self.spawn(attempt, in_flight, tasks, shutdown);
    }

    /// Runs an attempt in a task of its own, holding its place in flight until it ends.
    fn spawn(
        &self,
        attempt: Attempt,
        in_flight: OwnedSemaphorePermit,
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) {
        let Attempt {
            claimed,
            lease_until,
            ticket,
        } = attempt;
        self.ctx.hold(&claimed.delivery.id, &claimed.lease_token);
        let run = attempt::run(
            self.ctx.clone(),
            claimed,
            ticket,
            lease_until,
            shutdown.clone(),
        );
        tasks.spawn(async move {
            run.await;
            drop(in_flight);
        });
    }

    /// Endpoints whose due rows this node leaves in the queue for now because of its own
    /// state: their lanes are full, or their circuits are open. (Room freed in either is a
    /// reason to claim again.)
    fn skipped(&self) -> Vec<String> {
        let mut skip = self.lanes.full();
        skip.extend(self.ctx.breakers.tripped(self.ctx.clock.now()));
        skip
    }

    /// [`skipped`](Self::skipped), and the endpoints whose `herald listen` sessions other
    /// nodes hold: what a claim and the next due time leave out.
    fn left_to_others(&self, mut skip: Vec<String>) -> Vec<String> {
        let elsewhere = self.ctx.listen_elsewhere.lock();
        let elsewhere = elsewhere.unwrap_or_else(|e| e.into_inner());
        let sessions = &self.ctx.listen_sessions;
        // A session that has just come here is this node's, whatever was read before.
        skip.extend(
            elsewhere
                .iter()
                .filter(|e| !sessions.is_attached(e))
                .cloned(),
        );
        skip
    }

    /// Claims up to `room` due deliveries and starts their attempts: `(claimed, asked)`.
    async fn claim(
        &self,
        room: usize,
        skip: &[String],
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) -> Result<(usize, usize), ()> {
        let now = self.ctx.clock.now();
        let lease = lease_of(&self.settings);
        let limit = room.min(CLAIM_BATCH);
        let request = ClaimRequest {
            now,
            lease_until: now + lease,
            limit: limit as u32,
            per_endpoint_limit: self.settings.lane_depth() as u32,
            skip_endpoints: skip.to_vec(),
        };
        let claimed = self.ctx.store.claim_due(&request).await.map_err(|e| {
            tracing::error!(error = %e, "claiming deliveries failed");
        })?;
        let count = claimed.len();
        tracing::trace!(count, limit, skipped = skip.len(), "claimed");
        for delivery in claimed {
            // Publishes may have taken room since it was counted; rarely, and then what
            // does not fit goes back.
            let Ok(place) = self.in_flight.clone().try_acquire_owned() else {
                attempt::give_back(&self.ctx, &delivery).await;
                continue;
            };
            let Some(ticket) = self.lanes.enter(&delivery.endpoint) else {
                // More than this endpoint's own (smaller) lane can work through within a
                // lease: back to the queue, for when the lane has room.
                attempt::give_back(&self.ctx, &delivery).await;
                continue;
            };
            let attempt = Attempt {
                claimed: delivery,
                lease_until: request.lease_until,
                ticket,
            };
            self.spawn(attempt, place, tasks, shutdown);
        }
        Ok((count, limit))
    }

    async fn drain(&self, mut tasks: JoinSet<()>) {
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, grace = ?self.settings.shutdown_grace, "waiting for attempts in flight");
        }
        let finished = tokio::time::timeout(self.settings.shutdown_grace, async {
            while let Some(result) = tasks.join_next().await {
                log_panic(result);
            }
        })
        .await;
        if finished.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        // Whatever did not finish goes back to the queue now, not when its lease ends.
        let unfinished: Vec<(String, String)> = self
            .ctx
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        if !unfinished.is_empty() {
            tracing::warn!(
                count = unfinished.len(),
                "shutdown grace ended; giving unfinished deliveries back"
            );
        }
        let now = self.ctx.clock.now();
        for (delivery_id, token) in unfinished {
            if let Err(e) = self.ctx.store.release(&delivery_id, &token, now).await {
                tracing::warn!(error = %e, "giving a delivery back failed; its lease will expire");
            }
        }
    }
}

/// What the claim loop carries from one pass to the next.
#[derive(Default)]
struct LoopState {
    /// The attempts running.
    tasks: JoinSet<()>,
    /// Rounds in a row that found due work yet claimed none (see [`Dispatcher::plan`]).
    fruitless: u32,
    hold: OpenCircuitHold,
    /// When queued deliveries of ordered endpoints were last looked over.
    lines_swept: Option<tokio::time::Instant>,
    /// When it was last read which `herald listen` sessions other nodes hold.
    cluster_read: Option<tokio::time::Instant>,
}

/// What a claim round did.
enum Claimed {
    /// As many as it asked for: probably more are due.
    All,
    /// Fewer (or none, for want of room); `skipped_in_claim` are the endpoints this node
    /// left out of it for their full lanes or open circuits.
    Some {
        count: usize,
        skipped_in_claim: Vec<String>,
    },
    /// The store failed.
    Failed,
}

/// What the loop does after a claim.
enum Pass {
    Again,
    PauseThenAgain,
    Wait(Wait),
}

/// What a wait after a claim ends on.
struct Wait {
    /// Room is short (no place in flight, or full lanes): a finishing task ends it.
    constrained: bool,
    /// Endpoints were left out of the claim (full lanes, open circuits): a lane freeing
    /// ends it.
    skipped_any: bool,
    /// The next due time, probe or sweep.
    wake_at: DateTime<Utc>,
    /// When held deliveries of an open circuit are next looked at.
    hold_at: Option<tokio::time::Instant>,
}

/// A leased delivery about to be attempted, with its place in its endpoint's lane.
struct Attempt {
    claimed: ClaimedDelivery,
    lease_until: DateTime<Utc>,
    ticket: LaneTicket,
}

impl Context {
    /// Whether another node holds the `herald listen` session of `endpoint_id`, as last
    /// read (a session that has just come here is this node's).
    fn is_left_to_others(&self, endpoint_id: &str) -> bool {
        let elsewhere = self.listen_elsewhere.lock();
        let elsewhere = elsewhere.unwrap_or_else(|e| e.into_inner());
        elsewhere.contains(endpoint_id) && !self.listen_sessions.is_attached(endpoint_id)
    }

    /// Reads which `herald listen` sessions other nodes hold now. On a failure the last
    /// reading stays: at worst an attempt finds a session away and asks again.
    async fn read_listen_elsewhere(&self) {
        let node = self.listen_sessions.node();
        let stale_before = stale_before(self.clock.now());
        match self
            .store
            .listen_sessions_elsewhere(node, stale_before)
            .await
        {
            Ok(endpoints) => {
                let mut elsewhere = self
                    .listen_elsewhere
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                *elsewhere = endpoints.into_iter().collect();
            }
            Err(e) => tracing::warn!(error = %e, "could not read where listen sessions are"),
        }
    }

    /// Opens here the circuits other nodes opened. On a failure nothing changes: at worst
    /// this node fails on its own and opens the circuit itself.
    async fn read_open_circuits(&self) {
        let now = self.clock.now();
        match self.store.open_circuits(now).await {
            Ok(open) => {
                for (endpoint, until) in &open {
                    match self.breakers.adopt(endpoint, *until, now) {
                        Adopted::Opened => {
                            tracing::info!(endpoint = %endpoint, %until, "circuit opened on the cluster's word");
                        }
                        Adopted::HeldLonger => {
                            tracing::debug!(endpoint = %endpoint, %until, "circuit held open longer on the cluster's word");
                        }
                        Adopted::Nothing => {}
                    }
                }
                let held = open.iter().map(|(endpoint, _)| endpoint.as_str()).collect();
                for endpoint in self.breakers.drop_closed_elsewhere(&held) {
                    tracing::info!(endpoint = %endpoint, "circuit closed on the cluster's word");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read which circuits are open"),
        }
    }

    /// Tells the other nodes what became of an endpoint's circuit here. On a failure they
    /// go on by their own circuits, as a single node would.
    pub(crate) async fn share_circuit(&self, news: CircuitNews<'_>) {
        if let Err(e) = self.store.share_circuit(news).await {
            tracing::warn!(error = %e, ?news, "could not tell other nodes of a circuit");
        }
    }

    /// Whether another node holds the `herald listen` session of `endpoint_id`, asked of
    /// the store now (an attempt found it away from this node); noted for the claims.
    pub(crate) async fn listen_session_elsewhere(&self, endpoint_id: &str) -> bool {
        self.read_listen_elsewhere().await;
        let elsewhere = self.listen_elsewhere.lock();
        let elsewhere = elsewhere.unwrap_or_else(|e| e.into_inner());
        elsewhere.contains(endpoint_id)
    }

    /// Moves `endpoint`'s deliveries due before `until` (its circuit's probe) to then.
    async fn hold_back(&self, endpoint: &str, until: DateTime<Utc>) {
        match self
            .store
            .defer_pending(endpoint, until, self.clock.now())
            .await
        {
            Ok(moved) => self.held_back.send_modify(|n| *n += moved),
            Err(e) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "could not hold back deliveries")
            }
        }
    }

    /// Notes a lease held by a running task.
    fn hold(&self, delivery_id: &str, token: &str) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.insert(delivery_id.to_owned(), token.to_owned());
    }

    /// Forgets a lease once its delivery is finished or given back.
    pub(crate) fn let_go(&self, delivery_id: &str) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.remove(delivery_id);
    }
}

/// How long a claim or a hand-over leases a delivery.
fn lease_of(settings: &DispatchSettings) -> chrono::Duration {
    chrono::Duration::from_std(settings.lease()).unwrap_or(chrono::Duration::minutes(5))
}

/// Collects finished tasks, logging any that panicked.
fn reap(tasks: &mut JoinSet<()>) {
    while let Some(result) = tasks.try_join_next() {
        log_panic(result);
    }
}

fn log_panic(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        if e.is_panic() {
            tracing::error!(error = %e, "an attempt task panicked; its delivery is retried after its lease");
        }
    }
}

/// Waits `how_long` (real time); `true` if shutdown began meanwhile.
async fn pause(how_long: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => false,
        _ = shutdown.cancelled() => true,
    }
}

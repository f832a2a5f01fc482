//! One attempt, in phases: admit (a slot in the endpoint's lane, its circuit, its pace, its
//! place under a cluster-wide cap), deliver, settle (health, record, operational webhooks).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest};
use herald_core::ids::IdKind;
use herald_core::metrics::{AttemptLabels, DestinationLabels};
use herald_core::model::{
    Attempt, AttemptErrorKind, DeliveryStatus, Endpoint, Message, TriggerType,
};
use herald_core::store::{
    AttemptFilter, CircuitNews, ClaimedDelivery, FinishedAttempt, NextState, Order, PageRequest,
    ProbeTurn, SlotRequest, SlotTurn,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::breaker::Admission;
use super::lanes::LaneTicket;
use super::Context;
use crate::destinations::Kind;
use crate::operational::{self, DisableTrigger, LastAttempt};
use crate::trace_context;

/// Recording an attempt is tried this many times before the lease is left to expire.
const RECORD_TRIES: u32 = 3;
/// How soon an attempt that found every place under its endpoint's cap held (by other
/// nodes) asks again; each ask doubles the wait up to [`CAP_ASK_AT_MOST`].
const CAP_ASK_FIRST: Duration = Duration::from_millis(5);
const CAP_ASK_AT_MOST: Duration = Duration::from_millis(200);

/// Makes one attempt of a claimed delivery and records it, in three phases: admit (wait
/// for the endpoint's lane, then decide whether to attempt at all), deliver, settle.
pub(crate) async fn run(
    ctx: Arc<Context>,
    claimed: ClaimedDelivery,
    ticket: LaneTicket,
    lease_until: DateTime<Utc>,
    shutdown: CancellationToken,
) {
    let deadline = AdmitDeadline {
        lease_until,
        shutdown: &shutdown,
    };
    let Some(admitted) = admit(&ctx, &claimed, ticket, &deadline).await else {
        return;
    };
    // One span per attempt, in the trace the message was published in (if any).
    let span = tracing::info_span!(
        "attempt",
        msg = %claimed.message.id,
        endpoint = %claimed.endpoint.id,
        attempt = claimed.delivery.attempt_count + 1,
    );
    trace_context::continue_trace(&span, claimed.message.traceparent.as_deref());
    async {
        let (outcome, started_at) = deliver_in_lane(&ctx, &claimed, admitted).await;
        settle(&ctx, &claimed, &outcome, started_at).await;
    }
    .instrument(span)
    .await;
}

/// How long an attempt may wait to be admitted: until its claim's lease leaves just time
/// for the attempt and its record, or until shutdown.
struct AdmitDeadline<'a> {
    lease_until: DateTime<Utc>,
    shutdown: &'a CancellationToken,
}

/// An attempt let through: its place in the endpoint's lane, one of the lane's slots, and
/// its place under the endpoint's cap on every node.
struct Admitted {
    /// Held, not read: dropping it frees the slot. Fields drop in order, the slot first.
    _slot: OwnedSemaphorePermit,
    ticket: LaneTicket,
    place: CapPlace,
}

/// An attempt's place under its endpoint's `maxConcurrency`, counted by every node.
enum CapPlace {
    /// No cap, or one process runs the store: the lane's slot is all the attempt needs.
    NotNeeded,
    /// Held in the store until the endpoint has answered.
    Held(HeldPlace),
}

impl CapPlace {
    /// Frees the place for the next attempt, on whichever node.
    async fn free(self) {
        if let CapPlace::Held(place) = self {
            place.free().await;
        }
    }
}

/// A place under an endpoint's cap, held in the store for one attempt. An attempt that
/// ends another way than by [`HeldPlace::free`] (a panic, an abort at shutdown) frees it
/// from `Drop`, in a task of its own; should that not run either, the place is free again
/// once its hold runs out.
struct HeldPlace {
    store: Arc<dyn herald_core::Store>,
    endpoint_id: String,
    place: u32,
    holder: String,
    freed: bool,
}

impl HeldPlace {
    async fn free(mut self) {
        self.freed = true;
        let (endpoint_id, place, holder) = (&self.endpoint_id, self.place, &self.holder);
        if let Err(e) = self.store.free_slot(endpoint_id, place, holder).await {
            tracing::warn!(error = %e, endpoint = %endpoint_id, "freeing a place under the endpoint's cap failed; it frees itself when its hold runs out");
        }
    }
}

impl Drop for HeldPlace {
    fn drop(&mut self) {
        if self.freed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, endpoint_id) = (self.store.clone(), std::mem::take(&mut self.endpoint_id));
        let (place, holder) = (self.place, std::mem::take(&mut self.holder));
        runtime.spawn(async move {
            let _ = store.free_slot(&endpoint_id, place, &holder).await;
        });
    }
}

/// Waits for a slot in the endpoint's lane and a place under its cap, then lets the
/// attempt through the endpoint's circuit and waits for its pace. No attempt is made
/// (`None`) when shutting down or when no place came free in time (the lease is given
/// back), to an endpoint disabled since the message was published (the delivery is
/// canceled), or while its circuit is open (due again when it may close).
async fn admit(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    ticket: LaneTicket,
    deadline: &AdmitDeadline<'_>,
) -> Option<Admitted> {
    let shutdown = deadline.shutdown;
    let slot = tokio::select! {
        slot = ticket.slot() => slot,
        _ = shutdown.cancelled() => {
            give_back(ctx, claimed).await;
            return None;
        }
    };
    if shutdown.is_cancelled() {
        give_back(ctx, claimed).await;
        return None;
    }
    if !still_wanted(ctx, claimed).await {
        return None;
    }
    // The place before the circuit and the pace: a probe taken, or a moment of the pace
    // reserved, is then not left waiting behind other nodes' attempts.
    let Some(place) = take_cap_place(ctx, claimed, deadline).await else {
        give_back(ctx, claimed).await;
        return None;
    };
    if !through_circuit_and_pace(ctx, claimed, &ticket, shutdown).await {
        place.free().await;
        return None;
    }
    Some(Admitted {
        _slot: slot,
        ticket,
        place,
    })
}

/// Whether the delivery is still to be attempted: not when its endpoint was disabled (it
/// is canceled), its message expired (canceled) or its endpoint has not verified its
/// subscription (held).
async fn still_wanted(ctx: &Context, claimed: &ClaimedDelivery) -> bool {
    if claimed.endpoint.disabled {
        cancel_to_disabled(ctx, claimed).await;
        return false;
    }
    if expiry(claimed).is_some_and(|at| at <= ctx.clock.now()) {
        cancel_expired(ctx, claimed).await;
        return false;
    }
    if claimed.endpoint.verification.status.holds() {
        hold_until_verified(ctx, claimed).await;
        return false;
    }
    true
}

/// Lets the attempt through the endpoint's circuit, then waits for the endpoint's pace:
/// `false`, and the delivery given back, when the circuit is open (due when it may
/// close) or shutdown came first.
async fn through_circuit_and_pace(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    ticket: &LaneTicket,
    shutdown: &CancellationToken,
) -> bool {
    let admission = match ctx.breakers.admit(&claimed.endpoint.id, ctx.clock.now()) {
        Admission::Probe => take_probe(ctx, &claimed.endpoint.id).await,
        admission => admission,
    };
    let probe = match admission {
        Admission::Go => false,
        Admission::Probe => true,
        // The endpoint's circuit is open: no attempt now, and none counted.
        Admission::GiveBack(due) => {
            give_back_at(ctx, claimed, due).await;
            return false;
        }
    };
    if wait_for_pace(ctx, claimed, ticket, shutdown).await {
        return true;
    }
    if probe {
        ctx.breakers
            .abandon_probe(&claimed.endpoint.id, ctx.clock.now());
    }
    give_back(ctx, claimed).await;
    false
}

/// Takes a place under the endpoint's `maxConcurrency` that every node counts (the lane's
/// slots count this node's attempts only), asking again while other nodes hold them all,
/// or while the store cannot say (the cap is never exceeded for want of an answer):
/// `None` once the lease leaves no more than the time for the attempt and its record, or
/// when shutdown comes first.
async fn take_cap_place(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    deadline: &AdmitDeadline<'_>,
) -> Option<CapPlace> {
    let Some(cap) = claimed.endpoint.max_concurrency else {
        return Some(CapPlace::NotNeeded);
    };
    let endpoint_id = &claimed.endpoint.id;
    // The lease token is the claim's, shared by the deliveries claimed with this one.
    let holder = format!("{}:{}", claimed.lease_token, claimed.delivery.id);
    let give_up_at = deadline.lease_until - ctx.attempt_window;
    let mut pause = CAP_ASK_FIRST;
    let mut warned = false;
    loop {
        let now = ctx.clock.now();
        if now >= give_up_at {
            return None;
        }
        let request = SlotRequest {
            endpoint_id,
            cap,
            holder: &holder,
            now,
            hold_until: now + ctx.attempt_window,
        };
        match ctx.store.take_slot(request).await {
            Ok(SlotTurn::Taken(n)) => {
                return Some(CapPlace::Held(HeldPlace {
                    store: ctx.store.clone(),
                    endpoint_id: endpoint_id.clone(),
                    place: n,
                    holder,
                    freed: false,
                }));
            }
            Ok(SlotTurn::Unshared) => return Some(CapPlace::NotNeeded),
            Ok(SlotTurn::Full) => {}
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, endpoint = %endpoint_id, "taking a place under the endpoint's cap failed; asking again");
            }
            Err(_) => {}
        }
        let next = (now + chrono::Duration::from_std(pause).unwrap_or_default()).min(give_up_at);
        tokio::select! {
            _ = ctx.clock.sleep_until(next) => {}
            _ = deadline.shutdown.cancelled() => return None,
        }
        pause = (pause * 2).min(CAP_ASK_AT_MOST);
    }
}

/// Asks the other nodes whether this one probes the endpoint whose circuit's cool-down
/// ended here: it does (`Probe`), or a success elsewhere closed the circuit (`Go`), or
/// another node probes (`GiveBack`). When the store cannot say, this node probes, as a
/// single node would.
async fn take_probe(ctx: &Context, endpoint: &str) -> Admission {
    let now = ctx.clock.now();
    match ctx
        .store
        .take_probe(endpoint, now, now + ctx.attempt_window)
        .await
    {
        Ok(ProbeTurn::Mine) => Admission::Probe,
        Ok(ProbeTurn::Closed) => {
            ctx.breakers.forget(endpoint);
            Admission::Go
        }
        Ok(ProbeTurn::Theirs(until)) => {
            ctx.breakers.hold_off(endpoint, until);
            Admission::GiveBack(until)
        }
        Err(e) => {
            tracing::warn!(endpoint = %endpoint, error = %e, "could not ask who probes; probing");
            Admission::Probe
        }
    }
}

/// Ends a delivery to an endpoint disabled after the message was published: the customer
/// wants nothing sent there. Its circuit is forgotten, here and by every node, so that
/// once enabled again it starts afresh. A delivery that had failed attempts was given up on: the provider hears
/// of it as of any delivery whose retries ran out (`message.attempt.exhausted`).
async fn cancel_to_disabled(ctx: &Context, claimed: &ClaimedDelivery) {
    ctx.breakers.forget(&claimed.endpoint.id);
    let endpoint_id = &claimed.endpoint.id;
    ctx.share_circuit(CircuitNews::Closed { endpoint_id }).await;
    set_aside(ctx, claimed, DeliveryStatus::Canceled).await;
    if claimed.delivery.attempt_count > 0 {
        report_dropped(ctx, claimed).await;
    }
}

/// When the message's deliveries stop, for this one: a resend or replay asked for by hand
/// goes whatever the message's `expiresAt`, since someone wants it sent now.
fn expiry(claimed: &ClaimedDelivery) -> Option<DateTime<Utc>> {
    let manual = claimed.delivery.trigger == TriggerType::Manual;
    claimed.message.expires_at.filter(|_| !manual)
}

/// Ends a delivery whose message expired before it could be made (it waited behind an
/// open circuit, a full lane, or its retries). As for a disabled endpoint, a delivery with
/// failed attempts is reported as given up.
async fn cancel_expired(ctx: &Context, claimed: &ClaimedDelivery) {
    set_aside(ctx, claimed, DeliveryStatus::Canceled).await;
    if claimed.delivery.attempt_count > 0 {
        report_dropped(ctx, claimed).await;
    }
}

/// `message.attempt.exhausted` for a delivery canceled after failed attempts, with the last.
async fn report_dropped(ctx: &Context, claimed: &ClaimedDelivery) {
    let filter = AttemptFilter {
        endpoint_id: Some(claimed.endpoint.id.clone()),
        ..AttemptFilter::default()
    };
    let newest = PageRequest {
        limit: 1,
        cursor: None,
        order: Order::Descending,
    };
    let (app, msg) = (&claimed.message.app_id, &claimed.message.id);
    let last = match ctx
        .store
        .list_attempts_by_message(app, msg, &filter, &newest)
        .await
    {
        Ok(page) => page.items.into_iter().next(),
        Err(e) => {
            tracing::warn!(error = %e, msg = %msg, "message.attempt.exhausted not sent");
            None
        }
    };
    if let Some(attempt) = last {
        let last = LastAttempt {
            id: attempt.id,
            response_status_code: attempt.response_status_code,
            timestamp: attempt.created_at,
        };
        ctx.operational
            .attempt_event(
                operational::ATTEMPT_EXHAUSTED,
                &claimed.message,
                &claimed.endpoint.id,
                &last,
            )
            .await;
    }
}

/// Holds a delivery to an endpoint that has not verified its subscription (its URL changed
/// since the delivery was queued, or a retry came due meanwhile): nothing is sent to a URL
/// that has not said it wants the events; it is released once it has.
async fn hold_until_verified(ctx: &Context, claimed: &ClaimedDelivery) {
    set_aside(ctx, claimed, DeliveryStatus::Held).await;
}

/// Ends the claim unattempted, in `status`, and counts it where watchers look: a canceled
/// delivery is settled, a held one is not (it will be attempted once released).
async fn set_aside(ctx: &Context, claimed: &ClaimedDelivery, status: DeliveryStatus) {
    let (id, token) = (&claimed.delivery.id, &claimed.lease_token);
    let now = ctx.clock.now();
    if let Err(e) = ctx.store.set_aside(id, token, status, now).await {
        tracing::warn!(error = %e, ?status, "setting a delivery aside failed; its lease will expire");
    }
    if status == DeliveryStatus::Canceled {
        next_in_line(ctx, claimed).await;
    }
    let counter = match status {
        DeliveryStatus::Held => &ctx.held,
        _ => &ctx.settled,
    };
    counter.send_modify(|n| *n += 1);
    ctx.let_go(id);
}

/// Once a delivery to an ordered endpoint is done (settled or canceled), lets the next
/// message in line go. If this fails, the dispatcher's periodic sweep does it.
async fn next_in_line(ctx: &Context, claimed: &ClaimedDelivery) {
    if !claimed.endpoint.ordered {
        return;
    }
    let endpoint = std::slice::from_ref(&claimed.endpoint.id);
    if let Err(e) = ctx
        .store
        .advance_ordered(Some(endpoint), ctx.clock.now())
        .await
    {
        tracing::warn!(error = %e, endpoint = %claimed.endpoint.id, "letting the next queued delivery go failed; the sweep will");
    }
}

/// Waits until the endpoint's pace allows an attempt (its rate limit, or a pause it asked
/// for): `false` if shutdown came first.
async fn wait_for_pace(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    ticket: &LaneTicket,
    shutdown: &CancellationToken,
) -> bool {
    let start = match claimed.endpoint.rate_limit.filter(|r| *r > 0) {
        Some(per_second) => Some(paced_start(ctx, claimed, ticket, per_second).await),
        None => ticket.paused_until(),
    };
    let Some(start) = start.filter(|at| *at > ctx.clock.now()) else {
        return true;
    };
    tokio::select! {
        _ = ctx.clock.sleep_until(start) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// When an attempt to an endpoint limited to `per_second` may start: the moment the store
/// reserved for it where nodes share the store (so the limit holds for the cluster), else
/// this node's own pace; either way not before a pause the endpoint asked this node for.
async fn paced_start(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    ticket: &LaneTicket,
    per_second: u32,
) -> DateTime<Utc> {
    let now = ctx.clock.now();
    let endpoint = &claimed.endpoint.id;
    let spacing = super::lanes::spacing(per_second);
    // Reserved from the end of a pause the endpoint asked for: each attempt then keeps its
    // spacing after it, rather than all starting together when it ends.
    let from = ticket.paused_until().map_or(now, |paused| paused.max(now));
    let shared = match ctx.store.reserve_pace(endpoint, spacing, from).await {
        Ok(shared) => shared,
        Err(e) => {
            tracing::warn!(error = %e, endpoint = %endpoint, "reserving a shared pace failed; pacing on this node alone");
            None
        }
    };
    shared.unwrap_or_else(|| ticket.pace(per_second, now))
}

/// Delivers, notes a pause the endpoint asked for (`429`/`503` with `Retry-After`), and
/// leaves the lane: recording needs neither a slot of the lane nor a place in it, and the
/// claimer may refill the lane while the record commits.
async fn deliver_in_lane(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    admitted: Admitted,
) -> (DeliveryOutcome, DateTime<Utc>) {
    let started_at = ctx.clock.now();
    let outcome = deliver(ctx, claimed, started_at).await;
    if let (Some(429 | 503), Some(wait)) = (outcome.status_code, outcome.retry_after) {
        let wait = wait.min(ctx.policy.max_retry_after);
        let until = ctx.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
        admitted.ticket.hold_off(until);
    }
    // The place first, so that the lane's next attempt finds it free.
    let Admitted {
        _slot: slot,
        ticket,
        place,
    } = admitted;
    place.free().await;
    drop((slot, ticket));
    (outcome, started_at)
}

/// Settles an attempt: the circuit breaker and the endpoint's health hear of it, the
/// attempt is recorded with the delivery's next state, and the operational webhooks it
/// calls for are sent.
async fn settle(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    outcome: &DeliveryOutcome,
    started_at: DateTime<Utc>,
) {
    let offline = outcome
        .error
        .as_ref()
        .is_some_and(|e| e.kind == AttemptErrorKind::ListenerOffline);
    if offline && left_to_the_listen_node(ctx, claimed).await {
        give_back(ctx, claimed).await;
        return;
    }
    count_attempt(ctx, claimed, outcome);
    let succeeded = outcome.succeeded();
    // A `herald listen` session that is away says nothing of the endpoint's health: its
    // retries must go at once when it comes back, not wait for a circuit.
    let opened_until = if offline {
        None
    } else {
        tell_the_breaker(ctx, &claimed.endpoint.id, succeeded).await
    };
    let gone = ctx.disable_on_gone && outcome.status_code == Some(410);
    let finished = finished_attempt(ctx, claimed, outcome, started_at, gone);
    if let Some(until) = opened_until {
        // What else waits for the endpoint now is due when the circuit lets a probe
        // through, and says so (before this attempt is recorded, so whoever sees it sees
        // that too). Messages published while it is open show their own time until then.
        ctx.hold_back(&claimed.endpoint.id, until).await;
    }
    // Endpoint health first, so that whoever sees the attempt also sees its effect (a
    // disabled endpoint): the receiver said the URL is gone for good, or it has failed for
    // longer than allowed.
    let disabled_since = if gone {
        let since = claimed.endpoint.failing_since.unwrap_or(started_at);
        disable(ctx, claimed, since).await
    } else {
        note_health(ctx, claimed, succeeded).await
    };
    let recorded = store_attempt(ctx, &finished).await;
    if recorded && !matches!(finished.next, NextState::RetryAt(_)) {
        next_in_line(ctx, claimed).await;
    }
    ctx.let_go(&claimed.delivery.id);
    tracing::debug!(msg = %claimed.message.id, endpoint = %claimed.endpoint.id, ok = succeeded, "attempt");
    if let Some(since) = disabled_since {
        let app_uid = ctx.operational.app_uid(&claimed.message.app_id).await;
        ctx.operational
            .endpoint_disabled(
                app_uid.as_deref(),
                &claimed.endpoint,
                since,
                DisableTrigger::Automatic,
            )
            .await;
    }
    if recorded {
        // Unrecorded, the attempt will be made again: reporting now could contradict it.
        report(ctx, claimed, &finished).await;
    }
}

/// Whether an attempt that found its `herald listen` session away goes back to the queue
/// for another node: the session may be attached there, and that node makes the attempt
/// instead (this node claimed the delivery before it heard). One still attached here whose
/// queue was full is this node's failure to record.
async fn left_to_the_listen_node(ctx: &Context, claimed: &ClaimedDelivery) -> bool {
    let endpoint = &claimed.endpoint.id;
    !ctx.listen_sessions.is_attached(endpoint) && ctx.listen_session_elsewhere(endpoint).await
}

/// Tells the endpoint's circuit breaker how an attempt went, and the other nodes when that
/// opened or closed the circuit: `Some(until)` if this attempt opened it.
async fn tell_the_breaker(ctx: &Context, endpoint: &str, succeeded: bool) -> Option<DateTime<Utc>> {
    let was_tripped = ctx.breakers.is_tripped(endpoint);
    let opened_until = ctx.breakers.record(endpoint, succeeded, ctx.clock.now());
    if let Some(until) = opened_until {
        tracing::info!(endpoint = %endpoint, "endpoint keeps failing: circuit opened");
        let news = CircuitNews::Opened {
            endpoint_id: endpoint,
            until,
        };
        ctx.share_circuit(news).await;
    } else if succeeded && was_tripped {
        let news = CircuitNews::Closed {
            endpoint_id: endpoint,
        };
        ctx.share_circuit(news).await;
    }
    opened_until
}

/// The attempt's record and the delivery's next state: failed for good if the endpoint is
/// `gone`, else by the retry policy, no sooner than an open circuit lets a probe through,
/// and never past the message's expiry.
fn finished_attempt(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    outcome: &DeliveryOutcome,
    started_at: DateTime<Utc>,
    gone: bool,
) -> FinishedAttempt {
    let open_until = ctx
        .breakers
        .open_until(&claimed.endpoint.id, ctx.clock.now());
    FinishedAttempt {
        lease_token: claimed.lease_token.clone(),
        event_type: claimed.message.event_type.clone(),
        attempt: record(
            &claimed.message,
            &claimed.endpoint,
            (&claimed.delivery.id, claimed.delivery.trigger),
            outcome,
            started_at,
        ),
        next: match (gone, next_state(ctx, claimed, outcome), open_until) {
            (true, ..) => NextState::Failed,
            // The circuit is open (this attempt opened it, or one that ended while this one
            // was out): no retry before it lets a probe through.
            (false, NextState::RetryAt(at), Some(until)) => NextState::RetryAt(at.max(until)),
            (false, next, _) => next,
        }
        .before(expiry(claimed)),
    }
}

/// Keeps the endpoint's failing-since time, and disables an endpoint that has failed for
/// longer than `delivery.disable_after`: `Some(failing since)` if this call disabled it.
async fn note_health(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    succeeded: bool,
) -> Option<DateTime<Utc>> {
    let (app, endpoint) = (&claimed.message.app_id, &claimed.endpoint.id);
    let known = claimed.endpoint.failing_since;
    if succeeded {
        // Recording the attempt clears `failing_since`, in the same transaction.
        return None;
    }
    let now = ctx.clock.now();
    let limit = ctx
        .disable_after
        .and_then(|d| chrono::Duration::from_std(d).ok());
    // The claim's copy tells whether it was failing already; the store's word decides.
    let stored = match known {
        Some(since) if limit.is_none_or(|limit| now - since < limit) => return None,
        _ => {
            ctx.store
                .set_endpoint_failing(app, endpoint, Some(now))
                .await
        }
    };
    match (stored, limit) {
        (Ok(Some(since)), Some(limit)) if now - since >= limit => {
            disable(ctx, claimed, since).await
        }
        (Err(e), _) => {
            tracing::warn!(error = %e, endpoint = %endpoint, "noting an endpoint's failure failed");
            None
        }
        _ => None,
    }
}

/// Disables the claimed delivery's endpoint: `Some(since)` if this call did it.
async fn disable(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    since: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // A callback URL is one message's, not a subscription: its deliveries end with their
    // retries, and the next message's callback to it must still be made.
    if claimed.endpoint.adhoc {
        return None;
    }
    let (app, endpoint) = (&claimed.message.app_id, &claimed.endpoint.id);
    match ctx
        .store
        .disable_endpoint(app, endpoint, ctx.clock.now())
        .await
    {
        Ok(true) => {
            tracing::warn!(endpoint = %endpoint, failing_since = %since, "endpoint disabled");
            ctx.breakers.forget(endpoint);
            Some(since)
        }
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(error = %e, endpoint = %endpoint, "disabling an endpoint failed");
            None
        }
    }
}

/// Sends the operational webhook an attempt calls for, if any: the message keeps failing,
/// has failed for good, or was delivered after failing.
async fn report(ctx: &Context, claimed: &ClaimedDelivery, finished: &FinishedAttempt) {
    let attempts_made = claimed.delivery.attempt_count + 1;
    let failing_after = operational::FAILING_AFTER_ATTEMPTS;
    let event_type = match finished.next {
        NextState::Succeeded if attempts_made > failing_after => operational::ATTEMPT_RECOVERED,
        NextState::Failed => operational::ATTEMPT_EXHAUSTED,
        NextState::RetryAt(_) if attempts_made == failing_after => operational::ATTEMPT_FAILING,
        _ => return,
    };
    let attempt = &finished.attempt;
    let last = LastAttempt {
        id: attempt.id.clone(),
        response_status_code: attempt.response_status_code,
        timestamp: attempt.created_at,
    };
    ctx.operational
        .attempt_event(event_type, &claimed.message, &claimed.endpoint.id, &last)
        .await;
}

async fn deliver(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    at: chrono::DateTime<chrono::Utc>,
) -> DeliveryOutcome {
    let Some(payload) = &claimed.message.payload else {
        return DeliveryError::permanent(
            AttemptErrorKind::Other,
            "the message's payload was deleted before it could be delivered",
        )
        .into();
    };
    let request = DeliveryRequest {
        msg_id: claimed.message.id.clone(),
        event_type: claimed.message.event_type.clone(),
        payload: payload.clone(),
        endpoint: claimed.endpoint.clone(),
        attempted_at: at,
        rendered: None,
        traceparent: claimed.message.traceparent.clone(),
    };
    ctx.destination.deliver(&request).await
}

/// Records the attempt, trying again briefly if the store fails: after a delivered
/// message, a lost record means a duplicate delivery once the lease ends. `true` if recorded.
async fn store_attempt(ctx: &Context, finished: &FinishedAttempt) -> bool {
    for try_number in 1..=RECORD_TRIES {
        // The store records attempts that finish together in one transaction.
        if ctx.store.finish_attempt(finished).await.is_ok() {
            hold_back_if_open(ctx, finished).await;
            ctx.settled.send_modify(|n| *n += 1);
            // For whoever follows deliveries in the log (the cluster tests wait on it).
            tracing::debug!(attempt = %finished.attempt.id, "attempt recorded");
            return true;
        }
        if try_number < RECORD_TRIES {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(try_number))).await;
        } else {
            // The lease will expire and the delivery will be attempted again: at least once.
            tracing::error!(delivery = %finished.attempt.delivery_id, "recording an attempt failed");
        }
    }
    false
}

/// A retry recorded while another attempt opened the endpoint's circuit (whose hold-back
/// ran before this record landed) is held back too, before anyone is told it settled.
async fn hold_back_if_open(ctx: &Context, finished: &FinishedAttempt) {
    let NextState::RetryAt(at) = finished.next else {
        return;
    };
    let (endpoint, now) = (&finished.attempt.endpoint_id, ctx.clock.now());
    let open = ctx.breakers.open_until(endpoint, now);
    if let Some(until) = open.filter(|until| at < *until) {
        ctx.hold_back(endpoint, until).await;
    }
}

/// Counts the attempt in the metrics, by destination kind, trigger and outcome.
fn count_attempt(ctx: &Context, claimed: &ClaimedDelivery, outcome: &DeliveryOutcome) {
    let scheme = claimed.endpoint.url.split(':').next().unwrap_or_default();
    let destination = Kind::of_scheme(&scheme.to_ascii_lowercase()).map_or("unknown", Kind::label);
    let labels = AttemptLabels {
        destination: destination.to_owned(),
        trigger: claimed.delivery.trigger.as_str().to_owned(),
        outcome: if outcome.succeeded() {
            "success"
        } else {
            "failure"
        }
        .to_owned(),
    };
    ctx.metrics.attempts.get_or_create(&labels).inc();
    let kind = DestinationLabels {
        destination: labels.destination,
    };
    (ctx.metrics.attempt_duration.get_or_create(&kind)).observe(outcome.duration.as_secs_f64());
}

fn next_state(ctx: &Context, claimed: &ClaimedDelivery, outcome: &DeliveryOutcome) -> NextState {
    if outcome.succeeded() {
        return NextState::Succeeded;
    }
    if outcome.error.as_ref().is_some_and(|e| e.permanent) {
        return NextState::Failed;
    }
    let attempts_made = claimed.delivery.attempt_count + 1;
    let delay = ctx
        .policy
        .next_delay(attempts_made, outcome.retry_after, &mut rand::thread_rng());
    match delay {
        Some(delay) => NextState::RetryAt(
            ctx.clock.now() + chrono::Duration::from_std(delay).unwrap_or_default(),
        ),
        None => NextState::Failed,
    }
}

/// The attempt log's row for `outcome`, an attempt made at `at` of the delivery
/// `(id, trigger)` of `message` to `endpoint`.
pub(crate) fn record(
    message: &Message,
    endpoint: &Endpoint,
    (delivery_id, trigger): (&str, TriggerType),
    outcome: &DeliveryOutcome,
    at: chrono::DateTime<chrono::Utc>,
) -> Attempt {
    Attempt {
        id: IdKind::Attempt.new_id(),
        delivery_id: delivery_id.to_owned(),
        msg_id: message.id.clone(),
        endpoint_id: endpoint.id.clone(),
        app_id: message.app_id.clone(),
        url: without_credentials(&endpoint.url),
        status: if outcome.succeeded() {
            DeliveryStatus::Success
        } else {
            DeliveryStatus::Failed
        },
        response_status_code: outcome.status_code.map_or(0, i32::from),
        response_headers: outcome
            .headers
            .iter()
            .map(|(k, v)| (without_nul(k), without_nul(v)))
            .collect(),
        response: without_nul(&outcome.body),
        response_truncated: outcome.body_truncated,
        request_headers: outcome.request_headers.clone(),
        response_duration_ms: outcome.duration.as_millis().try_into().unwrap_or(i64::MAX),
        error_kind: outcome.error.as_ref().map(|e| e.kind),
        error_detail: outcome.error.as_ref().map(|e| without_nul(&e.detail)),
        trigger,
        created_at: at,
    }
}

/// The endpoint's URL as the attempt log shows it: credentials in it (basic auth) are
/// replaced, since the log outlives the endpoint's settings and is shown more widely.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("redacted");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A receiver's text with NUL characters replaced: PostgreSQL text cannot hold them, and a
/// record that cannot be stored would have the delivery made again and again.
fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// Returns an unattempted delivery to the queue, due now, so another run takes it at once.
pub(crate) async fn give_back(ctx: &Context, claimed: &ClaimedDelivery) {
    give_back_at(ctx, claimed, ctx.clock.now()).await;
}

/// Returns an unattempted delivery to the queue, due at `due`.
async fn give_back_at(ctx: &Context, claimed: &ClaimedDelivery, due: DateTime<Utc>) {
    if let Err(e) = ctx
        .store
        .release(&claimed.delivery.id, &claimed.lease_token, due)
        .await
    {
        tracing::warn!(error = %e, "giving a delivery back failed; its lease will expire");
    }
    ctx.let_go(&claimed.delivery.id);
}

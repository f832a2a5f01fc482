//! One attempt: wait for a slot in the endpoint's lane, deliver, record.

use std::sync::Arc;
use std::time::Duration;

use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest};
use herald_core::ids::IdKind;
use herald_core::model::{Attempt, AttemptErrorKind, DeliveryStatus};
use herald_core::store::{ClaimedDelivery, FinishedAttempt, NextState};
use tokio_util::sync::CancellationToken;

use super::lanes::LaneTicket;
use super::Context;

/// Recording an attempt is tried this many times before the lease is left to expire.
const RECORD_TRIES: u32 = 3;

/// Makes one attempt of a claimed delivery and records it.
pub(crate) async fn run(
    ctx: Arc<Context>,
    claimed: ClaimedDelivery,
    ticket: LaneTicket,
    shutdown: CancellationToken,
) {
    let _slot = tokio::select! {
        slot = ticket.slot() => slot,
        _ = shutdown.cancelled() => return give_back(&ctx, &claimed).await,
    };
    if shutdown.is_cancelled() {
        return give_back(&ctx, &claimed).await;
    }
    // The endpoint's pace: its rate limit, or a pause it asked for.
    let start = match claimed.endpoint.rate_limit.filter(|r| *r > 0) {
        Some(per_second) => Some(ticket.pace(per_second, ctx.clock.now())),
        None => ticket.paused_until(),
    };
    if let Some(start) = start.filter(|at| *at > ctx.clock.now()) {
        tokio::select! {
            _ = ctx.clock.sleep_until(start) => {}
            _ = shutdown.cancelled() => return give_back(&ctx, &claimed).await,
        }
    }
    if claimed.endpoint.disabled {
        // Disabled after the message was published: the customer wants nothing sent there.
        let now = ctx.clock.now();
        if let Err(e) = ctx
            .store
            .cancel(&claimed.delivery.id, &claimed.lease_token, now)
            .await
        {
            tracing::warn!(error = %e, "canceling a delivery to a disabled endpoint failed");
        }
        ctx.settled.send_modify(|n| *n += 1);
        ctx.let_go(&claimed.delivery.id);
        return;
    }
    let started_at = ctx.clock.now();
    let outcome = deliver(&ctx, &claimed, started_at).await;
    if let (Some(429 | 503), Some(wait)) = (outcome.status_code, outcome.retry_after) {
        let wait = wait.min(ctx.policy.max_retry_after);
        ticket.hold_off(ctx.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default());
    }
    let gone = ctx.disable_on_gone && outcome.status_code == Some(410);
    let finished = FinishedAttempt {
        lease_token: claimed.lease_token.clone(),
        attempt: record(&claimed, &outcome, started_at),
        next: if gone {
            NextState::Failed
        } else {
            next_state(&ctx, &claimed, &outcome)
        },
    };
    if gone {
        // The receiver says this URL is gone for good: stop sending there until its owner
        // enables it again. Done before the attempt is recorded and counted as settled, so
        // that whoever sees the attempt also sees the endpoint disabled.
        let (app, endpoint) = (&claimed.message.app_id, &claimed.endpoint.id);
        if let Err(e) = ctx
            .store
            .disable_endpoint(app, endpoint, ctx.clock.now())
            .await
        {
            tracing::warn!(error = %e, endpoint = %endpoint, "disabling a gone endpoint failed");
        }
    }
    store_attempt(&ctx, &finished).await;
    ctx.let_go(&claimed.delivery.id);
    tracing::debug!(msg = %claimed.message.id, endpoint = %claimed.endpoint.id, ok = outcome.succeeded(), "attempt");
}

async fn deliver(
    ctx: &Context,
    claimed: &ClaimedDelivery,
    at: chrono::DateTime<chrono::Utc>,
) -> DeliveryOutcome {
    let Some(payload) = &claimed.message.payload else {
        return DeliveryOutcome {
            error: Some(DeliveryError {
                kind: AttemptErrorKind::Other,
                detail: "the message's payload was deleted before it could be delivered".into(),
            }),
            ..DeliveryOutcome::default()
        };
    };
    let request = DeliveryRequest {
        msg_id: claimed.message.id.clone(),
        event_type: claimed.message.event_type.clone(),
        payload: payload.clone(),
        endpoint: claimed.endpoint.clone(),
        attempted_at: at,
    };
    ctx.destination.deliver(&request).await
}

/// Records the attempt, trying again briefly if the store fails: after a delivered
/// message, a lost record means a duplicate delivery once the lease ends.
async fn store_attempt(ctx: &Context, finished: &FinishedAttempt) {
    for try_number in 1..=RECORD_TRIES {
        match ctx.store.finish_attempt(finished).await {
            Ok(()) => {
                ctx.settled.send_modify(|n| *n += 1);
                return;
            }
            Err(e) if try_number < RECORD_TRIES => {
                tracing::warn!(error = %e, try_number, "recording an attempt failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(try_number))).await;
            }
            Err(e) => {
                // The lease will expire and the delivery will be attempted again: at least once.
                tracing::error!(error = %e, delivery = %finished.attempt.delivery_id, "recording an attempt failed");
            }
        }
    }
}

fn next_state(ctx: &Context, claimed: &ClaimedDelivery, outcome: &DeliveryOutcome) -> NextState {
    if outcome.succeeded() {
        return NextState::Succeeded;
    }
    if claimed.message.payload.is_none() {
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

fn record(
    claimed: &ClaimedDelivery,
    outcome: &DeliveryOutcome,
    at: chrono::DateTime<chrono::Utc>,
) -> Attempt {
    Attempt {
        id: IdKind::Attempt.new_id(),
        delivery_id: claimed.delivery.id.clone(),
        msg_id: claimed.message.id.clone(),
        endpoint_id: claimed.endpoint.id.clone(),
        app_id: claimed.message.app_id.clone(),
        url: claimed.endpoint.url.clone(),
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
        response_duration_ms: outcome.duration.as_millis().try_into().unwrap_or(i64::MAX),
        error_kind: outcome.error.as_ref().map(|e| e.kind),
        error_detail: outcome.error.as_ref().map(|e| without_nul(&e.detail)),
        trigger: claimed.delivery.trigger,
        created_at: at,
    }
}

/// A receiver's text with NUL characters replaced: PostgreSQL text cannot hold them, and a
/// record that cannot be stored would have the delivery made again and again.
fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// Returns an unattempted delivery to the queue, due now, so another run takes it at once.
async fn give_back(ctx: &Context, claimed: &ClaimedDelivery) {
    let now = ctx.clock.now();
    if let Err(e) = ctx
        .store
        .release(&claimed.delivery.id, &claimed.lease_token, now)
        .await
    {
        tracing::warn!(error = %e, "giving a delivery back failed; its lease will expire");
    }
    ctx.let_go(&claimed.delivery.id);
}

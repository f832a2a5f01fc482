//! Attempts made outside the queue, whose caller waits for them (synchronous calls,
//! subscription verification): one try within a deadline, recorded afterwards as a
//! delivery that was never due.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_core::destination::{DeliveryError, DeliveryOutcome};
use herald_core::ids::IdKind;
use herald_core::model::{AttemptErrorKind, Endpoint, Message, TriggerType};
use herald_core::store::{FinishedAttempt, NextState};

use crate::dispatch::attempt::record;

/// The outcome of `delivering`, or a timeout once `limit` has passed (the request is
/// dropped, which closes its connection).
pub(crate) async fn within(
    limit: Duration,
    delivering: impl Future<Output = DeliveryOutcome>,
) -> DeliveryOutcome {
    let started = Instant::now();
    match tokio::time::timeout(limit, delivering).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let detail = format!("no answer within {} ms", limit.as_millis());
            let mut outcome: DeliveryOutcome =
                DeliveryError::permanent(AttemptErrorKind::Timeout, detail).into();
            outcome.duration = started.elapsed();
            outcome
        }
    }
}

/// The record of one unqueued attempt of `message` to `endpoint`: a delivery of its own,
/// ended by this attempt (never retried: whoever waited for it has had its answer).
pub(crate) fn finished(
    message: &Message,
    endpoint: &Endpoint,
    trigger: TriggerType,
    outcome: &DeliveryOutcome,
    at: DateTime<Utc>,
) -> FinishedAttempt {
    let delivery_id = IdKind::Delivery.new_id();
    FinishedAttempt {
        // The delivery is written leased to this token and settled in the same transaction.
        lease_token: IdKind::Delivery.new_id(),
        event_type: message.event_type.clone(),
        attempt: record(message, endpoint, (&delivery_id, trigger), outcome, at),
        next: if outcome.succeeded() {
            NextState::Succeeded
        } else {
            NextState::Failed
        },
    }
}

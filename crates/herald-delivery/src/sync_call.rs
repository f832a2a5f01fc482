//! Synchronous calls: one event delivered now to an application's endpoints, whose answer
//! the caller waits for and acts on (allow or deny an action, a text to reply with).
//!
//! A call is never queued: each endpoint gets one signed request, with the call's deadline
//! in `webhook-deadline` (unix milliseconds) and `webhook-sync: 1`, and whatever has not
//! answered by the deadline counts as a timeout. The answer decides by a fixed rule
//! ([`read_answer`]); a timeout or an error decides by the caller's policy. The call is
//! recorded just after it is answered like any delivery (message, attempts with trigger
//! `sync`, statistics), so the log can tell later why something was denied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest, Destination};
use herald_core::model::{AttemptErrorKind, Endpoint, Message, TriggerType};
use herald_core::store::RecordedCall;
use herald_core::{Clock, Store};
use serde::Deserialize;
use tokio::sync::{watch, Semaphore};

use crate::unqueued::{finished, within};

/// What a receiver's answer, or the policy, decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// What to decide when a receiver gives no usable answer (a timeout, a connection error,
/// a 5xx): allow (fail open), deny (fail closed), or report the failure to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Allow,
    Deny,
    Fail,
}

/// How several matching endpoints are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One at a time, oldest first: the first that answers decides; the next is asked only
    /// if the one before could not answer (a failover within the one deadline).
    First,
    /// All at once: any deny vetoes.
    All,
}

/// How a call, or one endpoint's part of it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver's answer decided.
    Answered,
    /// No usable answer; the caller's `allow` or `deny` policy decided.
    PolicyApplied,
    /// No answer by the deadline, and the policy is `fail`.
    Timeout,
    /// The receiver could not answer (an error, a 5xx), and the policy is `fail`.
    Error,
    /// No endpoint was there to ask.
    NoEndpoint,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::PolicyApplied => "policy_applied",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::NoEndpoint => "no_endpoint",
        }
    }
}

/// A call to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// The event, as it will be stored; its payload is what is sent.
    pub message: Message,
    /// The endpoints to ask, in the order [`Mode::First`] asks them.
    pub endpoints: Vec<Arc<Endpoint>>,
    pub timeout: Duration,
    pub mode: Mode,
    pub on_timeout: Policy,
    pub on_error: Policy,
}

/// One endpoint's part of a call.
#[derive(Debug, Clone)]
pub struct Answer {
    pub endpoint_id: String,
    pub attempt_id: String,
    pub outcome: Outcome,
    pub decision: Option<Decision>,
    /// Why, when the receiver said (`reason`, or a 4xx's body).
    pub reason: Option<String>,
    pub status: Option<u16>,
    /// The response body, cut at `delivery.max_response_bytes`.
    pub body: String,
    pub content_type: Option<String>,
    pub duration: Duration,
}

/// How a call ended: its outcome and decision, and which answer gave them.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub outcome: Outcome,
    pub decision: Option<Decision>,
    /// The index in `answers` of the one that decided (`None`: no endpoint).
    pub deciding: Option<usize>,
    pub answers: Vec<Answer>,
}

/// Calls whose recordings may still be on their way at once. Past it, a call waits for its
/// own recording before it answers: the database's pace, not memory, is what gives.
const RECORDINGS_IN_FLIGHT: u32 = 256;

/// Makes synchronous calls through the engine's destinations, and records them.
#[derive(Clone)]
pub struct SyncCaller {
    destination: Arc<dyn Destination>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// One permit per recording that may run after its call was answered.
    recordings: Arc<Semaphore>,
    /// Counts calls recorded (or whose recording failed), for tests and shutdown.
    recorded: Arc<watch::Sender<u64>>,
}

impl SyncCaller {
    pub fn new(
        destination: Arc<dyn Destination>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            destination,
            store,
            clock,
            recordings: Arc::new(Semaphore::new(RECORDINGS_IN_FLIGHT as usize)),
            recorded: Arc::new(watch::channel(0).0),
        }
    }

    /// How many calls have been recorded (or failed to be) so far.
    pub fn recorded(&self) -> watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Waits up to `within` for the recordings still on their way, before the store closes.
    pub async fn drain(&self, within: Duration) {
        let all = self.recordings.acquire_many(RECORDINGS_IN_FLIGHT);
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("some answered synchronous calls were not recorded before shutdown");
        }
    }

    /// Writes a call's message and attempts; failing to is logged, never answered.
    async fn record(&self, recorded: &RecordedCall) {
        if let Err(e) = self.store.record_call(recorded).await {
            tracing::error!(error = %e, msg = %recorded.message.id, "recording a synchronous call failed");
        }
        self.recorded.send_modify(|n| *n += 1);
    }

    /// Makes `call` and records it. The answer stands even if recording fails: the
    /// receivers were asked and answered, and the caller must hear what they said.
    ///
    /// The recording is written just after the answer is returned: its commit was all of
    /// a call's overhead (p99 5-28 ms against 1 ms on SQLite at 200 calls/s, BENCHMARKS.md).
    /// The call's `msgId` is readable a moment later, and a crash in that moment loses the
    /// call's log entry, never a message that was to be delivered.
    pub async fn call(&self, call: &Call) -> CallResult {
        let deadline = Instant::now() + call.timeout;
        let attempted_at = self.clock.now();
        let deadline_ms = (attempted_at
            + chrono::Duration::from_std(call.timeout).unwrap_or_default())
        .timestamp_millis()
        .to_string();
        let ask = |endpoint: Arc<Endpoint>| {
            let deadline_ms = deadline_ms.clone();
            async move {
                let outcome = self
                    .ask(call, endpoint.clone(), &deadline_ms, deadline)
                    .await;
                (endpoint, outcome)
            }
        };
        let mut made = Vec::new();
        match call.mode {
            Mode::All => {
                let asks = call.endpoints.iter().cloned().map(ask);
                made = futures_util::future::join_all(asks).await;
            }
            Mode::First => {
                for endpoint in call.endpoints.iter().cloned() {
                    if Instant::now() >= deadline && !made.is_empty() {
                        break;
                    }
                    let (endpoint, outcome) = ask(endpoint).await;
                    let answered = read_answer(&outcome).is_some();
                    made.push((endpoint, outcome));
                    if answered {
                        break;
                    }
                }
            }
        }
        let mut attempts = Vec::with_capacity(made.len());
        let mut answers = Vec::with_capacity(made.len());
        for (endpoint, outcome) in &made {
            let trigger = TriggerType::Sync;
            let attempt = finished(&call.message, endpoint, trigger, outcome, attempted_at);
            answers.push(answer_of(call, endpoint, &attempt.attempt.id, outcome));
            attempts.push(attempt);
        }
        let recorded = RecordedCall {
            message: call.message.clone(),
            attempts,
        };
        match self.recordings.clone().try_acquire_owned() {
            Ok(permit) => {
                let caller = self.clone();
                tokio::spawn(async move {
                    caller.record(&recorded).await;
                    drop(permit);
                });
            }
            Err(_) => self.record(&recorded).await,
        }
        decide(call.mode, answers)
    }

    /// Sends the call to one endpoint, giving up at `deadline`.
    async fn ask(
        &self,
        call: &Call,
        endpoint: Arc<Endpoint>,
        deadline_ms: &str,
        deadline: Instant,
    ) -> DeliveryOutcome {
        let started = Instant::now();
        let Some(payload) = call.message.payload.clone() else {
            return DeliveryError::permanent(AttemptErrorKind::Other, "the call has no payload")
                .into();
        };
        // The call's headers travel as the endpoint's own custom headers do; the ones
        // Herald always sets (the signature's) still win.
        let mut endpoint = (*endpoint).clone();
        endpoint
            .headers
            .insert("webhook-deadline".into(), deadline_ms.to_owned());
        endpoint.headers.insert("webhook-sync".into(), "1".into());
        let request = DeliveryRequest {
            msg_id: call.message.id.clone(),
            event_type: call.message.event_type.clone(),
            payload,
            endpoint: Arc::new(endpoint),
            attempted_at: self.clock.now(),
            rendered: None,
            traceparent: call.message.traceparent.clone(),
        };
        let remaining = deadline.saturating_duration_since(started);
        within(remaining, self.destination.deliver(&request)).await
    }
}

/// What a receiver's response decides, if it decides (`None`: no usable answer):
/// - a 2xx with a JSON object holding `"allow": true|false`, or `"decision": "allow"|"deny"`
///   (and optionally `"reason"`), decides that;
/// - any other 2xx allows, its body being the reply (Slack-style text);
/// - a 4xx denies, its body being the reason;
/// - anything else (a 5xx, a redirect, no response) is no answer.
pub fn read_answer(outcome: &DeliveryOutcome) -> Option<(Decision, Option<String>)> {
    let status = outcome.status_code?;
    if (200..300).contains(&status) {
        #[derive(Deserialize)]
        struct Verdict {
            allow: Option<bool>,
            decision: Option<String>,
            reason: Option<String>,
        }
        let verdict = serde_json::from_str::<Verdict>(&outcome.body).ok();
        let said = verdict
            .as_ref()
            .and_then(|v| match (v.allow, v.decision.as_deref()) {
                (Some(true), _) | (None, Some("allow")) => Some(Decision::Allow),
                (Some(false), _) | (None, Some("deny")) => Some(Decision::Deny),
                _ => None,
            });
        return Some(match said {
            Some(decision) => (decision, verdict.and_then(|v| v.reason)),
            None => (Decision::Allow, None),
        });
    }
    if (400..500).contains(&status) {
        let reason = Some(outcome.body.clone()).filter(|b| !b.is_empty());
        return Some((Decision::Deny, reason));
    }
    None
}

/// One endpoint's answer: what it said, or what the policy makes of its silence.
fn answer_of(
    call: &Call,
    endpoint: &Endpoint,
    attempt_id: &str,
    outcome: &DeliveryOutcome,
) -> Answer {
    let (outcome_kind, decision, reason) = match read_answer(outcome) {
        Some((decision, reason)) => (Outcome::Answered, Some(decision), reason),
        None => {
            let timed_out = outcome
                .error
                .as_ref()
                .is_some_and(|e| e.kind == AttemptErrorKind::Timeout);
            let (policy, failed) = if timed_out {
                (call.on_timeout, Outcome::Timeout)
            } else {
                (call.on_error, Outcome::Error)
            };
            match policy {
                Policy::Allow => (Outcome::PolicyApplied, Some(Decision::Allow), None),
                Policy::Deny => (Outcome::PolicyApplied, Some(Decision::Deny), None),
                Policy::Fail => (failed, None, None),
            }
        }
    };
    Answer {
        endpoint_id: endpoint.id.clone(),
        attempt_id: attempt_id.to_owned(),
        outcome: outcome_kind,
        decision,
        reason,
        status: outcome.status_code,
        body: outcome.body.clone(),
        content_type: outcome
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone()),
        duration: outcome.duration,
    }
}

/// The call's result from its answers. `First` asked until one answered, so the last
/// decides. `All` is a veto: a deny (said, or by policy) wins, then a failure the caller
/// wanted reported, then an allow, an answered one before one by policy.
fn decide(mode: Mode, answers: Vec<Answer>) -> CallResult {
    let deciding = match mode {
        _ if answers.is_empty() => None,
        Mode::First => Some(answers.len() - 1),
        Mode::All => {
            let rank = |a: &Answer| match (a.decision, a.outcome) {
                (Some(Decision::Deny), _) => 0,
                (None, _) => 1,
                (Some(Decision::Allow), Outcome::Answered) => 2,
                (Some(Decision::Allow), _) => 3,
            };
            (0..answers.len()).min_by_key(|&i| rank(&answers[i]))
        }
    };
    let (outcome, decision) = match deciding {
        Some(i) => (answers[i].outcome, answers[i].decision),
        None => (Outcome::NoEndpoint, None),
    };
    CallResult {
        outcome,
        decision,
        deciding,
        answers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> DeliveryOutcome {
        DeliveryOutcome {
            status_code: Some(status),
            body: body.into(),
            ..DeliveryOutcome::default()
        }
    }

    #[test]
    fn an_answer_decides_by_its_status_and_json() {
        let deny = read_answer(&response(200, r#"{"allow": false, "reason": "x"}"#));
        assert_eq!(deny, Some((Decision::Deny, Some("x".into()))));
        let allow = read_answer(&response(200, r#"{"decision": "allow"}"#));
        assert_eq!(allow, Some((Decision::Allow, None)));
        assert_eq!(
            read_answer(&response(200, "hello")),
            Some((Decision::Allow, None))
        );
        assert_eq!(
            read_answer(&response(403, "over quota")),
            Some((Decision::Deny, Some("over quota".into())))
        );
        assert_eq!(read_answer(&response(503, "")), None);
        assert_eq!(read_answer(&response(302, "")), None);
        assert_eq!(read_answer(&DeliveryOutcome::default()), None);
    }

    fn answer(outcome: Outcome, decision: Option<Decision>) -> Answer {
        Answer {
            endpoint_id: String::new(),
            attempt_id: String::new(),
            outcome,
            decision,
            reason: None,
            status: None,
            body: String::new(),
            content_type: None,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn with_all_a_deny_vetoes_and_a_failure_beats_an_allow() {
        let allow = answer(Outcome::Answered, Some(Decision::Allow));
        let deny = answer(Outcome::PolicyApplied, Some(Decision::Deny));
        let failed = answer(Outcome::Timeout, None);
        let result = decide(Mode::All, vec![allow.clone(), failed.clone(), deny]);
        assert_eq!(
            (result.decision, result.deciding),
            (Some(Decision::Deny), Some(2))
        );
        let result = decide(Mode::All, vec![allow.clone(), failed]);
        assert_eq!(
            (result.outcome, result.deciding),
            (Outcome::Timeout, Some(1))
        );
        let result = decide(Mode::All, vec![allow]);
        assert_eq!(result.decision, Some(Decision::Allow));
        assert_eq!(decide(Mode::First, vec![]).outcome, Outcome::NoEndpoint);
    }
}

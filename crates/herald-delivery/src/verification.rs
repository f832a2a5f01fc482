//! Subscription intent verification: before an endpoint of an application that asks for it
//! gets any event, it must show it wants them by echoing a challenge. Meanwhile its
//! deliveries are held, not dropped (the store writes them as status `Held`), and they
//! become due the moment it verifies.
//!
//! Two ways to ask, the application's choice:
//! - `challenge`: a signed POST of `{"type": "webhook.verification", "challenge": …}`,
//!   answered with a 2xx whose body is the challenge or `{"challenge": …}`;
//! - `websub`: a GET with `hub.mode=subscribe`, `hub.topic`, `hub.challenge` and
//!   `hub.lease_seconds`, answered with the challenge as the body; a 404 refuses.
//!
//! A try that fails is tried again on the retry schedule; after `verification_tries` the
//! endpoint is `verification_failed` and the provider hears of it by an operational
//! webhook. Every try is recorded as a message with one attempt (trigger `verification`),
//! so the log shows what the receiver answered. Endpoints are leased for a try, so nodes
//! never ask the same endpoint at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest, Rendered};
use herald_core::metrics::Metrics;
use herald_core::model::{
    AttemptErrorKind, Endpoint, Message, TriggerType, VerificationMode, VERIFICATION_EVENT_TYPE,
};
use herald_core::store::{RecordedCall, VerificationResult};
use herald_core::{Clock, Store};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::destinations::http::HttpDestination;
use crate::operational::Operational;
use crate::unqueued::{finished, within};

/// The event type of a verification's recorded message.
pub const EVENT_TYPE: &str = VERIFICATION_EVENT_TYPE;
/// What `hub.lease_seconds` says: Herald does not expire verified subscriptions.
const WEBSUB_LEASE_SECONDS: u64 = 365 * 24 * 3600;
/// How often the store is asked for due tries when nothing wakes the loop sooner.
const POLL: Duration = Duration::from_secs(1);
/// Endpoints tried at once, at most, per look.
const BATCH: u32 = 32;

/// How verification tries are made.
#[derive(Debug, Clone)]
pub struct VerificationSettings {
    pub tries: u32,
    /// The wait before the 2nd, 3rd… try (the last one repeats).
    pub schedule: Vec<Duration>,
    pub timeout: Duration,
}

/// The loop that verifies endpoints' subscriptions.
pub struct Verifier {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    http: Arc<HttpDestination>,
    operational: Operational,
    settings: VerificationSettings,
    wake: Arc<Notify>,
    /// Counts tries settled (recorded, or found superseded), for whoever watches progress.
    tried: watch::Sender<u64>,
    metrics: Metrics,
}

impl Verifier {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        http: Arc<HttpDestination>,
        settings: VerificationSettings,
    ) -> Self {
        Self {
            operational: Operational::new(store.clone(), clock.clone()),
            store,
            clock,
            http,
            settings,
            wake: Arc::default(),
            tried: watch::Sender::new(0),
            metrics: Metrics::default(),
        }
    }

    /// Counts its tries in `metrics` (by default, in a registry nobody reads).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Notifying it makes the loop look for due tries now (an endpoint was just created).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// How many verification tries this process has settled so far.
    pub fn tried(&self) -> watch::Receiver<u64> {
        self.tried.subscribe()
    }

    /// Verifies due endpoints until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        loop {
            let now = this.clock.now();
            // A try holds its endpoint for its timeout and as long again for recording.
            let lease = chrono::Duration::from_std(this.settings.timeout * 2).unwrap_or_default();
            match this
                .store
                .claim_verifications(now, now + lease, BATCH)
                .await
            {
                Ok(claimed) => {
                    for (endpoint, challenge) in claimed {
                        let this = this.clone();
                        tokio::spawn(async move { this.try_one(endpoint, challenge).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "looking for due verifications failed"),
            }
            // Deliveries held while a publish raced a verification, or of endpoints whose
            // application stopped asking, are let go here.
            if let Err(e) = this.store.release_held(this.clock.now()).await {
                tracing::warn!(error = %e, "releasing held deliveries failed");
            }
            let next = this.clock.now() + chrono::Duration::from_std(POLL).unwrap_or_default();
            tokio::select! {
                _ = this.wake.notified() => {}
                _ = this.clock.sleep_until(next) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// One try: ask, judge, record, and settle the endpoint's state.
    async fn try_one(&self, endpoint: Endpoint, challenge: String) {
        let mode = match self.store.get_app(&endpoint.app_id).await {
            Ok(app) => app.verification,
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %endpoint.id, "verification: reading the application failed");
                return;
            }
        };
        let at = self.clock.now();
        let payload = json!({"type": EVENT_TYPE, "mode": mode.as_str(), "challenge": challenge});
        let message = Message::new(&endpoint.app_id, EVENT_TYPE, &payload.to_string(), at);
        let (outcome, refused) = match mode {
            // The application stopped asking since: nothing to prove.
            VerificationMode::None => (DeliveryOutcome::default(), false),
            VerificationMode::Challenge => {
                self.ask_challenge(&endpoint, &message, &challenge, at)
                    .await
            }
            VerificationMode::WebSub => self.ask_websub(&endpoint, &message, &challenge, at).await,
        };
        if mode != VerificationMode::None {
            self.record(&endpoint, &message, &outcome, at).await;
        }
        let result = self.judge(&endpoint, &outcome, refused);
        if mode != VerificationMode::None {
            let verified = matches!(result, VerificationResult::Verified(_));
            let outcome = if verified { "verified" } else { "failed" };
            Metrics::count(&self.metrics.verification_tries, outcome);
        }
        match self
            .store
            .finish_verification(&endpoint.id, &challenge, &result)
            .await
        {
            Ok(true) => {
                if let VerificationResult::Failed { error } = &result {
                    tracing::warn!(endpoint = %endpoint.id, %error, "endpoint failed its subscription verification");
                    self.operational
                        .endpoint_verification_failed(&endpoint, error)
                        .await;
                }
            }
            // A newer request (a URL change) superseded this try.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %endpoint.id, "recording a verification failed")
            }
        }
        self.tried.send_modify(|n| *n += 1);
    }

    async fn ask_challenge(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        challenge: &str,
        at: DateTime<Utc>,
    ) -> (DeliveryOutcome, bool) {
        let mut outcome = self.send(endpoint, message, &endpoint.url, None, at).await;
        if outcome.succeeded() && !echoes(&outcome.body, challenge) {
            outcome.error = Some(DeliveryError::new(
                AttemptErrorKind::InvalidResponse,
                "the answer did not echo the challenge",
            ));
        }
        (outcome, false)
    }

    async fn ask_websub(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        challenge: &str,
        at: DateTime<Utc>,
    ) -> (DeliveryOutcome, bool) {
        let Ok(mut url) = url::Url::parse(&endpoint.url) else {
            let error = DeliveryError::permanent(AttemptErrorKind::Other, "the URL does not parse");
            return (error.into(), true);
        };
        url.query_pairs_mut()
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.topic", &endpoint.app_id)
            .append_pair("hub.challenge", challenge)
            .append_pair("hub.lease_seconds", &WEBSUB_LEASE_SECONDS.to_string());
        let get = Rendered {
            method: Some("GET".into()),
            body: Some(String::new()),
            ..Rendered::default()
        };
        let mut outcome = self
            .send(endpoint, message, url.as_str(), Some(get), at)
            .await;
        // WebSub: a subscriber that does not want the subscription answers 404.
        let refused = outcome.status_code == Some(404);
        if outcome.succeeded() && outcome.body.trim() != challenge {
            outcome.error = Some(DeliveryError::new(
                AttemptErrorKind::InvalidResponse,
                "the answer's body was not the challenge",
            ));
        }
        (outcome, refused)
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        url: &str,
        rendered: Option<Rendered>,
        at: DateTime<Utc>,
    ) -> DeliveryOutcome {
        let mut plain = endpoint.clone();
        // The challenge is sent as it is, whatever the endpoint's template makes of events.
        plain.template = None;
        let request = DeliveryRequest {
            msg_id: message.id.clone(),
            event_type: EVENT_TYPE.into(),
            payload: message.payload.clone().unwrap_or_default(),
            endpoint: Arc::new(plain),
            attempted_at: at,
            rendered,
            traceparent: None,
        };
        within(self.settings.timeout, self.http.deliver_to(url, &request)).await
    }

    /// Records the try in the log: a message with one attempt, trigger `verification`.
    async fn record(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        outcome: &DeliveryOutcome,
        at: DateTime<Utc>,
    ) {
        let trigger = TriggerType::Verification;
        let call = RecordedCall {
            message: message.clone(),
            attempts: vec![finished(message, endpoint, trigger, outcome, at)],
        };
        if let Err(e) = self.store.record_call(&call).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "recording a verification try failed");
        }
    }

    /// What a try means for the endpoint: verified, tried again later, or failed for good
    /// (no try left, or the receiver refused).
    fn judge(
        &self,
        endpoint: &Endpoint,
        outcome: &DeliveryOutcome,
        refused: bool,
    ) -> VerificationResult {
        let now = self.clock.now();
        let Some(error) = &outcome.error else {
            return VerificationResult::Verified(now);
        };
        let detail = match outcome.status_code {
            Some(status) => format!("{} (HTTP {status})", error.detail),
            None => error.detail.clone(),
        };
        let tries = endpoint.verification.tries + 1;
        if refused || tries >= self.settings.tries {
            return VerificationResult::Failed { error: detail };
        }
        let index = (tries as usize - 1).min(self.settings.schedule.len().saturating_sub(1));
        let wait = self
            .settings
            .schedule
            .get(index)
            .copied()
            .unwrap_or(Duration::from_secs(60));
        VerificationResult::Retry {
            next: now + chrono::Duration::from_std(wait).unwrap_or_default(),
            error: detail,
        }
    }
}

/// Whether a body echoes `challenge`: the challenge itself, or `{"challenge": …}`.
fn echoes(body: &str, challenge: &str) -> bool {
    let body = body.trim();
    body == challenge
        || serde_json::from_str::<Value>(body).is_ok_and(|v| v["challenge"] == challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_is_the_bare_challenge_or_a_json_object_holding_it() {
        assert!(echoes("abc\n", "abc"));
        assert!(echoes(r#"{"challenge": "abc"}"#, "abc"));
        assert!(!echoes(r#"{"challenge": "abd"}"#, "abc"));
        assert!(!echoes("", "abc"));
    }
}

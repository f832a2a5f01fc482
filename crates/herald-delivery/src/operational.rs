//! Operational webhooks: events about Herald itself (an endpoint disabled, a message that
//! could not be delivered, …) sent to endpoints the provider configures.
//!
//! They travel Herald's own pipeline: each event is a message of a reserved, hidden
//! application ([`OPERATIONAL_APP_ID`]) whose endpoints are the operational endpoints, so
//! they are durable, signed, retried and logged like any webhook. Event names and data
//! follow Svix's.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Application, Endpoint, Message, OPERATIONAL_APP_ID};
use herald_core::store::{NewMessage, Order, PageRequest};
use herald_core::{Clock, Store, StoreError};
use serde_json::{json, Value};

/// Every operational event type, as an endpoint's `eventTypes` may name them.
pub const EVENT_TYPES: &[&str] = &[
    ENDPOINT_CREATED,
    ENDPOINT_UPDATED,
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    ENDPOINT_ENABLED,
    ATTEMPT_FAILING,
    ATTEMPT_EXHAUSTED,
    ATTEMPT_RECOVERED,
    ENDPOINT_VERIFICATION_FAILED,
];
pub const ENDPOINT_CREATED: &str = "endpoint.created";
pub const ENDPOINT_UPDATED: &str = "endpoint.updated";
pub const ENDPOINT_DELETED: &str = "endpoint.deleted";
pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";
pub const ENDPOINT_ENABLED: &str = "endpoint.enabled";
pub const ATTEMPT_FAILING: &str = "message.attempt.failing";
pub const ATTEMPT_EXHAUSTED: &str = "message.attempt.exhausted";
pub const ATTEMPT_RECOVERED: &str = "message.attempt.recovered";
/// Herald's own: an endpoint did not verify its subscription after every try.
pub const ENDPOINT_VERIFICATION_FAILED: &str = "endpoint.verification_failed";

/// After this many failed attempts of one message to one endpoint, `message.attempt.failing`
/// is sent (Svix's choice: the fourth); a later success sends `message.attempt.recovered`.
pub const FAILING_AFTER_ATTEMPTS: u32 = 4;

/// Why an endpoint was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableTrigger {
    /// By Herald: it failed for too long, or answered `410 Gone`.
    Automatic,
    /// By a user, through the API.
    Manual,
}

/// The last attempt, as operational message events describe it.
#[derive(Debug, Clone)]
pub struct LastAttempt {
    pub id: String,
    pub response_status_code: i32,
    pub timestamp: DateTime<Utc>,
}

/// Sends operational events.
#[derive(Clone)]
pub struct Operational {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Operational {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates the reserved application once; every node calls this at start.
    pub async fn ensure_app(store: &dyn Store, now: DateTime<Utc>) -> Result<(), StoreError> {
        match store.get_app(OPERATIONAL_APP_ID).await {
            Ok(_) => return Ok(()),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let app = Application {
            id: OPERATIONAL_APP_ID.to_owned(),
            uid: None,
            name: "Herald operational webhooks".to_owned(),
            rate_limit: None,
            metadata: Default::default(),
            verification: Default::default(),
            created_at: now,
            updated_at: now,
        };
        match store.create_app(&app).await {
            // Another node made it first.
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `endpoint.created`, `.updated`, `.deleted` or `.enabled`.
    pub async fn endpoint_changed(&self, event_type: &str, app: &Application, endpoint: &Endpoint) {
        if app.id == OPERATIONAL_APP_ID {
            return;
        }
        let data = json!({
            "appId": app.id,
            "appUid": app.uid,
            "endpointId": endpoint.id,
            "endpointUid": endpoint.uid,
        });
        self.emit(event_type, data).await;
    }

    /// `endpoint.disabled`.
    pub async fn endpoint_disabled(
        &self,
        app_uid: Option<&str>,
        endpoint: &Endpoint,
        fail_since: DateTime<Utc>,
        trigger: DisableTrigger,
    ) {
        if endpoint.app_id == OPERATIONAL_APP_ID {
            return;
        }
        let data = json!({
            "appId": endpoint.app_id,
            "appUid": app_uid,
            "endpointId": endpoint.id,
            "endpointUid": endpoint.uid,
            "failSince": fail_since,
            "trigger": match trigger {
                DisableTrigger::Automatic => "automatic",
                DisableTrigger::Manual => "manual",
            },
        });
        self.emit(ENDPOINT_DISABLED, data).await;
    }

    /// `endpoint.verification_failed`.
    pub async fn endpoint_verification_failed(&self, endpoint: &Endpoint, error: &str) {
        let app_uid = self.app_uid(&endpoint.app_id).await;
        let data = json!({
            "appId": endpoint.app_id,
            "appUid": app_uid,
            "endpointId": endpoint.id,
            "endpointUid": endpoint.uid,
            "error": error,
        });
        self.emit(ENDPOINT_VERIFICATION_FAILED, data).await;
    }

    /// `message.attempt.failing`, `.exhausted` or `.recovered`.
    pub async fn attempt_event(
        &self,
        event_type: &str,
        message: &Message,
        endpoint_id: &str,
        last: &LastAttempt,
    ) {
        if message.app_id == OPERATIONAL_APP_ID {
            // Never report on operational webhooks themselves: that could loop.
            return;
        }
        let app_uid = self.app_uid(&message.app_id).await;
        let data = json!({
            "appId": message.app_id,
            "appUid": app_uid,
            "msgId": message.id,
            "msgEventId": message.event_id,
            "endpointId": endpoint_id,
            "lastAttempt": {
                "id": last.id,
                "responseStatusCode": last.response_status_code,
                "timestamp": last.timestamp,
            },
        });
        self.emit(event_type, data).await;
    }

    /// The uid of an application, for event data; `None` if it has none or is gone.
    pub async fn app_uid(&self, app_id: &str) -> Option<String> {
        self.store.get_app(app_id).await.ok().and_then(|a| a.uid)
    }

    /// Publishes one event to the operational endpoints. Best effort: a failure is logged,
    /// never passed to the caller, whose own work (an API call, an attempt) succeeded.
    async fn emit(&self, event_type: &str, mut data: Value) {
        strip_nulls(&mut data);
        match self.has_endpoints().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, event_type, "operational webhook not sent");
                return;
            }
        }
        let now = self.clock.now();
        let payload = json!({ "type": event_type, "timestamp": now, "data": data });
        let new = NewMessage::from(Message {
            id: IdKind::Message.new_id(),
            app_id: OPERATIONAL_APP_ID.to_owned(),
            event_type: event_type.to_owned(),
            event_id: None,
            channels: None,
            tags: None,
            payload: Some(payload.to_string().into()),
            created_at: now,
            traceparent: None,
            expires_at: None,
        });
        // Waits for room in the store's queue: nobody would publish this event again.
        if let Err(e) = self.store.create_message_waiting(&new).await {
            tracing::warn!(error = %e, event_type, "operational webhook not sent");
        }
    }

    /// Whether any operational endpoint exists: without one, events are not stored at all.
    async fn has_endpoints(&self) -> Result<bool, StoreError> {
        let page = PageRequest {
            limit: 1,
            cursor: None,
            order: Order::Ascending,
        };
        let found = self.store.list_endpoints(OPERATIONAL_APP_ID, &page).await?;
        Ok(!found.items.is_empty())
    }
}

/// Leaves optional fields out rather than sending `null`, as Svix does.
fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

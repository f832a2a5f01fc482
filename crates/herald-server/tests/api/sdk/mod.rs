//! The official Svix Rust SDK (2.9.1) driving every `/api/v1` route of a real Herald.

mod applications;
mod attempts;
mod auth;
mod endpoint_extras;
mod endpoints;
mod event_types;
mod messages;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald_core::{Clock, SystemClock};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use svix::api::{
    ApplicationListOptions, EndpointListOptions, EventTypeDeleteOptions, EventTypeListOptions,
    MessageAttemptListAttemptedMessagesOptions, MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions, MessageCreateOptions, MessageGetOptions, MessageListOptions,
    Svix,
};
use svix::error::Error;
use svix::models::{
    AppPortalAccessIn, ApplicationIn, ApplicationOut, ApplicationPatch, BackgroundTaskType,
    EndpointHeadersIn, EndpointHeadersPatchIn, EndpointIn, EndpointOut, EndpointPatch,
    EndpointSecretRotateIn, EndpointUpsertIn, EventExampleIn, EventTypeIn, EventTypePatch,
    EventTypeUpsertIn, MessageAttemptOut, MessageAttemptTriggerType, MessageIn, MessageOut,
    MessageStatus, MessageStatusText, RecoverIn,
};
use svix::webhooks::Webhook;

use crate::helpers::{Receiver, TestHerald};

/// A valid endpoint secret (24 bytes of base64), as a caller would choose one.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Another valid endpoint secret.
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

fn map<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A patch field from JSON. The SDK's patch fields are `js_option::JsOption`, which it does
/// not re-export, so this is how a test sends a value or an explicit `null`.
fn js<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a value of the patch field's type")
}

/// The status of the HTTP error an SDK call must fail with.
fn http_status<T: Debug>(result: svix::error::Result<T>, what: &str) -> u16 {
    match result {
        Err(Error::Http(e)) => e.status.as_u16(),
        Err(Error::Validation(e)) => e.status.as_u16(),
        Err(other) => panic!("{what}: expected an HTTP error, got {other}"),
        Ok(value) => panic!("{what}: expected an HTTP error, got {value:?}"),
    }
}

fn ids<'a>(ids: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    ids.into_iter().cloned().collect()
}

fn app_in(name: &str, uid: &str) -> ApplicationIn {
    ApplicationIn {
        uid: Some(uid.to_owned()),
        ..ApplicationIn::new(name.to_owned())
    }
}

async fn create_app(svix: &Svix, uid: &str) -> ApplicationOut {
    svix.application()
        .create(app_in(uid, uid), None)
        .await
        .expect("application created")
}

async fn create_endpoint(svix: &Svix, app: &str, body: EndpointIn) -> EndpointOut {
    svix.endpoint()
        .create(app.to_owned(), body, None)
        .await
        .expect("endpoint created")
}

async fn create_event_type(svix: &Svix, name: &str, schemas: Option<Value>) {
    let body = EventTypeIn {
        schemas,
        ..EventTypeIn::new(name.to_owned(), format!("{name} happened"))
    };
    svix.event_type()
        .create(body, None)
        .await
        .expect("event type created");
}

async fn publish(svix: &Svix, app: &str, body: MessageIn) -> MessageOut {
    svix.message()
        .create(app.to_owned(), body, None)
        .await
        .expect("message created")
}

fn message(event_type: &str, payload: Value) -> MessageIn {
    MessageIn::new(event_type.to_owned(), payload)
}

/// An application with one endpoint to `receiver`, and one message delivered to it.
struct Delivered {
    app: String,
    endpoint: String,
    msg: String,
}

async fn deliver_one(herald: &TestHerald, receiver: &Receiver) -> Delivered {
    let svix = herald.svix();
    let app = create_app(&svix, "shop").await.id;
    let endpoint = create_endpoint(&svix, &app, EndpointIn::new(receiver.url.clone()))
        .await
        .id;
    let msg = publish(&svix, &app, message("order.paid", json!({"order": "o_1"})))
        .await
        .id;
    receiver.wait_for(1).await;
    herald.wait_recorded(1).await;
    Delivered { app, endpoint, msg }
}

async fn attempts_of(svix: &Svix, d: &Delivered) -> Vec<MessageAttemptOut> {
    svix.message_attempt()
        .list_by_msg(d.app.clone(), d.msg.clone(), None)
        .await
        .expect("attempts of the message")
        .data
}

fn user_schema() -> Value {
    json!({"1": {
        "type": "object",
        "required": ["user_id"],
        "properties": {"user_id": {"type": "string"}},
        "examples": [{"user_id": "u_1"}, {"user_id": "u_2"}]
    }})
}

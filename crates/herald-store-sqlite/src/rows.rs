//! Conversions between rows and domain objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use herald_core::model::{
    Application, Attempt, AttemptErrorKind, ClientIdentity, Delivery, DeliveryStatus, Endpoint,
    EventType, Message, PreviousSecret, Token, TriggerType,
};
use herald_core::sealing::SecretSealer;
use herald_core::signing::EndpointSecret;
use herald_core::StoreError;
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::internal;

/// Milliseconds since the epoch, as stored.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`ms`].
pub fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

/// Serialises a value to a JSON column.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(internal)
}

fn opt_json<T: DeserializeOwned>(text: Option<String>) -> Result<Option<T>, StoreError> {
    text.map(|t| from_json(&t)).transpose()
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(col).map_err(internal)
}

fn status(n: i64) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::from_i64(n).ok_or_else(|| internal(sqlx::Error::Decode("bad status".into())))
}

/// A stored secret, opened if it was sealed.
fn secret(text: &str, sealer: &SecretSealer) -> Result<EndpointSecret, StoreError> {
    let text = sealer.open(text).map_err(internal)?;
    EndpointSecret::parse(&text).map_err(internal)
}

pub fn application(row: &SqliteRow) -> Result<Application, StoreError> {
    Ok(Application {
        id: get(row, "id")?,
        uid: get(row, "uid")?,
        name: get(row, "name")?,
        rate_limit: get::<Option<i64>>(row, "rate_limit")?.map(|n| n as u32),
        metadata: from_json(&get::<String>(row, "metadata")?)?,
        created_at: time(get(row, "created_at")?),
        updated_at: time(get(row, "updated_at")?),
    })
}

pub fn token(row: &SqliteRow) -> Result<Token, StoreError> {
    Ok(Token {
        id: get(row, "id")?,
        hash: get(row, "hash")?,
        app_id: get(row, "app_id")?,
        description: get(row, "description")?,
        created_at: time(get(row, "created_at")?),
        expires_at: opt_time(get(row, "expires_at")?),
    })
}

pub fn event_type(row: &SqliteRow) -> Result<EventType, StoreError> {
    Ok(EventType {
        name: get(row, "name")?,
        description: get(row, "description")?,
        schemas: opt_json(get(row, "schemas")?)?,
        archived: get(row, "archived")?,
        deprecated: get(row, "deprecated")?,
        feature_flags: opt_json(get(row, "feature_flags")?)?,
        group_name: get(row, "group_name")?,
        created_at: time(get(row, "created_at")?),
        updated_at: time(get(row, "updated_at")?),
    })
}

pub fn endpoint(row: &SqliteRow, sealer: &SecretSealer) -> Result<Endpoint, StoreError> {
    let previous_secret = match get::<Option<String>>(row, "previous_secret")? {
        Some(text) => Some(PreviousSecret {
            secret: secret(&text, sealer)?,
            expires_at: time(get::<Option<i64>>(row, "previous_secret_expires_at")?.unwrap_or(0)),
        }),
        None => None,
    };
    Ok(Endpoint {
        id: get(row, "id")?,
        app_id: get(row, "app_id")?,
        uid: get(row, "uid")?,
        url: sealer.open(&get::<String>(row, "url")?).map_err(internal)?,
        description: get(row, "description")?,
        version: get(row, "version")?,
        rate_limit: get::<Option<i64>>(row, "rate_limit")?.map(|n| n as u32),
        max_concurrency: get::<Option<i64>>(row, "max_concurrency")?.map(|n| n as u32),
        disabled: get(row, "disabled")?,
        failing_since: get::<Option<i64>>(row, "failing_since")?.map(time),
        filter_types: opt_json(get(row, "filter_types")?)?,
        channels: opt_json(get(row, "channels")?)?,
        metadata: from_json(&get::<String>(row, "metadata")?)?,
        headers: from_json::<BTreeMap<String, String>>(&get::<String>(row, "headers")?)?,
        secret: secret(&get::<String>(row, "secret")?, sealer)?,
        previous_secret,
        client_identity: get::<Option<String>>(row, "client_identity")?
            .map(|text| sealer.open(&text).map(ClientIdentity).map_err(internal))
            .transpose()?,
        template: opt_json(get(row, "template")?)?,
        created_at: time(get(row, "created_at")?),
        updated_at: time(get(row, "updated_at")?),
    })
}

/// Columns of `messages`, prefixed with `m.`, for queries that join.
pub const MESSAGE_COLUMNS: &str =
    "m.id, m.app_id, m.event_type, m.event_id, m.channels, m.tags, m.payload, m.created_at";

pub fn message(row: &SqliteRow) -> Result<Message, StoreError> {
    Ok(Message {
        id: get(row, "id")?,
        app_id: get(row, "app_id")?,
        event_type: get(row, "event_type")?,
        event_id: get(row, "event_id")?,
        channels: opt_json(get(row, "channels")?)?,
        tags: opt_json(get(row, "tags")?)?,
        payload: get::<Option<String>>(row, "payload")?.map(Arc::from),
        created_at: time(get(row, "created_at")?),
    })
}

/// Columns of `deliveries` under `d_` aliases, for queries that join.
pub const DELIVERY_COLUMNS: &str = "d.id AS d_id, d.msg_id AS d_msg_id, \
    d.endpoint_id AS d_endpoint_id, d.app_id AS d_app_id, d.status AS d_status, \
    d.attempt_count AS d_attempt_count, d.next_attempt_at AS d_next_attempt_at, \
    d.trigger_type AS d_trigger_type, d.updated_at AS d_updated_at";

pub fn delivery(row: &SqliteRow) -> Result<Delivery, StoreError> {
    let status = status(get(row, "d_status")?)?;
    Ok(Delivery {
        id: get(row, "d_id")?,
        msg_id: get(row, "d_msg_id")?,
        endpoint_id: get(row, "d_endpoint_id")?,
        app_id: get(row, "d_app_id")?,
        status,
        attempt_count: get::<i64>(row, "d_attempt_count")? as u32,
        // Only a pending delivery has a next attempt; for a sending one the column holds the
        // end of its lease.
        next_attempt_at: match status {
            DeliveryStatus::Pending => opt_time(get(row, "d_next_attempt_at")?),
            _ => None,
        },
        trigger: TriggerType::from_i64(get(row, "d_trigger_type")?),
        updated_at: time(get(row, "d_updated_at")?),
    })
}

pub fn attempt(row: &SqliteRow) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        id: get(row, "id")?,
        delivery_id: get(row, "delivery_id")?,
        msg_id: get(row, "msg_id")?,
        endpoint_id: get(row, "endpoint_id")?,
        app_id: get(row, "app_id")?,
        url: get(row, "url")?,
        status: status(get(row, "status")?)?,
        response_status_code: get::<i64>(row, "response_status_code")? as i32,
        response_headers: from_json(&get::<String>(row, "response_headers")?)?,
        response: get(row, "response")?,
        response_duration_ms: get(row, "response_duration_ms")?,
        error_kind: get::<Option<String>>(row, "error_kind")?.map(|k| AttemptErrorKind::parse(&k)),
        error_detail: get(row, "error_detail")?,
        trigger: TriggerType::from_i64(get(row, "trigger_type")?),
        created_at: time(get(row, "created_at")?),
    })
}

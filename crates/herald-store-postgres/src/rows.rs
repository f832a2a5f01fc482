//! Conversions between rows and domain objects.

use std::sync::Arc;

use herald_core::model::{
    Application, Attempt, AttemptErrorKind, ClientIdentity, Delivery, DeliveryStatus, Endpoint,
    EndpointTemplate, EventType, Message, PreviousSecret, Token, TriggerType,
};
use herald_core::sealing::SecretSealer;
use herald_core::signing::EndpointSecret;
use herald_core::StoreError;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

use crate::internal;

fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col).map_err(internal)
}

fn json<T: DeserializeOwned>(row: &PgRow, col: &str) -> Result<T, StoreError> {
    Ok(get::<Json<T>>(row, col)?.0)
}

fn status(n: i16) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::from_i64(i64::from(n))
        .ok_or_else(|| internal(sqlx::Error::Decode("bad status".into())))
}

/// A stored secret, opened if it was sealed.
fn secret(text: &str, sealer: &SecretSealer) -> Result<EndpointSecret, StoreError> {
    let text = sealer.open(text).map_err(internal)?;
    EndpointSecret::parse(&text).map_err(internal)
}

fn rate(n: Option<i32>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

pub fn application(row: &PgRow) -> Result<Application, StoreError> {
    Ok(Application {
        id: get(row, "id")?,
        uid: get(row, "uid")?,
        name: get(row, "name")?,
        rate_limit: rate(get(row, "rate_limit")?),
        metadata: json(row, "metadata")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub fn token(row: &PgRow) -> Result<Token, StoreError> {
    Ok(Token {
        id: get(row, "id")?,
        hash: get(row, "hash")?,
        app_id: get(row, "app_id")?,
        description: get(row, "description")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub fn event_type(row: &PgRow) -> Result<EventType, StoreError> {
    Ok(EventType {
        name: get(row, "name")?,
        description: get(row, "description")?,
        schemas: get::<Option<Json<serde_json::Value>>>(row, "schemas")?.map(|j| j.0),
        archived: get(row, "archived")?,
        deprecated: get(row, "deprecated")?,
        feature_flags: get(row, "feature_flags")?,
        group_name: get(row, "group_name")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub fn endpoint(row: &PgRow, sealer: &SecretSealer) -> Result<Endpoint, StoreError> {
    let previous_secret = match get::<Option<String>>(row, "previous_secret")? {
        Some(text) => Some(PreviousSecret {
            secret: secret(&text, sealer)?,
            expires_at: get::<Option<_>>(row, "previous_secret_expires_at")?.unwrap_or_default(),
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
        rate_limit: rate(get(row, "rate_limit")?),
        max_concurrency: rate(get(row, "max_concurrency")?),
        disabled: get(row, "disabled")?,
        failing_since: get(row, "failing_since")?,
        filter_types: get(row, "filter_types")?,
        channels: get(row, "channels")?,
        metadata: json(row, "metadata")?,
        headers: json(row, "headers")?,
        secret: secret(&get::<String>(row, "secret")?, sealer)?,
        previous_secret,
        client_identity: get::<Option<String>>(row, "client_identity")?
            .map(|text| sealer.open(&text).map(ClientIdentity).map_err(internal))
            .transpose()?,
        template: get::<Option<Json<EndpointTemplate>>>(row, "template")?.map(|t| t.0),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// Columns of `messages`, prefixed with `m.`, for queries that join.
pub const MESSAGE_COLUMNS: &str =
    "m.id, m.app_id, m.event_type, m.event_id, m.channels, m.tags, m.payload, m.created_at";

pub fn message(row: &PgRow) -> Result<Message, StoreError> {
    Ok(Message {
        id: get(row, "id")?,
        app_id: get(row, "app_id")?,
        event_type: get(row, "event_type")?,
        event_id: get(row, "event_id")?,
        channels: get(row, "channels")?,
        tags: get(row, "tags")?,
        payload: get::<Option<String>>(row, "payload")?.map(Arc::from),
        created_at: get(row, "created_at")?,
    })
}

/// Columns of `deliveries` under `d_` aliases, for queries that join.
pub const DELIVERY_COLUMNS: &str = "d.id AS d_id, d.msg_id AS d_msg_id, \
    d.endpoint_id AS d_endpoint_id, d.app_id AS d_app_id, d.status AS d_status, \
    d.attempt_count AS d_attempt_count, d.next_attempt_at AS d_next_attempt_at, \
    d.trigger_type AS d_trigger_type, d.updated_at AS d_updated_at";

pub fn delivery(row: &PgRow) -> Result<Delivery, StoreError> {
    let status = status(get(row, "d_status")?)?;
    Ok(Delivery {
        id: get(row, "d_id")?,
        msg_id: get(row, "d_msg_id")?,
        endpoint_id: get(row, "d_endpoint_id")?,
        app_id: get(row, "d_app_id")?,
        status,
        attempt_count: get::<i32>(row, "d_attempt_count")?.max(0) as u32,
        // Only a pending delivery has a next attempt; for a sending one the column holds the
        // end of its lease.
        next_attempt_at: match status {
            DeliveryStatus::Pending => get(row, "d_next_attempt_at")?,
            _ => None,
        },
        trigger: TriggerType::from_i64(i64::from(get::<i16>(row, "d_trigger_type")?)),
        updated_at: get(row, "d_updated_at")?,
    })
}

pub fn attempt(row: &PgRow) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        id: get(row, "id")?,
        delivery_id: get(row, "delivery_id")?,
        msg_id: get(row, "msg_id")?,
        endpoint_id: get(row, "endpoint_id")?,
        app_id: get(row, "app_id")?,
        url: get(row, "url")?,
        status: status(get(row, "status")?)?,
        response_status_code: get(row, "response_status_code")?,
        response_headers: json(row, "response_headers")?,
        response: get(row, "response")?,
        response_duration_ms: get(row, "response_duration_ms")?,
        error_kind: get::<Option<String>>(row, "error_kind")?.map(|k| AttemptErrorKind::parse(&k)),
        error_detail: get(row, "error_detail")?,
        trigger: TriggerType::from_i64(i64::from(get::<i16>(row, "trigger_type")?)),
        created_at: get(row, "created_at")?,
    })
}

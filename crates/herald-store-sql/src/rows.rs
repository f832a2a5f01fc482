//! Rows to domain objects, once for both databases ([`ReadRow`] hides how each stores a
//! value).

use std::sync::Arc;

use herald_core::model::{
    AdhocSecret, Application, Attempt, AttemptErrorKind, ClientIdentity, Delivery, DeliveryStatus,
    Endpoint, EventType, Message, PreviousSecret, Source, Token, TriggerType, Verification,
    VerificationMode, VerificationStatus,
};
use herald_core::sealing::SecretSealer;
use herald_core::signing::EndpointSecret;
use herald_core::store::StoreResult;

use crate::dialect::ReadRow;
use crate::internal;

/// Columns of `messages`, prefixed with `m.`, for queries that join.
pub const MESSAGE_COLUMNS: &str =
    "m.id, m.app_id, m.event_type, m.event_id, m.channels, m.tags, m.payload, m.created_at, \
     m.traceparent, m.expires_at";

/// Columns of `deliveries` under `d_` aliases, for queries that join.
pub const DELIVERY_COLUMNS: &str = "d.id AS d_id, d.msg_id AS d_msg_id, \
    d.endpoint_id AS d_endpoint_id, d.app_id AS d_app_id, d.status AS d_status, \
    d.attempt_count AS d_attempt_count, d.next_attempt_at AS d_next_attempt_at, \
    d.trigger_type AS d_trigger_type, d.updated_at AS d_updated_at";

fn status(n: i64) -> StoreResult<DeliveryStatus> {
    DeliveryStatus::from_i64(n).ok_or_else(|| internal(sqlx::Error::Decode("bad status".into())))
}

/// A count or limit stored as an integer; a negative or oversized one reads as none.
fn limit(n: Option<i64>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

/// A stored secret, opened if it was sealed.
fn secret(text: &str, sealer: &SecretSealer) -> StoreResult<EndpointSecret> {
    let text = sealer.open(text).map_err(internal)?;
    EndpointSecret::parse(&text).map_err(internal)
}

pub fn application(row: &impl ReadRow) -> StoreResult<Application> {
    Ok(Application {
        id: row.text("id")?,
        uid: row.opt_text("uid")?,
        name: row.text("name")?,
        rate_limit: limit(row.opt_int("rate_limit")?),
        metadata: row.json("metadata")?,
        verification: VerificationMode::parse(&row.text("verification")?).unwrap_or_default(),
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub fn token(row: &impl ReadRow) -> StoreResult<Token> {
    Ok(Token {
        id: row.text("id")?,
        hash: row.text("hash")?,
        app_id: row.opt_text("app_id")?,
        description: row.text("description")?,
        created_at: row.time("created_at")?,
        expires_at: row.opt_time("expires_at")?,
        portal: row.opt_json("portal")?,
        one_time: row.flag("one_time")?,
        hint: row.text("hint")?,
        poller_endpoint_id: row.opt_text("poller_endpoint_id")?,
    })
}

pub fn event_type(row: &impl ReadRow) -> StoreResult<EventType> {
    Ok(EventType {
        name: row.text("name")?,
        description: row.text("description")?,
        schemas: row.opt_json("schemas")?,
        archived: row.flag("archived")?,
        deprecated: row.flag("deprecated")?,
        feature_flags: row.opt_list("feature_flags")?,
        group_name: row.opt_text("group_name")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub fn endpoint(row: &impl ReadRow, sealer: &SecretSealer) -> StoreResult<Endpoint> {
    let previous_secret = match row.opt_text("previous_secret")? {
        Some(text) => Some(PreviousSecret {
            secret: secret(&text, sealer)?,
            expires_at: row
                .opt_time("previous_secret_expires_at")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Endpoint {
        id: row.text("id")?,
        app_id: row.text("app_id")?,
        uid: row.opt_text("uid")?,
        url: sealer.open(&row.text("url")?).map_err(internal)?,
        description: row.text("description")?,
        version: i32::try_from(row.int("version")?).unwrap_or(i32::MAX),
        rate_limit: limit(row.opt_int("rate_limit")?),
        max_concurrency: limit(row.opt_int("max_concurrency")?),
        ordered: row.flag("ordered")?,
        disabled: row.flag("disabled")?,
        failing_since: row.opt_time("failing_since")?,
        filter_types: row.opt_list("filter_types")?,
        channels: row.opt_list("channels")?,
        payload_filter: row.opt_json("payload_filter")?,
        signature_scheme: row.opt_json("signature_scheme")?,
        metadata: row.json("metadata")?,
        headers: row.json("headers")?,
        secret: secret(&row.text("secret")?, sealer)?,
        previous_secret,
        client_identity: row
            .opt_text("client_identity")?
            .map(|text| sealer.open(&text).map(ClientIdentity).map_err(internal))
            .transpose()?,
        server_ca: row.opt_text("server_ca")?,
        key_pins: row.opt_json("key_pins")?.unwrap_or_default(),
        oauth: row
            .opt_text("oauth")?
            .map(|text| {
                let json = sealer.open(&text).map_err(internal)?;
                serde_json::from_str(&json).map_err(internal)
            })
            .transpose()?,
        template: row.opt_json("template")?,
        adhoc: row.flag("adhoc")?,
        verification: Verification {
            status: VerificationStatus::from_i64(row.int("verification_status")?),
            tries: row
                .int("verification_tries")?
                .try_into()
                .unwrap_or(u32::MAX),
            due_at: row.opt_time("verification_due_at")?,
            verified_at: row.opt_time("verified_at")?,
            last_error: row.opt_text("verification_error")?,
        },
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// An application's ad-hoc secret, from its `adhoc_…` columns.
pub fn adhoc_secret(row: &impl ReadRow, sealer: &SecretSealer) -> StoreResult<AdhocSecret> {
    let previous = match row.opt_text("adhoc_previous_secret")? {
        Some(text) => Some(PreviousSecret {
            secret: secret(&text, sealer)?,
            expires_at: row
                .opt_time("adhoc_previous_expires_at")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(AdhocSecret {
        secret: secret(&row.text("adhoc_secret")?, sealer)?,
        previous,
    })
}

pub fn message(row: &impl ReadRow) -> StoreResult<Message> {
    Ok(Message {
        id: row.text("id")?,
        app_id: row.text("app_id")?,
        event_type: row.text("event_type")?,
        event_id: row.opt_text("event_id")?,
        channels: row.opt_list("channels")?,
        tags: row.opt_list("tags")?,
        payload: row.opt_text("payload")?.map(Arc::from),
        created_at: row.time("created_at")?,
        traceparent: row.opt_text("traceparent")?,
        expires_at: row.opt_time("expires_at")?,
    })
}

/// A delivery read under the [`DELIVERY_COLUMNS`] aliases.
pub fn delivery(row: &impl ReadRow) -> StoreResult<Delivery> {
    let status = status(row.int("d_status")?)?;
    Ok(Delivery {
        id: row.text("d_id")?,
        msg_id: row.text("d_msg_id")?,
        endpoint_id: row.text("d_endpoint_id")?,
        app_id: row.text("d_app_id")?,
        status,
        attempt_count: u32::try_from(row.int("d_attempt_count")?).unwrap_or(0),
        // Only a pending delivery has a next attempt; for a sending one the column holds the
        // end of its lease.
        next_attempt_at: match status {
            DeliveryStatus::Pending => row.opt_time("d_next_attempt_at")?,
            _ => None,
        },
        trigger: TriggerType::from_i64(row.int("d_trigger_type")?),
        updated_at: row.time("d_updated_at")?,
    })
}

pub fn attempt(row: &impl ReadRow) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: row.text("id")?,
        delivery_id: row.text("delivery_id")?,
        msg_id: row.text("msg_id")?,
        endpoint_id: row.text("endpoint_id")?,
        app_id: row.text("app_id")?,
        url: row.text("url")?,
        status: status(row.int("status")?)?,
        response_status_code: i32::try_from(row.int("response_status_code")?).unwrap_or(0),
        response_headers: row.json("response_headers")?,
        response: row.text("response")?,
        response_duration_ms: row.int("response_duration_ms")?,
        response_truncated: row.flag("response_truncated")?,
        request_headers: row.json("request_headers")?,
        error_kind: row
            .opt_text("error_kind")?
            .map(|k| AttemptErrorKind::parse(&k)),
        error_detail: row.opt_text("error_detail")?,
        trigger: TriggerType::from_i64(row.int("trigger_type")?),
        created_at: row.time("created_at")?,
    })
}

/// An inbound source; its config and tokens are opened with `sealer`.
pub fn source(row: &impl ReadRow, sealer: &SecretSealer) -> StoreResult<Source> {
    let open = |text: String| sealer.open(&text).map_err(internal);
    let config = open(row.text("config")?)?;
    Ok(Source {
        id: row.text("id")?,
        uid: row.opt_text("uid")?,
        name: row.text("name")?,
        kind: row.text("kind")?,
        config: serde_json::from_str(&config).map_err(internal)?,
        app_id: row.text("app_id")?,
        token: open(row.text("token")?)?,
        previous_token: row.opt_text("previous_token")?.map(open).transpose()?,
        previous_token_expires_at: row.opt_time("previous_token_expires_at")?,
        metadata: row.json("metadata")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

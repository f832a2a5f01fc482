//! The shapes of inbound sources in Svix's ingest API, and their checks.

use chrono::{DateTime, Utc};
use herald_core::model::{Metadata, Source};
use herald_core::validation;
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Config fields that hold secrets: never shown again once set.
const SECRET_FIELDS: &[&str] = &["secret", "secrets", "password", "key", "keys"];

/// A source to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngestSourceIn {
    pub name: String,
    /// Your own unique id for the source; usable wherever its id is.
    pub uid: Option<String>,
    /// The provider's scheme: `generic-webhook`, `github`, `meta`, `stripe`, `slack`, `shopify`,
    /// `standard-webhooks` (or `svix`), `twilio`, `zoom`, `hmac`, `basic-auth`, `api-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The scheme's settings, e.g. `{"secret": "…"}` (`secrets`: a list, while the
    /// provider rotates; `tolerance`: seconds a signed timestamp may be off).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default)]
    pub metadata: Metadata,
    /// Herald extension: the application (id or uid) the source's events are published to;
    /// by default one is made for the source.
    pub app_id: Option<String>,
}

/// A source, its secrets left out.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestSourceOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The settings, without their secrets.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Where the provider sends: `{public_url}/ingest/{id}/{token}`.
    pub ingest_url: String,
    /// The application the source's events are published to.
    pub app_id: String,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The receive URL after a token rotation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateTokenOut {
    pub ingest_url: String,
}

impl IngestSourceOut {
    pub fn new(state: &AppState, source: Source) -> Self {
        let mut config = source.config.clone();
        if let Some(map) = config.as_object_mut() {
            map.retain(|k, _| !SECRET_FIELDS.contains(&k.as_str()));
        }
        Self {
            ingest_url: ingest_url(state, &source.id, &source.token),
            id: source.id,
            uid: source.uid,
            name: source.name,
            kind: source.kind,
            config,
            app_id: source.app_id,
            metadata: source.metadata,
            created_at: source.created_at,
            updated_at: source.updated_at,
        }
    }
}

/// The URL a provider sends a source's webhooks to.
pub fn ingest_url(state: &AppState, source_id: &str, token: &str) -> String {
    let base = state.config.public_url.trim_end_matches('/');
    format!("{base}/ingest/{source_id}/{token}")
}

/// A new receive token: 32 letters and digits, about 190 bits.
pub fn new_token() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// Checks a source's fields and its scheme's settings (a 422 saying what is wrong).
pub fn check(body: &IngestSourceIn) -> ApiResult<()> {
    let mut problems = Vec::new();
    if let Err(e) = validation::length("name", &body.name, 1, 256) {
        problems.push(e);
    }
    if let Some(uid) = &body.uid {
        if let Err(e) = validation::uid("uid", uid) {
            problems.push(e);
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    herald_inbound::verifier(&body.kind, &body.config)
        .map(drop)
        .map_err(|detail| ApiError::invalid("config", detail))
}

/// A request the source refused, and why (the sender was told only that it was).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestRejectionOut {
    pub id: String,
    /// What the sender was answered: 401, or 413 for a body over the size limit.
    pub status_code: u16,
    /// `missing_signature`, `signature_mismatch`, `timestamp_out_of_tolerance`,
    /// `bad_credentials` or `too_large`.
    pub reason: String,
    pub timestamp: DateTime<Utc>,
}

impl From<herald_core::model::IngestRejection> for IngestRejectionOut {
    fn from(r: herald_core::model::IngestRejection) -> Self {
        Self {
            id: r.id,
            status_code: r.status,
            reason: r.reason,
            timestamp: r.created_at,
        }
    }
}

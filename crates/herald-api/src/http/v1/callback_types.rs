//! One-off callback URLs: the `callbackUrls` a message may carry (a Herald extension of
//! Svix's message create), their checks, and the hidden ad-hoc endpoints they are delivered
//! through, so that retries, the log, statistics and resend work for them unchanged.

use std::collections::BTreeMap;

use herald_core::model::{CallbackPolicy, Endpoint};
use herald_core::validation;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::http::v1::endpoint_header_types::check_headers;
use crate::http::v1::endpoint_types::{blocked_address, ADHOC_UID_PREFIX};
use crate::state::AppState;

/// The most callback URLs one message may carry: each is a delivery the caller chose the
/// target of, so a message must not fan out to an unbounded list of them.
pub const MAX_CALLBACKS: usize = 10;

/// A URL called back once with the message, signed with the application's ad-hoc secret.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackUrlIn {
    /// An `http` or `https` URL; checked against the server's address policy now, and on
    /// the address it resolves to at each attempt.
    pub url: String,
    /// Extra headers sent with the callback.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// An event for one callback URL only (`POST /app/{app_id}/callback`): none of the
/// application's endpoints receive it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackIn {
    /// An `http` or `https` URL, checked like those of `callbackUrls`.
    pub url: String,
    /// Extra headers sent with the callback.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// e.g. `export.ready`.
    pub event_type: String,
    /// The JSON object sent, byte for byte.
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
}

/// An application's ad-hoc secret, which signs its one-off callbacks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdhocSecretOut {
    /// `whsec_…`: the receivers of callbacks verify them with it.
    pub key: String,
}

/// Where an application's callbacks may go (Herald extension), beside the server's address
/// policy, which still applies. Recommended for an API whose callers name callback URLs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackPolicyInOut {
    /// Only `https` callback URLs.
    #[serde(default)]
    pub https_only: bool,
    /// Host patterns a callback's host must match: `hooks.example.com`, or `*.example.com`
    /// for any name below it. Empty (the default): any host.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// The most host patterns a callback policy holds.
const MAX_ALLOWED_HOSTS: usize = 100;

impl CallbackPolicyInOut {
    /// The policy, if its patterns are host names.
    pub fn into_policy(self) -> ApiResult<CallbackPolicy> {
        if self.allowed_hosts.len() > MAX_ALLOWED_HOSTS {
            return Err(ApiError::invalid(
                "allowedHosts",
                format!("at most {MAX_ALLOWED_HOSTS} host patterns"),
            ));
        }
        if let Some(bad) = (self.allowed_hosts.iter()).find(|p| !CallbackPolicy::is_host_pattern(p))
        {
            return Err(ApiError::invalid(
                "allowedHosts",
                format!("`{bad}` is neither a host name nor `*.` followed by one"),
            ));
        }
        Ok(CallbackPolicy {
            https_only: self.https_only,
            allowed_hosts: self.allowed_hosts,
        })
    }
}

impl From<CallbackPolicy> for CallbackPolicyInOut {
    fn from(policy: CallbackPolicy) -> Self {
        Self {
            https_only: policy.https_only,
            allowed_hosts: policy.allowed_hosts,
        }
    }
}

/// Checks a message's callbacks before anything is stored: their number, their URLs (a
/// URL the address policy or the application's callback policy refuses is
/// `422 url_not_allowed`) and their headers. The policy is read only when there are
/// callbacks, so a publish without them costs nothing more.
pub async fn check(state: &AppState, app_id: &str, callbacks: &[CallbackUrlIn]) -> ApiResult<()> {
    if callbacks.is_empty() {
        return Ok(());
    }
    if callbacks.len() > MAX_CALLBACKS {
        return Err(ApiError::invalid(
            "callbackUrls",
            format!("at most {MAX_CALLBACKS} callback URLs per message"),
        ));
    }
    let policy = state.store.callback_policy(app_id).await?;
    for callback in callbacks {
        let url = validation::endpoint_url("callbackUrls.url", &callback.url)
            .map_err(|e| ApiError::Validation(vec![e]))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::invalid(
                "callbackUrls.url",
                "a callback URL is http or https",
            ));
        }
        let refusal = (policy.refusal(&url))
            .or_else(|| blocked_address(&callback.url, &state.config.delivery.allowed_networks));
        if let Some(problem) = refusal {
            return Err(ApiError::Unprocessable {
                code: "url_not_allowed",
                detail: format!("callback URL {}: {problem}", callback.url),
            });
        }
        check_headers(&callback.headers)?;
    }
    Ok(())
}

/// The ad-hoc endpoints of `callbacks` (made on first use, reused after), by id, each once.
pub async fn endpoints(
    state: &AppState,
    app_id: &str,
    callbacks: &[CallbackUrlIn],
) -> ApiResult<Vec<String>> {
    let now = state.clock.now();
    let mut ids: Vec<String> = Vec::with_capacity(callbacks.len());
    for callback in callbacks {
        let wanted = Endpoint {
            uid: Some(adhoc_uid(callback)),
            description: "One-off callback URL".into(),
            headers: callback.headers.clone(),
            // Its secret is only the application's ad-hoc secret's first value, if the
            // application has none yet.
            adhoc: true,
            ..Endpoint::new(app_id, callback.url.clone(), now)
        };
        let endpoint = state.store.adhoc_endpoint(&wanted).await?;
        if !ids.contains(&endpoint.id) {
            ids.push(endpoint.id);
        }
    }
    Ok(ids)
}

/// The uid of the ad-hoc endpoint for a URL and its headers: the same callback given again
/// finds the same endpoint, so an application that calls back a few URLs has a few hidden
/// endpoints, not one per message.
fn adhoc_uid(callback: &CallbackUrlIn) -> String {
    let mut hash = Sha256::new();
    hash.update(callback.url.as_bytes());
    for (name, value) in &callback.headers {
        hash.update([0]);
        hash.update(name.to_ascii_lowercase().as_bytes());
        hash.update([0]);
        hash.update(value.as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{ADHOC_UID_PREFIX}{hex}")
}

//! An endpoint's custom headers: the shapes of `/endpoint/{id}/headers` and the check every
//! route that sets headers shares.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue};
use herald_core::model::Endpoint;
use herald_core::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};

/// Headers whose values are not shown back (only their names, as `sensitive`).
const SENSITIVE: &[&str] = &[
    "authorization",
    "x-auth-token",
    "www-authenticate",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Headers an endpoint may not set: Herald sets them, or they would break HTTP.
const FORBIDDEN: &[&str] = &[
    "host",
    "user-agent",
    "keep-alive",
    "connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "content-encoding",
];
const FORBIDDEN_PREFIXES: &[&str] = &["webhook-", "svix-", "x-svix-", "x-herald-"];
const MAX_HEADER_VALUE: usize = 4096;
const MAX_HEADERS: usize = 64;

/// Checks custom headers: valid HTTP, not one Herald sets, bounded.
pub fn check_headers(headers: &BTreeMap<String, String>) -> ApiResult<()> {
    let mut errors = Vec::new();
    if headers.len() > MAX_HEADERS {
        errors.push(FieldError::body(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
            "value_error",
        ));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let problem = if HeaderName::from_bytes(name.as_bytes()).is_err() {
            Some("is not a valid header name")
        } else if HeaderValue::from_str(value).is_err() || value.len() > MAX_HEADER_VALUE {
            Some("has an invalid or too long value")
        } else if FORBIDDEN.contains(&lower.as_str())
            || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            Some("is set by Herald and cannot be overridden")
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.push(FieldError {
                loc: vec!["body".into(), "headers".into(), name.clone()],
                msg: format!("`{name}` {problem}"),
                kind: "value_error",
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// An endpoint's custom headers; sensitive values are listed by name only.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointHeadersOut {
    pub headers: BTreeMap<String, String>,
    pub sensitive: Vec<String>,
}

/// The full set of custom headers.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointHeadersIn {
    pub headers: BTreeMap<String, String>,
}

/// Changes to custom headers: `headers` are set (a `null` value removes), `deleteHeaders`
/// are removed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeadersPatchIn {
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Option<String>>)]
    pub headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub delete_headers: Vec<String>,
}

impl From<Endpoint> for EndpointHeadersOut {
    fn from(endpoint: Endpoint) -> Self {
        let (sensitive, headers): (BTreeMap<_, _>, BTreeMap<_, _>) = endpoint
            .headers
            .into_iter()
            .partition(|(name, _)| SENSITIVE.contains(&name.to_ascii_lowercase().as_str()));
        Self {
            headers,
            sensitive: sensitive.into_keys().collect(),
        }
    }
}

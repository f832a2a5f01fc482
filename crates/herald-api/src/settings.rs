//! The API's section of the configuration (`[api]`), and what it needs to know of the rest.

use herald_delivery::settings::DeliveryConfig;
use serde::{Deserialize, Serialize};

/// Limits of the HTTP API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub max_payload_bytes: usize,
    pub rate_limit_per_token: u32,
    pub rate_limit_burst: u32,
    pub max_endpoints_per_app: u32,
}

/// What the API's handlers read of the process's configuration.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub api: ApiConfig,
    /// The base URL of links Herald hands out (the customer portal's).
    pub public_url: String,
    /// Limits endpoints are checked against (concurrency, the secret rotation overlap).
    pub delivery: DeliveryConfig,
    /// Whether `mailto:` endpoints can be delivered (an SMTP server is configured).
    pub email_enabled: bool,
}

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
    /// The longest deadline a synchronous call (`POST /app/{app}/call`) may ask for.
    #[serde(with = "humantime_serde")]
    pub max_call_timeout: std::time::Duration,
    /// When set, `GET /metrics` wants it as a bearer token; unset, metrics are open (block
    /// the path at the proxy, or serve Herald on a private network).
    #[serde(default)]
    pub metrics_token: Option<herald_core::secret::Secret>,
    /// When set, `GET /metrics` is served on this address only (a port Prometheus reaches
    /// and the public does not), not beside the API.
    #[serde(default)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Requests served at once; one more is answered `503` with `Retry-After` at once,
    /// before it costs memory. Long polls count while they wait. 0: no limit.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// The most messages a recover or replay-missing queues within its request; a larger
    /// range is handed to a background task, which the answer names.
    #[serde(default = "default_bulk_in_request")]
    pub bulk_in_request: u64,
}

fn default_max_concurrent_requests() -> usize {
    4096
}

fn default_bulk_in_request() -> u64 {
    1000
}

/// The customer portal and dashboard (`[portal]`): who may frame them and how they look.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// CSP `frame-ancestors` sources: `'self'`, `'none'`, or origins such as
    /// `https://app.example.com`.
    pub frame_ancestors: Vec<String>,
    /// Where an expired portal session sends the customer to sign in again.
    #[serde(default)]
    pub refresh_url: Option<String>,
    /// The accent colour, `#rgb` or `#rrggbb`.
    pub accent_color: String,
    /// A logo: an `https://` URL or a `data:image/…` URL.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// The name shown in the portal's header.
    pub organization_name: String,
    /// `light` or `dark` forces a theme; empty follows `?theme=` and the browser.
    #[serde(default)]
    pub theme: String,
}

impl PortalConfig {
    /// Why this configuration cannot be served, if it cannot: every value ends up in a
    /// header or a page, so anything that could break out of its place is refused.
    pub fn problem(&self) -> Option<String> {
        let source_ok = |s: &str| {
            matches!(s, "'self'" | "'none'")
                || (url::Url::parse(s).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
                }) && !s.contains(|c: char| c.is_whitespace() || ";,'\"".contains(c)))
        };
        if let Some(bad) = self.frame_ancestors.iter().find(|s| !source_ok(s)) {
            return Some(format!(
                "portal.frame_ancestors: {bad:?} is not 'self', 'none' or an origin like https://app.example.com"
            ));
        }
        let hex = self.accent_color.strip_prefix('#').unwrap_or("x");
        if !matches!(hex.len(), 3 | 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some("portal.accent_color must be #rgb or #rrggbb".into());
        }
        if let Some(logo) = &self.logo_url {
            let ok = logo.starts_with("data:image/")
                || url::Url::parse(logo).is_ok_and(|u| u.scheme() == "https");
            if !ok || logo.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                return Some("portal.logo_url must be an https:// or data:image/ URL".into());
            }
        }
        if let Some(url) = &self.refresh_url {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Some("portal.refresh_url must be an http(s) URL".into());
            }
        }
        if !matches!(self.theme.as_str(), "" | "light" | "dark") {
            return Some("portal.theme must be \"light\", \"dark\" or empty".into());
        }
        None
    }
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            frame_ancestors: vec!["'self'".into()],
            refresh_url: None,
            accent_color: "#4f46e5".into(),
            logo_url: None,
            organization_name: "Herald".into(),
            theme: String::new(),
        }
    }
}

/// When an endpoint counts as degraded or failing (`[health]`), from its attempts in the
/// range looked at.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthThresholds {
    /// Below this success rate (percent), degraded.
    pub degraded_below_percent: f64,
    /// Below this success rate (percent), failing.
    pub failing_below_percent: f64,
    /// Above this 95th-percentile latency (ms), degraded.
    pub degraded_p95_ms: u64,
    /// Above this 95th-percentile latency (ms), failing.
    pub failing_p95_ms: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            degraded_below_percent: 99.0,
            failing_below_percent: 95.0,
            degraded_p95_ms: 2_000,
            failing_p95_ms: 5_000,
        }
    }
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
    /// The portal's and dashboard's look and framing.
    pub portal: PortalConfig,
    /// Endpoint health thresholds for the statistics.
    pub health: HealthThresholds,
    /// How long message payloads are kept (`None`: for ever); the message stream refuses
    /// to start before that.
    pub content_retention: Option<std::time::Duration>,
}

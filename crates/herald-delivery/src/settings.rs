//! The delivery engine's sections of the configuration (`[delivery]`, `[email]`,
//! `[retention]`); the process's configuration composes them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use herald_core::secret::Secret;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// How deliveries are made and retried.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub retry_schedule: Vec<humantime_serde::Serde<Duration>>,
    pub jitter: f64,
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    pub max_response_bytes: usize,
    pub svix_headers: bool,
    pub allowed_networks: Vec<IpNet>,
    /// Host names answered without DNS (like curl's `--resolve`), e.g. to pin a receiver's
    /// address. The answers are checked against the address policy like any other.
    #[serde(default)]
    pub resolve: BTreeMap<String, Vec<IpAddr>>,
    /// PEM files of certificate authorities trusted beside the public ones (receivers
    /// behind a private CA).
    #[serde(default)]
    pub extra_root_certificates: Vec<PathBuf>,
    pub max_in_flight: u32,
    pub endpoint_concurrency: u32,
    #[serde(with = "humantime_serde")]
    pub secret_rotation_overlap: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    pub disable_on_gone: bool,
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    pub circuit_breaker_failures: u32,
    #[serde(with = "humantime_serde")]
    pub circuit_breaker_cooldown: Duration,
    #[serde(with = "humantime_serde")]
    pub circuit_breaker_max_cooldown: Duration,
    pub dispatch: bool,
    /// Tries of a subscription verification before the endpoint is `verification_failed`
    /// (spaced like retries, by `retry_schedule`).
    pub verification_tries: u32,
    /// How long a receiver has to answer a verification challenge.
    #[serde(with = "humantime_serde")]
    pub verification_timeout: Duration,
}

/// How email destinations reach their SMTP server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (upgrade a plain connection; the default), `tls` (TLS from the start) or
    /// `none` (plain text: only for a relay on the same machine or network).
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender address, e.g. `Herald <webhooks@example.com>`.
    pub from: String,
    /// Time allowed for one message to be accepted.
    #[serde(default = "default_smtp_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

/// How long content is kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub batch: u32,
    /// Messages older than this are deleted with their deliveries and attempts (not only
    /// their payloads), once nothing of theirs is left to deliver; `None`: kept forever.
    #[serde(with = "humantime_serde", default)]
    pub delete_after: Option<Duration>,
    /// How long per-minute statistics are kept (they serve ranges finer than an hour).
    #[serde(with = "humantime_serde", default = "default_stats_minutes")]
    pub stats_minutes: Duration,
    /// How long per-hour statistics are kept.
    #[serde(with = "humantime_serde", default = "default_stats_hours")]
    pub stats_hours: Duration,
    /// How long per-day statistics are kept (they serve ranges in whole days).
    #[serde(with = "humantime_serde", default = "default_stats_days")]
    pub stats_days: Duration,
}

fn default_stats_minutes() -> Duration {
    Duration::from_secs(35 * 24 * 3600)
}

fn default_stats_hours() -> Duration {
    Duration::from_secs(400 * 24 * 3600)
}

fn default_stats_days() -> Duration {
    Duration::from_secs(400 * 24 * 3600)
}

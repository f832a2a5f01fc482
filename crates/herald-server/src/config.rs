//! Configuration: the embedded defaults (`default.toml`), then a `--config` file, then
//! `HERALD_*` environment variables, then command-line flags. Unknown keys are errors, so a
//! typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
pub use herald_api::settings::{ApiConfig, HealthThresholds, PortalConfig};
pub use herald_core::secret::Secret;
pub use herald_delivery::settings::{DeliveryConfig, EmailConfig, RetentionConfig, SmtpSecurity};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The built-in defaults, also the documented reference of every key.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Environment variables that share the `HERALD_` prefix but are not configuration: the
/// log's (`HERALD_LOG`, `HERALD_LOG_FORMAT`) and the test suites' (`HERALD_TEST_…`), by
/// prefix, and the CLI's (`HERALD_SERVER`, `HERALD_TOKEN`, set in a shell that runs
/// `herald send`, where `herald serve` or `herald token create` must work too).
const NON_CONFIG_ENV: &[&str] = &["log", "test_"];
const CLI_ENV: &[&str] = &["server", "token"];

/// Everything Herald can be configured with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub admin_token: Option<Secret>,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    #[serde(default)]
    pub portal: PortalConfig,
    #[serde(default)]
    pub health: HealthThresholds,
    #[serde(default)]
    pub encryption: EncryptionConfig,
    /// The SMTP server that delivers to `mailto:` endpoints; without it, email endpoints
    /// are refused.
    #[serde(default)]
    pub email: Option<EmailConfig>,
}

/// Where data lives.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub migrate: bool,
    pub readers: u32,
    pub max_connections: u32,
    /// PostgreSQL: how long a request waits for a connection before it is answered `503`.
    #[serde(with = "humantime_serde", default = "default_acquire_timeout")]
    pub acquire_timeout: std::time::Duration,
}

fn default_acquire_timeout() -> std::time::Duration {
    herald_store_postgres::ACQUIRE_TIMEOUT
}

/// Keys that seal endpoint secrets at rest.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Seals secrets written from now on (32 bytes, base64).
    #[serde(default)]
    pub key: Option<Secret>,
    /// Keys that sealed secrets before, still opening them during a key rotation.
    #[serde(default)]
    pub previous_keys: Vec<Secret>,
}

/// Values given on the command line; each wins over every other source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryOverride>,
}

/// `--database-url`, `--no-migrate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatabaseOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate: Option<bool>,
}

/// `--allow-network`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryOverride {
    pub allowed_networks: Vec<IpNet>,
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} not found")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the layered configuration.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("HERALD_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            !NON_CONFIG_ENV.iter().any(|skip| key.starts_with(skip))
                && !CLI_ENV.contains(&key.as_str())
        });
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in defaults alone (tests start from these).
    pub fn defaults() -> Self {
        Figment::from(Toml::string(DEFAULT_CONFIG))
            .extract()
            .expect("the embedded default configuration is valid")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        // Past this, a delay means nothing a webhook needs, and date arithmetic could overflow.
        const MAX_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);
        let d = &self.delivery;
        let problem = if !(0.0..1.0).contains(&d.jitter) {
            Some("delivery.jitter must be in [0, 1)")
        } else if d.timeout.is_zero() || d.connect_timeout.is_zero() {
            Some("delivery timeouts must be positive")
        } else if d.max_in_flight == 0 || d.endpoint_concurrency == 0 {
            Some("delivery.max_in_flight and delivery.endpoint_concurrency must be at least 1")
        } else if self.api.max_payload_bytes == 0 {
            Some("api.max_payload_bytes must be positive")
        } else if d.max_retry_after > MAX_DELAY || d.retry_schedule.iter().any(|s| **s > MAX_DELAY)
        {
            Some("delivery.retry_schedule and delivery.max_retry_after allow at most 30 days")
        } else {
            None
        };
        match problem.map(str::to_owned).or_else(|| self.portal.problem()) {
            Some(p) => Err(ConfigError::Invalid(p)),
            None => Ok(()),
        }
    }

    /// The retry policy described by `[delivery]`.
    pub fn retry_policy(&self) -> herald_core::retry::RetryPolicy {
        herald_core::retry::RetryPolicy {
            schedule: self.delivery.retry_schedule.iter().map(|d| **d).collect(),
            jitter: self.delivery.jitter,
            max_retry_after: self.delivery.max_retry_after,
        }
    }

    /// The database URL without its password, for logs.
    pub fn database_display(&self) -> String {
        let url = self.database_url();
        match url::Url::parse(&url) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => url,
        }
    }

    /// The database URL in effect: `database.url`, or SQLite under `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("herald.db").display())
        } else {
            self.database.url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_contract() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8071");
        assert_eq!(c.delivery.timeout, Duration::from_secs(15));
        assert_eq!(c.delivery.retry_schedule.len(), 7);
        assert!(c.database_url().ends_with("herald-data/herald.db"));
    }

    // Tests that load configuration run inside `figment::Jail`: it serialises them, so the
    // environment one sets is never seen by another.

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns its own error type
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("herald.toml", "[delivery]\ntimeuot = \"5s\"\n")?;
            let err =
                Config::load(Some(Path::new("herald.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("timeuot"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn file_then_flags_override_defaults() {
        figment::Jail::expect_with(|jail| {
            let file = "listen = \"127.0.0.1:9000\"\n[delivery]\ntimeout = \"3s\"\n";
            jail.create_file("herald.toml", file)?;
            let flags = Overrides {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                ..Default::default()
            };
            let c = Config::load(Some(Path::new("herald.toml")), &flags).unwrap();
            assert_eq!(c.listen.port(), 0);
            assert_eq!(c.delivery.timeout, Duration::from_secs(3));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns its own error type
    fn environment_overrides_and_typos_in_it_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_DELIVERY__TIMEOUT", "3s");
            jail.set_env("HERALD_DATABASE__URL", "sqlite://elsewhere.db");
            jail.set_env("HERALD_RETENTION__DELETE_AFTER", "400d");
            // Not configuration: the log filter and the test suites' own variables.
            jail.set_env("HERALD_LOG", "debug");
            jail.set_env("HERALD_TEST_POSTGRES_URL", "postgres://localhost/test");
            // The CLI's, set in the same shell.
            jail.set_env("HERALD_TOKEN", "hrld_…");
            jail.set_env("HERALD_SERVER", "http://127.0.0.1:8071");
            let c = Config::load(None, &Overrides::default()).expect("valid");
            assert_eq!(c.delivery.timeout, Duration::from_secs(3));
            assert_eq!(c.database_url(), "sqlite://elsewhere.db");
            let days = Duration::from_secs(400 * 24 * 3600);
            assert_eq!(c.retention.delete_after, Some(days));
            assert_eq!(Config::defaults().retention.delete_after, None);
            jail.set_env("HERALD_LISTN", "127.0.0.1:1");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("listn"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn database_passwords_stay_out_of_logs() {
        let mut c = Config::defaults();
        c.database.url = "postgres://herald:hunter2@db.internal/herald".into();
        assert_eq!(
            c.database_display(),
            "postgres://herald:***@db.internal/herald"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let mut c = Config::defaults();
        c.admin_token = Some(Secret::new("super-secret"));
        assert!(!format!("{c:?}").contains("super-secret"));
    }

    #[test]
    fn absurd_delays_are_refused_rather_than_overflowing() {
        let mut c = Config::defaults();
        c.delivery.max_retry_after = Duration::from_secs(u64::MAX / 2);
        assert!(c.validate().is_err());
        let mut c = Config::defaults();
        c.delivery.retry_schedule = vec![Duration::from_secs(31 * 24 * 3600).into()];
        assert!(c.validate().is_err());
        assert!(Config::defaults().validate().is_ok());
    }
}

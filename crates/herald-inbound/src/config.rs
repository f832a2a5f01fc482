//! A source's type and configuration, read from the `type` and `config` the API is given
//! (Svix's ingest shape: `{"type": "github", "config": {"secret": "…"}}`).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// How long a signed timestamp may be off from now, unless the source says otherwise.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The source types Herald verifies, as the API names them.
pub const TYPES: &[&str] = &[
    "generic-webhook",
    "github",
    "meta",
    "stripe",
    "slack",
    "shopify",
    "standard-webhooks",
    "svix",
    "twilio",
    "zoom",
    "hmac",
    "basic-auth",
    "api-key",
];

/// How a source checks what it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verifier {
    /// Anything is accepted (the token in the URL is the only check).
    None,
    GitHub(Secrets),
    /// Meta (Facebook, Instagram, WhatsApp): signed like GitHub with the app secret; its
    /// subscription check must carry the verify token the provider was given.
    Meta {
        secrets: Secrets,
        verify_token: Option<String>,
    },
    Stripe(Secrets, Duration),
    Slack(Secrets, Duration),
    Shopify(Secrets),
    /// Standard Webhooks, which Svix sends (`svix-` or `webhook-` headers).
    StandardWebhooks(Secrets, Duration),
    /// Twilio signs the URL it called; behind a proxy, `public_url` is that URL's base.
    Twilio(Secrets, Option<String>),
    Zoom(Secrets, Duration),
    Hmac(HmacScheme),
    BasicAuth {
        username: String,
        password: String,
    },
    ApiKey {
        header: String,
        keys: Vec<String>,
    },
}

/// The secrets a signature may be made with: several while the sender rotates its own.
pub type Secrets = Vec<String>;

/// A generic HMAC signature: which header holds it, how it is made and written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HmacScheme {
    #[serde(skip)]
    pub secrets: Secrets,
    /// The header holding the signature, e.g. `X-Signature`.
    pub header: String,
    /// Text before the signature in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub encoding: Encoding,
    /// What is signed: `{body}`, with `{timestamp}` standing for the timestamp header's
    /// value, e.g. `{timestamp}.{body}` or `v0:{timestamp}:{body}`.
    #[serde(default = "body_only")]
    pub signed_content: String,
    /// The header holding the signed timestamp (unix seconds), if the sender sends one.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    #[serde(skip)]
    pub tolerance: Duration,
}

fn body_only() -> String {
    "{body}".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

/// The secret fields every signing type takes: Svix's `secret`, or Herald's `secrets`
/// (a list, for the sender's rotation), and `tolerance` in seconds where a timestamp is
/// signed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretFields {
    secret: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
    tolerance: Option<u64>,
    public_url: Option<String>,
    verify_token: Option<String>,
}

impl SecretFields {
    fn secrets(&self) -> Result<Secrets, String> {
        let all: Secrets = self
            .secret
            .iter()
            .chain(&self.secrets)
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        if all.is_empty() {
            return Err("config.secret is required".into());
        }
        Ok(all)
    }

    fn tolerance(&self) -> Duration {
        self.tolerance
            .map_or(DEFAULT_TOLERANCE, Duration::from_secs)
    }
}

fn fields<T: DeserializeOwned + Default>(config: &Value) -> Result<T, String> {
    if config.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(config.clone()).map_err(|e| format!("config: {e}"))
}

/// The verifier a source of type `kind` with `config` has; the message says what is wrong
/// with them, for the API caller.
pub fn verifier(kind: &str, config: &Value) -> Result<Verifier, String> {
    let signed = || -> Result<(Secrets, Duration), String> {
        let f: SecretFields = fields(config)?;
        Ok((f.secrets()?, f.tolerance()))
    };
    Ok(match kind {
        "generic-webhook" => Verifier::None,
        "github" => Verifier::GitHub(signed()?.0),
        "meta" => {
            let f: SecretFields = fields(config)?;
            Verifier::Meta {
                secrets: f.secrets()?,
                verify_token: f.verify_token.clone().filter(|t| !t.is_empty()),
            }
        }
        "stripe" => {
            let (s, t) = signed()?;
            Verifier::Stripe(s, t)
        }
        "slack" => {
            let (s, t) = signed()?;
            Verifier::Slack(s, t)
        }
        "shopify" => Verifier::Shopify(signed()?.0),
        "standard-webhooks" | "svix" => {
            let (s, t) = signed()?;
            for secret in &s {
                crate::verify::standard_key(secret)
                    .ok_or("config.secret must be a whsec_ secret (base64 after the prefix)")?;
            }
            Verifier::StandardWebhooks(s, t)
        }
        "twilio" => {
            let f: SecretFields = fields(config)?;
            if let Some(url) = &f.public_url {
                url::Url::parse(url).map_err(|e| format!("config.publicUrl: {e}"))?;
            }
            Verifier::Twilio(f.secrets()?, f.public_url.clone())
        }
        "zoom" => {
            let (s, t) = signed()?;
            Verifier::Zoom(s, t)
        }
        "hmac" => hmac(config)?,
        "basic-auth" => basic_auth(config)?,
        "api-key" => api_key(config)?,
        other => {
            return Err(format!(
                "the source type `{other}` is not one Herald verifies; use one of: {}",
                TYPES.join(", ")
            ))
        }
    })
}

/// A generic HMAC source's verifier: the scheme its config describes, checked whole.
fn hmac(config: &Value) -> Result<Verifier, String> {
    let f: SecretFields = fields(config)?;
    let mut rest = config.clone();
    if let Some(map) = rest.as_object_mut() {
        for key in ["secret", "secrets", "tolerance"] {
            map.remove(key);
        }
    }
    let mut scheme: HmacScheme =
        serde_json::from_value(rest).map_err(|e| format!("config: {e}"))?;
    if http::HeaderName::from_bytes(scheme.header.as_bytes()).is_err() {
        return Err("config.header must be a header name".into());
    }
    if !scheme.signed_content.contains("{body}") {
        return Err("config.signedContent must contain {body}".into());
    }
    if scheme.signed_content.contains("{timestamp}") != scheme.timestamp_header.is_some() {
        return Err(
            "config.timestampHeader is needed exactly when signedContent has {timestamp}".into(),
        );
    }
    scheme.secrets = f.secrets()?;
    scheme.tolerance = f.tolerance();
    Ok(Verifier::Hmac(scheme))
}

/// A source that checks HTTP basic credentials.
fn basic_auth(config: &Value) -> Result<Verifier, String> {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Basic {
        username: String,
        password: String,
    }
    let b: Basic = fields(config)?;
    if b.username.is_empty() || b.password.is_empty() {
        return Err("config.username and config.password are required".into());
    }
    Ok(Verifier::BasicAuth {
        username: b.username,
        password: b.password,
    })
}

/// A source that checks a key sent in a header (one of several, while a key is rotated).
fn api_key(config: &Value) -> Result<Verifier, String> {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ApiKey {
        header: String,
        key: Option<String>,
        #[serde(default)]
        keys: Vec<String>,
    }
    let k: ApiKey = fields(config)?;
    let keys: Vec<String> = k
        .key
        .into_iter()
        .chain(k.keys)
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() || http::HeaderName::from_bytes(k.header.as_bytes()).is_err() {
        return Err("config.header and config.key are required".into());
    }
    Ok(Verifier::ApiKey {
        header: k.header,
        keys,
    })
}

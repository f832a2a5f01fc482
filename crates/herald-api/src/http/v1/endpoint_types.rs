//! The JSON shapes of endpoints (Svix's `EndpointIn`/`Out`/`Patch`, secrets) and the rules
//! an endpoint must follow, checked on the endpoint a request would produce.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::endpoint_auth::{KeyPin, MAX_KEY_PINS};
use herald_core::ids::IdKind;
use herald_core::model::{
    Application, ClientIdentity, Endpoint, Metadata, PreviousSecret, Verification, VerificationMode,
};
use herald_core::payload_filter::PayloadFilter;
use herald_core::sealing::{url_for_display, url_for_update};
use herald_core::signature_scheme::SignatureScheme;
use herald_core::signing::EndpointSecret;
use herald_core::validation::{self, FieldError, Validator};
use herald_core::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::http::extract::parse_json;
use crate::http::patch::{self, nullable};
use crate::http::v1::endpoint_header_types::check_headers;
use crate::http::v1::throttle::{check_rate, rate_out};
use crate::state::AppState;
use herald_delivery::destinations::Kind;

/// Most event types one endpoint may filter on, and most channels it may follow.
const MAX_FILTER_TYPES: usize = 256;
const MAX_CHANNELS: usize = 10;

/// A new endpoint, or the full replacement of one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Deliveries per second (`rateLimit` also accepted).
    #[serde(alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Only these event types are delivered (`filterTypes` also accepted).
    #[serde(alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    /// Only messages on one of these channels are delivered.
    pub channels: Option<Vec<String>>,
    /// Herald extension: only messages whose payload meets this filter are delivered
    /// (the README's "Payload filters" has the syntax). Kept when a replacement omits it,
    /// since Svix's SDKs do not know it; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub payload_filter: Option<Option<Value>>,
    /// Herald extension: also sign in this style, for receivers that verify it already:
    /// `{"type": "github", "header": "X-Hub-Signature-256"}` or `{"type": "stripe",
    /// "header": "Stripe-Signature"}`. Kept when a replacement omits it; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub signature_scheme: Option<Option<SignatureScheme>>,
    /// `whsec_…` (HMAC-SHA256), or an ed25519 signing key `whsk_…` (`v1a` signatures);
    /// an HMAC secret is generated when absent.
    pub secret: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    /// Extra headers sent with every delivery.
    pub headers: Option<BTreeMap<String, String>>,
    /// Accepted for compatibility; Herald does not use it.
    pub version: Option<i32>,
    /// Herald extension: at most this many attempts to the endpoint at once, per node (1 to
    /// `delivery.endpoint_concurrency`, which is the default).
    pub max_concurrency: Option<u16>,
    /// Herald extension: deliver one message at a time, in publish order; the next waits
    /// until the one before it succeeded or ran out of retries (head-of-line blocking).
    /// Kept when a replacement omits it.
    pub ordered: Option<bool>,
    /// Herald extension: a TLS client certificate chain and its private key, PEM, presented
    /// to the endpoint's server (mutual TLS). Write-only; kept when a replacement omits it.
    pub client_certificate: Option<String>,
    /// Herald extension: certificate authorities (PEM) trusted for the endpoint's server
    /// instead of the public roots. Kept when a replacement omits it; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub server_ca_certificate: Option<Option<String>>,
    /// Herald extension: pins on the server's public key, `sha256/<base64 of the SHA-256 of
    /// its SubjectPublicKeyInfo>`; when any is set, one must match. Kept when a replacement
    /// omits it; `null` or `[]` removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub public_key_pins: Option<Option<Vec<String>>>,
}

/// An endpoint. Both the current field names and older aliases are sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u16>,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Herald extension: the payload filter, as it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload_filter: Option<Value>,
    /// Herald extension: the other style it is signed in, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub signature_scheme: Option<SignatureScheme>,
    pub metadata: Metadata,
    /// Herald extension: the endpoint's own concurrency cap, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Herald extension: whether messages go one at a time, in publish order.
    pub ordered: bool,
    /// Herald extension: since when every attempt has failed (absent while healthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Herald extension: `true` when a TLS client certificate is set (it is never shown).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub has_client_certificate: bool,
    /// Herald extension: the certificate authorities trusted for the endpoint's server,
    /// when it has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ca_certificate: Option<String>,
    /// Herald extension: pins on the server's public key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub public_key_pins: Vec<String>,
    /// Herald extension: `true` when deliveries carry an OAuth 2.0 access token (its
    /// settings are at `…/oauth`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub has_oauth: bool,
    /// Herald extension: whether it has verified its subscription, when its application
    /// asks (`none`, `pending`, `verified`, `verification_failed`).
    pub verification: EndpointVerificationOut,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The uid prefix of callback URLs' hidden endpoints, which no other endpoint may take.
pub const ADHOC_UID_PREFIX: &str = "adhoc_";

/// Where an endpoint stands in verifying its subscription.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointVerificationOut {
    pub status: &'static str,
    /// Failed tries since it was last asked afresh.
    pub tries: u32,
    pub verified_at: Option<DateTime<Utc>>,
    /// What the last failed try found.
    pub last_error: Option<String>,
}

/// An endpoint asked to verify its subscription afresh, if its application wants it and
/// it is an HTTP endpoint: the verification state to give it.
pub fn fresh_verification(
    app: &Application,
    endpoint: &Endpoint,
    now: DateTime<Utc>,
) -> Option<Verification> {
    let http = delivers_over_http(&endpoint.url);
    (app.verification != VerificationMode::None && http && !endpoint.adhoc)
        .then(|| Verification::pending(now))
}

/// Whether an endpoint at `url` is a plain HTTP webhook (not email, chat, a broker or a
/// listen session).
fn delivers_over_http(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| Kind::of(&u) == Some(Kind::Http))
}

/// Changes to an endpoint; absent fields are kept, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
    pub metadata: Option<Metadata>,
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "nullable", alias = "rateLimit")]
    #[schema(value_type = Option<u16>)]
    pub throttle_rate: Option<Option<u16>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", alias = "filterTypes")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub channels: Option<Option<Vec<String>>>,
    /// A payload filter; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub payload_filter: Option<Option<Value>>,
    /// Another signature style; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub signature_scheme: Option<Option<SignatureScheme>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u16>)]
    pub max_concurrency: Option<Option<u16>>,
    /// One message at a time, in publish order.
    pub ordered: Option<bool>,
    /// PEM certificate chain and key; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub client_certificate: Option<Option<String>>,
    /// Certificate authorities (PEM) for the server; `null` removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub server_ca_certificate: Option<Option<String>>,
    /// Pins on the server's public key; `null` or `[]` removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub public_key_pins: Option<Option<Vec<String>>>,
}

/// What an endpoint's receiver verifies signatures with.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSecretOut {
    /// The shared secret `whsec_…`, or for an ed25519 endpoint its public key `whpk_…`.
    pub key: String,
}

/// A secret rotation; the old secret keeps signing for the grace period.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecretRotateIn {
    /// The new secret; generated when absent.
    pub key: Option<String>,
    /// How long the old secret keeps signing (0 to 604800; default from the config, 24 h).
    pub grace_period_seconds: Option<u32>,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        let rate = rate_out(e.rate_limit);
        Self {
            id: e.id,
            uid: e.uid,
            // A password in the URL is write-only, like the signing secret.
            url: url_for_display(&e.url),
            description: e.description,
            version: e.version,
            throttle_rate: rate,
            rate_limit: rate,
            disabled: e.disabled,
            event_types: e.filter_types.clone(),
            filter_types: e.filter_types,
            channels: e.channels,
            payload_filter: e.payload_filter.map(|f| f.source().clone()),
            signature_scheme: e.signature_scheme,
            metadata: e.metadata,
            max_concurrency: e.max_concurrency,
            ordered: e.ordered,
            failing_since: e.failing_since,
            has_client_certificate: e.client_identity.is_some(),
            server_ca_certificate: e.server_ca,
            public_key_pins: e.key_pins.iter().map(ToString::to_string).collect(),
            has_oauth: e.oauth.is_some(),
            verification: EndpointVerificationOut {
                status: e.verification.status.as_str(),
                tries: e.verification.tries,
                verified_at: e.verification.verified_at,
                last_error: e.verification.last_error,
            },
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Parses a secret given as `whsec_<base64>`, bare base64, or an ed25519 signing key
/// `whsk_<base64>`.
pub fn parse_secret(field: &str, text: &str) -> Result<EndpointSecret, FieldError> {
    let full = if text.starts_with("whsec_") || text.starts_with("whsk_") {
        text.to_owned()
    } else {
        format!("whsec_{text}")
    };
    EndpointSecret::parse(&full).map_err(|e| FieldError::body(field, e.to_string(), "value_error"))
}

/// A payload filter from a request body, or a 422 naming `payloadFilter` and where in the
/// filter the problem is.
pub fn payload_filter_field(source: Value) -> ApiResult<PayloadFilter> {
    PayloadFilter::parse(source).map_err(|e| {
        ApiError::Validation(vec![FieldError::body(
            "payloadFilter",
            e.to_string(),
            "value_error.filter",
        )])
    })
}

/// Key pins from a request body, or a 422 naming `publicKeyPins`.
pub fn key_pins_field(texts: Vec<String>) -> ApiResult<Vec<KeyPin>> {
    let invalid = |msg: String| ApiError::invalid("publicKeyPins", msg);
    if texts.len() > MAX_KEY_PINS {
        return Err(invalid(format!("at most {MAX_KEY_PINS} pins")));
    }
    texts
        .iter()
        .map(|t| KeyPin::parse(t).map_err(invalid))
        .collect()
}

/// A secret from a request body, or a 422 naming `field`.
fn secret_field(field: &str, text: &str) -> ApiResult<EndpointSecret> {
    parse_secret(field, text).map_err(|e| ApiError::Validation(vec![e]))
}

impl EndpointIn {
    /// A new endpoint of `app_id` made of this body (not yet validated).
    pub fn into_new(self, app_id: &str, now: DateTime<Utc>) -> ApiResult<Endpoint> {
        let secret = match &self.secret {
            Some(text) => secret_field("secret", text)?,
            None => EndpointSecret::generate(),
        };
        let mut endpoint = Endpoint {
            version: self.version.unwrap_or(1),
            secret,
            ..Endpoint::new(app_id, String::new(), now)
        };
        self.replace(&mut endpoint)?;
        Ok(endpoint)
    }

    /// Replaces every setting of `endpoint` with this body's; the secret, headers, client
    /// certificate and payload filter only when the body has them.
    pub fn replace(self, endpoint: &mut Endpoint) -> ApiResult<()> {
        if let Some(text) = &self.secret {
            endpoint.secret = secret_field("secret", text)?;
        }
        if let Some(headers) = self.headers {
            endpoint.headers = headers;
        }
        if let Some(pem) = self.client_certificate {
            endpoint.client_identity = Some(ClientIdentity(pem));
        }
        endpoint.url = url_for_update(&self.url, &endpoint.url);
        endpoint.description = self.description;
        endpoint.uid = self.uid;
        endpoint.rate_limit = self.throttle_rate.map(u32::from);
        endpoint.disabled = self.disabled;
        endpoint.filter_types = self.event_types;
        endpoint.channels = self.channels;
        if let Some(filter) = self.payload_filter {
            endpoint.payload_filter = filter.map(payload_filter_field).transpose()?;
        }
        if let Some(scheme) = self.signature_scheme {
            endpoint.signature_scheme = scheme;
        }
        if let Some(ca) = self.server_ca_certificate {
            endpoint.server_ca = ca;
        }
        if let Some(pins) = self.public_key_pins {
            endpoint.key_pins = key_pins_field(pins.unwrap_or_default())?;
        }
        endpoint.metadata = self.metadata;
        endpoint.max_concurrency = self.max_concurrency.map(u32::from);
        if let Some(ordered) = self.ordered {
            endpoint.ordered = ordered;
        }
        Ok(())
    }
}

impl EndpointPatch {
    /// Applies the fields present in the patch.
    pub fn apply(self, endpoint: &mut Endpoint) -> ApiResult<()> {
        if let Some(text) = &self.secret {
            endpoint.secret = secret_field("secret", text)?;
        }
        if let Some(url) = self.url {
            endpoint.url = url_for_update(&url, &endpoint.url);
        }
        if let Some(description) = self.description {
            endpoint.description = description;
        }
        if let Some(disabled) = self.disabled {
            endpoint.disabled = disabled;
        }
        if let Some(ordered) = self.ordered {
            endpoint.ordered = ordered;
        }
        if let Some(metadata) = self.metadata {
            endpoint.metadata = metadata;
        }
        patch::apply(
            &mut endpoint.rate_limit,
            self.throttle_rate.map(|r| r.map(u32::from)),
        );
        patch::apply(&mut endpoint.uid, self.uid);
        patch::apply(&mut endpoint.filter_types, self.event_types);
        patch::apply(&mut endpoint.channels, self.channels);
        if let Some(filter) = self.payload_filter {
            endpoint.payload_filter = filter.map(payload_filter_field).transpose()?;
        }
        patch::apply(&mut endpoint.signature_scheme, self.signature_scheme);
        patch::apply(
            &mut endpoint.max_concurrency,
            self.max_concurrency.map(|c| c.map(u32::from)),
        );
        patch::apply(
            &mut endpoint.client_identity,
            self.client_certificate.map(|c| c.map(ClientIdentity)),
        );
        patch::apply(&mut endpoint.server_ca, self.server_ca_certificate);
        if let Some(pins) = self.public_key_pins {
            endpoint.key_pins = key_pins_field(pins.unwrap_or_default())?;
        }
        Ok(())
    }
}

/// The longest client certificate text (chain and key) accepted.
const MAX_PEM_LEN: usize = 64 * 1024;

/// Checks everything a request can set on an endpoint; filter types must name existing
/// event types.
pub async fn validate(state: &AppState, e: &Endpoint) -> ApiResult<()> {
    let mut v = check_fields(e);
    let email = url::Url::parse(&e.url).is_ok_and(|u| u.scheme() == "mailto");
    if email && !state.config.email_enabled {
        v.check(Err(FieldError::body(
            "url",
            "email destinations are not enabled on this server (it has no [email] settings)",
            "value_error.url",
        )));
    }
    let allowed = &state.config.delivery.allowed_networks;
    if let Some(problem) = blocked_address(&e.url, allowed) {
        v.check(Err(FieldError::body("url", problem, "value_error.url")));
    }
    let token_url = e.oauth.as_ref().map(|o| o.token_url.as_str());
    if let Some(problem) = token_url.and_then(|url| blocked_address(url, allowed)) {
        v.check(Err(FieldError::body(
            "tokenUrl",
            problem,
            "value_error.url",
        )));
    }
    if !e.adhoc
        && e.uid
            .as_deref()
            .is_some_and(|u| u.starts_with(ADHOC_UID_PREFIX))
    {
        v.check(Err(FieldError::body(
            "uid",
            format!("the prefix `{ADHOC_UID_PREFIX}` is reserved for callback URLs"),
            "value_error",
        )));
    }
    // An endpoint may lower its concurrency, never raise it past the operator's setting:
    // a customer's slow endpoint must not take a node's capacity from the others.
    let most = state.config.delivery.endpoint_concurrency;
    if let Some(n) = e.max_concurrency {
        if !(1..=most).contains(&n) {
            v.check(Err(FieldError::body(
                "maxConcurrency",
                format!("must be between 1 and {most} (delivery.endpoint_concurrency)"),
                "value_error",
            )));
        }
    }
    if let Some(types) = &e.filter_types {
        if types.len() <= MAX_FILTER_TYPES {
            check_types_exist(state, &mut v, types).await?;
        }
    }
    v.finish().map_err(ApiError::Validation)
}

/// Why deliveries to `url` would be refused, when its host says so without a lookup: an
/// address literal (or `localhost`) outside public addresses and the allowed networks.
/// Names are judged again at each delivery, on the addresses they resolve to then.
pub fn blocked_address(url: &str, allowed: &[ipnet::IpNet]) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => std::net::IpAddr::V4(ip),
        url::Host::Ipv6(ip) => std::net::IpAddr::V6(ip),
        url::Host::Domain(name) if name == "localhost" || name.ends_with(".localhost") => {
            std::net::Ipv4Addr::LOCALHOST.into()
        }
        url::Host::Domain(_) => return None,
    };
    let policy = herald_core::network::AddressPolicy::new(allowed.to_vec());
    (!policy.permits(ip)).then(|| {
        format!(
            "{ip} is a private, loopback, link-local or metadata address; Herald does not \
             deliver there unless the operator allows its network (delivery.allowed_networks)"
        )
    })
}

/// Checks every field of an endpoint except that its filter types exist.
pub fn check_fields(e: &Endpoint) -> Validator {
    let mut v = Validator::default();
    // The URL's scheme names the destination kind, which checks the rest.
    match validation::endpoint_url("url", &e.url) {
        Ok(url) => v.check(
            herald_delivery::destinations::check_url(&url)
                .map(drop)
                .map_err(|problem| FieldError::body("url", problem, "value_error.url")),
        ),
        Err(error) => v.check(Err(error)),
    }
    v.check(validation::length("description", &e.description, 0, 8192));
    if let Some(uid) = &e.uid {
        v.check(validation::own_uid("uid", uid, IdKind::Endpoint));
    }
    check_rate(&mut v, rate_out(e.rate_limit));
    if let Some(scheme) = &e.signature_scheme {
        let usable = match delivers_over_http(&e.url) {
            true => scheme.check(&e.secret),
            false => Err("applies to HTTP endpoints only".to_owned()),
        };
        v.check(
            usable.map_err(|problem| FieldError::body("signatureScheme", problem, "value_error")),
        );
    }
    v.check(validation::metadata("metadata", &e.metadata));
    if let Some(channels) = &e.channels {
        v.check(validation::list_len("channels", channels, 1, MAX_CHANNELS));
        for c in channels {
            v.check(
                validation::length("channels", c, 1, 128)
                    .and(validation::event_type_name("channels", c)),
            );
        }
    }
    if let Some(types) = &e.filter_types {
        v.check(validation::list_len(
            "filterTypes",
            types,
            1,
            MAX_FILTER_TYPES,
        ));
    }
    if let Some(identity) = &e.client_identity {
        check_client_identity(&mut v, identity);
    }
    check_endpoint_auth(&mut v, e);
    if let Err(ApiError::Validation(errors)) = check_headers(&e.headers) {
        v.errors.extend(errors);
    }
    v
}

/// Checks an mTLS client identity: a PEM chain and its key, of a sane length.
fn check_client_identity(v: &mut Validator, identity: &ClientIdentity) {
    v.check(validation::length(
        "clientCertificate",
        &identity.0,
        1,
        MAX_PEM_LEN,
    ));
    if identity.0.len() <= MAX_PEM_LEN
        && !herald_delivery::destinations::http::is_client_identity(identity)
    {
        v.check(Err(FieldError::body(
            "clientCertificate",
            "must be a PEM certificate chain followed by its private key (PKCS#8, RSA or SEC1)",
            "value_error",
        )));
    }
}

/// Checks an endpoint's server CA, key pins and OAuth client, which only HTTP endpoints
/// use.
fn check_endpoint_auth(v: &mut Validator, e: &Endpoint) {
    let http = delivers_over_http(&e.url);
    let only_http =
        |field: &str| FieldError::body(field, "applies to HTTP endpoints only", "value_error");
    if let Some(ca) = &e.server_ca {
        v.check(validation::length(
            "serverCaCertificate",
            ca,
            1,
            MAX_PEM_LEN,
        ));
        if !http {
            v.check(Err(only_http("serverCaCertificate")));
        } else if ca.len() <= MAX_PEM_LEN {
            v.check(
                herald_delivery::destinations::http::check_server_ca(ca).map_err(|problem| {
                    FieldError::body("serverCaCertificate", problem, "value_error")
                }),
            );
        }
    }
    if !e.key_pins.is_empty() && !http {
        v.check(Err(only_http("publicKeyPins")));
    }
    if let Some(oauth) = &e.oauth {
        if !http {
            v.check(Err(only_http("tokenUrl")));
        }
        if let Err(errors) = oauth.check() {
            v.errors.extend(errors);
        }
    }
}

async fn check_types_exist(state: &AppState, v: &mut Validator, types: &[String]) -> ApiResult<()> {
    for name in types {
        if let Err(e) = validation::event_type_name("filterTypes", name) {
            v.check(Err(e));
            continue;
        }
        match state.store.get_event_type(name).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => v.check(Err(FieldError::body(
                "filterTypes",
                format!("event type `{name}` does not exist"),
                "value_error",
            ))),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;

/// Gives `endpoint` a new secret (the body's `key`, or a generated one) and keeps the old
/// one signing for the grace period; stores the endpoint.
pub async fn rotate(state: &AppState, endpoint: &mut Endpoint, body: &[u8]) -> ApiResult<()> {
    let read_at = endpoint.updated_at;
    let old = endpoint.secret.clone();
    let (secret, previous) = rotation(state, old, body)?;
    if let Some(scheme) = &endpoint.signature_scheme {
        scheme
            .check(&secret)
            .map_err(|problem| ApiError::invalid("key", problem))?;
    }
    endpoint.secret = secret;
    endpoint.previous_secret = previous;
    endpoint.updated_at = state.clock.now();
    state.store.update_endpoint(endpoint, read_at).await?;
    Ok(())
}

/// The secret a rotation request (`EndpointSecretRotateIn`, or no body) asks for, and the
/// old secret kept signing beside it for the grace period (`None` for a grace of 0).
pub fn rotation(
    state: &AppState,
    old: EndpointSecret,
    body: &[u8],
) -> ApiResult<(EndpointSecret, Option<PreviousSecret>)> {
    // Older clients send no body at all.
    let body: EndpointSecretRotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        EndpointSecretRotateIn::default()
    } else {
        parse_json(body)?
    };
    let new_secret = match &body.key {
        Some(text) => parse_secret("key", text).map_err(|e| ApiError::Validation(vec![e]))?,
        None => EndpointSecret::generate(),
    };
    let grace = match body.grace_period_seconds {
        Some(s) if s > MAX_GRACE_SECONDS => {
            return Err(ApiError::invalid(
                "gracePeriodSeconds",
                "must be at most 604800 (7 days)",
            ))
        }
        Some(s) => chrono::Duration::seconds(i64::from(s)),
        None => chrono::Duration::from_std(state.config.delivery.secret_rotation_overlap)
            .unwrap_or(chrono::Duration::hours(24)),
    };
    let previous = (!grace.is_zero()).then(|| PreviousSecret {
        secret: old,
        expires_at: state.clock.now() + grace,
    });
    Ok((new_secret, previous))
}

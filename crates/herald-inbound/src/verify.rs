//! Each provider's signature check, over the raw bytes received. Every comparison of a
//! secret or a signature takes the same time wherever the first difference is.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::config::{Algorithm, Encoding, HmacScheme, Verifier};

/// A request as received, with what its checks need.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// `scheme://host[:port]` as the sender reached Herald (Twilio signs the URL).
    pub base_url: &'a str,
    /// The path and query as received.
    pub path_and_query: &'a str,
    pub now: DateTime<Utc>,
}

impl Inbound<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why a request was refused. The sender is told only that it was; the reason goes to the
/// source's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MissingSignature,
    SignatureMismatch,
    TimestampOutOfTolerance,
    BadCredentials,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Self::BadCredentials => "bad_credentials",
        }
    }
}

type Checked = Result<(), Rejection>;

/// Checks `req` as `verifier` says.
pub fn verify(verifier: &Verifier, req: &Inbound<'_>) -> Checked {
    match verifier {
        Verifier::None => Ok(()),
        Verifier::GitHub(secrets) | Verifier::Meta { secrets, .. } => {
            let given = prefixed(req.header("x-hub-signature-256"), "sha256=")?;
            any_hex(secrets, Algorithm::Sha256, &[req.body], given)
        }
        Verifier::Shopify(secrets) => {
            let given = req
                .header("x-shopify-hmac-sha256")
                .ok_or(Rejection::MissingSignature)?;
            any_base64(secrets, Algorithm::Sha256, &[req.body], given)
        }
        Verifier::Stripe(secrets, tolerance) => stripe(secrets, *tolerance, req),
        Verifier::Slack(secrets, tolerance) => v0_scheme(
            secrets,
            *tolerance,
            req,
            "x-slack-signature",
            "x-slack-request-timestamp",
        ),
        Verifier::Zoom(secrets, tolerance) => v0_scheme(
            secrets,
            *tolerance,
            req,
            "x-zm-signature",
            "x-zm-request-timestamp",
        ),
        Verifier::StandardWebhooks(secrets, tolerance) => standard(secrets, *tolerance, req),
        Verifier::Twilio(tokens, public_url) => twilio(tokens, public_url.as_deref(), req),
        Verifier::Hmac(scheme) => generic_hmac(scheme, req),
        Verifier::BasicAuth { username, password } => {
            let given = prefixed(req.header("authorization"), "Basic ")
                .map_err(|_| Rejection::BadCredentials)?;
            let expected = BASE64.encode(format!("{username}:{password}"));
            same_bytes(expected.as_bytes(), given.trim().as_bytes())
                .then_some(())
                .ok_or(Rejection::BadCredentials)
        }
        Verifier::ApiKey { header, keys } => {
            let given = req.header(header).ok_or(Rejection::BadCredentials)?;
            keys.iter()
                .any(|k| same_bytes(k.as_bytes(), given.as_bytes()))
                .then_some(())
                .ok_or(Rejection::BadCredentials)
        }
    }
}

/// Stripe: `Stripe-Signature: t=…,v1=…[,v1=…]`, an HMAC of `"{t}.{body}"` keyed with the
/// whole secret text; any `v1` may match (the sender's rotation), `v0` is ignored.
fn stripe(secrets: &[String], tolerance: Duration, req: &Inbound<'_>) -> Checked {
    let header = req
        .header("stripe-signature")
        .ok_or(Rejection::MissingSignature)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Rejection::MissingSignature)?;
    fresh(timestamp, tolerance, req.now)?;
    let content: [&[u8]; 3] = [timestamp.as_bytes(), b".", req.body];
    let matched = signatures
        .iter()
        .any(|s| any_hex(secrets, Algorithm::Sha256, &content, s).is_ok());
    matched.then_some(()).ok_or(Rejection::SignatureMismatch)
}

/// Slack and Zoom: `v0=<hex>` of an HMAC of `"v0:{timestamp}:{body}"`.
fn v0_scheme(
    secrets: &[String],
    tolerance: Duration,
    req: &Inbound<'_>,
    signature_header: &str,
    timestamp_header: &str,
) -> Checked {
    let given = prefixed(req.header(signature_header), "v0=")?;
    let timestamp = req
        .header(timestamp_header)
        .ok_or(Rejection::MissingSignature)?;
    fresh(timestamp, tolerance, req.now)?;
    let content: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", req.body];
    any_hex(secrets, Algorithm::Sha256, &content, given)
}

/// The key of a Standard Webhooks secret: the base64 after `whsec_`.
pub fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    BASE64.decode(encoded).ok().filter(|k| !k.is_empty())
}

/// Standard Webhooks (`webhook-*` headers, or Svix's `svix-*`): any `v1,<base64>` of an
/// HMAC of `"{id}.{timestamp}.{body}"`.
fn standard(secrets: &[String], tolerance: Duration, req: &Inbound<'_>) -> Checked {
    let either = |name: &str| {
        req.header(&format!("webhook-{name}"))
            .or_else(|| req.header(&format!("svix-{name}")))
    };
    let (Some(id), Some(timestamp), Some(signatures)) =
        (either("id"), either("timestamp"), either("signature"))
    else {
        return Err(Rejection::MissingSignature);
    };
    fresh(timestamp, tolerance, req.now)?;
    let content: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", req.body];
    for secret in secrets {
        let Some(key) = standard_key(secret) else {
            continue;
        };
        let expected = mac(Algorithm::Sha256, &key, &content);
        let matched = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| BASE64.decode(s).ok())
            .any(|given| same_bytes(&expected, &given));
        if matched {
            return Ok(());
        }
    }
    Err(Rejection::SignatureMismatch)
}

/// Twilio: `X-Twilio-Signature`, the base64 HMAC-SHA1 of the URL it called followed, for a
/// form post, by every parameter sorted by name (name then value, no separators). A JSON
/// post instead carries the body's SHA-256 in the URL's `bodySHA256`, which must match.
fn twilio(tokens: &[String], public_url: Option<&str>, req: &Inbound<'_>) -> Checked {
    let given = req
        .header("x-twilio-signature")
        .ok_or(Rejection::MissingSignature)?;
    let base = public_url.unwrap_or(req.base_url).trim_end_matches('/');
    let url = format!("{base}{}", req.path_and_query);
    let mut content = url.clone().into_bytes();
    let form = req
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        let mut params: Vec<(String, String)> =
            url::form_urlencoded::parse(req.body).into_owned().collect();
        params.sort();
        for (name, value) in params {
            content.extend_from_slice(name.as_bytes());
            content.extend_from_slice(value.as_bytes());
        }
    } else {
        let query = url::Url::parse(&url).map_err(|_| Rejection::SignatureMismatch)?;
        let claimed = query
            .query_pairs()
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v.into_owned())
            .ok_or(Rejection::SignatureMismatch)?;
        let actual = to_hex(&Sha256::digest(req.body));
        if !same_bytes(actual.as_bytes(), claimed.to_ascii_lowercase().as_bytes()) {
            return Err(Rejection::SignatureMismatch);
        }
    }
    any_base64(tokens, Algorithm::Sha1, &[&content], given)
}

/// A generic HMAC, as the source describes it.
fn generic_hmac(scheme: &HmacScheme, req: &Inbound<'_>) -> Checked {
    let given = prefixed(req.header(&scheme.header), &scheme.prefix)?;
    let timestamp = match &scheme.timestamp_header {
        Some(header) => {
            let t = req.header(header).ok_or(Rejection::MissingSignature)?;
            fresh(t, scheme.tolerance, req.now)?;
            t
        }
        None => "",
    };
    let (before, after) = scheme
        .signed_content
        .split_once("{body}")
        .unwrap_or(("", ""));
    let before = before.replace("{timestamp}", timestamp);
    let after = after.replace("{timestamp}", timestamp);
    let content: [&[u8]; 3] = [before.as_bytes(), req.body, after.as_bytes()];
    match scheme.encoding {
        Encoding::Hex => any_hex(&scheme.secrets, scheme.algorithm, &content, given),
        Encoding::Base64 => any_base64(&scheme.secrets, scheme.algorithm, &content, given),
    }
}

/// The header's value after `prefix`.
fn prefixed<'a>(value: Option<&'a str>, prefix: &str) -> Result<&'a str, Rejection> {
    value
        .and_then(|v| v.trim().strip_prefix(prefix))
        .ok_or(Rejection::MissingSignature)
}

/// Whether a signed unix timestamp is within `tolerance` of now, either way.
fn fresh(timestamp: &str, tolerance: Duration, now: DateTime<Utc>) -> Checked {
    let t: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Rejection::MissingSignature)?;
    let off = now.timestamp().abs_diff(t);
    (off <= tolerance.as_secs())
        .then_some(())
        .ok_or(Rejection::TimestampOutOfTolerance)
}

fn mac(algorithm: Algorithm, key: &[u8], content: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], content: &[&[u8]]) -> Vec<u8> {
        // HMAC takes keys of any length.
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
        for part in content {
            m.update(part);
        }
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<Sha1>>(key, content),
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, content),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, content),
    }
}

/// Whether `given` is the hex HMAC of `content` under one of the secrets.
fn any_hex(secrets: &[String], alg: Algorithm, content: &[&[u8]], given: &str) -> Checked {
    let given = given.trim().to_ascii_lowercase();
    secrets
        .iter()
        .any(|s| {
            same_bytes(
                to_hex(&mac(alg, s.as_bytes(), content)).as_bytes(),
                given.as_bytes(),
            )
        })
        .then_some(())
        .ok_or(Rejection::SignatureMismatch)
}

/// Whether `given` is the base64 HMAC of `content` under one of the secrets.
fn any_base64(secrets: &[String], alg: Algorithm, content: &[&[u8]], given: &str) -> Checked {
    let given = BASE64
        .decode(given.trim())
        .map_err(|_| Rejection::SignatureMismatch)?;
    secrets
        .iter()
        .any(|s| same_bytes(&mac(alg, s.as_bytes(), content), &given))
        .then_some(())
        .ok_or(Rejection::SignatureMismatch)
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Compares in time that depends on the lengths only, not on where the bytes differ.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The HMAC a generic or provider scheme would send, for tests and `herald sign`.
pub fn sign_hex(algorithm: Algorithm, secret: &str, content: &[&[u8]]) -> String {
    to_hex(&mac(algorithm, secret.as_bytes(), content))
}

/// The base64 HMAC of `content`.
pub fn sign_base64(algorithm: Algorithm, key: &[u8], content: &[&[u8]]) -> String {
    BASE64.encode(mac(algorithm, key, content))
}

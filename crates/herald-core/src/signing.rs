//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
//! keyed with a `whsec_<base64>` secret.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
/// Svix generates 24-byte secrets; Standard Webhooks accepts 24 to 64.
const GENERATED_SECRET_LEN: usize = 24;
const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;

/// An endpoint's signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret(Vec<u8>);

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// Why a secret string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the secret must start with `whsec_` followed by base64")]
    Format,
    #[error("the secret must be between 24 and 64 bytes once base64-decoded")]
    Length,
}

impl EndpointSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Format)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::Format)?;
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self(key))
    }

    /// The `whsec_<base64>` form, as shown to the endpoint's owner.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    /// The `v1,<base64>` signature of one delivery.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one space-separated signature per secret.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a EndpointSecret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example published with the Standard Webhooks specification.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specification_example() {
        let secret = EndpointSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            secret.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn signatures_verify_with_the_standardwebhooks_crate() {
        let secret = EndpointSecret::generate();
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"hello":"w\u00f6rld"}"#;
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        let header = secret.sign("msg_1", now, body);
        headers.insert("webhook-signature", header.parse().unwrap());
        let verifier = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        verifier.verify(body, &headers).expect("signature verifies");
    }

    #[test]
    fn header_carries_one_signature_per_secret() {
        let (a, b) = (EndpointSecret::generate(), EndpointSecret::generate());
        let header = signature_header([&a, &b], "msg_1", 1, b"{}");
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(
            parts,
            [a.sign("msg_1", 1, b"{}"), b.sign("msg_1", 1, b"{}")]
        );
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let secret = EndpointSecret::generate();
        assert_eq!(EndpointSecret::parse(&secret.expose()).unwrap(), secret);
        assert_eq!(EndpointSecret::parse("nope"), Err(SecretError::Format));
        assert_eq!(EndpointSecret::parse("whsec_!!!"), Err(SecretError::Format));
        assert_eq!(
            EndpointSecret::parse("whsec_YWJj"),
            Err(SecretError::Length)
        );
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
    }
}

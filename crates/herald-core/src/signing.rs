//! Standard Webhooks signatures over `"{id}.{timestamp}.{body}"`:
//! - symmetric, `v1,<base64 HMAC-SHA256>`, keyed with a `whsec_<base64>` secret;
//! - asymmetric, `v1a,<base64 ed25519 signature>`, signed with a `whsk_<base64>` secret
//!   key whose public half, `whpk_<base64>`, is what the receiver verifies with.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
const SIGNING_KEY_PREFIX: &str = "whsk_";
const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Svix generates 24-byte secrets; Standard Webhooks accepts 24 to 64.
const GENERATED_SECRET_LEN: usize = 24;
const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;

/// An endpoint's signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum EndpointSecret {
    /// A shared HMAC-SHA256 secret (`whsec_`).
    Hmac(Vec<u8>),
    /// An ed25519 signing key (`whsk_`); receivers verify with its public key (`whpk_`).
    Ed25519(SigningKey),
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// Why a secret string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the secret must be `whsec_` followed by base64, or an ed25519 key `whsk_` followed by base64")]
    Format,
    #[error("the secret must be between 24 and 64 bytes once base64-decoded")]
    Length,
    #[error("an ed25519 key must be 32 bytes (the seed) or 64 (seed and public key) once base64-decoded, its halves matching")]
    Ed25519Key,
}

impl EndpointSecret {
    /// A new random HMAC secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::Hmac(key)
    }

    /// A new random ed25519 signing key.
    pub fn generate_ed25519() -> Self {
        Self::Ed25519(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Parses `whsec_<base64>` or `whsk_<base64>`.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        if let Some(encoded) = s.strip_prefix(SIGNING_KEY_PREFIX) {
            let bytes = BASE64.decode(encoded).map_err(|_| SecretError::Format)?;
            return parse_ed25519(&bytes).map(Self::Ed25519);
        }
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Format)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::Format)?;
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self::Hmac(key))
    }

    /// The secret's own text (`whsec_…` or `whsk_…`), as stored and as [`parse`] reads it.
    ///
    /// [`parse`]: Self::parse
    pub fn expose(&self) -> String {
        match self {
            Self::Hmac(key) => format!("{SECRET_PREFIX}{}", BASE64.encode(key)),
            Self::Ed25519(key) => format!("{SIGNING_KEY_PREFIX}{}", BASE64.encode(key.to_bytes())),
        }
    }

    /// What the receiver verifies with, as shown to the endpoint's owner: the shared
    /// secret itself (`whsec_…`), or the public key (`whpk_…`) of an ed25519 key.
    pub fn verification_key(&self) -> String {
        match self {
            Self::Hmac(_) => self.expose(),
            Self::Ed25519(key) => format!(
                "{PUBLIC_KEY_PREFIX}{}",
                BASE64.encode(key.verifying_key().to_bytes())
            ),
        }
    }

    /// The `v1,<base64>` or `v1a,<base64>` signature of one delivery.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match self {
            Self::Hmac(key) => {
                // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(msg_id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
            }
            Self::Ed25519(key) => {
                let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
                content.extend_from_slice(msg_id.as_bytes());
                content.push(b'.');
                content.extend_from_slice(timestamp.to_string().as_bytes());
                content.push(b'.');
                content.extend_from_slice(body);
                format!("v1a,{}", BASE64.encode(key.sign(&content).to_bytes()))
            }
        }
    }
}

/// What a receiver verifies signatures with: the shared secret (`whsec_…`), or the public
/// key (`whpk_…`) of an endpoint that signs with ed25519.
#[derive(Clone)]
pub enum VerificationKey {
    Hmac(EndpointSecret),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl VerificationKey {
    /// Parses `whsec_<base64>` or `whpk_<base64>`.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let Some(encoded) = s.strip_prefix(PUBLIC_KEY_PREFIX) else {
            return EndpointSecret::parse(s).map(Self::Hmac);
        };
        let bytes = BASE64.decode(encoded).map_err(|_| SecretError::Format)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SecretError::Ed25519Key)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self::Ed25519)
            .map_err(|_| SecretError::Ed25519Key)
    }

    /// Whether one of the signatures of a `webhook-signature` header is this key's over
    /// `"{id}.{timestamp}.{body}"`.
    pub fn verifies(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        match self {
            Self::Hmac(secret) => {
                let expected = secret.sign(msg_id, timestamp, body);
                header.split(' ').any(|s| s == expected)
            }
            Self::Ed25519(key) => {
                use ed25519_dalek::Verifier as _;
                let mut content = format!("{msg_id}.{timestamp}.").into_bytes();
                content.extend_from_slice(body);
                header
                    .split(' ')
                    .filter_map(|s| s.strip_prefix("v1a,"))
                    .filter_map(|s| BASE64.decode(s).ok())
                    .filter_map(|s| ed25519_dalek::Signature::from_slice(&s).ok())
                    .any(|signature| key.verify(&content, &signature).is_ok())
            }
        }
    }
}

/// An ed25519 key given as its 32-byte seed, or as seed and public key (64 bytes, the
/// libsodium layout), in which case the public half must be the seed's.
fn parse_ed25519(bytes: &[u8]) -> Result<SigningKey, SecretError> {
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .ok_or(SecretError::Ed25519Key)?;
    let key = SigningKey::from_bytes(&seed);
    match bytes.len() {
        32 => Ok(key),
        64 if bytes[32..] == key.verifying_key().to_bytes() => Ok(key),
        _ => Err(SecretError::Ed25519Key),
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

    #[test]
    fn ed25519_signatures_verify_with_the_public_key() {
        use ed25519_dalek::{Signature, Verifier, VerifyingKey};
        let secret = EndpointSecret::generate_ed25519();
        assert_eq!(EndpointSecret::parse(&secret.expose()).unwrap(), secret);
        let public = secret.verification_key();
        let public = BASE64
            .decode(public.strip_prefix("whpk_").unwrap())
            .unwrap();
        let public = VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        let header = secret.sign("msg_1", 1_700_000_000, b"{}");
        let signature = BASE64.decode(header.strip_prefix("v1a,").unwrap()).unwrap();
        let signature = Signature::from_slice(&signature).unwrap();
        assert!(public.verify(b"msg_1.1700000000.{}", &signature).is_ok());
        assert!(public.verify(b"msg_1.1700000000.{ }", &signature).is_err());
    }

    #[test]
    fn ed25519_keys_parse_as_seed_or_keypair() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let seed = format!("whsk_{}", BASE64.encode([7; 32]));
        let mut pair = vec![7; 32];
        pair.extend_from_slice(&key.verifying_key().to_bytes());
        let pair = format!("whsk_{}", BASE64.encode(&pair));
        assert_eq!(EndpointSecret::parse(&seed), EndpointSecret::parse(&pair));
        let mut mismatched = vec![7; 32];
        mismatched.extend_from_slice(&[1; 32]);
        let mismatched = format!("whsk_{}", BASE64.encode(&mismatched));
        assert_eq!(
            EndpointSecret::parse(&mismatched),
            Err(SecretError::Ed25519Key)
        );
        assert_eq!(
            EndpointSecret::parse("whsk_YWJj"),
            Err(SecretError::Ed25519Key)
        );
    }

    #[test]
    fn receivers_verify_with_the_shared_secret_or_the_public_key() {
        for secret in [
            EndpointSecret::generate(),
            EndpointSecret::generate_ed25519(),
        ] {
            let key = VerificationKey::parse(&secret.verification_key()).unwrap();
            let header = format!("v1,bm90IGl0 {}", secret.sign("msg_1", 1_700_000_000, b"{}"));
            assert!(key.verifies("msg_1", 1_700_000_000, b"{}", &header));
            assert!(!key.verifies("msg_1", 1_700_000_000, b"{ }", &header));
            assert!(!key.verifies("msg_2", 1_700_000_000, b"{}", &header));
        }
        assert!(VerificationKey::parse("whpk_YWJj").is_err());
        assert!(VerificationKey::parse("nonsense").is_err());
    }
}

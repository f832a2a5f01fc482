//! Signatures in the style a provider's customers already verify, sent beside the Standard
//! Webhooks headers (which Herald always sends), so that a provider moving its webhooks to
//! Herald does not make every customer change their receiver:
//!
//! - GitHub's: `<header>: sha256=<hex HMAC-SHA256 of the body>`;
//! - Stripe's: `<header>: t=<unix time>,v1=<hex HMAC-SHA256 of "<time>.<body>">`, one `v1`
//!   per secret while a rotated-out secret still signs.
//!
//! The HMAC key is the endpoint's secret, decoded: a provider brings an existing secret `s`
//! as `whsec_` + base64(`s`). An ed25519 endpoint has no shared key, so it signs only the
//! Standard Webhooks way.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::signing::EndpointSecret;

/// Headers a scheme may not take: the ones Herald sets itself.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "traceparent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
];

/// How an endpoint's deliveries are signed besides Standard Webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SignatureScheme {
    /// `sha256=<hex>` over the body, in `header` (GitHub sends `X-Hub-Signature-256`).
    GitHub { header: String },
    /// `t=…,v1=…` over the time and the body, in `header` (Stripe sends `Stripe-Signature`).
    Stripe { header: String },
}

impl SignatureScheme {
    /// The header it is sent in.
    pub fn header(&self) -> &str {
        match self {
            Self::GitHub { header } | Self::Stripe { header } => header,
        }
    }

    /// Why it cannot sign for an endpoint with `secret`, if it cannot.
    pub fn check(&self, secret: &EndpointSecret) -> Result<(), String> {
        let header = self.header();
        // A header name is an HTTP token (RFC 9110 §5.6.2).
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if header.is_empty() || header.len() > 64 || !header.chars().all(token) {
            return Err("`header` must be a header name of 1 to 64 characters".into());
        }
        if RESERVED.contains(&header.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "`header` may not be `{header}`, which Herald sets itself"
            ));
        }
        match secret {
            EndpointSecret::Hmac(_) => Ok(()),
            EndpointSecret::Ed25519(_) => {
                Err("an ed25519 endpoint has no shared key to sign with in this style".into())
            }
        }
    }

    /// The header's value for a delivery at `timestamp` of `body`, signed with `secrets`
    /// (the current one first); `None` when none of them is a shared key.
    pub fn sign<'a>(
        &self,
        secrets: impl IntoIterator<Item = &'a EndpointSecret>,
        timestamp: i64,
        body: &[u8],
    ) -> Option<String> {
        let mut keys = secrets.into_iter().filter_map(|s| match s {
            EndpointSecret::Hmac(key) => Some(key.as_slice()),
            EndpointSecret::Ed25519(_) => None,
        });
        match self {
            // GitHub's header carries one signature: the current secret's.
            Self::GitHub { .. } => Some(format!("sha256={}", hmac_hex(keys.next()?, &[body]))),
            Self::Stripe { .. } => {
                let time = timestamp.to_string();
                let signed: Vec<String> = keys
                    .map(|key| format!("v1={}", hmac_hex(key, &[time.as_bytes(), b".", body])))
                    .collect();
                (!signed.is_empty()).then(|| format!("t={time},{}", signed.join(",")))
            }
        }
    }
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn secret_of(text: &str) -> EndpointSecret {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        EndpointSecret::parse(&format!("whsec_{encoded}")).unwrap()
    }

    #[test]
    fn github_style_matches_githubs_documented_example() {
        // GitHub's documentation: secret "It's a Secret to Everybody", body "Hello, World!".
        let scheme = SignatureScheme::GitHub {
            header: "X-Hub-Signature-256".into(),
        };
        let secret = secret_of("It's a Secret to Everybody");
        assert_eq!(
            scheme.sign([&secret], 0, b"Hello, World!").unwrap(),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn stripe_style_signs_time_and_body_with_every_secret() {
        let scheme = SignatureScheme::Stripe {
            header: "Stripe-Signature".into(),
        };
        let (current, previous) = (
            secret_of("whsec_current_secret_1234"),
            secret_of("whsec_previous_secret_123"),
        );
        let value = scheme
            .sign([&current, &previous], 1_700_000_000, b"{}")
            .unwrap();
        let parts: Vec<&str> = value.split(',').collect();
        assert_eq!(parts[0], "t=1700000000");
        assert_eq!(parts.len(), 3);
        let expected = hmac_hex(b"whsec_current_secret_1234", &[b"1700000000.{}"]);
        assert_eq!(parts[1], format!("v1={expected}"));
    }

    #[test]
    fn reserved_headers_bad_names_and_ed25519_keys_are_refused() {
        let hmac = EndpointSecret::generate();
        let github = |h: &str| SignatureScheme::GitHub { header: h.into() };
        assert!(github("X-Acme-Signature-256").check(&hmac).is_ok());
        assert!(github("Webhook-Signature").check(&hmac).is_err());
        assert!(github("bad header").check(&hmac).is_err());
        assert!(github("").check(&hmac).is_err());
        let ed = EndpointSecret::generate_ed25519();
        assert!(github("X-Sig").check(&ed).is_err());
        assert_eq!(github("X-Sig").sign([&ed], 0, b""), None);
    }

    #[test]
    fn it_reads_and_writes_as_tagged_json() {
        let scheme: SignatureScheme =
            serde_json::from_str(r#"{"type": "stripe", "header": "Acme-Signature"}"#).unwrap();
        assert_eq!(scheme.header(), "Acme-Signature");
        assert!(
            serde_json::from_str::<SignatureScheme>(r#"{"type": "md5", "header": "x"}"#).is_err()
        );
        assert!(serde_json::from_str::<SignatureScheme>(r#"{"type": "github"}"#).is_err());
    }
}

//! How an endpoint's deliveries prove where they come from and check where they go,
//! beyond signatures:
//!
//! - an OAuth 2.0 client ([`OAuthClient`]): Herald asks the endpoint's authorization
//!   server for an access token (RFC 6749 §4.4 client credentials, or §6 a refresh token)
//!   and sends it as `Authorization: Bearer …` with each delivery;
//! - pins on the receiver's public key ([`KeyPin`]): the SHA-256 of the server
//!   certificate's SubjectPublicKeyInfo, checked after the usual chain verification, as
//!   curl's `--pinnedpubkey sha256//…` does.
//!
//! Only the rules live here; fetching tokens and verifying certificates is the delivery
//! engine's.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::validation::{length, FieldError, Validator};

/// How the client authenticates to the token URL (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OAuthAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// What the client trades for an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OAuthGrantType {
    ClientCredentials,
    /// A long-lived refresh token the receiver's owner issued (`refreshToken`).
    RefreshToken,
}

/// An endpoint's OAuth 2.0 client. Its secrets are sealed at rest like the signing secret
/// and never shown back; `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClient {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub auth_method: OAuthAuthMethod,
    pub grant_type: OAuthGrantType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// More form parameters for the token request (an `audience`, a `resource`…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_params: BTreeMap<String, String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("auth_method", &self.auth_method)
            .field("grant_type", &self.grant_type)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Form parameters Herald sets itself, which `extraParams` may not replace.
const RESERVED_PARAMS: [&str; 5] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "refresh_token",
];
const MAX_SCOPES: usize = 32;
const MAX_EXTRA_PARAMS: usize = 16;

impl OAuthClient {
    /// Checks every field; errors name the API's (camelCase) field names. Whether the
    /// token URL's address may be reached is the server's address policy to say.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Validator::default();
        v.check(token_url(&self.token_url));
        v.check(length("clientId", &self.client_id, 1, 256));
        v.check(length("clientSecret", &self.client_secret, 1, 1024));
        match (self.grant_type, &self.refresh_token) {
            (OAuthGrantType::RefreshToken, None) => v.check(Err(FieldError::body(
                "refreshToken",
                "is required by the `refreshToken` grant type",
                "value_error.missing",
            ))),
            (OAuthGrantType::RefreshToken, Some(token)) => {
                v.check(length("refreshToken", token, 1, 4096))
            }
            (OAuthGrantType::ClientCredentials, Some(_)) => v.check(Err(FieldError::body(
                "refreshToken",
                "is only used by the `refreshToken` grant type",
                "value_error",
            ))),
            (OAuthGrantType::ClientCredentials, None) => {}
        }
        if self.scopes.len() > MAX_SCOPES {
            v.check(Err(FieldError::body(
                "scopes",
                format!("at most {MAX_SCOPES} scopes"),
                "value_error.list",
            )));
        }
        for scope in &self.scopes {
            // RFC 6749 §3.3: printable ASCII except space, `"` and `\`.
            let printable = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
            if scope.is_empty() || scope.len() > 256 || !scope.chars().all(printable) {
                v.check(Err(FieldError::body(
                    "scopes",
                    format!("`{scope}` is not a scope token (1 to 256 printable ASCII characters, no spaces or quotes)"),
                    "value_error",
                )));
            }
        }
        if self.extra_params.len() > MAX_EXTRA_PARAMS {
            v.check(Err(FieldError::body(
                "extraParams",
                format!("at most {MAX_EXTRA_PARAMS} parameters"),
                "value_error",
            )));
        }
        for (name, value) in &self.extra_params {
            if RESERVED_PARAMS.contains(&name.as_str()) {
                v.check(Err(FieldError::body(
                    "extraParams",
                    format!("`{name}` is set by Herald from the other fields"),
                    "value_error",
                )));
            }
            v.check(length("extraParams", name, 1, 128));
            v.check(length("extraParams", value, 0, 1024));
        }
        v.finish()
    }

    /// The token request's form body, without the client's credentials (which the auth
    /// method places).
    pub fn grant_form(&self) -> Vec<(&str, &str)> {
        let mut form = Vec::new();
        match self.grant_type {
            OAuthGrantType::ClientCredentials => form.push(("grant_type", "client_credentials")),
            OAuthGrantType::RefreshToken => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", self.refresh_token.as_deref().unwrap_or("")));
            }
        }
        let extra = self.extra_params.iter();
        form.extend(extra.map(|(name, value)| (name.as_str(), value.as_str())));
        form
    }

    /// The requested scopes as the `scope` parameter, if any.
    pub fn scope(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }
}

/// A token URL: `http` or `https`, with a host, without a fragment.
fn token_url(value: &str) -> Result<(), FieldError> {
    let url = crate::validation::endpoint_url("tokenUrl", value)?;
    let bad = |msg: &str| Err(FieldError::body("tokenUrl", msg, "value_error.url"));
    if !matches!(url.scheme(), "http" | "https") {
        return bad("must be an http or https URL");
    }
    if url.fragment().is_some() {
        return bad("must not have a fragment");
    }
    // Credentials belong in clientId and clientSecret, which are sealed and never shown.
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry credentials; use clientId and clientSecret");
    }
    Ok(())
}

/// A pin on a server's public key: the SHA-256 of its DER SubjectPublicKeyInfo. Written
/// `sha256/<base64>` (`sha256//<base64>`, as curl writes it, and bare base64 are read too).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPin(pub [u8; 32]);

impl KeyPin {
    /// The pin of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(Sha256::digest(spki_der).into())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let digest = text
            .strip_prefix("sha256//")
            .or_else(|| text.strip_prefix("sha256/"))
            .unwrap_or(text);
        let bytes = STANDARD
            .decode(digest)
            .map_err(|_| format!("`{text}` is not `sha256/` followed by base64"))?;
        let pin = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            format!("`{text}` is not a SHA-256 digest (32 bytes, 44 base64 characters)")
        })?;
        Ok(Self(pin))
    }
}

impl std::fmt::Display for KeyPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256/{}", STANDARD.encode(self.0))
    }
}

impl std::fmt::Debug for KeyPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPin({self})")
    }
}

impl Serialize for KeyPin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyPin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Most pins an endpoint may carry (a current key and the next ones, during a rollover).
pub const MAX_KEY_PINS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> OAuthClient {
        OAuthClient {
            token_url: "https://auth.example.com/token".into(),
            client_id: "herald".into(),
            client_secret: "s3cret".into(),
            auth_method: OAuthAuthMethod::ClientSecretBasic,
            grant_type: OAuthGrantType::ClientCredentials,
            refresh_token: None,
            scopes: vec!["webhooks:write".into()],
            extra_params: BTreeMap::from([("audience".into(), "https://api".into())]),
        }
    }

    #[test]
    fn a_client_is_checked_field_by_field() {
        assert_eq!(client().check(), Ok(()));
        let bad = OAuthClient {
            token_url: "ftp://auth.example.com/token".into(),
            client_secret: String::new(),
            grant_type: OAuthGrantType::RefreshToken,
            scopes: vec!["two words".into()],
            extra_params: BTreeMap::from([("grant_type".into(), "password".into())]),
            ..client()
        };
        let fields: Vec<String> = bad
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.loc[1].clone())
            .collect();
        assert_eq!(
            fields,
            [
                "tokenUrl",
                "clientSecret",
                "refreshToken",
                "scopes",
                "extraParams"
            ]
        );
    }

    #[test]
    fn the_grant_form_names_the_grant_and_keeps_extra_params() {
        assert_eq!(
            client().grant_form(),
            [
                ("grant_type", "client_credentials"),
                ("audience", "https://api")
            ]
        );
        let refresh = OAuthClient {
            grant_type: OAuthGrantType::RefreshToken,
            refresh_token: Some("r1".into()),
            extra_params: BTreeMap::new(),
            ..client()
        };
        assert_eq!(
            refresh.grant_form(),
            [("grant_type", "refresh_token"), ("refresh_token", "r1")]
        );
        assert_eq!(client().scope().as_deref(), Some("webhooks:write"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let shown = format!("{:?}", client());
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn pins_read_curl_and_bare_forms_and_print_one() {
        let pin = KeyPin::of_spki(b"a public key");
        let text = pin.to_string();
        assert!(text.starts_with("sha256/"));
        let bare = text.trim_start_matches("sha256/");
        for form in [text.clone(), format!("sha256//{bare}"), bare.to_owned()] {
            assert_eq!(KeyPin::parse(&form), Ok(pin), "{form}");
        }
        assert!(KeyPin::parse("sha256/AAAA")
            .unwrap_err()
            .contains("32 bytes"));
        assert!(KeyPin::parse("sha256/not base64!").is_err());
    }
}

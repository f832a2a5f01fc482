//! OAuth 2.0 access tokens for endpoints that ask for one: fetched from the endpoint's
//! token URL (RFC 6749 §4.4 client credentials, or §6 a refresh token), cached per endpoint
//! until shortly before they expire, and fetched afresh once when the receiver refuses one.
//!
//! The token request goes through the same guarded client as deliveries, so a token URL
//! is held to the address policy (no private addresses, no redirects) like any endpoint.
//! It is a form POST and a small JSON answer; a general OAuth crate would bring its own
//! HTTP client, which is the one thing this must not do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use herald_core::destination::DeliveryError;
use herald_core::endpoint_auth::{OAuthAuthMethod, OAuthClient};
use herald_core::model::AttemptErrorKind;
use herald_core::network::AddressPolicy;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use url::form_urlencoded::byte_serialize;

/// The most of a token response that is read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// A token is fetched again this long before it expires at the latest…
const MAX_EARLY_REFRESH: Duration = Duration::from_secs(60);
/// …and after nine tenths of its lifetime at the earliest, for short-lived ones.
const EARLY_REFRESH_FRACTION: u32 = 10;
/// A token is kept at most this long, whatever lifetime its server gives.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Past this many endpoints with tokens, the cache starts over.
const MAX_CACHED: usize = 10_000;

/// A token and when to stop using it.
struct Cached {
    /// The client that fetched it: a changed configuration does not reuse it.
    client: OAuthClient,
    token: String,
    /// `None`: the server gave no lifetime; kept until a receiver refuses it.
    refresh_at: Option<DateTime<Utc>>,
}

/// The access tokens of every endpoint with an OAuth client, one fetch at a time per
/// endpoint (the others wait for its answer rather than asking too).
#[derive(Default)]
pub struct Tokens {
    by_endpoint: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl Tokens {
    /// A current token for `endpoint_id`, from the cache or its token URL. `refused` is a
    /// token its receiver has just answered 401 to: not to be given out again.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        policy: &AddressPolicy,
        endpoint_id: &str,
        client: &OAuthClient,
        now: DateTime<Utc>,
        refused: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let slot = {
            let mut entries = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= MAX_CACHED && !entries.contains_key(endpoint_id) {
                entries.clear();
            }
            entries.entry(endpoint_id.to_owned()).or_default().clone()
        };
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c.refresh_at.is_none_or(|at| now < at);
            if c.client == *client && fresh && refused != Some(c.token.as_str()) {
                return Ok(c.token.clone());
            }
        }
        let fetched = fetch(http, policy, client).await?;
        let refresh_at = fetched.expires_in.map(|lifetime| {
            // A server's word on lifetime is bounded: a year-long token is fetched daily.
            let lifetime = lifetime.min(MAX_LIFETIME);
            let early = (lifetime / EARLY_REFRESH_FRACTION).min(MAX_EARLY_REFRESH);
            now + chrono::Duration::from_std(lifetime - early).unwrap_or_default()
        });
        *cached = Some(Cached {
            client: client.clone(),
            token: fetched.token.clone(),
            refresh_at,
        });
        Ok(fetched.token)
    }
}

/// A token as the authorization server gave it.
struct Fetched {
    token: String,
    expires_in: Option<Duration>,
}

/// The fields of a token response that matter here (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    /// Seconds; some servers send it as a string.
    expires_in: Option<serde_json::Value>,
}

/// An error response (RFC 6749 §5.2).
#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

fn token_error(detail: impl Into<String>) -> DeliveryError {
    DeliveryError::new(AttemptErrorKind::Token, detail)
}

/// Asks the client's token URL for a token.
async fn fetch(
    http: &reqwest::Client,
    policy: &AddressPolicy,
    client: &OAuthClient,
) -> Result<Fetched, DeliveryError> {
    let url = reqwest::Url::parse(&client.token_url)
        .map_err(|e| token_error(format!("the token URL is invalid: {e}")))?;
    // Checked at every fetch, not only when it was set: the policy may have changed since.
    if let Some(refused) = super::http::refused_literal(policy, &url) {
        return Err(token_error(format!(
            "the token URL is refused: {}",
            refused.detail
        )));
    }
    let mut form = client.grant_form();
    let scope = client.scope();
    if let Some(scope) = &scope {
        form.push(("scope", scope));
    }
    let mut request = http.post(url).header(ACCEPT, "application/json");
    match client.auth_method {
        OAuthAuthMethod::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts form-encoded before they are joined.
            let encode = |s: &str| byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                encode(&client.client_id),
                encode(&client.client_secret)
            );
            request = request.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(pair)));
        }
        OAuthAuthMethod::ClientSecretPost => {
            form.push(("client_id", &client.client_id));
            form.push(("client_secret", &client.client_secret));
        }
    }
    let mut response = request.form(&form).send().await.map_err(|e| {
        let cause = super::http::classify(&e);
        token_error(format!(
            "the token URL could not be reached ({}): {}",
            cause.kind.as_str(),
            cause.detail
        ))
    })?;
    let status = response.status();
    let body = read_limited(&mut response).await?;
    if !status.is_success() {
        let reason = match serde_json::from_slice::<TokenError>(&body) {
            Ok(e) => match e.error_description {
                Some(description) => format!(": {} ({description})", e.error),
                None => format!(": {}", e.error),
            },
            Err(_) => String::new(),
        };
        return Err(token_error(format!(
            "the token URL answered {status}{reason}"
        )));
    }
    parse_token(&body)
}

/// A token response's body, refused beyond `MAX_TOKEN_RESPONSE`.
async fn read_limited(response: &mut reqwest::Response) -> Result<Vec<u8>, DeliveryError> {
    let mut body = Vec::new();
    while body.len() <= MAX_TOKEN_RESPONSE {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(token_error(format!(
                    "reading the token response failed: {e}"
                )))
            }
        }
    }
    Err(token_error("the token response is larger than 64 KiB"))
}

/// The token and lifetime of a successful token response.
fn parse_token(body: &[u8]) -> Result<Fetched, DeliveryError> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        token_error(format!(
            "the token response is not a JSON object with an access_token: {e}"
        ))
    })?;
    if let Some(kind) = parsed.token_type.as_deref() {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(token_error(format!(
                "the token is of type `{kind}`; Herald sends only bearer tokens"
            )));
        }
    }
    let token = parsed.access_token;
    let printable = token.bytes().all(|b| b.is_ascii_graphic());
    if token.is_empty() || token.len() > 8192 || !printable {
        return Err(token_error(
            "the access_token is empty, longer than 8 KiB or not printable ASCII",
        ));
    }
    let expires_in = match parsed.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(Fetched {
        token,
        expires_in: expires_in.map(Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_are_read_strictly() {
        let ok = parse_token(br#"{"access_token":"t1","token_type":"Bearer","expires_in":"3600"}"#)
            .unwrap();
        assert_eq!(
            (ok.token.as_str(), ok.expires_in),
            ("t1", Some(Duration::from_secs(3600)))
        );
        let no_lifetime = parse_token(br#"{"access_token":"t2"}"#).unwrap();
        assert_eq!(no_lifetime.expires_in, None);
        for bad in [
            &br#"{"access_token":"t","token_type":"mac"}"#[..],
            br#"{"access_token":""}"#,
            br#"{"access_token":"two words"}"#,
            br#"{"token":"t"}"#,
            b"<html>",
        ] {
            let e = parse_token(bad).err().expect("refused");
            assert_eq!(e.kind, AttemptErrorKind::Token, "{}", e.detail);
        }
    }
}

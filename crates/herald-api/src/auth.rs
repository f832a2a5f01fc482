//! Bearer tokens: generated once, shown once, stored as SHA-256 hashes. An admin token sees
//! everything; an app-scoped token (for the customer portal) sees one application.

use axum::http::request::Parts;
use axum::http::Method;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Capability, PortalSession, Token};
use herald_core::{Store, StoreError};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const TOKEN_PREFIX: &str = "hrld_";

/// The SHA-256 of a token, hex. Tokens are long and random, so a fast hash is enough: there
/// is nothing to brute-force.
pub fn hash_token(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// A new random token.
pub fn generate_token() -> String {
    format!(
        "{TOKEN_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
    )
}

/// The first characters of a generated token: its prefix and four of its forty random
/// ones, enough to tell tokens apart in a list, too few to help guess one.
fn hint_of(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 4).collect()
}

/// Stores `plaintext` (hashed) as a token of the given scope.
pub async fn store_token(
    store: &dyn Store,
    plaintext: &str,
    app_id: Option<String>,
    description: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let token = Token {
        id: IdKind::Token.new_id(),
        hash: hash_token(plaintext),
        app_id,
        description: description.into(),
        created_at: now,
        expires_at,
        portal: None,
        one_time: false,
        // A chosen token's start would give part of it away.
        hint: String::new(),
        poller_endpoint_id: None,
    };
    match store.insert_token(&token).await {
        // The same token stored again (HERALD_ADMIN_TOKEN at every start) is fine.
        Err(StoreError::Conflict(_)) => Ok(()),
        other => other,
    }
}

/// A token to issue: everything but its value and id.
pub struct NewToken {
    pub app_id: Option<String>,
    pub description: String,
    pub now: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub portal: Option<PortalSession>,
    pub one_time: bool,
    /// Makes a poller token: it may only poll this endpoint.
    pub poller_endpoint_id: Option<String>,
}

/// Generates a token and stores its hash; returns its value (shown once).
pub async fn issue_token(store: &dyn Store, new: NewToken) -> Result<String, StoreError> {
    Ok(issue_token_record(store, new).await?.0)
}

/// [`issue_token`], also returning the record stored.
pub async fn issue_token_record(
    store: &dyn Store,
    new: NewToken,
) -> Result<(String, Token), StoreError> {
    let value = generate_token();
    let token = Token {
        id: IdKind::Token.new_id(),
        hash: hash_token(&value),
        app_id: new.app_id,
        description: new.description,
        created_at: new.now,
        expires_at: new.expires_at,
        portal: new.portal,
        one_time: new.one_time,
        hint: hint_of(&value),
        poller_endpoint_id: new.poller_endpoint_id,
    };
    store.insert_token(&token).await?;
    Ok((value, token))
}

/// Who is calling, as proven by their bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// Limited to one application.
    App(AppScope),
}

/// What an app-scoped token may reach and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppScope {
    pub app_id: String,
    /// `None` for a token made with `herald token create --app`, which may do anything
    /// within its application; a portal session's limits otherwise.
    pub portal: Option<PortalSession>,
    /// A poller token's one endpoint: it may poll that endpoint and do nothing else.
    pub poller_endpoint_id: Option<String>,
}

impl Caller {
    /// Whether this caller may act on the application `app_id`.
    pub fn can_access(&self, app_id: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::App(scope) => scope.app_id == app_id,
        }
    }

    /// Fails unless the caller may poll the endpoint `endpoint_id`: a poller token only
    /// its own endpoint.
    pub fn require_poller_of(&self, endpoint_id: &str) -> Result<(), ApiError> {
        match self {
            Caller::App(AppScope {
                poller_endpoint_id: Some(own),
                ..
            }) if own != endpoint_id => Err(ApiError::Forbidden),
            _ => Ok(()),
        }
    }

    /// Fails unless this is an admin token.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::App(_) => Err(ApiError::Forbidden),
        }
    }

    /// Fails unless the caller holds `capability`: admin and plain app tokens hold every
    /// one; a portal session those it was given.
    pub fn require(&self, capability: Capability) -> Result<(), ApiError> {
        match self {
            Caller::App(AppScope {
                portal: Some(session),
                ..
            }) if !session.allows(capability) => Err(ApiError::Forbidden),
            _ => Ok(()),
        }
    }

    /// Whether the caller may see an event type carrying `flags`: a portal session sees
    /// flagged types only when it holds one of their flags.
    pub fn sees_feature(&self, flags: Option<&[String]>) -> bool {
        match (self, flags) {
            (
                Caller::App(AppScope {
                    portal: Some(session),
                    ..
                }),
                Some(flags),
            ) if !flags.is_empty() => flags.iter().any(|f| session.feature_flags.contains(f)),
            _ => true,
        }
    }
}

/// What a portal session must hold to make a request, by method and route; `None` when no
/// portal session may make it at all (publishing, changing the application or the
/// catalog…). Reading is `ViewBase`, except an endpoint's secret. Kept as one table so what
/// the portal may do is read in one place; the portal's pages call the same routes.
pub fn portal_capability(method: &Method, route: &str) -> Option<Capability> {
    const ENDPOINT: &str = "/api/v1/app/{app_id}/endpoint";
    const ONE_ENDPOINT: &str = "/api/v1/app/{app_id}/endpoint/{endpoint_id}";
    let sub = route.strip_prefix(ONE_ENDPOINT);
    match (method.as_str(), route, sub) {
        (_, _, Some("/secret")) if method == Method::GET => Some(Capability::ViewEndpointSecret),
        ("GET" | "HEAD", _, _) => Some(Capability::ViewBase),
        ("POST", "/api/v1/auth/logout", _) => Some(Capability::ViewBase),
        // Trying filters on a sample changes nothing.
        ("POST", _, Some("/filter/simulate")) => Some(Capability::ViewBase),
        ("POST", ENDPOINT, _) => Some(Capability::ManageEndpoint),
        ("PUT" | "PATCH" | "DELETE", _, Some("")) => Some(Capability::ManageEndpoint),
        ("PUT" | "PATCH", _, Some("/headers")) => Some(Capability::ManageEndpoint),
        // How deliveries reach the customer's own receiver is the customer's to set.
        ("PUT" | "DELETE", _, Some("/oauth" | "/mtls")) => Some(Capability::ManageEndpoint),
        ("POST", _, Some("/verify")) => Some(Capability::ManageEndpoint),
        // Dropping a backlog the customer no longer wants is theirs to decide.
        ("POST", _, Some("/bulk-cancel")) => Some(Capability::ManageEndpoint),
        ("POST", _, Some("/secret/rotate")) => Some(Capability::ManageEndpointSecret),
        ("POST", _, Some("/recover" | "/replay-missing" | "/send-example" | "/bulk-replay")) => {
            Some(Capability::CreateAttempts)
        }
        ("POST", "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", _) => {
            Some(Capability::CreateAttempts)
        }
        (_, _, Some("/template" | "/template/simulate")) => Some(Capability::ManageTransformations),
        _ => None,
    }
}

/// Whether a poller token may make a request: reading its endpoint's messages, as a
/// consumer too, and moving its consumers; nothing else (the endpoint itself is checked by
/// the handler, which knows it).
pub fn poller_may(method: &Method, route: &str) -> bool {
    const POLLER: &str = "/api/v1/app/{app_id}/poller/{sink_id}";
    const LEASING: &str = "/api/v1/app/{app_id}/polling-endpoint/{sink_id}/consumer/{consumer_id}";
    match (route.strip_prefix(POLLER), route.strip_prefix(LEASING)) {
        (Some("" | "/consumer/{consumer_id}"), _) | (_, Some("")) => method == Method::GET,
        (Some("/consumer/{consumer_id}/seek"), _) | (_, Some("/commit")) => method == Method::POST,
        _ => false,
    }
}

/// The raw bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_sessions_need_a_capability_for_each_change() {
        let ep = "/api/v1/app/{app_id}/endpoint/{endpoint_id}";
        let cases = [
            (
                Method::GET,
                "/api/v1/app/{app_id}/msg",
                Some(Capability::ViewBase),
            ),
            (
                Method::GET,
                &format!("{ep}/secret"),
                Some(Capability::ViewEndpointSecret),
            ),
            (
                Method::POST,
                &format!("{ep}/secret/rotate"),
                Some(Capability::ManageEndpointSecret),
            ),
            (
                Method::POST,
                "/api/v1/app/{app_id}/endpoint",
                Some(Capability::ManageEndpoint),
            ),
            (Method::DELETE, ep, Some(Capability::ManageEndpoint)),
            (
                Method::PATCH,
                &format!("{ep}/headers"),
                Some(Capability::ManageEndpoint),
            ),
            (
                Method::PUT,
                &format!("{ep}/oauth"),
                Some(Capability::ManageEndpoint),
            ),
            (
                Method::POST,
                &format!("{ep}/recover"),
                Some(Capability::CreateAttempts),
            ),
            (
                Method::PUT,
                &format!("{ep}/template"),
                Some(Capability::ManageTransformations),
            ),
            (
                Method::POST,
                &format!("{ep}/filter/simulate"),
                Some(Capability::ViewBase),
            ),
            (Method::POST, "/api/v1/app/{app_id}/msg", None),
            (Method::DELETE, "/api/v1/app/{app_id}", None),
            (Method::POST, "/api/v1/event-type", None),
        ];
        for (method, route, expected) in cases {
            assert_eq!(
                portal_capability(&method, route),
                expected,
                "{method} {route}"
            );
        }
    }

    #[test]
    fn tokens_are_random_and_hashed_stably() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 45);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 64);
    }
}

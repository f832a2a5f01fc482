//! Bearer tokens: generated once, shown once, stored as SHA-256 hashes. An admin token sees
//! everything; an app-scoped token (for the customer portal) sees one application.

use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::Token;
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
    };
    match store.insert_token(&token).await {
        // The same token stored again (HERALD_ADMIN_TOKEN at every start) is fine.
        Err(StoreError::Conflict(_)) => Ok(()),
        other => other,
    }
}

/// Who is calling, as proven by their bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// Limited to this application id.
    App(String),
}

impl Caller {
    /// Whether this caller may act on the application `app_id`.
    pub fn can_access(&self, app_id: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::App(own) => own == app_id,
        }
    }

    /// Fails unless this is an admin token.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::App(_) => Err(ApiError::Forbidden),
        }
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
    fn tokens_are_random_and_hashed_stably() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 45);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 64);
    }
}

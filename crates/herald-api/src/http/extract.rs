//! Request extractors whose failures are API errors with `{code, detail}` bodies, never
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use herald_core::validation::FieldError;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::auth::{bearer, hash_token, poller_may, portal_capability, AppScope, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body: malformed JSON is a 400, a well-formed body with wrong fields a 422 naming
/// the field, and a body over the limit a 413. The content type is not required.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge("The request body is too large.".into())
            } else {
                ApiError::BadRequest {
                    code: "invalid_body",
                    detail: "The request body could not be read.".into(),
                }
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON document, locating data errors by their path in the body.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let invalid_json = |e: serde_json::Error| ApiError::BadRequest {
        code: "invalid_json",
        detail: format!("The request body is not valid JSON: {e}"),
    };
    // serde_json checks the UTF-8 of the strings it keeps, not of those it skips (unknown
    // fields): without this, a body that is not JSON could be accepted.
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::BadRequest {
            code: "invalid_json",
            detail: format!("The request body is not valid UTF-8: {e}"),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json calls a number given for a string-named choice (an enum) a syntax
        // error; in JSON that parses it is the field's value that is wrong, a 422.
        let wrong_value = inner.classify() == Category::Syntax && well_formed(bytes);
        if inner.classify() != Category::Data && !wrong_value {
            return invalid_json(inner);
        }
        let msg = match wrong_value {
            true => "is not one of the values this field takes".to_owned(),
            false => strip_position(&inner.to_string()),
        };
        let mut loc = vec!["body".to_owned()];
        loc.extend(
            path.split('.')
                .filter(|p| !p.is_empty() && *p != "?")
                .map(str::to_owned),
        );
        ApiError::Validation(vec![FieldError {
            loc,
            msg,
            kind: "value_error.jsondecode",
        }])
    })?;
    de.end().map_err(invalid_json)?;
    Ok(value)
}

/// Whether `bytes` is JSON at all, whatever its shape.
fn well_formed(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// serde's messages end with " at line 1 column 42"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Query parameters; repeated keys fill lists. Malformed values are a 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_html_form::from_str(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::BadRequest {
                code: "invalid_query",
                detail: format!("Invalid query parameters: {e}"),
            })
    }
}

/// The caller of a request, from its bearer token (remembered briefly: see `lookups`),
/// refused when unknown, expired or over its rate limit.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let hash = hash_token(token);
        let token = match state.lookups.tokens.get(&hash) {
            Some(token) => token,
            None => {
                let stamp = state.lookups.tokens.stamp();
                let found = state.store.find_token(&hash).await?;
                let token = found.ok_or(ApiError::Unauthorized)?;
                state.lookups.tokens.put(hash, token.clone(), stamp);
                token
            }
        };
        // A sign-in link's token is only good for `auth/one-time-token`.
        if token.one_time || token.expires_at.is_some_and(|at| at <= state.clock.now()) {
            return Err(ApiError::Unauthorized);
        }
        state.rate_limit.check(&token.id)?;
        let caller = match token.app_id {
            None => Caller::Admin,
            Some(app_id) => Caller::App(AppScope {
                app_id,
                portal: token.portal,
                poller_endpoint_id: token.poller_endpoint_id,
            }),
        };
        // A poller token polls and does nothing else.
        if let Caller::App(AppScope {
            poller_endpoint_id: Some(_),
            ..
        }) = &caller
        {
            let route = parts.extensions.get::<MatchedPath>();
            if !route.is_some_and(|route| poller_may(&parts.method, route.as_str())) {
                return Err(ApiError::Forbidden);
            }
        }
        // A portal session may make only the requests its capabilities allow; the
        // table lives beside the capabilities (`auth::portal_capability`).
        if let Caller::App(AppScope {
            portal: Some(session),
            ..
        }) = &caller
        {
            if let Some(route) = parts.extensions.get::<MatchedPath>() {
                match portal_capability(&parts.method, route.as_str()) {
                    Some(capability) if session.allows(capability) => {}
                    _ => return Err(ApiError::Forbidden),
                }
            }
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        url: String,
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_even_in_an_ignored_field() {
        // Found by the `request_bodies` fuzz target: serde_json skips unknown fields
        // without checking their UTF-8.
        let result = parse_json::<Body>(b"{\"url\":\"x\",\"u\":\"\xff\"}");
        assert!(
            matches!(
                result,
                Err(ApiError::BadRequest {
                    code: "invalid_json",
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(parse_json::<Body>(br#"{"url":"x","u":"y"}"#).is_ok());
    }

    #[test]
    fn a_number_for_a_named_choice_is_a_422_on_that_field() {
        // Found by the `request_bodies` fuzz target: `"verification": 10` was answered 400
        // `invalid_json`, as if the body were not JSON.
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Mode {
            Challenge,
        }
        #[derive(Debug, serde::Deserialize)]
        struct WithMode {
            #[allow(dead_code)]
            mode: Option<Mode>,
        }
        let Err(ApiError::Validation(errors)) = parse_json::<WithMode>(br#"{"mode": 10}"#) else {
            panic!("a 422");
        };
        assert_eq!(errors[0].loc, ["body", "mode"]);
        assert!(parse_json::<WithMode>(br#"{"mode": "challenge"}"#).is_ok());
        assert!(matches!(
            parse_json::<WithMode>(br#"{"mode": 1"#),
            Err(ApiError::BadRequest { .. })
        ));
    }
}

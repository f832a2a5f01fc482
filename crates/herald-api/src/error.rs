//! The one error type of the API. Every failure a client can cause maps to a 4xx with a
//! stable `code` and a `detail` meant for humans; internal failures become a bare 500 whose
//! cause is logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::validation::FieldError;
use herald_core::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("missing or invalid token")]
    Unauthorized,
    #[error("insufficient access")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A 409 with a code of its own (`session_in_use`).
    #[error("{detail}")]
    ConflictWith { code: &'static str, detail: String },
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    /// A 422 that is not about one field's shape, with a code of its own (a callback URL
    /// Herald will not call, a timeout above the server's cap).
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    #[error("{0}")]
    TooLarge(String),
    /// What the request points at is no longer kept (an iterator past retention).
    #[error("{detail}")]
    Gone { code: &'static str, detail: String },
    #[error("not implemented")]
    NotImplemented,
    /// Too many requests from this token; it may try again after the duration.
    #[error("too many requests")]
    RateLimited(std::time::Duration),
    /// Herald cannot take the request now (its write queue is full); the client may try
    /// again after the duration.
    #[error("temporarily unavailable")]
    Unavailable(std::time::Duration),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

/// The body of every non-validation error.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpErrorOut {
    pub code: String,
    pub detail: String,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationError {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The body of a 422: every invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpValidationError {
    pub code: String,
    pub detail: Vec<ValidationError>,
}

impl ApiError {
    /// A 422 for one field of the body.
    pub fn invalid(field: &str, msg: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::body(field, msg, "value_error")])
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "authentication_failed"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "insufficient_access"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::ConflictWith { code, .. } => (StatusCode::CONFLICT, code),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Gone { code, .. } => (StatusCode::GONE, code),
            // A 4xx, not a 501: Svix's SDKs retry every 5xx, and there is nothing to retry.
            Self::NotImplemented => (StatusCode::NOT_FOUND, "not_implemented"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict("endpoint") => Self::Conflict(
                "The endpoint changed while this request was made (another request, or Herald \
                 disabling it); read it again and retry."
                    .into(),
            ),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} is already in use")),
            StoreError::InvalidInput => Self::BadRequest {
                code: "invalid_value",
                detail: "A value in the request cannot be stored (a NUL character, or a date out of range).".into(),
            },
            // Long enough for a few group commits to drain the queue.
            StoreError::Busy => Self::Unavailable(std::time::Duration::from_secs(1)),
            // A database restart or failover takes seconds; SDKs retry on a 503.
            StoreError::Unavailable => Self::Unavailable(std::time::Duration::from_secs(2)),
            StoreError::Internal(e) => Self::Internal(anyhow::anyhow!(e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let detail = match self {
            Self::Validation(errors) => {
                let detail = errors
                    .into_iter()
                    .map(|e| ValidationError {
                        loc: e.loc,
                        msg: e.msg,
                        kind: e.kind.to_owned(),
                    })
                    .collect();
                let body = HttpValidationError {
                    code: code.into(),
                    detail,
                };
                return (status, Json(body)).into_response();
            }
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "Internal server error".to_owned()
            }
            Self::NotFound => "Entity not found".to_owned(),
            Self::Unauthorized => "Incorrect authentication credentials.".to_owned(),
            Self::Forbidden => "Insufficient access for the given operation.".to_owned(),
            Self::NotImplemented => {
                "Herald does not offer this operation (it is Svix's); nothing was done.".to_owned()
            }
            Self::RateLimited(wait) => {
                let detail = "Too many requests with this token; try again in";
                return retry_later(status, code, detail, wait);
            }
            Self::Unavailable(wait) => {
                let detail = "Herald is taking more messages than it can write; try again in";
                return retry_later(status, code, detail, wait);
            }
            other => other.to_string(),
        };
        let body = HttpErrorOut {
            code: code.into(),
            detail,
        };
        (status, Json(body)).into_response()
    }
}

/// An answer that tells the client when to come back (`Retry-After`, in whole seconds
/// rounded up: never too soon).
fn retry_later(
    status: StatusCode,
    code: &str,
    detail: &str,
    wait: std::time::Duration,
) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let body = HttpErrorOut {
        code: code.into(),
        detail: format!("{detail} {secs} s."),
    };
    let retry_after = [(axum::http::header::RETRY_AFTER, secs.to_string())];
    (status, retry_after, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_write_queue_answers_503_with_retry_after() {
        let response = ApiError::from(StoreError::Busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let retry_after = response.headers().get(axum::http::header::RETRY_AFTER);
        assert_eq!(retry_after.and_then(|v| v.to_str().ok()), Some("1"));
    }
}

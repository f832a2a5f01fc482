//! The Svix-compatible `/api/v1` API: one module per resource.

pub mod application;
pub mod attempt;
pub mod auth;
pub mod endpoint;
pub mod endpoint_extras;
pub mod endpoint_template;
pub mod endpoint_types;
pub mod event_type;
pub mod health;
pub mod message;
pub mod operational_endpoint;

use herald_core::validation::{FieldError, Validator};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// A stored rate limit as Svix's 16-bit `throttleRate`.
pub fn rate_out(rate: Option<u32>) -> Option<u16> {
    rate.map(|r| u16::try_from(r).unwrap_or(u16::MAX))
}

/// A rate limit of 0 would stop all deliveries: refused.
pub fn check_rate(v: &mut Validator, rate: Option<u16>) {
    if rate == Some(0) {
        v.check(Err(FieldError::body(
            "throttleRate",
            "must be at least 1",
            "value_error.number",
        )));
    }
}

/// Every `/api/v1` route, with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(application::router())
        .merge(endpoint::router())
        .merge(message::router())
        .merge(attempt::router())
        .merge(event_type::router())
        .merge(auth::router())
        .merge(health::router())
        .merge(operational_endpoint::router())
}

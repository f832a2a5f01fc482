//! The Svix-compatible `/api/v1` API: one module per resource.

pub mod application;
pub mod attempt;
pub mod auth;
pub mod endpoint;
pub mod endpoint_extras;
pub mod event_type;
pub mod health;
pub mod message;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

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
}

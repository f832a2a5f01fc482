//! The Svix-compatible `/api/v1` API: one router per resource (`application`, `endpoint`,
//! `message`…), each a leaf, and the shapes and checks routers share in `*_types`
//! modules, which import no router.

pub mod application;
pub mod application_types;
pub mod attempt;
pub mod attempt_types;
pub mod auth;
pub mod background_task;
pub mod call;
pub mod call_types;
pub mod callback;
pub mod callback_types;
pub mod endpoint;
pub mod endpoint_auth;
pub mod endpoint_extras;
pub mod endpoint_filter;
pub mod endpoint_header_types;
pub mod endpoint_template;
pub mod endpoint_types;
pub mod event_type;
pub mod events;
pub mod health;
pub mod instance;
pub mod listen;
pub mod message;
pub mod message_types;
pub mod operational_endpoint;
pub mod poller;
pub mod polling_endpoint;
pub mod stats;
pub mod stream_types;
pub mod throttle;
pub mod token;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every `/api/v1` route, with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(application::router())
        .merge(endpoint::router())
        .merge(endpoint_extras::router())
        .merge(endpoint_template::router())
        .merge(endpoint_filter::router())
        .merge(endpoint_auth::router())
        .merge(background_task::router())
        .merge(message::router())
        .merge(callback::router())
        .merge(call::router())
        .merge(events::router())
        .merge(poller::router())
        .merge(polling_endpoint::router())
        .merge(attempt::router())
        .merge(event_type::router())
        .merge(auth::router())
        .merge(token::router())
        .merge(health::router())
        .merge(instance::router())
        .merge(operational_endpoint::router())
        .merge(stats::router())
        .merge(listen::router())
}

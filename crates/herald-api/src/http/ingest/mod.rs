//! Inbound sources: Svix's ingest API (`/ingest/api/v1/source…`, so the Svix SDKs' ingest
//! client works) to manage them, and the receive URL providers send to
//! (`/ingest/{source_id}/{token}`). What a request must carry to be believed is decided
//! in `herald-inbound`, without I/O; these routers only serve it.

pub mod receive;
pub mod source;
pub mod source_types;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The `/ingest/api/v1` routes, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    source::router()
}

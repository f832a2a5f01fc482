//! `/api/v1/instance` (a Herald extension): what the dashboard's instance page shows.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiResult, HttpErrorOut};
use crate::state::AppState;

/// This Herald and its delivery queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceOut {
    pub version: &'static str,
    /// `sqlite` or `postgres`.
    pub store: &'static str,
    /// Deliveries pending or being sent, on every node sharing the database.
    pub queue_depth: u64,
    /// When the longest-waiting of them was queued or last moved.
    pub oldest_waiting: Option<DateTime<Utc>>,
    /// The nodes sharing the database, as this one last counted them (1 on SQLite); the
    /// API rate limit per token is shared among them.
    pub nodes: u32,
}

/// Describe this instance (admin tokens only).
#[utoipa::path(get, path = "/instance", tag = "Health",
    responses((status = 200, body = InstanceOut), (status = 403, body = HttpErrorOut)))]
async fn instance(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<InstanceOut>> {
    caller.require_admin()?;
    let queue = state.store.queue_summary().await?;
    Ok(Json(InstanceOut {
        version: env!("CARGO_PKG_VERSION"),
        store: queue.backend,
        queue_depth: queue.waiting,
        oldest_waiting: queue.oldest_waiting,
        nodes: state.rate_limit.nodes(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(instance))
}

//! `/health/live` and `/health/ready`, for a load balancer or an orchestrator, without
//! authentication. Live: the process answers HTTP. Ready: it can do its work, so traffic
//! should come to it: the database answers, and the dispatcher runs (on a node that
//! dispatches).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

/// How long the readiness probe waits for the database: a probe must answer quickly.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "live"}))
}

/// 200 with each check when ready; otherwise 503 with `Retry-After`, and which check
/// failed (no error text: the reason is in the server's log).
async fn ready(State(state): State<AppState>) -> Response {
    let store = match tokio::time::timeout(STORE_CHECK_TIMEOUT, state.store.next_due_at(&[])).await
    {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            "unreachable"
        }
        Err(_) => "timeout",
    };
    let dispatcher = match &state.dispatcher_running {
        None => "off",
        Some(running) if running.load(Ordering::SeqCst) => "running",
        Some(_) => "stopped",
    };
    let ready = store == "ok" && dispatcher != "stopped";
    let body = Json(json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {"store": store, "dispatcher": dispatcher},
    }));
    if ready {
        (StatusCode::OK, body).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "2")],
            body,
        )
            .into_response()
    }
}

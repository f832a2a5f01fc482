//! What operators' tools ask: `/health/live` and `/health/ready` for a load balancer or
//! an orchestrator, without authentication (live: the process answers HTTP; ready: it can
//! do its work, the database answers with this binary's migrations applied and the dispatcher
//! runs on a node that dispatches), and
//! `/metrics` for Prometheus, with every request counted on the way (`count_request`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use herald_core::metrics::{PoolLabels, RequestLabels, RouteLabels};
use herald_inbound::verify::same_bytes;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// How long the readiness probe waits for the database: a probe must answer quickly.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe routes, and the metrics unless they are served on an address of their own.
pub fn router(with_metrics: bool) -> Router<AppState> {
    let probes = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready));
    if with_metrics {
        probes.route("/metrics", get(metrics))
    } else {
        probes
    }
}

/// `GET /metrics` alone, for `api.metrics_listen`.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Counts an API request by method, route template and status, and times it. The route is
/// the template axum matched, so ids never become labels.
pub async fn count_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let metrics = &state.metrics;
    let route_labels = RouteLabels { method, route };
    (metrics.http_request_duration.get_or_create(&route_labels))
        .observe(started.elapsed().as_secs_f64());
    let labels = RequestLabels {
        method: route_labels.method,
        route: route_labels.route,
        status: response.status().as_u16(),
    };
    metrics.http_requests.get_or_create(&labels).inc();
    response
}

/// The metrics in Prometheus' text format; the queue's, sessions' and pools' gauges are
/// read now.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.api.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same_bytes(given.as_bytes(), token.expose().as_bytes()) {
            return ApiError::Unauthorized.into_response();
        }
    }
    let queue = tokio::time::timeout(STORE_CHECK_TIMEOUT, state.store.queue_summary()).await;
    if let Ok(Ok(queue)) = queue {
        let waited = queue
            .oldest_waiting
            .map_or(0, |at| (state.clock.now() - at).num_seconds().max(0));
        state.metrics.queue_waiting.set(queue.waiting as i64);
        state.metrics.queue_oldest_seconds.set(waited);
    }
    let sessions = state.listen_sessions.count();
    state.metrics.listen_sessions.set(sessions as i64);
    for pool in state.store.pools() {
        let states = [
            ("in_use", pool.open.saturating_sub(pool.idle)),
            ("idle", pool.idle),
            ("max", pool.max),
        ];
        for (name, value) in states {
            let labels = PoolLabels {
                pool: pool.name.to_owned(),
                state: name.to_owned(),
            };
            state
                .metrics
                .pool_connections
                .get_or_create(&labels)
                .set(i64::from(value));
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
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
    let migrations = if store == "ok" {
        match tokio::time::timeout(STORE_CHECK_TIMEOUT, state.store.pending_migrations()).await {
            Ok(Ok(0)) => "applied",
            Ok(Ok(_)) => "pending",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: reading the applied migrations failed");
                "unknown"
            }
            Err(_) => "timeout",
        }
    } else {
        "unknown"
    };
    let dispatcher = match &state.dispatcher_running {
        None => "off",
        Some(running) if running.load(Ordering::SeqCst) => "running",
        Some(_) => "stopped",
    };
    let ready = store == "ok" && migrations == "applied" && dispatcher != "stopped";
    let body = Json(json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {"store": store, "migrations": migrations, "dispatcher": dispatcher},
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

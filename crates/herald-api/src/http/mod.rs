//! The HTTP face of Herald: the `/api/v1` router, its OpenAPI document, and the layers
//! every request goes through.

mod doc_errors;
pub mod extract;
pub mod ingest;
pub mod list;
pub mod patch;
pub mod probes;
pub mod rate_limit;
pub mod v1;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::routing::{any, get};
use axum::Router;
use tower::Layer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald", description = "A webhooks server with a Svix-compatible API."),
    modifiers(&BearerAuth),
    // Named by parameters (`order`), which utoipa does not collect on its own.
    components(schemas(list::Ordering)),
    security(("HTTPBearer" = [])),
    tags(
        (name = "Application", description = "One per customer (tenant)."),
        (name = "Endpoint", description = "Where an application's messages are delivered."),
        (name = "Message", description = "Events published for an application."),
        (name = "Message Attempt", description = "Deliveries and their attempts."),
        (name = "Callback", description = "One-off callback URLs given with a message, and the ad-hoc secret that signs them (Herald extension)."),
        (name = "Ingest Source", description = "Inbound sources: receive URLs that verify a provider's webhooks (GitHub, Stripe, Slack…) and publish them as messages (Svix's ingest API)."),
        (name = "Call", description = "Synchronous calls: an event delivered now, whose receiver's answer (allow, deny, a reply) the caller waits for (Herald extension)."),
        (name = "Message Poller", description = "An endpoint's messages read by polling, for consumers that cannot receive pushes."),
        (name = "Event Type", description = "The catalog of event types."),
        (name = "Authentication", description = "App-scoped tokens."),
        (name = "Listen", description = "`herald listen --server` sessions: an application's messages delivered over a WebSocket to a developer's CLI (Herald extension)."),
        (name = "Statistics", description = "Delivery statistics, read from rollups kept with the attempts."),
        (name = "Health", description = "Liveness."),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "HTTPBearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document of the API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1::router())
        .nest("/ingest/api/v1", ingest::router())
        .into_openapi();
    doc_errors::declare(&mut doc);
    doc
}

/// Routes the Svix SDKs know that Herald does not offer (yet): a 404 whose code,
/// `not_implemented`, says so, rather than one that reads as "no such application". Not a
/// 501, which SDKs would retry. Left out of the OpenAPI document.
fn not_implemented() -> Router<AppState> {
    const PATHS: &[&str] = &[
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/attempt-stats",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation",
        "/api/v1/app/{app_id}/msg/precheck/active",
        "/api/v1/app/{app_id}/msg/bulk-expunge",
        "/api/v1/app/{app_id}/events",
        "/api/v1/auth/whoami",
        "/api/v1/event-type/import/openapi",
    ];
    PATHS.iter().fold(Router::new(), |router, path| {
        router.route(path, any(|| async { ApiError::NotImplemented }))
    })
}

/// What a request past `api.max_concurrent_requests` is answered, at once.
async fn overloaded(_: tower::BoxError) -> ApiError {
    ApiError::Unavailable(std::time::Duration::from_secs(1))
}

/// Request logs whose level says who is at fault. tower-http's default logs every 5xx at
/// ERROR; but a 503 is
/// Herald shedding load on purpose (counted in `/metrics`, and a flood of log lines is the
/// last thing an overloaded server needs). Only the remaining 5xx, Herald's own failures,
/// are errors.
#[derive(Clone, Copy)]
struct LogByFault;

impl tower_http::trace::OnFailure<ServerErrorsFailureClass> for LogByFault {
    fn on_failure(
        &mut self,
        failure: ServerErrorsFailureClass,
        latency: std::time::Duration,
        _: &tracing::Span,
    ) {
        let latency_ms = latency.as_millis();
        match failure {
            ServerErrorsFailureClass::StatusCode(status)
                if status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                tracing::debug!(%status, latency_ms, "request not served")
            }
            ServerErrorsFailureClass::StatusCode(status) => {
                tracing::error!(%status, latency_ms, "request failed")
            }
            ServerErrorsFailureClass::Error(error) => {
                tracing::error!(%error, latency_ms, "request failed")
            }
        }
    }
}

/// `/`: a browser is sent to the dashboard; any other client learns where things are.
async fn root(headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return axum::response::Redirect::to("/ui").into_response();
    }
    axum::Json(serde_json::json!({
        "name": "Herald",
        "version": env!("CARGO_PKG_VERSION"),
        "dashboard": "/ui",
        "portal": "/portal",
        "api": "/api/v1",
        "openapi": "/api/v1/openapi.json",
        "health": "/health/ready",
    }))
    .into_response()
}

/// The application: every route, ready to serve. Trailing slashes are trimmed before
/// routing, so `/api/v1/app/` and `/api/v1/app` are the same route (Svix clients use both).
pub fn app(state: AppState) -> NormalizePath<Router> {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1::router())
        .nest("/ingest/api/v1", ingest::router())
        .split_for_parts();
    doc_errors::declare(&mut api);
    let document = api.to_pretty_json().unwrap_or_default();
    // The body limit leaves room around the largest payload for the rest of the message.
    let body_limit = state
        .config
        .api
        .max_payload_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    let router = router
        .route(
            "/api/v1/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
        .route(
            "/ingest/{source_id}/{token}",
            axum::routing::post(ingest::receive::receive).get(ingest::receive::receive),
        )
        .route("/", get(root))
        .merge(probes::router(state.config.api.metrics_listen.is_none()))
        .merge(not_implemented())
        .merge(crate::ui::router())
        .fallback(|| async { ApiError::NotFound })
        // At most so many requests at once across every route; one more is shed with a
        // 503 instead of waiting in memory. Inside the metrics layer, so it counts them.
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
                .layer(tower::load_shed::LoadShedLayer::new())
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(match state
                    .config
                    .api
                    .max_concurrent_requests
                {
                    0 => tokio::sync::Semaphore::MAX_PERMITS,
                    max => max,
                })),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            probes::count_request,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http().on_failure(LogByFault))
        .with_state(state);
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

//! `/api/v1/health`: liveness, without authentication.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::state::AppState;

/// 204 when the server and its database answer.
#[utoipa::path(get, path = "/health", tag = "Health", security(()),
    responses((status = 204, description = "Healthy"), (status = 500, description = "The database does not answer")))]
async fn health(State(state): State<AppState>) -> ApiResult<StatusCode> {
    state.store.next_due_at(&[]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// 204 when the server answers.
#[utoipa::path(get, path = "/health/ping", tag = "Health", security(()), responses((status = 204, description = "Up")))]
async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ping))
}

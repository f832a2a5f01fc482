//! `/api/v1/auth`: app-scoped tokens for the customer portal, and logging out.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{bearer, generate_token, hash_token, store_token, Caller};
use crate::error::{ApiError, ApiResult, HttpErrorOut};
use crate::http::extract::ApiJson;
use crate::http::v1::application_types::{create_or_get, ApplicationIn};
use crate::state::AppState;

const DEFAULT_EXPIRY_SECONDS: u64 = 7 * 24 * 3600;
const MIN_EXPIRY_SECONDS: u64 = 60;

/// Options of a portal session; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPortalAccessIn {
    /// Creates the application when the path names none.
    pub application: Option<ApplicationIn>,
    /// Seconds until the token expires (60 to 604800, default 604800).
    pub expiry: Option<u64>,
}

/// A token limited to one application, and the portal URL that uses it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppPortalAccessOut {
    pub url: String,
    pub token: String,
}

async fn portal_access(
    state: &AppState,
    caller: &Caller,
    app_id: &str,
    body: AppPortalAccessIn,
) -> ApiResult<AppPortalAccessOut> {
    caller.require_admin()?;
    let expiry = body.expiry.unwrap_or(DEFAULT_EXPIRY_SECONDS);
    if !(MIN_EXPIRY_SECONDS..=DEFAULT_EXPIRY_SECONDS).contains(&expiry) {
        return Err(ApiError::invalid("expiry", "must be 60 to 604800 seconds"));
    }
    let app = match (state.app_for(caller, app_id).await, body.application) {
        (Ok(app), _) => app,
        (Err(ApiError::NotFound), Some(mut app_in)) => {
            app_in.uid.get_or_insert_with(|| app_id.to_owned());
            create_or_get(state, app_in, true).await?.1
        }
        (Err(e), _) => return Err(e),
    };
    let now = state.clock.now();
    let token = generate_token();
    let expires_at = now + chrono::Duration::seconds(expiry as i64);
    store_token(
        state.store.as_ref(),
        &token,
        Some(app.id),
        "app portal",
        now,
        Some(expires_at),
    )
    .await?;
    let base = &state.config.public_url;
    Ok(AppPortalAccessOut {
        // In the fragment, so the token never reaches a server log.
        url: format!("{}/portal/#token={token}", base.trim_end_matches('/')),
        token,
    })
}

/// Create a token limited to one application, for the customer portal.
#[utoipa::path(post, path = "/auth/app-portal-access/{app_id}", tag = "Authentication",
    params(("app_id" = String, Path)), request_body = AppPortalAccessIn,
    responses((status = 200, body = AppPortalAccessOut), (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut)))]
async fn app_portal_access(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<AppPortalAccessIn>,
) -> ApiResult<Json<AppPortalAccessOut>> {
    Ok(Json(portal_access(&state, &caller, &app_id, body).await?))
}

/// The older form of `app-portal-access`, without options.
#[utoipa::path(post, path = "/auth/dashboard-access/{app_id}", tag = "Authentication",
    params(("app_id" = String, Path)),
    responses((status = 200, body = AppPortalAccessOut), (status = 404, body = HttpErrorOut)))]
async fn dashboard_access(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<AppPortalAccessOut>> {
    Ok(Json(
        portal_access(&state, &caller, &app_id, AppPortalAccessIn::default()).await?,
    ))
}

/// Revoke the app-scoped token this request is made with.
#[utoipa::path(post, path = "/auth/logout", tag = "Authentication",
    responses((status = 204), (status = 401, body = HttpErrorOut), (status = 403, body = HttpErrorOut, description = "Admin tokens are revoked with the CLI")))]
async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
) -> ApiResult<StatusCode> {
    if caller == Caller::Admin {
        return Err(ApiError::Forbidden);
    }
    let token = bearer(&parts).ok_or(ApiError::Unauthorized)?;
    state.store.delete_token(&hash_token(token)).await?;
    state.lookups.tokens.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// The authentication routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(app_portal_access))
        .routes(routes!(dashboard_access))
        .routes(routes!(logout))
}

//! `/api/v1/auth`: app-scoped tokens for the customer portal, and logging out.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use herald_core::model::{Capability, PortalSession};

use crate::auth::{bearer, hash_token, issue_token, Caller, NewToken};
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
    /// A read-only session may view (and, if given `ViewEndpointSecret`, see secrets) but
    /// change nothing.
    #[serde(default)]
    pub read_only: bool,
    /// What the session may do; every capability when absent. `ViewBase` is implied.
    #[schema(value_type = Option<Vec<String>>, example = json!(["ViewBase", "ViewEndpointSecret"]))]
    pub capabilities: Option<Vec<Capability>>,
    /// Event types with feature flags are shown only to sessions holding one of them.
    #[serde(default)]
    pub feature_flags: Vec<String>,
    /// Names the session, so `expire-all` can end it alone.
    pub session_id: Option<String>,
}

impl AppPortalAccessIn {
    /// The limits of the session this request asks for.
    fn session(&self) -> PortalSession {
        let mut capabilities = self
            .capabilities
            .clone()
            .unwrap_or_else(|| Capability::ALL.to_vec());
        if self.read_only {
            capabilities.retain(|c| matches!(c, Capability::ViewEndpointSecret));
        }
        capabilities.retain(|c| *c != Capability::ViewBase);
        capabilities.dedup();
        PortalSession {
            capabilities,
            feature_flags: self.feature_flags.clone(),
            session_id: self.session_id.clone(),
        }
    }
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
    let session = body.session();
    let app = match (state.app_for(caller, app_id).await, body.application) {
        (Ok(app), _) => app,
        (Err(ApiError::NotFound), Some(mut app_in)) => {
            app_in.uid.get_or_insert_with(|| app_id.to_owned());
            create_or_get(state, app_in, true).await?.1
        }
        (Err(e), _) => return Err(e),
    };
    if body.session_id.as_ref().is_some_and(|id| id.len() > 256) {
        return Err(ApiError::invalid(
            "sessionId",
            "must be at most 256 characters",
        ));
    }
    let now = state.clock.now();
    let new = NewToken {
        app_id: Some(app.id),
        description: "app portal".into(),
        now,
        expires_at: Some(now + chrono::Duration::seconds(expiry as i64)),
        portal: Some(session),
        one_time: false,
        poller_endpoint_id: None,
    };
    let token = issue_token(state.store.as_ref(), new).await?;
    let base = &state.config.public_url;
    Ok(AppPortalAccessOut {
        // In the fragment, so the token never reaches a server log or a Referer header.
        url: format!("{}/portal/#key={token}", base.trim_end_matches('/')),
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

/// What the token a request is made with may reach and do (a Herald extension the portal
/// and dashboard start from).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOut {
    /// An admin token: every application, the catalog, the instance.
    pub admin: bool,
    /// The one application an app-scoped token reaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// What the token may do (`ViewBase` and more).
    #[schema(value_type = Vec<String>)]
    pub capabilities: Vec<Capability>,
    pub feature_flags: Vec<String>,
}

/// Describe the token this request is made with.
#[utoipa::path(get, path = "/auth/session", tag = "Authentication",
    responses((status = 200, body = SessionOut), (status = 401, body = HttpErrorOut)))]
async fn session(caller: Caller) -> Json<SessionOut> {
    let all = || Capability::ALL.to_vec();
    Json(match caller {
        Caller::Admin => SessionOut {
            admin: true,
            app_id: None,
            capabilities: all(),
            feature_flags: Vec::new(),
        },
        Caller::App(scope) => {
            let (mut capabilities, feature_flags) = match scope.portal {
                Some(p) => (p.capabilities, p.feature_flags),
                None => (all(), Vec::new()),
            };
            if !capabilities.contains(&Capability::ViewBase) {
                capabilities.insert(0, Capability::ViewBase);
            }
            SessionOut {
                admin: false,
                app_id: Some(scope.app_id),
                capabilities,
                feature_flags,
            }
        }
    })
}

/// A sign-in link's one-time token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneTimeTokenIn {
    pub one_time_token: String,
}

/// The session token it was exchanged for.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneTimeTokenOut {
    pub token: String,
}

/// How long a session opened with a one-time link lasts.
const LINK_SESSION_HOURS: i64 = 12;

/// Exchange a one-time token (from `herald ui-link`) for a session token of the same scope,
/// valid for 12 hours. The one-time token is spent whether or not the answer arrives.
#[utoipa::path(post, path = "/auth/one-time-token", tag = "Authentication", security(()),
    request_body = OneTimeTokenIn,
    responses((status = 200, body = OneTimeTokenOut), (status = 401, body = HttpErrorOut)))]
async fn one_time_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OneTimeTokenIn>,
) -> ApiResult<Json<OneTimeTokenOut>> {
    let hash = hash_token(&body.one_time_token);
    let now = state.clock.now();
    let link = state
        .store
        .find_token(&hash)
        .await?
        .filter(|t| t.one_time && t.expires_at.is_none_or(|at| at > now))
        .ok_or(ApiError::Unauthorized)?;
    // Of two exchanges at once, only the one whose delete takes the row goes on.
    match state.store.delete_token(&hash).await {
        Err(herald_core::StoreError::NotFound) => return Err(ApiError::Unauthorized),
        other => other?,
    }
    let new = NewToken {
        app_id: link.app_id,
        description: "signed in with a one-time link".into(),
        now,
        expires_at: Some(now + chrono::Duration::hours(LINK_SESSION_HOURS)),
        portal: link.portal,
        one_time: false,
        poller_endpoint_id: None,
    };
    let token = issue_token(state.store.as_ref(), new).await?;
    Ok(Json(OneTimeTokenOut { token }))
}

/// Which portal sessions to end; all of the application's when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationTokenExpireIn {
    pub session_ids: Option<Vec<String>>,
    /// Accepted for compatibility; sessions end at once.
    pub expiry: Option<u64>,
}

/// End an application's portal sessions (all, or those named by `sessionIds`).
#[utoipa::path(post, path = "/auth/app/{app_id}/expire-all", tag = "Authentication",
    params(("app_id" = String, Path)), request_body = ApplicationTokenExpireIn,
    responses((status = 204), (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut)))]
async fn expire_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<ApplicationTokenExpireIn>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let app = state.app_for(&caller, &app_id).await?;
    state
        .store
        .delete_portal_sessions(&app.id, body.session_ids.as_deref())
        .await?;
    state.lookups.tokens.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// The authentication routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(app_portal_access))
        .routes(routes!(dashboard_access))
        .routes(routes!(logout))
        .routes(routes!(expire_all))
        .routes(routes!(session))
        .routes(routes!(one_time_token))
}

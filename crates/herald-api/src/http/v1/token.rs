//! `/api/v1/auth/token` (Herald extension): the API tokens an operator hands to services,
//! managed by admins. A token's value is shown once, when it is made; lists name it by
//! its first characters. Portal sessions and sign-in links are tokens too, but they are
//! listed by the sessions that made them, not here.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use herald_core::model::Token;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{issue_token_record, Caller, NewToken};
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::ApiJson;
use crate::state::AppState;

/// The longest a token's description may be.
const MAX_DESCRIPTION: usize = 200;

/// An API token to make.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenIn {
    /// What the token is for (1 to 200 characters).
    pub description: String,
    /// Limit the token to this application (id or uid); an admin token without it.
    pub app_id: Option<String>,
    /// Seconds until the token expires; it never does without it.
    pub expiry: Option<u64>,
}

/// An API token as lists show it: never its value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenOut {
    pub id: String,
    pub description: String,
    /// The application it is limited to; absent for an admin token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The token's first characters (`hrld_ab12`); empty for a token that was chosen
    /// rather than generated (`HERALD_ADMIN_TOKEN`).
    pub hint: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<Token> for ApiTokenOut {
    fn from(t: Token) -> Self {
        Self {
            id: t.id,
            description: t.description,
            app_id: t.app_id,
            hint: t.hint,
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}

/// A token just made: the only answer that carries its value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenCreatedOut {
    #[serde(flatten)]
    pub token: ApiTokenOut,
    /// The token itself. Herald keeps only its hash: store it now.
    pub value: String,
}

/// The API tokens, oldest first (not portal sessions or sign-in links).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenListOut {
    pub data: Vec<ApiTokenOut>,
}

/// List API tokens (admin only).
#[utoipa::path(get, path = "/auth/token", tag = "Authentication",
    responses((status = 200, body = ApiTokenListOut), (status = 403, body = HttpErrorOut)))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ApiTokenListOut>> {
    caller.require_admin()?;
    let data = state
        .store
        .list_tokens()
        .await?
        .into_iter()
        .filter(|t| t.portal.is_none() && !t.one_time)
        .map(ApiTokenOut::from)
        .collect();
    Ok(Json(ApiTokenListOut { data }))
}

/// Make an API token (admin only); the answer is the only time its value is shown.
#[utoipa::path(post, path = "/auth/token", tag = "Authentication", request_body = ApiTokenIn,
    responses((status = 201, body = ApiTokenCreatedOut), (status = 403, body = HttpErrorOut),
        (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ApiTokenIn>,
) -> ApiResult<(StatusCode, Json<ApiTokenCreatedOut>)> {
    caller.require_admin()?;
    let description = body.description.trim();
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            "must be 1 to 200 characters",
        ));
    }
    let now = state.clock.now();
    let expires_at = match body.expiry {
        None => None,
        Some(seconds) => Some(
            i64::try_from(seconds)
                .ok()
                .filter(|s| *s >= 60)
                .and_then(TimeDelta::try_seconds)
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| {
                    ApiError::invalid("expiry", "must be at least 60 seconds, and sane")
                })?,
        ),
    };
    let app_id = match &body.app_id {
        Some(app) => Some(state.app_for(&caller, app).await?.id),
        None => None,
    };
    let new = NewToken {
        app_id,
        description: description.to_owned(),
        now,
        expires_at,
        portal: None,
        one_time: false,
        poller_endpoint_id: None,
    };
    let (value, stored) = issue_token_record(state.store.as_ref(), new).await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiTokenCreatedOut {
            token: stored.into(),
            value,
        }),
    ))
}

/// Revoke an API token (admin only); requests with it fail from now on.
#[utoipa::path(delete, path = "/auth/token/{token_id}", tag = "Authentication",
    params(("token_id" = String, Path)),
    responses((status = 204), (status = 403, body = HttpErrorOut), (status = 404, body = HttpErrorOut)))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    state.store.delete_token_by_id(&token_id).await?;
    // This node forgets it at once; others within the lookups' short lifetime.
    state.lookups.tokens.forget();
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

//! How an endpoint's deliveries authenticate, in Svix's shape: an OAuth 2.0 client
//! (`…/oauth`) and mutual TLS with the server's CA (`…/mtls`). Key pins and the same TLS
//! settings are also fields of the endpoint itself (Herald extensions).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald_core::endpoint_auth::{OAuthAuthMethod, OAuthClient, OAuthGrantType};
use herald_core::model::{Application, ClientIdentity, Endpoint};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{parse_json, ApiJson};
use crate::http::v1::endpoint::save_edited;
use crate::http::v1::endpoint_types::validate;
use crate::state::AppState;

type EndpointPath = Path<(String, String)>;

/// How Herald authenticates to the token URL. `clientSecretJwt` is Svix's too, but
/// Herald does not offer it: it is refused with a 422.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Oauth2AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    ClientSecretJwt,
}

/// What Herald trades for an access token.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Oauth2GrantType {
    ClientCredentials,
    RefreshToken,
}

/// An endpoint's OAuth 2.0 client: Herald fetches an access token from `tokenUrl`, caches
/// it until shortly before it expires, and sends it as `Authorization: Bearer …` with each
/// delivery; a receiver's 401 gets one fresh token and one more try.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOauthConfigIn {
    /// The authorization server's token endpoint, held to the delivery address policy.
    pub token_url: String,
    pub client_id: String,
    /// Required: Herald authenticates with a client secret.
    pub client_secret: Option<String>,
    pub auth_method: Oauth2AuthMethod,
    pub grant_type: Oauth2GrantType,
    /// For the `refreshToken` grant type.
    pub refresh_token: Option<String>,
    /// Asked for as the `scope` parameter.
    pub scopes: Option<Vec<String>>,
    /// More form parameters for the token request (at most 16).
    pub extra_params: Option<BTreeMap<String, String>>,
    /// Svix's `clientSecretJwt` parameters; refused, as that method is.
    #[schema(value_type = Option<Object>)]
    pub jwt_params: Option<serde_json::Value>,
}

/// An endpoint's OAuth 2.0 client, without its secrets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOauthConfigOut {
    pub token_url: String,
    pub client_id: String,
    pub auth_method: Oauth2AuthMethod,
    pub grant_type: Oauth2GrantType,
    pub scopes: Vec<String>,
    pub extra_params: BTreeMap<String, String>,
}

impl EndpointOauthConfigIn {
    fn into_client(self) -> ApiResult<OAuthClient> {
        let auth_method = match self.auth_method {
            Oauth2AuthMethod::ClientSecretBasic => OAuthAuthMethod::ClientSecretBasic,
            Oauth2AuthMethod::ClientSecretPost => OAuthAuthMethod::ClientSecretPost,
            Oauth2AuthMethod::ClientSecretJwt => {
                return Err(ApiError::invalid(
                    "authMethod",
                    "Herald does not offer `clientSecretJwt`; use `clientSecretBasic` or \
                     `clientSecretPost`",
                ))
            }
        };
        if self.jwt_params.is_some() {
            return Err(ApiError::invalid(
                "jwtParams",
                "only used by `clientSecretJwt`, which Herald does not offer",
            ));
        }
        Ok(OAuthClient {
            token_url: self.token_url,
            client_id: self.client_id,
            client_secret: self.client_secret.unwrap_or_default(),
            auth_method,
            grant_type: match self.grant_type {
                Oauth2GrantType::ClientCredentials => OAuthGrantType::ClientCredentials,
                Oauth2GrantType::RefreshToken => OAuthGrantType::RefreshToken,
            },
            refresh_token: self.refresh_token,
            scopes: self.scopes.unwrap_or_default(),
            extra_params: self.extra_params.unwrap_or_default(),
        })
    }
}

impl From<OAuthClient> for EndpointOauthConfigOut {
    fn from(c: OAuthClient) -> Self {
        Self {
            token_url: c.token_url,
            client_id: c.client_id,
            auth_method: match c.auth_method {
                OAuthAuthMethod::ClientSecretBasic => Oauth2AuthMethod::ClientSecretBasic,
                OAuthAuthMethod::ClientSecretPost => Oauth2AuthMethod::ClientSecretPost,
            },
            grant_type: match c.grant_type {
                OAuthGrantType::ClientCredentials => Oauth2GrantType::ClientCredentials,
                OAuthGrantType::RefreshToken => Oauth2GrantType::RefreshToken,
            },
            scopes: c.scopes,
            extra_params: c.extra_params,
        }
    }
}

/// Get the endpoint's OAuth 2.0 client (without its secrets).
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/oauth", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointOauthConfigOut), (status = 404, body = HttpErrorOut)))]
async fn get_oauth(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<Json<EndpointOauthConfigOut>> {
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    // None set: nothing to show, as Svix answers.
    let client = endpoint.oauth.ok_or(ApiError::NotFound)?;
    Ok(Json(client.into()))
}

/// Set the endpoint's OAuth 2.0 client; the next delivery fetches a token with it.
#[utoipa::path(put, path = "/app/{app_id}/endpoint/{endpoint_id}/oauth", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    request_body = EndpointOauthConfigIn,
    responses((status = 204), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError)))]
async fn update_oauth(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<StatusCode> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let body: EndpointOauthConfigIn = parse_json(body.get().as_bytes())?;
    let client = body.into_client()?;
    let set = |e: &mut Endpoint| e.oauth = Some(client);
    change(&state, &app, endpoint, set, Validate::Whole).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the endpoint's OAuth 2.0 client: deliveries carry no token again.
#[utoipa::path(delete, path = "/app/{app_id}/endpoint/{endpoint_id}/oauth", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_oauth(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<StatusCode> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    if endpoint.oauth.is_some() {
        change(&state, &app, endpoint, |e| e.oauth = None, Validate::Skip).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Mutual TLS: the client certificate Herald presents, and the CA it trusts for the
/// endpoint's server instead of the public roots.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMtlsConfigIn {
    /// The client certificate chain and its private key, PEM.
    pub identity: String,
    /// Certificate authorities (PEM) for the server; absent: the usual roots.
    pub server_ca_cert: Option<String>,
}

/// An endpoint's mutual TLS settings, without the client's key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMtlsConfigOut {
    pub server_ca_cert: Option<String>,
}

/// Get the endpoint's mutual TLS settings (the server CA; the client key is never shown).
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/mtls", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointMtlsConfigOut), (status = 404, body = HttpErrorOut)))]
async fn get_mtls(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<Json<EndpointMtlsConfigOut>> {
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    if endpoint.client_identity.is_none() && endpoint.server_ca.is_none() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(EndpointMtlsConfigOut {
        server_ca_cert: endpoint.server_ca,
    }))
}

/// Set the client certificate the endpoint's deliveries present, and the server CA.
#[utoipa::path(put, path = "/app/{app_id}/endpoint/{endpoint_id}/mtls", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    request_body = EndpointMtlsConfigIn,
    responses((status = 204), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError)))]
async fn update_mtls(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<StatusCode> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let body: EndpointMtlsConfigIn = parse_json(body.get().as_bytes())?;
    let set = |e: &mut Endpoint| {
        e.client_identity = Some(ClientIdentity(body.identity));
        e.server_ca = body.server_ca_cert;
    };
    change(&state, &app, endpoint, set, Validate::Whole)
        .await
        .map_err(mtls_names)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Errors on the endpoint's field names, renamed to this body's.
fn mtls_names(e: ApiError) -> ApiError {
    let ApiError::Validation(mut errors) = e else {
        return e;
    };
    for error in &mut errors {
        if let Some(field) = error.loc.get_mut(1) {
            match field.as_str() {
                "clientCertificate" => *field = "identity".into(),
                "serverCaCertificate" => *field = "serverCaCert".into(),
                _ => {}
            }
        }
    }
    ApiError::Validation(errors)
}

/// Remove the endpoint's client certificate and server CA.
#[utoipa::path(delete, path = "/app/{app_id}/endpoint/{endpoint_id}/mtls", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_mtls(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<StatusCode> {
    let (app, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    if endpoint.client_identity.is_some() || endpoint.server_ca.is_some() {
        let clear = |e: &mut Endpoint| (e.client_identity, e.server_ca) = (None, None);
        change(&state, &app, endpoint, clear, Validate::Skip).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the changed endpoint is validated whole before it is stored. Removing a
/// setting is not: it cannot make the endpoint invalid, and must work even when something
/// else about it no longer passes (a network the operator has since closed).
enum Validate {
    Whole,
    Skip,
}

/// Applies `edit` to `endpoint` and stores it as any endpoint edit is.
async fn change(
    state: &AppState,
    app: &Application,
    mut endpoint: Endpoint,
    edit: impl FnOnce(&mut Endpoint),
    validation: Validate,
) -> ApiResult<()> {
    let read = endpoint.clone();
    edit(&mut endpoint);
    if let Validate::Whole = validation {
        validate(state, &endpoint).await?;
    }
    endpoint.updated_at = state.clock.now();
    save_edited(state, app, &read, &mut endpoint).await
}

/// The `…/oauth` and `…/mtls` routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_oauth, update_oauth, delete_oauth))
        .routes(routes!(get_mtls, update_mtls, delete_mtls))
}

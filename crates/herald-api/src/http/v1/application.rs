//! `/api/v1/app`: applications, one per customer of the provider.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald_core::ids::IdKind;
use herald_core::model::{Application, VerificationMode};
use herald_core::store::Order;
use herald_core::validation::{self, Validator};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::patch::{self};
use crate::http::v1::application_types::{
    check_name, check_uid, create_or_get, ApplicationIn, ApplicationOut, ApplicationPatch,
    CreateAppQuery,
};
use crate::http::v1::throttle::check_rate;
use crate::state::AppState;

/// List applications, oldest first.
#[utoipa::path(get, path = "/app", tag = "Application", params(Pagination),
    responses((status = 200, body = ListResponse<ApplicationOut>), (status = 401, body = HttpErrorOut)))]
async fn list_apps(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<ApplicationOut>>> {
    caller.require_admin()?;
    let page = state
        .store
        .list_apps(&page.to_request(Order::Ascending)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        page,
        |a| &a.id,
        ApplicationOut::from,
    )))
}

/// Create an application.
#[utoipa::path(post, path = "/app", tag = "Application", params(CreateAppQuery), request_body = ApplicationIn,
    responses((status = 201, body = ApplicationOut), (status = 200, description = "Existing application (get_if_exists)", body = ApplicationOut),
        (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn create_app(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CreateAppQuery>,
    ApiJson(body): ApiJson<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    caller.require_admin()?;
    let (created, app) = create_or_get(&state, body, query.get_if_exists).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(app.into())))
}

/// Get an application by id or uid.
#[utoipa::path(get, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    responses((status = 200, body = ApplicationOut), (status = 404, body = HttpErrorOut)))]
async fn get_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<ApplicationOut>> {
    Ok(Json(state.app_for(&caller, &app_id).await?.into()))
}

/// Replace an application, creating it if it does not exist.
#[utoipa::path(put, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    request_body = ApplicationIn,
    responses((status = 200, body = ApplicationOut), (status = 201, body = ApplicationOut), (status = 422, body = HttpValidationError)))]
async fn update_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(mut body): ApiJson<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    // An application's identity (uid) and limits are the provider's to set, not its
    // customer's: a portal token changing its uid could take over another tenant's name.
    caller.require_admin()?;
    body.validate()?;
    let mut app = match state.app_for(&caller, &app_id).await {
        Ok(app) => app,
        Err(ApiError::NotFound) => {
            if body.uid.is_none() && !IdKind::Application.is_id(&app_id) {
                body.uid = Some(app_id);
            }
            let (_, app) = create_or_get(&state, body, false).await?;
            return Ok((StatusCode::CREATED, Json(app.into())));
        }
        Err(e) => return Err(e),
    };
    app.name = body.name;
    app.uid = body.uid;
    app.rate_limit = body.throttle_rate.map(u32::from);
    app.metadata = body.metadata;
    // Svix's SDKs send no `verification`: a replace from them keeps it.
    let asked = app.verification;
    if let Some(mode) = body.verification {
        app.verification = mode.into();
    }
    app.updated_at = state.clock.now();
    state.store.update_app(&app).await?;
    stop_verifying_if_off(&state, &app, asked).await?;
    state.lookups.apps.forget();
    Ok((StatusCode::OK, Json(app.into())))
}

/// Change some fields of an application.
#[utoipa::path(patch, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    request_body = ApplicationPatch,
    responses((status = 200, body = ApplicationOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn patch_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<ApplicationPatch>,
) -> ApiResult<Json<ApplicationOut>> {
    caller.require_admin()?;
    let mut app = state.app_for(&caller, &app_id).await?;
    let mut v = Validator::default();
    if let Some(name) = &body.name {
        check_name(&mut v, name);
    }
    check_uid(&mut v, body.uid.as_ref().and_then(|u| u.as_deref()));
    check_rate(&mut v, body.throttle_rate.flatten());
    if let Some(metadata) = &body.metadata {
        v.check(validation::metadata("metadata", metadata));
    }
    v.finish().map_err(ApiError::Validation)?;
    if let Some(name) = body.name {
        app.name = name;
    }
    patch::apply(&mut app.uid, body.uid);
    patch::apply(
        &mut app.rate_limit,
        body.throttle_rate.map(|r| r.map(u32::from)),
    );
    if let Some(metadata) = body.metadata {
        app.metadata = metadata;
    }
    let asked = app.verification;
    if let Some(mode) = body.verification {
        app.verification = mode.into();
    }
    app.updated_at = state.clock.now();
    state.store.update_app(&app).await?;
    stop_verifying_if_off(&state, &app, asked).await?;
    state.lookups.apps.forget();
    Ok(Json(app.into()))
}

/// Delete an application with its endpoints, messages and attempts.
#[utoipa::path(delete, path = "/app/{app_id}", tag = "Application", params(("app_id" = String, Path, description = "Id or uid")),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let app = state.app_for(&caller, &app_id).await?;
    state.store.delete_app(&app.id).await?;
    state.lookups.apps.forget();
    // Its portal tokens went with it.
    state.lookups.tokens.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// The application routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, update_app, patch_app, delete_app))
}

/// When an application stops asking its endpoints to verify, the ones still waiting stop
/// waiting: their held messages are released by the verification loop, which is woken.
async fn stop_verifying_if_off(
    state: &AppState,
    app: &Application,
    before: VerificationMode,
) -> ApiResult<()> {
    if before != VerificationMode::None && app.verification == VerificationMode::None {
        state.store.clear_verification(&app.id).await?;
        state.verifications.notify_one();
    }
    Ok(())
}

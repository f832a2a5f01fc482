//! `/ingest/api/v1/source`: inbound sources, managed as Svix's ingest API manages them.
//! Only the provider's admin tokens may: a source publishes into applications.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use herald_core::ids::IdKind;
use herald_core::model::{Metadata, Source};
use herald_core::store::Order;
use herald_core::StoreError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::ingest::source_types::{
    check, ingest_url, new_token, IngestRejectionOut, IngestSourceIn, IngestSourceOut,
    RotateTokenOut,
};
use crate::http::list::{ListResponse, Pagination};
use crate::http::v1::application_types::{create_or_get, ApplicationIn};
use crate::state::AppState;

/// List the inbound sources.
#[utoipa::path(get, path = "/source", tag = "Ingest Source", params(Pagination),
    responses((status = 200, body = ListResponse<IngestSourceOut>), (status = 403, body = HttpErrorOut)))]
async fn list_sources(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<IngestSourceOut>>> {
    caller.require_admin()?;
    let page = state
        .store
        .list_sources(&page.to_request(Order::Ascending)?)
        .await?;
    Ok(Json(ListResponse::from_page(
        page,
        |s| &s.id,
        |s| IngestSourceOut::new(&state, s),
    )))
}

/// Create an inbound source, with its receive URL (`ingestUrl`).
#[utoipa::path(post, path = "/source", tag = "Ingest Source", request_body = IngestSourceIn,
    responses((status = 201, body = IngestSourceOut), (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn create_source(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<IngestSourceIn>,
) -> ApiResult<(StatusCode, Json<IngestSourceOut>)> {
    caller.require_admin()?;
    let source = create(&state, body, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(IngestSourceOut::new(&state, source)),
    ))
}

async fn create(state: &AppState, body: IngestSourceIn, uid: Option<String>) -> ApiResult<Source> {
    check(&body)?;
    let app_id = match &body.app_id {
        Some(app) => state.store.get_app(app).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::invalid("appId", "no such application"),
            e => e.into(),
        })?,
        None => {
            let app = ApplicationIn {
                name: format!("Source: {}", body.name),
                uid: None,
                throttle_rate: None,
                metadata: Metadata::default(),
                verification: None,
            };
            create_or_get(state, app, false).await?.1
        }
    }
    .id;
    let now = state.clock.now();
    let source = Source {
        id: IdKind::Source.new_id(),
        uid: body.uid.or(uid),
        name: body.name,
        kind: body.kind,
        config: body.config,
        app_id,
        token: new_token(),
        previous_token: None,
        previous_token_expires_at: None,
        metadata: body.metadata,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .create_source(&source)
        .await
        .map_err(uid_conflict)?;
    Ok(source)
}

/// Get an inbound source.
#[utoipa::path(get, path = "/source/{source_id}", tag = "Ingest Source", params(("source_id" = String, Path)),
    responses((status = 200, body = IngestSourceOut), (status = 404, body = HttpErrorOut)))]
async fn get_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> ApiResult<Json<IngestSourceOut>> {
    caller.require_admin()?;
    let source = state.store.get_source(&source_id).await?;
    Ok(Json(IngestSourceOut::new(&state, source)))
}

/// Replace an inbound source's settings (its URL stays), or create it with this uid.
#[utoipa::path(put, path = "/source/{source_id}", tag = "Ingest Source", params(("source_id" = String, Path)),
    request_body = IngestSourceIn,
    responses((status = 200, body = IngestSourceOut), (status = 201, body = IngestSourceOut), (status = 422, body = HttpValidationError)))]
async fn upsert_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
    ApiJson(body): ApiJson<IngestSourceIn>,
) -> ApiResult<(StatusCode, Json<IngestSourceOut>)> {
    caller.require_admin()?;
    let mut source = match state.store.get_source(&source_id).await {
        Ok(source) => source,
        Err(StoreError::NotFound) if !IdKind::Source.is_id(&source_id) => {
            let created = create(&state, body, Some(source_id)).await?;
            return Ok((
                StatusCode::CREATED,
                Json(IngestSourceOut::new(&state, created)),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    check(&body)?;
    if body.app_id.is_some() {
        return Err(ApiError::invalid(
            "appId",
            "a source's application is set when it is made",
        ));
    }
    source.uid = body.uid.or(source.uid);
    source.name = body.name;
    source.kind = body.kind;
    source.config = body.config;
    source.metadata = body.metadata;
    source.updated_at = state.clock.now();
    state
        .store
        .update_source(&source)
        .await
        .map_err(uid_conflict)?;
    state.lookups.sources.forget();
    Ok((StatusCode::OK, Json(IngestSourceOut::new(&state, source))))
}

/// Delete an inbound source; its URL stops working at once (its application stays).
#[utoipa::path(delete, path = "/source/{source_id}", tag = "Ingest Source", params(("source_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let source = state.store.get_source(&source_id).await?;
    state.store.delete_source(&source.id).await?;
    state.lookups.sources.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// How long a source's previous receive URL keeps working after a rotation (Svix's 48 h),
/// so the provider's settings can be moved over.
const TOKEN_OVERLAP: Duration = Duration::hours(48);

/// Give the source a new receive URL; the old one keeps working for 48 hours.
#[utoipa::path(post, path = "/source/{source_id}/token/rotate", tag = "Ingest Source", params(("source_id" = String, Path)),
    responses((status = 200, body = RotateTokenOut), (status = 404, body = HttpErrorOut)))]
async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
) -> ApiResult<Json<RotateTokenOut>> {
    caller.require_admin()?;
    let mut source = state.store.get_source(&source_id).await?;
    let now = state.clock.now();
    source.previous_token = Some(std::mem::replace(&mut source.token, new_token()));
    source.previous_token_expires_at = Some(now + TOKEN_OVERLAP);
    source.updated_at = now;
    state.store.update_source(&source).await?;
    state.lookups.sources.forget();
    Ok(Json(RotateTokenOut {
        ingest_url: ingest_url(&state, &source.id, &source.token),
    }))
}

/// List the requests the source refused, newest first, with the reason (Herald extension;
/// the sender is only told 401).
#[utoipa::path(get, path = "/source/{source_id}/log", tag = "Ingest Source",
    params(("source_id" = String, Path), Pagination),
    responses((status = 200, body = ListResponse<IngestRejectionOut>), (status = 404, body = HttpErrorOut)))]
async fn list_rejections(
    State(state): State<AppState>,
    caller: Caller,
    Path(source_id): Path<String>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ListResponse<IngestRejectionOut>>> {
    caller.require_admin()?;
    let source = state.store.get_source(&source_id).await?;
    let page = state
        .store
        .list_ingest_rejections(&source.id, &page.to_request(Order::Descending)?)
        .await?;
    Ok(Json(ListResponse::from_page(page, |r| &r.id, Into::into)))
}

/// The source routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sources, create_source))
        .routes(routes!(get_source, upsert_source, delete_source))
        .routes(routes!(rotate_token))
        .routes(routes!(list_rejections))
}

/// A taken uid as the API says it.
fn uid_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => {
            ApiError::Conflict("A source with this uid already exists.".into())
        }
        e => e.into(),
    }
}

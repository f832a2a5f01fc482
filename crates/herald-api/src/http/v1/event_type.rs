//! `/api/v1/event-type`: the catalog of event types, with optional JSON Schemas.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::model::EventType;
use herald_core::store::Order;
use herald_core::validation::{self, FieldError, Validator};
use herald_core::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::list::{ListResponse, Pagination};
use crate::http::patch::{self, nullable};
use crate::schema::check_schemas;
use crate::state::AppState;

/// A new event type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    /// e.g. `user.created`; letters, digits, `-`, `_`, `.`.
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// JSON Schemas by version, e.g. `{"1": {"type": "object", …}}`.
    pub schemas: Option<Value>,
    /// Only users with one of these flags see the type in the portal.
    pub feature_flags: Option<Vec<String>>,
    /// The older, single-flag form of `featureFlags`.
    pub feature_flag: Option<String>,
    /// Groups related types in listings.
    pub group_name: Option<String>,
}

/// The full replacement of an event type (the name comes from the path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    pub schemas: Option<Value>,
    pub feature_flags: Option<Vec<String>>,
    pub feature_flag: Option<String>,
    pub group_name: Option<String>,
}

/// Changes to an event type; absent fields are kept, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    pub description: Option<String>,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub feature_flags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub feature_flag: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub group_name: Option<Option<String>>,
}

/// An event type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemas: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_flags: Option<Vec<String>>,
    /// The first of `featureFlags`, for older clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EventType> for EventTypeOut {
    fn from(e: EventType) -> Self {
        Self {
            name: e.name,
            description: e.description,
            archived: e.archived,
            deprecated: e.deprecated,
            schemas: e.schemas,
            feature_flag: e.feature_flags.as_ref().and_then(|f| f.first().cloned()),
            feature_flags: e.feature_flags,
            group_name: e.group_name,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// `GET /event-type` options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListEventTypesQuery {
    /// Include archived event types.
    #[serde(default)]
    pub include_archived: bool,
    /// Include the schemas (default true).
    pub with_content: Option<bool>,
}

/// `DELETE /event-type/{name}` options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteEventTypeQuery {
    /// Delete for good instead of archiving.
    #[serde(default)]
    pub expunge: bool,
}

/// `featureFlags`, or the single `featureFlag` of older clients.
fn flags(many: Option<Vec<String>>, one: Option<String>) -> Option<Vec<String>> {
    many.or_else(|| one.map(|f| vec![f]))
}

fn check_fields(v: &mut Validator, e: &EventType) {
    v.check(validation::length("description", &e.description, 0, 8192));
    if let Some(flags) = &e.feature_flags {
        v.check(validation::list_len("featureFlags", flags, 0, 16));
    }
    for flag in e.feature_flags.iter().flatten() {
        v.check(validation::event_type_name("featureFlags", flag));
    }
    if let Some(group) = &e.group_name {
        v.check(validation::length("groupName", group, 1, 256));
    }
    let schemas = e.schemas.as_ref();
    for (version, problem) in schemas.map(check_schemas).unwrap_or_default() {
        v.errors.push(FieldError {
            loc: vec!["body".into(), "schemas".into(), version],
            msg: format!("not a valid JSON Schema: {problem}"),
            kind: "value_error.jsonschema",
        });
    }
}

/// List event types, by name.
#[utoipa::path(get, path = "/event-type", tag = "Event Type", params(Pagination, ListEventTypesQuery),
    responses((status = 200, body = ListResponse<EventTypeOut>)))]
async fn list_event_types(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Pagination>,
    ApiQuery(query): ApiQuery<ListEventTypesQuery>,
) -> ApiResult<Json<ListResponse<EventTypeOut>>> {
    let request = page.to_request(Order::Ascending)?;
    let page = state
        .store
        .list_event_types(&request, query.include_archived)
        .await?;
    let with_content = query.with_content.unwrap_or(true);
    let mut list = ListResponse::from_page(
        page,
        |e| &e.name,
        |e| {
            let mut out = EventTypeOut::from(e);
            if !with_content {
                out.schemas = None;
            }
            out
        },
    );
    // Hidden after paging, so the page's cursors still step over what is hidden.
    list.data
        .retain(|e| caller.sees_feature(e.feature_flags.as_deref()));
    Ok(Json(list))
}

/// Create an event type (or bring back an archived one).
#[utoipa::path(post, path = "/event-type", tag = "Event Type", request_body = EventTypeIn,
    responses((status = 201, body = EventTypeOut), (status = 409, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn create_event_type(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EventTypeIn>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    caller.require_admin()?;
    let now = state.clock.now();
    let mut event_type = EventType {
        name: body.name,
        description: body.description,
        schemas: body.schemas,
        archived: body.archived,
        deprecated: body.deprecated,
        feature_flags: flags(body.feature_flags, body.feature_flag),
        group_name: body.group_name,
        created_at: now,
        updated_at: now,
    };
    let mut v = Validator::default();
    v.check(validation::event_type_name("name", &event_type.name));
    check_fields(&mut v, &event_type);
    v.finish().map_err(ApiError::Validation)?;
    match state.store.create_event_type(&event_type).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            let existing = state.store.get_event_type(&event_type.name).await?;
            if !existing.archived {
                return Err(ApiError::Conflict(
                    "An event type with this name already exists.".into(),
                ));
            }
            event_type.created_at = existing.created_at;
            state.store.update_event_type(&event_type).await?;
        }
        Err(e) => return Err(e.into()),
    }
    state.lookups.event_types.forget();
    Ok((StatusCode::CREATED, Json(event_type.into())))
}

/// Get an event type.
#[utoipa::path(get, path = "/event-type/{event_type_name}", tag = "Event Type", params(("event_type_name" = String, Path)),
    responses((status = 200, body = EventTypeOut), (status = 404, body = HttpErrorOut)))]
async fn get_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<EventTypeOut>> {
    let event_type = state.store.get_event_type(&name).await?;
    if !caller.sees_feature(event_type.feature_flags.as_deref()) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(event_type.into()))
}

/// Replace an event type, creating it if needed.
#[utoipa::path(put, path = "/event-type/{event_type_name}", tag = "Event Type", params(("event_type_name" = String, Path)),
    request_body = EventTypeUpdate,
    responses((status = 200, body = EventTypeOut), (status = 201, body = EventTypeOut), (status = 422, body = HttpValidationError)))]
async fn update_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<EventTypeUpdate>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    caller.require_admin()?;
    let mut v = Validator::default();
    v.check(validation::event_type_name("name", &name));
    v.finish().map_err(ApiError::Validation)?;
    let now = state.clock.now();
    let existing = match state.store.get_event_type(&name).await {
        Ok(e) => Some(e),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let event_type = EventType {
        name,
        description: body.description,
        schemas: body.schemas,
        archived: body.archived,
        deprecated: body.deprecated,
        feature_flags: flags(body.feature_flags, body.feature_flag),
        group_name: body.group_name,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let mut v = Validator::default();
    check_fields(&mut v, &event_type);
    v.finish().map_err(ApiError::Validation)?;
    if existing.is_some() {
        state.store.update_event_type(&event_type).await?;
        state.lookups.event_types.forget();
        Ok((StatusCode::OK, Json(event_type.into())))
    } else {
        state.store.create_event_type(&event_type).await?;
        state.lookups.event_types.forget();
        Ok((StatusCode::CREATED, Json(event_type.into())))
    }
}

/// Change some fields of an event type.
#[utoipa::path(patch, path = "/event-type/{event_type_name}", tag = "Event Type", params(("event_type_name" = String, Path)),
    request_body = EventTypePatch,
    responses((status = 200, body = EventTypeOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn patch_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<EventTypePatch>,
) -> ApiResult<Json<EventTypeOut>> {
    caller.require_admin()?;
    let mut event_type = state.store.get_event_type(&name).await?;
    if let Some(description) = body.description {
        event_type.description = description;
    }
    if let Some(archived) = body.archived {
        event_type.archived = archived;
    }
    if let Some(deprecated) = body.deprecated {
        event_type.deprecated = deprecated;
    }
    patch::apply(&mut event_type.schemas, body.schemas);
    patch::apply(&mut event_type.feature_flags, body.feature_flags);
    patch::apply(
        &mut event_type.feature_flags,
        body.feature_flag.map(|f| f.map(|f| vec![f])),
    );
    patch::apply(&mut event_type.group_name, body.group_name);
    let mut v = Validator::default();
    check_fields(&mut v, &event_type);
    v.finish().map_err(ApiError::Validation)?;
    event_type.updated_at = state.clock.now();
    state.store.update_event_type(&event_type).await?;
    state.lookups.event_types.forget();
    Ok(Json(event_type.into()))
}

/// Archive an event type (or delete it for good with `expunge=true`).
#[utoipa::path(delete, path = "/event-type/{event_type_name}", tag = "Event Type",
    params(("event_type_name" = String, Path), DeleteEventTypeQuery),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<DeleteEventTypeQuery>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    if query.expunge {
        state.store.expunge_event_type(&name).await?;
    } else {
        let mut event_type = state.store.get_event_type(&name).await?;
        event_type.archived = true;
        event_type.updated_at = state.clock.now();
        state.store.update_event_type(&event_type).await?;
    }
    state.lookups.event_types.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// A JSON Schema to build an example from.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventTypeSchemaIn {
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// An example payload that fits the schema.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeExampleOut {
    #[schema(value_type = Object)]
    pub example: Value,
}

/// Build an example payload from a JSON Schema.
#[utoipa::path(post, path = "/event-type/schema/generate-example", tag = "Event Type", request_body = EventTypeSchemaIn,
    responses((status = 200, body = EventTypeExampleOut), (status = 422, body = HttpValidationError)))]
async fn generate_schema_example(
    _caller: Caller,
    ApiJson(body): ApiJson<EventTypeSchemaIn>,
) -> ApiResult<Json<EventTypeExampleOut>> {
    if let Err(e) = jsonschema::validator_for(&body.schema) {
        return Err(ApiError::invalid(
            "schema",
            format!("not a valid JSON Schema: {e}"),
        ));
    }
    Ok(Json(EventTypeExampleOut {
        example: crate::schema::generate_example(&body.schema),
    }))
}

/// The event-type routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_event_types, create_event_type))
        .routes(routes!(generate_schema_example))
        .routes(routes!(
            get_event_type,
            update_event_type,
            patch_event_type,
            delete_event_type
        ))
}

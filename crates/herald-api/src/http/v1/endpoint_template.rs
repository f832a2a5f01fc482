//! An endpoint's template (a Herald extension): what it is sent, rendered from each event,
//! and a way to try a template on a sample event without sending anything.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald_core::destination::Rendered;
use herald_core::model::{Endpoint, EndpointTemplate};
use herald_core::validation::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{parse_json, ApiJson};
use crate::http::v1::endpoint_header_types::check_headers;
use crate::state::AppState;
use herald_delivery::destinations::http::METHODS;
use herald_delivery::destinations::template::{self, TemplateInput};
use herald_delivery::destinations::Kind;

/// Templates in minijinja syntax. Each may use `event_type`, `msg_id`, `timestamp`,
/// `timestamp_unix` and `payload`. Which parts apply depends on the endpoint's kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointTemplateIn {
    /// The body (HTTP, chat, brokers), or the email's text part.
    #[serde(default)]
    pub body: Option<String>,
    /// The email's subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// The email's HTML part (values are HTML-escaped).
    #[serde(default)]
    pub html: Option<String>,
    /// The HTTP method: POST (default), PUT, PATCH, DELETE or GET.
    #[serde(default)]
    pub method: Option<String>,
    /// Extra headers (HTTP, chat) or message headers (brokers); values are templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body's content type (default `application/json`).
    #[serde(default)]
    pub content_type: Option<String>,
}

/// The template in use, and whether it is the kind's built-in default. (Its fields are
/// written out rather than flattened from `EndpointTemplateIn`, whose schema allows no
/// other property, so that the document describes this answer as it is.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTemplateOut {
    pub body: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub method: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// `true` when the endpoint has no template of its own and this is the default (email
    /// and chat), or nothing at all (the payload is sent as published).
    pub is_default: bool,
}

impl EndpointTemplateOut {
    fn new(t: EndpointTemplateIn, is_default: bool) -> Self {
        Self {
            body: t.body,
            subject: t.subject,
            html: t.html,
            method: t.method,
            headers: t.headers,
            content_type: t.content_type,
            is_default,
        }
    }
}

/// A sample event to render.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateSimulateIn {
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// A template to try instead of the endpoint's.
    #[serde(default)]
    pub template: Option<EndpointTemplateIn>,
}

/// What would be sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSimulateOut {
    /// The body; `null` when the payload would be sent as published.
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl From<EndpointTemplateIn> for EndpointTemplate {
    fn from(t: EndpointTemplateIn) -> Self {
        Self {
            body: t.body,
            subject: t.subject,
            html: t.html,
            method: t.method,
            headers: t.headers,
            content_type: t.content_type,
        }
    }
}

impl From<EndpointTemplate> for EndpointTemplateIn {
    fn from(t: EndpointTemplate) -> Self {
        Self {
            body: t.body,
            subject: t.subject,
            html: t.html,
            method: t.method,
            headers: t.headers,
            content_type: t.content_type,
        }
    }
}

impl From<Rendered> for TemplateSimulateOut {
    fn from(r: Rendered) -> Self {
        Self {
            body: r.body,
            subject: r.subject,
            html: r.html,
            method: r.method,
            headers: r.headers,
            content_type: r.content_type,
        }
    }
}

fn kind_of(endpoint: &Endpoint) -> ApiResult<Kind> {
    url::Url::parse(&endpoint.url)
        .ok()
        .and_then(|u| Kind::of(&u))
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("endpoint URL names no kind")))
}

fn template_error(part: &str, msg: impl Into<String>) -> FieldError {
    FieldError {
        loc: ["body"]
            .into_iter()
            .chain(part.split('.'))
            .map(str::to_owned)
            .collect(),
        msg: msg.into(),
        kind: "value_error.template",
    }
}

/// Checks a template for an endpoint of `kind`: it compiles, uses only the parts the kind
/// has, and its literal method and headers are ones Herald can send.
fn check(kind: Kind, t: &EndpointTemplate) -> ApiResult<()> {
    let allowed = kind.template_parts();
    let used = [
        ("body", t.body.is_some()),
        ("subject", t.subject.is_some()),
        ("html", t.html.is_some()),
        ("method", t.method.is_some()),
        ("headers", !t.headers.is_empty()),
        ("contentType", t.content_type.is_some()),
    ];
    let mut errors: Vec<FieldError> = used
        .into_iter()
        .filter(|(part, present)| *present && !allowed.contains(part))
        .map(|(part, _)| {
            template_error(
                part,
                format!("does not apply to this endpoint's kind; it takes {allowed:?}"),
            )
        })
        .collect();
    if let Some(method) = t.method.as_deref().filter(|m| !m.contains('{')) {
        if !METHODS.contains(&method.trim().to_ascii_uppercase().as_str()) {
            errors.push(template_error(
                "method",
                format!("must be one of {METHODS:?}"),
            ));
        }
    }
    if let Some(content_type) = &t.content_type {
        if content_type.is_empty()
            || content_type.len() > 255
            || axum::http::HeaderValue::from_str(content_type).is_err()
        {
            errors.push(template_error(
                "contentType",
                "must be a valid content type",
            ));
        }
    }
    if let Err(ApiError::Validation(found)) = check_headers(&t.headers) {
        errors.extend(found);
    }
    if let Err(e) = template::check(t) {
        errors.push(template_error(&e.part, e.message));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

type EndpointPath = Path<(String, String)>;

// Bodies are read as raw JSON and parsed after the caller's access to the endpoint is
// checked: a caller without access learns nothing, not even which fields are expected.

/// Get the endpoint's template, or the default of its kind.
#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/template", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointTemplateOut), (status = 404, body = HttpErrorOut)))]
async fn get_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<Json<EndpointTemplateOut>> {
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let kind = kind_of(&endpoint)?;
    Ok(Json(match endpoint.template {
        Some(own) => EndpointTemplateOut::new(own.into(), false),
        None => EndpointTemplateOut::new(kind.default_template().unwrap_or_default().into(), true),
    }))
}

/// Set the endpoint's template; it applies to every attempt from now on, retries included.
#[utoipa::path(put, path = "/app/{app_id}/endpoint/{endpoint_id}/template", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    request_body = EndpointTemplateIn,
    responses((status = 200, body = EndpointTemplateOut), (status = 422, body = HttpValidationError)))]
async fn put_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<Json<EndpointTemplateOut>> {
    let (_, mut endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let body: EndpointTemplateIn = parse_json(body.get().as_bytes())?;
    let template = EndpointTemplate::from(body.clone());
    check(kind_of(&endpoint)?, &template)?;
    let read_at = endpoint.updated_at;
    endpoint.template = Some(template);
    endpoint.updated_at = state.clock.now();
    state.store.update_endpoint(&endpoint, read_at).await?;
    Ok(Json(EndpointTemplateOut::new(body, false)))
}

/// Remove the endpoint's template: the payload is sent as published again (or the kind's
/// default message, for email and chat).
#[utoipa::path(delete, path = "/app/{app_id}/endpoint/{endpoint_id}/template", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 204), (status = 404, body = HttpErrorOut)))]
async fn delete_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
) -> ApiResult<StatusCode> {
    let (_, mut endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    if endpoint.template.is_some() {
        let read_at = endpoint.updated_at;
        endpoint.template = None;
        endpoint.updated_at = state.clock.now();
        state.store.update_endpoint(&endpoint, read_at).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Render the endpoint's template (or the one given) for a sample event, sending nothing.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/template/simulate", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    request_body = TemplateSimulateIn,
    responses((status = 200, body = TemplateSimulateOut), (status = 422, body = HttpValidationError)))]
async fn simulate_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): EndpointPath,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<Json<TemplateSimulateOut>> {
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let body: TemplateSimulateIn = parse_json(body.get().as_bytes())?;
    let kind = kind_of(&endpoint)?;
    let template = match body.template {
        Some(given) => {
            let given = EndpointTemplate::from(given);
            check(kind, &given)?;
            Some(given)
        }
        None => endpoint.template.or_else(|| kind.default_template()),
    };
    let Some(template) = template else {
        // No template: what is sent is the payload itself.
        return Ok(Json(TemplateSimulateOut::from(Rendered::default())));
    };
    let payload = body.payload.to_string();
    let msg_id = herald_core::ids::IdKind::Message.new_id();
    let timestamp = state.clock.now();
    // Off the async workers, as at delivery: a heavy template must not stall the API.
    let rendered = tokio::task::spawn_blocking(move || {
        let input = TemplateInput {
            event_type: &body.event_type,
            msg_id: &msg_id,
            payload: &payload,
            timestamp,
        };
        template::render(&template, &input)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering a template: {e}")))?;
    let rendered = rendered.map_err(|e| {
        ApiError::Validation(vec![template_error(
            &format!("template.{}", e.part),
            e.message,
        )])
    })?;
    Ok(Json(rendered.into()))
}

/// The template routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_template, put_template, delete_template))
        .routes(routes!(simulate_template))
}

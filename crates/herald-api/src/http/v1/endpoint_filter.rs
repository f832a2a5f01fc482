//! Trying an endpoint's filters on a sample message (a Herald extension): whether it would
//! be sent there, and if not, which filter stops it, without publishing anything.

use axum::extract::{Path, State};
use axum::Json;
use herald_core::filter::{channels_accepted, type_accepted};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::{parse_json, ApiJson};
use crate::http::v1::endpoint_types::payload_filter_field;
use crate::state::AppState;

/// A sample message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterSimulateIn {
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Checked against the endpoint's `filterTypes` when given.
    #[serde(default)]
    pub event_type: Option<String>,
    /// The message's channels, checked against the endpoint's `channels` as publishing
    /// does: absent, the message is on none.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// A payload filter to try instead of the endpoint's.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload_filter: Option<Value>,
}

/// Whether the endpoint's filters let the sample message through.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterSimulateOut {
    /// `true` when every filter checked lets it through. Whether the endpoint is disabled
    /// is not a filter and is not considered.
    pub matches: bool,
    /// When it does not match: the first filter that stops it, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The payload filter that was tried (the endpoint's, or the one given); absent when
    /// there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload_filter: Option<Value>,
}

/// Check the endpoint's filters (event types, channels and payload filter, or a payload
/// filter given instead) against a sample message, sending nothing.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/filter/simulate", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    request_body = FilterSimulateIn,
    responses((status = 200, body = FilterSimulateOut), (status = 404, body = HttpErrorOut),
        (status = 422, body = HttpValidationError)))]
async fn simulate_filter(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Box<RawValue>>,
) -> ApiResult<Json<FilterSimulateOut>> {
    // The body is read once the caller's access to the endpoint is known.
    let (_, endpoint) = state.endpoint_for(&caller, &app_id, &endpoint_id).await?;
    let body: FilterSimulateIn = parse_json(body.get().as_bytes())?;
    let filter = match body.payload_filter {
        Some(given) => Some(payload_filter_field(given)?),
        None => endpoint.payload_filter.clone(),
    };
    let type_refused = body
        .event_type
        .as_deref()
        .filter(|t| !type_accepted(&endpoint, t))
        .map(|t| format!("the event type `{t}` is not among the endpoint's filterTypes"));
    let channels_refused = (!channels_accepted(&endpoint, body.channels.as_deref()))
        .then(|| "the message is on none of the endpoint's channels".to_owned());
    let payload_refused = filter
        .as_ref()
        .and_then(|f| f.explain(&body.payload).err())
        .map(|why| format!("the payload filter: {why}"));
    let reason = type_refused.or(channels_refused).or(payload_refused);
    Ok(Json(FilterSimulateOut {
        matches: reason.is_none(),
        reason,
        payload_filter: filter.map(|f| f.source().clone()),
    }))
}

/// The filter route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(simulate_filter))
}

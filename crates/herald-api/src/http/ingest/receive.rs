//! `POST /ingest/{source_id}/{token}`: where providers send. A request is believed only
//! if the token is the source's and it passes the source's check; it is then committed as
//! a message of the source's application before it is acknowledged, so a 2xx never
//! loses an event. A refusal never says which check failed (the reason is logged), and a
//! redelivery of an event already stored (the provider's own id) is acknowledged again
//! without a second message.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::IdKind;
use herald_core::model::{IngestRejection, Message, Source};
use herald_core::store::{NewMessage, Published};
use herald_core::StoreError;
use herald_inbound::verify::same_bytes;
use herald_inbound::{event_of, handshake, payload_of, verifier, verify, Inbound};
use serde_json::json;

use herald_core::metrics::Metrics;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Receives one request for a source, and counts how it ended.
pub async fn receive(
    state: State<AppState>,
    path: Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let metrics = state.metrics.clone();
    let answer = receive_one(state, path, method, uri, headers, body).await;
    let outcome: &str = match &answer {
        Ok((outcome, _)) => outcome,
        Err(ApiError::NotFound) => "unknown_source",
        Err(ApiError::Unauthorized | ApiError::TooLarge(_)) => "refused",
        Err(_) => "error",
    };
    Metrics::count(&metrics.ingest_requests, outcome);
    if outcome == "accepted" {
        metrics.messages_published.inc();
    }
    answer.map(|(_, response)| response)
}

/// How a request that was answered `2xx` ended, for the metrics.
type Received = (&'static str, Response);

async fn receive_one(
    State(state): State<AppState>,
    Path((source_id, token)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Received> {
    let source = source_for(&state, &source_id, &token).await?;
    // Read only once the source is known, and never past the limit.
    let limit = state.config.api.max_payload_bytes;
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        note_rejection(&state, &source, 413, "too_large").await;
        return Err(ApiError::TooLarge(format!(
            "The body is over the limit of {limit} bytes (or could not be read)."
        )));
    };
    let Ok(check) = verifier(&source.kind, &source.config) else {
        tracing::error!(source = %source.id, "a stored source has settings Herald cannot read");
        note_rejection(&state, &source, 401, "unreadable_settings").await;
        return Err(ApiError::Unauthorized);
    };
    // The URL the provider was given (Twilio signs it), not the Host header a client sets.
    let base_url = state.config.public_url.trim_end_matches('/');
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Inbound {
        headers: &headers,
        body: &body,
        base_url,
        path_and_query,
        now: state.clock.now(),
    };
    let is_get = method == Method::GET;
    if is_get {
        // Only subscription checks come as a GET; they carry no signature.
        return match handshake(&check, &req, true) {
            Some(reply) => {
                let response = ([(header::CONTENT_TYPE, reply.content_type)], reply.body);
                Ok(("handshake", response.into_response()))
            }
            None => Err(ApiError::NotFound),
        };
    }
    if let Err(rejection) = verify(&check, &req) {
        tracing::warn!(source = %source.id, reason = rejection.as_str(), "inbound request refused");
        note_rejection(&state, &source, 401, rejection.as_str()).await;
        return Err(ApiError::Unauthorized);
    }
    if let Some(reply) = handshake(&check, &req, false) {
        let response = ([(header::CONTENT_TYPE, reply.content_type)], reply.body);
        return Ok(("handshake", response.into_response()));
    }
    publish(&state, &source, &req).await
}

/// Publishes a verified request as a message of the source's application; the provider's
/// retry of an event already published gets the first one's id.
async fn publish(state: &AppState, source: &Source, req: &Inbound<'_>) -> ApiResult<Received> {
    let event = event_of(&source.kind, req);
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let payload = payload_of(content_type, req.body);
    let message = Message {
        event_id: event.event_id,
        ..Message::new(
            &source.app_id,
            &event.event_type,
            &payload,
            state.clock.now(),
        )
    };
    let new = NewMessage::from(message);
    match state.store.create_message(&new).await {
        Ok(Published::Created { message, .. }) => {
            let response = (StatusCode::OK, Json(json!({"id": message.id})));
            Ok(("accepted", response.into_response()))
        }
        Ok(Published::Existing(message)) => {
            let response = (StatusCode::OK, Json(json!({"id": message.id})));
            Ok(("duplicate", response.into_response()))
        }
        // The provider delivered this event before: acknowledged again as the first time
        // (with the same message id), stored once.
        Err(StoreError::Conflict(_)) => {
            let event_id = new.message.event_id.as_deref().unwrap_or_default();
            let first = state.store.get_message(&source.app_id, event_id).await?;
            let mut response = (StatusCode::OK, Json(json!({"id": first.id}))).into_response();
            response
                .headers_mut()
                .insert("herald-duplicate", HeaderValue::from_static("true"));
            Ok(("duplicate", response))
        }
        Err(e) => Err(e.into()),
    }
}

/// Notes a refusal in the source's log; failing to is logged, never answered.
async fn note_rejection(state: &AppState, source: &Source, status: u16, reason: &str) {
    let rejection = IngestRejection {
        id: IdKind::IngestLog.new_id(),
        source_id: source.id.clone(),
        status,
        reason: reason.to_owned(),
        created_at: state.clock.now(),
    };
    if let Err(e) = state.store.record_ingest_rejection(&rejection).await {
        tracing::warn!(error = %e, source = %source.id, "noting a refused inbound request failed");
    }
}

/// The source `source_id` if `token` opens it. Remembered for a moment (see `lookups`):
/// a provider sending thousands of requests a second must not cost a read each; a token
/// that does not match what is remembered is checked against the store.
async fn source_for(state: &AppState, source_id: &str, token: &str) -> ApiResult<Source> {
    let remembered = &state.lookups.sources;
    if let Some(source) = remembered.get(&source_id.to_owned()) {
        if token_matches(state, &source, token) {
            return Ok(source);
        }
    }
    let stamp = remembered.stamp();
    match state.store.get_source(source_id).await {
        Ok(source) => {
            remembered.put(source_id.to_owned(), source.clone(), stamp);
            if token_matches(state, &source, token) {
                Ok(source)
            } else {
                Err(ApiError::NotFound)
            }
        }
        Err(StoreError::NotFound) => Err(ApiError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Whether `given` is the source's token, or its previous one still in its overlap.
fn token_matches(state: &AppState, source: &Source, given: &str) -> bool {
    let equal = |a: &str| same_bytes(a.as_bytes(), given.as_bytes());
    let previous_valid = source
        .previous_token_expires_at
        .is_some_and(|until| state.clock.now() < until);
    equal(&source.token) || (previous_valid && source.previous_token.as_deref().is_some_and(equal))
}

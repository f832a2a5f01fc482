//! `GET /api/v1/app/{app_id}/listen` (a Herald extension): the WebSocket `herald listen
//! --server` opens. The session attaches to the app's `listen://NAME` endpoint, created on
//! first use so its secret is the same each time; the dispatcher delivers to it as to any
//! endpoint (see `herald_delivery::destinations::listen`), and this module carries the
//! deliveries out as frames and the CLI's answers back. The frames are
//! [`herald_core::listen`]'s.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use herald_core::listen::{
    endpoint_uid, stale_before, valid_name, ClientFrame, ServerFrame, SCHEME, SESSION_RENEW_EVERY,
};
use herald_core::model::{Application, Capability, Endpoint};
use herald_core::store::ListenSessionAt;
use herald_core::StoreError;
use herald_delivery::destinations::listen::{ListenDelivery, ListenReply, Session};
use herald_delivery::operational;
use serde::Deserialize;
use tokio::sync::oneshot;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{hash_token, Caller};
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::ApiQuery;
use crate::http::v1::endpoint_types::validate;
use crate::state::AppState;

/// How often Herald pings the CLI; a CLI that sends nothing (not even a pong) for three
/// of these is taken for gone.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENT_FOR: Duration = Duration::from_secs(45);

/// Which session, and what it receives.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListenQuery {
    /// The session's name: letters, digits and hyphens. One endpoint per application and name.
    name: String,
    /// Event types to receive (repeat the parameter); all when absent.
    #[serde(default)]
    filter_types: Option<Vec<String>>,
    /// Channels to receive (repeat the parameter); all when absent.
    #[serde(default)]
    channels: Option<Vec<String>>,
    /// Take the name over from a session still attached.
    #[serde(default)]
    force: bool,
}

/// Attach a `herald listen` session: a WebSocket over which the application's messages are
/// delivered to the CLI (a Herald extension; frames in `herald_core::listen`).
#[utoipa::path(get, path = "/app/{app_id}/listen", tag = "Listen",
    params(("app_id" = String, Path), ListenQuery),
    responses((status = 101, description = "The WebSocket; the first frame is `ready`"),
        (status = 400, body = HttpErrorOut, description = "Not a WebSocket upgrade"),
        (status = 404, body = HttpErrorOut),
        (status = 409, body = HttpErrorOut, description = "`session_in_use`: another session has this name"),
        (status = 422, body = HttpValidationError)))]
async fn listen(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    query: Result<ApiQuery<ListenQuery>, ApiError>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // The caller's access first: a token of another application learns nothing, not even
    // that its query was malformed.
    let app = state.app_for(&caller, &app_id).await?;
    // A session creates an endpoint and shows its secret.
    caller.require(Capability::ManageEndpoint)?;
    caller.require(Capability::ViewEndpointSecret)?;
    let ApiQuery(query) = query?;
    if !valid_name(&query.name) {
        return Err(ApiError::invalid(
            "name",
            "a session name is 1 to 64 letters, digits and hyphens, not starting or ending with one",
        ));
    }
    let upgrade = upgrade.map_err(|e| ApiError::BadRequest {
        code: "websocket_required",
        detail: format!("This route is a WebSocket for `herald listen --server`: {e}."),
    })?;
    // Only this node's dispatcher delivers to a session attached here.
    if state.dispatcher_running.is_none() {
        return Err(ApiError::ConflictWith {
            code: "dispatch_off",
            detail: "This node does not deliver (delivery.dispatch = false): attach to one \
                     that does."
                .into(),
        });
    }
    // Checked again while the session lasts: revoking the token ends it.
    let token_hash = bearer_hash(&headers);
    let endpoint = session_endpoint(&state, &app, &query).await?;
    let session = attach(&state, &endpoint.id, query.force).await?;
    // Attached: what the CLI asked for is now this session's to set.
    let endpoint = bring_up_to_date(&state, &app, endpoint, &query).await?;
    let live = Live {
        state,
        endpoint,
        token_hash,
    };
    Ok(upgrade.on_upgrade(move |socket| serve(live, session, socket)))
}

/// The hash of the bearer token a request came with (empty without one).
fn bearer_hash(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, token)| hash_token(token.trim()))
        .unwrap_or_default()
}

/// Attaches a session to `endpoint_id` on this node and holds it for the cluster: a
/// `session_in_use` conflict if another session has it here or on another node (unless
/// `force` takes it over).
async fn attach(state: &AppState, endpoint_id: &str, force: bool) -> ApiResult<Session> {
    let in_use = |detail: String| ApiError::ConflictWith {
        code: "session_in_use",
        detail,
    };
    let mut session = state
        .listen_sessions
        .attach(endpoint_id, force)
        .map_err(|e| in_use(e.to_string()))?;
    // On a cluster, the name may be held on another node; dropping `session` detaches it
    // here again.
    if !hold(state, endpoint_id, force).await? {
        return Err(in_use(
            "another `herald listen` session is attached under this name, on another Herald \
             node; stop it, or take it over with --force"
                .into(),
        ));
    }
    // Held: let go when it detaches, however it does (this request failing included).
    session.on_detach(let_go(state, endpoint_id));
    Ok(session)
}

/// Tells the nodes sharing the store that this one holds the session of `endpoint_id`
/// (again); `false` if another node does and `take_over` is not set.
async fn hold(state: &AppState, endpoint_id: &str, take_over: bool) -> ApiResult<bool> {
    let now = state.clock.now();
    let at = ListenSessionAt {
        endpoint_id,
        node: state.listen_sessions.node(),
        now,
        stale_before: stale_before(now),
    };
    Ok(state.store.hold_listen_session(at, take_over).await?)
}

/// What lets the other nodes know this one no longer holds the session of `endpoint_id`,
/// run as it detaches (from a `Drop`, so in a task of its own). A node that stops without
/// it leaves a word that goes stale (`SESSION_STALE_AFTER`).
fn let_go(state: &AppState, endpoint_id: &str) -> impl FnOnce() + Send + 'static {
    let store = state.store.clone();
    let node = state.listen_sessions.node().to_owned();
    let endpoint_id = endpoint_id.to_owned();
    move || {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = store.drop_listen_session(&endpoint_id, &node).await {
                tracing::warn!(endpoint = %endpoint_id, error = %e, "could not let go of a listen session; its hold goes stale");
            }
        });
    }
}

/// The app's endpoint for this session name, created on first use. A uid `listen-NAME`
/// that belongs to an endpoint of another kind is not taken over.
async fn session_endpoint(
    state: &AppState,
    app: &Application,
    query: &ListenQuery,
) -> ApiResult<Endpoint> {
    let uid = endpoint_uid(&query.name);
    let found = match state.store.get_endpoint(&app.id, &uid).await {
        Ok(endpoint) => Some(endpoint),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(endpoint) = found {
        if !endpoint.url.starts_with(&format!("{SCHEME}://")) {
            return Err(ApiError::ConflictWith {
                code: "uid_taken",
                detail: format!(
                    "The endpoint with uid `{uid}` is not a listen endpoint; choose another --name."
                ),
            });
        }
        return Ok(endpoint);
    }
    let now = state.clock.now();
    let mut endpoint = Endpoint::new(&app.id, format!("{SCHEME}://{}", query.name), now);
    endpoint.uid = Some(uid);
    endpoint.description = format!("herald listen session `{}`", query.name);
    endpoint.filter_types = query.filter_types.clone();
    endpoint.channels = query.channels.clone();
    validate(state, &endpoint).await?;
    state.store.create_endpoint(&endpoint).await?;
    let ops = &state.operational;
    ops.endpoint_changed(operational::ENDPOINT_CREATED, app, &endpoint)
        .await;
    Ok(endpoint)
}

/// The endpoint with the session's filters, enabled again if it was disabled.
async fn bring_up_to_date(
    state: &AppState,
    app: &Application,
    read: Endpoint,
    query: &ListenQuery,
) -> ApiResult<Endpoint> {
    let mut endpoint = read.clone();
    endpoint.filter_types = query.filter_types.clone();
    endpoint.channels = query.channels.clone();
    endpoint.disabled = false;
    if endpoint == read {
        return Ok(endpoint);
    }
    if read.disabled {
        endpoint.failing_since = None;
    }
    endpoint.updated_at = state.clock.now();
    validate(state, &endpoint).await?;
    state
        .store
        .update_endpoint(&endpoint, read.updated_at)
        .await?;
    let ops = &state.operational;
    ops.endpoint_changed(operational::ENDPOINT_UPDATED, app, &endpoint)
        .await;
    Ok(endpoint)
}

/// What a running session needs besides its socket.
struct Live {
    state: AppState,
    endpoint: Endpoint,
    /// The hash of the bearer token it attached with.
    token_hash: String,
}

impl Live {
    /// Whether the token the session attached with still holds (not revoked, not expired).
    /// A database that does not answer is no reason to end it.
    async fn token_holds(&self) -> bool {
        match self.state.store.find_token(&self.token_hash).await {
            Ok(Some(token)) => token
                .expires_at
                .is_none_or(|at| at > self.state.clock.now()),
            Ok(None) => false,
            Err(_) => true,
        }
    }
}

/// Runs one attached session until the CLI goes, falls silent, or is taken over.
async fn serve(live: Live, mut session: Session, mut socket: WebSocket) {
    let (state, endpoint) = (&live.state, &live.endpoint);
    if greet(state, endpoint, &mut socket).await.is_err() {
        return;
    }
    tracing::info!(endpoint = %endpoint.id, "herald listen session attached");
    let mut waiting = Waiting::default();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut renew = tokio::time::interval(SESSION_RENEW_EVERY);
    let mut heard = tokio::time::Instant::now();
    let ended = loop {
        tokio::select! {
            delivery = session.deliveries.recv() => {
                let Some(delivery) = delivery else {
                    break "another session took this name over";
                };
                if waiting.forward(&mut socket, delivery).await.is_err() {
                    break "the connection failed";
                }
            }
            received = socket.recv() => {
                heard = tokio::time::Instant::now();
                match received {
                    Some(Ok(Message::Text(text))) => waiting.answer(&text),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "the CLI disconnected",
                    Some(Ok(_)) => {} // pings, pongs
                }
            }
            _ = renew.tick() => match hold(state, &endpoint.id, false).await {
                Ok(true) => {}
                Ok(false) => break "another session took this name over on another node",
                // The database is away: the session goes on; other nodes will see the
                // word go stale and deliver as if no node held it.
                Err(e) => tracing::warn!(endpoint = %endpoint.id, error = %e, "could not renew a listen session's hold"),
            },
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    break "the CLI fell silent";
                }
                if !live.token_holds().await {
                    break "its token was revoked or expired";
                }
                waiting.forget_given_up();
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break "the connection failed";
                }
            }
        }
    };
    tracing::info!(endpoint = %endpoint.id, why = ended, "herald listen session detached");
    let close = CloseFrame {
        code: axum::extract::ws::close_code::AWAY,
        reason: ended.into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
    // Dropping `session` detaches it (and lets the other nodes know, unless another
    // session replaced it here); the attempts still waiting see it end.
}

/// Tells the CLI it is attached (with what it needs to check signatures), and makes the
/// endpoint's retries that wait for a later slot due now that someone listens again.
async fn greet(
    state: &AppState,
    endpoint: &Endpoint,
    socket: &mut WebSocket,
) -> Result<(), axum::Error> {
    let ready = ServerFrame::Ready {
        endpoint_id: endpoint.id.clone(),
        secret: endpoint.secret.verification_key(),
        filter_types: endpoint.filter_types.clone(),
    };
    send(socket, &ready).await?;
    let now = state.clock.now();
    if let Err(e) = state.store.retry_now(&endpoint.id, now).await {
        tracing::warn!(endpoint = %endpoint.id, error = %e, "could not hasten a listen session's retries");
    }
    Ok(())
}

/// The attempts forwarded to the CLI that wait for its answer, by the number they were
/// sent with.
#[derive(Default)]
struct Waiting {
    replies: HashMap<u64, oneshot::Sender<ListenReply>>,
    last: u64,
}

impl Waiting {
    /// Sends an attempt to the CLI, numbered, and waits for its answer.
    async fn forward(
        &mut self,
        socket: &mut WebSocket,
        delivery: ListenDelivery,
    ) -> Result<(), axum::Error> {
        self.last += 1;
        let frame = ServerFrame::Deliver {
            attempt_id: self.last,
            msg_id: delivery.msg_id,
            event_type: delivery.event_type,
            method: delivery.method,
            headers: delivery.headers,
            body: delivery.body,
            timeout_ms: delivery.timeout.as_millis() as u64,
        };
        send(socket, &frame).await?;
        self.replies.insert(self.last, delivery.reply);
        Ok(())
    }

    /// Hands a result frame from the CLI to the attempt waiting for it.
    fn answer(&mut self, text: &str) {
        match serde_json::from_str(text) {
            Ok(ClientFrame::Result {
                attempt_id,
                status,
                headers,
                body,
                error,
            }) => {
                if let Some(reply) = self.replies.remove(&attempt_id) {
                    let _ = reply.send(ListenReply {
                        status,
                        headers,
                        body,
                        error,
                    });
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "a listen session sent a frame Herald does not read")
            }
        }
    }

    /// Forgets the attempts that gave up waiting (their deadline passed).
    fn forget_given_up(&mut self) {
        self.replies.retain(|_, reply| !reply.is_closed());
    }
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).expect("frames serialize");
    socket.send(Message::Text(text.into())).await
}

/// The listen route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(listen))
}

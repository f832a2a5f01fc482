//! `listen://NAME` endpoints: the sessions `herald listen --server` opens. The API's
//! WebSocket route attaches a session here; an attempt for the endpoint becomes a frame on
//! that socket, and what the developer's local server answered becomes the attempt's
//! outcome, so the log, statistics and retries work as for an HTTP endpoint.
//!
//! A session lives on the node whose API accepted its WebSocket. On a cluster the store
//! keeps which node that is (`Queue::hold_listen_session`): the other nodes leave the
//! endpoint's deliveries to it, and one that claimed such a delivery anyway (before it
//! heard) gives it back unattempted. Where no node holds the session, an attempt records
//! `listener_offline` and the delivery is retried on its schedule.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest, Destination};
use herald_core::ids::IdKind;
use herald_core::listen::valid_name;
use herald_core::model::AttemptErrorKind;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::http::{self, HttpDestination};

/// How many deliveries may wait for a session's socket before attempts are refused as
/// `listener_offline` (the CLI answers one at a time; more would only time out).
const SESSION_QUEUE: usize = 64;

/// One attempt handed to a session's socket, and where its answer goes.
#[derive(Debug)]
pub struct ListenDelivery {
    pub msg_id: String,
    pub event_type: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// How long the attempt waits for the answer.
    pub timeout: Duration,
    pub reply: oneshot::Sender<ListenReply>,
}

/// What the CLI reported for one delivery.
#[derive(Debug, Clone, Default)]
pub struct ListenReply {
    /// The local server's status; `None` when the CLI could not reach it.
    pub status: Option<u16>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// Why the local server was not reached.
    pub error: Option<String>,
}

/// The sessions attached to this node, by endpoint id.
#[derive(Clone)]
pub struct ListenSessions {
    attached: Arc<Mutex<HashMap<String, Attached>>>,
    next_id: Arc<AtomicU64>,
    /// This process's name among the nodes sharing the store, new at each start.
    node: Arc<str>,
}

impl std::fmt::Debug for ListenSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenSessions")
            .field("node", &self.node)
            .field("attached", &self.count())
            .finish()
    }
}

impl Default for ListenSessions {
    fn default() -> Self {
        let random = IdKind::Task.new_id();
        Self {
            attached: Arc::default(),
            next_id: Arc::default(),
            node: format!("node_{}", random.trim_start_matches("qtask_")).into(),
        }
    }
}

/// One attached session: which one (a session that took over has another id), and its queue.
struct Attached {
    session: u64,
    deliveries: mpsc::Sender<ListenDelivery>,
}

/// A session attached to an endpoint; dropping it detaches it.
pub struct Session {
    pub endpoint_id: String,
    id: u64,
    sessions: ListenSessions,
    /// The attempts to forward; ends when another session takes the endpoint over.
    pub deliveries: mpsc::Receiver<ListenDelivery>,
    /// Run when it detaches while still the endpoint's session here (not replaced).
    on_detach: Option<Box<dyn FnOnce() + Send>>,
}

impl Session {
    /// Runs `then` when this session detaches (however that happens: the socket closes, the
    /// request fails before the upgrade), unless another session has replaced it here
    /// first, whose state `then` must not undo.
    pub fn on_detach(&mut self, then: impl FnOnce() + Send + 'static) {
        self.on_detach = Some(Box::new(then));
    }
}

/// Another session is attached to the endpoint.
#[derive(Debug, thiserror::Error)]
#[error("another `herald listen` session is attached under this name; stop it, or take it over with --force")]
pub struct SessionInUse;

impl ListenSessions {
    /// Attaches a session to `endpoint_id`; one already attached is replaced only when
    /// `force` is set.
    pub fn attach(&self, endpoint_id: &str, force: bool) -> Result<Session, SessionInUse> {
        let mut attached = self.attached.lock().expect("listen sessions lock");
        if attached.contains_key(endpoint_id) && !force {
            return Err(SessionInUse);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, deliveries) = mpsc::channel(SESSION_QUEUE);
        // Replacing the entry drops the old sender: the old session's socket closes.
        let entry = Attached {
            session: id,
            deliveries: sender,
        };
        attached.insert(endpoint_id.to_owned(), entry);
        Ok(Session {
            endpoint_id: endpoint_id.to_owned(),
            id,
            sessions: self.clone(),
            deliveries,
            on_detach: None,
        })
    }

    /// This process's name among the nodes sharing the store.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How many sessions are attached to this node.
    pub fn count(&self) -> usize {
        self.attached.lock().expect("listen sessions lock").len()
    }

    /// Whether a session is attached to `endpoint_id` on this node.
    pub fn is_attached(&self, endpoint_id: &str) -> bool {
        let attached = self.attached.lock().expect("listen sessions lock");
        attached.contains_key(endpoint_id)
    }

    fn sender(&self, endpoint_id: &str) -> Option<mpsc::Sender<ListenDelivery>> {
        let attached = self.attached.lock().expect("listen sessions lock");
        attached.get(endpoint_id).map(|a| a.deliveries.clone())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut attached = self.sessions.attached.lock().expect("listen sessions lock");
        // Only its own entry: a session that took over stays attached.
        if attached.get(&self.endpoint_id).map(|a| a.session) != Some(self.id) {
            return;
        }
        attached.remove(&self.endpoint_id);
        drop(attached);
        if let Some(then) = self.on_detach.take() {
            then();
        }
    }
}

/// Checks a `listen://NAME` URL.
pub fn check(url: &Url) -> Result<(), String> {
    let name_ok = url.host_str().is_some_and(valid_name);
    if !name_ok || !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(
            "a listen endpoint's URL is `listen://NAME`, NAME being letters, digits \
                    and hyphens; `herald listen --server` creates it"
                .into(),
        );
    }
    Ok(())
}

/// Delivers over the socket of the session attached to the endpoint.
pub struct ListenDestination {
    sessions: ListenSessions,
    /// Signs exactly as an HTTP delivery would be signed.
    http: Arc<HttpDestination>,
    timeout: Duration,
}

impl ListenDestination {
    pub fn new(sessions: ListenSessions, http: Arc<HttpDestination>, timeout: Duration) -> Self {
        Self {
            sessions,
            http,
            timeout,
        }
    }

    fn offline(detail: &str) -> DeliveryOutcome {
        DeliveryError::new(AttemptErrorKind::ListenerOffline, detail).into()
    }
}

#[async_trait]
impl Destination for ListenDestination {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        let Some(session) = self.sessions.sender(&req.endpoint.id) else {
            return Self::offline("no `herald listen` session is attached to this endpoint");
        };
        let headers = self.http.headers(req);
        let recorded = http::recorded_request_headers(&headers, req);
        let method = req.rendered.as_ref().and_then(|r| r.method.clone());
        let (reply, answer) = oneshot::channel();
        let delivery = ListenDelivery {
            msg_id: req.msg_id.clone(),
            event_type: req.event_type.clone(),
            method: method.unwrap_or_else(|| "POST".to_owned()),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_owned(), value)
                })
                .collect(),
            body: req.body().to_owned(),
            timeout: self.timeout,
            reply,
        };
        if session.try_send(delivery).is_err() {
            return Self::offline("the `herald listen` session is gone or has too much waiting");
        }
        let mut outcome = match tokio::time::timeout(self.timeout, answer).await {
            Err(_) => DeliveryError::new(
                AttemptErrorKind::Timeout,
                format!(
                    "the `herald listen` session did not answer within {:?}",
                    self.timeout
                ),
            )
            .into(),
            Ok(Err(_)) => Self::offline("the `herald listen` session ended before answering"),
            Ok(Ok(reply)) => self.outcome(reply, req),
        };
        outcome.request_headers = recorded;
        outcome
    }
}

impl ListenDestination {
    /// The attempt's outcome from the CLI's report, judged as an HTTP response is.
    fn outcome(&self, reply: ListenReply, req: &DeliveryRequest) -> DeliveryOutcome {
        let Some(status) = reply.status else {
            let why = reply.error.unwrap_or_default();
            return DeliveryError::new(
                AttemptErrorKind::Connection,
                format!("`herald listen` could not reach its local server: {why}"),
            )
            .into();
        };
        let limit = self.http.max_response_bytes();
        let mut body = reply.body;
        let body_truncated = body.len() > limit;
        if body_truncated {
            let mut cut = limit;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        let retry_after = reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| http::parse_retry_after(v, req.attempted_at));
        let error = (!(200..300).contains(&status)).then(|| {
            DeliveryError::new(
                AttemptErrorKind::HttpStatus,
                format!("the local server answered {status}"),
            )
        });
        DeliveryOutcome {
            status_code: Some(status),
            headers: reply.headers,
            body,
            body_truncated,
            error,
            retry_after,
            ..DeliveryOutcome::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_session_per_endpoint_unless_forced() {
        let sessions = ListenSessions::default();
        let first = sessions.attach("ep_1", false).unwrap();
        assert!(sessions.attach("ep_1", false).is_err());
        let other = sessions.attach("ep_2", false).unwrap();
        assert_eq!(sessions.count(), 2);

        // Forced: the first session's queue ends, and its drop leaves the new one attached.
        let second = sessions.attach("ep_1", true).unwrap();
        let mut first = first;
        assert_eq!(
            first.deliveries.try_recv().unwrap_err(),
            mpsc::error::TryRecvError::Disconnected
        );
        drop(first);
        assert!(sessions.sender("ep_1").is_some());

        // Detached when it ends: the name is free again.
        drop(second);
        assert!(sessions.sender("ep_1").is_none());
        assert!(sessions.attach("ep_1", false).is_ok());
        drop(other);
    }

    #[test]
    fn only_listen_name_urls_are_listen_endpoints() {
        assert!(check(&Url::parse("listen://dev-laptop").unwrap()).is_ok());
        for bad in [
            "listen://",
            "listen://a/b",
            "listen://a?x=1",
            "listen://a_b",
        ] {
            assert!(check(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }
}

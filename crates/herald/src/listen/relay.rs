//! `herald listen --server`: a WebSocket to Herald's `/app/{app_id}/listen` route, over
//! which the dispatcher delivers the application's messages. Each is forwarded to a server
//! on this machine, and its answer sent back as the attempt's outcome; so the attempt log,
//! statistics and retries are those of any endpoint. The frames are `herald_core::listen`'s.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use herald_core::listen::{ClientFrame, ServerFrame};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Herald pings every 15 s: this long without a frame means the connection is dead.
const SILENT_FOR: Duration = Duration::from_secs(45);
/// Waits between reconnections; the last repeats.
const BACKOFF: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(5),
];
/// The longest the local server has to answer (less when Herald waits less).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the local server's answer goes back to Herald's attempt log.
const MAX_BODY: usize = 16 * 1024;

/// What the session asks for, from the command line.
pub struct Session {
    /// `…/api/v1`, without a trailing slash.
    pub server: Url,
    pub token: String,
    pub app: String,
    pub name: String,
    pub events: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub force: bool,
    pub since: Option<Duration>,
    pub forward_to: Option<Url>,
    pub print_json: bool,
}

/// The URL to forward to, refused unless it is on this machine or `allow_external` is set:
/// a session must not turn a developer's CLI into a way into their network.
pub async fn forward_target(target: &str, allow_external: bool) -> anyhow::Result<Url> {
    let url = Url::parse(target).with_context(|| format!("FORWARD_TO {target}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("FORWARD_TO takes an http:// or https:// URL, not {target}");
    }
    if allow_external {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() || addresses.iter().any(|ip| !ip.is_loopback()) {
        bail!(
            "refusing to forward to {host}: it is not this machine (a loopback address); \
             pass --allow-external to forward elsewhere"
        );
    }
    Ok(url)
}

/// Attaches, forwards until the connection ends, and reconnects with back-off; returns
/// only on an error reconnecting cannot mend (a wrong token, app or name in use).
pub async fn run(session: Session) -> anyhow::Result<()> {
    let session = Arc::new(session);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut secret: Option<String> = None;
    let mut failures = 0usize;
    loop {
        match attach(&session).await {
            Ok((socket, ready)) => {
                failures = 0;
                let first = secret.is_none();
                announce(&session, &ready, &mut secret);
                if first {
                    if let (Some(since), ServerFrame::Ready { endpoint_id, .. }) =
                        (session.since, &ready)
                    {
                        send_missed(&session, &client, endpoint_id, since).await?;
                    }
                }
                let ended = forward(session.clone(), &client, socket).await;
                eprintln!(
                    "disconnected from {}: {ended}; reconnecting",
                    session.server
                );
            }
            // Refusals are final, except, once attached before, a name still held by this
            // CLI's previous connection (the server has not yet seen it close) and a server
            // or proxy that is busy or restarting.
            Err(Attach::Refused { code, detail }) if secret.is_none() || !passing(&code) => {
                bail!("{detail} ({code})");
            }
            Err(Attach::Refused { detail, .. }) => eprintln!("{detail}; retrying"),
            Err(Attach::Failed(e)) if secret.is_none() => {
                return Err(e).context(format!("connecting to {}", session.server));
            }
            Err(Attach::Failed(e)) => eprintln!("reconnecting to {}: {e:#}", session.server),
        }
        tokio::time::sleep(BACKOFF[failures.min(BACKOFF.len() - 1)]).await;
        failures += 1;
    }
}

enum Attach {
    /// The server answered no (its `{code, detail}`).
    Refused { code: String, detail: String },
    /// No answer: the network, or a server that is not Herald.
    Failed(anyhow::Error),
}

/// Opens the WebSocket and reads the `ready` frame.
async fn attach(session: &Session) -> Result<(Socket, ServerFrame), Attach> {
    let mut url = session.server.clone();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .expect("ws and wss are valid schemes");
    url.path_segments_mut()
        .expect("an http URL has a path")
        .extend(["app", &session.app, "listen"]);
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("name", &session.name);
        for t in session.events.iter().flatten() {
            query.append_pair("filterTypes", t);
        }
        for c in session.channels.iter().flatten() {
            query.append_pair("channels", c);
        }
        if session.force {
            query.append_pair("force", "true");
        }
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Attach::Failed(e.into()))?;
    let bearer = format!("Bearer {}", session.token)
        .parse()
        .map_err(|_| Attach::Refused {
            code: "bad_token".into(),
            detail: "the token has characters a header cannot carry".into(),
        })?;
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(connected) => connected,
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status();
            let body: serde_json::Value = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            let text = |key: &str, or: String| body[key].as_str().map(str::to_owned).unwrap_or(or);
            return Err(Attach::Refused {
                code: text("code", status.as_u16().to_string()),
                detail: text("detail", format!("the server answered {status}")),
            });
        }
        // Its message already names the cause (`IO error: Connection refused`); as a
        // source too, the cause would be printed twice.
        Err(e) => return Err(Attach::Failed(anyhow::anyhow!("{e}"))),
    };
    let first = tokio::time::timeout(SILENT_FOR, socket.next()).await;
    match first {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str(&text) {
            Ok(ready @ ServerFrame::Ready { .. }) => Ok((socket, ready)),
            _ => Err(Attach::Failed(anyhow::anyhow!(
                "the server's first frame was not `ready`"
            ))),
        },
        _ => Err(Attach::Failed(anyhow::anyhow!(
            "the server sent no `ready` frame"
        ))),
    }
}

/// Prints what the session is attached to; the secret again only if it changed.
fn announce(session: &Session, ready: &ServerFrame, known: &mut Option<String>) {
    let ServerFrame::Ready {
        endpoint_id,
        secret,
        filter_types,
    } = ready
    else {
        return;
    };
    if known.as_deref() == Some(secret.as_str()) {
        eprintln!("reattached session `{}` ({endpoint_id})", session.name);
        return;
    }
    let types = match filter_types {
        Some(types) => types.join(", "),
        None => "every event type".to_owned(),
    };
    println!(
        "Ready: app {}, session `{}` (endpoint {endpoint_id}), receiving {types}",
        session.app, session.name
    );
    println!("Signing secret: {secret} (the same each time for this name)");
    match &session.forward_to {
        Some(url) => println!("Forwarding to {url}"),
        None => println!("Printing each message and answering 200 (give FORWARD_TO to forward)"),
    }
    *known = Some(secret.clone());
}

/// Asks Herald to send the session what it missed in the past `since`: messages from
/// before the endpoint took them in, and those whose attempts failed.
async fn send_missed(
    session: &Session,
    client: &reqwest::Client,
    endpoint_id: &str,
    since: Duration,
) -> anyhow::Result<()> {
    let since = chrono::Utc::now() - chrono::Duration::from_std(since)?;
    let body = serde_json::json!({ "since": since });
    let mut sent = 0;
    for task in ["replay-missing", "recover"] {
        let url = format!(
            "{}/app/{}/endpoint/{endpoint_id}/{task}",
            session.server, session.app
        );
        let response = client
            .post(&url)
            .bearer_auth(&session.token)
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("--since: {task} answered {}", response.status());
        }
        let task: serde_json::Value = response.json().await?;
        sent += task["replayed"]
            .as_u64()
            .or(task["recovered"].as_u64())
            .unwrap_or(0);
    }
    eprintln!("--since: {sent} earlier messages on their way");
    Ok(())
}

/// Whether a refusal may pass by itself: the name held by a connection of ours that is
/// closing, or a server (or proxy) that is busy or restarting.
fn passing(code: &str) -> bool {
    matches!(
        code,
        "session_in_use" | "service_unavailable" | "rate_limited"
    ) || code.starts_with('5')
}

/// Forwards each delivery, several at once as Herald sends them, and answers each, until
/// the connection ends; returns why it did.
async fn forward(session: Arc<Session>, client: &reqwest::Client, socket: Socket) -> String {
    let (mut to_herald, mut from_herald) = socket.split();
    let (answered, mut answers) = mpsc::unbounded_channel::<ClientFrame>();
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(SILENT_FOR, from_herald.next()) => frame,
            Some(answer) = answers.recv() => {
                let text = serde_json::to_string(&answer).expect("frames serialize");
                if let Err(e) = to_herald.send(Message::Text(text.into())).await {
                    return e.to_string();
                }
                continue;
            }
        };
        let frame = match frame {
            Err(_) => return "the server fell silent".into(),
            Ok(None) => return "the connection closed".into(),
            Ok(Some(Err(e))) => return e.to_string(),
            Ok(Some(Ok(Message::Close(close)))) => {
                return close.map_or("the server closed the connection".into(), |c| {
                    c.reason.to_string()
                })
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue, // pings are answered by the library
        };
        let Ok(delivery @ ServerFrame::Deliver { .. }) = serde_json::from_str(&frame) else {
            continue;
        };
        let (session, client, answered) = (session.clone(), client.clone(), answered.clone());
        tokio::spawn(async move {
            let _ = answered.send(handle(&session, &client, delivery).await);
        });
    }
}

/// Forwards (or prints) one delivery; the result frame to answer it with.
async fn handle(session: &Session, client: &reqwest::Client, delivery: ServerFrame) -> ClientFrame {
    let ServerFrame::Deliver {
        attempt_id,
        msg_id,
        event_type,
        method,
        headers,
        body,
        timeout_ms,
    } = delivery
    else {
        unreachable!("only deliveries are handled");
    };
    let started = Instant::now();
    // An answer after Herald stopped waiting would not be heard: give up a little before.
    let deadline = Duration::from_millis(timeout_ms)
        .saturating_sub(Duration::from_millis(500))
        .min(FORWARD_TIMEOUT);
    let result = match &session.forward_to {
        Some(url) => {
            let request = (method.as_str(), &headers, body.clone(), deadline);
            let result = send_to(client, url, attempt_id, request).await;
            report(&msg_id, &event_type, &result, started.elapsed());
            result
        }
        None => ClientFrame::Result {
            attempt_id,
            status: Some(200),
            headers: BTreeMap::new(),
            body: String::new(),
            error: None,
        },
    };
    if session.print_json {
        let payload = serde_json::from_str::<serde_json::Value>(&body)
            .unwrap_or(serde_json::Value::String(body));
        let line = serde_json::json!({
            "msgId": msg_id, "eventType": event_type, "headers": headers, "payload": payload,
        });
        println!("{line}");
    } else if session.forward_to.is_none() {
        println!("── {event_type} {msg_id}\n{body}\n");
    }
    result
}

/// Sends one delivery (method, headers, body) to the local server; what it answered, as
/// the result frame of `attempt_id`.
async fn send_to(
    client: &reqwest::Client,
    url: &Url,
    attempt_id: u64,
    (method, headers, body, deadline): (&str, &BTreeMap<String, String>, String, Duration),
) -> ClientFrame {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut request = client
        .request(method, url.clone())
        .body(body)
        .timeout(deadline);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_owned(), value)
                })
                .collect();
            let bytes = response.bytes().await.unwrap_or_default();
            let cut = &bytes[..bytes.len().min(MAX_BODY)];
            ClientFrame::Result {
                attempt_id,
                status: Some(status),
                headers,
                body: String::from_utf8_lossy(cut).into_owned(),
                error: None,
            }
        }
        Err(e) => ClientFrame::Result {
            attempt_id,
            status: None,
            headers: BTreeMap::new(),
            body: String::new(),
            error: Some(describe(e)),
        },
    }
}

/// The reason a forward failed, without the URL (the user knows it).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        e.without_url().to_string()
    }
}

/// One line per forwarded delivery.
fn report(msg_id: &str, event_type: &str, result: &ClientFrame, took: Duration) {
    let ClientFrame::Result { status, error, .. } = result;
    let outcome = match (status, error) {
        (Some(status), _) => status.to_string(),
        (None, Some(error)) => format!("failed: {error}"),
        (None, None) => "failed".to_owned(),
    };
    eprintln!(
        "{event_type} {msg_id} → {outcome} ({} ms)",
        took.as_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_this_machine_is_a_forward_target_unless_allowed() {
        assert!(forward_target("http://127.0.0.1:3000/h", false)
            .await
            .is_ok());
        assert!(forward_target("http://[::1]:3000/h", false).await.is_ok());
        let refused = forward_target("http://10.0.0.1:9/h", false)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("--allow-external"),
            "{refused}"
        );
        assert!(forward_target("http://10.0.0.1:9/h", true).await.is_ok());
    }
}

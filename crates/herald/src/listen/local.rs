//! `herald listen` without `--server`: a local webhook receiver that prints what arrives
//! and checks its signature, for trying Herald out and debugging endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use herald_core::signing::VerificationKey;

/// What the receiver knows: the secret to verify with, and the status to answer.
struct Listener {
    secret: Option<VerificationKey>,
    status: StatusCode,
}

/// Runs the receiver until Ctrl-C.
pub async fn run(addr: SocketAddr, secret: Option<String>, status: u16) -> anyhow::Result<()> {
    let secret = secret
        .map(|s| VerificationKey::parse(&s))
        .transpose()
        .context("--secret takes the endpoint's whsec_… secret or its whpk_… public key")?;
    let status = StatusCode::from_u16(status)?;
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::new(Listener { secret, status }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "listening for webhooks on http://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or_default() })
        .await?;
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Whether one of the signatures in the header (`v1,` or `v1a,`) is the key's.
fn signature_matches(key: &VerificationKey, headers: &HeaderMap, body: &[u8]) -> bool {
    let id = header(headers, "webhook-id");
    let Ok(timestamp) = header(headers, "webhook-timestamp").parse::<i64>() else {
        return false;
    };
    key.verifies(id, timestamp, body, header(headers, "webhook-signature"))
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verdict = match &listener.secret {
        Some(secret) if signature_matches(secret, &headers, &body) => "signature verified",
        Some(_) => "SIGNATURE INVALID",
        None => "signature not checked (pass --secret whsec_… or whpk_…)",
    };
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    println!(
        "── webhook {} at {} ({verdict})\n{pretty}\n",
        header(&headers, "webhook-id"),
        header(&headers, "webhook-timestamp"),
    );
    listener.status
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::signing::EndpointSecret;

    #[test]
    fn matches_any_of_several_signatures() {
        let (secret, other) = (EndpointSecret::generate(), EndpointSecret::generate());
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", "1700000000".parse().unwrap());
        let both = format!(
            "{} {}",
            other.sign("msg_1", 1700000000, b"{}"),
            secret.sign("msg_1", 1700000000, b"{}")
        );
        headers.insert("webhook-signature", both.parse().unwrap());
        let key = VerificationKey::parse(&secret.verification_key()).unwrap();
        assert!(signature_matches(&key, &headers, b"{}"));
        assert!(!signature_matches(&key, &headers, b"{ }"));
    }
}

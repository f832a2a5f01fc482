//! `herald sign` and `herald verify`: the Standard Webhooks signature of a payload, and a
//! check of a received request's signature (Standard Webhooks, or an inbound provider's
//! scheme), for tests, docs and debugging a receiver.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use clap::{Args, ValueEnum};
use herald_core::signing::{EndpointSecret, VerificationKey};

/// What `herald sign` takes.
#[derive(Args)]
pub struct SignArgs {
    /// The endpoint's secret: `whsec_…` (HMAC-SHA256) or `whsk_…` (ed25519 signing key).
    #[arg(long)]
    secret: String,
    /// The message id (`webhook-id`).
    #[arg(long)]
    id: String,
    /// The Unix timestamp in seconds (`webhook-timestamp`).
    #[arg(long, allow_negative_numbers = true)]
    timestamp: i64,
    /// The payload: text, `@FILE`, or `-` (or nothing) for standard input.
    payload: Option<String>,
}

/// What `herald verify` takes.
#[derive(Args)]
#[command(
    after_help = "Prints `valid` and exits 0, or prints the first check that failed \
(missing_header, timestamp_out_of_tolerance, signature_mismatch, or the scheme's own) and exits 1. \
Usage errors exit 2."
)]
pub struct VerifyArgs {
    /// The secret: `whsec_…`, or `whpk_…` (an ed25519 endpoint's public key); the
    /// provider's signing secret for the other schemes.
    #[arg(long)]
    secret: String,
    /// Whose signature it is.
    #[arg(long, value_enum, default_value = "standard")]
    scheme: Scheme,
    /// The request's headers (and, after a blank line, its body) as captured: `Name: value`
    /// lines; a request line first is skipped.
    #[arg(long, value_name = "FILE")]
    headers_file: Option<PathBuf>,
    /// A header, `Name: value`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "HEADER")]
    headers: Vec<String>,
    /// Standard Webhooks: the `webhook-id`.
    #[arg(long)]
    id: Option<String>,
    /// Standard Webhooks: the `webhook-timestamp`.
    #[arg(long)]
    timestamp: Option<String>,
    /// Standard Webhooks: the `webhook-signature`.
    #[arg(long)]
    signature: Option<String>,
    /// How far the timestamp may be from now.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    tolerance: Duration,
    /// Do not check the timestamp (a captured request replayed later).
    #[arg(long)]
    ignore_timestamp: bool,
    /// The payload: text, `@FILE`, or `-` for standard input; the body of --headers-file
    /// when absent.
    payload: Option<String>,
}

/// The signature schemes `herald verify` checks.
#[derive(Clone, Copy, ValueEnum)]
enum Scheme {
    /// Standard Webhooks (Herald, Svix): `webhook-*` or `svix-*` headers.
    Standard,
    Github,
    Stripe,
    Slack,
    Shopify,
    Zoom,
}

/// What a command ended with when it is not an error: the verdict has been printed, only
/// the exit status is left to give.
#[derive(Debug)]
pub struct Verdict(pub u8);

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Verdict {}

/// Prints the signature header value of the payload.
pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let secret = EndpointSecret::parse(&args.secret)
        .context("--secret takes a whsec_… secret or a whsk_… signing key")?;
    let payload = read_payload(Some(args.payload.as_deref().unwrap_or("-")))?.unwrap_or_default();
    println!("{}", secret.sign(&args.id, args.timestamp, &payload));
    Ok(())
}

/// Checks a request's signature; prints `valid` (status 0) or the failed check (1). What
/// keeps the check from being made (a malformed secret, an unreadable file) is a usage
/// error: status 2, as clap gives for bad arguments.
pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    match check(args) {
        Ok(Ok(())) => {
            println!("valid");
            Ok(())
        }
        Ok(Err(failed)) => {
            println!("{failed}");
            Err(Verdict(1).into())
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(Verdict(2).into())
        }
    }
}

/// The first check the request fails, if any.
fn check(args: VerifyArgs) -> anyhow::Result<Result<(), &'static str>> {
    let (mut headers, captured_body) = match &args.headers_file {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            parse_captured(&text)?
        }
        None => (HeaderMap::new(), None),
    };
    for line in &args.headers {
        let (name, value) = header_line(line)
            .with_context(|| format!("--header takes `Name: value`, not {line:?}"))?;
        headers.insert(name, value);
    }
    let given = [
        ("webhook-id", &args.id),
        ("webhook-timestamp", &args.timestamp),
        ("webhook-signature", &args.signature),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from_str(value).context(name)?);
        }
    }
    let body = match read_payload(args.payload.as_deref())? {
        Some(body) => body,
        None => captured_body.unwrap_or_default(),
    };
    let now = chrono::Utc::now();
    let tolerance = if args.ignore_timestamp {
        Duration::from_secs(100 * 365 * 24 * 3600)
    } else {
        args.tolerance
    };
    match args.scheme {
        Scheme::Standard => standard(&args.secret, &headers, &body, now.timestamp(), tolerance),
        other => provider(other, &args.secret, &headers, &body, now, tolerance),
    }
}

/// Standard Webhooks, with `whsec_` or `whpk_` keys.
fn standard(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> anyhow::Result<Result<(), &'static str>> {
    let key = VerificationKey::parse(secret)
        .context("--secret takes a whsec_… secret or a whpk_… public key")?;
    let header = |name: &str| {
        [format!("webhook-{name}"), format!("svix-{name}")]
            .iter()
            .find_map(|n| headers.get(n.as_str()).and_then(|v| v.to_str().ok()))
            .map(str::to_owned)
    };
    let (Some(id), Some(timestamp), Some(signature)) =
        (header("id"), header("timestamp"), header("signature"))
    else {
        return Ok(Err("missing_header"));
    };
    let Ok(timestamp) = timestamp.trim().parse::<i64>() else {
        return Ok(Err("timestamp_out_of_tolerance"));
    };
    if now.abs_diff(timestamp) > tolerance.as_secs() {
        return Ok(Err("timestamp_out_of_tolerance"));
    }
    if !key.verifies(&id, timestamp, body, &signature) {
        return Ok(Err("signature_mismatch"));
    }
    Ok(Ok(()))
}

/// An inbound provider's scheme, checked as Herald's inbound sources check it.
fn provider(
    scheme: Scheme,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
    tolerance: Duration,
) -> anyhow::Result<Result<(), &'static str>> {
    let kind = scheme
        .to_possible_value()
        .expect("every scheme has a name")
        .get_name()
        .to_owned();
    let config = serde_json::json!({"secret": secret, "tolerance": tolerance.as_secs()});
    let verifier = herald_inbound::verifier(&kind, &config)
        .map_err(|e| anyhow::anyhow!("--secret for {kind}: {e}"))?;
    let request = herald_inbound::Inbound {
        headers,
        body,
        base_url: "",
        path_and_query: "",
        now,
    };
    Ok(herald_inbound::verify(&verifier, &request).map_err(|r| r.as_str()))
}

/// The payload argument's bytes: text, `@FILE`, or `-` for standard input; `None` when
/// there is no argument (standard input for `sign`, the captured body for `verify`).
pub fn read_payload(arg: Option<&str>) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match arg {
        None => None,
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes)?;
            Some(bytes)
        }
        Some(text) => match text.strip_prefix('@') {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {path}"))?),
            None => Some(text.as_bytes().to_vec()),
        },
    })
}

/// A captured request: `Name: value` lines (a request line first is skipped), then, after
/// a blank line, the body.
fn parse_captured(text: &[u8]) -> anyhow::Result<(HeaderMap, Option<Vec<u8>>)> {
    let split = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| {
            text.windows(sep.len())
                .position(|w| w == *sep)
                .map(|at| (at, sep.len()))
        })
        .min();
    let (head, body) = match split {
        Some((at, len)) => (&text[..at], Some(text[at + len..].to_vec())),
        None => (text, None),
    };
    let mut headers = HeaderMap::new();
    for (i, line) in String::from_utf8_lossy(head).lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || (i == 0 && line.contains(" HTTP/")) {
            continue;
        }
        let Some((name, value)) = header_line(line) else {
            bail!("the captured request has a line that is not `Name: value`: {line:?}");
        };
        headers.append(name, value);
    }
    Ok((headers, body.filter(|b| !b.is_empty())))
}

fn header_line(line: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = line.split_once(':')?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    let value = HeaderValue::from_str(value.trim()).ok()?;
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_request_gives_its_headers_and_body() {
        let raw = b"POST /hook HTTP/1.1\r\nwebhook-id: msg_1\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        let (headers, body) = parse_captured(raw).unwrap();
        assert_eq!(headers["webhook-id"], "msg_1");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body.as_deref(), Some(&b"{\"a\":1}"[..]));
        let (headers, body) = parse_captured(b"webhook-id: msg_2\n").unwrap();
        assert_eq!(headers["webhook-id"], "msg_2");
        assert_eq!(body, None);
    }

    #[test]
    fn standard_checks_come_in_order() {
        let secret = EndpointSecret::generate();
        let key = secret.verification_key();
        let mut headers = HeaderMap::new();
        let check = |h: &HeaderMap, body: &[u8], now: i64| {
            standard(&key, h, body, now, Duration::from_secs(300)).unwrap()
        };
        assert_eq!(check(&headers, b"{}", 1000), Err("missing_header"));
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", "1000".parse().unwrap());
        let signature = secret.sign("msg_1", 1000, b"{}");
        headers.insert("webhook-signature", signature.parse().unwrap());
        assert_eq!(check(&headers, b"{}", 1000), Ok(()));
        assert_eq!(check(&headers, b"{ }", 1000), Err("signature_mismatch"));
        assert_eq!(
            check(&headers, b"{}", 1601),
            Err("timestamp_out_of_tolerance")
        );
    }
}

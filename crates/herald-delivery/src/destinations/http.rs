//! HTTP webhooks: a signed POST of the payload (or of what the endpoint's template made of
//! it) to the endpoint's URL.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use async_trait::async_trait;
use herald_core::destination::{DeliveryError, DeliveryOutcome, DeliveryRequest, Destination};
use herald_core::model::{AttemptErrorKind, ClientIdentity, Endpoint};
use herald_core::network::AddressPolicy;
use herald_core::signing::signature_header;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::redirect::Policy;
use reqwest::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::oauth::Tokens;
use super::resolver::{BlockedAddress, GuardedResolver};
use super::tls::{self, EndpointTls};
use crate::settings::DeliveryConfig;
use crate::trace_context::outgoing_traceparent;

/// At most this many response headers are recorded.
const MAX_RECORDED_HEADERS: usize = 64;

/// Past this many endpoints with TLS settings of their own, their cached clients are
/// dropped and rebuilt as needed.
const MAX_TLS_CLIENTS: usize = 1_000;

/// Delivers over HTTP(S) with a shared keep-alive connection pool, and one more client per
/// endpoint TLS settings (a client certificate, its own CA, key pins), since a client
/// holds one TLS configuration.
pub struct HttpDestination {
    client: reqwest::Client,
    /// Clients with an endpoint's TLS settings, by [`EndpointTls::cache_key`].
    tls_clients: Mutex<HashMap<[u8; 32], reqwest::Client>>,
    /// The public roots and the operator's extra ones, for endpoints' own configurations.
    default_roots: rustls::RootCertStore,
    tokens: Tokens,
    config: DeliveryConfig,
    extra_roots: Vec<reqwest::Certificate>,
    policy: Arc<AddressPolicy>,
    max_response_bytes: usize,
    svix_headers: bool,
}

/// Whether `identity` is a certificate chain and key the HTTP client can present.
pub fn is_client_identity(identity: &ClientIdentity) -> bool {
    tls::client_identity(identity).is_ok()
}

/// Why `pem` cannot be an endpoint's server CA, if it cannot.
pub fn check_server_ca(pem: &str) -> Result<(), String> {
    tls::server_ca_roots(pem).map(drop)
}

impl HttpDestination {
    /// A destination configured by `[delivery]`.
    pub fn new(config: &DeliveryConfig) -> anyhow::Result<Self> {
        let policy = Arc::new(AddressPolicy::new(config.allowed_networks.clone()));
        let mut extra_roots = Vec::new();
        let mut extra_roots_der = Vec::new();
        for path in &config.extra_root_certificates {
            let pem = std::fs::read(path).with_context(|| {
                format!(
                    "reading delivery.extra_root_certificates {}",
                    path.display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
            extra_roots.extend(certs);
            let der = CertificateDer::pem_slice_iter(&pem);
            extra_roots_der.extend(der.filter_map(Result::ok));
        }
        let mut destination = Self {
            client: reqwest::Client::new(),
            tls_clients: Mutex::default(),
            default_roots: tls::default_roots(&extra_roots_der),
            tokens: Tokens::default(),
            config: config.clone(),
            extra_roots,
            policy,
            max_response_bytes: config.max_response_bytes,
            svix_headers: config.svix_headers,
        };
        destination.client = destination.build_client(None)?;
        Ok(destination)
    }

    /// A client with the shared settings; `tls`, an endpoint's own TLS configuration.
    fn build_client(&self, tls: Option<rustls::ClientConfig>) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.config.connect_timeout)
            .timeout(self.config.timeout)
            // A redirect could lead to an internal address; receivers must answer directly.
            .redirect(Policy::none())
            // A proxy would resolve the tenant's host itself, out of the guard's reach.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: self.policy.clone(),
                fixed: Arc::new(
                    (self.config.resolve.iter())
                        .map(|(host, ips)| (host.to_ascii_lowercase(), ips.clone()))
                        .collect(),
                ),
            }))
            .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")));
        match tls {
            Some(tls) => builder = builder.use_preconfigured_tls(tls),
            None => {
                for root in &self.extra_roots {
                    builder = builder.add_root_certificate(root.clone());
                }
            }
        }
        builder.build()
    }

    /// The client for this endpoint: the shared one, or one with its TLS settings.
    fn client_for(&self, endpoint: &Endpoint) -> Result<reqwest::Client, DeliveryError> {
        let Some(tls) = EndpointTls::of(endpoint) else {
            return Ok(self.client.clone());
        };
        let key = tls.cache_key();
        let mut clients = self.tls_clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let tls_error = |detail: String| DeliveryError::new(AttemptErrorKind::Tls, detail);
        let config = tls.client_config(&self.default_roots).map_err(tls_error)?;
        let client = self
            .build_client(Some(config))
            .map_err(|e| tls_error(format!("the endpoint's TLS settings are unusable: {e}")))?;
        if clients.len() >= MAX_TLS_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// The request's headers: custom and templated ones, then the signed Standard Webhooks
    /// ones, which always win.
    pub(super) fn headers(&self, req: &DeliveryRequest) -> HeaderMap {
        let timestamp = req.attempted_at.timestamp();
        let secrets = req.endpoint.signing_secrets(req.attempted_at);
        // What is signed is what is sent: a template's output, when there is one.
        let body = req.body().as_bytes();
        let signature = signature_header(secrets.iter().copied(), &req.msg_id, timestamp, body);
        let mut headers = HeaderMap::new();
        let rendered = req.rendered.as_ref();
        let templated = rendered.map(|r| &r.headers).into_iter().flatten();
        // Custom and templated headers first, so that the ones Herald sets always win.
        for (name, value) in req.endpoint.headers.iter().chain(templated) {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        }
        let content_type = rendered
            .and_then(|r| r.content_type.as_deref())
            .and_then(|t| HeaderValue::from_str(t).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_TYPE, content_type);
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        let timestamp = timestamp.to_string();
        // The trace the message was published in goes on, one step further.
        let traceparent = req.traceparent.as_deref();
        let onward = traceparent.and_then(|p| outgoing_traceparent(&tracing::Span::current(), p));
        if let Some(traceparent) = onward {
            set("traceparent", &traceparent);
        }
        set("webhook-id", &req.msg_id);
        set("webhook-timestamp", &timestamp);
        set("webhook-signature", &signature);
        if self.svix_headers {
            set("svix-id", &req.msg_id);
            set("svix-timestamp", &timestamp);
            set("svix-signature", &signature);
        }
        // The style the endpoint's receiver already verifies, if it asked for one.
        if let Some(scheme) = &req.endpoint.signature_scheme {
            let value = scheme.sign(secrets.iter().copied(), req.attempted_at.timestamp(), body);
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(scheme.header().as_bytes()),
                value.map(|v| HeaderValue::from_str(&v)),
            ) {
                headers.insert(name, value);
            }
        }
        headers
    }

    async fn send(
        &self,
        url: &str,
        req: &DeliveryRequest,
        headers: HeaderMap,
    ) -> Result<DeliveryOutcome, DeliveryError> {
        let url = Url::parse(url).map_err(|e| {
            DeliveryError::permanent(AttemptErrorKind::Other, format!("invalid URL: {e}"))
        })?;
        let method = match req.rendered.as_ref().and_then(|r| r.method.as_deref()) {
            None => reqwest::Method::POST,
            Some(m) => method(m).ok_or_else(|| {
                DeliveryError::permanent(
                    AttemptErrorKind::Template,
                    format!("the template's method `{m}` is not one of {METHODS:?}"),
                )
            })?,
        };
        if let Some(refused) = refused_literal(&self.policy, &url) {
            return Err(refused);
        }
        let client = self.client_for(&req.endpoint)?;
        let mut response = self
            .send_with_token(&client, method, url, req, headers)
            .await?;
        let status = response.status();
        let headers = recorded_headers(response.headers());
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, req.attempted_at));
        let mut body = Vec::new();
        // A body that fails midway still leaves the status, which decides the outcome.
        // Reading one byte past the limit tells a cut body from one exactly that long.
        while body.len() <= self.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let body_truncated = body.len() > self.max_response_bytes;
        body.truncate(self.max_response_bytes);
        let error = (!status.is_success()).then(|| {
            DeliveryError::new(
                AttemptErrorKind::HttpStatus,
                format!("the endpoint answered {status}"),
            )
        });
        Ok(DeliveryOutcome {
            status_code: Some(status.as_u16()),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            body_truncated,
            // Filled in by `deliver_to`, which saw the headers before they were sent.
            request_headers: Default::default(),
            duration: Duration::ZERO,
            error,
            retry_after,
        })
    }

    /// Sends the request, with the endpoint's OAuth access token if it has a client: a
    /// token the receiver refuses (revoked before it expired) gets one fresh token and one
    /// more try, within this attempt.
    async fn send_with_token(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: Url,
        req: &DeliveryRequest,
        headers: HeaderMap,
    ) -> Result<reqwest::Response, DeliveryError> {
        let oauth = req.endpoint.oauth.as_ref();
        let (id, now) = (&req.endpoint.id, req.attempted_at);
        let token = |refused: Option<String>| async move {
            let Some(oauth) = oauth else {
                return Ok(None);
            };
            let token = (self.tokens).token(
                &self.client,
                &self.policy,
                id,
                oauth,
                now,
                refused.as_deref(),
            );
            token.await.map(Some)
        };
        let mut bearer = token(None).await?;
        let mut refreshed = false;
        loop {
            let mut headers = headers.clone();
            if let Some(value) = bearer.as_ref().and_then(|t| bearer_value(t)) {
                headers.insert(AUTHORIZATION, value);
            }
            let response = client
                .request(method.clone(), url.clone())
                .headers(headers)
                .body(req.body().as_bytes().to_vec())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            let refused = response.status() == reqwest::StatusCode::UNAUTHORIZED;
            if !(refused && bearer.is_some() && !refreshed) {
                return Ok(response);
            }
            refreshed = true;
            bearer = token(bearer).await?;
        }
    }

    /// How much of a response body the attempt log keeps.
    pub(super) fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Delivers `req` to `url`, which may differ from the endpoint's (chat URLs).
    pub async fn deliver_to(&self, url: &str, req: &DeliveryRequest) -> DeliveryOutcome {
        let started = Instant::now();
        let headers = self.headers(req);
        let mut recorded = recorded_request_headers(&headers, req);
        let mut outcome = self
            .send(url, req, headers)
            .await
            .unwrap_or_else(Into::into);
        // Shown as sent, never its value; not at all when no token could be had.
        if req.endpoint.oauth.is_some() && outcome.status_code.is_some() {
            recorded.insert(AUTHORIZATION.to_string(), "Bearer ••••••".to_owned());
        }
        outcome.duration = started.elapsed();
        outcome.request_headers = recorded;
        outcome
    }
}

#[async_trait]
impl Destination for HttpDestination {
    async fn deliver(&self, req: &DeliveryRequest) -> DeliveryOutcome {
        self.deliver_to(&req.endpoint.url, req).await
    }
}

/// The methods a template may choose.
pub const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "GET"];

/// The method a template rendered, if it is one Herald sends.
pub fn method(name: &str) -> Option<reqwest::Method> {
    METHODS
        .contains(&name)
        .then(|| reqwest::Method::from_bytes(name.as_bytes()).ok())
        .flatten()
}

fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .take(MAX_RECORDED_HEADERS)
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The request headers for the attempt log. Values of custom (or templated) headers whose
/// names suggest a credential are masked: the log is shown to customers in the portal.
pub(super) fn recorded_request_headers(
    headers: &HeaderMap,
    req: &DeliveryRequest,
) -> BTreeMap<String, String> {
    let templated = req.rendered.as_ref().map(|r| &r.headers);
    let custom = |name: &str| {
        req.endpoint
            .headers
            .keys()
            .chain(templated.into_iter().flat_map(|h| h.keys()))
            .any(|k| k.eq_ignore_ascii_case(name))
    };
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let value = if custom(name) && looks_secret(name) {
                "••••••".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// Whether a header's name suggests its value is a credential.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "cookie"
        || [
            "auth",
            "token",
            "secret",
            "key",
            "password",
            "signature",
            "session",
        ]
        .iter()
        .any(|word| name.contains(word))
}

/// `Retry-After` as seconds or an HTTP date.
pub(super) fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

/// Why a request to `url` is refused, when its host is an address the policy does not
/// permit. The resolver guards host names; an address written in the URL is checked here.
pub(super) fn refused_literal(policy: &AddressPolicy, url: &Url) -> Option<DeliveryError> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    (!policy.permits(ip)).then(|| {
        DeliveryError::new(
            AttemptErrorKind::Blocked,
            format!("{ip} is not an address deliveries may reach (private, loopback, link-local…)"),
        )
    })
}

/// `Bearer <token>`, marked sensitive so that it never shows in debug output.
fn bearer_value(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Names what went wrong, for people reading the attempt log. The URL is left out of the
/// detail: it may carry credentials.
pub(super) fn classify(e: &reqwest::Error) -> DeliveryError {
    let chain = source_chain(e);
    // rustls names its failures in CamelCase (`received fatal alert: CertificateRequired`).
    let lower = chain.to_ascii_lowercase();
    let tls = ["certificate", "tls", "handshake", "fatal alert"];
    let kind = if find_source::<BlockedAddress>(e).is_some() {
        AttemptErrorKind::Blocked
    } else if e.is_timeout() {
        AttemptErrorKind::Timeout
    } else if find_source::<std::io::Error>(e)
        .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    {
        AttemptErrorKind::ConnectionRefused
    } else if chain.contains("dns error") || chain.contains("failed to lookup address") {
        AttemptErrorKind::Dns
    } else if tls.iter().any(|word| lower.contains(word)) {
        AttemptErrorKind::Tls
    } else if e.is_connect() {
        AttemptErrorKind::Connection
    } else if e.is_body() || e.is_decode() || chain.contains("parse") || chain.contains("invalid") {
        AttemptErrorKind::InvalidResponse
    } else {
        AttemptErrorKind::Other
    };
    DeliveryError::new(kind, chain)
}

fn source_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string().replace(&url_text(e), "")];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.retain(|p| !p.trim().is_empty());
    parts.join(": ")
}

fn url_text(e: &reqwest::Error) -> String {
    e.url()
        .map(|u| format!(" for url ({u})"))
        .unwrap_or_default()
}

fn find_source<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

//! OAuth 2.0 to endpoints: a real authorization server on loopback issues tokens, a real
//! receiver checks them; Herald fetches, caches, refreshes on expiry and on a 401, and
//! records token failures in the attempt log without losing the delivery.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Form;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Receiver, TestHerald};

/// One token request as the authorization server saw it.
#[derive(Debug, Clone)]
struct TokenRequest {
    authorization: String,
    form: Vec<(String, String)>,
}

#[derive(Default)]
struct AuthState {
    requests: Mutex<Vec<TokenRequest>>,
    /// Answers to give instead of a token, in order.
    failures: Mutex<VecDeque<(u16, Value)>>,
}

/// An OAuth 2.0 token endpoint on port 0 issuing `tok-1`, `tok-2`… valid for an hour.
struct AuthServer {
    url: String,
    state: Arc<AuthState>,
}

impl AuthServer {
    async fn start() -> Self {
        let state = Arc::new(AuthState::default());
        let app = axum::Router::new()
            .route("/token", axum::routing::post(issue))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    fn fail_next(&self, status: u16, body: Value) {
        self.state
            .failures
            .lock()
            .unwrap()
            .push_back((status, body));
    }
}

async fn issue(
    State(state): State<Arc<AuthState>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> impl IntoResponse {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let n = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(TokenRequest {
            authorization,
            form,
        });
        requests.len()
    };
    if let Some((status, body)) = state.failures.lock().unwrap().pop_front() {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body));
    }
    let token =
        json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600});
    (StatusCode::OK, axum::Json(token))
}

fn oauth_config(token_url: &str) -> Value {
    json!({
        "tokenUrl": token_url,
        "clientId": "herald client",
        "clientSecret": "s3cret:x",
        "authMethod": "clientSecretBasic",
        "grantType": "clientCredentials",
        "scopes": ["hooks:write", "hooks:read"],
        "extraParams": {"audience": "https://receiver.example"}
    })
}

fn bearer_of(received: &crate::helpers::Received) -> &str {
    received.header("authorization")
}

#[tokio::test]
async fn deliveries_carry_a_cached_token_fetched_again_on_expiry_and_after_a_401() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let auth = AuthServer::start().await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let path = format!(
        "/app/{app}/endpoint/{}/oauth",
        endpoint["id"].as_str().unwrap()
    );

    let (status, body) = herald
        .call(Method::PUT, &path, Some(oauth_config(&auth.url)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, shown) = herald.get(&path).await;
    assert_eq!(shown["tokenUrl"], auth.url.as_str());
    assert_eq!(shown["scopes"], json!(["hooks:write", "hooks:read"]));
    assert!(
        !shown.to_string().contains("s3cret"),
        "never shown: {shown}"
    );
    let (_, ep) = herald
        .get(&format!(
            "/app/{app}/endpoint/{}",
            endpoint["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ep["hasOauth"], true);

    // The first delivery fetches a token: HTTP Basic with both parts form-encoded
    // (RFC 6749 §2.3.1), the scopes and the extra parameters in the form.
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(bearer_of(&got[0]), "Bearer tok-1");
    let requests = auth.requests();
    assert_eq!(requests.len(), 1);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("herald+client:s3cret%3Ax");
    assert_eq!(requests[0].authorization, format!("Basic {basic}"));
    let form: Vec<(&str, &str)> = requests[0]
        .form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        form,
        [
            ("grant_type", "client_credentials"),
            ("audience", "https://receiver.example"),
            ("scope", "hooks:write hooks:read"),
        ]
    );

    // The next one reuses it.
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(bearer_of(&got[1]), "Bearer tok-1");
    assert_eq!(auth.requests().len(), 1, "cached");

    // A receiver that refuses the token (revoked early): one fresh token, one more try,
    // and the attempt succeeds.
    receiver.statuses([401]);
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(4).await;
    assert_eq!(bearer_of(&got[2]), "Bearer tok-1");
    assert_eq!(bearer_of(&got[3]), "Bearer tok-2");
    herald.wait_recorded(3).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 0, "{:?}", attempts[0]);
    // The log shows that a token was sent, never the token.
    let (_, attempt) = herald
        .get(&format!(
            "/app/{app}/msg/{msg}/attempt/{}",
            attempts[0]["id"].as_str().unwrap()
        ))
        .await;
    let logged = attempt.to_string();
    assert!(!logged.contains("tok-"), "{logged}");
    assert!(logged.contains("Bearer ••••••"), "{logged}");

    // Near its expiry (an hour, less a minute's margin) the token is fetched again.
    clock.advance(Duration::from_secs(3_550));
    herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let got = receiver.wait_for(5).await;
    assert_eq!(bearer_of(&got[4]), "Bearer tok-3");
    assert_eq!(auth.requests().len(), 3);
}

#[tokio::test]
async fn a_token_failure_is_recorded_and_the_delivery_retried() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let auth = AuthServer::start().await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let id = endpoint["id"].as_str().unwrap();
    let mut config = oauth_config(&auth.url);
    config["authMethod"] = json!("clientSecretPost");
    let (status, _) = herald
        .call(
            Method::PUT,
            &format!("/app/{app}/endpoint/{id}/oauth"),
            Some(config),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    auth.fail_next(
        401,
        json!({"error": "invalid_client", "error_description": "unknown client"}),
    );
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    let attempt = &herald.attempts(&app, &msg).await[0];
    assert_eq!(attempt["status"], 2, "{attempt}");
    assert_eq!(attempt["errorKind"], "token", "{attempt}");
    let detail = attempt["errorDetail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("invalid_client") && detail.contains("401"),
        "{detail}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing sent without a token"
    );
    // The secret went in the form, as `clientSecretPost` asks.
    let form = &auth.requests()[0].form;
    assert!(
        form.contains(&("client_secret".into(), "s3cret:x".into())),
        "{form:?}"
    );
    assert!(auth.requests()[0].authorization.is_empty());

    // Not lost: the retry fetches a token and delivers.
    clock.advance(Duration::from_secs(6));
    let got = receiver.wait_for(1).await;
    assert_eq!(bearer_of(&got[0]), "Bearer tok-2");
}

#[tokio::test]
async fn a_token_url_that_never_answers_times_out_into_the_attempt_log() {
    let herald = TestHerald::start_with(Arc::new(herald_core::SystemClock), |c| {
        c.delivery.timeout = Duration::from_millis(300);
    })
    .await;
    let app = herald.app("acme").await;
    // Connections are queued by the kernel but never accepted: a silent token URL.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", silent.local_addr().unwrap());
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let id = endpoint["id"].as_str().unwrap();
    let (status, _) = herald
        .call(
            Method::PUT,
            &format!("/app/{app}/endpoint/{id}/oauth"),
            Some(oauth_config(&token_url)),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    let attempt = &herald.attempts(&app, &msg).await[0];
    assert_eq!(attempt["errorKind"], "token", "{attempt}");
    let detail = attempt["errorDetail"].as_str().unwrap_or_default();
    assert!(detail.contains("timeout"), "{detail}");
    let (_, deliveries) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    assert_eq!(
        deliveries["data"][0]["statusText"], "pending",
        "kept for a retry"
    );
    drop(silent);
}

#[tokio::test]
async fn bad_oauth_settings_are_refused_field_by_field_and_nothing_is_stored() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let path = format!(
        "/app/{app}/endpoint/{}/oauth",
        endpoint["id"].as_str().unwrap()
    );
    let good = oauth_config("https://auth.example.com/token");

    let cases = [
        ("tokenUrl", json!("http://169.254.169.254/token")),
        ("tokenUrl", json!("ftp://auth.example.com/token")),
        ("authMethod", json!("clientSecretJwt")),
        ("clientSecret", json!(null)),
        ("grantType", json!("refreshToken")),
        ("extraParams", json!({"grant_type": "password"})),
        ("scopes", json!(["two words"])),
        ("tokenUrl", json!("https://user:pw@auth.example.com/token")),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value.clone();
        let (status, answer) = herald.call(Method::PUT, &path, Some(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}: {answer}"
        );
        let loc = &answer["detail"][0]["loc"][1];
        let expected = if field == "grantType" {
            "refreshToken"
        } else {
            field
        };
        assert_eq!(loc, expected, "{field}={value}: {answer}");
    }
    let (status, _) = herald.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");

    // Not for other destination kinds.
    let stream = herald
        .endpoint(&app, json!({"url": "redis://127.0.0.1:6379/herald-test"}))
        .await;
    let (status, answer) = herald
        .call(
            Method::PUT,
            &format!(
                "/app/{app}/endpoint/{}/oauth",
                stream["id"].as_str().unwrap()
            ),
            Some(good.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer.to_string().contains("HTTP endpoints only"),
        "{answer}"
    );

    // Set, then removed.
    let (status, _) = herald.call(Method::PUT, &path, Some(good)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = herald.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = herald.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

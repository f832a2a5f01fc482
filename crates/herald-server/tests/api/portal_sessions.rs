//! Customer-portal sessions through the API: what `app-portal-access` options allow, how
//! sessions end, and the routes the portal's pages are built on (replay-missing, dry runs,
//! the session and instance descriptions).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{read, Receiver, TestHerald};

/// A portal session for `app` with these options; its token.
async fn session(herald: &TestHerald, app: &str, options: Value) -> String {
    let (status, access) = herald
        .post(&format!("/auth/app-portal-access/{app}"), options)
        .await;
    assert_eq!(status, 200, "{access}");
    access["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_read_only_session_may_look_but_change_nothing() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let endpoint = herald
        .endpoint(&app, json!({"url": "https://example.com/hook"}))
        .await;
    let ep = endpoint["id"].as_str().unwrap();
    let token = session(&herald, &app, json!({"readOnly": true})).await;
    let (status, _) = herald
        .call_as(&token, Method::GET, &format!("/app/{app}/endpoint"), None)
        .await;
    assert_eq!(status, 200);
    let changes = [
        (
            Method::POST,
            format!("/app/{app}/endpoint"),
            json!({"url": "https://example.com/x"}),
        ),
        (
            Method::PATCH,
            format!("/app/{app}/endpoint/{ep}"),
            json!({"disabled": true}),
        ),
        (
            Method::DELETE,
            format!("/app/{app}/endpoint/{ep}"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/app/{app}/endpoint/{ep}/secret/rotate"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/app/{app}/endpoint/{ep}/recover"),
            json!({"since": "2020-01-01T00:00:00Z"}),
        ),
    ];
    for (method, path, body) in changes {
        let (status, body) = herald
            .call_as(&token, method.clone(), &path, Some(body))
            .await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(
            body["code"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
    let (_, after) = herald.get(&format!("/app/{app}/endpoint/{ep}")).await;
    assert_eq!(after["disabled"], false);
    // Logging out is not a change a read-only session is refused.
    let (status, _) = herald
        .call_as(&token, Method::POST, "/auth/logout", Some(json!({})))
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn capabilities_gate_secrets_and_endpoint_changes() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let endpoint = herald
        .endpoint(&app, json!({"url": "https://example.com/hook"}))
        .await;
    let secret_path = format!(
        "/app/{app}/endpoint/{}/secret",
        endpoint["id"].as_str().unwrap()
    );
    let viewer = session(
        &herald,
        &app,
        json!({"capabilities": ["ViewBase", "ViewEndpointSecret"]}),
    )
    .await;
    let (status, secret) = herald
        .call_as(&viewer, Method::GET, &secret_path, None)
        .await;
    assert_eq!(status, 200);
    assert!(secret["key"].as_str().unwrap().starts_with("whsec_"));
    let (status, _) = herald
        .call_as(
            &viewer,
            Method::POST,
            &format!("{secret_path}/rotate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403, "viewing is not rotating");

    let manager = session(&herald, &app, json!({"capabilities": ["ManageEndpoint"]})).await;
    let (status, _) = herald
        .call_as(&manager, Method::GET, &secret_path, None)
        .await;
    assert_eq!(status, 403);
    let (status, body) = herald
        .call_as(
            &manager,
            Method::POST,
            &format!("/app/{app}/endpoint"),
            Some(json!({"url": "https://example.com/second"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, described) = herald
        .call_as(&manager, Method::GET, "/auth/session", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(described["appId"], app.as_str());
    assert_eq!(described["admin"], false);
    assert_eq!(
        described["capabilities"],
        json!(["ViewBase", "ManageEndpoint"])
    );
}

#[tokio::test]
async fn expire_all_ends_named_sessions_or_every_one() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let first = session(&herald, &app, json!({"sessionId": "s1"})).await;
    let second = session(&herald, &app, json!({"sessionId": "s2"})).await;
    let path = format!("/app/{app}");
    let (status, _) = herald
        .post(
            &format!("/auth/app/{app}/expire-all"),
            json!({"sessionIds": ["s1"]}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        herald.call_as(&first, Method::GET, &path, None).await.0,
        401
    );
    assert_eq!(
        herald.call_as(&second, Method::GET, &path, None).await.0,
        200
    );
    let (status, _) = herald
        .post(&format!("/auth/app/{app}/expire-all"), json!({}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        herald.call_as(&second, Method::GET, &path, None).await.0,
        401
    );
    // A portal session cannot end other sessions.
    let third = session(&herald, &app, json!({})).await;
    let (status, _) = herald
        .call_as(
            &third,
            Method::POST,
            &format!("/auth/app/{app}/expire-all"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn feature_flagged_event_types_are_shown_only_to_sessions_with_the_flag() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    herald.event_type("public.thing").await;
    let (status, body) = herald
        .post(
            "/event-type",
            json!({"name": "beta.thing", "description": "b", "featureFlags": ["beta"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let names = |list: Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let plain = session(&herald, &app, json!({})).await;
    let (_, list) = herald
        .call_as(&plain, Method::GET, "/event-type", None)
        .await;
    assert_eq!(names(list), ["public.thing"]);
    let (status, _) = herald
        .call_as(&plain, Method::GET, "/event-type/beta.thing", None)
        .await;
    assert_eq!(status, 404);
    let beta = session(&herald, &app, json!({"featureFlags": ["beta"]})).await;
    let (_, list) = herald
        .call_as(&beta, Method::GET, "/event-type", None)
        .await;
    assert_eq!(names(list), ["beta.thing", "public.thing"]);
    let (_, list) = herald.get("/event-type").await;
    assert_eq!(names(list).len(), 2, "the provider sees every type");
}

#[tokio::test]
async fn replay_missing_sends_an_endpoint_what_came_before_it_and_dry_runs_count() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let mut published = Vec::new();
    for i in 0..5 {
        published.push(
            herald
                .publish(
                    &app,
                    json!({"eventType": "order.paid", "payload": {"i": i}}),
                )
                .await,
        );
    }
    let receiver = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let path = format!(
        "/app/{app}/endpoint/{}/replay-missing",
        endpoint["id"].as_str().unwrap()
    );
    let (status, dry) = herald
        .post(&path, json!({"since": since, "dryRun": true}))
        .await;
    assert_eq!(status, 202, "{dry}");
    assert_eq!(dry["replayed"], 5);
    let (status, unknown) = herald
        .get(&format!("/background-task/{}", dry["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 404, "a dry run is not recorded: {unknown}");
    let (status, task) = herald.post(&path, json!({"since": since})).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["replayed"], 5);
    // The application's own session finds the task by its id, finished.
    let token = session(&herald, &app, json!({})).await;
    let id = task["id"].as_str().unwrap();
    let (status, found) = herald
        .call_as(&token, Method::GET, &format!("/background-task/{id}"), None)
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["task"], "endpoint.replay");
    assert_eq!(found["data"], json!({"replayed": 5}));
    herald.wait_recorded(5).await;
    let mut got: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    got.sort();
    published.sort();
    assert_eq!(got, published);
    let (_, again) = herald.post(&path, json!({"since": since})).await;
    assert_eq!(again["replayed"], 0, "nothing is missing any more");
}

#[tokio::test]
async fn the_instance_is_described_to_admins_only() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let (status, instance) = herald.get("/instance").await;
    assert_eq!(status, 200, "{instance}");
    assert!(["sqlite", "postgres"].contains(&instance["store"].as_str().unwrap()));
    assert_eq!(instance["queueDepth"], 0);
    let token = session(&herald, &app, json!({})).await;
    assert_eq!(
        herald
            .call_as(&token, Method::GET, "/instance", None)
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn the_portal_pages_are_served_with_their_framing_policy() {
    let herald = TestHerald::start_with(std::sync::Arc::new(herald_core::SystemClock), |c| {
        c.portal.frame_ancestors = vec!["'self'".into(), "https://app.example.com".into()];
    })
    .await;
    for path in ["/portal/", "/portal/endpoints/ep_x", "/ui/"] {
        let response = herald
            .http
            .get(format!("{}{path}", herald.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.ends_with("frame-ancestors 'self' https://app.example.com"),
            "{csp}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("/ui-assets/main.js"), "{html}");
    }
    let script = herald
        .http
        .get(format!("{}/ui-assets/views/endpoint.js", herald.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let missing = herald
        .http
        .get(format!("{}/ui-assets/nope.js", herald.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_one_time_token_is_exchanged_once_and_is_good_for_nothing_else() {
    let herald = TestHerald::start().await;
    let link = "hrld_one_time_link_token_for_the_api_test_0123";
    let now = chrono::Utc::now();
    // As `herald ui-link` stores it.
    let store_token = herald_core::model::Token {
        id: herald_core::ids::IdKind::Token.new_id(),
        hash: herald_server::auth::hash_token(link),
        app_id: None,
        description: "link".into(),
        created_at: now,
        expires_at: Some(now + chrono::Duration::minutes(5)),
        portal: None,
        one_time: true,
        hint: String::new(),
        poller_endpoint_id: None,
    };
    herald.store().insert_token(&store_token).await.unwrap();
    assert_eq!(herald.call_as(link, Method::GET, "/app", None).await.0, 401);
    let exchange = || async {
        read(
            herald
                .http
                .post(format!("{}/api/v1/auth/one-time-token", herald.base))
                .json(&json!({"oneTimeToken": link}))
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let (status, body) = exchange().await;
    assert_eq!(status, 200, "{body}");
    let session = body["token"].as_str().unwrap();
    assert_eq!(
        herald.call_as(session, Method::GET, "/app", None).await.0,
        200
    );
    let (status, body) = exchange().await;
    assert_eq!(status, 401, "spent: {body}");
}

//! One-off callback URLs (`callbackUrls` on a message): signed with the application's
//! ad-hoc secret, retried, logged, resendable, hidden from endpoint lists, and held to the
//! same address policy as endpoints (patterns spec §3.3).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use herald_core::Clock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{verify, Receiver, TestHerald};

async fn adhoc_secret(herald: &TestHerald, app: &str) -> String {
    let (status, body) = herald.get(&format!("/app/{app}/adhoc-secret")).await;
    assert_eq!(status, 200, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

fn with_callbacks(urls: &[&str]) -> Value {
    let callbacks: Vec<Value> = urls.iter().map(|url| json!({"url": url})).collect();
    json!({"eventType": "call.ended", "payload": {"call": 7}, "callbackUrls": callbacks})
}

#[tokio::test]
async fn a_callback_url_gets_one_signed_request_and_is_no_listed_endpoint() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let subscriber = Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": subscriber.url})).await;
    let callback = Receiver::start().await;

    let body = json!({
        "eventType": "call.ended",
        "payload": {"call": 7},
        "callbackUrls": [{"url": callback.url, "headers": {"x-request": "r-1"}}],
    });
    let msg = herald.publish(&app, body.clone()).await;
    let got = callback.wait_for(1).await;
    subscriber.wait_for(1).await;
    herald.wait_recorded(2).await;

    // Signed with the application's ad-hoc secret, not with the subscriber's.
    let key = adhoc_secret(&herald, &app).await;
    assert!(key.starts_with("whsec_"), "{key}");
    assert!(verify(&key, &got[0]), "verifies with the ad-hoc secret");
    let (_, secret) = herald
        .get(&format!(
            "/app/{app}/endpoint/{}/secret",
            endpoint["id"].as_str().unwrap()
        ))
        .await;
    assert!(!verify(secret["key"].as_str().unwrap(), &got[0]));
    assert_eq!(got[0].header("x-request"), "r-1");
    assert_eq!(got[0].body, r#"{"call":7}"#);

    // Not an endpoint anyone lists, yet in the log with what triggered it.
    let (_, list) = herald.get(&format!("/app/{app}/endpoint")).await;
    let listed: Vec<&Value> = list["data"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["id"], endpoint["id"]);
    let attempts = herald.attempts(&app, &msg).await;
    let triggers: Vec<(&str, i64)> = attempts
        .iter()
        .map(|a| {
            (
                a["trigger"].as_str().unwrap(),
                a["triggerType"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(triggers.contains(&("adhoc", 0)), "{triggers:?}");
    assert!(triggers.contains(&("scheduled", 0)), "{triggers:?}");

    // The same callback again reuses its hidden endpoint; a message without it does not
    // reach it.
    let again = herald.publish(&app, body).await;
    callback.wait_for(2).await;
    let first_ep = attempts.iter().find(|a| a["trigger"] == "adhoc").unwrap()["endpointId"].clone();
    herald.wait_recorded(4).await;
    let second = herald.attempts(&app, &again).await;
    let second_ep = &second.iter().find(|a| a["trigger"] == "adhoc").unwrap()["endpointId"];
    assert_eq!(&first_ep, second_ep);
    herald
        .publish(&app, json!({"eventType": "call.ended", "payload": {}}))
        .await;
    subscriber.wait_for(3).await;
    herald.wait_recorded(5).await;
    assert_eq!(callback.received().len(), 2, "only messages naming it");

    // Not a subscription anyone may read or change through the endpoint routes (its secret
    // is the provider's), and its uid prefix is reserved.
    let hidden = first_ep.as_str().unwrap();
    for path in ["", "/secret", "/headers", "/stats"] {
        let (status, _) = herald
            .get(&format!("/app/{app}/endpoint/{hidden}{path}"))
            .await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = herald
        .call(
            reqwest::Method::PATCH,
            &format!("/app/{app}/endpoint/{hidden}"),
            Some(json!({"url": "http://127.0.0.1:1/elsewhere"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": callback.url, "uid": "adhoc_mine"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_failing_callback_is_retried_on_schedule_and_can_be_resent() {
    let (herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let callback = Receiver::start().await;
    callback.statuses([500, 503]);
    let msg = herald.publish(&app, with_callbacks(&[&callback.url])).await;

    for n in 1..=3 {
        callback.wait_for(n).await;
        herald.wait_recorded(n as u64).await;
        if n == 3 {
            break;
        }
        let (_, deliveries) = herald.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
        let next: chrono::DateTime<chrono::Utc> = deliveries["data"][0]["nextAttempt"]
            .as_str()
            .expect("a retry is scheduled")
            .parse()
            .unwrap();
        let wait = (next - clock.now()).to_std().unwrap_or_default();
        clock.advance(wait + Duration::from_millis(1));
    }
    let attempts = herald.attempts(&app, &msg).await;
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["responseStatusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [200, 503, 500], "newest first");
    assert!(
        attempts.iter().all(|a| a["trigger"] == "adhoc"),
        "{attempts:?}"
    );

    // Resent by hand like any delivery.
    let ep = attempts[0]["endpointId"].as_str().unwrap();
    let (status, body) = herald
        .post(
            &format!("/app/{app}/msg/{msg}/endpoint/{ep}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    callback.wait_for(4).await;
    herald.wait_recorded(4).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts[0]["trigger"], "manual");
    assert_eq!(attempts[0]["triggerType"], 1);
}

#[tokio::test]
async fn callback_urls_the_policy_refuses_or_too_many_are_422_and_store_nothing() {
    let mut herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let callback = Receiver::start().await;

    let eleven: Vec<&str> = std::iter::repeat_n(callback.url.as_str(), 11).collect();
    let (status, body) = herald
        .post(&format!("/app/{app}/msg"), with_callbacks(&eleven))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("at most 10"), "{body}");
    let (status, body) = herald
        .post(
            &format!("/app/{app}/msg"),
            with_callbacks(&["ftp://example.com/x"]),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    herald
        .restart_with(|c| c.delivery.allowed_networks = vec![])
        .await;
    let by_name = callback.url.replace("127.0.0.1", "localhost");
    for url in [&callback.url, &by_name] {
        let (status, body) = herald
            .post(&format!("/app/{app}/msg"), with_callbacks(&[url]))
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["code"], "url_not_allowed", "{body}");
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("allowed_networks"));
    }
    let (_, list) = herald.get(&format!("/app/{app}/msg")).await;
    assert_eq!(list["data"], json!([]), "nothing published");
    assert!(callback.received().is_empty());
}

#[tokio::test]
async fn a_callback_name_refused_at_send_time_is_not_called_again() {
    // Allowed when given, then the operator takes loopback away before the retry: the
    // name is judged again on the address it resolves to when the attempt is made.
    let (mut herald, clock) = TestHerald::start_manual().await;
    let app = herald.app("acme").await;
    let callback = Receiver::start().await;
    callback.statuses([500]);
    let by_name = callback.url.replace("127.0.0.1", "localhost");
    let msg = herald.publish(&app, with_callbacks(&[&by_name])).await;
    callback.wait_for(1).await;
    herald.wait_recorded(1).await;

    herald
        .restart_with(|c| c.delivery.allowed_networks = vec![])
        .await;
    clock.advance(Duration::from_secs(60));
    herald.wait_recorded(1).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["errorKind"], "blocked", "{:?}", attempts[0]);
    assert_eq!(callback.received().len(), 1);
}

#[tokio::test]
async fn a_public_looking_name_that_resolves_to_loopback_is_refused_when_sent() {
    // `delivery.resolve` answers the name without DNS (the spec's resolver stub): the name
    // looks public when given, so it is accepted, and is judged on its address at send time.
    let name = "callbacks.example";
    let loopback = "127.0.0.1".parse().unwrap();
    let mut herald = TestHerald::start_with(std::sync::Arc::new(herald_core::SystemClock), |c| {
        c.delivery.resolve = [(name.to_owned(), vec![loopback])].into();
    })
    .await;
    let app = herald.app("acme").await;
    let callback = Receiver::start().await;
    let by_name = callback.url.replace("127.0.0.1", name);

    // Allowed by the operator: the stub's answer is where it is delivered.
    herald.publish(&app, with_callbacks(&[&by_name])).await;
    callback.wait_for(1).await;
    herald.wait_recorded(1).await;

    // Not allowed: accepted when given, refused at send time, never reaching the receiver.
    herald
        .restart_with(|c| c.delivery.allowed_networks = vec![])
        .await;
    let msg = herald.publish(&app, with_callbacks(&[&by_name])).await;
    herald.wait_recorded(1).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["errorKind"], "blocked", "{:?}", attempts[0]);
    assert_eq!(callback.received().len(), 1, "only the allowed one arrived");
}

#[tokio::test]
async fn an_application_can_allow_only_some_callback_hosts_and_only_https() {
    let name = "cb.allowed.test";
    let loopback = "127.0.0.1".parse().unwrap();
    let herald = TestHerald::start_with(std::sync::Arc::new(herald_core::SystemClock), |c| {
        c.delivery.resolve = [(name.to_owned(), vec![loopback])].into();
    })
    .await;
    let app = herald.app("acme").await;
    let callback = Receiver::start().await;
    let path = format!("/app/{app}/callback-policy");

    let (status, policy) = herald.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(policy, json!({"httpsOnly": false, "allowedHosts": []}));
    for bad in [
        json!({"allowedHosts": ["*"]}),
        json!({"allowedHosts": ["a.*.test"]}),
    ] {
        let (status, body) = herald.call(Method::PUT, &path, Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad} → {body}");
    }
    let only = json!({"httpsOnly": false, "allowedHosts": ["*.allowed.test"]});
    let (status, body) = herald.call(Method::PUT, &path, Some(only.clone())).await;
    assert_eq!((status.as_u16(), &body), (200, &only));
    assert_eq!(herald.get(&path).await.1, only);

    // A host outside the list is refused before anything is stored, on both routes.
    let (status, body) = herald
        .post(&format!("/app/{app}/msg"), with_callbacks(&[&callback.url]))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "url_not_allowed");
    assert!(
        body["detail"].as_str().unwrap().contains("callback hosts"),
        "{body}"
    );
    let dedicated = json!({"url": callback.url, "eventType": "export.ready", "payload": {}});
    let (status, _) = herald
        .post(&format!("/app/{app}/callback"), dedicated)
        .await;
    assert_eq!(status, 422);

    // A name below the allowed domain is called back.
    let allowed = callback.url.replace("127.0.0.1", name);
    herald.publish(&app, with_callbacks(&[&allowed])).await;
    callback.wait_for(1).await;

    // HTTPS only: the same http URL is refused now.
    let https = json!({"httpsOnly": true, "allowedHosts": ["*.allowed.test"]});
    herald.call(Method::PUT, &path, Some(https)).await;
    let (status, body) = herald
        .post(&format!("/app/{app}/msg"), with_callbacks(&[&allowed]))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("https"), "{body}");
    let (_, list) = herald.get(&format!("/app/{app}/msg")).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "only the allowed one"
    );
}

#[tokio::test]
async fn a_callback_answering_with_a_redirect_fails_and_the_redirect_is_not_followed() {
    let herald = TestHerald::start_with(std::sync::Arc::new(herald_core::SystemClock), |c| {
        c.delivery.retry_schedule = vec![];
    })
    .await;
    let app = herald.app("acme").await;
    let internal = Receiver::start().await;
    let location = internal.url.clone();
    let redirecting = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (StatusCode::FOUND, [("location", location)]).into_response() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirecting).await });

    let msg = herald.publish(&app, with_callbacks(&[&url])).await;
    herald.wait_recorded(1).await;
    let attempts = herald.attempts(&app, &msg).await;
    assert_eq!(attempts[0]["responseStatusCode"], 302);
    assert_eq!(attempts[0]["status"], 2, "failed");
    assert!(
        internal.received().is_empty(),
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn the_adhoc_secret_rotates_with_an_overlap_and_only_the_provider_sees_it() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let before = adhoc_secret(&herald, &app).await;
    assert_eq!(
        adhoc_secret(&herald, &app).await,
        before,
        "stable until rotated"
    );
    let (status, rotated) = herald
        .post(&format!("/app/{app}/adhoc-secret/rotate"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let after = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(after, before);
    assert_eq!(adhoc_secret(&herald, &app).await, after);

    let callback = Receiver::start().await;
    herald.publish(&app, with_callbacks(&[&callback.url])).await;
    let got = callback.wait_for(1).await;
    assert!(verify(&after, &got[0]), "the new secret signs");
    assert!(
        verify(&before, &got[0]),
        "and the old one, during the overlap"
    );

    let (status, body) = herald
        .post(
            &format!("/app/{app}/adhoc-secret/rotate"),
            json!({"key": "nope"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // An app-scoped token (a customer's) does not get the provider's signing secret.
    let (status, token) = herald
        .post(&format!("/auth/app-portal-access/{app}"), json!({}))
        .await;
    assert_eq!(status, 200, "{token}");
    let portal_token = token["token"].as_str().unwrap().to_owned();
    let (status, _) = herald
        .call_as(
            &portal_token,
            reqwest::Method::GET,
            &format!("/app/{app}/adhoc-secret"),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_dedicated_callback_reaches_only_its_url() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let subscriber = Receiver::start().await;
    herald.endpoint(&app, json!({"url": subscriber.url})).await;
    let callback = Receiver::start().await;

    let (status, msg) = herald
        .post(
            &format!("/app/{app}/callback"),
            json!({"url": callback.url, "headers": {"x-job": "42"},
                   "eventType": "export.ready", "payload": {"export": 42}}),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    let got = callback.wait_for(1).await;
    herald.wait_recorded(1).await;
    assert!(verify(&adhoc_secret(&herald, &app).await, &got[0]));
    assert_eq!(got[0].header("x-job"), "42");
    assert_eq!(got[0].body, r#"{"export":42}"#);
    let attempts = herald.attempts(&app, msg["id"].as_str().unwrap()).await;
    assert_eq!(
        attempts.len(),
        1,
        "the subscriber is not sent it: {attempts:?}"
    );
    assert_eq!(attempts[0]["trigger"], "adhoc");
    assert!(subscriber.received().is_empty());

    // Checked like callbackUrls, and nothing is stored when refused.
    let (status, body) = herald
        .post(
            &format!("/app/{app}/callback"),
            json!({"url": "http://10.0.0.1/x", "eventType": "export.ready", "payload": {}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "url_not_allowed");
    let (status, _) = herald
        .post(
            &format!("/app/{app}/callback"),
            json!({"url": callback.url, "eventType": "export.ready", "payload": [1]}),
        )
        .await;
    assert_eq!(status, 422);
    let (_, messages) = herald.get(&format!("/app/{app}/msg")).await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 1);
}

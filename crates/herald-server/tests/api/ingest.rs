//! Inbound sources (patterns spec §1.4): a provider's signed request is verified over its
//! raw bytes, stored once, published to the source's application and delivered on; a
//! request that fails a check is refused without saying which, and stores nothing.

use std::sync::Arc;
use std::time::Duration;

use herald_core::clock::SystemClock;
use herald_core::Clock;
use herald_inbound::config::Algorithm;
use herald_inbound::verify::sign_hex;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{read, Receiver, TestHerald};

/// Creates a source through Svix's ingest API; its JSON.
async fn source(herald: &TestHerald, body: Value) -> Value {
    let (status, out) = ingest_api(herald, reqwest::Method::POST, "/source", Some(body)).await;
    assert_eq!(status, 201, "{out}");
    out
}

async fn ingest_api(
    herald: &TestHerald,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = herald
        .http
        .request(method, format!("{}/ingest/api/v1{path}", herald.base))
        .bearer_auth(&herald.token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    read(req.send().await.unwrap()).await
}

/// Posts `body` to a source's receive URL with `headers`.
async fn send(url: &str, headers: &[(&str, &str)], body: &[u8]) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(url).body(body.to_vec());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

async fn messages(herald: &TestHerald, app: &str) -> Vec<Value> {
    let (status, list) = herald.get(&format!("/app/{app}/msg")).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// The reasons in a source's log of refused requests, newest first.
async fn reasons(herald: &TestHerald, src: &Value) -> Vec<String> {
    let path = format!("/source/{}/log", src["id"].as_str().unwrap());
    let (status, log) = ingest_api(herald, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{log}");
    log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["statusCode"], 401);
            r["reason"].as_str().unwrap().to_owned()
        })
        .collect()
}

const PUSH: &[u8] = br#"{"ref": "refs/heads/main",  "after": "6113728f"}"#;

#[tokio::test]
async fn a_signed_github_delivery_is_published_byte_for_byte_once() {
    let herald = TestHerald::start().await;
    let src = source(
        &herald,
        json!({"name": "GitHub", "type": "github", "config": {"secret": "gh-secret"}}),
    )
    .await;
    assert_eq!(src["config"], json!({}), "the secret is never shown");
    let app = src["appId"].as_str().unwrap();
    let receiver = Receiver::start().await;
    herald.endpoint(app, json!({"url": receiver.url})).await;

    let signature = format!(
        "sha256={}",
        sign_hex(Algorithm::Sha256, "gh-secret", &[PUSH])
    );
    let headers = [
        ("x-hub-signature-256", signature.as_str()),
        ("x-github-event", "push"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("content-type", "application/json"),
    ];
    let url = src["ingestUrl"].as_str().unwrap();
    let first = send(url, &headers, PUSH).await;
    assert_eq!(first.status(), 200);
    let (_, first) = read(first).await;

    // Delivered on, signed with the endpoint's own secret, the body as the provider sent it.
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body, PUSH);
    let stored = messages(&herald, app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["eventType"], "push");
    assert_eq!(stored[0]["eventId"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");

    // GitHub redelivers with the same delivery id: acknowledged, not stored again.
    let again = send(url, &headers, PUSH).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["herald-duplicate"], "true");
    let (_, again) = read(again).await;
    assert_eq!(again["id"], first["id"], "answered as the first time");
    assert_eq!(stored[0]["id"], first["id"]);
    assert_eq!(messages(&herald, app).await.len(), 1);

    // One byte changed: refused, without saying which check failed, and nothing stored.
    let mut tampered_headers = headers;
    tampered_headers[2] = ("x-github-delivery", "another-delivery");
    let tampered = send(
        url,
        &tampered_headers,
        br#"{"ref": "refs/heads/main",  "after": "6113728e"}"#,
    )
    .await;
    assert_eq!(tampered.status(), 401);
    let (_, body) = read(tampered).await;
    let text = body.to_string();
    assert!(
        !text.contains("signature") && !text.contains("secret"),
        "{text}"
    );
    let unsigned = send(url, &headers[1..], PUSH).await;
    assert_eq!(unsigned.status(), 401);
    assert_eq!(messages(&herald, app).await.len(), 1);

    // The provider sees why in the source's log, newest first.
    assert_eq!(
        reasons(&herald, &src).await,
        ["missing_signature", "signature_mismatch"]
    );

    // A wrong token or source is simply not there.
    let wrong = url.replace(src["id"].as_str().unwrap(), "src_nope");
    assert_eq!(send(&wrong, &headers, PUSH).await.status(), 404);

    // Each outcome is counted, with no source id as a label.
    let metrics = herald.metrics().await;
    for (outcome, n) in [
        ("accepted", 1),
        ("duplicate", 1),
        ("refused", 2),
        ("unknown_source", 1),
    ] {
        let line = format!("herald_ingest_requests_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "missing `{line}` in:\n{metrics}");
    }
}

#[tokio::test]
async fn a_stripe_timestamp_is_checked_against_the_tolerance() {
    let (herald, clock) = TestHerald::start_manual().await;
    let src = source(
        &herald,
        json!({"name": "Stripe", "type": "stripe", "config": {"secret": "whsec_stripe"}}),
    )
    .await;
    let app = src["appId"].as_str().unwrap();
    let url = src["ingestUrl"].as_str().unwrap();
    let body: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let signed = |at: i64| {
        let t = at.to_string();
        let v1 = sign_hex(
            Algorithm::Sha256,
            "whsec_stripe",
            &[t.as_bytes(), b".", body],
        );
        format!("t={t},v1={v1}")
    };
    let now = clock.now().timestamp();
    let old = signed(now - 301);
    assert_eq!(
        send(
            url,
            &[("stripe-signature", &old)],
            br#"{"id":"evt_1","type":"invoice.paid"}"#
        )
        .await
        .status(),
        401
    );
    let fresh = signed(now - 299);
    assert_eq!(
        send(
            url,
            &[("stripe-signature", &fresh)],
            br#"{"id":"evt_1","type":"invoice.paid"}"#
        )
        .await
        .status(),
        200
    );
    assert_eq!(reasons(&herald, &src).await, ["timestamp_out_of_tolerance"]);
    let stored = messages(&herald, app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (
            stored[0]["eventType"].as_str(),
            stored[0]["eventId"].as_str()
        ),
        (Some("invoice.paid"), Some("evt_1"))
    );
}

#[tokio::test]
async fn slack_url_verification_is_answered_once_verified() {
    let (herald, clock) = TestHerald::start_manual().await;
    let src = source(
        &herald,
        json!({"name": "Slack", "type": "slack", "config": {"secret": "slack-secret"}}),
    )
    .await;
    let url = src["ingestUrl"].as_str().unwrap();
    const BODY: &[u8] = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let ts = clock.now().timestamp().to_string();
    let sig = format!(
        "v0={}",
        sign_hex(
            Algorithm::Sha256,
            "slack-secret",
            &[b"v0:", ts.as_bytes(), b":", BODY]
        )
    );
    let headers = [
        ("x-slack-request-timestamp", ts.as_str()),
        ("x-slack-signature", sig.as_str()),
    ];
    let reply = send(url, &headers, BODY).await;
    assert_eq!(reply.status(), 200);
    let (_, answer) = read(reply).await;
    assert_eq!(
        answer["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert!(messages(&herald, src["appId"].as_str().unwrap())
        .await
        .is_empty());
    // Unsigned, the same handshake is refused.
    assert_eq!(send(url, &[], BODY).await.status(), 401);
}

#[tokio::test]
async fn a_rotated_token_works_for_its_overlap_then_stops() {
    let (herald, clock) = TestHerald::start_manual().await;
    let src = source(
        &herald,
        json!({"name": "Anything", "type": "generic-webhook"}),
    )
    .await;
    let old_url = src["ingestUrl"].as_str().unwrap().to_owned();
    let id = src["id"].as_str().unwrap();
    let (status, rotated) = ingest_api(
        &herald,
        reqwest::Method::POST,
        &format!("/source/{id}/token/rotate"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_url = rotated["ingestUrl"].as_str().unwrap();
    assert_ne!(new_url, old_url);
    assert_eq!(send(new_url, &[], b"{}").await.status(), 200);
    assert_eq!(send(&old_url, &[], b"{}").await.status(), 200);
    clock.advance(Duration::from_secs(48 * 3600 + 1));
    assert_eq!(send(&old_url, &[], b"{}").await.status(), 404);
    assert_eq!(send(new_url, &[], b"{}").await.status(), 200);
    // A body that is not a JSON object is kept, wrapped.
    assert_eq!(
        send(new_url, &[("content-type", "text/plain")], b"plain text")
            .await
            .status(),
        200
    );
    let stored = messages(&herald, src["appId"].as_str().unwrap()).await;
    assert_eq!(stored.len(), 4);
    assert_eq!(
        stored[0]["payload"],
        json!({"contentType": "text/plain", "body": "plain text"})
    );
    assert_eq!(stored[0]["eventType"], "generic-webhook.received");
}

#[tokio::test]
async fn sources_are_managed_through_the_svix_sdk_and_checked() {
    let herald = TestHerald::start().await;
    let svix = herald.svix();
    use svix::models::{IngestSourceIn, IngestSourceInConfig, StripeConfig};
    let created = svix
        .ingest()
        .source()
        .create(
            IngestSourceIn {
                name: "Billing".into(),
                uid: Some("billing".into()),
                metadata: None,
                config: IngestSourceInConfig::Stripe(StripeConfig::new("whsec_x".into())),
            },
            None,
        )
        .await
        .expect("the SDK creates a source");
    assert!(created
        .ingest_url
        .as_deref()
        .unwrap()
        .contains("/ingest/src_"));
    let got = svix.ingest().source().get("billing".into()).await.unwrap();
    assert_eq!(got.id, created.id);
    let list = svix.ingest().source().list(None).await.unwrap();
    assert_eq!(list.data.len(), 1);
    let rotated = svix
        .ingest()
        .source()
        .rotate_token(created.id.clone(), None)
        .await
        .unwrap();
    assert_ne!(Some(rotated.ingest_url), created.ingest_url);
    svix.ingest()
        .source()
        .delete(created.id.clone())
        .await
        .unwrap();
    assert!(svix.ingest().source().get(created.id).await.is_err());

    for bad in [
        json!({"name": "x", "type": "ftp"}),
        json!({"name": "x", "type": "github"}),
        json!({"name": "x", "type": "svix", "config": {"secret": "not base64!"}}),
        json!({"name": "", "type": "generic-webhook"}),
    ] {
        let (status, body) =
            ingest_api(&herald, reqwest::Method::POST, "/source", Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad} → {body}");
    }
    // Only the provider manages sources.
    let app = herald.app("acme").await;
    let (_, token) = herald.post("/auth/app-portal-access/acme", json!({})).await;
    let portal = token["token"].as_str().unwrap();
    let (status, _) = herald
        .call_as(portal, reqwest::Method::GET, "/app/acme/endpoint", None)
        .await;
    assert_eq!(status, 200, "the portal token works where it may");
    let refused = herald
        .http
        .get(format!("{}/ingest/api/v1/source", herald.base))
        .bearer_auth(portal)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let _ = app;
}

#[tokio::test]
async fn twilio_is_verified_against_the_public_url_it_called() {
    let herald = TestHerald::start().await;
    let plain = source(
        &herald,
        json!({"name": "Twilio", "type": "twilio", "config": {"secret": "12345"}}),
    )
    .await;
    let behind_proxy = source(
        &herald,
        json!({"name": "Twilio (proxied)", "type": "twilio",
               "config": {"secret": "12345", "publicUrl": "https://public.example"}}),
    )
    .await;
    const FORM: &[u8] = b"To=%2B18005551212&CallSid=CA1234567890ABCDE&From=%2B12349013030";
    // Twilio signs the URL it called (the public one) and the sorted parameters.
    let sign = |src: &Value| {
        let url = src["ingestUrl"].as_str().unwrap();
        let path = &url[url.find("/ingest/").unwrap()..];
        let content = format!(
            "https://public.example{path}CallSidCA1234567890ABCDEFrom+12349013030To+18005551212"
        );
        herald_inbound::verify::sign_base64(Algorithm::Sha1, b"12345", &[content.as_bytes()])
    };
    let form = ("content-type", "application/x-www-form-urlencoded");
    let received_locally = sign(&plain);
    let url = plain["ingestUrl"].as_str().unwrap();
    let refused = send(
        url,
        &[form, ("x-twilio-signature", &received_locally)],
        FORM,
    )
    .await;
    assert_eq!(refused.status(), 401, "the signature is for another URL");

    let signature = sign(&behind_proxy);
    let url = behind_proxy["ingestUrl"].as_str().unwrap();
    let accepted = send(url, &[form, ("x-twilio-signature", &signature)], FORM).await;
    assert_eq!(accepted.status(), 200);
    let stored = messages(&herald, behind_proxy["appId"].as_str().unwrap()).await;
    assert_eq!(stored[0]["eventType"], "twilio.received");
    assert_eq!(
        stored[0]["payload"],
        json!({"contentType": "application/x-www-form-urlencoded",
               "body": std::str::from_utf8(FORM).unwrap()})
    );
}

#[tokio::test]
async fn zoom_url_validation_is_answered_with_the_hmac_of_the_plain_token() {
    let (herald, clock) = TestHerald::start_manual().await;
    let src = source(
        &herald,
        json!({"name": "Zoom", "type": "zoom", "config": {"secret": "zoom_secret"}}),
    )
    .await;
    const BODY: &[u8] = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let ts = clock.now().timestamp().to_string();
    let sig = format!(
        "v0={}",
        sign_hex(
            Algorithm::Sha256,
            "zoom_secret",
            &[b"v0:", ts.as_bytes(), b":", BODY]
        )
    );
    let headers = [
        ("x-zm-request-timestamp", ts.as_str()),
        ("x-zm-signature", sig.as_str()),
    ];
    let reply = send(src["ingestUrl"].as_str().unwrap(), &headers, BODY).await;
    assert_eq!(reply.status(), 200);
    let (_, answer) = read(reply).await;
    assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    // Computed independently with Python's hmac module.
    assert_eq!(
        answer["encryptedToken"],
        "46a324cfb7c2ec760e4cd561586a53aadb6fc7561eb8d626d6ee1b71d808b3c0"
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_json_413_and_stores_nothing() {
    let herald =
        TestHerald::start_with(Arc::new(SystemClock), |c| c.api.max_payload_bytes = 1024).await;
    let src = source(
        &herald,
        json!({"name": "Anything", "type": "generic-webhook"}),
    )
    .await;
    let url = src["ingestUrl"].as_str().unwrap();
    for size in [2_000, 1024 * 1024] {
        let body = format!("{{\"x\":\"{}\"}}", "y".repeat(size));
        let refused = send(
            url,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(refused.status(), 413, "{size} bytes");
        let (_, answer) = read(refused).await;
        assert_eq!(answer["code"], "payload_too_large", "{answer}");
    }
    assert!(messages(&herald, src["appId"].as_str().unwrap())
        .await
        .is_empty());
    let path = format!("/source/{}/log", src["id"].as_str().unwrap());
    let (_, log) = ingest_api(&herald, reqwest::Method::GET, &path, None).await;
    assert_eq!(log["data"][0]["reason"], "too_large");
    assert_eq!(log["data"][0]["statusCode"], 413);
}

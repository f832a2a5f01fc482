//! Endpoint templates and chat destinations, end to end: what the receiver gets is what the
//! template says, signed; a template that cannot render fails its delivery in the log.

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{json, Value};
use standardwebhooks::Webhook;

use crate::helpers::{Receiver, TestHerald};

async fn herald_with_app() -> (TestHerald, String) {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    (h, app)
}

#[tokio::test]
async fn an_http_template_sets_method_headers_and_body_and_the_signature_covers_it() {
    let (h, app) = herald_with_app().await;
    let rx = Receiver::start().await;
    let ep = h.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap();
    let template = json!({
        "method": "put",
        "body": "{\"kind\": {{ event_type | tojson }}, \"name\": {{ payload.contact.name | tojson }}}",
        "headers": {"x-contact-id": "{{ payload.contact.id }}"},
        "contentType": "application/vnd.acme+json"
    });
    let (status, saved) = h
        .call(
            Method::PUT,
            &format!("/app/{app}/endpoint/{ep_id}/template"),
            Some(template),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["isDefault"], false);

    let msg = h
        .publish(
            &app,
            json!({"eventType": "contact.created", "payload": {"contact": {"id": 42, "name": "Ada"}}}),
        )
        .await;
    let got = rx.wait_for(1).await.remove(0);
    assert_eq!(got.method, Method::PUT);
    assert_eq!(got.header("x-contact-id"), "42");
    assert_eq!(got.header("content-type"), "application/vnd.acme+json");
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body, json!({"kind": "contact.created", "name": "Ada"}));
    assert_eq!(got.header("webhook-id"), msg);

    // The signature is over the bytes sent, so a standard verifier accepts them.
    let (_, secret) = h.get(&format!("/app/{app}/endpoint/{ep_id}/secret")).await;
    let verifier = Webhook::new(secret["key"].as_str().unwrap()).unwrap();
    verifier
        .verify(&got.body, &got.headers)
        .expect("the signature covers the rendered body");
}

#[tokio::test]
async fn templates_can_be_read_simulated_and_removed() {
    let (h, app) = herald_with_app().await;
    let ep = h
        .endpoint(&app, json!({"url": "https://example.com/hook"}))
        .await;
    let path = format!(
        "/app/{app}/endpoint/{}/template",
        ep["id"].as_str().unwrap()
    );

    // No template: the payload goes as published.
    let (status, current) = h.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(current["isDefault"], true);
    assert!(current.get("body").is_none_or(Value::is_null), "{current}");

    let sample = json!({"eventType": "invoice.paid", "payload": {"amount": 1250}});
    let (status, out) = h.post(&format!("{path}/simulate"), sample.clone()).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        out["body"],
        Value::Null,
        "nothing to render: the payload is sent as is"
    );

    let (status, _) = h
        .call(
            Method::PUT,
            &path,
            Some(json!({"body": "{{ event_type }}: {{ payload.amount / 100 }}", "contentType": "text/plain"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, out) = h.post(&format!("{path}/simulate"), sample.clone()).await;
    assert_eq!(out["body"], "invoice.paid: 12.5");
    assert_eq!(out["contentType"], "text/plain");

    // A template given in the request is tried without being saved.
    let mut trial = sample.clone();
    trial["template"] = json!({"body": "{{ payload.amount }} cents"});
    let (_, out) = h.post(&format!("{path}/simulate"), trial).await;
    assert_eq!(out["body"], "1250 cents");
    let (_, current) = h.get(&path).await;
    assert_eq!(
        current["body"],
        "{{ event_type }}: {{ payload.amount / 100 }}"
    );

    let (status, _) = h.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, current) = h.get(&path).await;
    assert_eq!(current["isDefault"], true);
}

#[tokio::test]
async fn bad_templates_are_refused_with_the_part_and_reason() {
    let (h, app) = herald_with_app().await;
    let ep = h
        .endpoint(&app, json!({"url": "https://example.com/hook"}))
        .await;
    let path = format!(
        "/app/{app}/endpoint/{}/template",
        ep["id"].as_str().unwrap()
    );
    let cases = [
        (json!({"body": "{% if %}"}), "body"),
        (json!({"subject": "only for email"}), "subject"),
        (json!({"method": "TELEPORT"}), "method"),
        (json!({"headers": {"content-length": "1"}}), "headers"),
        (json!({"body": "x", "surprise": 1}), ""),
    ];
    for (template, part) in cases {
        let (status, body) = h.call(Method::PUT, &path, Some(template.clone())).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{template}: {status} {body}"
        );
        if !part.is_empty() {
            assert!(body.to_string().contains(part), "{template}: {body}");
        }
    }
    // A sample that fails to render says why, and is not a server error.
    let (status, body) = h
        .post(
            &format!("{path}/simulate"),
            json!({"eventType": "a", "payload": {}, "template": {"body": "{{ 1 / 0 }}"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("template"), "{body}");
}

#[tokio::test]
async fn a_template_that_fails_at_delivery_fails_the_message_at_once_with_the_reason() {
    let (h, app) = herald_with_app().await;
    let rx = Receiver::start().await;
    let ep = h.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap();
    let path = format!("/app/{app}/endpoint/{ep_id}/template");
    // Valid syntax, but dividing by the payload's zero fails when rendered.
    let (status, _) = h
        .call(
            Method::PUT,
            &path,
            Some(json!({"body": "{{ 10 / payload.n }}"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let msg = h
        .publish(&app, json!({"eventType": "a", "payload": {"n": 0}}))
        .await;
    h.wait_recorded(1).await;
    let attempts = h.attempts(&app, &msg).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 2, "{attempts:?}");
    assert_eq!(attempts[0]["errorKind"], "template", "{attempts:?}");
    let detail = attempts[0]["errorDetail"].as_str().unwrap();
    assert!(detail.contains("template `body`"), "{detail}");
    // Failed for good, not scheduled for a retry.
    let (_, sent) = h.get(&format!("/app/{app}/endpoint/{ep_id}/msg")).await;
    assert_eq!(sent["data"][0]["status"], 2, "{sent}");
    assert!(sent["data"][0].get("nextAttempt").is_none(), "{sent}");
    assert!(rx.received().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn chat_endpoints_get_the_services_message_json() {
    let (h, app) = herald_with_app().await;
    let rx = Receiver::start().await;
    let hook = rx.url.trim_start_matches("http://");
    for service in ["slack", "discord", "teams"] {
        h.endpoint(
            &app,
            json!({"url": format!("{service}+http://{hook}/{service}")}),
        )
        .await;
    }
    let msg = h
        .publish(
            &app,
            json!({"eventType": "billing.tier_changed", "payload": {"tier": "gold"}}),
        )
        .await;
    let got = rx.wait_for(3).await;
    let by_path = |service: &str| -> Value {
        let r = got
            .iter()
            .find(|r| r.uri.path().ends_with(service))
            .unwrap_or_else(|| panic!("nothing for {service}"));
        assert_eq!(r.header("content-type"), "application/json");
        serde_json::from_slice(&r.body).unwrap()
    };
    let text = format!(
        "*billing.tier_changed* ({msg})\n```\n{}\n```",
        serde_json::to_string_pretty(&json!({"tier": "gold"})).unwrap()
    );
    assert_eq!(by_path("slack"), json!({"text": text}));
    assert_eq!(by_path("discord"), json!({"content": text}));
    let teams = by_path("teams");
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["body"][0]["text"], text);
}

#[tokio::test]
async fn a_chat_endpoint_with_its_own_template_sends_exactly_that() {
    let (h, app) = herald_with_app().await;
    let rx = Receiver::start().await;
    let url = format!("slack+{}", rx.url);
    let ep = h.endpoint(&app, json!({"url": url})).await;
    let path = format!(
        "/app/{app}/endpoint/{}/template",
        ep["id"].as_str().unwrap()
    );
    let (status, current) = h.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(current["isDefault"], true, "the Slack default is shown");
    assert!(current["body"].as_str().unwrap().contains("\"text\""));
    let template = json!({
        "body": "{\"text\": {{ (\"New \" ~ payload.plan ~ \" customer\") | tojson }}, \"blocks\": []}"
    });
    let (status, _) = h.call(Method::PUT, &path, Some(template)).await;
    assert_eq!(status, StatusCode::OK);
    h.publish(&app, json!({"eventType": "a", "payload": {"plan": "pro"}}))
        .await;
    let got = rx.wait_for(1).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body, json!({"text": "New pro customer", "blocks": []}));
}

#[tokio::test]
async fn destination_urls_are_checked_by_their_kind() {
    let (h, app) = herald_with_app().await;
    let cases = [
        ("ftp://example.com/x", "not a destination"),
        ("mailto:ops@example.com", "not enabled"),
        ("nats://127.0.0.1:4222/", "subject"),
        ("nats://127.0.0.1:4222/orders.*", "wildcards"),
        ("amqp://127.0.0.1/?queue=x", "queue"),
        ("redis://127.0.0.1/", "stream"),
        ("slack+ftp://hooks.slack.com/x", "not a destination"),
    ];
    for (url, expected) in cases {
        let (status, body) = h
            .post(&format!("/app/{app}/endpoint"), json!({"url": url}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        let msg = body["detail"][0]["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(expected), "{url}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "url"]), "{url}");
    }
}

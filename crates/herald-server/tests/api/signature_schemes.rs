//! Signatures in another style: a provider moving to Herald keeps the signature its
//! customers' receivers already verify. Checked with Herald's own inbound verifiers for
//! GitHub and Stripe (tested against those providers' documented examples), which read
//! the headers as the providers send them.

use axum::http::StatusCode;
use base64::Engine;
use herald_inbound::config::Algorithm;
use herald_inbound::verify::sign_hex;
use herald_inbound::{verifier, verify, Inbound};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Received, Receiver, TestHerald};

/// A customer's existing secret, as Herald takes it: `whsec_` + base64 of its bytes.
const EXISTING: &str = "the-secret-my-customers-already-have";

fn imported() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(EXISTING)
    )
}

fn verified_as(kind: &str, got: &Received) -> bool {
    let verifier = verifier(kind, &json!({"secret": EXISTING})).unwrap();
    let request = Inbound {
        headers: &got.headers,
        body: &got.body,
        base_url: "",
        path_and_query: "",
        now: chrono::Utc::now(),
    };
    verify(&verifier, &request).is_ok()
}

#[tokio::test]
async fn github_and_stripe_style_signatures_verify_as_those_providers_do() {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    let (github_rx, stripe_rx, custom_rx) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let github = h
        .endpoint(
            &app,
            json!({"url": github_rx.url, "secret": imported(),
            "signatureScheme": {"type": "github", "header": "X-Hub-Signature-256"}}),
        )
        .await;
    assert_eq!(github["signatureScheme"]["type"], "github");
    h.endpoint(
        &app,
        json!({"url": stripe_rx.url, "secret": imported(),
        "signatureScheme": {"type": "stripe", "header": "Stripe-Signature"}}),
    )
    .await;
    h.endpoint(
        &app,
        json!({"url": custom_rx.url, "secret": imported(),
        "signatureScheme": {"type": "github", "header": "X-Acme-Signature-256"}}),
    )
    .await;
    h.publish(
        &app,
        json!({"eventType": "invoice.paid", "payload": {"amount": 1250}}),
    )
    .await;

    let got = github_rx.wait_for(1).await.remove(0);
    assert!(verified_as("github", &got), "{:?}", got.headers);
    let got = stripe_rx.wait_for(1).await.remove(0);
    assert!(verified_as("stripe", &got), "{:?}", got.headers);
    // A header of the provider's own name carries the same value.
    let got = custom_rx.wait_for(1).await.remove(0);
    let expected = sign_hex(Algorithm::Sha256, EXISTING, &[&got.body]);
    assert_eq!(
        got.header("x-acme-signature-256"),
        format!("sha256={expected}")
    );
    // The Standard Webhooks headers are still there.
    assert!(got.headers.contains_key("webhook-signature"));

    // Tampered with, it no longer verifies: the check above can fail.
    let mut tampered = github_rx.received().remove(0);
    tampered.body = b"{\"amount\": 1}".to_vec().into();
    assert!(!verified_as("github", &tampered));
}

#[tokio::test]
async fn a_scheme_that_cannot_sign_is_refused_and_null_removes_one() {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    let url = "https://example.com/hook";
    let refused = [
        json!({"url": url, "signatureScheme": {"type": "github", "header": "webhook-signature"}}),
        json!({"url": url, "signatureScheme": {"type": "github", "header": "two words"}}),
        json!({"url": url, "secret": "whsk_".to_owned() + &base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            "signatureScheme": {"type": "stripe", "header": "Stripe-Signature"}}),
        json!({"url": url, "signatureScheme": {"type": "md5", "header": "X-Sig"}}),
        json!({"url": "nats://127.0.0.1:4222/orders",
            "signatureScheme": {"type": "github", "header": "X-Sig"}}),
    ];
    for body in refused {
        let (status, answer) = h.post(&format!("/app/{app}/endpoint"), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
    }
    let (_, listed) = h.get(&format!("/app/{app}/endpoint")).await;
    assert_eq!(listed["data"], json!([]), "nothing was created");

    let ep = h
        .endpoint(
            &app,
            json!({"url": url,
            "signatureScheme": {"type": "github", "header": "X-Hub-Signature-256"}}),
        )
        .await;
    let path = format!("/app/{app}/endpoint/{}", ep["id"].as_str().unwrap());
    // A rotation to a key it cannot sign with is refused, and changes nothing.
    let ed25519 = "whsk_".to_owned() + &base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let (status, answer) = h
        .post(&format!("{path}/secret/rotate"), json!({"key": ed25519}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (_, secret) = h.get(&format!("{path}/secret")).await;
    assert!(secret["key"].as_str().unwrap().starts_with("whsec_"));
    let (_, kept) = h.call(Method::PUT, &path, Some(json!({"url": url}))).await;
    assert_eq!(kept["signatureScheme"]["header"], "X-Hub-Signature-256");
    let (_, cleared) = h
        .call(Method::PATCH, &path, Some(json!({"signatureScheme": null})))
        .await;
    assert!(cleared.get("signatureScheme").is_none(), "{cleared}");
}

//! API tokens through `/api/v1/auth/token`: made by admins, shown once, listed by their
//! first characters, revoked at once; app tokens and portal sessions cannot manage them.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{read, TestHerald};

async fn with_token(herald: &TestHerald, token: &str, method: Method, path: &str) -> StatusCode {
    let req = herald
        .http
        .request(method, format!("{}/api/v1{path}", herald.base))
        .bearer_auth(token);
    req.send().await.expect("request sent").status()
}

#[tokio::test]
async fn a_token_is_shown_once_listed_by_its_hint_and_revoked() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let (status, made) = herald
        .post(
            "/auth/token",
            json!({"description": "billing", "appId": "acme"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let value = made["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("hrld_") && value.len() == 45, "{value}");
    assert_eq!(made["hint"], value[..9]);
    assert_eq!(made["appId"], app.as_str());

    // The app token reaches its application only, and cannot manage tokens.
    assert_eq!(
        with_token(&herald, &value, Method::GET, &format!("/app/{app}")).await,
        200
    );
    assert_eq!(
        with_token(&herald, &value, Method::GET, "/auth/token").await,
        403
    );

    let (_, listed) = herald.get("/auth/token").await;
    let listed: &Vec<Value> = listed["data"].as_array().unwrap();
    let row = listed.iter().find(|t| t["id"] == made["id"]).unwrap();
    assert_eq!(row["hint"], value[..9]);
    assert!(row.get("value").is_none(), "{row}");
    assert!(!listed.iter().any(|t| t.to_string().contains(&value)));

    let id = made["id"].as_str().unwrap();
    let (status, _) = herald
        .call(Method::DELETE, &format!("/auth/token/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        with_token(&herald, &value, Method::GET, &format!("/app/{app}")).await,
        401
    );
    let (status, body) = herald
        .call(Method::DELETE, &format!("/auth/token/{id}"), None)
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn bad_token_requests_are_clear_errors() {
    let herald = TestHerald::start().await;
    for (body, field) in [
        (json!({"description": ""}), "description"),
        (json!({"description": "x".repeat(201)}), "description"),
        (json!({"description": "ci", "expiry": 5}), "expiry"),
        (json!({"description": "ci", "expiry": u64::MAX}), "expiry"),
    ] {
        let (status, answer) = herald.post("/auth/token", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer.to_string().contains(field), "{answer}");
    }
    let (status, answer) = herald
        .post(
            "/auth/token",
            json!({"description": "ci", "appId": "nobody"}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let resp = herald
        .request(Method::POST, "/auth/token")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, answer) = read(resp).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["code"].is_string() && answer["detail"].is_string());
}

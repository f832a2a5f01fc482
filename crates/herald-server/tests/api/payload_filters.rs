//! Payload filters, end to end: an endpoint receives only the messages whose payload meets
//! its filter; a bad filter is refused with where and why, and nothing is stored; the
//! simulate route says which filter stops a sample.

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Receiver, TestHerald};

fn order(amount: u32, country: &str) -> Value {
    json!({"eventType": "order.paid", "payload": {"amount": amount, "customer": {"country": country}}})
}

/// The endpoints a message was fanned out to.
async fn recipients(h: &TestHerald, app: &str, msg: &str) -> Vec<String> {
    let (status, page) = h.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut ids: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn an_endpoint_receives_only_the_payloads_its_filter_accepts() {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    let (big_rx, all_rx) = (Receiver::start().await, Receiver::start().await);
    let filter = json!({
        "amount": {"$gte": 100},
        "$or": [{"customer.country": {"$in": ["DE", "FR"]}}, {"amount": {"$gt": 1000}}]
    });
    let big = h
        .endpoint(&app, json!({"url": big_rx.url, "payloadFilter": filter}))
        .await;
    assert_eq!(big["payloadFilter"], filter, "shown as given");
    let all = h.endpoint(&app, json!({"url": all_rx.url})).await;
    let (big, all) = (big["id"].as_str().unwrap(), all["id"].as_str().unwrap());

    let small = h.publish(&app, order(50, "DE")).await;
    let far = h.publish(&app, order(500, "US")).await;
    let wanted = h.publish(&app, order(150, "FR")).await;
    let huge = h.publish(&app, order(5000, "US")).await;

    // Decided when published: the filtered endpoint has no delivery for the others.
    let mut both = vec![big.to_owned(), all.to_owned()];
    both.sort();
    assert_eq!(recipients(&h, &app, &small).await, [all]);
    assert_eq!(recipients(&h, &app, &far).await, [all]);
    assert_eq!(recipients(&h, &app, &wanted).await, both);
    assert_eq!(recipients(&h, &app, &huge).await, both);

    all_rx.wait_for(4).await;
    let got: Vec<String> = big_rx
        .wait_for(2)
        .await
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert!(got.contains(&wanted) && got.contains(&huge), "{got:?}");
}

#[tokio::test]
async fn a_bad_filter_is_refused_with_where_and_why_and_nothing_is_stored() {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    let bad = json!({"url": "https://example.com/hook",
        "payloadFilter": {"$or": [{"a": 1}, {"b": {"$regex": "^x"}}]}});
    let (status, body) = h.post(&format!("/app/{app}/endpoint"), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "payloadFilter"]));
    let msg = body["detail"][0]["msg"].as_str().unwrap();
    assert!(
        msg.contains("$or.1.b.$regex") && msg.contains("not an operator"),
        "{msg}"
    );
    let (_, listed) = h.get(&format!("/app/{app}/endpoint")).await;
    assert_eq!(listed["data"], json!([]), "nothing was created");

    let mut deep = json!({"a": 1});
    for _ in 0..12 {
        deep = json!({"$not": deep});
    }
    let (status, body) = h
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "https://example.com/hook", "payloadFilter": deep}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"][0]["msg"].as_str().unwrap().contains("deep"));
}

#[tokio::test]
async fn a_filter_is_kept_by_a_replacement_without_it_and_removed_by_null() {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    let filter = json!({"tier": "gold"});
    let ep = h
        .endpoint(
            &app,
            json!({"url": "https://example.com/hook", "payloadFilter": filter}),
        )
        .await;
    let path = format!("/app/{app}/endpoint/{}", ep["id"].as_str().unwrap());

    // A Svix SDK's update knows nothing of the filter, and must not drop it.
    let (status, replaced) = h
        .call(
            Method::PUT,
            &path,
            Some(json!({"url": "https://example.com/other"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["payloadFilter"], filter);

    let changed = json!({"tier": {"$in": ["gold", "platinum"]}});
    let (_, patched) = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"payloadFilter": changed})),
        )
        .await;
    assert_eq!(patched["payloadFilter"], changed);
    let (status, refused) = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"payloadFilter": {"tier": {"$gt": {}}}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (_, kept) = h.get(&path).await;
    assert_eq!(
        kept["payloadFilter"], changed,
        "a refused change changes nothing"
    );

    let (_, cleared) = h
        .call(Method::PATCH, &path, Some(json!({"payloadFilter": null})))
        .await;
    assert!(cleared.get("payloadFilter").is_none(), "{cleared}");
}

#[tokio::test]
async fn simulate_names_the_filter_that_stops_a_sample() {
    let h = TestHerald::start().await;
    let app = h.app("acme").await;
    h.event_type("order.paid").await;
    let ep = h
        .endpoint(
            &app,
            json!({"url": "https://example.com/hook", "filterTypes": ["order.paid"],
                   "channels": ["eu"], "payloadFilter": {"amount": {"$gte": 100}}}),
        )
        .await;
    let path = format!(
        "/app/{app}/endpoint/{}/filter/simulate",
        ep["id"].as_str().unwrap()
    );
    let simulate = |body: Value| h.post(&path, body);

    let (status, out) = simulate(json!({"payload": {"amount": 150}, "channels": ["eu"]})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["matches"], true);
    assert_eq!(out["payloadFilter"], json!({"amount": {"$gte": 100}}));

    let (_, out) = simulate(json!({"payload": {"amount": 50}, "channels": ["eu"]})).await;
    assert_eq!(out["matches"], false);
    assert_eq!(
        out["reason"],
        "the payload filter: `amount` must be >= 100: it is 50"
    );

    let (_, out) =
        simulate(json!({"payload": {"amount": 150}, "eventType": "order.refunded"})).await;
    assert!(
        out["reason"].as_str().unwrap().contains("filterTypes"),
        "{out}"
    );
    let (_, out) = simulate(json!({"payload": {"amount": 150}, "channels": ["us"]})).await;
    assert!(
        out["reason"].as_str().unwrap().contains("channels"),
        "{out}"
    );
    // A message without channels never reaches an endpoint that follows some.
    let (_, out) = simulate(json!({"payload": {"amount": 150}})).await;
    assert!(
        out["reason"].as_str().unwrap().contains("channels"),
        "{out}"
    );

    // A filter given in the request is tried instead, and checked like a stored one.
    let (_, out) = simulate(
        json!({"payload": {"amount": 50}, "channels": ["eu"], "payloadFilter": {"amount": 50}}),
    )
    .await;
    assert_eq!(out["matches"], true, "{out}");
    let (status, out) = simulate(json!({"payload": {}, "payloadFilter": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    let (status, out) = simulate(json!({"payload": {}, "unknown": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    let (status, _) = h
        .post(
            &format!("/app/{app}/endpoint/ep_nope/filter/simulate"),
            json!({"payload": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

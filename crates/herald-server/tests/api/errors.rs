//! Bad input gets a clear `{code, detail}` error with the right status, and loses nothing;
//! lists page through everything exactly once.

use std::collections::HashSet;
use std::sync::Arc;

use herald_core::SystemClock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{read, TestHerald};

async fn raw(herald: &TestHerald, method: Method, path: &str, body: &str) -> (u16, Value) {
    let resp = herald
        .request(method, path)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    (status.as_u16(), body)
}

fn locs(body: &Value) -> Vec<String> {
    body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["loc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let herald = TestHerald::start().await;
    let (status, body) = raw(&herald, Method::POST, "/app", r#"{"name": "#).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_json");
    let (status, _) = raw(&herald, Method::POST, "/app", r#"{"name": "a"} trailing"#).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn invalid_fields_are_a_422_listing_every_field() {
    let herald = TestHerald::start().await;
    let (status, body) = herald
        .post("/app", json!({"name": "", "uid": "not valid!"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "validation");
    assert_eq!(locs(&body), ["body.name", "body.uid"]);

    let app = herald.app("acme").await;
    let (status, body) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "ftp://x", "filterTypes": ["no.such.type"]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(locs(&body), ["body.url", "body.filterTypes"]);

    let (status, body) = herald
        .post(&format!("/app/{app}/endpoint"), json!({"url": 42}))
        .await;
    assert_eq!(status, 422, "wrong type");
    assert_eq!(locs(&body), ["body.url"]);
    let (status, body) = herald
        .post(&format!("/app/{app}/msg"), json!({"payload": {}}))
        .await;
    assert_eq!(status, 422, "missing field: {body}");
}

#[tokio::test]
async fn unknown_resources_are_a_404() {
    let herald = TestHerald::start().await;
    for path in [
        "/app/app_nope",
        "/app/nope/endpoint",
        "/event-type/nope",
        "/no/such/route",
    ] {
        let (status, body) = herald.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
    let app = herald.app("acme").await;
    let (status, _) = herald.get(&format!("/app/{app}/msg/msg_nope")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn routes_herald_does_not_offer_are_a_404_that_says_so() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let (status, body) = herald
        .post(&format!("/app/{app}/msg/bulk-expunge"), json!({}))
        .await;
    // A 4xx, which Svix's SDKs do not retry, with a code that is not `not_found`.
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_implemented");
}

#[tokio::test]
async fn duplicate_uid_and_event_id_are_a_409() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let (status, body) = herald
        .post("/app", json!({"name": "again", "uid": "acme"}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "conflict");
    let (status, existing) = herald
        .post(
            "/app?get_if_exists=true",
            json!({"name": "again", "uid": "acme"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(existing["id"], app.as_str());

    let msg = json!({"eventType": "a", "eventId": "evt-1", "payload": {}});
    herald.publish(&app, msg.clone()).await;
    let (status, _) = herald.post(&format!("/app/{app}/msg"), msg).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn payload_over_the_limit_is_a_413() {
    let herald =
        TestHerald::start_with(Arc::new(SystemClock), |c| c.api.max_payload_bytes = 1024).await;
    let app = herald.app("acme").await;
    let big = "x".repeat(2000);
    let (status, body) = herald
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a", "payload": {"big": big}}),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");
    // A body far beyond the limit is refused before it is read whole.
    let huge = "y".repeat(1024 * 1024);
    let (status, _) = herald
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a", "payload": {"huge": huge}}),
        )
        .await;
    assert_eq!(status, 413);
    let (_, list) = herald.get(&format!("/app/{app}/msg")).await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn missing_or_wrong_token_is_a_401() {
    let herald = TestHerald::start().await;
    let url = format!("{}/api/v1/app", herald.base);
    let (status, body) = read(herald.http.get(&url).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "authentication_failed");
    let (status, _) = read(
        herald
            .http
            .get(&url)
            .bearer_auth("hrld_wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = read(
        herald
            .http
            .get(format!("{}/api/v1/health", herald.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 204, "health needs no token");
}

#[tokio::test]
async fn app_scoped_token_sees_only_its_application() {
    let herald = TestHerald::start().await;
    let mine = herald.app("mine").await;
    let theirs = herald.app("theirs").await;
    let (status, access) = herald
        .post(&format!("/auth/app-portal-access/{mine}"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert!(access["url"].as_str().unwrap().contains("/portal/#key="));
    let token = access["token"].as_str().unwrap();
    let as_portal = |path: String| {
        herald
            .http
            .get(format!("{}/api/v1{path}", herald.base))
            .bearer_auth(token)
            .send()
    };

    let (status, body) = read(as_portal(format!("/app/{mine}")).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], mine.as_str());
    for path in [
        format!("/app/{theirs}"),
        format!("/app/{theirs}/endpoint"),
        format!("/app/{theirs}/msg"),
    ] {
        let (status, body) = read(as_portal(path.clone()).await.unwrap()).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = read(as_portal("/app".into()).await.unwrap()).await;
    assert_eq!(status, 403, "listing every application is for admins");

    // What only the provider may do: rename its application (a uid could be taken from a
    // tenant not yet created), or publish (messages are signed with the customer's secrets).
    let portal = |method: Method, path: String, body: Value| {
        herald
            .http
            .request(method, format!("{}/api/v1{path}", herald.base))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let forbidden = [
        (
            Method::PATCH,
            format!("/app/{mine}"),
            json!({"uid": "victim-corp"}),
        ),
        (
            Method::PUT,
            format!("/app/{mine}"),
            json!({"name": "x", "uid": "victim-corp"}),
        ),
        (
            Method::POST,
            format!("/app/{mine}/msg"),
            json!({"eventType": "a", "payload": {}}),
        ),
    ];
    for (method, path, body) in forbidden {
        let (status, _) = read(portal(method.clone(), path.clone(), body).await.unwrap()).await;
        assert_eq!(status, 403, "{method} {path}");
    }
    let (_, app) = herald.get(&format!("/app/{mine}")).await;
    assert_eq!(app["uid"], "mine");
}

#[tokio::test]
async fn changing_the_configured_admin_token_revokes_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let start = |token: &str| {
        let mut config = herald_server::Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().to_owned();
        config.admin_token = Some(herald_server::config::Secret::new(token));
        herald_server::start(config, Arc::new(SystemClock))
    };
    let (old, new) = (
        "hrld_old_token_0123456789abcdef0123",
        "hrld_new_token_0123456789abcdef0123",
    );
    let first = start(old).await.unwrap();
    first.shutdown();
    first.wait().await.unwrap();
    let second = start(new).await.unwrap();
    let url = format!("http://{}/api/v1/app", second.addr);
    let client = reqwest::Client::new();
    let status = |token: &'static str| {
        let req = client.get(&url).bearer_auth(token).send();
        async move { req.await.unwrap().status().as_u16() }
    };
    assert_eq!(status(new).await, 200);
    assert_eq!(status(old).await, 401, "the replaced token no longer works");
    second.shutdown();

    let short = start("too-short").await;
    assert!(short.is_err(), "a guessable admin token is refused");
}

#[tokio::test]
async fn bad_query_parameters_are_refused() {
    let herald = TestHerald::start().await;
    let (status, body) = herald.get("/app?limit=1000").await;
    assert_eq!(status, 422);
    assert_eq!(locs(&body), ["query.limit"]);
    let (status, body) = herald.get("/app?limit=ten").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_query");
    // A search with nothing to search for is refused, not answered with every message.
    let app = herald.app("acme").await;
    let (status, body) = herald.get(&format!("/app/{app}/msg?search=%20.@-")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(locs(&body), ["query.search"]);
}

#[tokio::test]
async fn payload_breaking_the_event_type_schema_is_a_422() {
    let herald = TestHerald::start().await;
    let schema = json!({"1": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}});
    let (status, body) = herald
        .post(
            "/event-type",
            json!({"name": "contact.created", "description": "", "schemas": schema}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let app = herald.app("acme").await;
    let (status, body) = herald
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "contact.created", "payload": {"email": 5}}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["detail"][0]["msg"].as_str().unwrap().contains("email"),
        "{body}"
    );
    herald
        .publish(
            &app,
            json!({"eventType": "contact.created", "payload": {"email": "a@b.c"}}),
        )
        .await;
    let (status, _) = herald
        .post(
            "/event-type",
            json!({"name": "bad.schema", "description": "", "schemas": {"1": {"type": 12}}}),
        )
        .await;
    assert_eq!(status, 422, "an invalid schema is refused");
}

/// Publishing remembers the event type it looked up (`lookups.rs`); a schema given or
/// changed on this node applies to the very next publish all the same.
#[tokio::test]
async fn a_schema_applies_from_the_next_publish_on() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let path = format!("/app/{app}/msg");
    let breaking = json!({"eventType": "order.paid", "payload": {"amount": "ten"}});
    let (status, body) = herald.post(&path, breaking.clone()).await;
    assert_eq!(status, 202, "no event type yet, so no schema: {body}");
    let schema =
        |kind: &str| json!({"1": {"type": "object", "properties": {"amount": {"type": kind}}}});
    let (status, body) = herald
        .post(
            "/event-type",
            json!({"name": "order.paid", "description": "", "schemas": schema("number")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = herald.post(&path, breaking.clone()).await;
    assert_eq!(status, 422, "the new schema applies at once: {body}");
    let (status, body) = herald
        .call(
            reqwest::Method::PUT,
            "/event-type/order.paid",
            Some(json!({"description": "", "schemas": schema("string")})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = herald.post(&path, breaking).await;
    assert_eq!(status, 202, "and so does a changed one: {body}");
}

/// Reads every page of `path` with `limit`, forward, returning the ids in order.
async fn page_through(herald: &TestHerald, path: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut iterator: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &iterator {
            Some(it) => format!("{path}{sep}limit={limit}&iterator={it}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (status, page) = herald.get(&url).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        ids.extend(data.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        if page["done"] == true {
            return ids;
        }
        iterator = Some(page["iterator"].as_str().unwrap().to_owned());
    }
}

#[tokio::test]
async fn pagination_visits_every_item_exactly_once() {
    let herald = TestHerald::start().await;
    let mut apps = Vec::new();
    for i in 0..33 {
        apps.push(herald.app(&format!("app-{i}")).await);
    }
    let seen = page_through(&herald, "/app", 10).await;
    assert_eq!(seen, apps, "oldest first, none missing or repeated");

    let app = &apps[0];
    let mut msgs = Vec::new();
    for i in 0..31 {
        msgs.push(
            herald
                .publish(app, json!({"eventType": "a", "payload": {"i": i}}))
                .await,
        );
    }
    let seen = page_through(&herald, &format!("/app/{app}/msg"), 7).await;
    assert_eq!(seen.len(), 31);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 31);
    msgs.reverse();
    assert_eq!(seen, msgs, "newest first");

    // The previous-page iterator leads back to the page before.
    let (_, first) = herald.get(&format!("/app/{app}/msg?limit=5")).await;
    let next = first["iterator"].as_str().unwrap();
    let (_, second) = herald
        .get(&format!("/app/{app}/msg?limit=5&iterator={next}"))
        .await;
    let prev = second["prevIterator"].as_str().unwrap();
    let (_, back) = herald
        .get(&format!("/app/{app}/msg?limit=5&iterator={prev}"))
        .await;
    assert_eq!(back["data"], first["data"]);
}

#[tokio::test]
async fn older_svix_paths_still_answer() {
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let receiver = crate::helpers::Receiver::start().await;
    let endpoint = herald.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    let ep = endpoint["id"].as_str().unwrap();
    for path in [
        format!("/app/{app}/msg/{msg}/attempt"),
        format!("/app/{app}/msg/{msg}/endpoint/{ep}/attempt"),
    ] {
        let (status, list) = herald.get(&path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(list["data"][0]["msgId"], msg.as_str(), "{path}");
    }
    let schema =
        json!({"type": "object", "properties": {"email": {"type": "string", "format": "email"}}});
    let (status, body) = herald
        .post(
            "/event-type/schema/generate-example",
            json!({"schema": schema}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["example"], json!({"email": "user@example.com"}));
}

/// Every route of the OpenAPI document that names an application, called with a portal
/// token of another application: 403 or 404 each time, never data, and nothing changed.
#[tokio::test]
async fn portal_token_gets_nothing_from_any_route_of_another_application() {
    let herald = TestHerald::start().await;
    let mine = herald.app("mine").await;
    let theirs = herald.app("theirs").await;
    let receiver = crate::helpers::Receiver::start().await;
    let endpoint = herald.endpoint(&theirs, json!({"url": receiver.url})).await;
    let ep = endpoint["id"].as_str().unwrap();
    let msg = herald
        .publish(&theirs, json!({"eventType": "a", "payload": {"secret": 1}}))
        .await;
    herald.wait_recorded(1).await;
    let attempt = herald.attempts(&theirs, &msg).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, access) = herald
        .post(&format!("/auth/app-portal-access/{mine}"), json!({}))
        .await;
    let token = access["token"].as_str().unwrap();

    let (_, doc) = herald.get("/openapi.json").await;
    // A body every route can parse, so that no request stops at validation.
    let body = json!({"name": "x", "url": "http://127.0.0.1:9/hook", "eventType": "a",
        "payload": {}, "since": "2020-01-01T00:00:00Z", "after": "2020-01-01T00:00:00Z",
        "offset": 0, "headers": {}, "description": "d"});
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.contains("{app_id}") {
            continue;
        }
        let url = path
            .replace("{app_id}", &theirs)
            .replace("{endpoint_id}", ep)
            .replace("{sink_id}", ep)
            .replace("{subscription_id}", "nightly")
            .replace("{consumer_id}", "worker")
            .replace("{msg_id}", &msg)
            .replace("{attempt_id}", &attempt);
        for method in ops.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = herald
                .http
                .request(method.clone(), format!("{}{url}", herald.base))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, answer) = read(resp).await;
            assert!(
                [403, 404].contains(&status.as_u16()),
                "{method} {url}: {status} {answer}"
            );
            walked += 1;
        }
    }
    assert!(walked >= 30, "walked {walked} routes");
    let (status, still) = herald.get(&format!("/app/{theirs}/endpoint/{ep}")).await;
    assert_eq!(status, 200);
    assert_eq!(still["url"], endpoint["url"]);
    assert_eq!(
        herald.attempts(&theirs, &msg).await[0]["response"],
        "received"
    );
}

#[tokio::test]
async fn nul_characters_are_refused_not_a_server_error() {
    let herald = TestHerald::start().await;
    let (status, body) = herald.post("/app", json!({"name": "a\u{0}b"})).await;
    assert_eq!(status, 422, "{body}");
    let app = herald.app("acme").await;
    let (status, body) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "http://127.0.0.1:9/h", "metadata": {"k": "\u{0}"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // Inside a payload a NUL is just an escape sequence in JSON text: stored and delivered.
    herald
        .publish(
            &app,
            json!({"eventType": "a", "payload": {"text": "a\u{0}b"}}),
        )
        .await;
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after_and_others_do_not() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.api.rate_limit_per_token = 1;
        c.api.rate_limit_burst = 3;
    })
    .await;
    let app = herald.app("acme").await; // one request
    let (_, portal) = herald
        .post(&format!("/auth/app-portal-access/{app}"), json!({}))
        .await; // two
    let portal_token = portal["token"].as_str().unwrap().to_owned();
    // A burst of 3 at 1 a second: of six quick requests, the last ones must wait.
    let mut limited = None;
    for _ in 0..6 {
        let resp = herald.request(Method::GET, "/app").send().await.unwrap();
        if resp.status().as_u16() == 429 {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.expect("the token was limited");
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (_, body) = read(resp).await;
    assert_eq!(body["code"], "rate_limited");
    assert!(body["detail"].as_str().unwrap().contains("try again"));

    // Another token has its own bucket.
    let other = herald
        .http
        .get(format!("{}/api/v1/app/{app}", herald.base))
        .bearer_auth(&portal_token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_refused_before_any_work() {
    let herald = TestHerald::start().await;
    let mut too_many = herald.request(Method::GET, "/app");
    for n in 0..120 {
        too_many = too_many.header(format!("x-pad-{n}"), "x");
    }
    let status = too_many.send().await.unwrap().status().as_u16();
    assert_eq!(status, 431, "more than 100 headers");
    let huge = herald
        .request(Method::GET, "/app")
        .header("x-pad", "x".repeat(512 * 1024))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(huge, 431, "a header block over the limit");
    // The server is still fine.
    let (status, _) = herald.get("/app").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn endpoints_per_application_are_bounded() {
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.api.max_endpoints_per_app = 2;
    })
    .await;
    let app = herald.app("acme").await;
    for n in 0..2 {
        herald
            .endpoint(&app, json!({"url": format!("https://example.com/{n}")}))
            .await;
    }
    let (status, body) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "https://example.com/3"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("2 endpoints"));
    let other = herald.app("other").await;
    herald
        .endpoint(&other, json!({"url": "https://example.com/1"}))
        .await;
}

//! The OpenAPI document as a client generator reads it: every reference resolves, bounds
//! are stated, and a walk over every operation with requests a careless or hostile client
//! sends (unknown ids, out-of-range parameters, bodies of the wrong shape, no JSON at all),
//! and every read with real ids, gets only statuses the document declares for that
//! operation, never a 5xx, and bodies that match the schema declared for their status.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestHerald;
use crate::services::service;

/// Every `$ref` in `value`.
fn references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => {
                        found.insert(target.clone());
                    }
                    _ => references(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_resolves_and_list_bounds_are_stated() {
    let h = TestHerald::start().await;
    let (_, doc) = h.get("/openapi.json").await;
    let mut found = BTreeSet::new();
    references(&doc, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for target in &found {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(
            doc.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }
    let list = &doc["paths"]["/api/v1/app"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("a limit parameter");
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&json!(1), &json!(250)),
        "{limit}"
    );
}

/// The document passes an OpenAPI linter: `openapi-spec-validator`, named by
/// `HERALD_TEST_OPENAPI_VALIDATOR` (`.ci/run` installs it beside the SMTP server).
#[tokio::test]
async fn the_document_passes_an_openapi_validator() {
    let Some(validator) = service("HERALD_TEST_OPENAPI_VALIDATOR") else {
        return;
    };
    let h = TestHerald::start().await;
    let (_, doc) = h.get("/openapi.json").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = tokio::process::Command::new(&validator)
        .arg(&file)
        .output()
        .await
        .expect("the validator runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A request of the walk: what it changes from a plain one.
enum Probe {
    /// Ids in the path that name nothing, and an empty JSON object as the body.
    UnknownIds,
    /// Parameters out of range or of the wrong type.
    BadQuery,
    /// A JSON body of the wrong shape.
    WrongShape,
    /// A body that is not JSON.
    NotJson,
    /// A plain read of real things (`GET` only): the answer a generated client parses.
    Read,
}

/// What is wrong with `body`, answered with `status` to `operation`, against the schema
/// `doc` declares for that status (with `doc`'s components): `None` if nothing, or if no
/// JSON body is declared.
fn body_mismatch(doc: &Value, operation: &Value, status: &str, body: &str) -> Option<String> {
    let declared = &operation["responses"][status]["content"]["application/json"]["schema"];
    let mut schema = declared.as_object()?.clone();
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Some("the body is not JSON".to_owned());
    };
    schema.insert("components".to_owned(), doc["components"].clone());
    let compiled = jsonschema::options()
        .should_validate_formats(true)
        .build(&Value::Object(schema));
    let validator = match compiled {
        Ok(validator) => validator,
        Err(e) => return Some(format!("the declared schema does not compile: {e}")),
    };
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(3)
        .map(|e| format!("{e} (at `{}`)", e.instance_path))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

#[tokio::test]
async fn no_operation_answers_an_undeclared_status_or_a_server_error() {
    let h = TestHerald::start().await;
    // Real ids, so that the probes after the first get past the lookups to the parameters
    // and bodies; unknown ids in the first probe.
    let ids = real_ids(&h).await;
    let (_, doc) = h.get("/openapi.json").await;
    let mut walked = 0;
    let mut wrong = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            if path.ends_with("/listen") {
                continue; // a WebSocket; its refusals are tested in the CLI's listen suite
            }
            // Deleting the real things would leave the rest of the walk at the lookups.
            let probes: &[Probe] = match method {
                Method::DELETE => &[Probe::UnknownIds],
                Method::GET => &[
                    Probe::Read,
                    Probe::UnknownIds,
                    Probe::BadQuery,
                    Probe::WrongShape,
                    Probe::NotJson,
                ],
                _ => &[
                    Probe::UnknownIds,
                    Probe::BadQuery,
                    Probe::WrongShape,
                    Probe::NotJson,
                ],
            };
            let declared: BTreeSet<&str> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for probe in probes {
                let url = fill(path, &ids, matches!(probe, Probe::UnknownIds));
                let mut request = h
                    .http
                    .request(method.clone(), format!("{}{url}", h.base))
                    .bearer_auth(&h.token);
                request = match probe {
                    Probe::Read => request,
                    Probe::UnknownIds => request.json(&json!({})),
                    Probe::BadQuery => request
                        .query(&[
                            ("limit", "0"),
                            ("order", "sideways"),
                            ("before", "yesterday"),
                        ])
                        .json(&json!({})),
                    Probe::WrongShape => request.json(&json!([1, {"url": 7}])),
                    Probe::NotJson => request
                        .header("content-type", "application/json")
                        .body("{not json"),
                };
                let response = request.send().await.expect("an answer");
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                walked += 1;
                if status.is_server_error() || !declared.contains(status.as_str()) {
                    wrong.push(format!("{method} {url}: {status} {body}"));
                } else if let Some(problem) = body_mismatch(&doc, operation, status.as_str(), &body)
                {
                    wrong.push(format!("{method} {url}: {status} {problem}: {body}"));
                }
            }
        }
    }
    assert!(walked > 250, "walked {walked} requests");
    assert!(
        wrong.is_empty(),
        "{} undeclared:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Ids of real things, by the name of the path parameter that takes them.
async fn real_ids(h: &TestHerald) -> BTreeMap<&'static str, String> {
    let app = h.app("acme").await;
    h.event_type("order.paid").await;
    let receiver = crate::helpers::Receiver::start().await;
    let endpoint = h.endpoint(&app, json!({"url": receiver.url})).await;
    let msg = h
        .publish(&app, json!({"eventType": "order.paid", "payload": {}}))
        .await;
    h.wait_recorded(1).await;
    let attempt = h.attempts(&app, &msg).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The inbound API lives beside `/api/v1`, not under it.
    let source = h
        .http
        .post(format!("{}/ingest/api/v1/source", h.base))
        .bearer_auth(&h.token)
        .json(&json!({"name": "gh", "type": "github", "config": {"secret": "s3cr3t"}}))
        .send()
        .await
        .expect("an answer");
    let (_, source) = crate::helpers::read(source).await;
    BTreeMap::from([
        ("app_id", app),
        ("endpoint_id", endpoint["id"].as_str().unwrap().to_owned()),
        ("msg_id", msg),
        ("attempt_id", attempt),
        ("event_type_name", "order.paid".to_owned()),
        (
            "source_id",
            source["id"].as_str().expect("an inbound source").to_owned(),
        ),
    ])
}

/// `path` with its ids filled in: the real ones where there are, the others unknown (all
/// unknown when `unknown`).
fn fill(path: &str, ids: &BTreeMap<&str, String>, unknown: bool) -> String {
    let mut url = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        url.push_str(&rest[..start]);
        let name = &rest[start + 1..end - 1];
        url.push_str(match ids.get(name) {
            Some(id) if !unknown => id,
            _ => "nope_42",
        });
        rest = &rest[end..];
    }
    url.push_str(rest);
    url
}

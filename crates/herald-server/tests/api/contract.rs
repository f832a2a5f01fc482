//! Every successful answer the end-to-end tests get through [`TestHerald`]'s requests is
//! checked against the OpenAPI document, so a client generated from the document parses
//! what Herald really sends, for `POST`, `PUT` and `PATCH` as for `GET`. (The walk in
//! `openapi.rs` checks every route's error answers and plain reads; this covers the
//! answers of the real requests the tests make.)
//!
//! [`TestHerald`]: crate::helpers::TestHerald

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::StatusCode;
use serde_json::Value;

/// The document, and each answer's validator once compiled (`None`: no JSON declared).
struct Contract {
    doc: Value,
    validators: Mutex<HashMap<String, Option<Arc<jsonschema::Validator>>>>,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        doc: serde_json::to_value(herald_api::http::openapi()).expect("the document"),
        validators: Mutex::default(),
    })
}

/// The document's path template that `path` (without its query) is an instance of: the
/// one with the most literal segments, as a router prefers `/msg/expunge` to `/msg/{id}`.
fn template<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').collect();
    let paths = doc["paths"].as_object()?;
    paths
        .keys()
        .filter_map(|candidate| {
            let parts: Vec<&str> = candidate.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, candidate.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, candidate)| candidate)
}

/// Panics, naming the route and what does not match, when a successful answer to
/// `method path` (`path` below `/api/v1`) is not what the document declares.
pub fn check(method: &reqwest::Method, path: &str, status: StatusCode, body: &Value) {
    if !status.is_success() {
        return; // the walk in `openapi.rs` checks error answers
    }
    let path = path.split('?').next().unwrap_or_default();
    if path == "/openapi.json" {
        return; // the document itself
    }
    let contract = contract();
    let full = format!("/api/v1{path}");
    let Some(route) = template(&contract.doc, &full) else {
        panic!("{method} {full} answered {status}, but the document has no such path");
    };
    let operation = &contract.doc["paths"][route][method.as_str().to_ascii_lowercase()];
    let declared = &operation["responses"][status.as_str()];
    assert!(
        declared.is_object(),
        "{method} {route} answered {status}, which the document does not declare"
    );
    let key = format!("{method} {route} {status}");
    let validator = {
        let mut validators = contract.validators.lock().unwrap();
        validators
            .entry(key.clone())
            .or_insert_with(|| {
                let schema = declared["content"]["application/json"]["schema"].as_object()?;
                let mut schema = schema.clone();
                schema.insert("components".into(), contract.doc["components"].clone());
                // Formats too: a `date-time` that is not RFC 3339 breaks generated clients.
                let compiled = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&Value::Object(schema));
                Some(Arc::new(compiled.expect("the declared schema compiles")))
            })
            .clone()
    };
    let Some(validator) = validator else {
        return; // no JSON body declared
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .take(3)
        .map(|e| format!("{e} (at `{}`)", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{key}: the answer does not match the document: {}\n{body}",
        errors.join("; ")
    );
}

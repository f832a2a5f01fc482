//! Endpoint and application bodies as herald-server reads them (`parse_json`, then the
//! pure conversions and checks a handler runs before touching the store).
#![no_main]

use chrono::DateTime;
use herald_core::model::Endpoint;
use herald_core::validation::{endpoint_url, event_type_name};
use herald_server::error::ApiError;
use herald_server::http::extract::parse_json;
use herald_server::http::v1::application_types::ApplicationIn;
use herald_server::http::v1::endpoint_header_types::check_headers;
use herald_server::http::v1::endpoint_types::{check_fields, parse_secret, EndpointIn};
use http::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let well_formed = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    if let Some(endpoint) = parsed::<EndpointIn>(body, well_formed) {
        check_endpoint(endpoint);
    }
    if let Some(app) = parsed::<ApplicationIn>(body, well_formed) {
        if let Err(e) = app.validate() {
            assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
        }
    }
});

/// A client's body is a 200, a 400 or a 422: never a 500, and never a 400 for valid JSON.
fn parsed<T: serde::de::DeserializeOwned>(body: &[u8], well_formed: bool) -> Option<T> {
    match parse_json::<T>(body) {
        Ok(value) => {
            assert!(well_formed, "accepted malformed JSON");
            Some(value)
        }
        Err(ApiError::Validation(errors)) => {
            assert_eq!(errors[0].loc[0], "body");
            None
        }
        Err(ApiError::BadRequest { code, .. }) => {
            assert_eq!(code, "invalid_json");
            assert!(!well_formed, "valid JSON refused as malformed");
            None
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn check_endpoint(body: EndpointIn) {
    let given_secret = body.secret.clone();
    let url = body.url.clone();
    let endpoint = match body.into_new("app_fuzz", DateTime::UNIX_EPOCH) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            // Only a bad secret stops the conversion.
            let secret = given_secret.expect("refused without a secret");
            assert!(parse_secret("secret", &secret).is_err());
            assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
            return;
        }
    };
    assert_eq!(endpoint.url, url);
    if let Some(text) = given_secret {
        assert_eq!(
            parse_secret("secret", &text).ok(),
            Some(endpoint.secret.clone())
        );
    }
    if check_headers(&endpoint.headers).is_ok() {
        assert_headers_deliverable(&endpoint.headers);
    }
    if check_fields(&endpoint).errors.is_empty() {
        assert_storable(&endpoint);
    }
}

/// What passed every field check is what the dispatcher and the stores rely on. (The
/// concurrency cap is checked against the configuration by `validate`, not here.)
fn assert_storable(e: &Endpoint) {
    assert!(endpoint_url("url", &e.url).is_ok());
    assert!(e.rate_limit != Some(0), "a rate of 0 would stop deliveries");
    assert!(!e.description.contains('\0'));
    for c in e.channels.iter().flatten() {
        assert!(event_type_name("channels", c).is_ok(), "{c:?}");
    }
    assert_headers_deliverable(&e.headers);
}

/// Accepted custom headers can be sent as they are, and none replaces one Herald sets.
fn assert_headers_deliverable(headers: &std::collections::BTreeMap<String, String>) {
    assert!(headers.len() <= 64);
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("accepted a bad name");
        HeaderValue::from_str(value).expect("accepted a bad value");
        let ours = [
            "content-type",
            "content-length",
            "host",
            "user-agent",
            "transfer-encoding",
        ];
        assert!(!ours.contains(&name.as_str()), "{name} accepted");
        assert!(!name.as_str().starts_with("webhook-"), "{name} accepted");
        assert!(!name.as_str().starts_with("svix-"), "{name} accepted");
    }
}

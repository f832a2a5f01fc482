//! Query strings as herald-server decodes them (`ApiQuery` is `serde_html_form` into these
//! structs), then the pure checks every list handler runs on them; plus the bearer-token
//! reader on an arbitrary `Authorization` header.
#![no_main]

use herald_core::model::DeliveryStatus;
use herald_core::store::{Cursor, Order};
use herald_server::auth::bearer;
use herald_server::error::ApiError;
use herald_server::http::list::{comma_list, Pagination};
use herald_server::http::v1::attempt_types::{parse_status, AttemptListQuery};
use herald_server::http::v1::message_types::MessageListQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    check_pagination(query);
    check_filters(query);
    check_bearer(query);
});

fn check_pagination(query: &str) {
    let Ok(page) = serde_html_form::from_str::<Pagination>(query) else {
        return;
    };
    let Ok(request) = page.to_request(Order::Descending) else {
        // The only refusal: a limit outside 1..=250 (a 422, not a 500).
        assert!(!(1..=250).contains(&page.limit.unwrap_or(50)));
        return;
    };
    assert!((1..=250).contains(&request.limit));
    let expected = match page.iterator.as_deref() {
        None | Some("") => None,
        Some(it) => Some(match it.strip_prefix('-') {
            Some(before) => Cursor::Before(before.into()),
            None => Cursor::After(it.into()),
        }),
    };
    assert_eq!(request.cursor, expected);
}

fn check_filters(query: &str) {
    if let Ok(q) = serde_html_form::from_str::<MessageListQuery>(query) {
        match q.filter() {
            Ok(filter) => {
                assert_clean_list(filter.event_types.as_deref());
                assert_eq!(
                    filter.delivery_status,
                    q.status.and_then(DeliveryStatus::from_i64)
                );
            }
            // Every refusal is a 422 naming one of the parameters it checks.
            Err(ApiError::Validation(errors)) => assert!(
                [
                    "event_types",
                    "status",
                    "status_code_class",
                    "payload_contains",
                    "search"
                ]
                .contains(&errors[0].loc[1].as_str()),
                "{errors:?}"
            ),
            Err(other) => panic!("a bad message filter must be a 422, got {other:?}"),
        }
    }
    if let Ok(q) = serde_html_form::from_str::<AttemptListQuery>(query) {
        match parse_status("status", q.status) {
            Ok(status) => assert_eq!(status, q.status.and_then(DeliveryStatus::from_i64)),
            Err(e) => assert_validation(e, "status"),
        }
    }
    // Each `&`-separated piece as one repeated value, whatever its key.
    let values: Vec<String> = query.split('&').map(str::to_owned).collect();
    match comma_list("p", Some(&values)) {
        Ok(list) => assert_clean_list(list.as_deref()),
        Err(e) => assert_validation(e, "p"),
    }
}

/// What the stores receive: at most 100 trimmed, non-empty values without commas, and
/// never an empty list (which would match nothing instead of meaning "no filter").
fn assert_clean_list(list: Option<&[String]>) {
    let Some(list) = list else { return };
    assert!(
        !list.is_empty() && list.len() <= 100,
        "{} values",
        list.len()
    );
    for v in list {
        assert!(!v.is_empty() && v.trim() == v && !v.contains(','), "{v:?}");
    }
}

fn assert_validation(e: ApiError, param: &str) {
    match e {
        ApiError::Validation(errors) => assert_eq!(errors[0].loc, ["query", param]),
        other => panic!("a bad `{param}` must be a 422, got {other:?}"),
    }
}

fn check_bearer(value: &str) {
    let Ok(request) = http::Request::get("/")
        .header("authorization", value)
        .body(())
    else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let token = bearer(&parts);
    // Only a header of visible ASCII can be read as text at all.
    let readable = parts.headers["authorization"].to_str().is_ok();
    let scheme_ok = readable
        && value
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer "));
    assert_eq!(token.is_some(), scheme_ok, "{value:?}");
    if let Some(token) = token {
        assert_eq!(token, value[7..].trim());
    }
}

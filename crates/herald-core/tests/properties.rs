//! Property tests: the validators and parsers that read client input never panic, and
//! accept exactly what their rules say.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use herald_core::network::AddressPolicy;
use herald_core::payload_filter::PayloadFilter;
use herald_core::signing::EndpointSecret;
use herald_core::validation;
use proptest::prelude::*;
use serde_json::{json, Value};

fn allowed_uid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

proptest! {
    #[test]
    fn uid_accepts_exactly_its_alphabet_and_length(s in "\\PC{0,300}") {
        let expected = (1..=256).contains(&s.len()) && s.chars().all(allowed_uid_char);
        prop_assert_eq!(validation::uid("uid", &s).is_ok(), expected);
    }

    #[test]
    fn endpoint_url_never_panics_and_accepts_only_parseable_urls(s in "\\PC{0,200}") {
        if validation::endpoint_url("url", &s).is_ok() {
            let url = url::Url::parse(&s).expect("accepted URLs parse");
            if url.scheme() == "http" || url.scheme() == "https" {
                prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()));
            }
        }
    }

    #[test]
    fn generated_urls_of_any_host_and_path_are_accepted(
        host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,6}){1,2}",
        path in "(/[a-zA-Z0-9_.~-]{0,12}){0,4}",
        https in any::<bool>(),
    ) {
        // A label starting `xn--` is punycode (IDNA), and most such strings are not valid
        // punycode: those hosts are rightly refused.
        prop_assume!(!host.split('.').any(|label| label.starts_with("xn--")));
        let url = format!("{}://{host}{path}", if https { "https" } else { "http" });
        prop_assert!(validation::endpoint_url("url", &url).is_ok(), "{}", url);
    }

    #[test]
    fn secrets_round_trip_and_garbage_never_panics(key in proptest::collection::vec(any::<u8>(), 24..=64), junk in "\\PC{0,80}") {
        use base64::Engine;
        let text = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let secret = EndpointSecret::parse(&text).expect("a valid secret parses");
        prop_assert_eq!(secret.expose(), text);
        let _ = EndpointSecret::parse(&junk);
    }

    // Payloads are JSON text, always UTF-8 (the `standardwebhooks` crate verifies only that).
    #[test]
    fn signatures_verify_with_the_standardwebhooks_crate(
        body in "\\PC{0,300}",
        id in "msg_[a-zA-Z0-9]{1,30}",
    ) {
        let secret = EndpointSecret::generate();
        let now = chrono::Utc::now().timestamp();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", secret.sign(&id, now, body.as_bytes()).parse().unwrap());
        let verifier = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        prop_assert!(verifier.verify(body.as_bytes(), &headers).is_ok());
    }

    #[test]
    fn an_ipv4_address_and_its_mapped_ipv6_form_are_judged_alike(bits in any::<u32>()) {
        let policy = AddressPolicy::default();
        let v4 = Ipv4Addr::from(bits);
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        prop_assert_eq!(policy.permits(IpAddr::V4(v4)), policy.permits(mapped));
    }

    #[test]
    fn loopback_and_private_ranges_are_never_permitted_by_default(low in any::<u32>()) {
        let policy = AddressPolicy::default();
        let [_, b, c, d] = low.to_be_bytes();
        for ip in [Ipv4Addr::new(127, b, c, d), Ipv4Addr::new(10, b, c, d), Ipv4Addr::new(192, 168, c, d)] {
            prop_assert!(!policy.permits(IpAddr::V4(ip)), "{}", ip);
        }
        let ula = Ipv6Addr::new(0xfd00 | u16::from(b), u16::from(c), 0, 0, 0, 0, 0, u16::from(d));
        prop_assert!(!policy.permits(IpAddr::V6(ula)), "{}", ula);
    }
}

/// Scalars from a small domain, so that generated filters and payloads often meet.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        (-3i64..3).prop_map(|n| json!(n as f64 + 0.5)),
        prop::sample::select(vec!["x", "y", "xy"]).prop_map(Value::from),
    ]
}

/// Payloads whose keys are `a`, `b` or `c`, nested a few levels.
fn payload() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c"]), inner, 0..3)
                .prop_map(|m| json!(m)),
        ]
    })
}

fn path() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "a.b", "a.0", "c.a.b", "b.1"]).prop_map(String::from)
}

/// One field condition: a path and an operator with its operand.
fn field() -> impl Strategy<Value = Value> {
    let operand = prop_oneof![
        scalar().prop_map(|v| json!({ "$eq": v })),
        scalar().prop_map(|v| json!({ "$ne": v })),
        prop::collection::vec(scalar(), 0..3).prop_map(|v| json!({ "$in": v })),
        prop::collection::vec(scalar(), 0..3).prop_map(|v| json!({ "$nin": v })),
        any::<bool>().prop_map(|b| json!({ "$exists": b })),
        (
            prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]),
            -3i64..3
        )
            .prop_map(|(op, n)| json!({ op: n })),
        scalar().prop_map(|v| json!({ "$contains": v })),
        scalar(),
    ];
    (path(), operand).prop_map(|(path, operand)| json!({ path: operand }))
}

/// Filters built from field conditions with `$and`, `$or` and `$not`.
fn filter() -> impl Strategy<Value = Value> {
    field().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|fs| json!({ "$and": fs })),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|fs| json!({ "$or": fs })),
            inner.prop_map(|f| json!({ "$not": f })),
        ]
    })
}

fn matches(filter: Value, payload: &Value) -> bool {
    PayloadFilter::parse(filter)
        .expect("generated filters are valid")
        .matches(payload)
}

proptest! {
    #[test]
    fn payload_filter_combinators_are_boolean_algebra(f in filter(), g in filter(), p in payload()) {
        let (a, b) = (matches(f.clone(), &p), matches(g.clone(), &p));
        prop_assert_eq!(matches(json!({ "$not": f.clone() }), &p), !a);
        prop_assert_eq!(matches(json!({ "$and": [f.clone(), g.clone()] }), &p), a && b);
        prop_assert_eq!(matches(json!({ "$or": [f, g] }), &p), a || b);
    }

    #[test]
    fn payload_filter_explains_exactly_its_refusals(f in filter(), p in payload()) {
        let parsed = PayloadFilter::parse(f).unwrap();
        prop_assert_eq!(parsed.explain(&p).is_ok(), parsed.matches(&p));
    }

    #[test]
    fn payload_filter_negative_operators_are_complements(
        path in path(), v in scalar(), vs in prop::collection::vec(scalar(), 0..3), p in payload()
    ) {
        let eq = matches(json!({ path.clone(): { "$eq": v.clone() } }), &p);
        prop_assert_eq!(matches(json!({ path.clone(): { "$ne": v } }), &p), !eq);
        let is_in = matches(json!({ path.clone(): { "$in": vs.clone() } }), &p);
        prop_assert_eq!(matches(json!({ path: { "$nin": vs } }), &p), !is_in);
    }

    #[test]
    fn payload_filter_orders_numbers_by_value(a in any::<i64>(), b in any::<i64>(), x in -1e9f64..1e9, y in -1e9f64..1e9) {
        let doc = json!({ "n": a, "f": x });
        prop_assert_eq!(matches(json!({ "n": { "$gt": b } }), &doc), a > b);
        prop_assert_eq!(matches(json!({ "n": { "$lte": b } }), &doc), a <= b);
        prop_assert_eq!(matches(json!({ "f": { "$lt": y } }), &doc), x < y);
        prop_assert_eq!(matches(json!({ "f": { "$gte": y } }), &doc), x >= y);
    }

    #[test]
    fn payload_filter_parsing_never_panics_and_round_trips(doc in payload()) {
        if let Ok(parsed) = PayloadFilter::parse(doc.clone()) {
            let text = serde_json::to_string(&parsed).unwrap();
            prop_assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);
        }
    }
}

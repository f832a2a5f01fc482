use serde_json::json;

use super::*;

fn filter(source: Value) -> PayloadFilter {
    PayloadFilter::parse(source).expect("a valid filter")
}

fn refusal(source: Value) -> FilterError {
    PayloadFilter::parse(source).expect_err("an invalid filter")
}

fn order() -> Value {
    json!({
        "type": "order.paid",
        "data": {
            "amount": 120,
            "currency": "EUR",
            "customer": {"tier": "gold", "country": "DE"},
            "items": [{"sku": "A-1"}, {"sku": "B-2"}],
            "labels": ["urgent", "b2b"],
            "paidAt": "2026-12-04T10:00:00Z",
            "coupon": null
        }
    })
}

#[test]
fn equality_follows_nested_paths_and_array_indexes() {
    assert!(filter(json!({"data.customer.tier": "gold"})).matches(&order()));
    assert!(filter(json!({"data.items.1.sku": "B-2"})).matches(&order()));
    assert!(!filter(json!({"data.items.2.sku": "B-2"})).matches(&order()));
    assert!(!filter(json!({"data.customer.tier": "silver"})).matches(&order()));
    // An object without operators is compared whole.
    assert!(filter(json!({"data.customer": {"country": "DE", "tier": "gold"}})).matches(&order()));
    assert!(!filter(json!({"data.customer": {"tier": "gold"}})).matches(&order()));
}

#[test]
fn numbers_compare_by_value() {
    assert!(filter(json!({"data.amount": 120.0})).matches(&order()));
    assert!(filter(json!({"data.amount": {"$in": [1, 120.0]}})).matches(&order()));
    assert!(filter(json!({"data.amount": {"$gte": 120, "$lt": 120.5}})).matches(&order()));
    assert!(!filter(json!({"data.amount": {"$gt": 120}})).matches(&order()));
    assert!(filter(json!({"n": {"$gt": 9007199254740993_u64}}))
        .matches(&json!({"n": 9007199254740994_u64})));
}

#[test]
fn order_operators_compare_strings_and_refuse_other_types() {
    assert!(filter(json!({"data.paidAt": {"$gte": "2026-12-01"}})).matches(&order()));
    assert!(!filter(json!({"data.paidAt": {"$lt": "2026-12-01"}})).matches(&order()));
    // A string is not ordered against a number.
    assert!(!filter(json!({"data.currency": {"$gt": 1}})).matches(&order()));
    assert!(refusal(json!({"a": {"$gt": [1]}}))
        .problem
        .contains("number or a string"));
}

#[test]
fn absent_fields_fail_all_but_the_negative_operators() {
    let absent = |test: Value| filter(json!({ "data.discount": test })).matches(&order());
    assert!(!absent(json!({"$eq": 1})));
    assert!(!absent(json!({"$in": [1]})));
    assert!(!absent(json!({"$gt": 1})));
    assert!(!absent(json!({"$contains": 1})));
    assert!(!absent(json!({"$exists": true})));
    assert!(absent(json!({"$exists": false})));
    assert!(absent(json!({"$ne": 1})));
    assert!(absent(json!({"$nin": [1]})));
    // A null field exists.
    assert!(filter(json!({"data.coupon": {"$exists": true}})).matches(&order()));
    assert!(filter(json!({"data.coupon": null})).matches(&order()));
}

#[test]
fn contains_looks_in_arrays_and_strings() {
    assert!(filter(json!({"data.labels": {"$contains": "urgent"}})).matches(&order()));
    assert!(!filter(json!({"data.labels": {"$contains": "urg"}})).matches(&order()));
    assert!(filter(json!({"type": {"$contains": ".paid"}})).matches(&order()));
    assert!(!filter(json!({"data.amount": {"$contains": 1}})).matches(&order()));
}

#[test]
fn combinators_nest() {
    let f = filter(json!({
        "data.currency": "EUR",
        "$or": [
            {"data.customer.country": {"$in": ["FR", "ES"]}},
            {"$and": [{"data.customer.tier": "gold"}, {"$not": {"data.amount": {"$lt": 100}}}]}
        ]
    }));
    assert!(f.matches(&order()));
    let mut small = order();
    small["data"]["amount"] = json!(99);
    assert!(!f.matches(&small));
}

#[test]
fn explain_names_the_failing_condition() {
    let f = filter(json!({"data.currency": "EUR", "data.amount": {"$gte": 500}}));
    assert_eq!(
        f.explain(&order()),
        Err("`data.amount` must be >= 500: it is 120".to_owned())
    );
    let either = filter(json!({"$or": [{"a": 1}, {"b": {"$exists": true}}]}));
    let reason = either.explain(&json!({"a": 2})).unwrap_err();
    assert!(reason.contains("`a` must equal 1: it is 2"), "{reason}");
    assert!(reason.contains("`b` must exist: it is absent"), "{reason}");
    assert_eq!(
        f.explain(&json!({"data": {"currency": "EUR", "amount": 500}})),
        Ok(())
    );
}

#[test]
fn bad_documents_are_refused_with_where_and_why() {
    let e = refusal(json!({"$or": [{"a": 1}, {"b": {"$regex": "x"}}]}));
    assert_eq!(e.at, "$or.1.b.$regex");
    assert!(e.problem.contains("not an operator"), "{e}");
    assert!(refusal(json!([])).problem.contains("object"));
    assert!(refusal(json!({})).problem.contains("null"));
    assert!(refusal(json!({"$or": []})).problem.contains("at least one"));
    assert!(refusal(json!({"$xor": []}))
        .problem
        .contains("not a combinator"));
    assert!(refusal(json!({"a..b": 1})).problem.contains("empty"));
    assert!(refusal(json!({"a": {"$in": 1}})).problem.contains("list"));
    assert!(refusal(json!({"a": {"$exists": 1}}))
        .problem
        .contains("true or false"));
    assert!(refusal(json!({"a": {"$eq": 1, "b": 2}}))
        .problem
        .contains("mixes"));
}

#[test]
fn limits_bound_depth_size_and_paths() {
    let mut deep = json!({"a": 1});
    for _ in 0..=MAX_DEPTH {
        deep = json!({ "$not": deep });
    }
    assert!(refusal(deep).problem.contains("deep"));
    let many: Map<String, Value> = (0..=MAX_CONDITIONS)
        .map(|i| (format!("f{i}"), json!(i)))
        .collect();
    assert!(refusal(Value::Object(many)).problem.contains("at most"));
    let long_path = vec!["p"; MAX_PATH_PARTS + 1].join(".");
    assert!(refusal(json!({ long_path: 1 })).problem.contains("parts"));
    let big = "x".repeat(MAX_FILTER_BYTES);
    assert!(refusal(json!({ "a": big })).problem.contains("bytes"));
    let list: Vec<u32> = (0..=MAX_LIST as u32).collect();
    assert!(refusal(json!({"a": {"$in": list}}))
        .problem
        .contains("at most"));
}

#[test]
fn a_stored_filter_over_todays_limits_is_still_read() {
    let many: Map<String, Value> = (0..=MAX_CONDITIONS)
        .map(|i| (format!("f{i}"), json!(i)))
        .collect();
    let stored = Value::Object(many.clone());
    assert!(
        PayloadFilter::parse(stored.clone()).is_err(),
        "refused if given now"
    );
    let read: PayloadFilter = serde_json::from_value(stored).expect("read from the store");
    assert!(read.matches(&Value::Object(many)));
    assert!(!read.matches(&json!({"f0": 0})));
    // Its syntax is still checked.
    assert!(serde_json::from_value::<PayloadFilter>(json!({"a": {"$bad": 1}})).is_err());
}

#[test]
fn it_serializes_as_the_document_it_was_given() {
    let source = json!({"data.amount": {"$gte": 100}, "$not": {"x": true}});
    let f = filter(source.clone());
    assert_eq!(serde_json::to_value(&f).unwrap(), source);
    let back: PayloadFilter = serde_json::from_value(source).unwrap();
    assert_eq!(back, f);
    assert!(serde_json::from_value::<PayloadFilter>(json!({"a": {"$bad": 1}})).is_err());
}

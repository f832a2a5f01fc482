//! Micro-benchmarks of the per-delivery work in herald-core: signing a delivery and
//! deciding which endpoints a message goes to. `cargo bench -p herald-core`; figures in
//! BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald_core::filter::{endpoint_accepts, payload_accepts, LazyPayload};
use herald_core::model::Endpoint;
use herald_core::payload_filter::PayloadFilter;
use herald_core::signing::{signature_header, EndpointSecret};

/// A payload of about `n` bytes, shaped like an event.
fn payload(n: usize) -> Vec<u8> {
    let filler = "x".repeat(n.saturating_sub(40));
    format!(r#"{{"type":"contact.created","note":"{filler}"}}"#).into_bytes()
}

/// An endpoint of `app_1` with these event-type filters (none: every type).
fn endpoint(types: Option<&[&str]>) -> Endpoint {
    Endpoint {
        id: "ep_1".into(),
        filter_types: types.map(|t| t.iter().map(|s| s.to_string()).collect()),
        ..Endpoint::new(
            "app_1",
            "https://example.com/hook".into(),
            chrono::Utc::now(),
        )
    }
}

fn signing(c: &mut Criterion) {
    let mut group = c.benchmark_group("sign");
    let hmac = EndpointSecret::generate();
    let ed25519 = EndpointSecret::generate_ed25519();
    for size in [256, 4096, 65536] {
        let body = payload(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("hmac-sha256", size), &body, |b, body| {
            b.iter(|| hmac.sign(black_box("msg_2ZJ3bq0hS6Xp"), 1_700_000_000, body))
        });
        group.bench_with_input(BenchmarkId::new("ed25519", size), &body, |b, body| {
            b.iter(|| ed25519.sign(black_box("msg_2ZJ3bq0hS6Xp"), 1_700_000_000, body))
        });
    }
    // During a rotation's overlap every delivery carries two signatures.
    let previous = EndpointSecret::generate();
    let body = payload(1024);
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("header-two-secrets/1024", |b| {
        b.iter(|| signature_header([&hmac, &previous], "msg_2ZJ3bq0hS6Xp", 1_700_000_000, &body))
    });
    group.finish();
}

fn filtering(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter");
    let types: Vec<String> = (0..20).map(|i| format!("contact.event{i}")).collect();
    let type_refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let mut filtered = endpoint(Some(&type_refs));
    filtered.channels = Some((0..10).map(|i| format!("region-{i}")).collect());
    let open = endpoint(None);
    let channels = vec!["region-9".to_owned()];
    group.bench_function("no-filters", |b| {
        b.iter(|| endpoint_accepts(black_box(&open), "contact.event19", None))
    });
    group.bench_function("20-types-10-channels", |b| {
        b.iter(|| endpoint_accepts(black_box(&filtered), "contact.event19", Some(&channels)))
    });
    // Fan-out decides for every endpoint of the application.
    let app_endpoints: Vec<_> = (0..50).map(|_| filtered.clone()).collect();
    group.throughput(Throughput::Elements(app_endpoints.len() as u64));
    group.bench_function("fan-out-50-endpoints", |b| {
        b.iter(|| {
            app_endpoints
                .iter()
                .filter(|e| endpoint_accepts(e, "contact.event19", Some(&channels)))
                .count()
        })
    });
    // The same fan-out with a payload filter on each endpoint, which the message meets:
    // the payload is parsed once, then each filter evaluated.
    let order = r#"{"type":"order.paid","data":{"amount":120,"currency":"EUR","customer":{"id":"cus_8","tier":"gold","country":"DE"},"items":[{"sku":"A-1","qty":2},{"sku":"B-2","qty":1}],"note":"leave at the door"}}"#;
    let mut with_payload_filter = filtered.clone();
    with_payload_filter.payload_filter = Some(
        PayloadFilter::parse(serde_json::json!({
            "data.currency": "EUR",
            "data.amount": {"$gte": 100},
            "$or": [{"data.customer.country": {"$in": ["DE", "FR"]}}, {"data.customer.tier": "platinum"}]
        }))
        .unwrap(),
    );
    let app_endpoints: Vec<_> = (0..50).map(|_| with_payload_filter.clone()).collect();
    group.bench_function("fan-out-50-endpoints-payload-filters", |b| {
        b.iter(|| {
            let payload = LazyPayload::new(Some(black_box(order)));
            app_endpoints
                .iter()
                .filter(|e| {
                    endpoint_accepts(e, "contact.event19", Some(&channels))
                        && payload_accepts(e, &payload)
                })
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, signing, filtering);
criterion_main!(benches);

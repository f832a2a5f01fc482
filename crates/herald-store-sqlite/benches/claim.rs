//! The claim query on SQLite: how long one dispatcher round takes to lease a batch of due
//! deliveries, with the queue empty of other work and with a large backlog.
//! `cargo bench -p herald-store-sqlite`; figures in BENCHMARKS.md.
//!
//! Each claim sets the rows' lease to end before `now`, so the same rows are due again at
//! the next iteration: the queue keeps its size however many iterations run.

use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald_core::conformance::{app, endpoint, message};
use herald_core::store::{Catalog, ClaimRequest, Messages, Queue};
use herald_store_sqlite::SqliteStore;

/// A store holding `backlog` pending deliveries spread over 10 endpoints of one app.
async fn store_with(dir: &std::path::Path, backlog: usize) -> SqliteStore {
    let store = herald_store_sqlite::open_dir(dir, 4).await.expect("open");
    store.migrate().await.expect("migrate");
    let a = app(None);
    store.create_app(&a).await.unwrap();
    for _ in 0..10 {
        store.create_endpoint(&endpoint(&a.id, None)).await.unwrap();
    }
    // Each message fans out to the 10 endpoints.
    for _ in 0..backlog / 10 {
        store.create_message(&message(&a.id, "x")).await.unwrap();
    }
    store
}

fn claim(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("claim_due");
    for backlog in [1_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let store = runtime.block_on(store_with(dir.path(), backlog));
        for batch in [1u32, 100] {
            group.throughput(Throughput::Elements(u64::from(batch)));
            let id = BenchmarkId::new(format!("backlog-{backlog}"), format!("batch-{batch}"));
            group.bench_function(id, |b| {
                b.to_async(&runtime).iter(|| async {
                    let now = Utc::now() + Duration::days(1);
                    let request = ClaimRequest {
                        now,
                        lease_until: now - Duration::seconds(1),
                        limit: batch,
                        per_endpoint_limit: batch,
                        skip_endpoints: Vec::new(),
                    };
                    let claimed = store.claim_due(&request).await.unwrap();
                    assert_eq!(claimed.len(), batch as usize);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, claim);
criterion_main!(benches);

//! OpenTelemetry: `herald serve` with an OTLP endpoint exports the spans of a publish and
//! of its delivery, in the trace the publisher sent, and the receiver gets that trace with
//! Herald's attempt as parent. The collector is an in-process HTTP server taking OTLP/JSON.

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde_json::{json, Value};
use tokio::sync::watch;

use support::in_process::LocalServer;
use support::{call, Node, DEADLINE, TOKEN};

/// Spans received by the collector.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Value>>>,
    count: watch::Receiver<usize>,
}

impl Collector {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (tx, count) = watch::channel(0);
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let (kept, tx) = (kept.clone(), tx.clone());
                async move {
                    let export: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let found: Vec<Value> = export["resourceSpans"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|r| r["scopeSpans"].as_array().cloned().unwrap_or_default())
                        .flat_map(|s| s["spans"].as_array().cloned().unwrap_or_default())
                        .collect();
                    let n = found.len();
                    kept.lock().unwrap().extend(found);
                    tx.send_modify(|c| *c += n);
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, spans, count }
    }

    /// The first span named `name` in trace `trace_id`, once it has arrived.
    async fn span(&self, trace_id: &str, name: &str) -> Value {
        let mut count = self.count.clone();
        let find = || {
            self.spans
                .lock()
                .unwrap()
                .iter()
                .find(|s| s["traceId"] == trace_id && s["name"] == name)
                .cloned()
        };
        let waited = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(span) = find() {
                    return span;
                }
                count.changed().await.expect("collector running");
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("a `{name}` span in trace {trace_id}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_and_its_delivery_are_spans_of_the_publishers_trace() {
    let collector = Collector::start().await;
    let local = LocalServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let node = Node::start(
        &["--data-dir", data],
        None,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let client = reqwest::Client::new();
    let base = &node.base;
    let app = call(
        &client,
        format!("{base}/app"),
        json!({"name": "t", "uid": "t"}),
    )
    .await
    .unwrap();
    let app = app["id"].as_str().unwrap();
    call(
        &client,
        format!("{base}/app/{app}/endpoint"),
        json!({"url": local.url}),
    )
    .await
    .unwrap();

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let published = client
        .post(format!("{base}/app/{app}/msg"))
        .bearer_auth(TOKEN)
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .json(&json!({"eventType": "a", "payload": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 202);
    let msg: Value = published.json().await.unwrap();
    local.wait_for(1).await;

    let publish = collector.span(trace, "publish").await;
    assert_eq!(publish["parentSpanId"], parent, "{publish}");
    let attempt = collector.span(trace, "attempt").await;
    assert_eq!(attempt["parentSpanId"], parent, "{attempt}");
    let attributes = attempt["attributes"].to_string();
    assert!(
        attributes.contains(msg["id"].as_str().unwrap()),
        "{attempt}"
    );

    // The receiver's request hangs under Herald's attempt.
    let (headers, _) = local.request(0);
    let received = headers["traceparent"].to_str().unwrap().to_owned();
    let span_id = attempt["spanId"].as_str().unwrap();
    assert_eq!(received, format!("00-{trace}-{span_id}-01"));
    drop(node);
}

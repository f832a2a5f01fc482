//! Where the process's logs and traces go. Logs go to stderr (stdout carries what a
//! command prints for the user, a token…): `HERALD_LOG` filters them (`info` by default),
//! `HERALD_LOG_FORMAT=json` writes one JSON object per line, the event's fields
//! (`endpoint`, `error`, …) at the top level and the spans around it in `spans`.
//!
//! Traces are exported over OTLP (HTTP, JSON) only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, with the SDK's other `OTEL_*` variables
//! (`OTEL_SERVICE_NAME`, `OTEL_BSP_SCHEDULE_DELAY`…); otherwise no exporter exists.

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// The trace exporter, if one runs: flushed and stopped by [`Telemetry::shutdown`].
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered. Off the async workers: the exporter's HTTP client
    /// blocks.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Sets up logs, and traces when an OTLP endpoint is configured. One filter before both
/// (`HERALD_LOG`): what is not logged is not traced either.
pub fn init() -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    let provider = otlp_configured().then(tracer_provider).transpose()?;
    let traces = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("herald")));
    let subscriber = tracing_subscriber::registry().with(filter).with(traces);
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match std::env::var("HERALD_LOG_FORMAT").as_deref() {
        Ok("json") => subscriber
            .with(
                logs.json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .init(),
        Ok("text") | Err(std::env::VarError::NotPresent) => subscriber.with(logs).init(),
        Ok(other) => anyhow::bail!("HERALD_LOG_FORMAT is `text` or `json`, not `{other}`"),
        Err(e) => anyhow::bail!("HERALD_LOG_FORMAT: {e}"),
    }
    Ok(Telemetry { provider })
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Spans batched and sent over OTLP/HTTP as JSON, to the endpoint the `OTEL_*` variables
/// name.
fn tracer_provider() -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .build()
        .context("the OTLP exporter (OTEL_EXPORTER_OTLP_ENDPOINT)")?;
    let resource = Resource::builder().with_service_name("herald").build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

//! W3C trace context across Herald's asynchronous hop: the `traceparent` a message was
//! published with becomes the parent of the spans that publish and deliver it, and the
//! request a delivery sends carries the trace on. When traces are not exported (no
//! OpenTelemetry layer) the spans have no context of their own and cost nothing more; the
//! receiver still gets the trace, with a fresh parent id.

use std::collections::HashMap;

use herald_core::destination::child_traceparent;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes `span` a child of the remote span `traceparent` names, if any.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The `traceparent` for a request sent within `span`, in the trace `parent` names: the
/// span's own id when traces are exported (the receiver's spans then hang under Herald's
/// attempt), a fresh one otherwise.
pub fn outgoing_traceparent(span: &tracing::Span, parent: &str) -> Option<String> {
    let context = span.context();
    let own = context.span().span_context().clone();
    if own.is_valid() {
        return Some(format!(
            "00-{}-{}-{:02x}",
            own.trace_id(),
            own.span_id(),
            own.trace_flags().to_u8()
        ));
    }
    child_traceparent(parent)
}

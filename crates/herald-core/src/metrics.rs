//! The process's metrics, in the Prometheus text format (`GET /metrics`): what the API,
//! the delivery engine and each webhook pattern count, in one registry per process.
//!
//! Labels are bounded on purpose: routes are the API's route templates, destinations their
//! kind, outcomes a handful of words. No endpoint, application or URL is ever a label, so a
//! provider with a million endpoints has as many series as one with ten.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A value that goes up and down; the engine keeps some of its own.
pub use prometheus_client::metrics::gauge::Gauge;

/// An HTTP request the API answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/api/v1/app/{app_id}/msg`), or `unmatched`.
    pub route: String,
    pub status: u16,
}

/// An API route, for its latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

/// An attempt to deliver: to what kind of destination, why, and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// `http`, `chat`, `email`, `nats`, `amqp`, `redis`.
    pub destination: String,
    /// `scheduled`, `manual`, `adhoc`, `sync`, `verification`.
    pub trigger: String,
    /// `success` or `failure`.
    pub outcome: String,
}

/// One of a store's group commits: `publish` or `record` (attempts).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommitLabels {
    pub commit: String,
}

/// A store's connection pool (`writer`, `reader`, or `shared` when one pool does both),
/// and whether its connections are `in_use` or `idle`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
    pub state: String,
}

/// A destination kind, for attempt latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    pub destination: String,
}

/// How one request of a webhook pattern ended (an inbound request, a synchronous call…).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// Every metric Herald keeps. Cheap to clone: the counters are shared.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration: Family<RouteLabels, Histogram>,
    /// Messages accepted (committed), by any way in.
    pub messages_published: Counter,
    pub attempts: Family<AttemptLabels, Counter>,
    pub attempt_duration: Family<DestinationLabels, Histogram>,
    /// Requests to inbound sources' receive URLs: `accepted`, `duplicate`, `refused`,
    /// `handshake`.
    pub ingest_requests: Family<OutcomeLabels, Counter>,
    /// Synchronous calls, by outcome: `answered`, `timeout`, `error`, `policy_applied`,
    /// `no_endpoint`.
    pub sync_calls: Family<OutcomeLabels, Counter>,
    /// One-off callback URLs given with messages.
    pub callback_urls: Counter,
    /// Subscription verification tries: `verified`, `failed`.
    pub verification_tries: Family<OutcomeLabels, Counter>,
    /// Deliveries pending or being sent, read when metrics are scraped.
    pub queue_waiting: Gauge,
    /// How long the oldest of them has waited, in seconds, read when scraped.
    pub queue_oldest_seconds: Gauge,
    /// `herald listen --server` sessions attached to this node, read when scraped.
    pub listen_sessions: Gauge,
    /// Endpoints whose circuit is open (or waiting for its probe's answer) on this node.
    pub circuits_open: Gauge,
    /// Deliveries a publish on this node handed straight to its dispatcher, leased, with
    /// no claim.
    pub deliveries_handed_over: Counter,
    /// How many publishes, claimed deliveries or attempt records each commit wrote.
    pub commit_batch_size: Family<CommitLabels, Histogram>,
    /// The store's connections by pool and state, read when scraped.
    pub pool_connections: Family<PoolLabels, Gauge>,
}

/// Latency buckets from 1 ms to ~33 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Batch sizes from 1 to 512, doubling.
fn batch_sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered, all at zero.
    ///
    /// Long on purpose: one registration a metric, with its name and help, in the order
    /// `/metrics` lists them; cut in parts, the list would only be harder to read whole.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_request_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an API request",
            http_request_duration.clone(),
        );
        let messages_published = Counter::default();
        registry.register(
            "messages_published",
            "Messages accepted and committed (API, inbound sources, callbacks, calls)",
            messages_published.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "attempts",
            "Delivery attempts, by destination kind, trigger and outcome",
            attempts.clone(),
        );
        let attempt_duration = Family::<DestinationLabels, Histogram>::new_with_constructor(
            latency as fn() -> Histogram,
        );
        registry.register(
            "attempt_duration_seconds",
            "Time from sending an attempt to its answer",
            attempt_duration.clone(),
        );
        let ingest_requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ingest_requests",
            "Requests to inbound sources' receive URLs, by outcome",
            ingest_requests.clone(),
        );
        let sync_calls = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sync_calls",
            "Synchronous calls, by outcome",
            sync_calls.clone(),
        );
        let callback_urls = Counter::default();
        registry.register(
            "callback_urls",
            "One-off callback URLs given with messages",
            callback_urls.clone(),
        );
        let verification_tries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "verification_tries",
            "Subscription verification challenges sent, by outcome",
            verification_tries.clone(),
        );
        let queue_waiting = Gauge::default();
        registry.register(
            "queue_waiting_deliveries",
            "Deliveries pending (due or waiting to retry) or being sent",
            queue_waiting.clone(),
        );
        let queue_oldest_seconds = Gauge::default();
        registry.register(
            "queue_oldest_waiting_seconds",
            "Age of the oldest waiting delivery",
            queue_oldest_seconds.clone(),
        );
        let listen_sessions = Gauge::default();
        registry.register(
            "listen_sessions",
            "herald listen sessions attached to this node",
            listen_sessions.clone(),
        );
        let circuits_open = Gauge::default();
        registry.register(
            "endpoint_circuits_open",
            "Endpoints whose circuit breaker is open or probing on this node",
            circuits_open.clone(),
        );
        let deliveries_handed_over = Counter::default();
        registry.register(
            "deliveries_handed_over",
            "Deliveries started straight from the publish that made them, without a claim",
            deliveries_handed_over.clone(),
        );
        let commit_batch_size = Family::<CommitLabels, Histogram>::new_with_constructor(
            batch_sizes as fn() -> Histogram,
        );
        registry.register(
            "store_commit_batch_size",
            "Publishes, claimed deliveries or attempt records written by one commit",
            commit_batch_size.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "store_pool_connections",
            "Database connections by pool and state (in_use, idle, max)",
            pool_connections.clone(),
        );
        Self {
            registry: Arc::new(registry),
            http_requests,
            http_request_duration,
            messages_published,
            attempts,
            attempt_duration,
            ingest_requests,
            sync_calls,
            callback_urls,
            verification_tries,
            queue_waiting,
            queue_oldest_seconds,
            listen_sessions,
            circuits_open,
            deliveries_handed_over,
            commit_batch_size,
            pool_connections,
        }
    }

    /// Counts one more of `outcome` in `family`.
    pub fn count(family: &Family<OutcomeLabels, Counter>, outcome: &str) {
        family
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Everything, in the Prometheus text format (OpenMetrics 1.0 text, which Prometheus
    /// reads).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_prefix_and_labels() {
        let metrics = Metrics::new();
        metrics.messages_published.inc_by(3);
        Metrics::count(&metrics.sync_calls, "timeout");
        metrics
            .attempt_duration
            .get_or_create(&DestinationLabels {
                destination: "http".into(),
            })
            .observe(0.003);
        let text = metrics.render();
        assert!(text.contains("herald_messages_published_total 3"), "{text}");
        assert!(
            text.contains("herald_sync_calls_total{outcome=\"timeout\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "herald_attempt_duration_seconds_bucket{le=\"0.004\",destination=\"http\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE herald_queue_waiting_deliveries gauge"),
            "{text}"
        );
    }

    #[test]
    fn the_grafana_dashboard_names_only_metrics_herald_has() {
        let dashboard = include_str!("../../../ops/grafana/herald.json");
        let metrics = Metrics::new();
        metrics.messages_published.inc();
        // A family shows in the text once it has a series: one of each.
        let outcome = OutcomeLabels {
            outcome: "x".into(),
        };
        metrics.ingest_requests.get_or_create(&outcome).inc();
        metrics.sync_calls.get_or_create(&outcome).inc();
        metrics.verification_tries.get_or_create(&outcome).inc();
        let route = RouteLabels {
            method: "GET".into(),
            route: "/".into(),
        };
        metrics
            .http_request_duration
            .get_or_create(&route)
            .observe(0.1);
        let request = RequestLabels {
            method: "GET".into(),
            route: "/".into(),
            status: 200,
        };
        metrics.http_requests.get_or_create(&request).inc();
        let attempt = AttemptLabels {
            destination: "http".into(),
            trigger: "scheduled".into(),
            outcome: "success".into(),
        };
        metrics.attempts.get_or_create(&attempt).inc();
        let kind = DestinationLabels {
            destination: "http".into(),
        };
        metrics.attempt_duration.get_or_create(&kind).observe(0.1);
        let commit = CommitLabels {
            commit: "publish".into(),
        };
        metrics
            .commit_batch_size
            .get_or_create(&commit)
            .observe(1.0);
        let pool = PoolLabels {
            pool: "writer".into(),
            state: "idle".into(),
        };
        metrics.pool_connections.get_or_create(&pool).set(1);
        let text = metrics.render();
        let names: Vec<&str> = dashboard
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("herald_"))
            .collect();
        assert!(names.len() >= 11, "{names:?}");
        for name in names {
            assert!(
                text.contains(&format!("\n{name}")),
                "the dashboard asks for {name}, which Herald does not export"
            );
        }
    }
}

//! This node among those sharing the database: it says every few seconds that it is alive
//! (`Store::heartbeat`), and shares the limits meant for the whole cluster (an API token's
//! rate) among the nodes alive. On SQLite one process serves, and the count is always 1.

use std::sync::Arc;
use std::time::Duration;

use herald_api::http::rate_limit::TokenRateLimit;
use herald_core::{Clock, Store};
use tokio_util::sync::CancellationToken;

/// How often a node says it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A node silent this long is no longer counted (it died, or stopped).
const LIVE_FOR: chrono::Duration = chrono::Duration::seconds(15);
/// A node silent this long is forgotten.
const FORGET_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// Says `node` is alive until `shutdown`, and shares `rate_limit` among the live nodes.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    node: String,
    rate_limit: Arc<TokenRateLimit>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now = clock.now();
        match store
            .heartbeat(&node, now, now - LIVE_FOR, now - FORGET_AFTER)
            .await
        {
            Ok(nodes) => {
                if nodes != rate_limit.nodes() {
                    tracing::info!(
                        nodes,
                        "nodes sharing the database (the API rate limit is shared among them)"
                    );
                }
                rate_limit.share_among(nodes);
            }
            // The last count stands: a database away for a moment changes no limit.
            Err(e) => tracing::warn!(error = %e, "could not say this node is alive"),
        }
    }
}

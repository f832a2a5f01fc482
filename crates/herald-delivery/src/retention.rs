//! The retention cleaner: removes payloads and stored response bodies past the retention
//! period, keeping the metadata of messages and attempts, and, when configured, deletes
//! messages past `delete_after` with their deliveries and attempts, then gives the space
//! back; always in small batches, so that it never holds the database for long.

use std::sync::Arc;

use herald_core::{Clock, Store};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::settings::RetentionConfig;

/// The cleaner of one node (several nodes may run one: their batches skip each other).
pub struct Cleaner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
    purged: watch::Sender<u64>,
}

impl Cleaner {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: RetentionConfig) -> Self {
        Self {
            store,
            clock,
            config,
            purged: watch::Sender::new(0),
        }
    }

    /// How many payloads, response bodies and old messages were removed so far.
    pub fn purged(&self) -> watch::Receiver<u64> {
        self.purged.subscribe()
    }

    /// Cleans at start, then every `interval`, until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let period =
            chrono::Duration::from_std(self.config.period).unwrap_or(chrono::Duration::MAX);
        let interval =
            chrono::Duration::from_std(self.config.interval).unwrap_or(chrono::Duration::hours(1));
        loop {
            let now = self.clock.now();
            if let Some(cutoff) = now.checked_sub_signed(period) {
                self.clean_before(cutoff, &shutdown).await;
            }
            let delete_after = self.config.delete_after.map(chrono::Duration::from_std);
            if let Some(cutoff) = delete_after.and_then(|d| now.checked_sub_signed(d.ok()?)) {
                self.delete_before(cutoff, &shutdown).await;
            }
            self.clean_stats(now).await;
            tokio::select! {
                _ = self.clock.sleep_until(now + interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Drops statistics rollups past their keeping time.
    async fn clean_stats(&self, now: chrono::DateTime<chrono::Utc>) {
        let before = |keep: std::time::Duration| {
            chrono::Duration::from_std(keep)
                .ok()
                .and_then(|keep| now.checked_sub_signed(keep))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        };
        let cutoffs = herald_core::stats::RollupCutoffs {
            minute: before(self.config.stats_minutes),
            hour: before(self.config.stats_hours),
            day: before(self.config.stats_days),
        };
        if let Err(e) = self.store.purge_stats(&cutoffs).await {
            tracing::warn!(error = %e, "removing old statistics failed; the cleaner tries again later");
        }
    }

    /// Deletes the messages created before `cutoff` (with their history), batch by batch,
    /// then gives the freed space back.
    async fn delete_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        shutdown: &CancellationToken,
    ) {
        let batch = self.config.batch.max(1);
        let mut deleted = 0;
        while !shutdown.is_cancelled() {
            match self.store.delete_old_messages(cutoff, batch).await {
                Ok(n) => {
                    deleted += n;
                    self.purged.send_modify(|total| *total += n);
                    if n < u64::from(batch) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "deleting old messages failed; the cleaner tries again later");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "old messages deleted");
            if let Err(e) = self.store.reclaim_space().await {
                tracing::warn!(error = %e, "giving freed space back failed");
            }
        }
    }

    async fn clean_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        shutdown: &CancellationToken,
    ) {
        let batch = self.config.batch.max(1);
        while !shutdown.is_cancelled() {
            match self.store.purge_content(cutoff, batch).await {
                Ok(changed) => {
                    self.purged.send_modify(|n| *n += changed);
                    if changed < 2 * u64::from(batch) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the retention cleaner failed; it tries again later");
                    return;
                }
            }
        }
    }
}

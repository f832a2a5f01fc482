//! Group commit of attempt results. Attempts that finish at about the same time are
//! recorded in one transaction, so one fsync serves many, while each attempt still waits
//! until its own record is committed before it counts as settled.
//!
//! On SQLite, where every write goes through one connection, this is what lets deliveries
//! outpace the disk's commits per second.

use std::sync::Arc;

use herald_core::store::FinishedAttempt;
use herald_core::Store;
use tokio::sync::{mpsc, oneshot};

/// The most attempts one transaction records.
const MAX_BATCH: usize = 256;

type Job = (FinishedAttempt, oneshot::Sender<bool>);

/// A handle to the recording task; it stops when every handle is gone.
#[derive(Clone)]
pub struct Recorder {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Recorder {
    /// Starts the recording task (on the current Tokio runtime).
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Self { jobs }
    }

    /// Records `finished`, together with whatever else is waiting: `true` once committed.
    pub async fn record(&self, finished: FinishedAttempt) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send((finished, reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

async fn run(store: Arc<dyn Store>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        // Whatever queued up while the previous batch committed goes in this one.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (finished, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match store.finish_attempts(&finished).await {
            Ok(()) => replies.into_iter().for_each(|r| {
                let _ = r.send(true);
            }),
            Err(e) if finished.len() > 1 => {
                // One bad record must not cost the others theirs: one at a time.
                tracing::warn!(error = %e, size = finished.len(), "recording a batch of attempts failed; recording them one by one");
                for (f, reply) in finished.iter().zip(replies) {
                    let _ = reply.send(store.finish_attempt(f).await.is_ok());
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording an attempt failed");
                replies.into_iter().for_each(|r| {
                    let _ = r.send(false);
                });
            }
        }
    }
}

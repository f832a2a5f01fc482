//! Group commit of publishes. Every write to SQLite goes through one connection, and each
//! commit waits for the disk (`synchronous = FULL`), so publishing one message per
//! transaction caps a node at the disk's commits per second. Publishes arriving while a
//! commit is under way are written together in the next transaction (one publisher's
//! conflict does not undo another's message), and each caller gets its answer only after
//! the commit that made its message durable.

use std::sync::Arc;

use herald_core::sealing::SecretSealer;
use herald_core::store::{NewMessage, Published, StoreResult};
use herald_core::StoreError;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::internal;
use crate::messages::{publish_one, EndpointCache};

/// The most publishes one transaction writes.
const MAX_BATCH: usize = 128;

struct Job {
    new: NewMessage,
    sealer: Arc<SecretSealer>,
    reply: oneshot::Sender<StoreResult<Published>>,
}

/// A handle to the publishing task; it stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Publisher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Publisher {
    /// Starts the task writing through `writer`; `work` is signalled after commits that
    /// created deliveries.
    pub fn start(writer: SqlitePool, work: Arc<Notify>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, work, rx));
        Self { jobs }
    }

    /// Publishes `new` durably, together with whatever else is waiting.
    pub async fn publish(
        &self,
        new: &NewMessage,
        sealer: Arc<SecretSealer>,
    ) -> StoreResult<Published> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            new: new.clone(),
            sealer,
            reply,
        };
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Internal("the store is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the publishing task stopped".into()))?
    }
}

async fn run(writer: SqlitePool, work: Arc<Notify>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = write(&writer, &batch).await;
        let created = match &results {
            Ok(each) => each
                .iter()
                .any(|r| matches!(r, Ok(Published::Created { deliveries, .. }) if *deliveries > 0)),
            Err(_) => false,
        };
        if created {
            work.notify_one();
        }
        match results {
            Ok(each) => {
                for (job, result) in batch.into_iter().zip(each) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                // Nothing of the batch was committed: every publisher hears so.
                let message = e.to_string();
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Internal(message.clone().into())));
                }
            }
        }
    }
}

/// Writes the batch in one transaction: `Err` if it could not be committed, else each
/// publish's own result.
///
/// No savepoints: `publish_one` meets a publish's own failures (a duplicate event id, an
/// unknown application) before it writes anything of it. A failure after that ends the
/// whole batch, which is then not committed, and every publisher hears so.
async fn write(writer: &SqlitePool, batch: &[Job]) -> StoreResult<Vec<StoreResult<Published>>> {
    let mut tx = writer.begin().await.map_err(internal)?;
    let mut endpoints = EndpointCache::new();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        results.push(publish_one(&mut tx, &job.new, &job.sealer, &mut endpoints).await?);
    }
    tx.commit().await.map_err(internal)?;
    Ok(results)
}

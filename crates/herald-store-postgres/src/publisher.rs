//! Group commit of publishes. A publish committed alone costs a round trip per statement
//! plus a commit, and its `NOTIFY` takes a database-wide lock at commit; so publishes that
//! arrive while others are being written wait and are written together, a few batches at
//! once, each with one `NOTIFY`. Every caller still gets its answer only after the commit
//! that made its message durable.

use std::sync::Arc;

use herald_core::sealing::SecretSealer;
use herald_core::store::{NewMessage, Published, StoreResult};
use herald_core::StoreError;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use crate::messages::{lock_idempotency_key, publish_alone, publish_in, EndpointCache};
use crate::{internal, notify_work};

/// The most publishes one transaction writes.
const MAX_BATCH: usize = 64;
/// Batches written at once, each on a connection of its own: while one commits, the next
/// can be filling.
const WRITERS: usize = 4;

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
    /// Starts the task writing through `pool`; `work` is this node's dispatcher, woken after
    /// commits that created deliveries (other nodes hear the `NOTIFY`).
    pub fn start(pool: PgPool, work: Arc<Notify>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, work, rx));
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

async fn run(pool: PgPool, work: Arc<Notify>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    while let Some(first) = jobs.recv().await {
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        // Whatever queued up while every writer was busy goes in this batch.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (pool, work) = (pool.clone(), work.clone());
        tokio::spawn(async move {
            write_and_answer(&pool, &work, batch).await;
            drop(writer);
        });
    }
}

async fn write_and_answer(pool: &PgPool, work: &Notify, batch: Vec<Job>) {
    match write(pool, &batch).await {
        Ok(results) => {
            if creates_work(&results) {
                work.notify_one();
            }
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        Err(e) => {
            // Something in the batch failed (a duplicate event id, an application deleted
            // meanwhile, a database error) and PostgreSQL undid it all: each publish again,
            // alone, so that each gets its own answer.
            if batch.len() > 1 {
                tracing::debug!(error = %e, size = batch.len(), "a batch of publishes failed; publishing them one by one");
            }
            for job in batch {
                let result = publish_alone(pool, work, &job.new, &job.sealer).await;
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Writes the batch in one transaction with one `NOTIFY`: all or nothing.
async fn write(pool: &PgPool, batch: &[Job]) -> StoreResult<Vec<Published>> {
    let mut tx = pool.begin().await.map_err(internal)?;
    // Two batches taking the same idempotency keys' locks in different orders would
    // deadlock; taken up front in one order, they queue instead.
    let mut keys: Vec<(&str, &str)> = batch
        .iter()
        .filter_map(|job| {
            let key = job.new.idempotency_key.as_deref()?;
            Some((job.new.message.app_id.as_str(), key))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for (app_id, key) in keys {
        lock_idempotency_key(&mut tx, app_id, key).await?;
    }
    let mut endpoints = EndpointCache::new();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        results.push(publish_in(&mut tx, &job.new, &job.sealer, &mut endpoints).await?);
    }
    if creates_work(&results) {
        notify_work(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)?;
    Ok(results)
}

fn creates_work(results: &[Published]) -> bool {
    results
        .iter()
        .any(|r| matches!(r, Published::Created { deliveries, .. } if *deliveries > 0))
}

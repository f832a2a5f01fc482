//! The queue in front of a store's group commit: each publisher hands in its message and
//! waits for the answer, and the store's writing task takes whatever has queued up as one
//! batch.

use std::sync::Arc;

use herald_core::sealing::SecretSealer;
use herald_core::store::{NewMessage, Published, StoreResult};
use herald_core::StoreError;
use tokio::sync::{mpsc, oneshot};

/// One publish waiting to be written.
pub struct PublishJob {
    pub new: NewMessage,
    pub sealer: Arc<SecretSealer>,
    pub reply: oneshot::Sender<StoreResult<Published>>,
}

/// The publishers' side; the writing task's side ends once every clone is dropped.
#[derive(Debug, Clone)]
pub struct PublishQueue {
    jobs: mpsc::UnboundedSender<PublishJob>,
}

/// The writing task's side.
pub struct PublishJobs {
    jobs: mpsc::UnboundedReceiver<PublishJob>,
}

impl PublishQueue {
    pub fn new() -> (Self, PublishJobs) {
        let (jobs, rx) = mpsc::unbounded_channel();
        (Self { jobs }, PublishJobs { jobs: rx })
    }

    /// Queues `new` and waits until the writing task answers: after the commit that made it
    /// durable, or with the reason it was refused.
    pub async fn publish(
        &self,
        new: &NewMessage,
        sealer: Arc<SecretSealer>,
    ) -> StoreResult<Published> {
        let (reply, answer) = oneshot::channel();
        let job = PublishJob {
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

impl PublishJobs {
    /// The next publish; `None` once no publisher is left.
    pub async fn next(&mut self) -> Option<PublishJob> {
        self.jobs.recv().await
    }

    /// Adds to `batch` what is waiting now, up to `max` in all.
    pub fn fill(&mut self, batch: &mut Vec<PublishJob>, max: usize) {
        while batch.len() < max {
            match self.jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }
}

//! The bounded queue in front of every group commit (publishes, attempt records): callers
//! hand in a job and wait for its answer; the writing task takes whatever has queued up as
//! one batch, commits it, and answers each job after the commit that made it durable.
//!
//! The queue has a fixed capacity. A publish that finds it full is refused at once with
//! [`StoreError::Busy`] (the API answers `503` with `Retry-After`), so overload shows as
//! a clear answer rather than as memory. A job that must not be refused, such as the
//! record of an attempt already made, waits for room instead, which slows the dispatcher
//! down to what the database can write.

use herald_core::store::StoreResult;
use herald_core::StoreError;
use tokio::sync::{mpsc, oneshot};

/// One job waiting in a batch, with the way to answer its caller.
pub struct Pending<J, R> {
    pub job: J,
    pub reply: Reply<R>,
}

/// The way to answer one caller.
pub struct Reply<R>(oneshot::Sender<R>);

impl<R> Reply<R> {
    /// Answers the caller (who may have given up waiting).
    pub fn answer(self, result: R) {
        let _ = self.0.send(result);
    }

    /// The caller gave up waiting (and was told nothing was done).
    pub fn is_abandoned(&self) -> bool {
        self.0.is_closed()
    }
}

/// The callers' side; the writing task's [`Batches`] end once every clone is dropped.
pub struct Batcher<J, R> {
    jobs: mpsc::Sender<Pending<J, R>>,
}

impl<J, R> Clone for Batcher<J, R> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

impl<J, R> std::fmt::Debug for Batcher<J, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("room", &self.jobs.capacity())
            .finish()
    }
}

/// The writing task's side.
pub struct Batches<J, R> {
    jobs: mpsc::Receiver<Pending<J, R>>,
}

impl<J, R> Batcher<J, R> {
    /// A queue holding at most `capacity` jobs.
    pub fn new(capacity: usize) -> (Self, Batches<J, R>) {
        let (jobs, rx) = mpsc::channel(capacity.max(1));
        (Self { jobs }, Batches { jobs: rx })
    }

    /// Queues `job` if there is room, else fails at once with `Busy`; then waits for the
    /// answer.
    pub async fn submit(&self, job: J) -> StoreResult<R> {
        let (reply, answer) = oneshot::channel();
        let reply = Reply(reply);
        self.jobs
            .try_send(Pending { job, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => closed(),
            })?;
        answer.await.map_err(|_| stopped())
    }

    /// Queues `job`, waiting for room, then waits for the answer.
    pub async fn submit_waiting(&self, job: J) -> StoreResult<R> {
        let (reply, answer) = oneshot::channel();
        let reply = Reply(reply);
        self.jobs
            .send(Pending { job, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| stopped())
    }
}

impl<J, R> Batches<J, R> {
    /// Waits for a job, then takes it with whatever else is waiting, up to `max` in all;
    /// `None` once no caller is left.
    pub async fn next_batch(&mut self, max: usize) -> Option<Vec<Pending<J, R>>> {
        let mut batch = Vec::new();
        match self.jobs.recv_many(&mut batch, max.max(1)).await {
            0 => None,
            _ => Some(batch),
        }
    }
}

fn closed() -> StoreError {
    StoreError::Internal("the store is closed".into())
}

fn stopped() -> StoreError {
    StoreError::Internal("the store's writing task stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_batch_takes_what_waits() {
        let (batcher, mut batches) = Batcher::<u32, u32>::new(2);
        let first = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(1).await }
        });
        let second = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(2).await }
        });
        // Both wait in the queue until the writer takes them; a third finds no room.
        while batcher.jobs.capacity() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(batcher.submit(3).await, Err(StoreError::Busy)));
        let batch = batches.next_batch(10).await.expect("a batch");
        assert_eq!(batch.len(), 2);
        for pending in batch {
            let doubled = pending.job * 2;
            pending.reply.answer(doubled);
        }
        let mut answers = [
            first.await.expect("task").expect("answer"),
            second.await.expect("task").expect("answer"),
        ];
        answers.sort_unstable();
        assert_eq!(answers, [2, 4]);
    }

    #[tokio::test]
    async fn batches_end_when_every_caller_is_gone() {
        let (batcher, mut batches) = Batcher::<u32, u32>::new(1);
        drop(batcher);
        assert!(batches.next_batch(4).await.is_none());
    }
}

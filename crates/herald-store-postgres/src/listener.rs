//! `LISTEN herald_work` on a dedicated connection: each notification wakes this node's
//! dispatcher. After a lost connection it reconnects with a capped back-off and wakes the
//! dispatcher anyway, since notifications sent meanwhile were missed.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::WORK_CHANNEL;

const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The listening task; stopped when the last clone of the store is dropped.
#[derive(Debug)]
pub struct ListenerTask(JoinHandle<()>);

impl ListenerTask {
    pub fn spawn(pool: PgPool, work: Arc<Notify>) -> Self {
        Self(tokio::spawn(listen(pool, work)))
    }
}

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn listen(pool: PgPool, work: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                backoff = Duration::from_millis(100);
                // Anything published before the subscription took effect is found by this.
                work.notify_one();
                while listener.try_recv().await.ok().flatten().is_some() {
                    work.notify_one();
                }
                tracing::warn!("lost the LISTEN connection; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for work; retrying"),
        }
        work.notify_one();
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(WORK_CHANNEL).await?;
    Ok(listener)
}

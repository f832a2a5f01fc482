//! `LISTEN herald_work` on a dedicated connection: each notification wakes this node's
//! dispatcher and its long polls of the message stream, or only the long polls when it
//! says it brings news and no work (`NEWS_ONLY`: a publish whose deliveries all went to
//! the publishing node's own dispatcher). After a lost connection it
//! reconnects with a capped back-off and wakes them anyway, since notifications sent
//! meanwhile were missed.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::{NEWS_ONLY, WORK_CHANNEL};

const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long without a notification before the connection is checked.
const QUIET_SPELL: Duration = Duration::from_secs(30);

/// The listening task; stopped when the last clone of the store is dropped.
#[derive(Debug)]
pub struct ListenerTask(JoinHandle<()>);

impl ListenerTask {
    pub fn spawn(pool: PgPool, wake: Wake) -> Self {
        Self(tokio::spawn(listen(pool, wake)))
    }
}

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Who a notification wakes: the dispatcher, and the long polls of the message stream.
#[derive(Debug, Clone)]
pub struct Wake {
    pub work: Arc<Notify>,
    pub news: Arc<watch::Sender<u64>>,
}

impl Wake {
    fn all(&self) {
        self.work.notify_one();
        self.news();
    }

    fn news(&self) {
        self.news.send_modify(|n| *n = n.wrapping_add(1));
    }
}

async fn listen(pool: PgPool, wake: Wake) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                backoff = Duration::from_millis(100);
                // Anything published before the subscription took effect is found by this.
                wake.all();
                wait_while_connected(&mut listener, &wake).await;
                tracing::warn!("lost the LISTEN connection; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for work; retrying"),
        }
        wake.all();
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Relays notifications until the connection is lost. A connection dropped silently (by a
/// NAT or a failover) would block forever, so after a quiet spell it is pinged.
async fn wait_while_connected(listener: &mut PgListener, wake: &Wake) {
    loop {
        match tokio::time::timeout(QUIET_SPELL, listener.try_recv()).await {
            Ok(Ok(Some(notification))) if notification.payload() == NEWS_ONLY => wake.news(),
            Ok(Ok(Some(_))) => wake.all(),
            Ok(_) => return,
            Err(_quiet) => {
                if sqlx::query("SELECT 1")
                    .execute(&mut *listener)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(WORK_CHANNEL).await?;
    Ok(listener)
}

//! Group commit of publishes and of attempt records, through the one [`Batcher`].
//!
//! A commit waits for the disk (SQLite, `synchronous = FULL`) or costs a round trip and a
//! WAL flush (PostgreSQL), so one write per transaction caps a node at the database's
//! commits per second. Publishes that arrive while a batch is being written are written
//! together in the next one, and so are attempts that finish together; each caller gets
//! its answer only after the commit that made its write durable, and one publish that is
//! refused (a repeated `eventId`, an unknown application) does not undo the others.

use std::sync::Arc;

use herald_core::model::Endpoint;
use herald_core::sealing::SecretSealer;
use herald_core::store::{FinishedAttempt, NewMessage, Published, StoreResult};
use herald_core::StoreError;
use tokio::sync::Semaphore;

use crate::batcher::{Batcher, Batches, Pending};
use crate::db::Db;
use crate::dialect::{Conn, Dialect, ReadRow};
use crate::fresh::{self, Fresh};
use crate::publish_plan::{plan, Accepted, Known};
use crate::sql::Sql;
use crate::store::Backend;
use crate::{internal, queue, rows, unique_ids};

/// Publishes waiting at most; one more is refused with `Busy` (the API's `503`).
const PUBLISH_QUEUE: usize = 1024;
/// Attempt records waiting at most; one more waits for room (the dispatcher slows down).
const RECORD_QUEUE: usize = 4096;
/// The most attempts one transaction records.
const MAX_RECORD_BATCH: usize = 256;

/// One publish, with the sealer to read endpoint secrets with.
pub struct PublishJob {
    pub new: NewMessage,
    pub sealer: Arc<SecretSealer>,
}

/// The queue of publishes in front of their group commit.
pub type PublishQueue = Batcher<PublishJob, StoreResult<Published>>;
/// The queue of attempt records in front of their group commit.
pub type RecordQueue = Batcher<FinishedAttempt, StoreResult<()>>;

/// Starts the task that writes publishes in batches.
pub fn start_publishing<B: Backend>(db: Db<B::Dialect>, backend: Arc<B>) -> PublishQueue {
    let (queue, batches) = Batcher::new(PUBLISH_QUEUE);
    tokio::spawn(publish_batches(db, backend, batches));
    queue
}

/// Starts the task that records attempts in batches.
pub fn start_recording<B: Backend>(db: Db<B::Dialect>, backend: Arc<B>) -> RecordQueue {
    let (queue, batches) = Batcher::new(RECORD_QUEUE);
    tokio::spawn(record_batches(db, backend, batches));
    queue
}

type PublishBatches = Batches<PublishJob, StoreResult<Published>>;
type Publish = Pending<PublishJob, StoreResult<Published>>;

async fn publish_batches<B: Backend>(
    db: Db<B::Dialect>,
    backend: Arc<B>,
    mut batches: PublishBatches,
) {
    let writers = Arc::new(Semaphore::new(B::PUBLISH_WRITERS));
    loop {
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        // Whatever queued up while every writer was busy goes in this batch.
        let Some(batch) = batches.next_batch(B::MAX_PUBLISH_BATCH).await else {
            return;
        };
        let (db, backend) = (db.clone(), backend.clone());
        tokio::spawn(async move {
            write_and_answer(&db, &*backend, batch).await;
            drop(writer);
        });
    }
}

async fn write_and_answer<B: Backend>(db: &Db<B::Dialect>, backend: &B, batch: Vec<Publish>) {
    db.count_commit("publish", batch.len());
    let news: Vec<&NewMessage> = batch.iter().map(|p| &p.job.new).collect();
    // Every job comes from the one store, with its one sealer.
    let sealer = batch[0].job.sealer.clone();
    let written = write_publishes(db, backend, &news, &sealer).await;
    drop(news);
    match written {
        Ok(results) => {
            for (pending, result) in batch.into_iter().zip(results) {
                pending.reply.answer(result);
            }
        }
        Err(e) if backend.may_publish_alone(&e) => {
            // The database undid the whole batch for something one publish brought (see
            // the backend): each again, alone, so that each gets its own answer.
            if batch.len() > 1 {
                tracing::debug!(error = %e, size = batch.len(), "a batch of publishes failed; publishing them one by one");
            }
            for Pending { job, reply } in batch {
                if reply.is_abandoned() {
                    continue;
                }
                reply.answer(backend.publish_alone(db, &job.new, &job.sealer).await);
            }
        }
        Err(e) => {
            // Nothing of the batch was committed, and trying again would fail again:
            // every publisher hears so.
            let message = e.to_string();
            let unavailable = matches!(e, StoreError::Unavailable);
            for pending in batch {
                let error = if unavailable {
                    StoreError::Unavailable
                } else {
                    StoreError::Internal(message.clone().into())
                };
                pending.reply.answer(Err(error));
            }
        }
    }
}

/// Writes a batch of publishes in one transaction, with one wake-up for the other nodes:
/// `Err` if it could not be committed, else each publish's own result. What could refuse
/// a publish is read first, for the whole batch, and decided in arrival order (`plan`);
/// then the accepted messages and their deliveries are inserted, a fixed number of
/// statements whatever the batch's size, since each is a round trip. After the commit,
/// the deliveries this node's dispatcher had room for start at once (`Fresh`); this
/// node's loop is woken only for the rest, and long polls for every new message.
async fn write_publishes<B: Backend>(
    db: &Db<B::Dialect>,
    backend: &B,
    news: &[&NewMessage],
    sealer: &SecretSealer,
) -> StoreResult<Vec<StoreResult<Published>>> {
    let mut tx = db.begin().await?;
    let mut known = backend.read_taken(&mut tx, news).await?;
    read_apps_and_endpoints::<B::Dialect>(&mut tx, news, sealer, &mut known).await?;
    let (results, accepted) = plan(news, &known);
    let (intake, token) = (db.intake(), fresh::lease_token());
    let fresh = Fresh::plan(&accepted, &known, intake.as_deref(), &token);
    backend
        .insert_accepted(&mut tx, &accepted, &fresh.rows)
        .await?;
    // In line first, then held: a delivery let go to an endpoint that has not verified
    // its subscription is held at once, like any other.
    let ordered = ordered_of(known.endpoints.values().flatten());
    if !ordered.is_empty() {
        line_up::<B::Dialect>(&mut tx, &accepted, ordered).await?;
    }
    let holding = holding(known.endpoints.values().flatten());
    if !holding.is_empty() {
        let messages = accepted.iter().filter(|a| {
            a.endpoint_ids
                .iter()
                .any(|id| holding.contains(&id.to_string()))
        });
        let messages = messages.map(|a| a.new.message.id.clone()).collect();
        hold::<B::Dialect>(&mut tx, messages, holding).await?;
    }
    // Other nodes hear of every new message: their long polls of the stream, and their
    // dispatchers only if some delivery is left for a claim (those handed to this node's
    // dispatcher are no work of theirs).
    if fresh.left_to_claim() {
        B::Dialect::notify_work(&mut tx).await?;
    } else if creates_messages(&results) {
        B::Dialect::notify_news(&mut tx).await?;
    }
    tx.commit().await.map_err(internal)?;
    if fresh.left_to_claim() {
        db.work.notify_one();
    }
    fresh.hand_over(db).await;
    if creates_messages(&results) {
        db.announce_news();
    }
    Ok(results)
}

/// Adds to `known` which of the batch's applications exist, and their enabled endpoints;
/// an endpoint that cannot be read fails only its application's publishes.
async fn read_apps_and_endpoints<D: Dialect>(
    tx: &mut Conn<D>,
    news: &[&NewMessage],
    sealer: &SecretSealer,
    known: &mut Known,
) -> StoreResult<()> {
    let app_ids = unique_ids(news.iter().map(|n| n.message.app_id.as_str()));
    let mut apps = Sql::new("SELECT id FROM applications WHERE ");
    D::push_in_list(&mut apps, "id", app_ids.clone());
    for row in D::fetch_all(&mut *tx, &apps).await.map_err(internal)? {
        known.apps.insert(row.text("id")?);
    }
    // Ad-hoc endpoints only when named: an application may have many, and they receive
    // nothing else.
    let mut endpoints = Sql::new("SELECT * FROM endpoints WHERE NOT disabled AND NOT adhoc AND ");
    D::push_in_list(&mut endpoints, "app_id", app_ids);
    let adhoc = Known::adhoc_of(news);
    if !adhoc.is_empty() {
        endpoints.push(" OR adhoc AND ");
        D::push_in_list(&mut endpoints, "id", adhoc);
    }
    for row in D::fetch_all(tx, &endpoints).await.map_err(internal)? {
        match rows::endpoint(&row, sealer) {
            Ok(endpoint) => known
                .endpoints
                .entry(endpoint.app_id.clone())
                .or_default()
                .push(endpoint),
            Err(e) => {
                known.unreadable.insert(row.text("app_id")?, e.to_string());
            }
        }
    }
    Ok(())
}

/// Publishes one message in a transaction of its own.
pub async fn publish_one<B: Backend>(
    db: &Db<B::Dialect>,
    backend: &B,
    new: &NewMessage,
    sealer: &SecretSealer,
) -> StoreResult<Published> {
    let mut results = write_publishes(db, backend, &[new], sealer).await?;
    results
        .pop()
        .unwrap_or_else(|| Err(internal(sqlx::Error::RowNotFound)))
}

/// Whether a batch's results include a new message.
fn creates_messages(results: &[StoreResult<Published>]) -> bool {
    results
        .iter()
        .any(|r| matches!(r, Ok(Published::Created { .. })))
}

async fn record_batches<B: Backend>(
    db: Db<B::Dialect>,
    backend: Arc<B>,
    mut batches: Batches<FinishedAttempt, StoreResult<()>>,
) {
    while let Some(batch) = batches.next_batch(MAX_RECORD_BATCH).await {
        let (finished, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.job, p.reply)).unzip();
        db.count_commit("record", finished.len());
        match queue::finish_attempts(&db, &*backend, &finished).await {
            Ok(()) => replies.into_iter().for_each(|r| r.answer(Ok(()))),
            Err(e) if finished.len() > 1 => {
                // One bad record must not cost the others theirs: one at a time.
                tracing::warn!(error = %e, size = finished.len(), "recording a batch of attempts failed; recording them one by one");
                for (f, reply) in finished.iter().zip(replies) {
                    let one = std::slice::from_ref(f);
                    reply.answer(queue::finish_attempts(&db, &*backend, one).await);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording an attempt failed");
                if let Some(reply) = replies.into_iter().next() {
                    reply.answer(Err(e));
                }
            }
        }
    }
}

/// The endpoints among `endpoints` whose deliveries wait for them to verify their
/// subscription.
pub fn holding<'a>(endpoints: impl IntoIterator<Item = &'a Endpoint>) -> Vec<String> {
    endpoints
        .into_iter()
        .filter(|e| e.verification.status.holds())
        .map(|e| e.id.clone())
        .collect()
}

/// The endpoints among `endpoints` that receive their messages one at a time, in order.
pub fn ordered_of<'a>(endpoints: impl IntoIterator<Item = &'a Endpoint>) -> Vec<String> {
    endpoints
        .into_iter()
        .filter(|e| e.ordered)
        .map(|e| e.id.clone())
        .collect()
}

/// Within `tx`, puts the new deliveries of `accepted` to the `ordered` endpoints in line
/// behind what those endpoints already have under way (see `ordered`).
pub async fn line_up<D: Dialect>(
    tx: &mut Conn<D>,
    accepted: &[Accepted<'_>],
    ordered: Vec<String>,
) -> StoreResult<()> {
    let to_ordered = accepted.iter().filter(|a| {
        a.endpoint_ids
            .iter()
            .any(|id| ordered.iter().any(|o| o == id))
    });
    let (messages, latest): (Vec<String>, Vec<_>) = to_ordered
        .map(|a| (a.new.message.id.clone(), a.new.message.created_at))
        .unzip();
    let Some(now) = latest.into_iter().max() else {
        return Ok(());
    };
    crate::ordered::line_up_new::<D>(tx, messages, ordered, now).await
}

/// Within `tx`, holds the new deliveries of `messages` to `endpoints` (status 5): stored,
/// not sent until the endpoint verifies.
pub async fn hold<D: Dialect>(
    tx: &mut Conn<D>,
    messages: Vec<String>,
    endpoints: Vec<String>,
) -> StoreResult<()> {
    if messages.is_empty() || endpoints.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new("UPDATE deliveries SET status = 5 WHERE status = 1 AND ");
    D::push_in_list(&mut sql, "msg_id", messages);
    sql.push(" AND ");
    D::push_in_list(&mut sql, "endpoint_id", endpoints);
    D::execute(tx, &sql).await.map_err(internal)?;
    Ok(())
}

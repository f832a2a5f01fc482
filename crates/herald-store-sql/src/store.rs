//! The [`Store`] of both SQL databases, written once: each use case runs the shared SQL of
//! [`catalog`], [`messages`] and [`queue`] through the database's [`Dialect`], and the few
//! that each database does its own way (publishing, claiming, recording attempts,
//! migrations) go to its [`Backend`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::model::{
    Application, Attempt, DeliveryStatus, Endpoint, EventType, Message, Token,
};
use herald_core::sealing::SecretSealer;
use herald_core::store::*;
use herald_core::StoreError;
use tokio::sync::Notify;

use crate::db::Db;
use crate::dialect::{Conn, Dialect};
use crate::group_commit::{self, PublishJob, PublishQueue, RecordQueue};
use crate::messages::AttemptsOf;
use crate::publish_plan::{Accepted, Known};
use crate::{catalog, messages, queue};

/// What one database does its own way.
#[async_trait]
pub trait Backend: Send + Sync + Sized + 'static {
    type Dialect: Dialect;

    /// How many batches of publishes may be written at once (1 for a single writer).
    const PUBLISH_WRITERS: usize;
    /// The most publishes one transaction writes.
    const MAX_PUBLISH_BATCH: usize;

    /// Within `tx`, reads what a batch of publishes may repeat: the stored messages of its
    /// idempotency keys and the event ids already taken, in a few statements whatever the
    /// batch's size. (`group_commit` adds the applications and endpoints.)
    async fn read_taken(
        &self,
        tx: &mut Conn<Self::Dialect>,
        news: &[&NewMessage],
    ) -> StoreResult<Known>;
    /// Within `tx`, inserts the accepted messages and their deliveries, many rows per
    /// statement.
    async fn insert_accepted(
        &self,
        tx: &mut Conn<Self::Dialect>,
        accepted: &[Accepted<'_>],
    ) -> StoreResult<()>;

    /// Whether, after a batch of publishes failed with `error` and was undone, each of
    /// them is worth writing again alone.
    fn may_publish_alone(&self, _error: &StoreError) -> bool {
        false
    }

    /// Publishes one message in a transaction of its own.
    async fn publish_alone(
        &self,
        db: &Db<Self::Dialect>,
        new: &NewMessage,
        sealer: &SecretSealer,
    ) -> StoreResult<Published> {
        group_commit::publish_one(db, self, new, sealer).await
    }
    /// Within `tx`, leases due deliveries to `lease_token` and returns their rows under
    /// the `rows::DELIVERY_COLUMNS` names (see [`Store::claim_due`]); [`queue::claim_due`]
    /// reads them and loads what they need.
    async fn lease_due(
        &self,
        tx: &mut Conn<Self::Dialect>,
        request: &ClaimRequest,
        lease_token: &str,
    ) -> StoreResult<Vec<<Self::Dialect as Dialect>::Row>>;
    /// Within `tx`, writes the attempts and the deliveries' next states, a few statements
    /// whatever the batch's size (see [`Store::finish_attempts`]).
    async fn record_attempts(
        &self,
        tx: &mut Conn<Self::Dialect>,
        batch: &[FinishedAttempt],
    ) -> StoreResult<()>;
    /// Applies pending migrations.
    async fn migrate(&self, db: &Db<Self::Dialect>) -> StoreResult<()>;
}

/// A store on a SQL database: its connections and its backend.
pub struct SqlStore<B: Backend> {
    db: Db<B::Dialect>,
    backend: Arc<B>,
    publishes: PublishQueue,
    records: RecordQueue,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            backend: self.backend.clone(),
            publishes: self.publishes.clone(),
            records: self.records.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
}

impl<B: Backend> SqlStore<B> {
    /// A store over `db`, with `backend` for what its database does its own way; starts
    /// the group-commit tasks (on the current Tokio runtime).
    pub fn new(db: Db<B::Dialect>, backend: B) -> Self {
        let backend = Arc::new(backend);
        Self {
            publishes: group_commit::start_publishing(db.clone(), backend.clone()),
            records: group_commit::start_recording(db.clone(), backend.clone()),
            db,
            backend,
        }
    }

    /// Seals endpoint secrets with `sealer` from now on (and opens them with it).
    pub fn with_sealer(mut self, sealer: Arc<SecretSealer>) -> Self {
        self.db.sealer = sealer;
        self
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.backend.migrate(&self.db).await
    }

    /// The connections, for tests and tools that look at the database itself.
    pub fn db(&self) -> &Db<B::Dialect> {
        &self.db
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn work_signal(&self) -> Arc<Notify> {
        self.db.work.clone()
    }

    async fn close(&self) {
        self.db.close().await;
    }

    async fn insert_token(&self, token: &Token) -> StoreResult<()> {
        catalog::insert_token(&self.db, token).await
    }
    async fn find_token(&self, hash: &str) -> StoreResult<Option<Token>> {
        catalog::find_token(&self.db, hash).await
    }
    async fn delete_token(&self, hash: &str) -> StoreResult<()> {
        catalog::delete_token(&self.db, hash).await
    }
    async fn has_admin_token(&self) -> StoreResult<bool> {
        catalog::has_admin_token(&self.db).await
    }
    async fn list_tokens(&self) -> StoreResult<Vec<Token>> {
        catalog::list_tokens(&self.db).await
    }
    async fn delete_token_by_id(&self, id: &str) -> StoreResult<()> {
        catalog::delete_token_by_id(&self.db, id).await
    }

    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        catalog::create_event_type(&self.db, event_type).await
    }
    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        catalog::get_event_type(&self.db, name).await
    }
    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> StoreResult<Page<EventType>> {
        catalog::list_event_types(&self.db, page, include_archived).await
    }
    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        catalog::update_event_type(&self.db, event_type).await
    }
    async fn expunge_event_type(&self, name: &str) -> StoreResult<()> {
        catalog::expunge_event_type(&self.db, name).await
    }

    async fn create_app(&self, app: &Application) -> StoreResult<()> {
        catalog::create_app(&self.db, app).await
    }
    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application> {
        catalog::get_app(&self.db, id_or_uid).await
    }
    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>> {
        catalog::list_apps(&self.db, page).await
    }
    async fn update_app(&self, app: &Application) -> StoreResult<()> {
        catalog::update_app(&self.db, app).await
    }
    async fn delete_app(&self, id: &str) -> StoreResult<()> {
        catalog::delete_app(&self.db, id).await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        catalog::create_endpoint(&self.db, endpoint).await
    }
    async fn get_endpoint(&self, app_id: &str, id_or_uid: &str) -> StoreResult<Endpoint> {
        catalog::get_endpoint(&self.db, app_id, id_or_uid).await
    }
    async fn list_endpoints(
        &self,
        app_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Endpoint>> {
        catalog::list_endpoints(&self.db, app_id, page).await
    }
    async fn update_endpoint(
        &self,
        endpoint: &Endpoint,
        read_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        catalog::update_endpoint(&self.db, endpoint, read_at).await
    }
    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()> {
        catalog::delete_endpoint(&self.db, app_id, id).await
    }
    async fn disable_endpoint(
        &self,
        app_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        catalog::disable_endpoint(&self.db, app_id, id, at).await
    }

    async fn reseal_secrets(&self) -> StoreResult<u64> {
        catalog::reseal_secrets(&self.db).await
    }

    async fn count_endpoints(&self, app_id: &str) -> StoreResult<u64> {
        catalog::count_endpoints(&self.db, app_id).await
    }

    async fn set_endpoint_failing(
        &self,
        app_id: &str,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        catalog::set_endpoint_failing(&self.db, app_id, id, since).await
    }
    async fn endpoint_stats(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<DeliveryStats> {
        catalog::endpoint_stats(&self.db, app_id, endpoint_id, since).await
    }

    async fn create_message(&self, new: &NewMessage) -> StoreResult<Published> {
        let job = PublishJob {
            new: new.clone(),
            sealer: self.db.sealer.clone(),
        };
        self.publishes.submit(job).await?
    }
    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> StoreResult<Message> {
        messages::get_message(&self.db, app_id, id_or_event_id).await
    }
    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        messages::list_messages(&self.db, app_id, filter, page).await
    }
    async fn delete_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        messages::delete_message_content(&self.db, app_id, msg_id).await
    }

    async fn list_message_deliveries(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<EndpointDelivery>> {
        messages::list_message_deliveries(&self.db, app_id, msg_id, page).await
    }
    async fn list_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<MessageDelivery>> {
        messages::list_endpoint_messages(&self.db, app_id, endpoint_id, filter, status, page).await
    }
    async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        messages::list_attempts(
            &self.db,
            app_id,
            AttemptsOf::Endpoint(endpoint_id),
            filter,
            page,
        )
        .await
    }
    async fn list_attempts_by_message(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        messages::list_attempts(&self.db, app_id, AttemptsOf::Message(msg_id), filter, page).await
    }
    async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> StoreResult<Attempt> {
        messages::get_attempt(&self.db, app_id, msg_id, attempt_id).await
    }
    async fn delete_attempt_content(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> StoreResult<()> {
        messages::delete_attempt_content(&self.db, app_id, msg_id, attempt_id).await
    }
    async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        messages::resend(&self.db, app_id, msg_id, endpoint_id, now).await
    }
    async fn recover_failed(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        messages::recover_failed(&self.db, app_id, endpoint_id, since, until, now).await
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        queue::claim_due(&self.db, &*self.backend, request).await
    }
    async fn finish_attempt(&self, finished: &FinishedAttempt) -> StoreResult<()> {
        // Waits for room rather than failing: the attempt was made, its record must stay.
        self.records.submit_waiting(finished.clone()).await?
    }
    async fn finish_attempts(&self, batch: &[FinishedAttempt]) -> StoreResult<()> {
        queue::finish_attempts(&self.db, &*self.backend, batch).await
    }
    async fn release(
        &self,
        delivery_id: &str,
        lease_token: &str,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        queue::release(&self.db, delivery_id, lease_token, due_at).await
    }
    async fn purge_content(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        messages::purge_content(&self.db, before, batch).await
    }
    async fn cancel(
        &self,
        delivery_id: &str,
        lease_token: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        queue::cancel(&self.db, delivery_id, lease_token, at).await
    }
    async fn next_due_at(&self, skip_endpoints: &[String]) -> StoreResult<Option<DateTime<Utc>>> {
        queue::next_due_at(&self.db, skip_endpoints).await
    }
}

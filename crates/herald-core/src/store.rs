//! The `Store` trait: every durable thing Herald does, one atomic use case per method.
//!
//! Shaped by use cases, not tables: `create_message` commits the message and its
//! deliveries together; `claim_due` leases work to a dispatcher; `finish_attempt` records an
//! attempt with the delivery's next state. Each backend (SQLite, PostgreSQL) implements it
//! and passes the same conformance suite.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use crate::model::{
    AdhocSecret, Application, Attempt, CallbackPolicy, Delivery, DeliveryStatus, Endpoint,
    EventType, IngestRejection, Message, Source, Token, TriggerType,
};
use crate::search::SearchWords;
use crate::signing::EndpointSecret;
use crate::stats::{RollupCutoffs, StatsQuery, StatsRow};
use crate::task::BackgroundTask;

/// What a store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the string names what was duplicated.
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database refused a value it cannot hold (a NUL character, a date out of range).
    #[error("a value cannot be stored")]
    InvalidInput,
    /// More writes are waiting than the store queues; the caller may try again shortly.
    #[error("the store is busy")]
    Busy,
    /// The database cannot be reached (refused, cut, restarting, no connection free in
    /// time); nothing was written, and the caller may try again shortly.
    #[error("the database cannot be reached")]
    Unavailable,
    /// The database failed; never shown to API clients.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which way a list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first (Svix's default for messages and attempts).
    #[default]
    Descending,
    Ascending,
}

/// Where a page starts, relative to an item id of a previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The items that come after this id in the list's order.
    After(String),
    /// The items that come before this id (the previous page).
    Before(String),
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<Cursor>,
    pub order: Order,
}

/// One page of results, in the requested order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// No more items in the direction the page was read.
    pub done: bool,
}

/// Every item of a list, read page by page in ascending order; `key` is what a page's
/// last item continues from (its id, or an event type's name).
pub async fn read_all<T, F, Fut>(mut page: F, key: fn(&T) -> String) -> StoreResult<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Page<T>>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let request = PageRequest {
            limit: 250,
            cursor,
            order: Order::Ascending,
        };
        let got = page(request).await?;
        cursor = got.items.last().map(|last| Cursor::After(key(last)));
        let done = got.done || got.items.is_empty();
        items.extend(got.items);
        if done {
            return Ok(items);
        }
    }
}

/// What became of an endpoint's circuit breaker on one node (see `Queue::share_circuit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitNews<'a> {
    /// It opened, for every node, until this time (a later time already said stays).
    Opened {
        endpoint_id: &'a str,
        until: DateTime<Utc>,
    },
    /// An attempt succeeded: it is closed for every node.
    Closed { endpoint_id: &'a str },
}

/// Who probes an endpoint whose circuit's cool-down ended (see `Queue::take_probe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTurn {
    /// This node: no other took the probe since the circuit opened.
    Mine,
    /// Another node probes, or opened the circuit again: wait until this time.
    Theirs(DateTime<Utc>),
    /// A success elsewhere closed the circuit: attempt as usual.
    Closed,
}

/// One of the places an endpoint's concurrency cap allows, asked for by an attempt (see
/// `Queue::take_slot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotTurn {
    /// This attempt holds place `n` until it frees it or its hold runs out.
    Taken(u32),
    /// Attempts of other nodes (or of this one) hold every place: ask again later.
    Full,
    /// One process runs the store: its dispatcher's own cap is the only one.
    Unshared,
}

/// An attempt asking for a place under its endpoint's concurrency cap (see
/// `Queue::take_slot`).
#[derive(Debug, Clone, Copy)]
pub struct SlotRequest<'a> {
    pub endpoint_id: &'a str,
    /// The endpoint's `maxConcurrency`: places `0..cap` may be taken.
    pub cap: u32,
    /// Who takes it, unique to the attempt (its claim's lease token with its delivery's id:
    /// a claim's token is shared by every delivery claimed with it).
    pub holder: &'a str,
    pub now: DateTime<Utc>,
    /// Until when the place is held if it is never freed: longer than an attempt lasts.
    pub hold_until: DateTime<Utc>,
}

/// Filters on message lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFilter {
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    /// Only messages carrying this tag.
    pub tag: Option<String>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    /// Only messages with a delivery in this state (to any endpoint).
    pub delivery_status: Option<DeliveryStatus>,
    /// Only messages with an attempt whose response status is in this class (200 for
    /// 2xx, 0 for "no response").
    pub status_code_class: Option<i32>,
    /// Only messages whose payload contains this text (case-sensitive). It reads the
    /// payloads of the range it pages through: narrow it with a time range on a big log.
    pub payload_contains: Option<String>,
    /// Only messages whose payload has these words (see `search`), from the store's word
    /// index.
    pub search: Option<SearchWords>,
}

/// A place in an application's message stream (the events API, for consumers that poll).
///
/// The stream runs in commit order, not id order: on PostgreSQL a message with an earlier
/// id can commit after a later one (another node, a slower transaction), and a reader that
/// went on by id would skip it. So each store numbers messages by commit (`seq`) and reads
/// only as far as no transaction still in flight could come before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPosition {
    /// From the oldest message.
    Start,
    /// From the first message created after this time (a reader's first read).
    Since(DateTime<Utc>),
    /// After this message.
    After { seq: i64, msg_id: String },
}

/// Which messages of the stream a reader wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFilter {
    pub event_types: Option<Vec<String>>,
    /// Messages on any of these channels.
    pub channels: Option<Vec<String>>,
}

/// One read of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPage {
    pub items: Vec<Message>,
    /// Where the stream goes on after each item (`positions[i]` follows `items[i]`), for
    /// a reader that acknowledges items one by one.
    pub positions: Vec<StreamPosition>,
    /// Where the next read goes on: after the last item, or where this one started.
    pub next: StreamPosition,
    /// Nothing more is readable now (more may come later).
    pub done: bool,
}

/// Filters on attempt lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptFilter {
    pub status: Option<DeliveryStatus>,
    /// e.g. 200 for 2xx, 0 for "no response".
    pub status_code_class: Option<i32>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    /// Only attempts of messages carrying this tag.
    pub tag: Option<String>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    /// Restrict to one endpoint (when listing by message).
    pub endpoint_id: Option<String>,
    /// Only attempts of messages whose payload has these words (see `search`).
    pub search: Option<SearchWords>,
}

/// A message to publish, with what makes publishing idempotent.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message: Message,
    /// A repeated key returns the first message instead of creating another.
    pub idempotency_key: Option<String>,
    /// Deliver to this endpoint only, whatever its filters (an example sent to one endpoint).
    pub only_endpoint: Option<String>,
    /// Ad-hoc endpoints (one-off callback URLs) to deliver to as well; an ad-hoc endpoint
    /// receives nothing that does not name it.
    pub adhoc_endpoints: Vec<String>,
    /// When its deliveries are first due (`deliverAt`); `None`: at once.
    pub deliver_at: Option<DateTime<Utc>>,
}

impl From<Message> for NewMessage {
    /// A plain publish: no idempotency key, to every endpoint that wants it.
    fn from(message: Message) -> Self {
        Self {
            message,
            idempotency_key: None,
            only_endpoint: None,
            adhoc_endpoints: Vec::new(),
            deliver_at: None,
        }
    }
}

impl NewMessage {
    /// When its deliveries are first due: at `deliverAt`, or as it is published.
    pub fn first_due(&self) -> DateTime<Utc> {
        self.deliver_at.unwrap_or(self.message.created_at)
    }

    /// What triggers the first attempt of this message's delivery to an endpoint.
    pub fn trigger_for(&self, endpoint_id: &str) -> TriggerType {
        if self.adhoc_endpoints.iter().any(|id| id == endpoint_id) {
            TriggerType::Adhoc
        } else {
            TriggerType::Scheduled
        }
    }
}

/// The result of publishing.
#[derive(Debug, Clone)]
pub enum Published {
    /// Committed, with this many deliveries.
    Created { message: Message, deliveries: usize },
    /// The idempotency key was seen before: the message it created.
    Existing(Message),
}

/// The delivery state of a message to one endpoint, for the "endpoints of a message" list.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointDelivery {
    pub endpoint: Endpoint,
    pub delivery: Delivery,
}

/// A message and its delivery state to one endpoint, for the "messages of an endpoint" list.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDelivery {
    pub message: Message,
    pub delivery: Delivery,
}

/// Counts of an endpoint's deliveries by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub failed: u64,
    pub canceled: u64,
}

/// A request for due work.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: DateTime<Utc>,
    /// Until when the claimed rows belong to the claimer; after that anyone may claim them.
    pub lease_until: DateTime<Utc>,
    pub limit: u32,
    /// At most this many rows of any one endpoint, so one endpoint's backlog cannot fill a
    /// whole batch.
    pub per_endpoint_limit: u32,
    /// Endpoints whose lanes are full: their rows are left for later.
    pub skip_endpoints: Vec<String>,
}

/// Where a `herald listen` session is held: which endpoint's, by which node, said when,
/// and before when such a word is stale (its node died without saying it let go).
#[derive(Debug, Clone, Copy)]
pub struct ListenSessionAt<'a> {
    pub endpoint_id: &'a str,
    pub node: &'a str,
    pub now: DateTime<Utc>,
    pub stale_before: DateTime<Utc>,
}

/// A delivery leased to a dispatcher, with all it needs to make the attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    /// Proves the lease when finishing; a finish with a stale token changes nothing.
    pub lease_token: String,
    pub message: Message,
    pub endpoint: Arc<Endpoint>,
}

/// This node's dispatcher, as a publish on this node sees it: it may take the deliveries
/// the publish makes straight after their commit, already leased to it, with no claim
/// (no second transaction, no wake-up through the queue). Only a delivery due at once, to
/// an endpoint that takes its messages in any order and needs no verifying, is offered;
/// the dispatcher says which it has room for.
pub trait FreshIntake: Send + Sync {
    /// Until when a delivery handed over now is leased (as a claim made now would be).
    fn lease_until(&self) -> DateTime<Utc>;
    /// Room for one delivery to `endpoint`, leased until `lease_until`, kept until the
    /// delivery is handed over or the room dropped (the publish failed); `None` when the
    /// dispatcher would not start it now (no room in flight or in the endpoint's lane, its
    /// circuit open, its `herald listen` session on another node, shutting down).
    fn reserve(
        &self,
        endpoint: &Endpoint,
        lease_until: DateTime<Utc>,
    ) -> Option<Box<dyn IntakeRoom>>;
}

/// Room a dispatcher keeps for one fresh delivery (see [`FreshIntake`]).
pub trait IntakeRoom: Send {
    /// Starts the delivery, committed leased to the dispatcher. `Err` when the dispatcher
    /// stopped meanwhile: the publisher then ends the lease itself.
    fn start(self: Box<Self>, delivery: ClaimedDelivery) -> Result<(), IntakeStopped>;
}

/// The dispatcher no longer takes fresh deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeStopped;

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum NextState {
    Succeeded,
    RetryAt(DateTime<Utc>),
    Failed,
}

impl NextState {
    /// This state, unless it is a retry at or after `expires_at`, which is not made: then
    /// the delivery has failed.
    pub fn before(self, expires_at: Option<DateTime<Utc>>) -> Self {
        match (self, expires_at) {
            (Self::RetryAt(at), Some(end)) if at >= end => Self::Failed,
            (next, _) => next,
        }
    }
}

/// An attempt to record together with the delivery's next state.
#[derive(Debug, Clone)]
pub struct FinishedAttempt {
    pub lease_token: String,
    /// The message's event type, which the delivery statistics are kept by.
    pub event_type: String,
    pub attempt: Attempt,
    pub next: NextState,
}

/// A synchronous call, recorded once it was made: its message, and the attempt made to
/// each endpoint called. Each attempt's delivery is created with it, leased to the
/// attempt's `lease_token`, and settled by it in the same transaction, so a call is never
/// queued for later.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    pub message: Message,
    pub attempts: Vec<FinishedAttempt>,
}

/// What a verification try found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationResult {
    /// The challenge came back, at this time.
    Verified(DateTime<Utc>),
    /// It did not; the next try is due at `next`.
    Retry { next: DateTime<Utc>, error: String },
    /// It did not, and no try is left (or the receiver refused).
    Failed { error: String },
}

/// Tokens, event types, applications and endpoints: what the API manages.
#[async_trait]
pub trait Catalog: Send + Sync {
    // --- tokens
    async fn insert_token(&self, token: &Token) -> StoreResult<()>;
    async fn find_token(&self, hash: &str) -> StoreResult<Option<Token>>;
    async fn delete_token(&self, hash: &str) -> StoreResult<()>;
    async fn has_admin_token(&self) -> StoreResult<bool>;
    /// Every token (hashes only), oldest first.
    async fn list_tokens(&self) -> StoreResult<Vec<Token>>;
    async fn delete_token_by_id(&self, id: &str) -> StoreResult<()>;
    /// The poller tokens of an endpoint, oldest first.
    async fn poller_tokens(&self, endpoint_id: &str) -> StoreResult<Vec<Token>>;
    /// Makes the endpoint's poller tokens expire at `at`, unless they expire sooner;
    /// returns how many changed.
    async fn expire_poller_tokens(&self, endpoint_id: &str, at: DateTime<Utc>) -> StoreResult<u64>;
    /// Revokes an application's portal sessions: all of them, or those named. Returns how
    /// many were revoked.
    async fn delete_portal_sessions(
        &self,
        app_id: &str,
        session_ids: Option<&[String]>,
    ) -> StoreResult<u64>;

    // --- event types
    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    async fn get_event_type(&self, name: &str) -> StoreResult<EventType>;
    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> StoreResult<Page<EventType>>;
    /// Replaces the event type of the same name (archived or not).
    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    async fn expunge_event_type(&self, name: &str) -> StoreResult<()>;

    // --- applications
    async fn create_app(&self, app: &Application) -> StoreResult<()>;
    /// By id or by the user's uid.
    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application>;
    /// Every application but the reserved operational one.
    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>>;
    async fn update_app(&self, app: &Application) -> StoreResult<()>;
    /// Deletes the application and everything it owns.
    async fn delete_app(&self, id: &str) -> StoreResult<()>;

    // --- endpoints
    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;
    /// The application's ad-hoc secret, made `fresh` first if it has none.
    async fn adhoc_secret(&self, app_id: &str, fresh: &EndpointSecret) -> StoreResult<AdhocSecret>;
    /// Where the application's callbacks may go (the default when it set nothing).
    async fn callback_policy(&self, app_id: &str) -> StoreResult<CallbackPolicy>;
    async fn set_callback_policy(&self, app_id: &str, policy: &CallbackPolicy) -> StoreResult<()>;
    /// Replaces the application's ad-hoc secret, on its ad-hoc endpoints too.
    async fn set_adhoc_secret(&self, app_id: &str, secret: &AdhocSecret) -> StoreResult<()>;
    /// The application's ad-hoc endpoint with `wanted`'s uid, made from `wanted` if there is
    /// none (so a callback URL used again reuses its endpoint), signed with the
    /// application's ad-hoc secret. `wanted.secret` is that secret's first value if the
    /// application has none yet.
    async fn adhoc_endpoint(&self, wanted: &Endpoint) -> StoreResult<Endpoint>;
    async fn get_endpoint(&self, app_id: &str, id_or_uid: &str) -> StoreResult<Endpoint>;
    /// The application's endpoints, without its ad-hoc ones.
    async fn list_endpoints(&self, app_id: &str, page: &PageRequest)
        -> StoreResult<Page<Endpoint>>;
    /// Replaces the endpoint's settings if it is unchanged since it was read, i.e. its
    /// stored `updated_at` is still `read_at` (else `Conflict("endpoint")`): an edit must not
    /// undo what happened meanwhile, such as Herald disabling the endpoint.
    async fn update_endpoint(&self, endpoint: &Endpoint, read_at: DateTime<Utc>)
        -> StoreResult<()>;
    /// Stores every endpoint secret in the form the store's sealer now gives it (sealed
    /// with the current key, or plain when no key seals), leaving secrets changed meanwhile
    /// alone; returns how many endpoints were rewritten.
    async fn reseal_secrets(&self) -> StoreResult<u64>;
    // --- subscription verification
    /// Leases up to `limit` endpoints whose verification try is due, until `lease_until`,
    /// each with a fresh challenge: the endpoint and the challenge to send it.
    async fn claim_verifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Endpoint, String)>>;
    /// Records the result of the try that sent `challenge`, if it is still the endpoint's
    /// (a URL change or a new request since makes it stale: `false`, nothing written). A
    /// verified endpoint's held deliveries become due now.
    async fn finish_verification(
        &self,
        endpoint_id: &str,
        challenge: &str,
        result: &VerificationResult,
    ) -> StoreResult<bool>;

    // --- inbound sources
    /// `Conflict` if the uid is taken.
    async fn create_source(&self, source: &Source) -> StoreResult<()>;
    async fn get_source(&self, id_or_uid: &str) -> StoreResult<Source>;
    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Page<Source>>;
    /// `Conflict` if the new uid is taken.
    async fn update_source(&self, source: &Source) -> StoreResult<()>;
    async fn delete_source(&self, id: &str) -> StoreResult<()>;
    /// Stops holding the application's endpoints for verification (it no longer asks):
    /// they are as if never asked, and their held deliveries are released soon after.
    async fn clear_verification(&self, app_id: &str) -> StoreResult<u64>;
    /// Notes a refused request in its source's log (kept for the retention period).
    async fn record_ingest_rejection(&self, rejection: &IngestRejection) -> StoreResult<()>;
    /// A source's refused requests, newest first.
    async fn list_ingest_rejections(
        &self,
        source_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<IngestRejection>>;

    /// How many endpoints the application has, not counting ad-hoc ones.
    async fn count_endpoints(&self, app_id: &str) -> StoreResult<u64>;
    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()>;
    /// Disables an endpoint on Herald's own decision (it answered `410 Gone`, or failed for
    /// too long): `true` if this call disabled it, `false` if it already was.
    async fn disable_endpoint(
        &self,
        app_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Notes that the endpoint is failing since `since` (kept if already failing), or with
    /// `None` that it is healthy again; returns the failing-since time now stored.
    async fn set_endpoint_failing(
        &self,
        app_id: &str,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<DateTime<Utc>>>;
    async fn endpoint_stats(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<DeliveryStats>;
}

/// Published messages, their deliveries and attempts: what the API shows and replays.
#[async_trait]
pub trait Messages: Send + Sync {
    // --- messages
    /// Commits the message and one pending delivery per endpoint that accepts it, in one
    /// transaction. Nothing is visible to dispatchers before the commit. When more
    /// publishes are waiting than the store queues, fails at once with `Busy`.
    async fn create_message(&self, new: &NewMessage) -> StoreResult<Published>;
    /// [`create_message`](Self::create_message) for Herald's own events (operational
    /// webhooks), which nobody would publish again: waits for room instead of `Busy`.
    async fn create_message_waiting(&self, new: &NewMessage) -> StoreResult<Published> {
        self.create_message(new).await
    }
    /// Reads up to `limit` messages of the application's stream from `from`, in commit
    /// order (see [`StreamPosition`]).
    async fn read_stream(
        &self,
        app_id: &str,
        from: &StreamPosition,
        filter: &StreamFilter,
        limit: u32,
    ) -> StoreResult<StreamPage>;
    /// What the named reader keeps of its place in the application's stream (an iterator,
    /// or a leasing consumer's state; opaque to the store), if it has read before. Readers
    /// are named by the API (`subscription/{id}`, …), so names of different kinds cannot meet.
    async fn stream_reader(&self, app_id: &str, reader: &str) -> StoreResult<Option<String>>;
    /// Keeps what the named reader needs to go on.
    async fn save_stream_reader(
        &self,
        app_id: &str,
        reader: &str,
        state: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Changes whenever messages may have been committed, on this node or (PostgreSQL)
    /// another: what a long poll of the stream waits on.
    fn news(&self) -> watch::Receiver<u64>;
    /// By id or by the publisher's event id.
    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> StoreResult<Message>;
    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>>;
    async fn delete_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()>;

    // --- deliveries and attempts
    async fn list_message_deliveries(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<EndpointDelivery>>;
    async fn list_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<MessageDelivery>>;
    /// How many messages [`list_endpoint_messages`](Self::list_endpoint_messages) would
    /// list in all.
    async fn count_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
    ) -> StoreResult<u64>;
    async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    async fn list_attempts_by_message(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>>;
    async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> StoreResult<Attempt>;
    async fn delete_attempt_content(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> StoreResult<()>;
    /// Queues the message for the endpoint again, now, as a manual attempt.
    async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Queues again the failed deliveries to the endpoint of messages created in the
    /// range, at most `range.at_most` of them; returns how many (on a dry run, counts them
    /// all and queues nothing). Fewer than `at_most` means none is left: what was queued
    /// is no longer failed, so the next call takes the next ones.
    async fn recover_failed(
        &self,
        app_id: &str,
        endpoint_id: &str,
        range: &BulkRange,
    ) -> StoreResult<u64>;
    /// Queues for `endpoint` the messages created in `[since, until)` that its filters
    /// accept and that were never queued for it (it was added later, or its filters
    /// changed), oldest first, at most `range.at_most` and [`MAX_REPLAY`] of them (on a dry
    /// run, only counts them). Says where a next call goes on when it stopped short.
    async fn replay_missing(
        &self,
        endpoint: &Endpoint,
        range: &BulkRange,
    ) -> StoreResult<ReplayedMissing>;
    /// Writes a synchronous call that was made (see [`RecordedCall`]) in one transaction:
    /// the message, its deliveries, their attempts and statistics.
    async fn record_call(&self, call: &RecordedCall) -> StoreResult<()>;

    // --- statistics (see `stats`)
    /// The delivery-statistics rollups a query asks for, summed per bucket and group.
    async fn attempt_stats(&self, query: &StatsQuery) -> StoreResult<Vec<StatsRow>>;
    /// How many messages the application published in `[since, until)`.
    async fn count_messages(
        &self,
        app_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<u64>;
}

/// The messages a bulk resend (recover, replay) is about: those created in
/// `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkRange {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    /// When the deliveries become due.
    pub now: DateTime<Utc>,
    /// Count what would be queued, and queue nothing.
    pub dry_run: bool,
    /// Queue at most this many (one step of a background task over a large range).
    pub at_most: u64,
}

/// What one `replay_missing` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayedMissing {
    /// Messages queued (or counted, on a dry run).
    pub count: u64,
    /// Where the range's rest begins when the call stopped before its end: the creation
    /// time of the first message it did not look at (or of the last it read, when it read
    /// as many as it reads at once). A next call with this `since` goes on, looking again
    /// at most at messages of that same instant. `None` when it reached the end.
    pub resume_at: Option<DateTime<Utc>>,
}

/// What the delivery queue holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSummary {
    /// The database behind the store: `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Deliveries pending (due or waiting to retry) or being sent.
    pub waiting: u64,
    /// When the oldest of them was last queued or moved.
    pub oldest_waiting: Option<DateTime<Utc>>,
}

/// The most messages one `replay_missing` queues; a later call with a later `since` takes
/// the rest.
pub const MAX_REPLAY: u64 = 10_000;

/// Background tasks: created by the API, leased and run step by step by a node's task
/// runner.
#[async_trait]
pub trait Tasks: Send + Sync {
    /// Stores a new task; with an idempotency key already used, stores nothing and returns
    /// the task that key made. Returns the task as stored.
    async fn create_task(
        &self,
        task: &BackgroundTask,
        idempotency_key: Option<&str>,
    ) -> StoreResult<BackgroundTask>;
    async fn get_task(&self, id: &str) -> StoreResult<BackgroundTask>;
    /// Tasks by id (which follows creation time), in the page's order.
    async fn list_tasks(&self, page: &PageRequest) -> StoreResult<Page<BackgroundTask>>;
    /// Leases the oldest running task no node holds (or whose holder's lease ran out by
    /// `now`) to `owner` until `until`.
    async fn claim_task(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<BackgroundTask>>;
    /// Records a step of a task `owner` holds (status, data, cursor, `updated_at`) and
    /// extends its lease to `until`; `false` when the lease was lost, and nothing changed.
    async fn save_task(
        &self,
        task: &BackgroundTask,
        owner: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

/// The delivery queue: what the dispatcher and the cleaner use.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Signalled whenever new work may be due (a publish, a resend, a recover).
    fn work_signal(&self) -> Arc<Notify>;

    /// Lets `intake` (this node's dispatcher) take the deliveries this node's publishes
    /// make straight from them (see [`FreshIntake`]); `None` stops that. A store without
    /// such a path leaves every delivery to [`claim_due`](Self::claim_due).
    fn hand_fresh_to(&self, _intake: Option<Arc<dyn FreshIntake>>) {}

    /// How much delivery work is waiting, for the instance page.
    async fn queue_summary(&self) -> StoreResult<QueueSummary>;

    // --- dispatch
    /// Leases up to `limit` due deliveries: pending ones whose time has come, and sending
    /// ones whose lease has expired (their claimer died).
    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records the attempt and moves the delivery to its next state, atomically. The attempt
    /// is always recorded; the state moves only if the lease token still matches.
    async fn finish_attempt(&self, finished: &FinishedAttempt) -> StoreResult<()> {
        self.finish_attempts(std::slice::from_ref(finished)).await
    }
    /// [`finish_attempt`](Self::finish_attempt) for many, in one transaction: all or none.
    /// An attempt whose message or endpoint was deleted meanwhile is skipped.
    async fn finish_attempts(&self, batch: &[FinishedAttempt]) -> StoreResult<()>;
    /// Ends a claimed delivery's lease unattempted, in `status`: `Canceled` (its endpoint
    /// was disabled) or `Held` (its endpoint has not verified its subscription; see
    /// [`release_held`](Self::release_held)).
    async fn set_aside(
        &self,
        delivery_id: &str,
        lease_token: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Makes due now the held deliveries of endpoints that no longer need verifying
    /// (verified, or their application stopped asking); how many.
    async fn release_held(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Lets the next queued delivery of each of the ordered `endpoints` (every ordered
    /// endpoint when `None`) go, where none of its deliveries is pending, being attempted
    /// or held. How many were let go. Cluster safe: however many nodes call it at once, an
    /// ordered endpoint has one delivery under way at most. (An endpoint updated to be no
    /// longer ordered lets its whole line go in `update_endpoint`.)
    async fn advance_ordered(
        &self,
        endpoints: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Reserves, for every node at once, the moment the next attempt to `endpoint_id` may
    /// start: `spacing` after the one reserved before it, and not before `now`. `None`
    /// where one process runs the store: its dispatcher paces the endpoint alone.
    async fn reserve_pace(
        &self,
        _endpoint_id: &str,
        _spacing: chrono::Duration,
        _now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(None)
    }
    /// Notes that a node holds a `herald listen` session, as of `session.now`: said when
    /// it attaches and again while it lives. `false` (and nothing changed) when another
    /// node has said so at or after `session.stale_before`, unless `take_over`. Always
    /// `true` where one process runs the store: its sessions are all its own.
    async fn hold_listen_session(
        &self,
        _session: ListenSessionAt<'_>,
        _take_over: bool,
    ) -> StoreResult<bool> {
        Ok(true)
    }
    /// Forgets that `node` holds the session of `endpoint_id` (it detached).
    async fn drop_listen_session(&self, _endpoint_id: &str, _node: &str) -> StoreResult<()> {
        Ok(())
    }
    /// The endpoints whose `herald listen` sessions nodes other than `node` hold, as they
    /// said at or after `stale_before`: their deliveries are those nodes' to make.
    async fn listen_sessions_elsewhere(
        &self,
        _node: &str,
        _stale_before: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// Tells every node what became of an endpoint's circuit breaker here. A no-op where
    /// one process runs the store: its dispatcher's breakers are the only ones.
    async fn share_circuit(&self, _news: CircuitNews<'_>) -> StoreResult<()> {
        Ok(())
    }
    /// The endpoints whose circuits some node opened and that are open at `now`, with
    /// until when.
    async fn open_circuits(
        &self,
        _now: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        Ok(Vec::new())
    }
    /// Asks for the probe of `endpoint_id`, whose circuit's cool-down ended at `now` on
    /// this node. `Mine` keeps it open for the others until `hold_until` (the probe's
    /// answer will say what next). Always `Mine` where one process runs the store.
    async fn take_probe(
        &self,
        _endpoint_id: &str,
        _now: DateTime<Utc>,
        _hold_until: DateTime<Utc>,
    ) -> StoreResult<ProbeTurn> {
        Ok(ProbeTurn::Mine)
    }
    /// Takes, for every node at once, one of the places an endpoint's `maxConcurrency`
    /// allows, for one attempt until it frees it or its hold runs out (its node died
    /// mid-attempt). `Unshared` where one process runs the store.
    async fn take_slot(&self, _request: SlotRequest<'_>) -> StoreResult<SlotTurn> {
        Ok(SlotTurn::Unshared)
    }
    /// Frees the place `slot` that `holder` took with [`take_slot`](Self::take_slot); a
    /// place another attempt took over since (the hold ran out) stays that attempt's.
    async fn free_slot(&self, _endpoint_id: &str, _slot: u32, _holder: &str) -> StoreResult<()> {
        Ok(())
    }
    /// Makes due now the pending deliveries of one endpoint that wait for a later retry
    /// (a `herald listen` session came back); how many.
    async fn retry_now(&self, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Holds back until `until` the pending deliveries of one endpoint due before then (its
    /// circuit opened), so that their next attempt shows when it will be; how many.
    async fn defer_pending(
        &self,
        endpoint_id: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Cancels the deliveries of one message that are waiting (pending, scheduled, held or
    /// queued behind another message to an ordered endpoint, which then lets its next go);
    /// how many. The message expires now (if it was to expire later), so that an attempt
    /// under way is not retried.
    async fn cancel_pending(
        &self,
        app_id: &str,
        msg_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Cancels what still waits to be delivered to one endpoint (pending, held or queued)
    /// of the messages `msg_ids`; how many. A delivery being attempted is left to finish.
    /// An ordered endpoint's line moves on past what was canceled.
    async fn cancel_pending_to(
        &self,
        app_id: &str,
        endpoint_id: &str,
        msg_ids: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Gives a claimed delivery back unattempted, due again at `due_at`.
    async fn release(
        &self,
        delivery_id: &str,
        lease_token: &str,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes the payloads of messages and the response bodies of attempts created before
    /// `before`, at most `batch` of each, keeping their metadata; returns how many rows
    /// changed (fewer than `2 × batch` means nothing older is left).
    async fn purge_content(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64>;
    /// Deletes at most `batch` messages created before `before`, oldest first, with their
    /// deliveries and attempts; a message with a delivery still to make (pending, being
    /// attempted, held or queued) is kept. How many were deleted (fewer than `batch`
    /// means nothing older is left to delete).
    async fn delete_old_messages(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64>;
    /// Gives the space that deletions freed back to the system where the database keeps
    /// it otherwise (SQLite's free pages); PostgreSQL's autovacuum makes it reusable.
    async fn reclaim_space(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Removes statistics rollups of buckets before the cutoff of their resolution;
    /// returns how many rows went.
    async fn purge_stats(&self, cutoffs: &RollupCutoffs) -> StoreResult<u64>;
    /// When the earliest pending delivery, other than those of `skip_endpoints`, falls due.
    async fn next_due_at(&self, skip_endpoints: &[String]) -> StoreResult<Option<DateTime<Utc>>>;
}

/// One connection pool's use: `writer`, `reader`, or `shared` (one pool for both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub name: &'static str,
    /// Connections open, busy or idle.
    pub open: u32,
    pub idle: u32,
    /// The most it may open.
    pub max: u32,
}

/// Durable storage of everything Herald knows, and the delivery queue. Callers name the
/// part they use ([`Catalog`], [`Messages`], [`Queue`], [`Tasks`]); a store implements
/// them all.
#[async_trait]
pub trait Store: Catalog + Messages + Queue + Tasks + 'static {
    /// Closes the connections once the server has stopped using them, waiting for queries
    /// in flight (SQLite checkpoints its write-ahead log as the last one closes).
    async fn close(&self);
    /// How many of this binary's migrations the database has not applied (for readiness:
    /// a node started with `database.migrate = false` waits for `herald migrate`).
    async fn pending_migrations(&self) -> StoreResult<usize>;
    /// Says that `node` is alive as of `now`, and how many nodes (itself included) said so
    /// at or after `stale_before`: the nodes sharing this store, which share the limits
    /// meant for the whole cluster. Words older than `forget_before` are removed. Always
    /// 1 where one process runs the store.
    async fn heartbeat(
        &self,
        _node: &str,
        _now: DateTime<Utc>,
        _stale_before: DateTime<Utc>,
        _forget_before: DateTime<Utc>,
    ) -> StoreResult<u32> {
        Ok(1)
    }
    /// The connection pools' use now, for `/metrics`.
    fn pools(&self) -> Vec<PoolUsage> {
        Vec::new()
    }
    /// From now on, counts the size of each group commit into `metrics`.
    fn attach_metrics(&self, _metrics: &crate::metrics::Metrics) {}
}

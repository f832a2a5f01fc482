//! The task runner: leases background tasks and runs them step by step, recording each
//! step so that another node can go on after this one dies (see `herald_core::task`).
//!
//! A broadcast's step is one page of applications: for each one it reaches, the event is
//! published as any message is (one commit, one delivery per subscribed endpoint), with
//! an idempotency key made of the task's id, so a page run twice publishes nothing twice.
//! A bulk replay's step is one page of the endpoint's messages, each queued for it again
//! (a page run twice queues those messages once more: at least once, as every delivery).
//! A content purge's step deletes the payloads of one page of an application's messages.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use herald_core::ids::IdKind;
use herald_core::model::{DeliveryStatus, Message};
use herald_core::store::{
    BulkRange, Cursor, MessageFilter, NewMessage, Order, PageRequest, Published, Store,
};
use herald_core::task::{
    BackgroundTask, Broadcast, EndpointMessages, EndpointRange, TaskInput, TaskStatus,
};
use herald_core::{Clock, StoreError};
use serde_json::json;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// Applications (or messages) a step takes, unless told otherwise.
const PAGE: u32 = 100;
/// How long a node holds a task between two steps before another may take it over: far
/// longer than a step of `PAGE` publishes takes, so that two nodes do not run one task.
/// (Leases compare the nodes' clocks, which must agree to well within this.)
const LEASE: Duration = Duration::from_secs(300);
/// Steps failing one after another (the store away, a row it cannot read) before the task
/// is given up as failed.
const MAX_FAILED_STEPS: u64 = 5;
/// How often a node looks for tasks nobody holds (another node's, or a dead node's).
const POLL: Duration = Duration::from_secs(5);

/// Runs this node's share of the background tasks.
pub struct TaskRunner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Names this node in leases.
    owner: String,
    wake: Arc<Notify>,
    finished: watch::Sender<u64>,
    /// Items per step.
    page: u32,
}

impl TaskRunner {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            owner: format!(
                "node_{}",
                IdKind::Task.new_id().trim_start_matches("qtask_")
            ),
            wake: Arc::default(),
            finished: watch::Sender::new(0),
            page: PAGE,
        }
    }

    /// Takes `page` items a step instead of a hundred (tests cross steps with a few).
    pub fn with_page(mut self, page: u32) -> Self {
        self.page = page.max(1);
        self
    }

    /// Wakes the runner: a task was just created.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// How many tasks this process has finished (or failed) so far.
    pub fn finished(&self) -> watch::Receiver<u64> {
        self.finished.subscribe()
    }

    /// Runs tasks until `shutdown`; a step under way is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            while !shutdown.is_cancelled() {
                let now = self.clock.now();
                let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
                match self.store.claim_task(&self.owner, now, until).await {
                    Ok(Some(task)) => self.run_task(task, &shutdown).await,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "looking for background tasks failed");
                        break;
                    }
                }
            }
            let next = self.clock.now() + chrono::Duration::from_std(POLL).unwrap_or_default();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.clock.sleep_until(next) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Steps through `task` while this node holds it.
    async fn run_task(&self, mut task: BackgroundTask, shutdown: &CancellationToken) {
        tracing::info!(task = %task.id, kind = task.input.kind(), "running a background task");
        while task.status == TaskStatus::Running && !shutdown.is_cancelled() {
            let stepped = match &task.input {
                TaskInput::Broadcast(broadcast) => self.broadcast_step(&task, broadcast).await,
                TaskInput::BulkReplay(replay) => self.replay_step(&task, replay).await,
                TaskInput::BulkCancel(chosen) => self.cancel_step(&task, chosen).await,
                // Running only when the request left them a large range's rest.
                TaskInput::Recover(range) => self.recover_step(&task, range).await,
                TaskInput::ReplayMissing(range) => self.replay_missing_step(&task, range).await,
                TaskInput::PurgeContent(purge) => self.purge_step(&task, &purge.app_id).await,
            };
            match stepped {
                Ok(next) => {
                    task = next;
                    if let Some(data) = task.data.as_object_mut() {
                        data.remove("failedSteps");
                    }
                }
                Err(e) => {
                    tracing::warn!(task = %task.id, error = %e, "a background task step failed");
                    if !count_failure(&mut task, &e) {
                        // Tried again at the next look for tasks, or by another node.
                        self.save_failed_step(&task).await;
                        return;
                    }
                }
            }
            task.updated_at = self.clock.now();
            let until = task.updated_at + chrono::Duration::from_std(LEASE).unwrap_or_default();
            match self.store.save_task(&task, &self.owner, until).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(task = %task.id, "another node took the task over");
                    return;
                }
                Err(e) => {
                    tracing::warn!(task = %task.id, error = %e, "recording a task step failed");
                    return;
                }
            }
        }
        if task.status != TaskStatus::Running {
            tracing::info!(task = %task.id, status = task.status.as_str(), data = %task.data, "background task ended");
            self.finished.send_modify(|n| *n += 1);
        }
    }

    /// The page a step of `task` reads: the next items after its cursor, oldest first.
    fn page_after(&self, task: &BackgroundTask) -> PageRequest {
        PageRequest {
            limit: self.page,
            cursor: task.cursor.clone().map(Cursor::After),
            order: Order::Ascending,
        }
    }

    /// Records a failed step and lets the task go until the lease would have run out.
    async fn save_failed_step(&self, task: &BackgroundTask) {
        let mut task = task.clone();
        task.updated_at = self.clock.now();
        let until = task.updated_at + chrono::Duration::from_std(POLL).unwrap_or_default();
        if let Err(e) = self.store.save_task(&task, &self.owner, until).await {
            tracing::warn!(task = %task.id, error = %e, "recording a failed task step failed");
        }
    }

    /// Publishes the broadcast to the next page of applications; the task as it stands
    /// after.
    async fn broadcast_step(
        &self,
        task: &BackgroundTask,
        broadcast: &Broadcast,
    ) -> Result<BackgroundTask, StoreError> {
        let page = self.page_after(task);
        let apps = self.store.list_apps(&page).await?;
        let (mut reached, mut published) =
            (counted(task, "applications"), counted(task, "messages"));
        for app in &apps.items {
            if !broadcast.reaches(app.uid.as_deref(), &app.metadata) {
                continue;
            }
            let now = self.clock.now();
            let message = Message {
                channels: broadcast.channels.clone(),
                tags: broadcast.tags.clone(),
                ..Message::new(&app.id, &broadcast.event_type, &broadcast.payload, now)
            };
            let new = NewMessage {
                idempotency_key: Some(Broadcast::idempotency_key(&task.id)),
                ..NewMessage::from(message)
            };
            reached += 1;
            // Background work waits for room in the publish queue rather than being refused.
            match self.store.create_message_waiting(&new).await {
                Ok(Published::Created { .. }) => published += 1,
                // Published by an earlier run of this step.
                Ok(Published::Existing(_)) => published += 1,
                // Deleted since it was listed: nothing to publish to.
                Err(StoreError::NotFound) => reached -= 1,
                Err(e) => return Err(e),
            }
        }
        let mut next = stepped(task, apps.items.last().map(|a| a.id.as_str()), apps.done);
        next.data["applications"] = json!(reached);
        next.data["messages"] = json!(published);
        Ok(next)
    }

    /// Deletes the payloads of the next page of the application's messages; the task as it
    /// stands after.
    async fn purge_step(
        &self,
        task: &BackgroundTask,
        app_id: &str,
    ) -> Result<BackgroundTask, StoreError> {
        let page = self.page_after(task);
        let found = (self.store)
            .list_messages(app_id, &MessageFilter::default(), &page)
            .await?;
        let mut expunged = counted(task, "expunged");
        for message in found.items.iter().filter(|m| m.payload.is_some()) {
            match self.store.delete_message_content(app_id, &message.id).await {
                Ok(()) => expunged += 1,
                // Deleted since it was listed.
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let mut next = stepped(task, found.items.last().map(|m| m.id.as_str()), found.done);
        next.data["expunged"] = json!(expunged);
        Ok(next)
    }

    /// Queues the next page of the endpoint's messages for it again; the task as it stands
    /// after.
    async fn replay_step(
        &self,
        task: &BackgroundTask,
        replay: &EndpointMessages,
    ) -> Result<BackgroundTask, StoreError> {
        let page = self.page_after(task);
        let filter = replay.filter();
        let status = replay.delivery_status();
        let (app, endpoint) = (&replay.app_id, &replay.endpoint_id);
        if let Some(failed) = self.endpoint_gone(task, replay).await {
            return Ok(failed);
        }
        let found = self
            .store
            .list_endpoint_messages(app, endpoint, &filter, status, &page)
            .await?;
        let mut replayed = counted(task, "replayed");
        for item in &found.items {
            let now = self.clock.now();
            match self
                .store
                .resend(app, &item.message.id, endpoint, now)
                .await
            {
                Ok(()) => replayed += 1,
                // Deleted since it was listed.
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let last = found.items.last().map(|m| m.message.id.as_str());
        let mut next = stepped(task, last, found.done);
        next.data["replayed"] = json!(replayed);
        Ok(next)
    }

    /// `task`, failed, if the endpoint it is about (or its application) was deleted:
    /// there is nothing more to do for it.
    async fn endpoint_gone(
        &self,
        task: &BackgroundTask,
        chosen: &EndpointMessages,
    ) -> Option<BackgroundTask> {
        let (app, endpoint) = (&chosen.app_id, &chosen.endpoint_id);
        let Err(StoreError::NotFound) = self.store.get_endpoint(app, endpoint).await else {
            return None;
        };
        Some(failed_for_gone_endpoint(task))
    }

    /// Queues again the next `page` failed deliveries of the range; the task as it stands
    /// after. What it queued is no longer failed, so each step takes the next ones, and a
    /// short step is the last.
    async fn recover_step(
        &self,
        task: &BackgroundTask,
        range: &EndpointRange,
    ) -> Result<BackgroundTask, StoreError> {
        let (app, endpoint) = (&range.app_id, &range.endpoint_id);
        if let Err(StoreError::NotFound) = self.store.get_endpoint(app, endpoint).await {
            return Ok(failed_for_gone_endpoint(task));
        }
        // `now` is the task's start: only deliveries that had failed by then are taken
        // (one that fails again meanwhile is not taken twice), and they are due at once.
        let step = BulkRange {
            since: range.since,
            until: range.until,
            now: task.created_at,
            dry_run: false,
            at_most: u64::from(self.page),
        };
        let recovered = self.store.recover_failed(app, endpoint, &step).await?;
        let mut next = stepped(task, None, recovered < step.at_most);
        next.data["recovered"] = json!(counted(task, "recovered") + recovered);
        Ok(next)
    }

    /// Queues for the endpoint the next messages of the range it never got, from where the
    /// last step stopped (the task's cursor, a time); the task as it stands after.
    async fn replay_missing_step(
        &self,
        task: &BackgroundTask,
        range: &EndpointRange,
    ) -> Result<BackgroundTask, StoreError> {
        let endpoint = match self
            .store
            .get_endpoint(&range.app_id, &range.endpoint_id)
            .await
        {
            Ok(endpoint) => endpoint,
            Err(StoreError::NotFound) => return Ok(failed_for_gone_endpoint(task)),
            Err(e) => return Err(e),
        };
        let resume = task.cursor.as_deref().map(DateTime::parse_from_rfc3339);
        let since = match resume {
            Some(Ok(at)) => at.to_utc(),
            // Written by this code only; an unreadable one starts over (nothing is queued
            // twice: what was replayed is no longer missing).
            Some(Err(_)) | None => range.since,
        };
        // A replay reads many candidates to choose from (those the endpoint's filters turn
        // away are passed over), so a step takes a hundred pages' worth.
        let step = BulkRange {
            since,
            until: range.until,
            now: self.clock.now(),
            dry_run: false,
            at_most: u64::from(self.page) * 100,
        };
        let done = self.store.replay_missing(&endpoint, &step).await?;
        let mut next = task.clone();
        next.cursor = done.resume_at.map(|at| at.to_rfc3339());
        if done.resume_at.is_none() {
            next.status = TaskStatus::Finished;
        }
        next.data["replayed"] = json!(counted(task, "replayed") + done.count);
        Ok(next)
    }

    /// Cancels what the next page of the endpoint's chosen messages still waits to deliver
    /// there; the task as it stands after. The page lists only messages whose delivery
    /// waits, so those canceled by an earlier run of the step are not listed again.
    async fn cancel_step(
        &self,
        task: &BackgroundTask,
        chosen: &EndpointMessages,
    ) -> Result<BackgroundTask, StoreError> {
        if let Some(failed) = self.endpoint_gone(task, chosen).await {
            return Ok(failed);
        }
        let (app, endpoint) = (&chosen.app_id, &chosen.endpoint_id);
        let waiting = Some(DeliveryStatus::Pending);
        let found = (self.store)
            .list_endpoint_messages(
                app,
                endpoint,
                &chosen.filter(),
                waiting,
                &self.page_after(task),
            )
            .await?;
        let ids: Vec<String> = found.items.iter().map(|m| m.message.id.clone()).collect();
        let now = self.clock.now();
        let canceled = self
            .store
            .cancel_pending_to(app, endpoint, &ids, now)
            .await?;
        let last = found.items.last().map(|m| m.message.id.as_str());
        let mut next = stepped(task, last, found.done);
        next.data["canceled"] = json!(counted(task, "canceled") + canceled);
        Ok(next)
    }
}

/// Counts a failed step in the task's data; `true` when that was the last one allowed and
/// the task is now failed (with the error in its data).
fn count_failure(task: &mut BackgroundTask, error: &StoreError) -> bool {
    let failed = counted(task, "failedSteps") + 1;
    task.data["failedSteps"] = json!(failed);
    if failed < MAX_FAILED_STEPS {
        return false;
    }
    task.status = TaskStatus::Failed;
    // The store's error text may be internal: the data says what happened, the log why.
    task.data["error"] = json!(match error {
        StoreError::NotFound => "what the task is about no longer exists",
        _ => "its steps kept failing; the server log has the errors",
    });
    true
}

/// `task`, failed because the endpoint it is about (or its application) was deleted.
fn failed_for_gone_endpoint(task: &BackgroundTask) -> BackgroundTask {
    let mut failed = task.clone();
    failed.status = TaskStatus::Failed;
    failed.data["error"] = json!("the endpoint was deleted");
    failed
}

/// A count kept in a task's data (0 until the first step sets it).
fn counted(task: &BackgroundTask, key: &str) -> u64 {
    task.data.get(key).and_then(|n| n.as_u64()).unwrap_or(0)
}

/// `task` after a step over one page: its cursor moved to the page's `last` item, and
/// finished when that was the last page.
fn stepped(task: &BackgroundTask, last: Option<&str>, done: bool) -> BackgroundTask {
    let mut next = task.clone();
    if let Some(last) = last {
        next.cursor = Some(last.to_owned());
    }
    if done {
        next.status = TaskStatus::Finished;
    }
    next
}

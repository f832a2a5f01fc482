//! `impl Store for SqliteStore`: each method forwards to the module that implements it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::model::{
    Application, Attempt, DeliveryStatus, Endpoint, EventType, Message, Token,
};
use herald_core::store::*;
use tokio::sync::Notify;

use crate::{catalog, dispatch, messages, SqliteStore};

#[async_trait]
impl Store for SqliteStore {
    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn insert_token(&self, token: &Token) -> StoreResult<()> {
        catalog::insert_token(self, token).await
    }
    async fn find_token(&self, hash: &str) -> StoreResult<Option<Token>> {
        catalog::find_token(self, hash).await
    }
    async fn delete_token(&self, hash: &str) -> StoreResult<()> {
        catalog::delete_token(self, hash).await
    }
    async fn has_admin_token(&self) -> StoreResult<bool> {
        catalog::has_admin_token(self).await
    }
    async fn list_tokens(&self) -> StoreResult<Vec<Token>> {
        catalog::list_tokens(self).await
    }
    async fn delete_token_by_id(&self, id: &str) -> StoreResult<()> {
        catalog::delete_token_by_id(self, id).await
    }

    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        catalog::create_event_type(self, event_type).await
    }
    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        catalog::get_event_type(self, name).await
    }
    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> StoreResult<Page<EventType>> {
        catalog::list_event_types(self, page, include_archived).await
    }
    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()> {
        catalog::update_event_type(self, event_type).await
    }
    async fn expunge_event_type(&self, name: &str) -> StoreResult<()> {
        catalog::expunge_event_type(self, name).await
    }

    async fn create_app(&self, app: &Application) -> StoreResult<()> {
        catalog::create_app(self, app).await
    }
    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application> {
        catalog::get_app(self, id_or_uid).await
    }
    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>> {
        catalog::list_apps(self, page).await
    }
    async fn update_app(&self, app: &Application) -> StoreResult<()> {
        catalog::update_app(self, app).await
    }
    async fn delete_app(&self, id: &str) -> StoreResult<()> {
        catalog::delete_app(self, id).await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        catalog::create_endpoint(self, endpoint).await
    }
    async fn get_endpoint(&self, app_id: &str, id_or_uid: &str) -> StoreResult<Endpoint> {
        catalog::get_endpoint(self, app_id, id_or_uid).await
    }
    async fn list_endpoints(
        &self,
        app_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Endpoint>> {
        catalog::list_endpoints(self, app_id, page).await
    }
    async fn update_endpoint(
        &self,
        endpoint: &Endpoint,
        read_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        catalog::update_endpoint(self, endpoint, read_at).await
    }
    async fn delete_endpoint(&self, app_id: &str, id: &str) -> StoreResult<()> {
        catalog::delete_endpoint(self, app_id, id).await
    }
    async fn disable_endpoint(
        &self,
        app_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        catalog::disable_endpoint(self, app_id, id, at).await
    }

    async fn reseal_secrets(&self) -> StoreResult<u64> {
        catalog::reseal_secrets(self).await
    }

    async fn count_endpoints(&self, app_id: &str) -> StoreResult<u64> {
        catalog::count_endpoints(self, app_id).await
    }

    async fn set_endpoint_failing(
        &self,
        app_id: &str,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        catalog::set_endpoint_failing(self, app_id, id, since).await
    }
    async fn endpoint_stats(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<DeliveryStats> {
        catalog::endpoint_stats(self, app_id, endpoint_id, since).await
    }

    async fn create_message(&self, new: &NewMessage) -> StoreResult<Published> {
        messages::create_message(self, new).await
    }
    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> StoreResult<Message> {
        messages::get_message(self, app_id, id_or_event_id).await
    }
    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        messages::list_messages(self, app_id, filter, page).await
    }
    async fn delete_message_content(&self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        messages::delete_message_content(self, app_id, msg_id).await
    }

    async fn list_message_deliveries(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<EndpointDelivery>> {
        messages::list_message_deliveries(self, app_id, msg_id, page).await
    }
    async fn list_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<MessageDelivery>> {
        messages::list_endpoint_messages(self, app_id, endpoint_id, filter, status, page).await
    }
    async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        messages::list_attempts_by_endpoint(self, app_id, endpoint_id, filter, page).await
    }
    async fn list_attempts_by_message(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Attempt>> {
        messages::list_attempts_by_message(self, app_id, msg_id, filter, page).await
    }
    async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> StoreResult<Attempt> {
        messages::get_attempt(self, app_id, msg_id, attempt_id).await
    }
    async fn delete_attempt_content(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> StoreResult<()> {
        messages::delete_attempt_content(self, app_id, msg_id, attempt_id).await
    }
    async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        messages::resend(self, app_id, msg_id, endpoint_id, now).await
    }
    async fn recover_failed(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        messages::recover_failed(self, app_id, endpoint_id, since, until, now).await
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        dispatch::claim_due(self, request).await
    }
    async fn finish_attempts(&self, batch: &[FinishedAttempt]) -> StoreResult<()> {
        dispatch::finish_attempts(self, batch).await
    }
    async fn release(
        &self,
        delivery_id: &str,
        lease_token: &str,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch::release(self, delivery_id, lease_token, due_at).await
    }
    async fn purge_content(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        messages::purge_content(self, before, batch).await
    }
    async fn cancel(
        &self,
        delivery_id: &str,
        lease_token: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch::cancel(self, delivery_id, lease_token, at).await
    }
    async fn next_due_at(&self, skip_endpoints: &[String]) -> StoreResult<Option<DateTime<Utc>>> {
        dispatch::next_due_at(self, skip_endpoints).await
    }
}

//! What every request handler shares.

use std::sync::Arc;

use herald_core::model::{Application, Endpoint, OPERATIONAL_APP_ID};
use herald_core::{Clock, Store};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::rate_limit::TokenRateLimit;
use crate::lookups::Lookups;
use crate::settings::ApiSettings;
use herald_delivery::operational::Operational;
use herald_delivery::sync_call::SyncCaller;

/// Handles to the store, the clock and the API's settings.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ApiSettings>,
    pub operational: Operational,
    /// Synchronous calls, made through the delivery engine's destinations.
    pub sync_calls: SyncCaller,
    /// Wakes this node's verification loop (an endpoint now waits for one).
    pub verifications: Arc<tokio::sync::Notify>,
    /// Wakes this node's task runner (a background task was just created).
    pub background_tasks: Arc<tokio::sync::Notify>,
    pub rate_limit: Arc<TokenRateLimit>,
    /// Recent token, application and event type lookups, for the publishing hot path.
    pub lookups: Arc<Lookups>,
    /// Whether this node's dispatcher is running (`None`: the node serves the API only),
    /// for the readiness probe.
    pub dispatcher_running: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The process's metrics, which the API counts into and `/metrics` shows.
    pub metrics: herald_core::metrics::Metrics,
    /// The `herald listen --server` sessions attached to this node.
    pub listen_sessions: herald_delivery::destinations::listen::ListenSessions,
}

impl AppState {
    /// The application named by id or uid, if `caller` may see it. An app-scoped token
    /// asking for another application gets "not found", so it learns nothing.
    pub async fn app_for(&self, caller: &Caller, id_or_uid: &str) -> ApiResult<Application> {
        let app = self.store.get_app(id_or_uid).await?;
        // The operational webhooks' application is managed through its own routes only.
        if caller.can_access(&app.id) && app.id != OPERATIONAL_APP_ID {
            Ok(app)
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// The application and its endpoint, if `caller` may see them. A one-off callback's
    /// hidden endpoint is not found here: it is no subscription to read or change (its
    /// secret is the application's ad-hoc secret, for the provider only).
    pub async fn endpoint_for(
        &self,
        caller: &Caller,
        app_id: &str,
        endpoint_id: &str,
    ) -> ApiResult<(Application, Endpoint)> {
        let (app, endpoint) = self.any_endpoint_for(caller, app_id, endpoint_id).await?;
        if endpoint.adhoc {
            return Err(ApiError::NotFound);
        }
        Ok((app, endpoint))
    }

    /// [`endpoint_for`](Self::endpoint_for), callbacks' hidden endpoints included: for the
    /// routes that work on attempts (their log, a resend).
    pub async fn any_endpoint_for(
        &self,
        caller: &Caller,
        app_id: &str,
        endpoint_id: &str,
    ) -> ApiResult<(Application, Endpoint)> {
        let app = self.app_for(caller, app_id).await?;
        let endpoint = self.store.get_endpoint(&app.id, endpoint_id).await?;
        Ok((app, endpoint))
    }

    /// [`app_for`](Self::app_for) through the remembered lookups, for publishing: an
    /// application changed on another node may be seen as it was up to a second ago.
    pub async fn remembered_app_for(
        &self,
        caller: &Caller,
        id_or_uid: &str,
    ) -> ApiResult<Application> {
        let app = match self.lookups.apps.get(&id_or_uid.to_owned()) {
            Some(app) => app,
            None => {
                let stamp = self.lookups.apps.stamp();
                let app = self.store.get_app(id_or_uid).await?;
                self.lookups
                    .apps
                    .put(id_or_uid.to_owned(), app.clone(), stamp);
                app
            }
        };
        if caller.can_access(&app.id) && app.id != OPERATIONAL_APP_ID {
            Ok(app)
        } else {
            Err(ApiError::NotFound)
        }
    }
}

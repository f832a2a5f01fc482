//! What every request handler shares.

use std::sync::Arc;

use herald_core::model::Application;
use herald_core::{Clock, Store};

use crate::auth::Caller;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};

/// Handles to the store, the clock and the configuration.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
}

impl AppState {
    /// The application named by id or uid, if `caller` may see it. An app-scoped token
    /// asking for another application gets "not found", so it learns nothing.
    pub async fn app_for(&self, caller: &Caller, id_or_uid: &str) -> ApiResult<Application> {
        let app = self.store.get_app(id_or_uid).await?;
        if caller.can_access(&app.id) {
            Ok(app)
        } else {
            Err(ApiError::NotFound)
        }
    }
}

//! The shapes of `/api/v1/app` (`ApplicationIn`, `ApplicationOut`…) and the checks and
//! creation that other routes share (publishing may create its application).

use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Application, Metadata, VerificationMode};
use herald_core::validation::{self, Validator};
use herald_core::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::http::patch::nullable;
use crate::http::v1::throttle::{check_rate, rate_out};
use crate::state::AppState;

/// A new application, or the full replacement of one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    pub name: String,
    /// Your own unique id for the application; usable wherever its id is.
    pub uid: Option<String>,
    /// Deliveries per second to each endpoint of the application (`rateLimit` also accepted).
    #[serde(alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    pub metadata: Metadata,
    /// Herald extension: whether new or moved endpoints must first show they want the
    /// events: `none` (the default), `challenge` or `websub`.
    pub verification: Option<VerificationModeIn>,
}

/// How an application's endpoints verify their subscription.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationModeIn {
    None,
    Challenge,
    Websub,
}

impl From<VerificationModeIn> for VerificationMode {
    fn from(m: VerificationModeIn) -> Self {
        match m {
            VerificationModeIn::None => Self::None,
            VerificationModeIn::Challenge => Self::Challenge,
            VerificationModeIn::Websub => Self::WebSub,
        }
    }
}

/// An application.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<u16>,
    /// The same as `throttleRate`, under the name older clients use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u16>,
    pub metadata: Metadata,
    /// Herald extension: how its endpoints verify their subscription (`none`, `challenge`,
    /// `websub`).
    pub verification: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to an application; absent fields are kept, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", alias = "rateLimit")]
    #[schema(value_type = Option<u16>)]
    pub throttle_rate: Option<Option<u16>>,
    pub metadata: Option<Metadata>,
    /// Herald extension: how its endpoints verify their subscription.
    pub verification: Option<VerificationModeIn>,
}

/// `POST /app` options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateAppQuery {
    /// Return the existing application (200) instead of a 409 when the uid is taken.
    #[serde(default)]
    pub get_if_exists: bool,
}

impl From<Application> for ApplicationOut {
    fn from(a: Application) -> Self {
        let rate = rate_out(a.rate_limit);
        Self {
            id: a.id,
            uid: a.uid,
            name: a.name,
            throttle_rate: rate,
            rate_limit: rate,
            metadata: a.metadata,
            verification: a.verification.as_str(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

pub(crate) fn check_name(v: &mut Validator, name: &str) {
    v.check(validation::length("name", name, 1, 256));
}

pub(crate) fn check_uid(v: &mut Validator, uid: Option<&str>) {
    if let Some(uid) = uid {
        v.check(validation::own_uid("uid", uid, IdKind::Application));
    }
}

impl ApplicationIn {
    /// Every invalid field at once.
    pub fn validate(&self) -> ApiResult<()> {
        let mut v = Validator::default();
        check_name(&mut v, &self.name);
        check_uid(&mut v, self.uid.as_deref());
        check_rate(&mut v, self.throttle_rate);
        v.check(validation::metadata("metadata", &self.metadata));
        v.finish().map_err(ApiError::Validation)
    }

    /// A new application made of this body.
    pub fn into_app(self, now: DateTime<Utc>) -> Application {
        Application {
            id: IdKind::Application.new_id(),
            uid: self.uid,
            name: self.name,
            rate_limit: self.throttle_rate.map(u32::from),
            metadata: self.metadata,
            verification: self.verification.map(Into::into).unwrap_or_default(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// Creates `body` as a new application, or returns the one holding its uid when
/// `get_if_exists`: `(created, application)`.
pub async fn create_or_get(
    state: &AppState,
    body: ApplicationIn,
    get_if_exists: bool,
) -> ApiResult<(bool, Application)> {
    body.validate()?;
    let uid = body.uid.clone();
    let app = body.into_app(state.clock.now());
    match state.store.create_app(&app).await {
        Ok(()) => Ok((true, app)),
        Err(StoreError::Conflict(_)) if get_if_exists => {
            let existing = state
                .store
                .get_app(uid.as_deref().unwrap_or_default())
                .await?;
            Ok((false, existing))
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(
            "An application with this uid already exists.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

//! `herald export` / `herald import`: the catalog (event types), applications and their
//! endpoints as one JSON document, secrets included, so a provider can move from SQLite to
//! PostgreSQL (or between servers) without asking customers to set anything up again.
//!
//! Read and written through the `Store` trait, not the API: the API never shows an ed25519
//! signing key, a client certificate's key or masked headers, and an export must carry them.
//! Messages, attempts and statistics are not exported (`herald backup` copies a whole
//! SQLite database; `pg_dump` a PostgreSQL one).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use herald_core::endpoint_auth::{KeyPin, OAuthClient};
use herald_core::model::{
    Application, ClientIdentity, Endpoint, EndpointTemplate, EventType, Metadata, PreviousSecret,
    Verification, VerificationMode,
};
use herald_core::payload_filter::PayloadFilter;
use herald_core::signature_scheme::SignatureScheme;
use herald_core::signing::EndpointSecret;
use herald_core::store::read_all;
use herald_core::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of the document's shape; an import refuses others.
const FORMAT_VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Export {
    /// Always `herald-export`: what this file is.
    pub format: String,
    pub version: u32,
    pub exported_at: DateTime<Utc>,
    pub event_types: Vec<EventTypeDoc>,
    pub applications: Vec<ApplicationDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventTypeDoc {
    name: String,
    description: String,
    #[serde(default)]
    schemas: Option<Value>,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    feature_flags: Option<Vec<String>>,
    #[serde(default)]
    group_name: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationDoc {
    id: String,
    #[serde(default)]
    uid: Option<String>,
    name: String,
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    metadata: Metadata,
    /// `none`, `challenge` or `websub`.
    verification: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    endpoints: Vec<EndpointDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointDoc {
    id: String,
    #[serde(default)]
    uid: Option<String>,
    url: String,
    #[serde(default)]
    description: String,
    version: i32,
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    #[serde(default)]
    ordered: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    filter_types: Option<Vec<String>>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_filter: Option<PayloadFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature_scheme: Option<SignatureScheme>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// `whsec_…` or `whsk_…`.
    secret: String,
    #[serde(default)]
    previous_secret: Option<PreviousSecretDoc>,
    /// The PEM chain and key presented to the endpoint (mutual TLS).
    #[serde(default)]
    client_certificate: Option<String>,
    /// The CA trusted for the endpoint's server, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_ca_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    public_key_pins: Vec<KeyPin>,
    /// The OAuth 2.0 client, its secret included, like the signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oauth: Option<OAuthClient>,
    #[serde(default)]
    template: Option<EndpointTemplate>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviousSecretDoc {
    secret: String,
    expires_at: DateTime<Utc>,
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub created: u64,
    /// Already there (same name or id): left as they are.
    pub skipped: u64,
}

impl Imported {
    /// Counts one object's creation: made, or already there.
    fn count(&mut self, created: Result<(), StoreError>, what: &str) -> anyhow::Result<()> {
        match created {
            Ok(()) => self.created += 1,
            Err(StoreError::Conflict(_)) => self.skipped += 1,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("creating {what}"))),
        }
        Ok(())
    }
}

/// Everything the document holds, read from `store`.
pub async fn export(store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<Export> {
    let event_types = read_all(
        |p| async move { store.list_event_types(&p, true).await },
        |t| t.name.clone(),
    )
    .await
    .context("reading event types")?;
    let apps = read_all(
        |p| async move { store.list_apps(&p).await },
        |a| a.id.clone(),
    )
    .await
    .context("reading applications")?;
    let mut applications = Vec::with_capacity(apps.len());
    for app in apps {
        let app_id = app.id.clone();
        let endpoints = read_all(
            |p| {
                let app_id = app_id.clone();
                async move { store.list_endpoints(&app_id, &p).await }
            },
            |e| e.id.clone(),
        )
        .await
        .with_context(|| format!("reading the endpoints of {}", app.id))?;
        // One-off callbacks' hidden endpoints belong to the messages that named them.
        let endpoints = endpoints.into_iter().filter(|e| !e.adhoc);
        applications.push(ApplicationDoc::of(
            app,
            endpoints.map(EndpointDoc::of).collect(),
        ));
    }
    Ok(Export {
        format: "herald-export".into(),
        version: FORMAT_VERSION,
        exported_at: now,
        event_types: event_types.into_iter().map(EventTypeDoc::of).collect(),
        applications,
    })
}

/// Writes `export` to `path`, readable by its owner only (it holds every secret).
pub fn write(export: &Export, path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    serde_json::to_writer_pretty(&mut file, export)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

/// Reads a document written by [`write`].
pub fn read(path: &Path) -> anyhow::Result<Export> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let export: Export = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a herald export", path.display()))?;
    if export.format != "herald-export" || export.version != FORMAT_VERSION {
        bail!(
            "{} is a {} version {} document; this herald reads herald-export version {FORMAT_VERSION}",
            path.display(),
            export.format,
            export.version
        );
    }
    Ok(export)
}

/// Creates what the document holds in `store`; what is already there is left alone.
pub async fn import(
    store: &dyn Store,
    export: Export,
    now: DateTime<Utc>,
) -> anyhow::Result<Imported> {
    let mut done = Imported::default();
    for doc in export.event_types {
        let name = doc.name.clone();
        done.count(store.create_event_type(&doc.into_model()).await, &name)?;
    }
    for doc in export.applications {
        let (app, mut endpoints) = doc.into_model()?;
        let app_id = app.id.clone();
        let app_there = match store.get_app(&app_id).await {
            Ok(_) => {
                done.skipped += 1;
                true
            }
            Err(StoreError::NotFound) => match store.create_app(&app).await {
                Ok(()) => {
                    done.created += 1;
                    true
                }
                // Another application has its uid: its endpoints have no home here.
                Err(StoreError::Conflict(_)) => false,
                Err(e) => return Err(anyhow::Error::new(e).context(format!("creating {app_id}"))),
            },
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {app_id}"))),
        };
        if !app_there {
            eprintln!(
                "skipped application {app_id} and its {} endpoints: its uid belongs to another \
                 application here",
                endpoints.len()
            );
            done.skipped += 1 + endpoints.len() as u64;
            continue;
        }
        // An application that asks its endpoints to verify their subscription asks again:
        // an imported endpoint has not shown this server that it wants the events.
        if app.verification != VerificationMode::None {
            for endpoint in endpoints.iter_mut().filter(|e| e.url.starts_with("http")) {
                endpoint.verification = Verification::pending(now);
            }
        }
        for endpoint in endpoints {
            let id = endpoint.id.clone();
            let created = match store.get_endpoint(&app_id, &id).await {
                Ok(_) => Err(StoreError::Conflict("endpoint")),
                Err(StoreError::NotFound) => store.create_endpoint(&endpoint).await,
                Err(e) => Err(e),
            };
            done.count(created, &id)?;
        }
    }
    Ok(done)
}

impl EventTypeDoc {
    fn of(t: EventType) -> Self {
        Self {
            name: t.name,
            description: t.description,
            schemas: t.schemas,
            archived: t.archived,
            deprecated: t.deprecated,
            feature_flags: t.feature_flags,
            group_name: t.group_name,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }

    fn into_model(self) -> EventType {
        EventType {
            name: self.name,
            description: self.description,
            schemas: self.schemas,
            archived: self.archived,
            deprecated: self.deprecated,
            feature_flags: self.feature_flags,
            group_name: self.group_name,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl ApplicationDoc {
    /// How many endpoints it has.
    pub fn endpoints(&self) -> usize {
        self.endpoints.len()
    }

    fn of(a: Application, endpoints: Vec<EndpointDoc>) -> Self {
        Self {
            id: a.id,
            uid: a.uid,
            name: a.name,
            rate_limit: a.rate_limit,
            metadata: a.metadata,
            verification: a.verification.as_str().to_owned(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            endpoints,
        }
    }

    fn into_model(self) -> anyhow::Result<(Application, Vec<Endpoint>)> {
        let verification = VerificationMode::parse(&self.verification).with_context(|| {
            format!(
                "application {}: verification `{}`",
                self.id, self.verification
            )
        })?;
        let endpoints = self
            .endpoints
            .into_iter()
            .map(|e| e.into_model(&self.id))
            .collect::<anyhow::Result<_>>()?;
        let app = Application {
            id: self.id,
            uid: self.uid,
            name: self.name,
            rate_limit: self.rate_limit,
            metadata: self.metadata,
            verification,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        Ok((app, endpoints))
    }
}

impl EndpointDoc {
    fn of(e: Endpoint) -> Self {
        Self {
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            version: e.version,
            rate_limit: e.rate_limit,
            max_concurrency: e.max_concurrency,
            ordered: e.ordered,
            disabled: e.disabled,
            filter_types: e.filter_types,
            channels: e.channels,
            payload_filter: e.payload_filter,
            signature_scheme: e.signature_scheme,
            metadata: e.metadata,
            headers: e.headers,
            secret: e.secret.expose(),
            previous_secret: e.previous_secret.map(|p| PreviousSecretDoc {
                secret: p.secret.expose(),
                expires_at: p.expires_at,
            }),
            client_certificate: e.client_identity.map(|c| c.0),
            server_ca_certificate: e.server_ca,
            public_key_pins: e.key_pins,
            oauth: e.oauth,
            template: e.template,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }

    /// The endpoint; a subscription verification it had passed is not carried over (see
    /// [`import`]: its application asks again, if it asks).
    fn into_model(self, app_id: &str) -> anyhow::Result<Endpoint> {
        let id = self.id.clone();
        let parse = |text: &str| {
            EndpointSecret::parse(text).with_context(|| format!("endpoint {id}: secret"))
        };
        let secret = parse(&self.secret)?;
        let previous_secret = match &self.previous_secret {
            Some(p) => Some(PreviousSecret {
                secret: parse(&p.secret)?,
                expires_at: p.expires_at,
            }),
            None => None,
        };
        Ok(Endpoint {
            uid: self.uid,
            url: self.url,
            description: self.description,
            version: self.version,
            rate_limit: self.rate_limit,
            max_concurrency: self.max_concurrency,
            ordered: self.ordered,
            disabled: self.disabled,
            filter_types: self.filter_types,
            channels: self.channels,
            payload_filter: self.payload_filter,
            signature_scheme: self.signature_scheme,
            metadata: self.metadata,
            headers: self.headers,
            secret,
            previous_secret,
            client_identity: self.client_certificate.map(ClientIdentity),
            server_ca: self.server_ca_certificate,
            key_pins: self.public_key_pins,
            oauth: self.oauth,
            template: self.template,
            updated_at: self.updated_at,
            id: self.id,
            ..Endpoint::new(app_id, String::new(), self.created_at)
        })
    }
}

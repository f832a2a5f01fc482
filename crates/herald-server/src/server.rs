//! Starting and stopping a Herald process: store, API listener and dispatcher.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use herald_core::destination::Destination;
use herald_core::metrics::Metrics;
use herald_core::sealing::SecretSealer;
use herald_core::{Clock, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use herald_api::auth::{generate_token, hash_token, store_token};
use herald_api::http::rate_limit::TokenRateLimit;
use herald_api::settings::ApiSettings;
use herald_api::state::AppState;
use herald_delivery::destinations::listen::ListenSessions;
use herald_delivery::destinations::Destinations;
use herald_delivery::dispatch::{BreakerSettings, DispatchSettings, Dispatcher};
use herald_delivery::operational::Operational;
use herald_delivery::retention::Cleaner;
use herald_delivery::sync_call::SyncCaller;
use herald_delivery::tasks::TaskRunner;
use herald_delivery::verification::{VerificationSettings, Verifier};

use crate::config::Config;

/// A running Herald.
pub struct Server {
    /// The address the API listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Where `/metrics` is served apart from the API (`api.metrics_listen`), if it is.
    pub metrics_addr: Option<SocketAddr>,
    /// The admin token generated at this start, if one was (it is shown only now).
    pub generated_admin_token: Option<String>,
    /// How many deliveries this process has settled (an attempt recorded, or the delivery
    /// canceled unattempted), updated as they are.
    pub settled: watch::Receiver<u64>,
    /// How many payloads and response bodies the retention cleaner removed.
    pub purged: watch::Receiver<u64>,
    /// How many claimed deliveries were held because their endpoint must verify first.
    pub held: watch::Receiver<u64>,
    /// How many deliveries were moved to their endpoint's probe time while its circuit was
    /// open.
    pub held_back: watch::Receiver<u64>,
    /// How many subscription verification tries this process has settled.
    pub verification_tries: watch::Receiver<u64>,
    /// How many synchronous calls were recorded (just after they were answered).
    pub calls_recorded: watch::Receiver<u64>,
    /// How many background tasks this process has run to their end.
    pub tasks_finished: watch::Receiver<u64>,
    /// The store this server runs on (for commands and tests that act beside the API).
    pub store: Arc<dyn Store>,
    shutdown: CancellationToken,
    tasks: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Begins a graceful shutdown: stop accepting and claiming, finish attempts in flight.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.tasks.await.context("server task panicked")?
    }
}

/// Opens the database the configuration names: SQLite or PostgreSQL, by the URL's scheme.
/// Migrations are applied when `migrate` is true.
pub async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let sealer = Arc::new(sealer(config)?);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let database = &config.database;
        let store = herald_store_postgres::connect_waiting(
            &url,
            database.max_connections,
            database.acquire_timeout,
        )
        .await
        .context("connecting to PostgreSQL")?
        .with_sealer(sealer);
        if migrate {
            store.migrate().await.context("applying migrations")?;
        }
        return Ok(Arc::new(store));
    }
    if !url.starts_with("sqlite:") {
        anyhow::bail!(
            "unsupported database URL: use sqlite://path/to/herald.db or postgres://user@host/db"
        );
    }
    if let Some(dir) = url
        .strip_prefix("sqlite://")
        .and_then(|p| std::path::Path::new(p).parent())
    {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let store = herald_store_sqlite::connect(&url, config.database.readers)
        .await
        .with_context(|| format!("opening {url}"))?
        .with_sealer(sealer);
    if migrate {
        store.migrate().await.context("applying migrations")?;
    }
    Ok(Arc::new(store))
}

/// Readies a freshly opened store: the admin token (`Some` if one was generated now),
/// secrets sealed with the current key, the operational webhooks' application.
async fn prepare_store(
    store: &dyn Store,
    config: &Config,
    clock: &dyn Clock,
) -> anyhow::Result<Option<String>> {
    let generated_admin_token = ensure_admin_token(store, config, clock).await?;
    if config.encryption.key.is_some() || !config.encryption.previous_keys.is_empty() {
        // Secrets written before this key (plain, or sealed with an older key) are sealed
        // with it now, so the older keys can be dropped.
        let rewritten = store
            .reseal_secrets()
            .await
            .context("sealing endpoint secrets with the current key")?;
        if rewritten > 0 {
            tracing::info!(endpoints = rewritten, "endpoint secrets re-sealed");
        }
    }
    Operational::ensure_app(store, clock.now())
        .await
        .context("creating the operational webhooks application")?;
    Ok(generated_admin_token)
}

/// The dispatcher the `[delivery]` and `[email]` settings describe.
fn dispatcher(
    config: &Config,
    (store, clock, destination): (Arc<dyn Store>, Arc<dyn Clock>, Arc<dyn Destination>),
    metrics: Metrics,
    listen_sessions: ListenSessions,
) -> Dispatcher {
    let delivery = &config.delivery;
    let settings = DispatchSettings {
        max_in_flight: delivery.max_in_flight as usize,
        endpoint_concurrency: delivery.endpoint_concurrency as usize,
        attempt_timeout: delivery.timeout,
        shutdown_grace: delivery.shutdown_grace,
        disable_on_gone: delivery.disable_on_gone,
        disable_after: Some(delivery.disable_after).filter(|d| !d.is_zero()),
        breaker: BreakerSettings {
            failures: delivery.circuit_breaker_failures,
            cooldown: delivery.circuit_breaker_cooldown,
            max_cooldown: delivery.circuit_breaker_max_cooldown,
        },
        metrics,
        listen_sessions,
    };
    let policy = config.retry_policy();
    Dispatcher::new(store, clock, destination, policy, settings)
}

/// What the API reads of the configuration.
/// `addr` is the bound address, which differs from `config.listen` when that asks for
/// port 0: links handed out must name the port actually served.
fn api_settings(config: Config, addr: std::net::SocketAddr) -> ApiSettings {
    ApiSettings {
        public_url: config
            .public_url
            .unwrap_or_else(|| format!("http://{addr}")),
        email_enabled: config.email.is_some(),
        portal: config.portal,
        health: config.health,
        content_retention: config.retention.enabled.then_some(config.retention.period),
        api: config.api,
        delivery: config.delivery,
    }
}

/// The description of the token set by configuration (`HERALD_ADMIN_TOKEN`).
const CONFIGURED_TOKEN: &str = "HERALD_ADMIN_TOKEN";
/// A chosen admin token must be at least this long: tokens are hashed without salt, which is
/// safe only for values too long to guess.
const MIN_CONFIGURED_TOKEN_LEN: usize = 32;

/// Makes sure an admin token exists: the configured one (replacing a previously configured
/// one, so changing the variable revokes the old value), or a new one returned for showing.
async fn ensure_admin_token(
    store: &dyn Store,
    config: &Config,
    clock: &dyn Clock,
) -> anyhow::Result<Option<String>> {
    let now = clock.now();
    if let Some(token) = &config.admin_token {
        if token.expose().len() < MIN_CONFIGURED_TOKEN_LEN {
            anyhow::bail!(
                "HERALD_ADMIN_TOKEN (admin_token) must be at least {MIN_CONFIGURED_TOKEN_LEN} characters long"
            );
        }
        store_token(store, token.expose(), None, CONFIGURED_TOKEN, now, None).await?;
        let current = hash_token(token.expose());
        for old in store.list_tokens().await? {
            if old.description == CONFIGURED_TOKEN && old.hash != current {
                store.delete_token_by_id(&old.id).await?;
            }
        }
        return Ok(None);
    }
    if store.has_admin_token().await? {
        return Ok(None);
    }
    let token = generate_token();
    store_token(store, &token, None, "generated at first start", now, None).await?;
    Ok(Some(token))
}

/// The sealer of endpoint secrets the configuration asks for.
fn sealer(config: &Config) -> anyhow::Result<SecretSealer> {
    let keys = &config.encryption;
    let previous: Vec<String> = keys
        .previous_keys
        .iter()
        .map(|k| k.expose().to_owned())
        .collect();
    SecretSealer::new(keys.key.as_ref().map(|k| k.expose()), &previous)
        .context("encryption.key or encryption.previous_keys")
}

/// Starts Herald: opens the store, binds the API, starts the dispatcher.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Server> {
    let store = open_store(&config, config.database.migrate).await?;
    let generated_admin_token = prepare_store(store.as_ref(), &config, clock.as_ref()).await?;
    // The dispatcher and the API's synchronous calls deliver through the same destinations
    // (one connection pool, one address policy).
    let destinations = Destinations::new(&config.delivery, config.email.as_ref())
        .context("setting up destinations")?;
    // One registry for the process: the API, the engine and each pattern count into it.
    let metrics = Metrics::new();
    store.attach_metrics(&metrics);
    let verifier = Verifier::new(
        store.clone(),
        clock.clone(),
        destinations.http(),
        VerificationSettings {
            tries: config.delivery.verification_tries.max(1),
            schedule: config
                .delivery
                .retry_schedule
                .iter()
                .map(|d| d.into_inner())
                .collect(),
            timeout: config.delivery.verification_timeout,
        },
    )
    .with_metrics(metrics.clone());
    let listen_sessions = destinations.listen_sessions();
    let destination: Arc<dyn Destination> = Arc::new(destinations);
    let dispatcher = dispatcher(
        &config,
        (store.clone(), clock.clone(), destination.clone()),
        metrics.clone(),
        listen_sessions.clone(),
    );
    let sync_calls = SyncCaller::new(destination, store.clone(), clock.clone());
    let settled = dispatcher.settled();
    let held = dispatcher.held();
    let held_back = dispatcher.held_back();
    let verification_tries = verifier.tried();
    let task_runner = TaskRunner::new(store.clone(), clock.clone());
    let tasks_finished = task_runner.finished();
    let calls_recorded = sync_calls.recorded();
    let draining_calls = sync_calls.clone();
    let shutdown_grace = config.delivery.shutdown_grace;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match config.api.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("binding api.metrics_listen {at}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    if let Some(at) = metrics_addr {
        tracing::info!(metrics = %format!("http://{at}/metrics"), "metrics are served apart");
    }
    tracing::info!(
        database = %config.database_display(),
        api = %format!("http://{addr}/api/v1"),
        openapi = %format!("http://{addr}/api/v1/openapi.json"),
        dashboard = %format!("http://{addr}/ui"),
        "Herald is running"
    );

    let cleaner = Cleaner::new(store.clone(), clock.clone(), config.retention.clone());
    let purged = cleaner.purged();
    let cleaning = config.retention.enabled;
    let dispatching = config.delivery.dispatch;
    if !dispatching {
        tracing::info!("delivery.dispatch is off: this node serves the API only");
    }
    let dispatcher_running = Arc::new(AtomicBool::new(dispatching));
    let rate_limit = Arc::new(TokenRateLimit::new(
        config.api.rate_limit_per_token,
        config.api.rate_limit_burst,
    ));
    let membership = (
        store.clone(),
        clock.clone(),
        listen_sessions.node().to_owned(),
        rate_limit.clone(),
    );
    let state = AppState {
        store: store.clone(),
        operational: Operational::new(store.clone(), clock.clone()),
        sync_calls,
        verifications: verifier.waker(),
        background_tasks: task_runner.waker(),
        rate_limit,
        clock,
        config: Arc::new(api_settings(config, addr)),
        lookups: Arc::default(),
        dispatcher_running: dispatching.then(|| dispatcher_running.clone()),
        metrics,
        listen_sessions,
    };
    let shutdown = CancellationToken::new();
    let (members, clocked, node, shared) = membership;
    tokio::spawn(crate::membership::run(
        members,
        clocked,
        node,
        shared,
        shutdown.clone(),
    ));
    if let Some(listener) = metrics_listener {
        let metrics = herald_api::http::probes::metrics_app(state.clone());
        let stop = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            let served = axum::serve(listener, metrics).with_graceful_shutdown(stop);
            if let Err(e) = served.await {
                tracing::error!(error = %e, "serving metrics failed");
            }
        });
    }
    let app =
        axum::ServiceExt::<axum::extract::Request>::into_make_service(herald_api::http::app(state));
    let api = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let dispatch = dispatching.then(|| {
        let run = dispatcher.run(shutdown.clone());
        tokio::spawn(async move {
            // Reset however the loop ends, a panic included: readiness says so.
            struct Stopped(Arc<AtomicBool>);
            impl Drop for Stopped {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::SeqCst);
                }
            }
            let _stopped = Stopped(dispatcher_running);
            run.await
        })
    });
    if dispatching {
        tokio::spawn(verifier.run(shutdown.clone()));
        tokio::spawn(task_runner.run(shutdown.clone()));
    }
    if cleaning {
        tokio::spawn(cleaner.run(shutdown.clone()));
    }
    let closing = store.clone();
    let tasks = tokio::spawn(async move {
        api.await.context("serving the API")?;
        draining_calls.drain(shutdown_grace).await;
        if let Some(dispatch) = dispatch {
            dispatch.await.context("dispatcher panicked")?;
        }
        closing.close().await;
        tracing::info!("Herald stopped");
        Ok(())
    });
    Ok(Server {
        addr,
        metrics_addr,
        store,
        generated_admin_token,
        settled,
        purged,
        held,
        held_back,
        verification_tries,
        calls_recorded,
        tasks_finished,
        shutdown,
        tasks,
    })
}

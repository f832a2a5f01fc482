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
    /// Counters of the node's background work, for whoever waits on it (tests, commands).
    pub progress: Progress,
    /// The store this server runs on (for commands and tests that act beside the API).
    pub store: Arc<dyn Store>,
    shutdown: CancellationToken,
    tasks: JoinHandle<anyhow::Result<()>>,
}

/// How far a node's background work has come, each counter updated as it moves.
#[derive(Clone)]
pub struct Progress {
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
    // One registry for the process: the API, the engine and each pattern count into it.
    let metrics = Metrics::new();
    store.attach_metrics(&metrics);
    let engine = Engine::new(&config, &store, &clock, &metrics)?;
    let listeners = Listeners::bind(&config).await?;
    announce(&config, &listeners);
    let dispatching = config.delivery.dispatch;
    if !dispatching {
        tracing::info!("delivery.dispatch is off: this node serves the API only");
    }
    let (cleaning, shutdown_grace) = (config.retention.enabled, config.delivery.shutdown_grace);
    let dispatcher_running = Arc::new(AtomicBool::new(dispatching));
    let shutdown = CancellationToken::new();
    let node = engine.listen_sessions.node().to_owned();
    let rate_limit = shared_rate_limit(&config, (&store, &clock), node, &shutdown);
    let progress = engine.progress();
    let running = dispatching.then(|| dispatcher_running.clone());
    let state = api_state(
        config,
        listeners.addr,
        (&store, clock),
        &engine,
        rate_limit,
        running,
        metrics,
    );
    if let Some(listener) = listeners.metrics {
        serve_metrics(listener, state.clone(), &shutdown);
    }
    let app =
        axum::ServiceExt::<axum::extract::Request>::into_make_service(herald_api::http::app(state));
    let api =
        axum::serve(listeners.api, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let (dispatch, draining_calls) = engine.run(
        dispatching.then_some(dispatcher_running),
        cleaning,
        &shutdown,
    );
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
        addr: listeners.addr,
        metrics_addr: listeners.metrics_addr,
        store,
        generated_admin_token,
        progress,
        shutdown,
        tasks,
    })
}

/// The API tokens' rate limit, shared out among the live nodes as this node's membership
/// counts them (until shutdown).
fn shared_rate_limit(
    config: &Config,
    (store, clock): (&Arc<dyn Store>, &Arc<dyn Clock>),
    node: String,
    shutdown: &CancellationToken,
) -> Arc<TokenRateLimit> {
    let rate_limit = Arc::new(TokenRateLimit::new(
        config.api.rate_limit_per_token,
        config.api.rate_limit_burst,
    ));
    let membership = crate::membership::run(
        store.clone(),
        clock.clone(),
        node,
        rate_limit.clone(),
        shutdown.clone(),
    );
    tokio::spawn(membership);
    rate_limit
}

/// What the API's handlers share: the store, the engine's parts they call on, the API's
/// settings (`addr` is the bound address, which links name).
fn api_state(
    config: Config,
    addr: SocketAddr,
    (store, clock): (&Arc<dyn Store>, Arc<dyn Clock>),
    engine: &Engine,
    rate_limit: Arc<TokenRateLimit>,
    dispatcher_running: Option<Arc<AtomicBool>>,
    metrics: Metrics,
) -> AppState {
    AppState {
        store: store.clone(),
        operational: Operational::new(store.clone(), clock.clone()),
        sync_calls: engine.sync_calls.clone(),
        verifications: engine.verifier.waker(),
        background_tasks: engine.task_runner.waker(),
        rate_limit,
        clock,
        config: Arc::new(api_settings(config, addr)),
        lookups: Arc::default(),
        dispatcher_running,
        metrics,
        listen_sessions: engine.listen_sessions.clone(),
    }
}

/// The background parts of a node, made before any of them runs.
struct Engine {
    dispatcher: Dispatcher,
    verifier: Verifier,
    task_runner: TaskRunner,
    cleaner: Cleaner,
    sync_calls: SyncCaller,
    listen_sessions: ListenSessions,
}

impl Engine {
    fn new(
        config: &Config,
        store: &Arc<dyn Store>,
        clock: &Arc<dyn Clock>,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        // The dispatcher and the API's synchronous calls deliver through the same
        // destinations (one connection pool, one address policy).
        let destinations = Destinations::new(&config.delivery, config.email.as_ref())
            .context("setting up destinations")?;
        let verification = VerificationSettings {
            tries: config.delivery.verification_tries.max(1),
            schedule: config
                .delivery
                .retry_schedule
                .iter()
                .map(|d| d.into_inner())
                .collect(),
            timeout: config.delivery.verification_timeout,
        };
        let verifier = Verifier::new(
            store.clone(),
            clock.clone(),
            destinations.http(),
            verification,
        )
        .with_metrics(metrics.clone());
        let listen_sessions = destinations.listen_sessions();
        let destination: Arc<dyn Destination> = Arc::new(destinations);
        let dispatcher = dispatcher(
            config,
            (store.clone(), clock.clone(), destination.clone()),
            metrics.clone(),
            listen_sessions.clone(),
        );
        Ok(Self {
            dispatcher,
            verifier,
            task_runner: TaskRunner::new(store.clone(), clock.clone()),
            cleaner: Cleaner::new(store.clone(), clock.clone(), config.retention.clone()),
            sync_calls: SyncCaller::new(destination, store.clone(), clock.clone()),
            listen_sessions,
        })
    }

    /// Starts the parts this node runs: the dispatcher with its verifier and task runner
    /// when `dispatching` holds its running flag, the retention cleaner when `cleaning`.
    /// Returns the dispatcher's task and the synchronous calls to drain at shutdown.
    fn run(
        self,
        dispatching: Option<Arc<AtomicBool>>,
        cleaning: bool,
        shutdown: &CancellationToken,
    ) -> (Option<JoinHandle<()>>, SyncCaller) {
        let dispatch = dispatching.map(|running| {
            tokio::spawn(self.verifier.run(shutdown.clone()));
            tokio::spawn(self.task_runner.run(shutdown.clone()));
            spawn_dispatcher(self.dispatcher, running, shutdown.clone())
        });
        if cleaning {
            tokio::spawn(self.cleaner.run(shutdown.clone()));
        }
        (dispatch, self.sync_calls)
    }

    fn progress(&self) -> Progress {
        Progress {
            settled: self.dispatcher.settled(),
            purged: self.cleaner.purged(),
            held: self.dispatcher.held(),
            held_back: self.dispatcher.held_back(),
            verification_tries: self.verifier.tried(),
            calls_recorded: self.sync_calls.recorded(),
            tasks_finished: self.task_runner.finished(),
        }
    }
}

/// The sockets a node serves on, bound before anything is served, so a port taken is an
/// error at start.
struct Listeners {
    api: tokio::net::TcpListener,
    addr: SocketAddr,
    metrics: Option<tokio::net::TcpListener>,
    metrics_addr: Option<SocketAddr>,
}

impl Listeners {
    async fn bind(config: &Config) -> anyhow::Result<Self> {
        let api = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics = match config.api.metrics_listen {
            Some(at) => Some(
                tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding api.metrics_listen {at}"))?,
            ),
            None => None,
        };
        Ok(Self {
            addr: api.local_addr()?,
            metrics_addr: metrics.as_ref().map(|l| l.local_addr()).transpose()?,
            api,
            metrics,
        })
    }
}

/// Says where the node serves what.
fn announce(config: &Config, listeners: &Listeners) {
    if let Some(at) = listeners.metrics_addr {
        tracing::info!(metrics = %format!("http://{at}/metrics"), "metrics are served apart");
    }
    let addr = listeners.addr;
    tracing::info!(
        database = %config.database_display(),
        api = %format!("http://{addr}/api/v1"),
        openapi = %format!("http://{addr}/api/v1/openapi.json"),
        dashboard = %format!("http://{addr}/ui"),
        "Herald is running"
    );
}

/// Serves `/metrics` on a listener of its own until shutdown.
fn serve_metrics(listener: tokio::net::TcpListener, state: AppState, shutdown: &CancellationToken) {
    let metrics = herald_api::http::probes::metrics_app(state);
    let stop = shutdown.clone().cancelled_owned();
    tokio::spawn(async move {
        let served = axum::serve(listener, metrics).with_graceful_shutdown(stop);
        if let Err(e) = served.await {
            tracing::error!(error = %e, "serving metrics failed");
        }
    });
}

/// Runs the dispatcher in a task of its own; `running` is reset however it ends, a panic
/// included, so that readiness says so.
fn spawn_dispatcher(
    dispatcher: Dispatcher,
    running: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    struct Stopped(Arc<AtomicBool>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }
    let run = dispatcher.run(shutdown);
    tokio::spawn(async move {
        let _stopped = Stopped(running);
        run.await
    })
}

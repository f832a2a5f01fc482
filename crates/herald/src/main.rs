//! `herald`: run the webhooks server and manage it from the command line.

mod backup;
mod bench;
mod export;
mod listen;
mod local;
mod logs;
mod manage;
mod remote;
mod send;
mod signature;
mod tail;
mod ui_link;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use herald_core::SystemClock;
use herald_server::config::{Config, DatabaseOverride, DeliveryOverride, Overrides};
use ipnet::IpNet;

const CONFIG_HELP: &str = "Configuration is layered: built-in defaults, then the file given with \
--config (TOML), then HERALD_* environment variables (`__` between levels, e.g. \
HERALD_DELIVERY__TIMEOUT=5s, HERALD_DATABASE__URL=sqlite://herald.db), then these flags. \
Unknown keys are errors. HERALD_ADMIN_TOKEN sets the admin token; without it one is generated \
at the first start and printed once. `herald config` prints every key with its default.";

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "A webhooks server with a Svix-compatible API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the API and the dispatcher.
    #[command(long_about = CONFIG_HELP)]
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(CommonArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the built-in configuration, every key with its default.
    Config,
    /// Copy the SQLite database to FILE while Herald serves (a consistent snapshot).
    Backup {
        #[command(flatten)]
        common: CommonArgs,
        /// Where to write the copy; it must not exist.
        file: PathBuf,
    },
    /// Put a backup in place of the SQLite database (Herald stopped).
    Restore {
        #[command(flatten)]
        common: CommonArgs,
        /// The backup, as written by `herald backup`.
        file: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        replace: bool,
    },
    /// Write the event types, applications and endpoints (secrets included) to FILE as JSON.
    Export {
        #[command(flatten)]
        common: CommonArgs,
        /// Where to write; it must not exist. It holds every endpoint secret: keep it safe.
        file: PathBuf,
    },
    /// Create what an export holds in this database (SQLite or PostgreSQL); what is
    /// already there (same id or name) is left as it is.
    Import {
        #[command(flatten)]
        common: CommonArgs,
        /// A file written by `herald export`.
        file: PathBuf,
    },
    /// Print a one-time sign-in link to the dashboard (/ui), good for one use.
    UiLink {
        #[command(flatten)]
        common: CommonArgs,
        /// How long the link stays usable; the session it opens lasts 12 hours.
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        expiry: std::time::Duration,
    },
    /// Measure a server end to end: publish, deliver to local receivers, report rates,
    /// latency, losses, duplicates, memory and CPU (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Receive webhooks on this machine: attached to a Herald server (--server), forwarded
    /// to a local URL; or as a local receiver that prints what arrives.
    Listen(listen::ListenArgs),
    /// Publish a message to a running Herald; with --wait, report each endpoint's answer.
    Send(send::SendArgs),
    /// Print an application's delivery attempts as they are made.
    Tail(tail::TailArgs),
    /// Print the Standard Webhooks signature (`webhook-signature` value) of a payload.
    Sign(signature::SignArgs),
    /// Check a received request's signature: Standard Webhooks or a provider's scheme.
    Verify(signature::VerifyArgs),
    /// Manage applications over the API of a running Herald (--server, --token).
    App(manage::AppArgs),
    /// Manage an application's endpoints: create, update, secrets, recover.
    Endpoint(manage::EndpointArgs),
    /// Manage the event catalog.
    EventType(manage::EventTypeArgs),
    /// List and show an application's messages (`herald send` publishes).
    #[command(alias = "msg")]
    Message(manage::MessageArgs),
    /// List delivery attempts; resend a message to an endpoint.
    Attempt(manage::AttemptArgs),
    /// Print a link that opens an application's customer portal, signed in.
    PortalLink(manage::PortalLinkArgs),
    /// Print a shell completion script, e.g. `herald completions bash >
    /// /etc/bash_completion.d/herald`, or `source <(herald completions zsh)`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct CommonArgs {
    /// A TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the embedded database lives [default: ./herald-data] (data_dir, HERALD_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The database, e.g. sqlite://herald-data/herald.db (database.url, HERALD_DATABASE__URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The API address [default: 127.0.0.1:8071]; port 0 picks one (listen, HERALD_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Also deliver to this network, e.g. 127.0.0.0/8 for local receivers; repeatable
    /// (delivery.allowed_networks).
    #[arg(long = "allow-network", value_name = "CIDR")]
    allow_network: Vec<IpNet>,
    /// Do not apply migrations at start; run `herald migrate` yourself (database.migrate).
    #[arg(long)]
    no_migrate: bool,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (it is shown only once).
    Create {
        #[command(flatten)]
        common: CommonArgs,
        /// Limit the token to this application (id or uid); without it, an admin token.
        #[arg(long)]
        app: Option<String>,
        /// What the token is for.
        #[arg(long, default_value = "created with herald token create")]
        description: String,
    },
    /// List tokens (never their values: only hashes are stored).
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Revoke a token by its id (as shown by `herald token list`).
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        /// The token's id, `tok_…`.
        id: String,
    },
}

impl CommonArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            database: self.database_url.clone().map(|url| DatabaseOverride {
                url: Some(url),
                migrate: None,
            }),
            ..Overrides::default()
        }
    }

    /// The configuration with these arguments' overrides.
    fn config(&self) -> anyhow::Result<Config> {
        self.load(self.overrides())
    }

    fn load(&self, overrides: Overrides) -> anyhow::Result<Config> {
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let telemetry = match logs::init() {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ran = run().await;
    telemetry.shutdown().await;
    // A user reads an error, not a backtrace: the message and its causes, one line.
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A verdict (a signature that does not verify) was printed; only its status is left.
        Err(e) if e.is::<signature::Verdict>() => {
            let signature::Verdict(code) = e.downcast().expect("checked");
            std::process::ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(common) => local::migrate(&common.config()?).await,
        Command::Backup { common, file } => local::backup(&common.config()?, &file).await,
        Command::Restore {
            common,
            file,
            replace,
        } => local::restore(&common.config()?, &file, replace).await,
        Command::Token(TokenCommand::List { common }) => {
            local::list_tokens(&common.config()?).await
        }
        Command::Token(TokenCommand::Revoke { common, id }) => {
            local::revoke_token(&common.config()?, &id).await
        }
        Command::Token(TokenCommand::Create {
            common,
            app,
            description,
        }) => local::create_token(&common.config()?, app.as_deref(), &description).await,
        Command::Export { common, file } => local::export(&common.config()?, &file).await,
        Command::Import { common, file } => local::import(&common.config()?, &file).await,
        Command::UiLink { common, expiry } => local::ui_link(&common.config()?, expiry).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Listen(args) => listen::run(args).await,
        Command::Send(args) => send::run(args).await,
        Command::Sign(args) => signature::sign(args),
        Command::Tail(args) => tail::run(args).await,
        Command::Verify(args) => signature::verify(args),
        Command::App(args) => manage::app(args).await,
        Command::Endpoint(args) => manage::endpoint(args).await,
        Command::EventType(args) => manage::event_type(args).await,
        Command::Message(args) => manage::message(args).await,
        Command::Attempt(args) => manage::attempt(args).await,
        Command::PortalLink(args) => manage::portal_link(args).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "herald", &mut std::io::stdout());
            Ok(())
        }
        Command::Config => {
            print!("{}", herald_server::config::DEFAULT_CONFIG);
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut overrides = args.common.overrides();
    overrides.listen = args.listen;
    if args.no_migrate {
        overrides
            .database
            .get_or_insert_with(Default::default)
            .migrate = Some(false);
    }
    if !args.allow_network.is_empty() {
        overrides.delivery = Some(DeliveryOverride {
            allowed_networks: args.allow_network.clone(),
        });
    }
    let config = args.common.load(overrides)?;
    let mut signalled = std::pin::pin!(shutdown_signal()?);
    // A signal while starting (migrating, waiting for the database) stops the start.
    let server = tokio::select! {
        started = herald_server::start(config, Arc::new(SystemClock)) => started?,
        () = &mut signalled => {
            tracing::info!("stopped while starting");
            return Ok(());
        }
    };
    match &server.generated_admin_token {
        Some(token) => println!(
            "\nNo admin token existed, so one was generated. It is shown only this once:\n\n    {token}\n\n\
             Use it as `Authorization: Bearer <token>`. Set HERALD_ADMIN_TOKEN to choose your own, or \
             run `herald token create` for more.\n"
        ),
        None => tracing::info!("admin token: the one set by HERALD_ADMIN_TOKEN or generated at the first start (`herald token create` makes another)"),
    }
    signalled.await;
    tracing::info!("shutting down: no new work, finishing attempts in flight");
    server.shutdown();
    server.wait().await
}

/// Registers for SIGTERM and SIGINT now, before the server starts, so that a signal sent
/// while it starts is a graceful shutdown rather than the default immediate exit; the
/// future ends when one arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async { tokio::signal::ctrl_c().await.unwrap_or_default() })
}

//! `herald listen`: either a local receiver that prints what arrives ([`local`]), or, with
//! `--server`, a session that Herald delivers an application's messages to over a WebSocket
//! and that forwards them to a server on this machine ([`relay`]): no port to open.

mod local;
mod relay;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;

#[derive(Args)]
#[command(after_help = "Examples:
  herald listen --secret whsec_…                   a local receiver on 127.0.0.1:9000
  herald listen http://127.0.0.1:3000/webhooks --server http://herald:8071 --app my-app
                                                   the app's messages, forwarded to a local server
  herald listen http://127.0.0.1:3000/github --server http://herald:8071 --source github
                                                   what GitHub sent to an inbound source, verified")]
pub struct ListenArgs {
    /// With --server: where to forward each message (a loopback URL unless --allow-external).
    /// Without it, messages are printed and answered 200.
    #[arg(value_name = "FORWARD_TO")]
    forward_to: Option<String>,
    /// The Herald server to attach to, e.g. http://127.0.0.1:8071 (HERALD_SERVER).
    #[arg(long, env = "HERALD_SERVER", value_name = "URL")]
    server: Option<String>,
    /// With --server: the application whose messages to receive (id or uid).
    #[arg(long)]
    app: Option<String>,
    /// With --server, instead of --app: an inbound source (id or uid). What a provider
    /// (GitHub, Stripe…) sends to the source's ingest URL is forwarded once Herald has
    /// verified it: the session is an endpoint of the source's application. Sources are
    /// read with an admin token.
    #[arg(long, conflicts_with = "app")]
    source: Option<String>,
    /// With --server: an admin token or one scoped to the app (HERALD_TOKEN).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With --server: the session's name. The same name gets the same endpoint and secret.
    #[arg(long, default_value = "default")]
    name: String,
    /// With --server: only these event types (comma-separated).
    #[arg(long, value_delimiter = ',')]
    events: Option<Vec<String>>,
    /// With --server: only these channels (comma-separated).
    #[arg(long, value_delimiter = ',')]
    channels: Option<Vec<String>>,
    /// With --server: first send again what the session missed in this past window (e.g. 10m).
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// With --server: print each message as one JSON object per line.
    #[arg(long)]
    print_json: bool,
    /// With --server: allow FORWARD_TO to be an address other than this machine's.
    #[arg(long)]
    allow_external: bool,
    /// With --server: take the name over from a session still attached.
    #[arg(long)]
    force: bool,
    /// Without --server: where the local receiver listens.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Without --server: the endpoint's secret (`whsec_…`) or, for an ed25519 endpoint, its
    /// public key (`whpk_…`), to verify signatures.
    #[arg(long)]
    secret: Option<String>,
    /// Without --server: the status to answer with (try 500 to watch retries).
    #[arg(long, default_value_t = 200)]
    status: u16,
}

/// Runs whichever mode the arguments ask for, until Ctrl-C.
pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let Some(server) = args.server else {
        if args.forward_to.is_some() || args.app.is_some() || args.source.is_some() {
            bail!("FORWARD_TO, --app and --source need --server: the Herald server to attach to");
        }
        return local::run(args.listen, args.secret, args.status).await;
    };
    let Some(token) = args.token else {
        bail!(
            "--server needs a token: --token or HERALD_TOKEN (an admin token, or one for the app)"
        );
    };
    let app = match (args.app, args.source) {
        (Some(app), _) => app,
        (None, Some(source)) => source_app(&server, &token, &source).await?,
        (None, None) => bail!(
            "--server needs --app (the application whose messages to receive) or --source \
             (an inbound source)"
        ),
    };
    let forward_to = match args.forward_to {
        Some(target) => Some(relay::forward_target(&target, args.allow_external).await?),
        None => None,
    };
    let session = relay::Session {
        server: crate::remote::api_base(&server)?,
        token,
        app,
        name: args.name,
        events: args.events,
        channels: args.channels,
        force: args.force,
        since: args.since,
        forward_to,
        print_json: args.print_json,
    };
    tokio::select! {
        ended = relay::run(session) => ended,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// The application an inbound source publishes what it receives to.
async fn source_app(server: &str, token: &str, source: &str) -> anyhow::Result<String> {
    let remote = crate::remote::Remote::new(server, token.to_owned())?;
    let found = remote
        .get_ingest(&["source", source])
        .await
        .with_context(|| format!("inbound source {source}"))?;
    match found["appId"].as_str() {
        Some(app) => Ok(app.to_owned()),
        None => bail!("the server's answer for source {source} has no appId: {found}"),
    }
}

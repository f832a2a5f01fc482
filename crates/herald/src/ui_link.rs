//! `herald ui-link`: a sign-in link to the dashboard for whoever runs the command on the
//! server, so no admin token has to be copied around. The link carries a one-time token in
//! its fragment, which the dashboard exchanges for a 12-hour session.

use std::time::Duration;

use herald_core::{Clock, Store, SystemClock};
use herald_server::auth::{issue_token, NewToken};
use herald_server::config::Config;

/// Stores a one-time admin token valid for `expiry` and returns the link that spends it.
pub async fn create(
    store: &dyn Store,
    config: &Config,
    expiry: Duration,
) -> anyhow::Result<String> {
    let now = SystemClock.now();
    let new = NewToken {
        app_id: None,
        description: "one-time dashboard link (herald ui-link)".into(),
        now,
        expires_at: Some(now + chrono::Duration::from_std(expiry)?),
        portal: None,
        one_time: true,
        poller_endpoint_id: None,
    };
    let token = issue_token(store, new).await?;
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    Ok(format!("{}/ui/#key={token}", base.trim_end_matches('/')))
}

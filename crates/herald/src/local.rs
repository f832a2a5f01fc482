//! The commands that work on the database itself, beside a running server or without
//! one: migrations, backups, API tokens, export and import, dashboard links. Each says in
//! one line what it did.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use herald_core::{Clock as _, Store, SystemClock};
use herald_server::config::Config;
use herald_server::server::open_store;

use crate::{backup, export, ui_link};

/// `herald migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    open_store(config, true).await?;
    println!("migrations applied to {}", config.database_display());
    Ok(())
}

/// `herald backup`.
pub async fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    backup::backup(&config.database_url(), file).await?;
    let database = config.database_display();
    println!("backed up {database} to {}", file.display());
    Ok(())
}

/// `herald restore`.
pub async fn restore(config: &Config, file: &Path, replace: bool) -> anyhow::Result<()> {
    backup::restore(&config.database_url(), file, replace).await?;
    let database = config.database_display();
    println!("restored {database} from {}", file.display());
    Ok(())
}

/// `herald token list`: one line a token, never its value (only hashes are stored).
pub async fn list_tokens(config: &Config) -> anyhow::Result<()> {
    let store = open_store_for(config).await?;
    for t in store.list_tokens().await? {
        let scope = t.app_id.as_deref().unwrap_or("admin");
        let expires = t.expires_at.map_or("never".into(), |at| at.to_rfc3339());
        let created = t.created_at.to_rfc3339();
        println!(
            "{}\t{scope}\t{}\tcreated {created}\texpires {expires}",
            t.id, t.description
        );
    }
    Ok(())
}

/// `herald token revoke`.
pub async fn revoke_token(config: &Config, id: &str) -> anyhow::Result<()> {
    let store = open_store_for(config).await?;
    store
        .delete_token_by_id(id)
        .await
        .with_context(|| format!("token {id}"))?;
    println!("revoked {id}");
    Ok(())
}

/// `herald token create`: an admin token, or one limited to `app` (an id or uid).
pub async fn create_token(
    config: &Config,
    app: Option<&str>,
    description: &str,
) -> anyhow::Result<()> {
    let store = open_store_for(config).await?;
    let app_id = match app {
        Some(app) => Some(
            store
                .get_app(app)
                .await
                .with_context(|| format!("application {app}"))?
                .id,
        ),
        None => None,
    };
    let token = herald_server::auth::generate_token();
    let now = SystemClock.now();
    herald_server::auth::store_token(store.as_ref(), &token, app_id, description, now, None)
        .await?;
    println!("{token}");
    Ok(())
}

/// `herald export`.
pub async fn export(config: &Config, file: &Path) -> anyhow::Result<()> {
    let store = open_store_for(config).await?;
    let export = export::export(store.as_ref(), SystemClock.now()).await?;
    export::write(&export, file)?;
    let endpoints: usize = export.applications.iter().map(|a| a.endpoints()).sum();
    println!(
        "exported {} event types, {} applications and {endpoints} endpoints to {} \
         (it holds their secrets)",
        export.event_types.len(),
        export.applications.len(),
        file.display()
    );
    Ok(())
}

/// `herald import`.
pub async fn import(config: &Config, file: &Path) -> anyhow::Result<()> {
    let export = export::read(file)?;
    let store = open_store_for(config).await?;
    let done = export::import(store.as_ref(), export, SystemClock.now()).await?;
    println!(
        "imported into {}: {} created, {} already there",
        config.database_display(),
        done.created,
        done.skipped
    );
    Ok(())
}

/// `herald ui-link`.
pub async fn ui_link(config: &Config, expiry: Duration) -> anyhow::Result<()> {
    let store = open_store_for(config).await?;
    println!("{}", ui_link::create(store.as_ref(), config, expiry).await?);
    Ok(())
}

/// Opens the store for a command, migrating it unless the configuration says not to.
async fn open_store_for(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_store(config, config.database.migrate).await
}

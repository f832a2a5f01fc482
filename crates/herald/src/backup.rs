//! `herald backup` and `herald restore` for the embedded SQLite database. A backup is a
//! consistent copy taken while Herald serves (SQLite's `VACUUM INTO` reads one snapshot
//! and writers go on); a restore puts such a copy in place of a stopped node's database.
//! PostgreSQL has its own tools (`pg_dump`, base backups), which these commands name.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::{bail, Context as _};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

/// The database file behind a SQLite URL, read as the store reads it; an error naming
/// PostgreSQL's tools for any other database.
fn sqlite_file(database_url: &str) -> anyhow::Result<PathBuf> {
    if !database_url.starts_with("sqlite:") {
        bail!(
            "herald backup and restore copy the embedded SQLite database; on PostgreSQL use \
             pg_dump / pg_restore or your provider's backups"
        );
    }
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("reading the database URL {database_url}"))?;
    Ok(options.get_filename().to_owned())
}

/// A read-only connection to one file: a backup only reads the live database, and a
/// restore only checks the copy before moving it.
async fn open_read_only(path: &Path) -> anyhow::Result<SqliteConnection> {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// Copies the database behind `database_url` to `to`, which must not exist yet.
pub async fn backup(database_url: &str, to: &Path) -> anyhow::Result<()> {
    let from = sqlite_file(database_url)?;
    if !from.exists() {
        bail!("no database at {}", from.display());
    }
    if to.exists() {
        bail!("{} exists; a backup never overwrites a file", to.display());
    }
    let target = to
        .to_str()
        .context("the backup file's path must be valid UTF-8")?;
    let mut conn = open_read_only(&from).await?;
    // One read transaction over the whole database, written out compacted; a server
    // writing at the same time is not blocked (write-ahead log mode).
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    conn.close().await?;
    check(to).await
}

/// Checks that `file` is a whole SQLite database that Herald wrote.
async fn check(file: &Path) -> anyhow::Result<()> {
    let mut conn = open_read_only(file).await?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?;
    if integrity != "ok" {
        bail!("{} is damaged: {integrity}", file.display());
    }
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a Herald database", file.display()))?;
    conn.close().await?;
    if migrations == 0 {
        bail!("{} is not a Herald database", file.display());
    }
    Ok(())
}

/// Puts the backup `from` in place of the database behind `database_url`. Herald must
/// not be running on it; an existing database is replaced only when `replace` is set.
pub async fn restore(database_url: &str, from: &Path, replace: bool) -> anyhow::Result<()> {
    let to = sqlite_file(database_url)?;
    check(from).await?;
    if to.exists() && !replace {
        bail!(
            "{} exists; stop Herald and pass --replace to put the backup in its place",
            to.display()
        );
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Copied beside the target, then renamed over it: a restore cut short leaves the old
    // database whole. The old write-ahead log belongs to the old database and goes.
    let partial = to.with_extension("db.restoring");
    std::fs::copy(from, &partial).with_context(|| format!("copying {}", from.display()))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = to.clone().into_os_string();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {side:?}")),
        }
    }
    std::fs::rename(&partial, &to).with_context(|| format!("replacing {}", to.display()))?;
    Ok(())
}

//! The machine's own ceilings, measured in the same run so that Herald's figures can be
//! read as a fraction of them: plain HTTP POSTs to the bench's receiver, and single-row
//! durable commits of the database.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Executor};

/// How long each ceiling is measured.
const WINDOW: Duration = Duration::from_secs(3);

/// The ceilings, in operations per second.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Ceilings {
    pub http_posts_per_second: f64,
    pub sqlite_commits_per_second: f64,
    pub sqlite_rows_per_second_batched: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_commits_per_second: Option<f64>,
}

pub async fn measure(
    receiver_base: &str,
    concurrency: u32,
    database_url: Option<&str>,
) -> anyhow::Result<Ceilings> {
    let mut ceilings = Ceilings {
        http_posts_per_second: http_posts(receiver_base, concurrency).await?,
        ..Ceilings::default()
    };
    let (single, batched) = sqlite_commits().await?;
    ceilings.sqlite_commits_per_second = single;
    ceilings.sqlite_rows_per_second_batched = batched;
    if let Some(url) = database_url.filter(|u| u.starts_with("postgres")) {
        ceilings.postgres_commits_per_second = Some(postgres_commits(url, 50).await?);
    }
    Ok(ceilings)
}

/// POSTs a small JSON body from `concurrency` tasks in a tight loop.
async fn http_posts(base: &str, concurrency: u32) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let url = format!("{base}/baseline");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, done) = (client.clone(), url.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                if client.post(&url).body(r#"{"n":0}"#).send().await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(done.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64())
}

/// Single-row transactions, then 100-row ones, on a temporary SQLite file configured as
/// Herald's (WAL, `synchronous = FULL`).
async fn sqlite_commits() -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("ceiling.db").display());
    let options = SqliteConnectOptions::from_str(&url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .await?;
    let rate = |rows: u64, since: Instant| rows as f64 / since.elapsed().as_secs_f64();
    let (start, mut rows) = (Instant::now(), 0u64);
    while start.elapsed() < WINDOW {
        sqlx::query("INSERT INTO t (v) VALUES ('x')")
            .execute(&mut conn)
            .await?;
        rows += 1;
    }
    let single = rate(rows, start);
    let (start, mut rows) = (Instant::now(), 0u64);
    while start.elapsed() < WINDOW {
        let mut tx = conn.begin().await?;
        for _ in 0..100 {
            sqlx::query("INSERT INTO t (v) VALUES ('x')")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        rows += 100;
    }
    Ok((single, rate(rows, start)))
}

/// Single-row transactions from `clients` connections into a table of its own.
async fn postgres_commits(url: &str, clients: u32) -> anyhow::Result<f64> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(clients)
        .connect(url)
        .await?;
    let table = format!("herald_bench_ceiling_{}", std::process::id());
    pool.execute(
        format!("CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)").as_str(),
    )
    .await?;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (pool, done, insert) = (
            pool.clone(),
            done.clone(),
            format!("INSERT INTO {table} (v) VALUES ('x')"),
        );
        tasks.spawn(async move {
            while Instant::now() < deadline {
                if sqlx::query(&insert).execute(&pool).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    pool.execute(format!("DROP TABLE {table}").as_str()).await?;
    Ok(done.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64())
}

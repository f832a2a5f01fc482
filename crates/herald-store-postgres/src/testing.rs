//! Fresh, throw-away databases for tests.
//!
//! PostgreSQL tests run when `HERALD_TEST_POSTGRES_URL` names a server (any database on it;
//! each test creates and later drops its own). Without it they are reported as not run;
//! in CI (`CI` set) a missing variable is an error, so the suite can never pass by
//! silently running nothing.

use std::io::Write;

use url::Url;

/// The variable that names the PostgreSQL server for tests.
pub const ENV: &str = "HERALD_TEST_POSTGRES_URL";

/// The server's URL, `None` (with a loud note) outside CI when unset.
pub fn server_url() -> Option<String> {
    service_variable(ENV)
}

/// The value of `name`, a variable that names a service a test suite needs (PostgreSQL, a
/// broker…). Unset, it is `None` with a loud note; in CI (`CI` set) it is an error instead,
/// so a suite can never pass there by silently running nothing.
pub fn service_variable(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{name} must be set in CI: the tests that need it cannot be skipped there")
        }
        _ => {
            // Straight to the stream, not `eprintln!`: the test harness hides what a passing
            // test prints, and this must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "NOT RUN: a test was skipped because {name} is not set"
            );
            None
        }
    }
}

/// A database created for one test and dropped when this is.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    /// Creates a fresh empty database, or `None` when PostgreSQL tests are not run here.
    pub async fn create() -> Option<Self> {
        let server = server_url()?;
        let name = format!(
            "herald_test_{}",
            herald_core::ids::IdKind::Task.new_id().to_lowercase()
        );
        let admin = sqlx::PgPool::connect(&server)
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let mut url = Url::parse(&server).expect("a valid PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        Some(Self {
            url: url.to_string(),
            server,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async code: use a short-lived runtime on its own thread.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(async move {
                    let admin = sqlx::PgPool::connect(&server).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&admin)
                        .await?;
                    admin.close().await;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

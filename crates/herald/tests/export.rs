//! `herald export` then `herald import`: the catalog, applications and endpoints move from
//! one database to another with every setting and secret (to PostgreSQL when
//! `HERALD_TEST_POSTGRES_URL` is set, as in CI; to a second SQLite database otherwise).

mod support;

use herald_core::model::Endpoint;
use herald_core::Store;
use herald_server::config::Config;
use herald_store_postgres::testing::TestDatabase;
use serde_json::json;

use support::in_process::Herald;

/// Runs `herald ARGS` to completion; its stdout, or a panic with its stderr.
async fn run_herald(args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .await
        .expect("herald runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "herald {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn endpoints(store: &dyn Store) -> Vec<Endpoint> {
    let page = herald_core::store::PageRequest {
        limit: 50,
        cursor: None,
        order: herald_core::store::Order::Ascending,
    };
    let app = store.get_app("test").await.unwrap();
    store.list_endpoints(&app.id, &page).await.unwrap().items
}

#[tokio::test]
async fn an_export_imported_elsewhere_gives_the_same_endpoints_and_secrets() {
    let herald = Herald::start().await;
    let hmac = herald
        .post(
            "/app/test/endpoint",
            json!({"url": "https://example.com/a", "uid": "first", "filterTypes": ["a"],
                   "channels": ["eu"], "rateLimit": 5, "metadata": {"team": "x"},
                   "headers": {"x-api-key": "k-123"},
                   "publicKeyPins": [format!("sha256/{}", "A".repeat(43) + "=")]}),
        )
        .await;
    let id = hmac["id"].as_str().unwrap();
    // An OAuth client, whose secret moves like the signing secret.
    let status = herald
        .put(
            &format!("/app/test/endpoint/{id}/oauth"),
            json!({"tokenUrl": "https://auth.example.com/token", "clientId": "herald",
                   "clientSecret": "s3cret", "authMethod": "clientSecretPost",
                   "grantType": "clientCredentials", "scopes": ["hooks"]}),
        )
        .await;
    assert_eq!(status, 204);
    // A rotated secret keeps the previous one for a while: both must move.
    herald
        .post(&format!("/app/test/endpoint/{id}/secret/rotate"), json!({}))
        .await;
    // An ed25519 endpoint: its signing key is never shown by the API.
    let key = herald_core::signing::EndpointSecret::generate_ed25519().expose();
    herald
        .post(
            "/app/test/endpoint",
            json!({"url": "https://example.com/b", "secret": key, "description": "signed"}),
        )
        .await;
    let before = endpoints(herald.server.store.as_ref()).await;
    assert_eq!(before.len(), 2);
    assert!(before.iter().any(|e| e.previous_secret.is_some()));
    assert!(before
        .iter()
        .any(|e| e.oauth.is_some() && !e.key_pins.is_empty()));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.json");
    let file = file.to_str().unwrap();
    let source = herald.data_dir().to_str().unwrap();
    let said = run_herald(&["export", "--data-dir", source, file]).await;
    assert!(said.contains("2 endpoints"), "{said}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "only its owner reads the secrets");

    // Into another database.
    let postgres = TestDatabase::create().await;
    let target_dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    let target: Vec<String> = match &postgres {
        Some(db) => {
            config.database.url = db.url.clone();
            vec!["--database-url".into(), db.url.clone()]
        }
        None => {
            config.data_dir = target_dir.path().to_owned();
            vec![
                "--data-dir".into(),
                target_dir.path().to_str().unwrap().into(),
            ]
        }
    };
    let mut args: Vec<&str> = vec!["import"];
    args.extend(target.iter().map(String::as_str));
    args.push(file);
    let said = run_herald(&args).await;
    assert!(said.contains("5 created, 0 already there"), "{said}");
    let said = run_herald(&args).await;
    assert!(
        said.contains("0 created, 5 already there"),
        "importing twice changes nothing: {said}"
    );

    let imported = herald_server::server::open_store(&config, true)
        .await
        .unwrap();
    let after = endpoints(imported.as_ref()).await;
    assert_eq!(after, before, "every setting, secret and date");
    let original = herald.server.store.get_app("test").await.unwrap();
    assert_eq!(imported.get_app("test").await.unwrap(), original);
    let a = herald.server.store.get_event_type("a").await.unwrap();
    assert_eq!(imported.get_event_type("a").await.unwrap(), a);
    imported.close().await;
}

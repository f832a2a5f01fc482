//! The management commands (`herald app | endpoint | event-type | message | attempt |
//! portal-link`) as a child process against an in-process Herald, checked through the API.

mod support;

use serde_json::{json, Value};

use support::in_process::{Command, Herald, LocalServer};

/// Runs `herald ARGS --server <herald>`; its exit code, stdout and stderr.
async fn herald(herald: &Herald, args: &[&str]) -> (i32, String, String) {
    let base = herald.base();
    let mut all = args.to_vec();
    all.extend(["--server", &base]);
    let out = Command::run(&all).await;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let code = out.status.code().expect("an exit code");
    (code, text(&out.stdout), text(&out.stderr))
}

/// Runs a command that must succeed and print JSON; that JSON.
async fn json_of(h: &Herald, args: &[&str]) -> Value {
    let (code, stdout, stderr) = herald(h, args).await;
    assert_eq!(code, 0, "herald {args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed {stdout}: {e}"))
}

fn ids(list: &Value) -> Vec<&str> {
    let items = list["data"].as_array().expect("a list");
    items.iter().map(|i| i["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn the_catalog_apps_and_endpoints_are_managed_from_the_command_line() {
    let h = Herald::start().await;
    let local = LocalServer::start().await;

    let app = json_of(&h, &["app", "create", "Acme", "--uid", "acme"]).await;
    assert_eq!(
        (app["name"].as_str(), app["uid"].as_str()),
        (Some("Acme"), Some("acme"))
    );
    let app_id = app["id"].as_str().unwrap();
    let apps = json_of(&h, &["app", "list", "--limit", "250"]).await;
    assert!(ids(&apps).contains(&app_id), "{apps}");
    // A flag wins over the same field in --body; the body's other fields are kept.
    let body = r#"{"name": "ignored", "metadata": {"plan": "gold"}}"#;
    let renamed = json_of(
        &h,
        &[
            "app", "update", "acme", "--name", "Acme Inc", "--body", body,
        ],
    )
    .await;
    assert_eq!(renamed["name"], "Acme Inc");
    assert_eq!(h.get("/app/acme").await["metadata"]["plan"], "gold");

    let schema = r#"{"type": "object", "required": ["id"]}"#;
    let created = [
        "event-type",
        "create",
        "deal.won",
        "--description",
        "Won",
        "--schema",
        schema,
    ];
    json_of(&h, &created).await;
    let body = r#"{"description": "From the body"}"#;
    json_of(&h, &["event-type", "create", "deal.lost", "--body", body]).await;
    let lost = h.get("/event-type/deal.lost").await;
    assert_eq!(lost["description"], "From the body", "no flag, the body's");
    let deal = h.get("/event-type/deal.won").await;
    assert_eq!(deal["schemas"]["1"]["required"], json!(["id"]), "{deal}");
    let types = json_of(&h, &["event-type", "list"]).await;
    let names: Vec<_> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["name"])
        .collect();
    assert!(names.contains(&&json!("deal.won")), "{types}");

    let endpoint = [
        "endpoint",
        "create",
        "--app",
        "acme",
        &local.url,
        "--types",
        "deal.won,a",
    ];
    let endpoint = json_of(&h, &endpoint).await;
    let ep = endpoint["id"].as_str().unwrap().to_owned();
    assert_eq!(endpoint["filterTypes"], json!(["deal.won", "a"]));
    let secret = json_of(&h, &["endpoint", "secret", "--app", "acme", &ep]).await;
    assert!(
        secret["key"].as_str().unwrap().starts_with("whsec_"),
        "{secret}"
    );
    json_of(&h, &["endpoint", "rotate-secret", "--app", "acme", &ep]).await;
    let rotated = json_of(&h, &["endpoint", "secret", "--app", "acme", &ep]).await;
    assert_ne!(rotated["key"], secret["key"], "a new secret");

    // A message to it, as `herald send` publishes; listed, shown, its attempt listed and
    // resent (the receiver gets it twice).
    let (code, msg, stderr) = herald(
        &h,
        &[
            "send",
            "--app",
            "acme",
            "--type",
            "deal.won",
            "--data",
            r#"{"id": 7}"#,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let msg = msg.trim();
    local.wait_for(1).await;
    let msgs = json_of(
        &h,
        &["message", "list", "--app", "acme", "--types", "deal.won"],
    )
    .await;
    assert_eq!(ids(&msgs), [msg]);
    let none = json_of(&h, &["msg", "list", "--app", "acme", "--types", "a"]).await;
    assert!(ids(&none).is_empty(), "filtered by type: {none}");
    let shown = json_of(&h, &["message", "get", "--app", "acme", msg]).await;
    assert_eq!(shown["payload"], json!({"id": 7}));
    h.wait_settled(1).await;
    let attempts = json_of(&h, &["attempt", "list", "--app", "acme", "--msg", msg]).await;
    assert_eq!(attempts["data"][0]["responseStatusCode"], 200, "{attempts}");
    let by_endpoint = ["attempt", "list", "--app", "acme", "--endpoint", &ep];
    assert_eq!(json_of(&h, &by_endpoint).await["data"], attempts["data"]);
    let (code, said, stderr) = herald(&h, &["attempt", "resend", "--app", "acme", msg, &ep]).await;
    assert_eq!((code, said.trim()), (0, "done"), "{stderr}");
    local.wait_for(2).await;
    assert_eq!(&local.request(1).1[..], br#"{"id":7}"#);

    // Disabled from the command line: the next message is not delivered to it.
    let update = [
        "endpoint",
        "update",
        "--app",
        "acme",
        &ep,
        "--disabled",
        "true",
    ];
    assert_eq!(json_of(&h, &update).await["disabled"], true);
    assert_eq!(
        h.get(&format!("/app/acme/endpoint/{ep}")).await["disabled"],
        true
    );

    let link = herald(&h, &["portal-link", "--app", "acme"]).await;
    assert_eq!(link.0, 0, "{}", link.2);
    let link = url::Url::parse(link.1.trim()).expect("one URL");
    assert_eq!(link.path(), "/portal/", "{link}");
    // The key in the link's fragment is a token of this application.
    let key = link
        .fragment()
        .and_then(|f| f.strip_prefix("key="))
        .expect("a key");
    let with_key = h
        .http
        .get(format!("{}/api/v1/app/acme", h.base()))
        .bearer_auth(key);
    assert_eq!(with_key.send().await.unwrap().status(), 200);

    let (code, said, _) = herald(&h, &["endpoint", "delete", "--app", "acme", &ep]).await;
    assert_eq!((code, said.trim()), (0, "done"));
    let (code, said, _) = herald(&h, &["app", "delete", "acme"]).await;
    assert_eq!((code, said.trim()), (0, "done"));
    let (code, _, stderr) = herald(&h, &["app", "get", "acme"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("not_found"), "{stderr}");
}

#[tokio::test]
async fn a_refusal_or_a_missing_argument_is_one_line_and_an_id_stays_one_path_segment() {
    let h = Herald::start().await;
    let (code, _, stderr) = herald(&h, &["endpoint", "get", "--app", "test", "ep_nope"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("not_found"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let (code, _, stderr) = herald(&h, &["endpoint", "list"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("--app"), "{stderr}");

    // The server's own validation error reaches the user with its code.
    let (code, _, stderr) = herald(&h, &["endpoint", "create", "--app", "test", "not a url"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("validation"), "{stderr}");

    // `..` would climb to the list of applications, and `.` to the list of endpoints:
    // refused before any request.
    for (args, id) in [
        (&["app", "get", ".."][..], ".."),
        (&["endpoint", "get", "--app", "test", "."][..], "."),
    ] {
        let (code, stdout, stderr) = herald(&h, args).await;
        assert_eq!(code, 1, "{stdout}");
        assert!(stderr.contains(&format!("`{id}` is not an id")), "{stderr}");
    }
    // `..` would climb to the list of applications, and `.` to the list of endpoints:
    // refused before any request.
    for (args, id) in [
        (&["app", "get", ".."][..], ".."),
        (&["endpoint", "get", "--app", "test", "."][..], "."),
    ] {
        let (code, stdout, stderr) = herald(&h, args).await;
        assert_eq!(code, 1, "{stdout}");
        assert!(stderr.contains(&format!("`{id}` is not an id")), "{stderr}");
    }
    // `../event-type` is an application id that does not exist, not a way to another route.
    let (code, stdout, stderr) = herald(&h, &["app", "get", "../event-type"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("not_found"), "{stderr}");

    // No token at all: said plainly, before any request.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["app", "list", "--server", &h.base()])
        .env_remove("HERALD_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HERALD_TOKEN"), "{stderr}");
}

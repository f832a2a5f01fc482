//! The `herald` command as a user meets it: errors are one readable line, never a
//! backtrace, and `herald listen` verifies what an ed25519 endpoint signs with the public
//! key the API shows.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use herald_core::signing::EndpointSecret;

/// The lines a child process writes to `output`, as they come, read on a thread of their own.
fn lines_of(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}

#[test]
fn a_bad_argument_is_one_line_of_error_without_a_backtrace() {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["listen", "--listen", "127.0.0.1:0", "--secret", "not-a-key"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("herald runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: --secret takes"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn listen_verifies_ed25519_signatures_with_the_public_key() {
    let secret = EndpointSecret::generate_ed25519();
    let public = secret.verification_key();
    assert!(public.starts_with("whpk_"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["listen", "--listen", "127.0.0.1:0", "--secret", &public])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("herald listen starts");
    let lines = lines_of(child.stdout.take().unwrap());
    let next = || lines.recv_timeout(Duration::from_secs(30)).expect("a line");
    let first = next();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("an address in {first:?}"))
        .to_owned();

    let client = reqwest::Client::new();
    for (body, expected) in [
        (&b"{}"[..], "signature verified"),
        (&b"{ }"[..], "SIGNATURE INVALID"),
    ] {
        // Signed over `{}`; the second body differs, so its signature cannot match.
        let signature = secret.sign("msg_1", 1_700_000_000, b"{}");
        let answer = client
            .post(&url)
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", "1700000000")
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let verdict = loop {
            let line = next();
            if line.starts_with("── webhook") {
                break line;
            }
        };
        assert!(verdict.contains(expected), "{verdict}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `HERALD_LOG_FORMAT=json` makes every log line a JSON object, and a client asking for a
/// route Herald does not offer (a 404 coded `not_implemented`) is not logged as an error.
#[tokio::test]
async fn json_logs_are_one_object_per_line_and_an_unoffered_route_is_not_an_error() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("HERALD_ADMIN_TOKEN", "hrld_cli_test_token_0123456789abcdef")
        .env("HERALD_LOG_FORMAT", "json")
        // tower-http's request logs included, so the answer logged at any level would show.
        .env(
            "HERALD_LOG",
            "debug,sqlx=warn,hyper=warn,h2=warn,reqwest=warn",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald serve starts");
    let lines = lines_of(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let api = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("herald logs its address");
        let object: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        seen.push(object.clone());
        if let Some(api) = object["api"].as_str() {
            break api.to_owned();
        }
    };
    let root = api.trim_end_matches("/api/v1");
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{api}/auth/whoami"))
        .bearer_auth("hrld_cli_test_token_0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    // `/` tells a client where things are, and sends a browser to the dashboard.
    let landing: serde_json::Value = client.get(root).send().await.unwrap().json().await.unwrap();
    assert_eq!(landing["openapi"], "/api/v1/openapi.json");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser
        .get(root)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["location"], "/ui");

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
    }
    assert!(
        seen.iter()
            .any(|l| l["message"] == "shutting down: no new work, finishing attempts in flight"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l["status"] == 404),
        "the answer is logged, at debug: {seen:?}"
    );
    let errors: Vec<_> = seen.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Runs `herald ARGS`; its exit code and stdout.
fn herald(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .expect("herald runs");
    let code = out.status.code().expect("an exit code");
    (code, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn sign_matches_the_svix_library_and_verify_names_the_check_that_fails() {
    let secret = EndpointSecret::generate().expose();
    let now = chrono::Utc::now().timestamp();
    let ts = now.to_string();
    let payload = r#"{"type":"contact.created","id":7}"#;
    let (code, signature) = herald(&[
        "sign",
        "--secret",
        &secret,
        "--id",
        "msg_1",
        "--timestamp",
        &ts,
        payload,
    ]);
    assert_eq!(code, 0);
    // The payload from standard input signs the same.
    let mut piped = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "sign",
            "--secret",
            &secret,
            "--id",
            "msg_1",
            "--timestamp",
            &ts,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut piped.stdin.take().unwrap(), payload.as_bytes()).unwrap();
    let out = piped.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), signature);
    let svix = svix::webhooks::Webhook::new(&secret).unwrap();
    let expected = svix.sign("msg_1", now, payload.as_bytes()).unwrap();
    assert_eq!(signature, expected, "the same signature as Svix's library");

    // A captured request, as a receiver would log it.
    let dir = tempfile::tempdir().unwrap();
    let captured = dir.path().join("request.http");
    let capture = |timestamp: &str, body: &str| {
        let text = format!(
            "POST /webhooks HTTP/1.1\r\ncontent-type: application/json\r\nwebhook-id: msg_1\r\n\
             webhook-timestamp: {timestamp}\r\nwebhook-signature: {signature}\r\n\r\n{body}"
        );
        std::fs::write(&captured, text).unwrap();
    };
    let file = captured.to_str().unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "--secret", &secret, "--headers-file", file];
        args.extend_from_slice(extra);
        herald(&args)
    };
    capture(&ts, payload);
    assert_eq!(verify(&[]), (0, "valid".to_owned()));
    capture(&ts, &payload.replace('7', "8"));
    assert_eq!(verify(&[]), (1, "signature_mismatch".to_owned()));

    // Ten minutes old: refused, unless the timestamp is not to be checked.
    let old = (now - 600).to_string();
    let (_, old_signature) = herald(&[
        "sign",
        "--secret",
        &secret,
        "--id",
        "msg_1",
        "--timestamp",
        &old,
        payload,
    ]);
    let text = format!(
        "webhook-id: msg_1\nwebhook-timestamp: {old}\nwebhook-signature: {old_signature}\n\n{payload}"
    );
    std::fs::write(&captured, text).unwrap();
    assert_eq!(verify(&[]), (1, "timestamp_out_of_tolerance".to_owned()));
    assert_eq!(verify(&["--ignore-timestamp"]), (0, "valid".to_owned()));

    // The same check given as flags, and a usage error (a malformed secret) exits 2.
    let flags = [
        "verify",
        "--secret",
        &secret,
        "--id",
        "msg_1",
        "--timestamp",
        &ts,
    ];
    let mut args = flags.to_vec();
    args.extend(["--signature", &signature, payload]);
    assert_eq!(herald(&args), (0, "valid".to_owned()));
    let (code, _) = herald(&["verify", "--secret", "not-a-secret", "--headers-file", file]);
    assert_eq!(code, 2);
}

#[test]
fn verify_checks_a_providers_scheme_as_inbound_sources_do() {
    // GitHub: `x-hub-signature-256: sha256=<hex HMAC of the body>`.
    let body = r#"{"zen":"Keep it logically awesome."}"#;
    let signature = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"It's a Secret to Everybody").unwrap();
        mac.update(body.as_bytes());
        let bytes = mac.finalize().into_bytes();
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let header = format!("X-Hub-Signature-256: sha256={signature}");
    let github = |payload: &str| {
        herald(&[
            "verify",
            "--scheme",
            "github",
            "--secret",
            "It's a Secret to Everybody",
            "-H",
            &header,
            payload,
        ])
    };
    assert_eq!(github(body), (0, "valid".to_owned()));
    assert_eq!(github("{}"), (1, "signature_mismatch".to_owned()));
}

/// `herald completions SHELL` prints a script that knows the subcommands and their flags.
#[test]
fn completions_know_the_subcommands_and_their_flags() {
    let (code, bash) = herald(&["completions", "bash"]);
    assert_eq!(code, 0);
    for word in [
        "serve",
        "listen",
        "send",
        "verify",
        "--allow-external",
        "--payload-filter",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let (code, zsh) = herald(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(
        zsh.starts_with("#compdef herald"),
        "{}",
        &zsh[..40.min(zsh.len())]
    );
    let (code, fish) = herald(&["completions", "fish"]);
    assert_eq!(code, 0);
    assert!(fish.contains("complete -c herald"));
    let (code, _) = herald(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error");
}

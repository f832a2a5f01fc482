//! The `herald` command as a user meets it: errors are one readable line, never a
//! backtrace, and `herald listen` verifies what an ed25519 endpoint signs with the public
//! key the API shows.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use herald_core::signing::EndpointSecret;

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
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
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

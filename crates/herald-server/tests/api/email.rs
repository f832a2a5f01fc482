//! Email destinations against a real SMTP server: aiosmtpd (`tests/support/smtp_sink.py`),
//! run with the Python named by `HERALD_TEST_SMTP_PYTHON` (`.ci/run` installs aiosmtpd).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_core::SystemClock;
use herald_server::config::{EmailConfig, SmtpSecurity};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::helpers::{TestHerald, DEADLINE};
use crate::services::{quick_retries, service};

/// A running SMTP sink and every message it has received.
struct SmtpSink {
    python: String,
    port: u16,
    child: Option<Child>,
    mail: Arc<Mutex<Vec<Value>>>,
    count: (watch::Sender<usize>, watch::Receiver<usize>),
}

impl SmtpSink {
    async fn start(python: &str) -> Self {
        let (tx, rx) = watch::channel(0);
        let mut sink = Self {
            python: python.to_owned(),
            port: 0,
            child: None,
            mail: Arc::default(),
            count: (tx, rx),
        };
        sink.run().await;
        sink
    }

    /// Starts the server on `self.port` (0: any) and reads what it prints.
    async fn run(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .arg(self.port.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP sink (is aiosmtpd installed?)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the SMTP sink starts")
            .unwrap()
            .expect("the SMTP sink prints its port");
        let ready: Value = serde_json::from_str(&first).unwrap();
        self.port = ready["port"].as_u64().unwrap() as u16;
        let (mail, count) = (self.mail.clone(), self.count.0.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                mail.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
                count.send_modify(|n| *n += 1);
            }
        });
        self.child = Some(child);
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Waits until `n` messages have arrived; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let mut rx = self.count.1.clone();
        let got = tokio::time::timeout(DEADLINE, rx.wait_for(|c| *c >= n))
            .await
            .is_ok();
        assert!(got, "expected {n} emails, got {}", *rx.borrow());
        self.mail.lock().unwrap().clone()
    }
}

async fn herald(sink: &SmtpSink) -> (TestHerald, String) {
    let port = sink.port;
    let h = TestHerald::start_with(Arc::new(SystemClock), move |config| {
        quick_retries(config);
        config.email = Some(EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(port),
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "Herald <herald@example.com>".into(),
            timeout: Duration::from_secs(3),
        });
    })
    .await;
    let app = h.app("mail").await;
    (h, app)
}

/// The value of a header line in a raw message.
fn header<'a>(data: &'a str, name: &str) -> &'a str {
    data.lines()
        .find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} header in {data}"))
}

#[tokio::test]
async fn email_reaches_every_recipient_with_the_templates_subject_and_parts() {
    let Some(python) = service("HERALD_TEST_SMTP_PYTHON") else {
        return;
    };
    let sink = SmtpSink::start(&python).await;
    let (h, app) = herald(&sink).await;
    let ep = h
        .endpoint(
            &app,
            json!({"url": "mailto:ops@example.com,cto@example.org"}),
        )
        .await;
    let template = json!({
        "subject": "Order {{ payload.order }} shipped",
        "body": "Order {{ payload.order }} is on its way to {{ payload.city }}.",
        "html": "<p>Order <b>{{ payload.order }}</b> to {{ payload.city }}</p>"
    });
    let path = format!(
        "/app/{app}/endpoint/{}/template",
        ep["id"].as_str().unwrap()
    );
    let (status, body) = h.call(reqwest::Method::PUT, &path, Some(template)).await;
    assert_eq!(status, 200, "{body}");

    let msg = h
        .publish(
            &app,
            json!({"eventType": "order.shipped", "payload": {"order": 7, "city": "Lyon & Co"}}),
        )
        .await;
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail["from"], "herald@example.com");
    assert_eq!(mail["to"], json!(["ops@example.com", "cto@example.org"]));
    let data = mail["data"].as_str().unwrap();
    assert_eq!(header(data, "Subject"), "Order 7 shipped");
    assert_eq!(header(data, "Webhook-Id"), msg);
    assert_eq!(header(data, "X-Event-Type"), "order.shipped");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(
        data.contains("Order 7 is on its way to Lyon & Co."),
        "{data}"
    );
    assert!(
        data.contains("<b>7</b> to Lyon &amp; Co"),
        "HTML escaped: {data}"
    );

    h.wait_recorded(1).await;
    let attempt = &h.attempts(&app, &msg).await[0];
    assert_eq!(attempt["status"], 0, "{attempt}");
    assert_eq!(attempt["responseStatusCode"], 250, "{attempt}");
    assert!(
        attempt["response"].as_str().unwrap().contains("queued"),
        "{attempt}"
    );
}

#[tokio::test]
async fn without_a_template_an_email_names_the_event_and_shows_the_payload() {
    let Some(python) = service("HERALD_TEST_SMTP_PYTHON") else {
        return;
    };
    let sink = SmtpSink::start(&python).await;
    let (h, app) = herald(&sink).await;
    h.endpoint(&app, json!({"url": "mailto:ops@example.com"}))
        .await;
    let msg = h
        .publish(
            &app,
            json!({"eventType": "contact.created", "payload": {"email": "a@b.c"}}),
        )
        .await;
    let mail = sink.wait_for(1).await.remove(0);
    let data = mail["data"].as_str().unwrap();
    assert_eq!(header(data, "Subject"), "contact.created");
    assert!(
        data.contains(&format!("Event contact.created ({msg})")),
        "{data}"
    );
    assert!(data.contains("\"email\": \"a@b.c\""), "{data}");
}

#[tokio::test]
async fn a_refused_recipient_fails_at_once_and_a_busy_server_is_tried_again() {
    let Some(python) = service("HERALD_TEST_SMTP_PYTHON") else {
        return;
    };
    let sink = SmtpSink::start(&python).await;
    let (h, app) = herald(&sink).await;
    let refused = h
        .endpoint(&app, json!({"url": "mailto:reject@example.com"}))
        .await;
    let busy = h
        .endpoint(&app, json!({"url": "mailto:flaky@example.com"}))
        .await;
    let msg = h
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    // The busy server's 451 is retried, and the message arrives.
    let mail = sink.wait_for(1).await;
    assert_eq!(mail[0]["to"], json!(["flaky@example.com"]));
    h.wait_recorded(3).await;
    let attempts = h.attempts(&app, &msg).await;
    let of = |ep: &Value| -> Vec<Value> {
        attempts
            .iter()
            .filter(|a| a["endpointId"] == ep["id"])
            .cloned()
            .collect()
    };
    let refused_attempts = of(&refused);
    assert_eq!(
        refused_attempts.len(),
        1,
        "5xx is final: {refused_attempts:?}"
    );
    assert_eq!(refused_attempts[0]["status"], 2);
    assert_eq!(refused_attempts[0]["responseStatusCode"], 550);
    assert_eq!(refused_attempts[0]["errorKind"], "rejected");
    let busy_attempts = of(&busy);
    assert_eq!(busy_attempts.len(), 2, "{busy_attempts:?}");
    // Newest first: the retry succeeded after the 451.
    assert_eq!(busy_attempts[0]["status"], 0);
    assert_eq!(busy_attempts[1]["responseStatusCode"], 451);
}

#[tokio::test]
async fn email_published_while_the_smtp_server_is_down_arrives_once_it_is_back() {
    let Some(python) = service("HERALD_TEST_SMTP_PYTHON") else {
        return;
    };
    let mut sink = SmtpSink::start(&python).await;
    let (h, app) = herald(&sink).await;
    h.endpoint(&app, json!({"url": "mailto:ops@example.com"}))
        .await;
    sink.stop().await;
    let msg = h
        .publish(&app, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    h.wait_recorded(1).await;
    let attempts = h.attempts(&app, &msg).await;
    assert_eq!(attempts[0]["status"], 2, "failed while down: {attempts:?}");
    sink.run().await;
    let mail = sink.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(header(mail[0]["data"].as_str().unwrap(), "Webhook-Id"), msg);
}

//! TLS settings of endpoints: a receiver that demands a client certificate gets the one
//! the endpoint carries (mutual TLS); an endpoint trusts its own CA for its server and
//! checks pins on the server's public key. Every certificate is made fresh by a test CA.

use std::sync::Arc;

use herald_core::SystemClock;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use reqwest::StatusCode;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::{TestHerald, DEADLINE};

/// A certificate authority and what it signed, made fresh for one test.
struct TestPki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
    ca_cert: CertificateDer<'static>,
    /// The client's certificate and key, PEM, as an endpoint carries them.
    client_pem: String,
    client_cert: CertificateDer<'static>,
    /// The server key's SubjectPublicKeyInfo, DER: what a pin is the digest of.
    server_spki: Vec<u8>,
}

fn pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Herald test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "herald-client");
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        ca_cert: ca.der().clone(),
        server_cert: server.der().clone(),
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
        client_cert: client.der().clone(),
        server_spki: server_key.public_key_der(),
    }
}

/// An HTTPS receiver on port 0 with a certificate from the CA; with `demand_client_cert`
/// it refuses clients without one from the CA too. Sends the certificate each request came
/// with (empty without one).
async fn tls_receiver(
    pki: &TestPki,
    demand_client_cert: bool,
) -> (String, mpsc::UnboundedReceiver<Vec<u8>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_cert.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match demand_client_cert {
        true => builder.with_client_cert_verifier(verifier),
        false => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                // A client without a certificate fails here, and is never served.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let presented = tls.get_ref().1.peer_certificates().unwrap_or_default();
                let presented = presented.first().map(|c| c.to_vec()).unwrap_or_default();
                let service = service_fn(move |_req| {
                    let _ = tx.send(presented.clone());
                    async { Ok::<_, hyper::Error>(hyper::Response::new(String::from("ok"))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn an_endpoint_presents_its_client_certificate_to_a_receiver_that_demands_one() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let herald = TestHerald::start_with(Arc::new(SystemClock), |c| {
        c.delivery.extra_root_certificates = vec![ca_file];
    })
    .await;
    let app = herald.app("acme").await;
    let (url, mut requests) = tls_receiver(&pki, true).await;

    let (status, refused) = herald
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": url, "clientCertificate": "not a certificate"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["detail"][0]["loc"],
        json!(["body", "clientCertificate"])
    );

    herald.event_type("a").await;
    let with_cert = herald
        .endpoint(
            &app,
            json!({"url": url, "clientCertificate": pki.client_pem, "filterTypes": ["a"]}),
        )
        .await;
    assert_eq!(with_cert["hasClientCertificate"], true);
    assert!(
        !with_cert.to_string().contains("PRIVATE KEY"),
        "never shown back"
    );
    herald.event_type("b").await;
    let without = herald
        .endpoint(&app, json!({"url": url, "filterTypes": ["b"]}))
        .await;

    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let presented = tokio::time::timeout(DEADLINE, requests.recv())
        .await
        .expect("the receiver was reached")
        .unwrap();
    assert_eq!(
        presented,
        pki.client_cert.to_vec(),
        "the endpoint's certificate"
    );
    herald.wait_recorded(1).await;
    assert_eq!(herald.attempts(&app, &msg).await[0]["status"], 0);

    // Without a certificate the receiver refuses the connection: a failed attempt.
    let refused_msg = herald
        .publish(&app, json!({"eventType": "b", "payload": {}}))
        .await;
    herald.wait_recorded(2).await;
    let attempt = &herald.attempts(&app, &refused_msg).await[0];
    assert_eq!(attempt["status"], 2, "{attempt}");
    assert_eq!(attempt["endpointId"], without["id"]);
    assert_eq!(
        attempt["errorKind"], "tls",
        "a TLS failure, named so: {attempt}"
    );
    assert!(requests.try_recv().is_err(), "nothing was served to it");
}

#[tokio::test]
async fn an_endpoint_trusts_its_own_ca_and_checks_its_server_key_pins() {
    let pki = pki();
    // The server trusts no extra root: the test CA is known only to the endpoints told so.
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let (url, mut requests) = tls_receiver(&pki, false).await;
    let pin = herald_core::endpoint_auth::KeyPin::of_spki(&pki.server_spki).to_string();
    let other_pin = herald_core::endpoint_auth::KeyPin::of_spki(b"another key").to_string();

    let cases = [
        ("plain", json!({})),
        ("own-ca", json!({"serverCaCertificate": pki.ca_pem})),
        (
            "pinned",
            json!({"serverCaCertificate": pki.ca_pem, "publicKeyPins": [other_pin, pin]}),
        ),
        (
            "mispinned",
            json!({"serverCaCertificate": pki.ca_pem, "publicKeyPins": [other_pin]}),
        ),
    ];
    let mut msgs = Vec::new();
    for (name, settings) in &cases {
        herald.event_type(name).await;
        let mut body = settings.clone();
        body["url"] = json!(url);
        body["filterTypes"] = json!([name]);
        let endpoint = herald.endpoint(&app, body).await;
        if let Some(pins) = settings.get("publicKeyPins") {
            assert_eq!(&endpoint["publicKeyPins"], pins, "shown as given");
        }
        let msg = herald
            .publish(&app, json!({"eventType": name, "payload": {}}))
            .await;
        msgs.push(msg);
    }
    herald.wait_recorded(4).await;
    let outcome = |attempt: &serde_json::Value| {
        let kind = attempt["errorKind"].as_str().unwrap_or("none").to_owned();
        (attempt["status"].as_i64().unwrap(), kind)
    };
    let mut details = Vec::new();
    let mut outcomes = Vec::new();
    for msg in &msgs {
        let attempt = herald.attempts(&app, msg).await[0].clone();
        outcomes.push(outcome(&attempt));
        details.push(
            attempt["errorDetail"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(
        outcomes,
        [
            (2, "tls".to_owned()),
            (0, "none".to_owned()),
            (0, "none".to_owned()),
            (2, "tls".to_owned())
        ],
        "{details:?}"
    );
    assert!(details[3].contains("pins"), "names the pin: {}", details[3]);
    let served = [requests.recv().await, requests.recv().await];
    assert!(served.iter().all(Option::is_some));
    assert!(
        requests.try_recv().is_err(),
        "only the two trusting endpoints were served"
    );
}

#[tokio::test]
async fn tls_settings_are_checked_and_set_through_the_svix_mtls_route() {
    let pki = pki();
    let herald = TestHerald::start().await;
    let app = herald.app("acme").await;
    let (url, _requests) = tls_receiver(&pki, true).await;

    for (field, value) in [
        ("serverCaCertificate", json!("not a certificate")),
        ("publicKeyPins", json!(["sha256/AAAA"])),
    ] {
        let (status, answer) = herald
            .post(
                &format!("/app/{app}/endpoint"),
                json!({"url": url, field: value}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", field]),
            "{answer}"
        );
    }

    let endpoint = herald.endpoint(&app, json!({"url": url})).await;
    let path = format!(
        "/app/{app}/endpoint/{}/mtls",
        endpoint["id"].as_str().unwrap()
    );
    let (status, _) = herald.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "none yet");
    let (status, answer) = herald
        .call(
            reqwest::Method::PUT,
            &path,
            Some(json!({"identity": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "identity"]));

    let body = json!({"identity": pki.client_pem, "serverCaCert": pki.ca_pem});
    let (status, _) = herald.call(reqwest::Method::PUT, &path, Some(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, shown) = herald.get(&path).await;
    assert_eq!(
        shown,
        json!({"serverCaCert": pki.ca_pem}),
        "the key is never shown"
    );

    // Delivered with both: the receiver demands the certificate, the CA vouches for it.
    let msg = herald
        .publish(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    herald.wait_recorded(1).await;
    assert_eq!(herald.attempts(&app, &msg).await[0]["status"], 0);

    let (status, _) = herald.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = herald
        .get(&format!(
            "/app/{app}/endpoint/{}",
            endpoint["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        after.get("hasClientCertificate").is_none() && after.get("serverCaCertificate").is_none(),
        "{after}"
    );
}

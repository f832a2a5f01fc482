//! Mutual TLS to endpoints: a receiver that demands a client certificate gets the one the
//! endpoint carries, signed by a test CA that Herald is told to trust.

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
    }
}

/// An HTTPS receiver on port 0 that refuses clients without a certificate from the CA;
/// sends the certificate each request came with.
async fn tls_receiver(pki: &TestPki) -> (String, mpsc::UnboundedReceiver<Vec<u8>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_cert.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
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
    let (url, mut requests) = tls_receiver(&pki).await;

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

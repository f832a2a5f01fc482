//! The TLS settings of one endpoint's connections, when it has any of its own: a client
//! certificate to present (mutual TLS), certificate authorities to trust for its server
//! instead of the usual roots, and pins on its server's public key.
//!
//! They are built here as one rustls configuration (the crypto provider reqwest uses,
//! ring) and handed to reqwest whole, since a pin can only be checked by a certificate
//! verifier of our own.

use std::sync::Arc;

use herald_core::endpoint_auth::KeyPin;
use herald_core::model::{ClientIdentity, Endpoint};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore};
use sha2::{Digest, Sha256};

/// What an endpoint asks of its TLS connections beyond the server's defaults.
pub struct EndpointTls<'a> {
    identity: Option<&'a ClientIdentity>,
    server_ca: Option<&'a str>,
    pins: &'a [KeyPin],
}

impl<'a> EndpointTls<'a> {
    /// The endpoint's own TLS settings; `None` when it has none and the shared client
    /// serves it.
    pub fn of(endpoint: &'a Endpoint) -> Option<Self> {
        let tls = Self {
            identity: endpoint.client_identity.as_ref(),
            server_ca: endpoint.server_ca.as_deref(),
            pins: &endpoint.key_pins,
        };
        (tls.identity.is_some() || tls.server_ca.is_some() || !tls.pins.is_empty()).then_some(tls)
    }

    /// A digest of the settings, naming the client built from them in a cache.
    pub fn cache_key(&self) -> [u8; 32] {
        // Each part tagged and length-prefixed, so no two settings share a key (the cache
        // serves every tenant).
        let mut digest = Sha256::new();
        for (tag, part) in [
            (b'i', self.identity.map(|i| i.0.as_str())),
            (b'c', self.server_ca),
        ] {
            if let Some(text) = part {
                digest.update([tag]);
                digest.update((text.len() as u64).to_be_bytes());
                digest.update(text);
            }
        }
        digest.update([b'p']);
        digest.update((self.pins.len() as u64).to_be_bytes());
        for pin in self.pins {
            digest.update(pin.0);
        }
        digest.finalize().into()
    }

    /// The rustls configuration of these settings; `default_roots` are trusted unless
    /// the endpoint names its own authorities. The error is shown in the attempt log.
    pub fn client_config(
        &self,
        default_roots: &RootCertStore,
    ) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match self.server_ca {
            Some(pem) => Arc::new(server_ca_roots(pem)?),
            None => Arc::new(default_roots.clone()),
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("the endpoint's server CA is unusable: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match self.pins {
            [] => webpki,
            pins => Arc::new(PinnedKeys {
                chain: webpki,
                pins: pins.to_vec(),
            }),
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some(identity) => {
                let (chain, key) = client_identity(identity)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the endpoint's client certificate is unusable: {e}"))
            }
        }
    }
}

/// The certificate chain and private key of a PEM client identity.
pub fn client_identity(
    identity: &ClientIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let pem = identity.0.as_bytes();
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the client certificate's PEM is unreadable: {e}"))?;
    if chain.is_empty() {
        return Err("the client certificate text holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(pem)
        .map_err(|_| "the client certificate text holds no private key".to_owned())?;
    Ok((chain, key))
}

/// Trust anchors made of the PEM certificates in `pem`: at least one, all usable.
pub fn server_ca_roots(pem: &str) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the server CA's PEM is unreadable: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    let mut roots = RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(certs);
    if unusable > 0 {
        return Err(format!(
            "{unusable} of its certificates cannot be used as a trust anchor"
        ));
    }
    Ok(roots)
}

/// Verifies the chain as usual, then requires the server's public key to be pinned.
#[derive(Debug)]
struct PinnedKeys {
    chain: Arc<WebPkiServerVerifier>,
    pins: Vec<KeyPin>,
}

/// The error of a server whose key no pin names.
#[derive(thiserror::Error)]
#[error("the server's public key {0} matches none of the endpoint's pins")]
struct PinMismatch(KeyPin);

/// rustls shows a verifier's own error with `Debug` in the attempt log: the sentence.
impl std::fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl ServerCertVerifier for PinnedKeys {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let pin = KeyPin::of_spki(cert.subject_public_key_info().as_ref());
        if self.pins.contains(&pin) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = OtherError(Arc::new(PinMismatch(pin)));
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            mismatch,
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The roots every connection trusts by default: the public ones (as reqwest's own
/// configuration has them) and the operator's extra ones.
pub fn default_roots(extra: &[CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(extra.iter().cloned());
    roots
}

//! TLS for the HTTP primitive (rustls with ring). keepalived's SSL_GET does
//! not verify certificates by default; with `verify` the system roots (or
//! a CA file) are used. SNI goes out only for a DNS name.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::PrimError;

/// Accepts any certificate, but still checks that the server holds its key.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, PrimError> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(p) => {
            let certs = CertificateDer::pem_file_iter(p)
                .map_err(|e| PrimError::Msg(format!("ca_file {}: {e}", p.display())))?;
            for c in certs {
                let c = c.map_err(|e| PrimError::Msg(format!("ca_file {}: {e}", p.display())))?;
                store
                    .add(c)
                    .map_err(|e| PrimError::Msg(format!("ca_file {}: {e}", p.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (_ok, _bad) = store.add_parsable_certificates(found.certs);
        }
    }
    Ok(store)
}

pub struct Tls {
    pub sni: Option<String>,
    pub verify: bool,
    pub ca_file: Option<std::path::PathBuf>,
}

pub fn connector(t: &Tls) -> Result<TlsConnector, PrimError> {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PrimError::Msg(format!("tls: {e}")))?;
    let cfg = if t.verify {
        builder
            .with_root_certificates(roots(t.ca_file.as_deref())?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth()
    };
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// The name the handshake uses: the SNI name when it is a DNS name, else
/// the address (rustls then sends no SNI).
pub fn server_name(t: &Tls, ip: IpAddr) -> Result<ServerName<'static>, PrimError> {
    match &t.sni {
        Some(n) if n.parse::<IpAddr>().is_err() => ServerName::try_from(n.clone())
            .map_err(|e| PrimError::Msg(format!("tls: server name {n:?}: {e}"))),
        _ => Ok(ServerName::IpAddress(ip.into())),
    }
}

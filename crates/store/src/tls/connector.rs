//! The rustls side of a connection: the roots and client certificate
//! read from their files, and a verifier that checks the server's
//! certificate as much as the `sslmode` asks, saying why when it refuses.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Plan, Roots, SslMode};

/// The rustls connector for `plan`, its files read.
pub(super) fn connector(plan: &Plan) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match &plan.roots {
        Roots::Unchecked => None,
        Roots::File(path) => Some(file_roots(path)?),
        Roots::System => Some(system_roots()?),
    };
    let verifier = PeerVerifier {
        mode: plan.mode,
        roots: roots.map(Arc::new),
        check_name: plan.check_name,
        algorithms: provider.signature_verification_algorithms,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS setup: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match &plan.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert, "sslcert")?;
            let key = private_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| format!("sslcert and sslkey do not make a pair: {error}"))?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The certificates of the PEM file at `path` (parameter `what`).
fn certificates(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|error| format!("cannot read {what} {path}: {error}"))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{what} {path} is not PEM: {error}"))?;
    if certificates.is_empty() {
        return Err(format!("{what} {path} holds no certificate"));
    }
    Ok(certificates)
}

/// The CAs of the PEM file `sslrootcert` names.
fn file_roots(path: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path, "sslrootcert")? {
        roots
            .add(certificate)
            .map_err(|error| format!("sslrootcert {path}: {error}"))?;
    }
    Ok(roots)
}

/// The system's trusted roots (`SSL_CERT_FILE` and `SSL_CERT_DIR` are
/// honoured, as OpenSSL does).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(format!(
            "sslrootcert=system: no trusted root certificates on this system ({why})"
        ));
    }
    Ok(roots)
}

/// The private key of the PEM file `sslkey` names (PKCS#8, PKCS#1 or
/// SEC1). Its content never appears in a message.
fn private_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|error| format!("cannot read sslkey {path}: {error}"))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        format!("sslkey {path} holds no PEM private key (encrypted keys are not supported)")
    })
}

/// Checks the server's certificate as the `sslmode` asks: not at all, its
/// chain, or its chain and its names. Failures say so in words an operator
/// can act on.
#[derive(Debug)]
struct PeerVerifier {
    mode: SslMode,
    /// `None`: the certificate is not checked.
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let refused = |error| self.refused(error);
        let certificate = ParsedCertificate::try_from(end_entity).map_err(refused)?;
        verify_server_cert_signed_by_trust_anchor(
            &certificate,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )
        .map_err(refused)?;
        if self.check_name {
            verify_server_name(&certificate, server_name).map_err(refused)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl PeerVerifier {
    /// `error` worded to say which check failed under which `sslmode`
    /// (rustls prints some certificate errors only as their debug names).
    fn refused(&self, error: rustls::Error) -> rustls::Error {
        rustls::Error::Other(OtherError(Arc::new(VerificationFailed {
            mode: self.mode,
            reason: error,
        })))
    }
}

/// Why the server's certificate was refused.
#[derive(Debug)]
struct VerificationFailed {
    mode: SslMode,
    reason: rustls::Error,
}

impl fmt::Display for VerificationFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate verification failed (sslmode={}): ",
            self.mode
        )?;
        match &self.reason {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                f.write_str("the server's certificate is not signed by a CA of sslrootcert")
            }
            rustls::Error::InvalidCertificate(reason) => write!(f, "{reason}"),
            reason => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for VerificationFailed {}

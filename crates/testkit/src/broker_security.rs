//! What a secured test broker asks of clients ([`Broker::start_secured`]):
//! TLS with a test CA's certificate, and SASL/SCRAM logins of users made
//! beforehand. Certificates are made in process (rcgen), with the helpers
//! of the TLS PostgreSQL cluster.
//!
//! [`Broker::start_secured`]: crate::Broker::start_secured

use std::path::{Path, PathBuf};

use rcgen::ExtendedKeyUsagePurpose;

use crate::pg_tls::{SERVER_NAMES, authority, leaf, write};

/// A SCRAM mechanism, as the broker stores a user's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scram {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Scram {
    /// The name `nisshi user create --mechanism` takes.
    pub(crate) fn nisshi_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram256",
            Scram::Sha512 => "scram512",
        }
    }
}

/// A user that may log in to a secured broker with SASL/SCRAM.
#[derive(Debug, Clone)]
pub struct BrokerUser {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
    /// The mechanism its credential is stored for.
    pub mechanism: Scram,
}

/// What a secured broker asks of its clients.
#[derive(Debug, Clone, Default)]
pub struct BrokerSecurity {
    /// TLS only, with a certificate for 127.0.0.1 and localhost signed by
    /// a test CA ([`BrokerTls`]).
    pub tls: bool,
    /// When not empty, a SASL login (SCRAM) as one of these users before
    /// any other request.
    pub users: Vec<BrokerUser>,
}

/// The certificates of a broker started with TLS, as PEM files the test
/// process can read.
#[derive(Debug, Clone)]
pub struct BrokerTls {
    /// The CA that signed the broker's certificate: the `ssl.ca.location`
    /// clients verify it with.
    pub ca_cert: PathBuf,
    /// A CA that signed nothing of this broker: verification with it must
    /// fail.
    pub foreign_ca_cert: PathBuf,
    /// A client certificate signed by the CA (the broker does not ask for
    /// one; clients may present it all the same).
    pub client_cert: PathBuf,
    /// The client certificate's private key (PKCS#8).
    pub client_key: PathBuf,
    /// The broker's certificate chain.
    pub(crate) server_cert: PathBuf,
    /// The broker's private key.
    pub(crate) server_key: PathBuf,
}

/// Makes the CA, the broker's and a client's certificates, and a foreign
/// CA, and writes them under `dir`.
pub(crate) fn certificates(dir: &Path) -> anyhow::Result<BrokerTls> {
    let (ca, ca_key) = authority("Panorama broker test CA")?;
    let (foreign, _) = authority("Panorama foreign broker test CA")?;
    let (server, server_key) = leaf(
        SERVER_NAMES.iter().map(|name| (*name).to_owned()).collect(),
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
        &ca_key,
    )?;
    let (client, client_key) = leaf(
        Vec::new(),
        "panorama",
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
        &ca_key,
    )?;
    let tls = BrokerTls {
        ca_cert: dir.join("ca.crt"),
        foreign_ca_cert: dir.join("foreign.crt"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    write(&tls.ca_cert, &ca.pem(), 0o644)?;
    write(&tls.foreign_ca_cert, &foreign.pem(), 0o644)?;
    write(&tls.client_cert, &client.pem(), 0o644)?;
    write(&tls.client_key, &client_key.serialize_pem(), 0o600)?;
    write(&tls.server_cert, &server.pem(), 0o644)?;
    write(&tls.server_key, &server_key.serialize_pem(), 0o600)?;
    Ok(tls)
}

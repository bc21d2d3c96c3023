//! TLS for a private PostgreSQL cluster ([`PgCluster::with_tls`]): a test
//! CA, a server certificate for 127.0.0.1 and localhost, a client
//! certificate, and a pg_hba.conf that refuses every connection over TCP
//! without TLS. Certificates are made in process (rcgen), no openssl binary.
//!
//! [`PgCluster::with_tls`]: crate::PgCluster::with_tls

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::util::run;

/// The role that may log in only with the client certificate of
/// [`PgTls::client_cert`] (`cert` authentication: the certificate's common
/// name is the role's name).
pub const CLIENT_CERT_USER: &str = "panorama_cert";

/// The names the server's certificate is valid for.
pub const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// The certificates of a cluster started with TLS, as PEM files the test
/// process can read.
#[derive(Debug, Clone)]
pub struct PgTls {
    /// The CA that signed the server's and the client's certificates: the
    /// `sslrootcert` that `verify-ca` and `verify-full` accept.
    pub root_cert: PathBuf,
    /// A CA that signed nothing of this cluster: an `sslrootcert` that
    /// verification must refuse.
    pub foreign_root_cert: PathBuf,
    /// A client certificate for [`CLIENT_CERT_USER`], signed by the CA.
    pub client_cert: PathBuf,
    /// The client certificate's private key (PKCS#8).
    pub client_key: PathBuf,
}

/// Who may connect how: TLS (`hostssl`) on every TCP connection, trust
/// for everyone but [`CLIENT_CERT_USER`], who needs a client certificate;
/// the unix socket stays open for the server's own tools.
fn pg_hba() -> String {
    format!(
        "# Written by the Panorama test kit: TCP connections must use TLS.\n\
         local   all all trust\n\
         hostssl all {CLIENT_CERT_USER} 127.0.0.1/32 cert\n\
         hostssl all {CLIENT_CERT_USER} ::1/128 cert\n\
         hostssl all all 127.0.0.1/32 trust\n\
         hostssl all all ::1/128 trust\n"
    )
}

/// The server settings (`-c` options) of a TLS cluster; the certificate
/// and key are the data dir's `server.crt` and `server.key`, PostgreSQL's
/// defaults.
pub(crate) const SERVER_OPTIONS: &str = "-c ssl=on -c ssl_ca_file=root.crt";

/// Makes the certificates, writes the server's into `data_dir` (owned by
/// the `postgres` user when `as_postgres`, the key readable by it alone)
/// and the client's into `client_dir`, and replaces the cluster's
/// pg_hba.conf.
pub(crate) fn install(
    data_dir: &Path,
    client_dir: &Path,
    as_postgres: bool,
) -> anyhow::Result<PgTls> {
    let (ca, ca_key) = authority("Panorama test CA")?;
    let (foreign, _) = authority("Panorama foreign test CA")?;
    let (server, server_key) = leaf(
        SERVER_NAMES.iter().map(|name| (*name).to_owned()).collect(),
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
        &ca_key,
    )?;
    let (client, client_key) = leaf(
        Vec::new(),
        CLIENT_CERT_USER,
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
        &ca_key,
    )?;

    let server_files = [
        ("server.crt", server.pem(), 0o644),
        ("server.key", server_key.serialize_pem(), 0o600),
        ("root.crt", ca.pem(), 0o644),
    ];
    for (name, pem, mode) in &server_files {
        write(&data_dir.join(name), pem, *mode)?;
    }
    write(&data_dir.join("pg_hba.conf"), &pg_hba(), 0o600)?;
    if as_postgres {
        let mut chown = Command::new("chown");
        chown.arg("postgres:");
        for (name, ..) in &server_files {
            chown.arg(data_dir.join(name));
        }
        run(
            &mut chown,
            "giving the server's certificate and key to the postgres user",
        )?;
    }

    fs::create_dir_all(client_dir).with_context(|| format!("creating {}", client_dir.display()))?;
    let tls = PgTls {
        root_cert: client_dir.join("root.crt"),
        foreign_root_cert: client_dir.join("foreign.crt"),
        client_cert: client_dir.join("client.crt"),
        client_key: client_dir.join("client.key"),
    };
    write(&tls.root_cert, &ca.pem(), 0o644)?;
    write(&tls.foreign_root_cert, &foreign.pem(), 0o644)?;
    write(&tls.client_cert, &client.pem(), 0o644)?;
    write(&tls.client_key, &client_key.serialize_pem(), 0o600)?;
    Ok(tls)
}

/// A self-signed CA named `name`.
pub(crate) fn authority(name: &str) -> anyhow::Result<(Certificate, KeyPair)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().context("generating a CA key")?;
    let certificate = params.self_signed(&key).context("signing the test CA")?;
    Ok((certificate, key))
}

/// A certificate for `names` (IP addresses or DNS names) and common name
/// `common_name`, for `purpose`, signed by the CA.
pub(crate) fn leaf(
    names: Vec<String>,
    common_name: &str,
    purpose: ExtendedKeyUsagePurpose,
    ca: &Certificate,
    ca_key: &KeyPair,
) -> anyhow::Result<(Certificate, KeyPair)> {
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    let key = KeyPair::generate().context("generating a key")?;
    let certificate = params
        .signed_by(&key, ca, ca_key)
        .with_context(|| format!("signing the certificate of {common_name}"))?;
    Ok((certificate, key))
}

/// Writes `text` to `path` with permissions `mode`.
pub(crate) fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

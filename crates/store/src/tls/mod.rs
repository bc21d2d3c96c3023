//! TLS to PostgreSQL as libpq's connection parameters ask for it:
//! `sslmode`, `sslrootcert`, `sslcert` and `sslkey`, read from the database
//! URL in either of its forms (`postgres://...?sslmode=verify-full` or
//! `host=... sslmode=verify-full`), with rustls (ring) underneath.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and none of
//! the certificate parameters, so they are taken out of the URL here and
//! the rest goes to its parser (`params.rs`); `connector.rs` builds the
//! rustls side. No message here repeats the URL: it may hold a password.

mod connector;
mod params;

use std::fmt;
use std::str::FromStr as _;

use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Error, Result, Store};
use params::TlsParams;

/// libpq's `sslmode`: whether to use TLS, and how much of the server's
/// certificate to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, plaintext otherwise (as `prefer`:
    /// tokio-postgres has no plaintext-first attempt).
    Allow,
    /// TLS when the server offers it, plaintext otherwise; the default.
    Prefer,
    /// TLS or no connection; the certificate is not checked unless
    /// `sslrootcert` names a CA file, as libpq does.
    Require,
    /// TLS, and the server's certificate must chain to a CA of
    /// `sslrootcert`; its names are not checked.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Every mode, weakest first.
    pub const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The mode as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The mode libpq spells `text`.
    pub fn parse(text: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|mode| mode.as_str() == text)
    }

    /// What tokio-postgres is told: whether TLS is tried, and whether it is
    /// required.
    fn wire(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `sslrootcert`'s value that asks for the system's trusted roots.
const SYSTEM_ROOTS: &str = "system";

/// Whose certificates the server's must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// Nobody's: the certificate is not checked.
    Unchecked,
    /// The CAs in this PEM file.
    File(String),
    /// The system's trusted roots (`sslrootcert=system`).
    System,
}

/// What the connector does, resolved from the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    mode: SslMode,
    roots: Roots,
    /// Whether the certificate must name the host.
    check_name: bool,
    /// The client certificate and its key (PEM files).
    client: Option<(String, String)>,
}

impl Plan {
    /// libpq's rules: `verify-*` needs roots; a CA file makes `require`
    /// (and `prefer`) check the chain; `sslrootcert=system` defaults to,
    /// and allows only, `verify-full`.
    fn resolve(params: &TlsParams) -> Result<Plan, String> {
        let roots = match params.root_cert.as_deref() {
            None => Roots::Unchecked,
            Some(SYSTEM_ROOTS) => Roots::System,
            Some(path) => Roots::File(path.to_owned()),
        };
        let mode = params.mode.unwrap_or(if roots == Roots::System {
            SslMode::VerifyFull
        } else {
            SslMode::Prefer
        });
        if roots == Roots::System && mode != SslMode::VerifyFull {
            return Err(format!(
                "sslmode {mode} may not be used with sslrootcert=system (use verify-full)"
            ));
        }
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && roots == Roots::Unchecked {
            return Err(format!(
                "sslmode {mode} needs sslrootcert: the path of the CA certificate file, or \
                 `system` for the system's trusted roots"
            ));
        }
        let client = match (&params.cert, &params.key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => return Err("sslcert and sslkey go together: give both or neither".to_owned()),
        };
        if mode == SslMode::Disable {
            return Ok(Plan {
                mode,
                roots: Roots::Unchecked,
                check_name: false,
                client: None,
            });
        }
        Ok(Plan {
            mode,
            roots,
            check_name: mode == SslMode::VerifyFull,
            client,
        })
    }
}

/// How a connection of the pool reaches the server, as the server sees it
/// (`pg_stat_ssl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// Whether the connection is encrypted.
    pub tls: bool,
    /// The TLS version (`TLSv1.3`), when encrypted.
    pub version: Option<String>,
    /// The cipher, when encrypted.
    pub cipher: Option<String>,
}

impl Store {
    /// How a connection of the pool reaches the server: for operators
    /// checking that `sslmode` took effect, and for tests.
    #[tracing::instrument(skip(self))]
    pub async fn transport(&self) -> Result<Transport> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(Transport {
            tls: row.get(0),
            version: row.get(1),
            cipher: row.get(2),
        })
    }
}

/// Checks the TLS parameters of `url` (their values and how they combine)
/// without reading any file or parsing the rest of the URL: for settings
/// checked as they are read.
///
/// # Errors
///
/// [`Error::Config`] saying which parameter is wrong.
pub fn check_database_url(url: &str) -> Result<()> {
    let (_, params) = params::split(url).map_err(Error::Config)?;
    Plan::resolve(&params).map_err(Error::Config)?;
    Ok(())
}

/// The tokio-postgres configuration of `url` and the TLS connector its
/// parameters ask for (certificate files read now).
pub(crate) fn configure(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let (rest, params) = params::split(url).map_err(Error::Config)?;
    let plan = Plan::resolve(&params).map_err(Error::Config)?;
    let mut config = tokio_postgres::Config::from_str(&rest)
        .map_err(|error| Error::Config(crate::describe(&error)))?;
    config.ssl_mode(plan.mode.wire());
    let connector = connector::connector(&plan).map_err(Error::Config)?;
    Ok((config, connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_params(url: &str) -> TlsParams {
        params::split(url).expect("splits").1
    }

    #[test]
    fn an_unknown_sslmode_is_named_and_the_password_is_not() {
        for url in [
            "postgres://u:hunter2@h/db?sslmode=verify-ful",
            "host=h password=hunter2 sslmode=verify-ful",
        ] {
            let error = check_database_url(url).expect_err("refused").to_string();
            assert!(error.contains("sslmode \"verify-ful\""), "{error}");
            assert!(error.contains("verify-full"), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn libpq_rules_for_modes_and_roots() {
        let plan = |url| Plan::resolve(&tls_params(url));
        assert_eq!(plan("postgres://h/db").expect("plan").mode, SslMode::Prefer);
        assert_eq!(
            plan("postgres://h/db").expect("plan").roots,
            Roots::Unchecked
        );
        let verify = plan("postgres://h/db?sslmode=verify-ca&sslrootcert=ca.pem").expect("plan");
        assert_eq!(verify.roots, Roots::File("ca.pem".into()));
        assert!(!verify.check_name);
        assert!(
            plan("postgres://h/db?sslmode=verify-full&sslrootcert=ca.pem")
                .expect("plan")
                .check_name
        );
        // A CA file makes `require` check the chain, as in libpq.
        let require = plan("postgres://h/db?sslmode=require&sslrootcert=ca.pem").expect("plan");
        assert_eq!(require.roots, Roots::File("ca.pem".into()));
        assert!(!require.check_name);
        assert_eq!(
            plan("postgres://h/db?sslrootcert=system")
                .expect("plan")
                .mode,
            SslMode::VerifyFull
        );
        let weak = plan("postgres://h/db?sslmode=require&sslrootcert=system").expect_err("weak");
        assert!(weak.contains("use verify-full"), "{weak}");
        let rootless = plan("postgres://h/db?sslmode=verify-full").expect_err("no roots");
        assert!(rootless.contains("needs sslrootcert"), "{rootless}");
        let lonely = plan("postgres://h/db?sslcert=c.pem").expect_err("no key");
        assert!(lonely.contains("sslkey"), "{lonely}");
        let off = plan("postgres://h/db?sslmode=disable&sslrootcert=ca.pem").expect("plan");
        assert_eq!(off.roots, Roots::Unchecked);
    }

    #[test]
    fn wire_modes() {
        use tokio_postgres::config::SslMode as Wire;
        assert_eq!(SslMode::Disable.wire(), Wire::Disable);
        assert_eq!(SslMode::Allow.wire(), Wire::Prefer);
        assert_eq!(SslMode::Prefer.wire(), Wire::Prefer);
        assert_eq!(SslMode::Require.wire(), Wire::Require);
        assert_eq!(SslMode::VerifyCa.wire(), Wire::Require);
        assert_eq!(SslMode::VerifyFull.wire(), Wire::Require);
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let Err(error) =
            configure("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        else {
            panic!("a missing sslrootcert was accepted");
        };
        let error = error.to_string();
        assert!(
            error.contains("cannot read sslrootcert /nonexistent/ca.pem"),
            "{error}"
        );
    }

    #[test]
    fn other_tls_parameters_are_refused_by_name() {
        let Err(error) = configure("postgres://u:hunter2@h/db?sslmode=require&sslcrl=crl.pem")
        else {
            panic!("sslcrl was accepted");
        };
        let error = error.to_string();
        assert!(error.contains("unknown option `sslcrl`"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn the_configuration_carries_the_mode() {
        let (config, _) = configure("postgres://u@h/db?sslmode=require").expect("configures");
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let (config, _) = configure("host=h user=u sslmode=disable").expect("configures");
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        let (config, _) = configure("postgres://u@h/db").expect("configures");
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
    }
}

//! Where the brokers are and how to reach them safely: TLS and SASL,
//! applied by one function to every client (producer, consumer, admin and
//! metadata), so no client can connect differently from the others.

use std::fmt;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

use crate::{Error, Result};

/// A password or client secret: `Debug` shows `********`, so a logged
/// setting never carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the client configuration.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// The brokers' addresses and how to talk to them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// `host:port[,host:port]`.
    pub brokers: String,
    /// TLS and SASL; the default is plaintext without authentication.
    pub security: Security,
}

impl Connection {
    /// The brokers at `brokers`, reached with `security`.
    pub fn new(brokers: impl Into<String>, security: Security) -> Self {
        Connection {
            brokers: brokers.into(),
            security,
        }
    }

    /// What every client starts from: the bootstrap servers, the extra
    /// properties, then TLS and SASL. Each client sets its own properties
    /// after these, so they win.
    pub(crate) fn client_config(&self) -> Result<ClientConfig> {
        let mut config = ClientConfig::new();
        for (name, value) in &self.security.properties {
            if let Some(problem) = refused_property(name) {
                return Err(Error::Config(format!("property {name}: {problem}")));
            }
            config.set(name, value);
        }
        config.set("bootstrap.servers", &self.brokers);
        self.security.apply(&mut config);
        Ok(config)
    }
}

/// Plaintext, without authentication: what tests and `make run` use.
impl From<&str> for Connection {
    fn from(brokers: &str) -> Self {
        Connection::new(brokers, Security::default())
    }
}

impl From<String> for Connection {
    fn from(brokers: String) -> Self {
        Connection::new(brokers, Security::default())
    }
}

impl From<&String> for Connection {
    fn from(brokers: &String) -> Self {
        Connection::new(brokers.as_str(), Security::default())
    }
}

impl From<&Connection> for Connection {
    fn from(connection: &Connection) -> Self {
        connection.clone()
    }
}

/// TLS and SASL. The protocol follows from which of the two are on:
/// neither is `plaintext`, TLS alone `ssl`, SASL alone `sasl_plaintext`,
/// both `sasl_ssl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// TLS to the brokers; `None` for plaintext.
    pub tls: Option<Tls>,
    /// SASL authentication; `None` for none.
    pub sasl: Option<Sasl>,
    /// Further librdkafka properties, `(name, value)`, for what has no
    /// setting of its own (e.g. `ssl.endpoint.identification.algorithm`);
    /// [`refused_property`] says which are refused.
    pub properties: Vec<(String, String)>,
}

impl Security {
    /// librdkafka's `security.protocol`.
    pub fn protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        }
    }

    fn apply(&self, config: &mut ClientConfig) {
        config.set("security.protocol", self.protocol());
        if let Some(tls) = &self.tls {
            let paths = [
                ("ssl.ca.location", &tls.ca_location),
                ("ssl.certificate.location", &tls.certificate_location),
                ("ssl.key.location", &tls.key_location),
            ];
            for (name, path) in paths {
                if let Some(path) = path {
                    config.set(name, path.to_string_lossy());
                }
            }
            if let Some(password) = &tls.key_password {
                config.set("ssl.key.password", password.expose());
            }
        }
        match &self.sasl {
            None => {}
            Some(Sasl::Password {
                mechanism,
                username,
                password,
            }) => {
                config
                    .set("sasl.mechanism", mechanism.as_str())
                    .set("sasl.username", username)
                    .set("sasl.password", password.expose());
            }
            Some(Sasl::OAuthBearer(oidc)) => {
                config
                    .set("sasl.mechanism", "OAUTHBEARER")
                    .set("sasl.oauthbearer.method", "oidc")
                    .set(
                        "sasl.oauthbearer.token.endpoint.url",
                        &oidc.token_endpoint_url,
                    )
                    .set("sasl.oauthbearer.client.id", &oidc.client_id)
                    .set(
                        "sasl.oauthbearer.client.secret",
                        oidc.client_secret.expose(),
                    );
                if let Some(scope) = &oidc.scope {
                    config.set("sasl.oauthbearer.scope", scope);
                }
            }
        }
    }
}

/// TLS settings. Brokers' certificates are always verified, host name
/// included (librdkafka's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA certificates (PEM file) that signed the brokers' certificates;
    /// `None` trusts the system's CA store.
    pub ca_location: Option<PathBuf>,
    /// Client certificate (PEM file), for brokers that authenticate
    /// clients by certificate (mutual TLS).
    pub certificate_location: Option<PathBuf>,
    /// The client certificate's private key (PEM file).
    pub key_location: Option<PathBuf>,
    /// The private key's passphrase, when it is encrypted.
    pub key_password: Option<Secret>,
}

/// How the client authenticates with SASL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    /// A user name and password: SCRAM or PLAIN.
    Password {
        /// SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN.
        mechanism: PasswordMechanism,
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// OAUTHBEARER with tokens fetched from an OIDC token endpoint (client
    /// credentials grant) and refreshed before they expire.
    OAuthBearer(OidcClient),
}

/// A SASL mechanism that sends a user name and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMechanism {
    /// SCRAM-SHA-256: the password never crosses the wire.
    ScramSha256,
    /// SCRAM-SHA-512: the password never crosses the wire.
    ScramSha512,
    /// PLAIN: the password is sent as it is; use it over TLS only.
    Plain,
}

impl PasswordMechanism {
    /// The mechanism's SASL name.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordMechanism::ScramSha256 => "SCRAM-SHA-256",
            PasswordMechanism::ScramSha512 => "SCRAM-SHA-512",
            PasswordMechanism::Plain => "PLAIN",
        }
    }
}

/// An OAuth client of an OIDC provider, for SASL/OAUTHBEARER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    /// The provider's token endpoint (`https://...`).
    pub token_endpoint_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// The scope asked for, when the provider wants one.
    pub scope: Option<String>,
}

/// Properties Panorama sets itself, in one client or another: another
/// value would break what it promises (acknowledged writes, offsets kept in
/// the sink, batches bounded in memory), and librdkafka's aliases would
/// make two values race.
const MANAGED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "linger.ms",
    "queue.buffering.max.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "queue.buffering.max.messages",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "transactional.id",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "queued.max.messages.kbytes",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "fetch.wait.max.ms",
    "topic.metadata.refresh.interval.ms",
    "statistics.interval.ms",
    "allow.auto.create.topics",
];

/// Properties with a setting of their own.
const SECURITY: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
];

/// Properties that load code into the process.
const LOADS_CODE: &[&str] = &["plugin.library.paths", "ssl.engine.location"];

/// `error`, without the value of the property it names when that value
/// may be a secret: librdkafka's configuration errors quote the value.
pub(crate) fn redact(error: KafkaError) -> KafkaError {
    match error {
        KafkaError::ClientConfig(result, description, key, value) if is_secret(&key) => {
            let description = if value.is_empty() {
                description
            } else {
                description.replace(&value, "********")
            };
            KafkaError::ClientConfig(result, description, key, "********".into())
        }
        other => other,
    }
}

/// Whether property `name` may hold a secret.
fn is_secret(name: &str) -> bool {
    [
        "password",
        "secret",
        "pem",
        "token",
        "assertion",
        "sasl.oauthbearer.config",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// Why the extra property `name` is refused, or `None` when it may be set.
pub fn refused_property(name: &str) -> Option<&'static str> {
    if MANAGED.contains(&name) {
        Some("Panorama sets it itself")
    } else if SECURITY.contains(&name) {
        Some("it has a setting of its own")
    } else if LOADS_CODE.contains(&name) {
        Some("it loads code into the process")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scram() -> Sasl {
        Sasl::Password {
            mechanism: PasswordMechanism::ScramSha512,
            username: "panorama".into(),
            password: Secret::new("hunter2"),
        }
    }

    #[test]
    fn the_protocol_follows_from_tls_and_sasl() {
        let mut security = Security::default();
        assert_eq!(security.protocol(), "plaintext");
        security.tls = Some(Tls::default());
        assert_eq!(security.protocol(), "ssl");
        security.sasl = Some(scram());
        assert_eq!(security.protocol(), "sasl_ssl");
        security.tls = None;
        assert_eq!(security.protocol(), "sasl_plaintext");
    }

    #[test]
    fn every_client_gets_the_security_properties() {
        let connection = Connection::new(
            "broker:9093",
            Security {
                tls: Some(Tls {
                    ca_location: Some("/etc/kafka/ca.pem".into()),
                    ..Tls::default()
                }),
                sasl: Some(scram()),
                properties: vec![("client.id".into(), "panorama-eu".into())],
            },
        );
        let config = connection.client_config().expect("config");
        assert_eq!(config.get("bootstrap.servers"), Some("broker:9093"));
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("panorama"));
        assert_eq!(config.get("sasl.password"), Some("hunter2"));
        assert_eq!(config.get("client.id"), Some("panorama-eu"));
    }

    #[test]
    fn oidc_settings_reach_the_client() {
        let connection = Connection::new(
            "broker:9093",
            Security {
                tls: Some(Tls::default()),
                sasl: Some(Sasl::OAuthBearer(OidcClient {
                    token_endpoint_url: "https://idp.example.com/token".into(),
                    client_id: "panorama".into(),
                    client_secret: Secret::new("s3cret"),
                    scope: Some("kafka".into()),
                })),
                properties: Vec::new(),
            },
        );
        let config = connection.client_config().expect("config");
        assert_eq!(config.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(config.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(
            config.get("sasl.oauthbearer.token.endpoint.url"),
            Some("https://idp.example.com/token")
        );
        assert_eq!(config.get("sasl.oauthbearer.client.secret"), Some("s3cret"));
        assert_eq!(config.get("sasl.oauthbearer.scope"), Some("kafka"));
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let security = Security {
            tls: Some(Tls {
                key_password: Some(Secret::new("key-passphrase")),
                ..Tls::default()
            }),
            sasl: Some(scram()),
            properties: Vec::new(),
        };
        let shown = format!("{:?}", Connection::new("broker:9093", security));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("key-passphrase"), "{shown}");
        assert!(shown.contains("panorama"), "{shown}");
    }

    #[test]
    fn configuration_errors_never_quote_a_secret() {
        let error = redact(KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter2\" for configuration property \"sasl.password\"".into(),
            "sasl.password".into(),
            "hunter2".into(),
        ));
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.password"), "{shown}");
        let other = redact(KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
            "No such configuration property".into(),
            "client.idd".into(),
            "panorama".into(),
        ));
        assert!(other.to_string().contains("panorama"), "{other}");
    }

    #[test]
    fn managed_and_security_properties_are_refused() {
        for name in ["group.id", "enable.idempotence", "request.required.acks"] {
            assert_eq!(refused_property(name), Some("Panorama sets it itself"));
        }
        assert_eq!(
            refused_property("sasl.password"),
            Some("it has a setting of its own")
        );
        assert!(refused_property("plugin.library.paths").is_some());
        assert_eq!(
            refused_property("ssl.endpoint.identification.algorithm"),
            None
        );
        let connection = Connection::new(
            "broker:9092",
            Security {
                properties: vec![("group.id".into(), "other".into())],
                ..Security::default()
            },
        );
        let error = connection.client_config().expect_err("refused");
        assert!(error.to_string().contains("group.id"), "{error}");
    }
}

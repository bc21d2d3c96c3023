//! How `[kafka]`'s security settings become the one [`Connection`] every
//! Kafka client of a process uses, checked together: a setting that would
//! be ignored, or one missing, is refused at startup, by name, rather than
//! leaving a client to connect some other way than the operator meant.

use std::path::Path;

use anyhow::{Context as _, bail};
use panorama_bus::{Connection, OidcClient, PasswordMechanism, Sasl, Secret, Security, Tls};
use serde::{Deserialize, Serialize};

use super::KafkaOptions;

/// `kafka.security_protocol`: librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL.
    #[serde(alias = "PLAINTEXT")]
    Plaintext,
    /// TLS.
    #[serde(alias = "SSL")]
    Ssl,
    /// SASL without TLS.
    #[serde(alias = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS.
    #[serde(alias = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

/// `kafka.sasl_mechanism`: how the client logs in with SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// SCRAM-SHA-256 with a user name and password.
    #[serde(rename = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// SCRAM-SHA-512 with a user name and password.
    #[serde(rename = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
    /// PLAIN: the password crosses the wire, so over TLS only.
    #[serde(rename = "PLAIN", alias = "plain")]
    Plain,
    /// OAUTHBEARER with tokens from an OIDC token endpoint.
    #[serde(rename = "OAUTHBEARER", alias = "oauthbearer")]
    OAuthBearer,
}

/// `kafka.KEY (PANORAMA_KAFKA_KEY)`: how errors name a setting.
fn named(key: &str) -> String {
    format!("kafka.{key} (PANORAMA_KAFKA_{})", key.to_uppercase())
}

impl KafkaOptions {
    /// The brokers and how every client reaches them, with secrets read
    /// from their files.
    ///
    /// # Errors
    ///
    /// When the security settings do not fit together (a TLS or SASL
    /// setting the protocol would ignore, a missing user name, password or
    /// token endpoint), a secret file cannot be read, or an extra client
    /// property is malformed or refused; the message names the setting.
    pub fn connection(&self) -> anyhow::Result<Connection> {
        let protocol = self.security_protocol;
        let tls_settings = [
            ("ssl_ca_location", self.ssl_ca_location.is_some()),
            (
                "ssl_certificate_location",
                self.ssl_certificate_location.is_some(),
            ),
            ("ssl_key_location", self.ssl_key_location.is_some()),
            ("ssl_key_password", self.ssl_key_password.is_some()),
        ];
        let sasl_settings = self.password_settings();
        let oauth_settings = self.oauthbearer_settings();
        if !protocol.tls() {
            refuse_unused(&tls_settings, protocol, "ssl or sasl_ssl")?;
        }
        if !protocol.sasl() {
            refuse_unused(&sasl_settings, protocol, "sasl_plaintext or sasl_ssl")?;
            refuse_unused(&oauth_settings, protocol, "sasl_plaintext or sasl_ssl")?;
        }
        let tls = protocol.tls().then(|| self.tls()).transpose()?;
        let sasl = protocol.sasl().then(|| self.sasl()).transpose()?;
        let security = Security {
            tls,
            sasl,
            properties: self.properties()?,
        };
        Ok(Connection::new(&self.brokers, security))
    }

    /// The password login's settings, and whether each is set.
    fn password_settings(&self) -> [(&'static str, bool); 3] {
        [
            ("sasl_username", self.sasl_username.is_some()),
            ("sasl_password", self.sasl_password.is_some()),
            ("sasl_password_file", self.sasl_password_file.is_some()),
        ]
    }

    /// The OAUTHBEARER settings, and whether each is set.
    fn oauthbearer_settings(&self) -> [(&'static str, bool); 5] {
        [
            (
                "oauthbearer_token_endpoint_url",
                self.oauthbearer_token_endpoint_url.is_some(),
            ),
            (
                "oauthbearer_client_id",
                self.oauthbearer_client_id.is_some(),
            ),
            (
                "oauthbearer_client_secret",
                self.oauthbearer_client_secret.is_some(),
            ),
            (
                "oauthbearer_client_secret_file",
                self.oauthbearer_client_secret_file.is_some(),
            ),
            ("oauthbearer_scope", self.oauthbearer_scope.is_some()),
        ]
    }

    fn tls(&self) -> anyhow::Result<Tls> {
        match (&self.ssl_certificate_location, &self.ssl_key_location) {
            (Some(_), None) => bail!(
                "{} is required with {}",
                named("ssl_key_location"),
                named("ssl_certificate_location")
            ),
            (None, Some(_)) => bail!(
                "{} is required with {}",
                named("ssl_certificate_location"),
                named("ssl_key_location")
            ),
            (None, None) if self.ssl_key_password.is_some() => bail!(
                "{} is set without {}",
                named("ssl_key_password"),
                named("ssl_key_location")
            ),
            _ => {}
        }
        Ok(Tls {
            ca_location: self.ssl_ca_location.clone(),
            certificate_location: self.ssl_certificate_location.clone(),
            key_location: self.ssl_key_location.clone(),
            key_password: self.ssl_key_password.clone(),
        })
    }

    fn sasl(&self) -> anyhow::Result<Sasl> {
        let mechanism = match self.sasl_mechanism {
            SaslMechanism::ScramSha256 => PasswordMechanism::ScramSha256,
            SaslMechanism::ScramSha512 => PasswordMechanism::ScramSha512,
            SaslMechanism::Plain => PasswordMechanism::Plain,
            SaslMechanism::OAuthBearer => return self.oauthbearer(),
        };
        let unused = self.oauthbearer_settings();
        if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
            bail!(
                "{} is set, but {} is {}: it is used with OAUTHBEARER only",
                named(key),
                named("sasl_mechanism"),
                mechanism.as_str()
            );
        }
        let username = self.sasl_username.clone().with_context(|| {
            format!(
                "{} is required with SASL mechanism {}",
                named("sasl_username"),
                mechanism.as_str()
            )
        })?;
        let password = secret(
            self.sasl_password.as_ref(),
            self.sasl_password_file.as_deref(),
            "sasl_password",
        )?;
        Ok(Sasl::Password {
            mechanism,
            username,
            password,
        })
    }

    fn oauthbearer(&self) -> anyhow::Result<Sasl> {
        let unused = self.password_settings();
        if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
            bail!(
                "{} is set, but {} is OAUTHBEARER, which logs in with a token: set the \
                 oauthbearer_* settings instead",
                named(key),
                named("sasl_mechanism")
            );
        }
        let required = |value: &Option<String>, key: &str| {
            value
                .clone()
                .with_context(|| format!("{} is required with OAUTHBEARER", named(key)))
        };
        let token_endpoint_url = required(
            &self.oauthbearer_token_endpoint_url,
            "oauthbearer_token_endpoint_url",
        )?;
        let client_id = required(&self.oauthbearer_client_id, "oauthbearer_client_id")?;
        let client_secret = secret(
            self.oauthbearer_client_secret.as_ref(),
            self.oauthbearer_client_secret_file.as_deref(),
            "oauthbearer_client_secret",
        )?;
        Ok(Sasl::OAuthBearer(OidcClient {
            token_endpoint_url,
            client_id,
            client_secret,
            scope: self.oauthbearer_scope.clone(),
        }))
    }

    /// `kafka.client_properties` as `(name, value)` pairs.
    fn properties(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.client_properties
            .iter()
            .map(|item| {
                let Some((name, value)) = item.split_once('=') else {
                    bail!(
                        "{}: {item:?} is not `name=value`",
                        named("client_properties")
                    );
                };
                let name = name.trim();
                if let Some(problem) = panorama_bus::refused_property(name) {
                    bail!(
                        "{}: {name} is refused: {problem}",
                        named("client_properties")
                    );
                }
                Ok((name.to_owned(), value.trim().to_owned()))
            })
            .collect()
    }
}

/// Refuses the first of `settings` that is set, since `protocol` ignores
/// it.
fn refuse_unused(
    settings: &[(&str, bool)],
    protocol: SecurityProtocol,
    wanted: &str,
) -> anyhow::Result<()> {
    match settings.iter().find(|(_, set)| *set) {
        Some((key, _)) => bail!(
            "{} is set, but {} is {}: it is used with {wanted} only",
            named(key),
            named("security_protocol"),
            protocol.as_str()
        ),
        None => Ok(()),
    }
}

/// The secret given as `value` or in the file at `file` (one of the two),
/// trimmed.
fn secret(value: Option<&Secret>, file: Option<&Path>, key: &str) -> anyhow::Result<Secret> {
    let file_key = format!("{key}_file");
    match (value, file) {
        (Some(_), Some(_)) => bail!(
            "{} and {} are both set: set one",
            named(key),
            named(&file_key)
        ),
        (Some(value), None) => Ok(value.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read {}", named(&file_key), path.display()))?;
            let text = text.trim();
            if text.is_empty() {
                bail!("{}: {} is empty", named(&file_key), path.display());
            }
            Ok(Secret::new(text))
        }
        (None, None) => bail!("{} or {} is required", named(key), named(&file_key)),
    }
}

/// A secret, trimmed; none when empty. Written as plain text, so a printed
/// configuration masks it by its setting.
pub(super) mod secret_text {
    use panorama_bus::Secret;
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    pub(in crate::options) fn serialize<S: Serializer>(
        value: &Option<Secret>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(Secret::expose).serialize(serializer)
    }

    pub(in crate::options) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .map(Secret::new))
    }
}

/// A file path; none when empty.
pub(super) mod path {
    use std::path::PathBuf;

    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    pub(in crate::options) fn serialize<S: Serializer>(
        value: &Option<PathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub(in crate::options) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .map(PathBuf::from))
    }
}

/// `name=value` items: text separated by `;` (values may hold commas) or
/// a TOML array; blank items are dropped.
pub(super) mod properties {
    use serde::{Deserialize, Deserializer, Serialize as _, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Items(Vec<String>),
    }

    pub(in crate::options) fn serialize<S: Serializer>(
        value: &[String],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub(in crate::options) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<String>, D::Error> {
        let items = match Written::deserialize(deserializer)? {
            Written::Text(text) => text.split(';').map(str::to_owned).collect(),
            Written::Items(items) => items,
        };
        Ok(items
            .into_iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn sasl_ssl() -> KafkaOptions {
        KafkaOptions {
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: SaslMechanism::ScramSha256,
            sasl_username: Some("panorama".into()),
            sasl_password: Some(Secret::new("hunter2")),
            ssl_ca_location: Some(PathBuf::from("/etc/kafka/ca.pem")),
            ..KafkaOptions::default()
        }
    }

    fn refused(options: &KafkaOptions) -> String {
        format!("{:#}", options.connection().expect_err("refused"))
    }

    #[test]
    fn the_default_is_plaintext() {
        let connection = KafkaOptions::default().connection().expect("valid");
        assert_eq!(connection.security, Security::default());
        assert_eq!(connection.brokers, "127.0.0.1:9092");
    }

    #[test]
    fn sasl_ssl_with_scram() {
        let connection = sasl_ssl().connection().expect("valid");
        assert_eq!(connection.security.protocol(), "sasl_ssl");
        assert_eq!(
            connection.security.sasl,
            Some(Sasl::Password {
                mechanism: PasswordMechanism::ScramSha256,
                username: "panorama".into(),
                password: Secret::new("hunter2"),
            })
        );
        let tls = connection.security.tls.expect("tls");
        assert_eq!(tls.ca_location, Some(PathBuf::from("/etc/kafka/ca.pem")));
    }

    #[test]
    fn a_setting_the_protocol_ignores_is_refused_by_name() {
        let options = KafkaOptions {
            security_protocol: SecurityProtocol::SaslPlaintext,
            ..sasl_ssl()
        };
        let error = refused(&options);
        assert!(
            error.contains("kafka.ssl_ca_location (PANORAMA_KAFKA_SSL_CA_LOCATION)")
                && error.contains("sasl_plaintext"),
            "{error}"
        );
        let options = KafkaOptions {
            security_protocol: SecurityProtocol::Ssl,
            ..sasl_ssl()
        };
        assert!(
            refused(&options).contains("PANORAMA_KAFKA_SASL_USERNAME"),
            "{}",
            refused(&options)
        );
    }

    #[test]
    fn missing_credentials_are_named() {
        let options = KafkaOptions {
            sasl_username: None,
            ..sasl_ssl()
        };
        assert!(refused(&options).contains("PANORAMA_KAFKA_SASL_USERNAME"));
        let options = KafkaOptions {
            sasl_password: None,
            ..sasl_ssl()
        };
        let error = refused(&options);
        assert!(
            error.contains("(PANORAMA_KAFKA_SASL_PASSWORD)")
                && error.contains("PANORAMA_KAFKA_SASL_PASSWORD_FILE"),
            "{error}"
        );
        let options = KafkaOptions {
            sasl_mechanism: SaslMechanism::OAuthBearer,
            sasl_username: None,
            sasl_password: None,
            ..sasl_ssl()
        };
        assert!(refused(&options).contains("PANORAMA_KAFKA_OAUTHBEARER_TOKEN_ENDPOINT_URL"));
    }

    #[test]
    fn the_password_is_read_from_its_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("password");
        std::fs::write(&path, "from-file\n").expect("write");
        let options = KafkaOptions {
            sasl_password: None,
            sasl_password_file: Some(path.clone()),
            ..sasl_ssl()
        };
        let connection = options.connection().expect("valid");
        let Some(Sasl::Password { password, .. }) = connection.security.sasl else {
            panic!("a password login");
        };
        assert_eq!(password.expose(), "from-file");
        let both = KafkaOptions {
            sasl_password_file: Some(path),
            ..sasl_ssl()
        };
        assert!(refused(&both).contains("both set"));
        let missing = KafkaOptions {
            sasl_password: None,
            sasl_password_file: Some(dir.path().join("absent")),
            ..sasl_ssl()
        };
        assert!(refused(&missing).contains("PANORAMA_KAFKA_SASL_PASSWORD_FILE"));
    }

    #[test]
    fn oauthbearer_takes_an_oidc_client() {
        let options = KafkaOptions {
            sasl_mechanism: SaslMechanism::OAuthBearer,
            sasl_username: None,
            sasl_password: None,
            oauthbearer_token_endpoint_url: Some("https://idp.example.com/token".into()),
            oauthbearer_client_id: Some("panorama".into()),
            oauthbearer_client_secret: Some(Secret::new("s3cret")),
            ..sasl_ssl()
        };
        let connection = options.connection().expect("valid");
        assert!(matches!(
            connection.security.sasl,
            Some(Sasl::OAuthBearer(OidcClient { ref client_id, .. })) if client_id == "panorama"
        ));
        let with_password = KafkaOptions {
            sasl_password: Some(Secret::new("x")),
            ..options
        };
        assert!(refused(&with_password).contains("PANORAMA_KAFKA_SASL_PASSWORD"));
    }

    #[test]
    fn client_properties_pass_unless_refused() {
        let options = KafkaOptions {
            client_properties: vec![
                "ssl.endpoint.identification.algorithm=none".into(),
                "ssl.cipher.suites = A,B".into(),
            ],
            ..sasl_ssl()
        };
        let connection = options.connection().expect("valid");
        assert_eq!(
            connection.security.properties,
            vec![
                (
                    "ssl.endpoint.identification.algorithm".to_owned(),
                    "none".to_owned()
                ),
                ("ssl.cipher.suites".to_owned(), "A,B".to_owned()),
            ]
        );
        for (item, expected) in [
            ("group.id=other", "group.id is refused"),
            ("enable.idempotence=false", "Panorama sets it itself"),
            ("sasl.password=x", "has a setting of its own"),
            ("no-equals-sign", "not `name=value`"),
        ] {
            let options = KafkaOptions {
                client_properties: vec![item.into()],
                ..KafkaOptions::default()
            };
            let error = refused(&options);
            assert!(
                error.contains("PANORAMA_KAFKA_CLIENT_PROPERTIES") && error.contains(expected),
                "{item}: {error}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let options = KafkaOptions {
            ssl_key_password: Some(Secret::new("key-pass")),
            ..sasl_ssl()
        };
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("key-pass"),
            "{shown}"
        );
    }
}

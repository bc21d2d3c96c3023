//! Kafka over TLS and SASL against a real broker that asks for them: the
//! producer, consumer and admin clients all reach it through the one
//! connection the settings describe; a wrong password or an untrusted CA
//! fails soon, saying why; and the whole service runs over SASL_SSL.
//!
//! The test broker (Nisshi) offers SASL/SCRAM-SHA-256 and SCRAM-SHA-512,
//! over plaintext or TLS; PLAIN and OAUTHBEARER it does not. For
//! OAUTHBEARER, what is checked here is the client's half: it fetches its
//! token from the OIDC token endpoint with the configured client
//! credentials.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use panorama::{SaslMechanism, SecurityProtocol};
use panorama_bus::{
    BatchConsumer, Claim, Connection, ConsumerSettings, Error, OffsetSource, OidcClient,
    OutboundRecord, PasswordMechanism, Producer, ProducerSettings, Sasl, Secret, Security, Tls,
};
use panorama_e2e::{contact, epoch};
use panorama_testkit::{
    Broker, BrokerSecurity, BrokerUser, Scram, TestApp, WAIT, eventually, random_name,
};

/// A user per SCRAM mechanism the broker offers.
const USERS: [(&str, &str, Scram); 2] = [
    ("panorama256", "pw-for-256", Scram::Sha256),
    ("panorama512", "pw-for-512", Scram::Sha512),
];

/// How long a failing publish may wait for the broker: short, so the
/// failure tests are quick; the failure must come within it, and say why.
const SHORT_TIMEOUT: Duration = Duration::from_secs(3);

fn users() -> Vec<BrokerUser> {
    USERS
        .iter()
        .map(|(name, password, mechanism)| BrokerUser {
            name: (*name).to_owned(),
            password: (*password).to_owned(),
            mechanism: *mechanism,
        })
        .collect()
}

fn start(security: BrokerSecurity) -> Result<Broker, String> {
    Broker::start_secured(&security).map_err(|error| format!("{error:#}"))
}

/// A broker that takes TLS only, without a login.
fn tls_broker() -> &'static Broker {
    static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            start(BrokerSecurity {
                tls: true,
                users: Vec::new(),
            })
        })
        .as_ref()
        .expect("TLS broker starts")
}

/// A broker that takes TLS and a SCRAM login as one of [`USERS`].
fn sasl_ssl_broker() -> &'static Broker {
    static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            start(BrokerSecurity {
                tls: true,
                users: users(),
            })
        })
        .as_ref()
        .expect("SASL_SSL broker starts")
}

/// A broker that takes a SCRAM login as one of [`USERS`], without TLS.
fn sasl_plaintext_broker() -> &'static Broker {
    static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            start(BrokerSecurity {
                tls: false,
                users: users(),
            })
        })
        .as_ref()
        .expect("SASL_PLAINTEXT broker starts")
}

fn tls_to(broker: &Broker, ca: fn(&panorama_testkit::BrokerTls) -> &Path) -> Tls {
    let certificates = broker.tls().expect("a TLS broker");
    Tls {
        ca_location: Some(ca(certificates).to_path_buf()),
        ..Tls::default()
    }
}

fn scram(name: &str, password: &str, mechanism: Scram) -> Sasl {
    Sasl::Password {
        mechanism: match mechanism {
            Scram::Sha256 => PasswordMechanism::ScramSha256,
            Scram::Sha512 => PasswordMechanism::ScramSha512,
        },
        username: name.to_owned(),
        password: Secret::new(password),
    }
}

fn connection(broker: &Broker, tls: Option<Tls>, sasl: Option<Sasl>) -> Connection {
    Connection::new(
        broker.bootstrap(),
        Security {
            tls,
            sasl,
            properties: Vec::new(),
        },
    )
}

/// Starts every partition at the beginning of the log.
struct FromStart;

impl OffsetSource for FromStart {
    fn claim(&self, _topic: &str, _partitions: &[i32]) -> Result<HashMap<i32, Claim>, String> {
        Ok(HashMap::new())
    }
}

/// Creates a topic through `connection` (the admin client), publishes a
/// record (the producer), and reads it back (a consumer group member).
async fn round_trip(connection: &Connection) {
    let topic = random_name("secured");
    panorama_bus::create_topics(connection, &[(&topic, 1)])
        .await
        .expect("topic created over the secured connection");
    let producer = Producer::new(&ProducerSettings::new(connection)).expect("producer");
    let record = OutboundRecord {
        key: "customer-1".into(),
        payload: b"over the wire, safely".to_vec(),
        headers: vec![("kind".into(), b"test".to_vec())],
    };
    producer
        .publish(&topic, std::slice::from_ref(&record))
        .await
        .expect("published over the secured connection");
    let settings = ConsumerSettings::new(connection, random_name("reader"), &topic);
    let consumed = tokio::task::spawn_blocking(move || {
        let mut consumer = BatchConsumer::new(&settings, Arc::new(FromStart)).expect("consumer");
        let deadline = Instant::now() + WAIT;
        loop {
            let batch = consumer
                .next_batch(10, usize::MAX, Duration::from_millis(200))
                .expect("poll");
            if let Some(first) = batch.into_iter().next() {
                return first;
            }
            assert!(Instant::now() < deadline, "nothing consumed in {WAIT:?}");
        }
    })
    .await
    .expect("reader");
    assert_eq!(consumed.key.as_deref(), Some(record.key.as_bytes()));
    assert_eq!(consumed.payload.as_deref(), Some(record.payload.as_slice()));
    assert_eq!(consumed.header("kind"), Some(&b"test"[..]));
    let partitions = panorama_bus::topic_partition_count(connection, &topic, WAIT)
        .expect("metadata over the secured connection");
    assert_eq!(partitions, 1);
}

/// Publishes one record through `connection` with a short timeout and
/// returns the error, checking it came within the timeout (and a margin).
async fn failed_publish(connection: &Connection) -> Error {
    let mut settings = ProducerSettings::new(connection);
    settings.timeout = SHORT_TIMEOUT;
    let producer = Producer::new(&settings).expect("producer");
    let record = OutboundRecord {
        key: "k".into(),
        payload: b"v".to_vec(),
        headers: Vec::new(),
    };
    let started = Instant::now();
    let error = producer
        .publish(&random_name("refused"), &[record])
        .await
        .expect_err("the broker must refuse this client");
    assert!(
        started.elapsed() < SHORT_TIMEOUT + Duration::from_secs(5),
        "the failure took {:?}",
        started.elapsed()
    );
    error
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_and_consume_over_tls() {
    let broker = tokio::task::spawn_blocking(tls_broker)
        .await
        .expect("start");
    let ca = tls_to(broker, |tls| &tls.ca_cert);
    round_trip(&connection(broker, Some(ca.clone()), None)).await;
    // A client certificate the broker does not ask for changes nothing.
    let certificates = broker.tls().expect("a TLS broker");
    let with_client_cert = Tls {
        certificate_location: Some(certificates.client_cert.clone()),
        key_location: Some(certificates.client_key.clone()),
        ..ca
    };
    round_trip(&connection(broker, Some(with_client_cert), None)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scram_mechanism_logs_in_over_tls() {
    let broker = tokio::task::spawn_blocking(sasl_ssl_broker)
        .await
        .expect("start");
    for (name, password, mechanism) in USERS {
        let ca = tls_to(broker, |tls| &tls.ca_cert);
        round_trip(&connection(
            broker,
            Some(ca),
            Some(scram(name, password, mechanism)),
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scram_mechanism_logs_in_without_tls() {
    let broker = tokio::task::spawn_blocking(sasl_plaintext_broker)
        .await
        .expect("start");
    for (name, password, mechanism) in USERS {
        round_trip(&connection(
            broker,
            None,
            Some(scram(name, password, mechanism)),
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_fails_soon_and_says_so() {
    let broker = tokio::task::spawn_blocking(sasl_ssl_broker)
        .await
        .expect("start");
    for (name, _, mechanism) in USERS {
        let ca = tls_to(broker, |tls| &tls.ca_cert);
        let wrong = connection(
            broker,
            Some(ca),
            Some(scram(name, "not-the-password", mechanism)),
        );
        let error = failed_publish(&wrong).await;
        let text = error.to_string();
        assert!(
            matches!(error, Error::Connect(_)) && text.contains("authentication failed"),
            "{mechanism:?}: {text}"
        );
        assert!(!text.contains("not-the-password"), "{text}");
        let lookup = tokio::task::spawn_blocking(move || {
            panorama_bus::topic_partition_count(&wrong, "any", SHORT_TIMEOUT)
        })
        .await
        .expect("lookup");
        assert!(
            matches!(lookup, Err(Error::Connect(ref reason)) if reason.contains("authentication failed")),
            "{lookup:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_broker_certificate_is_refused() {
    let broker = tokio::task::spawn_blocking(tls_broker)
        .await
        .expect("start");
    let foreign = tls_to(broker, |tls| &tls.foreign_ca_cert);
    let error = failed_publish(&connection(broker, Some(foreign), None)).await;
    let text = error.to_string();
    assert!(
        matches!(error, Error::Connect(_)) && text.contains("certificate verify failed"),
        "{text}"
    );
}

/// The whole service (gateway, projector, API) over SASL_SSL, configured
/// through its settings: an event posted is acknowledged by the broker,
/// consumed and projected.
#[tokio::test(flavor = "multi_thread")]
async fn the_service_runs_over_sasl_ssl() {
    let broker = tokio::task::spawn_blocking(sasl_ssl_broker)
        .await
        .expect("start");
    let (name, password, _) = USERS[1];
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("kafka-password");
    std::fs::write(&password_file, format!("{password}\n")).expect("password file");
    let bootstrap = broker.bootstrap();
    let ca = broker.tls().expect("a TLS broker").ca_cert.clone();
    let topic = random_name("events");
    let dlq = random_name("dlq");
    let configure = {
        let (topic, dlq) = (topic.clone(), dlq.clone());
        move |options: &mut panorama::Options| {
            options.kafka.brokers = bootstrap;
            options.kafka.topic = topic;
            options.kafka.dlq_topic = dlq;
            options.kafka.security_protocol = SecurityProtocol::SaslSsl;
            options.kafka.sasl_mechanism = SaslMechanism::ScramSha512;
            options.kafka.sasl_username = Some(name.to_owned());
            options.kafka.sasl_password_file = Some(password_file);
            options.kafka.ssl_ca_location = Some(ca);
        }
    };
    let mut options = panorama::Options::default();
    configure.clone()(&mut options);
    let kafka = options.kafka.connection().expect("valid settings");
    panorama_bus::create_topics(&kafka, &[(&topic, 3), (&dlq, 1)])
        .await
        .expect("topics");
    let app = TestApp::builder().configure(configure).spawn().await;
    let response = app
        .post_events(&contact(7, "sasl-ssl-1", epoch(), "email"))
        .await;
    assert_eq!(response.status(), 202);
    app.wait_for_events(1).await;
    assert_eq!(app.records_in(&topic).await, 1);
    eventually("the broker and projector report ready", WAIT, || async {
        let response = app.get("/readyz").await;
        (response.status() == 200).then_some(())
    })
    .await;
}

/// A gateway with a wrong Kafka password starts (clients connect lazily),
/// answers ingest with 503, and says in `/readyz` why: the login failed.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_shows_in_readiness() {
    let broker = tokio::task::spawn_blocking(sasl_ssl_broker)
        .await
        .expect("start");
    let (name, _, _) = USERS[0];
    let bootstrap = broker.bootstrap();
    let ca = broker.tls().expect("a TLS broker").ca_cert.clone();
    let app = TestApp::builder()
        .role(panorama::ProcessRole::Gateway)
        .configure(move |options| {
            options.kafka.brokers = bootstrap;
            options.kafka.security_protocol = SecurityProtocol::SaslSsl;
            options.kafka.sasl_mechanism = SaslMechanism::ScramSha256;
            options.kafka.sasl_username = Some(name.to_owned());
            options.kafka.sasl_password = Some(Secret::new("not-the-password"));
            options.kafka.ssl_ca_location = Some(ca);
            options.kafka.produce_timeout = SHORT_TIMEOUT;
            options.readiness_interval = Duration::from_millis(200);
        })
        .spawn()
        .await;
    let response = app
        .post_events(&contact(8, "refused-login", epoch(), "phone"))
        .await;
    assert_eq!(response.status(), 503);
    let reason = eventually("/readyz names the failed login", WAIT, || async {
        let response = app.get("/readyz").await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        (status == 503 && body.contains("authentication failed")).then_some(body)
    })
    .await;
    assert!(!reason.contains("not-the-password"), "{reason}");
}

/// What a token endpoint was asked: the request line, the `Authorization`
/// header and the form body.
#[derive(Debug, Clone, Default)]
struct TokenRequest {
    request_line: String,
    authorization: String,
    body: String,
}

/// A one-request OIDC token endpoint on 127.0.0.1 that answers with an
/// unsigned JWT for `sub` "panorama", and keeps what it was asked.
fn token_endpoint() -> (String, Arc<Mutex<Option<TokenRequest>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/oauth2/token",
        listener.local_addr().expect("addr")
    );
    let seen = Arc::new(Mutex::new(None));
    let keep = seen.clone();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut request = TokenRequest::default();
        let mut length = 0usize;
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
            let header = line.trim_end().to_owned();
            line.clear();
            if header.is_empty() {
                break;
            }
            if request.request_line.is_empty() {
                request.request_line = header;
            } else if let Some((name, value)) = header.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "authorization" => request.authorization = value.trim().to_owned(),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_ok() {
            request.body = String::from_utf8_lossy(&body).into_owned();
        }
        let expires = chrono::Utc::now().timestamp() + 3600;
        let part = |json: String| URL_SAFE_NO_PAD.encode(json);
        let token = format!(
            "{}.{}.unsigned",
            part(r#"{"alg":"none","typ":"JWT"}"#.to_owned()),
            part(format!(r#"{{"sub":"panorama","exp":{expires}}}"#)),
        );
        let answer =
            format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":3600}}"#);
        let mut stream = reader.into_inner();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        if let Ok(mut seen) = keep.lock() {
            *seen = Some(request);
        }
    });
    (url, seen)
}

/// OAUTHBEARER with OIDC: the client asks the token endpoint for a token
/// with its client credentials and scope (the broker here does not take
/// OAUTHBEARER logins, so the login itself is not checked).
#[tokio::test(flavor = "multi_thread")]
async fn oauthbearer_fetches_its_token_from_the_oidc_endpoint() {
    let broker = tokio::task::spawn_blocking(tls_broker)
        .await
        .expect("start");
    let (url, seen) = token_endpoint();
    let oidc = Sasl::OAuthBearer(OidcClient {
        token_endpoint_url: url,
        client_id: "panorama-client".into(),
        client_secret: Secret::new("client-secret"),
        scope: Some("kafka.write".into()),
    });
    let ca = tls_to(broker, |tls| &tls.ca_cert);
    let producer = Producer::new(&ProducerSettings::new(connection(
        broker,
        Some(ca),
        Some(oidc),
    )))
    .expect("an OAUTHBEARER/OIDC producer");
    let request = eventually("the token endpoint was asked", WAIT, || async {
        seen.lock().ok().and_then(|seen| seen.clone())
    })
    .await;
    drop(producer);
    assert!(
        request.request_line.starts_with("POST /oauth2/token "),
        "{request:?}"
    );
    let credentials = STANDARD.encode("panorama-client:client-secret");
    assert_eq!(request.authorization, format!("Basic {credentials}"));
    assert_eq!(
        request.body,
        "grant_type=client_credentials&scope=kafka.write"
    );
}

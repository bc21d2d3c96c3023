//! The settings of a Panorama process, grouped by the part they configure.
//!
//! [`Options`] is at once the configuration (`main` reads it with serde from
//! the TOML file, `PANORAMA_*` variables and flags, each section a TOML
//! table, unknown keys refused) and the runtime options [`crate::start`]
//! takes (tests change its fields before start). Every default lives in the
//! `Default` impls below, or in the `Default` of the domain type a section
//! is (topics, view rules, channels, live updates); `--help` and the
//! README's settings table are rendered from them.

mod forms;
mod kafka;
mod webhooks;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use panorama_bus::{ConsumerSettings, Producer, ProducerSettings, Secret};
use panorama_core::identity::IdentityRules;
use panorama_core::retention::RetentionRules;
use panorama_core::{CrashPoints, Region};
use panorama_projector::{ProjectorSettings, RetentionSettings};
use panorama_server::{
    ChannelSettings, ConsoleSettings, FrameAncestors, InsightsSettings, LimitSettings,
    LiveSettings, PrivacySettings,
};
use panorama_store::{ConnectSettings, RetentionPolicy, ViewRules};
use serde::{Deserialize, Serialize};

use crate::{GATEWAY_DB_POOL_SIZE, ProcessRole};

pub use kafka::{SaslMechanism, SecurityProtocol};
pub use webhooks::WebhookOptions;

/// Everything a process is configured with. The first fields are top-level
/// TOML keys; each section after them is a TOML table of the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Region for national phone numbers; `None`: numbers must be
    /// international.
    #[serde(with = "forms::region")]
    pub default_region: Option<Region>,
    /// Identifier kinds' strengths and per-customer limits.
    #[serde(with = "forms::spec")]
    pub identity_rules: IdentityRules,
    /// Where to crash on purpose, for fault testing.
    #[serde(with = "forms::spec")]
    pub crash_points: CrashPoints,
    /// The HTTP server.
    pub http: HttpOptions,
    /// The agent console, and the agent desktops that may embed it.
    pub console: ConsoleOptions,
    /// PostgreSQL.
    pub database: DatabaseOptions,
    /// The broker, the topics' names and the consumer group.
    pub kafka: KafkaOptions,
    /// How `panorama topics` creates topics, and what `serve` expects.
    pub topics: TopicSettings,
    /// Case grouping, signal thresholds, priority tiers.
    #[serde(with = "forms::ViewRulesForm")]
    pub view_rules: ViewRules,
    /// Batching and liveness of the projector.
    pub projector: ProjectorOptions,
    /// Live-update streams and the change log behind them.
    pub live: LiveOptions,
    /// Rate, concurrency, byte and stream limits.
    pub limits: LimitOptions,
    /// The business gauges (`panorama_insights_*`).
    pub insights: InsightsOptions,
    /// Sealing events on the topic, and erasure.
    pub privacy: PrivacyOptions,
    /// Outbound webhooks.
    pub webhooks: WebhookOptions,
    /// Channel adapter secrets.
    #[serde(with = "forms::ChannelSettingsForm")]
    pub channels: ChannelSettings,
    /// Log output and trace export (read by `main`).
    pub log: LogOptions,
    /// How often readiness is checked for the `panorama_ready` gauge; not a
    /// setting (tests shorten it).
    #[serde(skip)]
    pub readiness_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_region: None,
            identity_rules: IdentityRules::default(),
            crash_points: CrashPoints::none(),
            http: HttpOptions::default(),
            console: ConsoleOptions::default(),
            database: DatabaseOptions::default(),
            kafka: KafkaOptions::default(),
            topics: TopicSettings::default(),
            view_rules: ViewRules::default(),
            projector: ProjectorOptions::default(),
            live: LiveOptions::default(),
            limits: LimitOptions::default(),
            insights: InsightsOptions::default(),
            privacy: PrivacyOptions::default(),
            webhooks: WebhookOptions::default(),
            channels: ChannelSettings::default(),
            log: LogOptions::default(),
            readiness_interval: Duration::from_secs(5),
        }
    }
}

/// `[http]`: where the server listens and what it accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpOptions {
    /// Listen address (port 0 for any free port).
    pub addr: String,
    /// Largest request body.
    #[serde(deserialize_with = "forms::positive")]
    pub max_body_bytes: usize,
    /// Largest request body on the email routes (whole messages with their
    /// attachments).
    #[serde(deserialize_with = "forms::positive")]
    pub max_email_body_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            addr: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            max_email_body_bytes: panorama_server::DEFAULT_MAX_EMAIL_BODY_BYTES,
        }
    }
}

/// `[console]`: the agent console, and the agent desktops (Salesforce Open
/// CTI, Amazon Connect, Genesys Cloud, Twilio Flex, Zendesk) that may show
/// it in a frame.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleOptions {
    /// Pages that may frame the console (`frame-ancestors`) and send it
    /// screen pops by `postMessage`; `'none'` by default.
    #[serde(with = "forms::spec")]
    pub frame_ancestors: FrameAncestors,
}

impl ConsoleOptions {
    /// The console's settings, as the server takes them.
    pub fn settings(&self) -> ConsoleSettings {
        ConsoleSettings {
            frame_ancestors: self.frame_ancestors.clone(),
        }
    }
}

/// `[database]`: the PostgreSQL URL, pool and timeouts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseOptions {
    /// PostgreSQL URL, TLS parameters included.
    #[serde(deserialize_with = "forms::database_url")]
    pub url: String,
    /// PostgreSQL connections.
    #[serde(deserialize_with = "forms::positive")]
    pub pool_size: usize,
    /// `statement_timeout` of every PostgreSQL connection of `serve`.
    #[serde(rename = "statement_timeout_ms", with = "forms::optional_millis")]
    pub statement_timeout: Option<Duration>,
    /// `idle_in_transaction_session_timeout` of every connection of `serve`.
    #[serde(
        rename = "idle_in_transaction_timeout_ms",
        with = "forms::optional_millis"
    )]
    pub idle_in_transaction_timeout: Option<Duration>,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions {
            url: "postgres://panorama@127.0.0.1:5432/panorama".into(),
            pool_size: 16,
            statement_timeout: Some(Duration::from_secs(30)),
            idle_in_transaction_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// `[kafka]`: the broker, the topics, the projector's consumer group, and
/// how to reach the brokers (TLS, SASL; [`KafkaOptions::connection`]
/// checks these together).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaOptions {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Contact-event topic.
    pub topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Change-feed topic (customer changes, relayed from the outbox).
    pub changes_topic: String,
    /// Projector consumer group.
    pub consumer_group: String,
    /// How long ingest waits for the broker.
    #[serde(
        rename = "produce_timeout_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 0>"
    )]
    pub produce_timeout: Duration,
    /// How long the process's producer (ingest, the API's actions, dead
    /// letters) waits for more records to fill a batch (`linger.ms`); zero
    /// sends at once.
    #[serde(
        rename = "linger_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 0>"
    )]
    pub linger: Duration,
    /// How often an idle consumer that paused its partitions looks at the
    /// broker again; zero never pauses (see the setting's help).
    #[serde(
        rename = "idle_probe_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 0>"
    )]
    pub idle_probe: Duration,
    /// Plaintext, TLS, SASL, or SASL over TLS.
    pub security_protocol: SecurityProtocol,
    /// The SASL mechanism, with a SASL protocol.
    pub sasl_mechanism: SaslMechanism,
    /// SASL user (SCRAM, PLAIN).
    #[serde(with = "forms::secret")]
    pub sasl_username: Option<String>,
    /// SASL password (SCRAM, PLAIN).
    #[serde(with = "kafka::secret_text")]
    pub sasl_password: Option<Secret>,
    /// A file holding the SASL password, instead of `sasl_password`.
    #[serde(with = "kafka::path")]
    pub sasl_password_file: Option<PathBuf>,
    /// CA certificates (PEM) to verify the brokers with; unset, the
    /// system's.
    #[serde(with = "kafka::path")]
    pub ssl_ca_location: Option<PathBuf>,
    /// Client certificate (PEM), for brokers that ask for one.
    #[serde(with = "kafka::path")]
    pub ssl_certificate_location: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(with = "kafka::path")]
    pub ssl_key_location: Option<PathBuf>,
    /// The private key's passphrase.
    #[serde(with = "kafka::secret_text")]
    pub ssl_key_password: Option<Secret>,
    /// OAUTHBEARER: the OIDC provider's token endpoint.
    #[serde(with = "forms::secret")]
    pub oauthbearer_token_endpoint_url: Option<String>,
    /// OAUTHBEARER: the OAuth client id.
    #[serde(with = "forms::secret")]
    pub oauthbearer_client_id: Option<String>,
    /// OAUTHBEARER: the OAuth client secret.
    #[serde(with = "kafka::secret_text")]
    pub oauthbearer_client_secret: Option<Secret>,
    /// A file holding the OAuth client secret, instead of
    /// `oauthbearer_client_secret`.
    #[serde(with = "kafka::path")]
    pub oauthbearer_client_secret_file: Option<PathBuf>,
    /// OAUTHBEARER: the scope asked for.
    #[serde(with = "forms::secret")]
    pub oauthbearer_scope: Option<String>,
    /// Further librdkafka properties, `name=value` each.
    #[serde(with = "kafka::properties")]
    pub client_properties: Vec<String>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            brokers: "127.0.0.1:9092".into(),
            topic: "panorama.contact-events.v1".into(),
            dlq_topic: "panorama.contact-events.dlq.v1".into(),
            changes_topic: "panorama.customer-changes.v1".into(),
            consumer_group: "panorama-projector".into(),
            produce_timeout: Duration::from_secs(5),
            linger: Duration::ZERO,
            idle_probe: Duration::ZERO,
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: SaslMechanism::ScramSha512,
            sasl_username: None,
            sasl_password: None,
            sasl_password_file: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            ssl_key_password: None,
            oauthbearer_token_endpoint_url: None,
            oauthbearer_client_id: None,
            oauthbearer_client_secret: None,
            oauthbearer_client_secret_file: None,
            oauthbearer_scope: None,
            client_properties: Vec::new(),
        }
    }
}

/// `[projector]`: how records are batched into transactions, and when a
/// projector that commits nothing counts as stalled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorOptions {
    /// Most records per projector transaction.
    #[serde(deserialize_with = "forms::positive")]
    pub batch_size: usize,
    /// Longest a projector waits for a batch's first record; the batch then
    /// takes what is already fetched.
    #[serde(
        rename = "batch_wait_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 0>"
    )]
    pub batch_wait: Duration,
    /// Most bytes of records per projector transaction.
    #[serde(deserialize_with = "forms::positive")]
    pub batch_bytes: usize,
    /// How long records may wait without a committed batch before the
    /// projector reports itself unready.
    #[serde(
        rename = "stall_secs",
        serialize_with = "forms::duration::serialize::<_, 1000>",
        deserialize_with = "forms::duration::deserialize::<_, 1000, 1>"
    )]
    pub stall_after: Duration,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        ProjectorOptions {
            batch_size: 2000,
            batch_wait: Duration::from_millis(20),
            batch_bytes: 16 * 1024 * 1024,
            stall_after: Duration::from_secs(60),
        }
    }
}

/// `[live]`: live-update streams (`GET /v1/stream`) and the change log they
/// resume from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveOptions {
    /// How often an idle stream sends a keepalive.
    #[serde(
        rename = "heartbeat_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 1>"
    )]
    pub heartbeat: Duration,
    /// How often a stream re-reads the change log without a notification.
    #[serde(
        rename = "poll_ms",
        serialize_with = "forms::duration::serialize::<_, 1>",
        deserialize_with = "forms::duration::deserialize::<_, 1, 1>"
    )]
    pub poll: Duration,
    /// How long change-log rows are kept: the window for resuming a
    /// live-update stream. The projector role prunes older ones.
    #[serde(
        rename = "changes_retention_hours",
        serialize_with = "forms::duration::serialize::<_, 3_600_000>",
        deserialize_with = "forms::duration::deserialize::<_, 3_600_000, 1>"
    )]
    pub changes_retention: Duration,
}

/// The longest change-log retention honoured: ten years.
const MAX_CHANGES_RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl Default for LiveOptions {
    fn default() -> Self {
        let stream = LiveSettings::default();
        LiveOptions {
            heartbeat: stream.heartbeat,
            poll: stream.poll,
            changes_retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl LiveOptions {
    /// The streams' timing, as the server takes it.
    pub fn settings(&self) -> LiveSettings {
        LiveSettings {
            heartbeat: self.heartbeat,
            poll: self.poll,
        }
    }

    /// The change-log retention, at most ten years.
    pub fn changes_retention(&self) -> Duration {
        self.changes_retention.min(MAX_CHANGES_RETENTION)
    }
}

/// `[limits]`: what one caller, a flood of callers, or ingest bodies may
/// take of a process. Zero turns a limit off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitOptions {
    /// Requests per second per API token or configured channel token.
    pub token_rate: u32,
    /// Requests in progress at once per API token or channel token.
    pub token_concurrency: u32,
    /// Requests per second per browser write key.
    pub write_key_rate: u32,
    /// Requests in progress at once per browser write key.
    pub write_key_concurrency: u32,
    /// Failed bearer-token checks per minute per client address.
    pub failed_auth_per_minute: u32,
    /// Bytes of ingest request bodies a process holds at once.
    pub ingest_inflight_bytes: usize,
    /// Live-update streams open at once per API token.
    pub streams_per_token: u32,
    /// Live-update streams open at once per process.
    pub streams: u32,
    /// Longest a `429` is held back before it is sent, in milliseconds.
    pub refusal_delay_ms: u64,
}

impl Default for LimitOptions {
    fn default() -> Self {
        LimitOptions {
            token_rate: 1000,
            token_concurrency: 64,
            write_key_rate: 2000,
            write_key_concurrency: 256,
            failed_auth_per_minute: 120,
            ingest_inflight_bytes: 128 * 1024 * 1024,
            streams_per_token: 16,
            streams: 1024,
            refusal_delay_ms: 1000,
        }
    }
}

impl LimitOptions {
    /// The limits, as the server takes them.
    pub fn settings(&self) -> LimitSettings {
        LimitSettings {
            token_rate: self.token_rate,
            token_concurrency: self.token_concurrency,
            write_key_rate: self.write_key_rate,
            write_key_concurrency: self.write_key_concurrency,
            failed_auth_per_minute: self.failed_auth_per_minute,
            ingest_inflight_bytes: self.ingest_inflight_bytes,
            streams_per_token: self.streams_per_token,
            streams: self.streams,
            refusal_delay: Duration::from_millis(self.refusal_delay_ms),
        }
    }

    /// Every limit off: for benchmarks that stand in for many callers with
    /// one token.
    pub fn off() -> Self {
        LimitOptions {
            token_rate: 0,
            token_concurrency: 0,
            write_key_rate: 0,
            write_key_concurrency: 0,
            failed_auth_per_minute: 0,
            ingest_inflight_bytes: 0,
            streams_per_token: 0,
            streams: 0,
            refusal_delay_ms: 0,
        }
    }
}

/// `[insights]`: how often API processes compute the business gauges, and
/// over how much history.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightsOptions {
    /// Time between two computations; zero turns the gauges off.
    #[serde(
        rename = "refresh_secs",
        serialize_with = "forms::duration::serialize::<_, 1000>",
        deserialize_with = "forms::duration::deserialize::<_, 1000, 0>"
    )]
    pub refresh: Duration,
    /// How far back (by the day events happened) the figures look.
    #[serde(
        rename = "window_hours",
        serialize_with = "forms::duration::serialize::<_, 3_600_000>",
        deserialize_with = "forms::duration::deserialize::<_, 3_600_000, 1>"
    )]
    pub window: Duration,
}

impl Default for InsightsOptions {
    fn default() -> Self {
        InsightsOptions {
            refresh: Duration::from_secs(60),
            window: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl InsightsOptions {
    /// The refresher's settings; `None` when the gauges are off.
    pub fn settings(&self) -> Option<InsightsSettings> {
        (!self.refresh.is_zero()).then_some(InsightsSettings {
            refresh: self.refresh,
            window: self.window,
        })
    }
}

/// `[privacy]`: sealing events on the topic (docs/privacy.md), how long
/// an erased person stays suppressed, and retention (README "Retention").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyOptions {
    /// Whether the gateway seals events (off: they go to the topic in
    /// clear, and erasure cannot reach it).
    pub seal: bool,
    /// How long a subject's key is used from memory before it is read
    /// again.
    #[serde(
        rename = "key_cache_secs",
        serialize_with = "forms::duration::serialize::<_, 1000>",
        deserialize_with = "forms::duration::deserialize::<_, 1000, 0>"
    )]
    pub key_cache: Duration,
    /// Days an erased person's identifiers stay suppressed; 0: until an
    /// admin lifts the suppression.
    pub suppression_days: u32,
    /// How long events keep their personal fields, by channel or event
    /// type (`chat=90d,call.*=730d`); empty: forever.
    #[serde(with = "forms::spec")]
    pub retention: RetentionRules,
    /// Time between two runs of the retention job (projector role).
    #[serde(
        rename = "retention_interval_secs",
        serialize_with = "forms::duration::serialize::<_, 1000>",
        deserialize_with = "forms::duration::deserialize::<_, 1000, 1>"
    )]
    pub retention_interval: Duration,
    /// Most rows the retention job changes per transaction.
    #[serde(deserialize_with = "forms::positive")]
    pub retention_batch: usize,
    /// Days audit-log rows are kept; 0: forever.
    pub audit_retention_days: u32,
    /// Days dead-letter ledger rows are kept; 0: forever.
    pub dead_letter_retention_days: u32,
}

impl Default for PrivacyOptions {
    fn default() -> Self {
        let server = PrivacySettings::default();
        PrivacyOptions {
            seal: server.seal,
            key_cache: server.key_cache,
            suppression_days: 0,
            retention: RetentionRules::default(),
            retention_interval: Duration::from_secs(300),
            retention_batch: 1000,
            audit_retention_days: 0,
            dead_letter_retention_days: 0,
        }
    }
}

impl PrivacyOptions {
    /// Sealing, as the server takes it.
    pub fn settings(&self) -> PrivacySettings {
        PrivacySettings {
            seal: self.seal,
            key_cache: self.key_cache,
        }
    }

    /// The retention job's settings.
    pub fn retention(&self) -> RetentionSettings {
        let days = |days: u32| (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400));
        RetentionSettings {
            policy: RetentionPolicy {
                events: self.retention.clone(),
                audit_log: days(self.audit_retention_days),
                dead_letters: days(self.dead_letter_retention_days),
            },
            interval: self.retention_interval,
            batch: self.retention_batch,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[serde(alias = "text")]
    Pretty,
    /// One JSON object a line.
    Json,
}

/// `[log]`: log output and trace export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogOptions {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// `tracing` filter, e.g. `info,panorama_projector=debug`.
    pub filter: String,
    /// OTLP/HTTP endpoint for traces (builds with the `otlp` feature).
    #[serde(with = "forms::secret")]
    pub otlp_endpoint: Option<String>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            format: LogFormat::Pretty,
            filter: "info".into(),
            otlp_endpoint: None,
        }
    }
}

/// `[topics]`: how `panorama topics` creates the topics: defaults right for
/// a cluster of three or more brokers, records kept forever (the topic is
/// what a replay rebuilds from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicSettings {
    /// Partitions of each topic.
    #[serde(deserialize_with = "forms::positive")]
    pub partitions: i32,
    /// Copies of every record.
    #[serde(deserialize_with = "forms::positive")]
    pub replication_factor: i32,
    /// Copies that must have a record before it is acknowledged.
    #[serde(deserialize_with = "forms::positive")]
    pub min_insync_replicas: i32,
    /// `retention.ms`; -1 keeps records forever.
    #[serde(deserialize_with = "forms::retention_ms")]
    pub retention_ms: i64,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings {
            partitions: 6,
            replication_factor: 3,
            min_insync_replicas: 2,
            retention_ms: -1,
        }
    }
}

impl Options {
    /// The defaults with this database and broker.
    pub fn new(database_url: impl Into<String>, kafka_brokers: impl Into<String>) -> Self {
        let mut options = Options::default();
        options.database.url = database_url.into();
        options.kafka.brokers = kafka_brokers.into();
        options
    }

    /// The projector's settings.
    ///
    /// # Errors
    ///
    /// When the Kafka security settings are refused
    /// ([`KafkaOptions::connection`]).
    pub fn projector_settings(&self) -> anyhow::Result<ProjectorSettings> {
        let kafka = &self.kafka;
        let mut consumer =
            ConsumerSettings::new(kafka.connection()?, &kafka.consumer_group, &kafka.topic);
        consumer.idle_probe = kafka.idle_probe;
        Ok(ProjectorSettings {
            consumer,
            dlq_topic: kafka.dlq_topic.clone(),
            max_batch: self.projector.batch_size,
            max_batch_bytes: self.projector.batch_bytes,
            max_wait: self.projector.batch_wait,
            publish_dead_letters: true,
            stall_after: self.projector.stall_after,
            crash_points: self.crash_points.clone(),
        })
    }

    /// The change-feed relay's settings.
    ///
    /// # Errors
    ///
    /// When the Kafka security settings are refused
    /// ([`KafkaOptions::connection`]).
    pub fn change_feed_settings(&self) -> anyhow::Result<panorama_projector::ChangeFeedSettings> {
        Ok(panorama_projector::ChangeFeedSettings {
            connection: self.kafka.connection()?,
            topic: self.kafka.changes_topic.clone(),
            // The client needs at least a millisecond.
            produce_timeout: self.kafka.produce_timeout.max(Duration::from_millis(1)),
            crash_points: self.crash_points.clone(),
        })
    }

    /// The specs of the contact-event, dead-letter and change-feed topics.
    /// The change feed is created like the others (`cleanup.policy`
    /// `delete`, the same retention): see docs/event-contract.md for
    /// compaction.
    pub fn topic_specs(&self) -> Vec<panorama_bus::TopicSpec> {
        [
            &self.kafka.topic,
            &self.kafka.dlq_topic,
            &self.kafka.changes_topic,
        ]
        .into_iter()
        .map(|name| panorama_bus::TopicSpec {
            name: name.clone(),
            partitions: self.topics.partitions,
            replication_factor: self.topics.replication_factor,
            min_insync_replicas: self.topics.min_insync_replicas,
            retention_ms: self.topics.retention_ms,
        })
        .collect()
    }

    /// How `role` connects to PostgreSQL: its pool size, its name on the
    /// server, and the timeouts that keep a stuck statement or a frozen
    /// process from holding locks forever.
    pub fn connect_settings(&self, role: ProcessRole) -> ConnectSettings {
        // The gateway uses the database only to check API tokens.
        let max_connections = if role == ProcessRole::Gateway {
            self.database.pool_size.min(GATEWAY_DB_POOL_SIZE)
        } else {
            self.database.pool_size
        };
        ConnectSettings {
            max_connections,
            schema: None,
            application_name: Some(format!("panorama-{}", role.as_str())),
            statement_timeout: self.database.statement_timeout,
            idle_in_transaction_timeout: self.database.idle_in_transaction_timeout,
        }
    }

    pub(crate) fn producer(&self) -> anyhow::Result<Producer> {
        Producer::new(&self.producer_settings()?).context("cannot create the Kafka producer")
    }

    /// The settings of the process's producer: what ingest, the API's
    /// actions and the projector's dead letters publish with.
    pub fn producer_settings(&self) -> anyhow::Result<ProducerSettings> {
        let mut settings = ProducerSettings::new(self.kafka.connection()?);
        // The client needs at least a millisecond.
        settings.timeout = self.kafka.produce_timeout.max(Duration::from_millis(1));
        settings.linger = self.kafka.linger;
        Ok(settings)
    }
}

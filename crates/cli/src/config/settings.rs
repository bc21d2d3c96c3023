//! Every setting's flag and `PANORAMA_*` variable, with its description
//! (shown by `--help` and the README), grouped as the TOML file is.

use clap::Args;
use serde::Serialize;

use super::webhooks::WebhookArgs;

/// Every setting's flag and `PANORAMA_*` variable, grouped as the TOML file
/// is: a field serialises under its TOML key (its flag's `id` spells the
/// key out), and only when a flag or variable gave it a value, so unset
/// ones leave the key to the file and the defaults. A test holds these keys
/// to those of [`panorama::Options`].
#[derive(Debug, Clone, Default, Args, Serialize)]
pub(crate) struct Settings {
    /// ISO country code (e.g. `NL`) for reading national phone numbers;
    /// unset, numbers must be international (`+31...`) and channel adapters
    /// keep a national one only as attribute `unparsed.phone` (`make run`
    /// sets `NL`)
    #[arg(
        id = "default_region",
        long = "default-region",
        env = "PANORAMA_DEFAULT_REGION",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    default_region: Option<String>,
    /// Identity rules over the built-in ones: comma-separated `kind=limit`
    /// (a number or `none`), with `:weak` or `:strong` to change a kind's
    /// strength
    #[arg(
        id = "identity_rules",
        long = "identity-rules",
        env = "PANORAMA_IDENTITY_RULES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_rules: Option<String>,
    /// Fault testing only: `name=probability,...` makes the process abort
    /// at `projector.before_commit`, `projector.after_commit` or
    /// `gateway.after_publish` with that probability (docs/reliability.md)
    #[arg(
        id = "crash_points",
        long = "crash-points",
        env = "PANORAMA_CRASH_POINTS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    crash_points: Option<String>,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    console: ConsoleArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    topics: TopicArgs,
    #[command(flatten)]
    view_rules: ViewRuleArgs,
    #[command(flatten)]
    projector: ProjectorArgs,
    #[command(flatten)]
    live: LiveArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    insights: InsightsArgs,
    #[command(flatten)]
    privacy: PrivacyArgs,
    #[command(flatten)]
    webhooks: WebhookArgs,
    #[command(flatten)]
    channels: ChannelArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// `[http]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "HTTP [http]")]
struct HttpArgs {
    /// HTTP listen address
    #[arg(
        id = "http.addr",
        long = "http-addr",
        env = "PANORAMA_HTTP_ADDR",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    /// Largest accepted request body in bytes (every route but the email
    /// routes)
    #[arg(
        id = "http.max_body_bytes",
        long = "max-body-bytes",
        env = "PANORAMA_MAX_BODY_BYTES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body_bytes: Option<usize>,
    /// Largest accepted body on the email routes (SendGrid, Mailgun, raw
    /// MIME) in bytes: a whole message with its attachments
    #[arg(
        id = "http.max_email_body_bytes",
        long = "max-email-body-bytes",
        env = "PANORAMA_MAX_EMAIL_BODY_BYTES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_email_body_bytes: Option<usize>,
}

/// `[console]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Agent console [console]")]
struct ConsoleArgs {
    /// Pages that may show the agent console in a frame (an agent desktop)
    /// and send it screen pops by `postMessage`: `'self'` and origins
    /// (`https://host[:port]`, `https://*.host` for subdomains), separated
    /// by commas or spaces; sets the console's CSP `frame-ancestors`;
    /// `'none'` for no frame (see Embedding the console in an agent desktop)
    #[arg(
        id = "console.frame_ancestors",
        long = "console-frame-ancestors",
        env = "PANORAMA_CONSOLE_FRAME_ANCESTORS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_ancestors: Option<String>,
}

/// `[database]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "PostgreSQL [database]")]
struct DatabaseArgs {
    /// PostgreSQL connection URL (`postgres://...` or libpq's `key=value`
    /// form); TLS as libpq's `sslmode` (`disable`, `allow`, `prefer`,
    /// `require`, `verify-ca`, `verify-full`) and `sslrootcert` in it say
    /// (see PostgreSQL over TLS)
    #[arg(
        id = "database.url",
        long = "database-url",
        env = "PANORAMA_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// PostgreSQL connections per process (a gateway-only process, which
    /// only checks API tokens, opens at most 2)
    #[arg(
        id = "database.pool_size",
        long = "db-pool-size",
        env = "PANORAMA_DB_POOL_SIZE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pool_size: Option<usize>,
    /// `statement_timeout` of `serve`'s PostgreSQL connections in
    /// milliseconds (lock waits included); `0` for none
    #[arg(
        id = "database.statement_timeout_ms",
        long = "db-statement-timeout-ms",
        env = "PANORAMA_DB_STATEMENT_TIMEOUT_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_timeout_ms: Option<u64>,
    /// `idle_in_transaction_session_timeout` of `serve`'s connections in
    /// milliseconds: a frozen process cannot hold its locks longer; `0` for
    /// none
    #[arg(
        id = "database.idle_in_transaction_timeout_ms",
        long = "db-idle-in-transaction-timeout-ms",
        env = "PANORAMA_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_in_transaction_timeout_ms: Option<u64>,
}

/// `[kafka]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Kafka [kafka]")]
struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated
    #[arg(
        id = "kafka.brokers",
        long = "kafka-brokers",
        env = "PANORAMA_KAFKA_BROKERS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    brokers: Option<String>,
    /// Contact-event topic
    #[arg(
        id = "kafka.topic",
        long = "topic",
        env = "PANORAMA_TOPIC",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    /// Dead-letter topic for records that cannot be projected
    #[arg(
        id = "kafka.dlq_topic",
        long = "dlq-topic",
        env = "PANORAMA_DLQ_TOPIC",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    dlq_topic: Option<String>,
    /// Change-feed topic the projector role relays customer changes to
    #[arg(
        id = "kafka.changes_topic",
        long = "changes-topic",
        env = "PANORAMA_CHANGES_TOPIC",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    changes_topic: Option<String>,
    /// The projector's Kafka consumer group
    #[arg(
        id = "kafka.consumer_group",
        long = "consumer-group",
        env = "PANORAMA_CONSUMER_GROUP",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_group: Option<String>,
    /// How long ingest waits for the broker's acknowledgement before
    /// answering 503, in milliseconds
    #[arg(
        id = "kafka.produce_timeout_ms",
        long = "produce-timeout-ms",
        env = "PANORAMA_PRODUCE_TIMEOUT_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    produce_timeout_ms: Option<u64>,
    /// How long, in milliseconds, the producer that ingest, the API's
    /// actions and dead letters publish with waits for more records to fill
    /// a batch before it sends one (librdkafka's `linger.ms`). Every ingest
    /// answer waits for the broker, so the wait is added to each: 0 (the default) sends at once, and records that arrive while
    /// a batch is in flight still travel together in the next. A few
    /// milliseconds can save broker requests when many small requests
    /// arrive at once
    #[arg(
        id = "kafka.linger_ms",
        long = "kafka-linger-ms",
        env = "PANORAMA_KAFKA_LINGER_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    linger_ms: Option<u64>,
    /// How often, in milliseconds, a consumer with nothing to read looks
    /// at the broker again after it paused its partitions; a write by this
    /// process wakes it at once. 0 (the default) never pauses: the consumer
    /// keeps a fetch open, which costs nothing on Apache Kafka but keeps a
    /// broker whose held fetches poll their storage busy. For processes
    /// that run the gateway and the projector together (the dev stack)
    #[arg(
        id = "kafka.idle_probe_ms",
        long = "kafka-idle-probe-ms",
        env = "PANORAMA_KAFKA_IDLE_PROBE_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_probe_ms: Option<u64>,
    /// How clients reach the brokers: `plaintext`, `ssl` (TLS),
    /// `sasl_plaintext` or `sasl_ssl` (SASL over TLS)
    #[arg(
        id = "kafka.security_protocol",
        long = "kafka-security-protocol",
        env = "PANORAMA_KAFKA_SECURITY_PROTOCOL",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    security_protocol: Option<String>,
    /// SASL mechanism with `sasl_plaintext` or `sasl_ssl`: `SCRAM-SHA-256`,
    /// `SCRAM-SHA-512`, `PLAIN` (sends the password itself: use it with
    /// `sasl_ssl`) or `OAUTHBEARER` (tokens from an OIDC token endpoint)
    #[arg(
        id = "kafka.sasl_mechanism",
        long = "kafka-sasl-mechanism",
        env = "PANORAMA_KAFKA_SASL_MECHANISM",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    sasl_mechanism: Option<String>,
    /// SASL user name (SCRAM, PLAIN)
    #[arg(
        id = "kafka.sasl_username",
        long = "kafka-sasl-username",
        env = "PANORAMA_KAFKA_SASL_USERNAME",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    sasl_username: Option<String>,
    /// SASL password (SCRAM, PLAIN); or `PANORAMA_KAFKA_SASL_PASSWORD_FILE`
    #[arg(
        id = "kafka.sasl_password",
        long = "kafka-sasl-password",
        env = "PANORAMA_KAFKA_SASL_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    sasl_password: Option<String>,
    /// File holding the SASL password (trimmed), instead of
    /// `PANORAMA_KAFKA_SASL_PASSWORD`, which keeps it out of the environment
    #[arg(
        id = "kafka.sasl_password_file",
        long = "kafka-sasl-password-file",
        env = "PANORAMA_KAFKA_SASL_PASSWORD_FILE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    sasl_password_file: Option<String>,
    /// CA certificates (PEM file) that signed the brokers' certificates,
    /// with `ssl` or `sasl_ssl`; unset, the system's CA store. Certificates
    /// and host names are always verified
    #[arg(
        id = "kafka.ssl_ca_location",
        long = "kafka-ssl-ca-location",
        env = "PANORAMA_KAFKA_SSL_CA_LOCATION",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_ca_location: Option<String>,
    /// Client certificate (PEM file), for brokers that authenticate clients
    /// by certificate (mutual TLS)
    #[arg(
        id = "kafka.ssl_certificate_location",
        long = "kafka-ssl-certificate-location",
        env = "PANORAMA_KAFKA_SSL_CERTIFICATE_LOCATION",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_certificate_location: Option<String>,
    /// The client certificate's private key (PEM file)
    #[arg(
        id = "kafka.ssl_key_location",
        long = "kafka-ssl-key-location",
        env = "PANORAMA_KAFKA_SSL_KEY_LOCATION",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_key_location: Option<String>,
    /// Passphrase of an encrypted client key
    #[arg(
        id = "kafka.ssl_key_password",
        long = "kafka-ssl-key-password",
        env = "PANORAMA_KAFKA_SSL_KEY_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_key_password: Option<String>,
    /// OAUTHBEARER: the OIDC provider's token endpoint, from which clients
    /// fetch and refresh their tokens (client credentials grant)
    #[arg(
        id = "kafka.oauthbearer_token_endpoint_url",
        long = "kafka-oauthbearer-token-endpoint-url",
        env = "PANORAMA_KAFKA_OAUTHBEARER_TOKEN_ENDPOINT_URL",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    oauthbearer_token_endpoint_url: Option<String>,
    /// OAUTHBEARER: the OAuth client id
    #[arg(
        id = "kafka.oauthbearer_client_id",
        long = "kafka-oauthbearer-client-id",
        env = "PANORAMA_KAFKA_OAUTHBEARER_CLIENT_ID",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    oauthbearer_client_id: Option<String>,
    /// OAUTHBEARER: the OAuth client secret; or
    /// `PANORAMA_KAFKA_OAUTHBEARER_CLIENT_SECRET_FILE`
    #[arg(
        id = "kafka.oauthbearer_client_secret",
        long = "kafka-oauthbearer-client-secret",
        env = "PANORAMA_KAFKA_OAUTHBEARER_CLIENT_SECRET",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    oauthbearer_client_secret: Option<String>,
    /// File holding the OAuth client secret (trimmed), instead of
    /// `PANORAMA_KAFKA_OAUTHBEARER_CLIENT_SECRET`
    #[arg(
        id = "kafka.oauthbearer_client_secret_file",
        long = "kafka-oauthbearer-client-secret-file",
        env = "PANORAMA_KAFKA_OAUTHBEARER_CLIENT_SECRET_FILE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    oauthbearer_client_secret_file: Option<String>,
    /// OAUTHBEARER: the scope to ask the token endpoint for, if it wants one
    #[arg(
        id = "kafka.oauthbearer_scope",
        long = "kafka-oauthbearer-scope",
        env = "PANORAMA_KAFKA_OAUTHBEARER_SCOPE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    oauthbearer_scope: Option<String>,
    /// Further librdkafka properties for every Kafka client, `name=value`
    /// separated by `;` (e.g. `client.id=panorama-eu`); those Panorama sets
    /// itself (`enable.idempotence`, `group.id`, ...) or that have a setting
    /// here are refused
    #[arg(
        id = "kafka.client_properties",
        long = "kafka-client-properties",
        env = "PANORAMA_KAFKA_CLIENT_PROPERTIES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    client_properties: Option<String>,
}

/// `[topics]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Topics `panorama topics` creates [topics]")]
struct TopicArgs {
    /// Partitions `panorama topics` creates; the most projectors that share
    /// the work
    #[arg(
        id = "topics.partitions",
        long = "topic-partitions",
        env = "PANORAMA_TOPIC_PARTITIONS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    partitions: Option<i32>,
    /// Copies of every record in the topics `panorama topics` creates; the
    /// cluster needs as many brokers (`make run` and `docker-compose.yml`
    /// set `1` for their single broker)
    #[arg(
        id = "topics.replication_factor",
        long = "topic-replication-factor",
        env = "PANORAMA_TOPIC_REPLICATION_FACTOR",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    replication_factor: Option<i32>,
    /// Copies that must hold a record before the broker acknowledges it,
    /// and so before an ingest request is answered (`1` with one broker)
    #[arg(
        id = "topics.min_insync_replicas",
        long = "topic-min-insync-replicas",
        env = "PANORAMA_TOPIC_MIN_INSYNC_REPLICAS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    min_insync_replicas: Option<i32>,
    /// How long the topics keep records, in milliseconds; `-1` keeps them
    /// forever, which is what a replay rebuilds from
    #[arg(
        id = "topics.retention_ms",
        long = "topic-retention-ms",
        env = "PANORAMA_TOPIC_RETENTION_MS",
        global = true,
        allow_negative_numbers = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_ms: Option<i64>,
}

/// `[view_rules]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Agent view [view_rules]")]
struct ViewRuleArgs {
    /// Contacts with the same reason this many days apart share a case
    #[arg(
        id = "view_rules.case_window_days",
        long = "case-window-days",
        env = "PANORAMA_CASE_WINDOW_DAYS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    case_window_days: Option<u32>,
    /// An open case whose last contact is older than this many days raises
    /// `unresolved_after_contact`
    #[arg(
        id = "view_rules.unresolved_after_days",
        long = "unresolved-after-days",
        env = "PANORAMA_UNRESOLVED_AFTER_DAYS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    unresolved_after_days: Option<u32>,
    /// Priority tiers over `customer.*` event attributes (traits):
    /// `tier:attribute=value|value,...,default=tier`, or typed
    /// `tier:trait.name` with `=`, `!=`, `>`, `>=`, `<` or `<=`; unset,
    /// everyone is `normal`
    #[arg(
        id = "view_rules.priority_rules",
        long = "priority-rules",
        env = "PANORAMA_PRIORITY_RULES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    priority_rules: Option<String>,
}

/// `[projector]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Projector [projector]")]
struct ProjectorArgs {
    /// Most records the projector writes in one transaction
    #[arg(
        id = "projector.batch_size",
        long = "projector-batch-size",
        env = "PANORAMA_PROJECTOR_BATCH_SIZE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
    /// Longest the projector waits for a batch's first record, in
    /// milliseconds; the batch then takes the records already fetched
    #[arg(
        id = "projector.batch_wait_ms",
        long = "projector-batch-wait-ms",
        env = "PANORAMA_PROJECTOR_BATCH_WAIT_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_wait_ms: Option<u64>,
    /// Most bytes of records (keys and values) in one projector
    /// transaction, bounding its memory whatever the size of the events
    #[arg(
        id = "projector.batch_bytes",
        long = "projector-batch-bytes",
        env = "PANORAMA_PROJECTOR_BATCH_BYTES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_bytes: Option<usize>,
    /// A projector that commits nothing for this many seconds while records
    /// wait reports itself unready
    #[arg(
        id = "projector.stall_secs",
        long = "projector-stall-secs",
        env = "PANORAMA_PROJECTOR_STALL_SECS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    stall_secs: Option<u64>,
}

/// `[live]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Live updates [live]")]
struct LiveArgs {
    /// How often an idle live-update stream (`GET /v1/stream`) sends
    /// `: keepalive`, in milliseconds
    #[arg(
        id = "live.heartbeat_ms",
        long = "sse-heartbeat-ms",
        env = "PANORAMA_SSE_HEARTBEAT_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat_ms: Option<u64>,
    /// How often a live-update stream re-reads the change log without a
    /// notification (a safety net), in milliseconds
    #[arg(
        id = "live.poll_ms",
        long = "sse-poll-ms",
        env = "PANORAMA_SSE_POLL_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    poll_ms: Option<u64>,
    /// Hours the change log keeps changes: the window for resuming a stream
    /// with `Last-Event-ID`; the projector role prunes older ones
    #[arg(
        id = "live.changes_retention_hours",
        long = "changes-retention-hours",
        env = "PANORAMA_CHANGES_RETENTION_HOURS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    changes_retention_hours: Option<u64>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Limits [limits]")]
struct LimitArgs {
    /// Requests per second per API token or `PANORAMA_CHANNEL_TOKENS` token
    /// (a second's worth may come at once); past it `429`; `0` for no limit
    #[arg(
        id = "limits.token_rate",
        long = "token-rate",
        env = "PANORAMA_TOKEN_RATE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    token_rate: Option<u32>,
    /// Requests in progress at once per API token or channel token; past it
    /// `429`; `0` for no limit
    #[arg(
        id = "limits.token_concurrency",
        long = "token-concurrency",
        env = "PANORAMA_TOKEN_CONCURRENCY",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    token_concurrency: Option<u32>,
    /// Requests per second per browser write key (every visitor of a site
    /// shares it); past it `429`; `0` for no limit
    #[arg(
        id = "limits.write_key_rate",
        long = "write-key-rate",
        env = "PANORAMA_WRITE_KEY_RATE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    write_key_rate: Option<u32>,
    /// Requests in progress at once per browser write key; past it `429`;
    /// `0` for no limit
    #[arg(
        id = "limits.write_key_concurrency",
        long = "write-key-concurrency",
        env = "PANORAMA_WRITE_KEY_CONCURRENCY",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    write_key_concurrency: Option<u32>,
    /// Failed bearer-token checks per minute per client address (IPv6 by
    /// /64); past it, tokens the process has not accepted in the last 10
    /// minutes are answered `429` without a database lookup; `0` for no
    /// limit
    #[arg(
        id = "limits.failed_auth_per_minute",
        long = "failed-auth-per-minute",
        env = "PANORAMA_FAILED_AUTH_PER_MINUTE",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_auth_per_minute: Option<u32>,
    /// Bytes of ingest request bodies (`POST /v1/events`, the webhooks) a
    /// process holds at once; past it `503`; keep it above
    /// `PANORAMA_MAX_EMAIL_BODY_BYTES`; `0` for no limit
    #[arg(
        id = "limits.ingest_inflight_bytes",
        long = "ingest-inflight-bytes",
        env = "PANORAMA_INGEST_INFLIGHT_BYTES",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest_inflight_bytes: Option<usize>,
    /// Live-update streams (`GET /v1/stream`) open at once per API token;
    /// past it `429`; `0` for no limit
    #[arg(
        id = "limits.streams_per_token",
        long = "sse-streams-per-token",
        env = "PANORAMA_SSE_STREAMS_PER_TOKEN",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    streams_per_token: Option<u32>,
    /// Live-update streams open at once per process; past it `503`; `0` for
    /// no limit
    #[arg(
        id = "limits.streams",
        long = "sse-streams",
        env = "PANORAMA_SSE_STREAMS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    streams: Option<u32>,
    /// Longest a `429` is held back before it is sent, in milliseconds
    /// (its `Retry-After` if shorter), so that a client ignoring
    /// `Retry-After` cannot turn refusals into a flood; `0` answers at once
    #[arg(
        id = "limits.refusal_delay_ms",
        long = "refusal-delay-ms",
        env = "PANORAMA_REFUSAL_DELAY_MS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal_delay_ms: Option<u64>,
}

/// `[insights]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Insights gauges [insights]")]
struct InsightsArgs {
    /// Seconds between two computations of the `panorama_insights_*`
    /// gauges (API processes); `0` turns them off
    #[arg(
        id = "insights.refresh_secs",
        long = "insights-refresh-secs",
        env = "PANORAMA_INSIGHTS_REFRESH_SECS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_secs: Option<u64>,
    /// Hours of history, by the day events happened, the insights gauges
    /// cover (the same figures as `GET /v1/insights`)
    #[arg(
        id = "insights.window_hours",
        long = "insights-window-hours",
        env = "PANORAMA_INSIGHTS_WINDOW_HOURS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    window_hours: Option<u64>,
}

/// `[privacy]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Privacy [privacy]")]
struct PrivacyArgs {
    /// Whether the gateway seals events on the topic, so that erasing a
    /// person leaves nothing of them readable there (`false`: events go in
    /// clear)
    #[arg(
        id = "privacy.seal",
        long = "privacy-seal",
        env = "PANORAMA_PRIVACY_SEAL",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    seal: Option<bool>,
    /// Seconds the gateway uses a person's key (or suppression) from memory
    /// before it reads it again
    #[arg(
        id = "privacy.key_cache_secs",
        long = "privacy-key-cache-secs",
        env = "PANORAMA_PRIVACY_KEY_CACHE_SECS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    key_cache_secs: Option<u64>,
    /// Days an erased person's identifiers stay suppressed (their events
    /// dropped); `0`: until an admin lifts the suppression
    #[arg(
        id = "privacy.suppression_days",
        long = "suppression-days",
        env = "PANORAMA_SUPPRESSION_DAYS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    suppression_days: Option<u32>,
    /// How long events keep their personal fields: comma-separated
    /// `pattern=age`, first match wins; a pattern is a channel (`chat`), an
    /// event type (`call.ended`), a family (`call.*`) or `*`; an age is days
    /// (`90d`), hours (`36h`) or `off` (forever), e.g.
    /// `chat=90d,web=90d,call.*=730d`; empty: every event keeps them
    #[arg(
        id = "privacy.retention",
        long = "retention",
        env = "PANORAMA_RETENTION",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<String>,
    /// Seconds between two runs of the retention job (projector role; the
    /// first runs at start)
    #[arg(
        id = "privacy.retention_interval_secs",
        long = "retention-interval-secs",
        env = "PANORAMA_RETENTION_INTERVAL_SECS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_interval_secs: Option<u64>,
    /// Most rows the retention job changes per transaction (each a short
    /// statement of its own)
    #[arg(
        id = "privacy.retention_batch",
        long = "retention-batch",
        env = "PANORAMA_RETENTION_BATCH",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_batch: Option<usize>,
    /// Days the audit log keeps a row; `0`: forever
    #[arg(
        id = "privacy.audit_retention_days",
        long = "audit-retention-days",
        env = "PANORAMA_AUDIT_RETENTION_DAYS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_retention_days: Option<u32>,
    /// Days the dead-letter ledger keeps a row (the dead-letter topic has
    /// its own retention); `0`: forever
    #[arg(
        id = "privacy.dead_letter_retention_days",
        long = "dead-letter-retention-days",
        env = "PANORAMA_DEAD_LETTER_RETENTION_DAYS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter_retention_days: Option<u32>,
}

/// `[channels]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Channels [channels]")]
struct ChannelArgs {
    /// The public base URL providers call (e.g.
    /// `https://panorama.example.com`); Twilio signatures are checked
    /// against it
    #[arg(
        id = "channels.public_url",
        long = "public-url",
        env = "PANORAMA_PUBLIC_URL",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    /// Twilio account auth token; the Twilio route is on when this and the
    /// public URL are set
    #[arg(
        id = "channels.twilio_auth_token",
        long = "twilio-auth-token",
        env = "PANORAMA_TWILIO_AUTH_TOKEN",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    twilio_auth_token: Option<String>,
    /// Meta app secret (`X-Hub-Signature-256`); without it and the verify
    /// token, the Meta route is off
    #[arg(
        id = "channels.meta_app_secret",
        long = "meta-app-secret",
        env = "PANORAMA_META_APP_SECRET",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    meta_app_secret: Option<String>,
    /// The verify token typed in at Meta for the webhook handshake
    #[arg(
        id = "channels.meta_verify_token",
        long = "meta-verify-token",
        env = "PANORAMA_META_VERIFY_TOKEN",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    meta_verify_token: Option<String>,
    /// Mailgun HTTP webhook signing key; unset, the Mailgun route is off
    #[arg(
        id = "channels.mailgun_signing_key",
        long = "mailgun-signing-key",
        env = "PANORAMA_MAILGUN_SIGNING_KEY",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    mailgun_signing_key: Option<String>,
    /// Secret in the SendGrid Inbound Parse URL (basic auth password or
    /// `?token=`); unset, the SendGrid route is off
    #[arg(
        id = "channels.sendgrid_secret",
        long = "sendgrid-secret",
        env = "PANORAMA_SENDGRID_SECRET",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    sendgrid_secret: Option<String>,
    /// Extra bearer tokens, comma-separated, for the CTI, raw MIME, web
    /// back-end and Segment routes only, accepted besides API tokens with the `channel`
    /// role
    #[arg(
        id = "channels.channel_tokens",
        long = "channel-tokens",
        env = "PANORAMA_CHANNEL_TOKENS",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_tokens: Option<String>,
    /// Public write keys for browsers, comma-separated; without them the
    /// web route takes only channel tokens (back ends)
    #[arg(
        id = "channels.web_write_keys",
        long = "web-write-keys",
        env = "PANORAMA_WEB_WRITE_KEYS",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    web_write_keys: Option<String>,
    /// Origins browsers may post web events from, comma-separated (e.g.
    /// `https://www.example.com`)
    #[arg(
        id = "channels.web_allowed_origins",
        long = "web-allowed-origins",
        env = "PANORAMA_WEB_ALLOWED_ORIGINS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    web_allowed_origins: Option<String>,
    /// Segment write keys, comma-separated, whose identifiers are claimed
    /// (keys that may be public: browsers, mobile apps); without any write
    /// key the Segment routes take only channel tokens
    #[arg(
        id = "channels.segment_write_keys",
        long = "segment-write-keys",
        env = "PANORAMA_SEGMENT_WRITE_KEYS",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_write_keys: Option<String>,
    /// Segment write keys, comma-separated, whose identifiers are verified:
    /// server-side SDKs of systems that authenticate their users
    #[arg(
        id = "channels.segment_verified_write_keys",
        long = "segment-verified-write-keys",
        env = "PANORAMA_SEGMENT_VERIFIED_WRITE_KEYS",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_verified_write_keys: Option<String>,
    /// Segment `track` event names that count as customer contacts,
    /// comma-separated, compared without regard to case (e.g. `Support
    /// Ticket Created,Callback Requested`); other `track` events are
    /// history, not contacts
    #[arg(
        id = "channels.segment_contact_events",
        long = "segment-contact-events",
        env = "PANORAMA_SEGMENT_CONTACT_EVENTS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_contact_events: Option<String>,
    /// The authserv-ids of your receiving mail servers, comma-separated
    /// (e.g. `mx.example.com`): only their `Authentication-Results` header
    /// verifies a raw message's sender; without them, raw MIME senders stay
    /// claimed
    #[arg(
        id = "channels.mime_authserv_ids",
        long = "mime-authserv-ids",
        env = "PANORAMA_MIME_AUTHSERV_IDS",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_authserv_ids: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Logs and traces [log]")]
struct LogArgs {
    /// Log output: `pretty` or `json`
    #[arg(
        id = "log.format",
        long = "log-format",
        env = "PANORAMA_LOG_FORMAT",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    /// Log filter (`tracing` syntax, e.g. `info,panorama_projector=debug`)
    #[arg(id = "log.filter", long = "log", env = "PANORAMA_LOG", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    /// OTLP/HTTP endpoint for traces, e.g. `http://collector:4318` (builds
    /// with the `otlp` feature only)
    #[arg(
        id = "log.otlp_endpoint",
        long = "otlp-endpoint",
        env = "PANORAMA_OTLP_ENDPOINT",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    otlp_endpoint: Option<String>,
}

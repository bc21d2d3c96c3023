//! Configuration: defaults, then an optional TOML file, then `PANORAMA_*`
//! environment variables and command-line flags (clap reads both; a flag
//! beats its variable).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use panorama_core::Region;
use panorama_core::cases::CaseRules;
use panorama_core::identity::IdentityRules;
use panorama_core::priority::PriorityRules;
use panorama_store::ViewRules;
use serde::Deserialize;

/// Settings every command shares. Each has a flag and an environment
/// variable; unset ones fall back to the config file, then to the default.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Address the HTTP server listens on [default: 127.0.0.1:8080]
    #[arg(long, env = "PANORAMA_HTTP_ADDR", global = true)]
    pub(crate) http_addr: Option<String>,
    /// PostgreSQL URL [default: postgres://panorama@127.0.0.1:5432/panorama]
    #[arg(
        long,
        env = "PANORAMA_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub(crate) database_url: Option<String>,
    /// Kafka bootstrap servers, comma-separated [default: 127.0.0.1:9092]
    #[arg(long, env = "PANORAMA_KAFKA_BROKERS", global = true)]
    pub(crate) kafka_brokers: Option<String>,
    /// Contact-event topic [default: panorama.contact-events.v1]
    #[arg(long, env = "PANORAMA_TOPIC", global = true)]
    pub(crate) topic: Option<String>,
    /// Dead-letter topic [default: panorama.contact-events.dlq.v1]
    #[arg(long, env = "PANORAMA_DLQ_TOPIC", global = true)]
    pub(crate) dlq_topic: Option<String>,
    /// Projector consumer group [default: panorama-projector]
    #[arg(long, env = "PANORAMA_CONSUMER_GROUP", global = true)]
    pub(crate) consumer_group: Option<String>,
    /// Partitions for topics created by `panorama topics` [default: 6]
    #[arg(long, env = "PANORAMA_TOPIC_PARTITIONS", global = true)]
    pub(crate) topic_partitions: Option<i32>,
    /// Copies of every record in topics `panorama topics` creates; the
    /// cluster needs at least this many brokers [default: 3]
    #[arg(long, env = "PANORAMA_TOPIC_REPLICATION_FACTOR", global = true)]
    pub(crate) topic_replication_factor: Option<i32>,
    /// Copies that must have a record before the broker acknowledges it
    /// [default: 2]
    #[arg(long, env = "PANORAMA_TOPIC_MIN_INSYNC_REPLICAS", global = true)]
    pub(crate) topic_min_insync_replicas: Option<i32>,
    /// Retention of the topics in milliseconds; -1 keeps records forever
    /// (a replay rebuilds from them) [default: -1]
    #[arg(
        long,
        env = "PANORAMA_TOPIC_RETENTION_MS",
        global = true,
        allow_negative_numbers = true
    )]
    pub(crate) topic_retention_ms: Option<i64>,
    /// ISO region (e.g. NL) for national phone numbers; unset = numbers must
    /// be international (+...)
    #[arg(long, env = "PANORAMA_DEFAULT_REGION", global = true)]
    pub(crate) default_region: Option<String>,
    /// Identity rules: comma-separated kind=limit (a number or none), with
    /// :weak or :strong to change a kind's strength, over the defaults
    /// account=1, email=5, phone=5, whatsapp/messenger/instagram/x=3,
    /// visitor=none:weak
    #[arg(long, env = "PANORAMA_IDENTITY_RULES", global = true)]
    pub(crate) identity_rules: Option<String>,
    /// Contacts with the same reason this many days apart share a case
    /// [default: 7]
    #[arg(long, env = "PANORAMA_CASE_WINDOW_DAYS", global = true)]
    pub(crate) case_window_days: Option<u32>,
    /// An open case whose last contact is older than this many days raises
    /// unresolved_after_contact [default: 3]
    #[arg(long, env = "PANORAMA_UNRESOLVED_AFTER_DAYS", global = true)]
    pub(crate) unresolved_after_days: Option<u32>,
    /// Priority tiers from customer.* attributes: comma-separated
    /// tier:attribute=value|value, optional default=tier (e.g.
    /// high:customer.tier=gold|platinum,default=normal)
    #[arg(long, env = "PANORAMA_PRIORITY_RULES", global = true)]
    pub(crate) priority_rules: Option<String>,
    /// Largest accepted request body in bytes [default: 1048576]
    #[arg(long, env = "PANORAMA_MAX_BODY_BYTES", global = true)]
    pub(crate) max_body_bytes: Option<usize>,
    /// Largest accepted body on the email routes (SendGrid, Mailgun, raw
    /// MIME), which carry whole messages with attachments, in bytes
    /// [default: 26214400]
    #[arg(long, env = "PANORAMA_MAX_EMAIL_BODY_BYTES", global = true)]
    pub(crate) max_email_body_bytes: Option<usize>,
    /// How long ingest waits for the broker's acknowledgement before
    /// answering 503, in milliseconds [default: 5000]
    #[arg(long, env = "PANORAMA_PRODUCE_TIMEOUT_MS", global = true)]
    pub(crate) produce_timeout_ms: Option<u64>,
    /// Most records the projector writes in one transaction [default: 2000]
    #[arg(long, env = "PANORAMA_PROJECTOR_BATCH_SIZE", global = true)]
    pub(crate) projector_batch_size: Option<usize>,
    /// Longest the projector waits to fill a batch, in milliseconds [default: 20]
    #[arg(long, env = "PANORAMA_PROJECTOR_BATCH_WAIT_MS", global = true)]
    pub(crate) projector_batch_wait_ms: Option<u64>,
    /// Most bytes of records the projector writes in one transaction
    /// [default: 16777216]
    #[arg(long, env = "PANORAMA_PROJECTOR_BATCH_BYTES", global = true)]
    pub(crate) projector_batch_bytes: Option<usize>,
    /// Seconds records may wait without a committed batch before the
    /// projector reports itself unready [default: 60]
    #[arg(long, env = "PANORAMA_PROJECTOR_STALL_SECS", global = true)]
    pub(crate) projector_stall_secs: Option<u64>,
    /// PostgreSQL statement_timeout of serve's connections, in milliseconds;
    /// 0 for none [default: 30000]
    #[arg(long, env = "PANORAMA_DB_STATEMENT_TIMEOUT_MS", global = true)]
    pub(crate) db_statement_timeout_ms: Option<u64>,
    /// PostgreSQL idle_in_transaction_session_timeout of serve's
    /// connections, in milliseconds; 0 for none [default: 30000]
    #[arg(
        long,
        env = "PANORAMA_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        global = true
    )]
    pub(crate) db_idle_in_transaction_timeout_ms: Option<u64>,
    /// Fault testing only: name=probability crash points, comma-separated
    /// (projector.before_commit, projector.after_commit,
    /// gateway.after_publish) where the process aborts
    #[arg(long, env = "PANORAMA_CRASH_POINTS", global = true)]
    pub(crate) crash_points: Option<String>,
    /// PostgreSQL connections per process [default: 16]
    #[arg(long, env = "PANORAMA_DB_POOL_SIZE", global = true)]
    pub(crate) db_pool_size: Option<usize>,
    /// Heartbeat of idle live-update streams (GET /v1/stream), in
    /// milliseconds [default: 15000]
    #[arg(long, env = "PANORAMA_SSE_HEARTBEAT_MS", global = true)]
    pub(crate) sse_heartbeat_ms: Option<u64>,
    /// How often a live-update stream re-reads the change log without a
    /// notification, in milliseconds [default: 5000]
    #[arg(long, env = "PANORAMA_SSE_POLL_MS", global = true)]
    pub(crate) sse_poll_ms: Option<u64>,
    /// Hours change-log rows are kept, the window for resuming a stream
    /// with Last-Event-ID [default: 24]
    #[arg(long, env = "PANORAMA_CHANGES_RETENTION_HOURS", global = true)]
    pub(crate) changes_retention_hours: Option<u64>,
    /// Public base URL providers call, e.g. https://panorama.example.com
    /// (Twilio signs the full URL, so it must be what Twilio sees)
    #[arg(long, env = "PANORAMA_PUBLIC_URL", global = true)]
    pub(crate) public_url: Option<String>,
    /// Twilio auth token; enables /v1/channels/twilio/voice
    #[arg(
        long,
        env = "PANORAMA_TWILIO_AUTH_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub(crate) twilio_auth_token: Option<String>,
    /// Meta app secret; with the verify token enables /v1/channels/meta/webhook
    #[arg(
        long,
        env = "PANORAMA_META_APP_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub(crate) meta_app_secret: Option<String>,
    /// Meta webhook verify token
    #[arg(
        long,
        env = "PANORAMA_META_VERIFY_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub(crate) meta_verify_token: Option<String>,
    /// Mailgun webhook signing key; enables /v1/channels/mailgun/inbound
    #[arg(
        long,
        env = "PANORAMA_MAILGUN_SIGNING_KEY",
        global = true,
        hide_env_values = true
    )]
    pub(crate) mailgun_signing_key: Option<String>,
    /// SendGrid basic-auth password or ?token=; enables /v1/channels/sendgrid/inbound
    #[arg(
        long,
        env = "PANORAMA_SENDGRID_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub(crate) sendgrid_secret: Option<String>,
    /// Bearer tokens for CTI, raw MIME and web back ends, comma-separated
    #[arg(
        long,
        env = "PANORAMA_CHANNEL_TOKENS",
        global = true,
        hide_env_values = true
    )]
    pub(crate) channel_tokens: Option<String>,
    /// Public write keys for browsers posting web events, comma-separated
    #[arg(
        long,
        env = "PANORAMA_WEB_WRITE_KEYS",
        global = true,
        hide_env_values = true
    )]
    pub(crate) web_write_keys: Option<String>,
    /// Origins browsers may post web events from, comma-separated
    #[arg(long, env = "PANORAMA_WEB_ALLOWED_ORIGINS", global = true)]
    pub(crate) web_allowed_origins: Option<String>,
    /// Seconds between two computations of the insights gauges; 0 turns
    /// them off [default: 60]
    #[arg(long, env = "PANORAMA_INSIGHTS_REFRESH_SECS", global = true)]
    pub(crate) insights_refresh_secs: Option<u64>,
    /// Hours of history (by receipt time) the insights gauges cover [default: 168]
    #[arg(long, env = "PANORAMA_INSIGHTS_WINDOW_HOURS", global = true)]
    pub(crate) insights_window_hours: Option<u64>,
    /// OTLP/HTTP endpoint for traces, e.g. http://collector:4318 (only in
    /// builds with the otlp feature)
    #[arg(long, env = "PANORAMA_OTLP_ENDPOINT", global = true)]
    pub(crate) otlp_endpoint: Option<String>,
    /// Log output: pretty or json [default: pretty]
    #[arg(long, env = "PANORAMA_LOG_FORMAT", global = true)]
    pub(crate) log_format: Option<String>,
    /// Log filter, e.g. info or panorama=debug,info [default: info]
    #[arg(long, env = "PANORAMA_LOG", global = true)]
    pub(crate) log: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Pretty,
    Json,
}

/// Settings with every default filled in and every value checked.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) http_addr: String,
    pub(crate) database_url: String,
    pub(crate) kafka_brokers: String,
    pub(crate) topic: String,
    pub(crate) dlq_topic: String,
    pub(crate) consumer_group: String,
    pub(crate) topics: panorama::TopicSettings,
    pub(crate) default_region: Option<Region>,
    pub(crate) identity_rules: IdentityRules,
    pub(crate) view_rules: ViewRules,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_email_body_bytes: usize,
    pub(crate) produce_timeout: Duration,
    pub(crate) projector_batch_size: usize,
    pub(crate) projector_batch_wait: Duration,
    pub(crate) projector_batch_bytes: usize,
    pub(crate) projector_stall_after: Duration,
    pub(crate) db_statement_timeout: Option<Duration>,
    pub(crate) db_idle_in_transaction_timeout: Option<Duration>,
    pub(crate) crash_points: panorama_core::CrashPoints,
    pub(crate) db_pool_size: usize,
    pub(crate) log_format: LogFormat,
    pub(crate) log: String,
    pub(crate) channels: panorama_server::ChannelSettings,
    pub(crate) live: panorama_server::LiveSettings,
    pub(crate) changes_retention: Duration,
    pub(crate) insights: Option<panorama_server::InsightsSettings>,
    pub(crate) otlp_endpoint: Option<String>,
}

fn positive_days(name: &str, days: u32) -> anyhow::Result<u32> {
    if days == 0 || days > 3650 {
        anyhow::bail!("{name} must be from 1 to 3650 days");
    }
    Ok(days)
}

/// Milliseconds as a duration; 0 for none.
fn optional_millis(millis: u64) -> Option<Duration> {
    (millis > 0).then(|| Duration::from_millis(millis))
}

fn list(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn secret(raw: Option<String>) -> Option<String> {
    raw.map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

impl Settings {
    /// Fills what flags and environment left unset from `other`.
    fn or(self, other: Settings) -> Settings {
        Settings {
            http_addr: self.http_addr.or(other.http_addr),
            database_url: self.database_url.or(other.database_url),
            kafka_brokers: self.kafka_brokers.or(other.kafka_brokers),
            topic: self.topic.or(other.topic),
            dlq_topic: self.dlq_topic.or(other.dlq_topic),
            consumer_group: self.consumer_group.or(other.consumer_group),
            topic_partitions: self.topic_partitions.or(other.topic_partitions),
            topic_replication_factor: self
                .topic_replication_factor
                .or(other.topic_replication_factor),
            topic_min_insync_replicas: self
                .topic_min_insync_replicas
                .or(other.topic_min_insync_replicas),
            topic_retention_ms: self.topic_retention_ms.or(other.topic_retention_ms),
            default_region: self.default_region.or(other.default_region),
            identity_rules: self.identity_rules.or(other.identity_rules),
            case_window_days: self.case_window_days.or(other.case_window_days),
            unresolved_after_days: self.unresolved_after_days.or(other.unresolved_after_days),
            priority_rules: self.priority_rules.or(other.priority_rules),
            max_body_bytes: self.max_body_bytes.or(other.max_body_bytes),
            max_email_body_bytes: self.max_email_body_bytes.or(other.max_email_body_bytes),
            produce_timeout_ms: self.produce_timeout_ms.or(other.produce_timeout_ms),
            projector_batch_size: self.projector_batch_size.or(other.projector_batch_size),
            projector_batch_wait_ms: self
                .projector_batch_wait_ms
                .or(other.projector_batch_wait_ms),
            projector_batch_bytes: self.projector_batch_bytes.or(other.projector_batch_bytes),
            projector_stall_secs: self.projector_stall_secs.or(other.projector_stall_secs),
            db_statement_timeout_ms: self
                .db_statement_timeout_ms
                .or(other.db_statement_timeout_ms),
            db_idle_in_transaction_timeout_ms: self
                .db_idle_in_transaction_timeout_ms
                .or(other.db_idle_in_transaction_timeout_ms),
            crash_points: self.crash_points.or(other.crash_points),
            db_pool_size: self.db_pool_size.or(other.db_pool_size),
            sse_heartbeat_ms: self.sse_heartbeat_ms.or(other.sse_heartbeat_ms),
            sse_poll_ms: self.sse_poll_ms.or(other.sse_poll_ms),
            changes_retention_hours: self
                .changes_retention_hours
                .or(other.changes_retention_hours),
            log_format: self.log_format.or(other.log_format),
            log: self.log.or(other.log),
            insights_refresh_secs: self.insights_refresh_secs.or(other.insights_refresh_secs),
            insights_window_hours: self.insights_window_hours.or(other.insights_window_hours),
            otlp_endpoint: self.otlp_endpoint.or(other.otlp_endpoint),
            public_url: self.public_url.or(other.public_url),
            twilio_auth_token: self.twilio_auth_token.or(other.twilio_auth_token),
            meta_app_secret: self.meta_app_secret.or(other.meta_app_secret),
            meta_verify_token: self.meta_verify_token.or(other.meta_verify_token),
            mailgun_signing_key: self.mailgun_signing_key.or(other.mailgun_signing_key),
            sendgrid_secret: self.sendgrid_secret.or(other.sendgrid_secret),
            channel_tokens: self.channel_tokens.or(other.channel_tokens),
            web_write_keys: self.web_write_keys.or(other.web_write_keys),
            web_allowed_origins: self.web_allowed_origins.or(other.web_allowed_origins),
        }
    }

    /// Layers flags/env over the file (if any) over the defaults.
    pub(crate) fn resolve(self, file: Option<&PathBuf>) -> anyhow::Result<Config> {
        let from_file = match file {
            None => Settings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
        };
        let merged = self.or(from_file);
        let default_region = match merged.default_region.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) => Some(
                code.parse::<Region>()
                    .map_err(|e| anyhow::anyhow!("default_region: {e}"))?,
            ),
        };
        let identity_rules = IdentityRules::default()
            .with_spec(merged.identity_rules.as_deref().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("identity_rules: {e}"))?;
        let view_rules = ViewRules {
            cases: CaseRules {
                window: chrono::Duration::days(i64::from(positive_days(
                    "case_window_days",
                    merged.case_window_days.unwrap_or(7),
                )?)),
            },
            unresolved_after: chrono::Duration::days(i64::from(positive_days(
                "unresolved_after_days",
                merged.unresolved_after_days.unwrap_or(3),
            )?)),
            priority: PriorityRules::parse(merged.priority_rules.as_deref().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("priority_rules: {e}"))?,
        };
        let log_format = match merged.log_format.as_deref().unwrap_or("pretty") {
            "pretty" | "text" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => anyhow::bail!("log_format: expected pretty or json, got {other:?}"),
        };
        let positive = |name: &str, value: usize| {
            if value == 0 {
                anyhow::bail!("{name} must be at least 1");
            }
            Ok(value)
        };
        let at_least_one = |name: &str, value: u64| {
            if value == 0 {
                anyhow::bail!("{name} must be at least 1");
            }
            Ok(value)
        };
        let insights = match merged.insights_refresh_secs.unwrap_or(60) {
            0 => None,
            seconds => Some(panorama_server::InsightsSettings {
                refresh: Duration::from_secs(seconds),
                window: Duration::from_secs(
                    3600u64.saturating_mul(positive(
                        "insights_window_hours",
                        usize::try_from(merged.insights_window_hours.unwrap_or(168))
                            .unwrap_or(usize::MAX),
                    )? as u64),
                ),
            }),
        };
        Ok(Config {
            insights,
            otlp_endpoint: secret(merged.otlp_endpoint),
            http_addr: merged.http_addr.unwrap_or_else(|| "127.0.0.1:8080".into()),
            database_url: merged
                .database_url
                .unwrap_or_else(|| "postgres://panorama@127.0.0.1:5432/panorama".into()),
            kafka_brokers: merged
                .kafka_brokers
                .unwrap_or_else(|| "127.0.0.1:9092".into()),
            topic: merged
                .topic
                .unwrap_or_else(|| "panorama.contact-events.v1".into()),
            dlq_topic: merged
                .dlq_topic
                .unwrap_or_else(|| "panorama.contact-events.dlq.v1".into()),
            consumer_group: merged
                .consumer_group
                .unwrap_or_else(|| "panorama-projector".into()),
            topics: panorama::TopicSettings {
                partitions: i32::try_from(positive(
                    "topic_partitions",
                    usize::try_from(merged.topic_partitions.unwrap_or(6)).unwrap_or(0),
                )?)?,
                replication_factor: i32::try_from(positive(
                    "topic_replication_factor",
                    usize::try_from(merged.topic_replication_factor.unwrap_or(3)).unwrap_or(0),
                )?)?,
                min_insync_replicas: i32::try_from(positive(
                    "topic_min_insync_replicas",
                    usize::try_from(merged.topic_min_insync_replicas.unwrap_or(2)).unwrap_or(0),
                )?)?,
                retention_ms: match merged.topic_retention_ms.unwrap_or(-1) {
                    ms if ms == -1 || ms > 0 => ms,
                    _ => anyhow::bail!("topic_retention_ms must be -1 (forever) or positive"),
                },
            },
            default_region,
            identity_rules,
            view_rules,
            max_body_bytes: positive(
                "max_body_bytes",
                merged.max_body_bytes.unwrap_or(1024 * 1024),
            )?,
            max_email_body_bytes: positive(
                "max_email_body_bytes",
                merged
                    .max_email_body_bytes
                    .unwrap_or(panorama_server::DEFAULT_MAX_EMAIL_BODY_BYTES),
            )?,
            produce_timeout: Duration::from_millis(
                merged.produce_timeout_ms.unwrap_or(5000).max(1),
            ),
            projector_batch_size: positive(
                "projector_batch_size",
                merged.projector_batch_size.unwrap_or(2000),
            )?,
            projector_batch_wait: Duration::from_millis(
                merged.projector_batch_wait_ms.unwrap_or(20),
            ),
            projector_batch_bytes: positive(
                "projector_batch_bytes",
                merged.projector_batch_bytes.unwrap_or(16 * 1024 * 1024),
            )?,
            projector_stall_after: Duration::from_secs(at_least_one(
                "projector_stall_secs",
                merged.projector_stall_secs.unwrap_or(60),
            )?),
            db_statement_timeout: optional_millis(merged.db_statement_timeout_ms.unwrap_or(30_000)),
            db_idle_in_transaction_timeout: optional_millis(
                merged.db_idle_in_transaction_timeout_ms.unwrap_or(30_000),
            ),
            crash_points: panorama_core::CrashPoints::parse(
                merged.crash_points.as_deref().unwrap_or_default(),
            )
            .map_err(|e| anyhow::anyhow!("crash_points: {e}"))?,
            db_pool_size: positive("db_pool_size", merged.db_pool_size.unwrap_or(16))?,
            live: panorama_server::LiveSettings {
                heartbeat: Duration::from_millis(at_least_one(
                    "sse_heartbeat_ms",
                    merged.sse_heartbeat_ms.unwrap_or(15_000),
                )?),
                poll: Duration::from_millis(at_least_one(
                    "sse_poll_ms",
                    merged.sse_poll_ms.unwrap_or(5_000),
                )?),
            },
            changes_retention: Duration::from_secs(
                3600 * at_least_one(
                    "changes_retention_hours",
                    merged.changes_retention_hours.unwrap_or(24),
                )?
                .min(24 * 365 * 10),
            ),
            log_format,
            log: merged.log.unwrap_or_else(|| "info".into()),
            channels: panorama_server::ChannelSettings {
                public_url: secret(merged.public_url),
                twilio_auth_token: secret(merged.twilio_auth_token),
                meta_app_secret: secret(merged.meta_app_secret),
                meta_verify_token: secret(merged.meta_verify_token),
                mailgun_signing_key: secret(merged.mailgun_signing_key),
                sendgrid_secret: secret(merged.sendgrid_secret),
                channel_tokens: list(merged.channel_tokens),
                web_write_keys: list(merged.web_write_keys),
                web_allowed_origins: list(merged.web_allowed_origins),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile_dir();
        let path = dir.join("panorama.toml");
        std::fs::write(
            &path,
            "topic = \"from-file\"\nhttp_addr = \"0.0.0.0:9000\"\ndefault_region = \"nl\"\n",
        )
        .expect("write config");
        let flags = Settings {
            http_addr: Some("127.0.0.1:1".into()),
            ..Settings::default()
        };
        let config = flags.resolve(Some(&path)).expect("valid");
        assert_eq!(config.http_addr, "127.0.0.1:1");
        assert_eq!(config.topic, "from-file");
        assert_eq!(config.dlq_topic, "panorama.contact-events.dlq.v1");
        assert!(config.default_region.is_some());
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let bad_region = Settings {
            default_region: Some("XX".into()),
            ..Settings::default()
        };
        assert!(
            bad_region
                .resolve(None)
                .expect_err("region")
                .to_string()
                .contains("default_region")
        );
        let bad_format = Settings {
            log_format: Some("xml".into()),
            ..Settings::default()
        };
        assert!(
            bad_format
                .resolve(None)
                .expect_err("format")
                .to_string()
                .contains("log_format")
        );
        let zero = Settings {
            projector_batch_size: Some(0),
            ..Settings::default()
        };
        assert!(
            zero.resolve(None)
                .expect_err("zero")
                .to_string()
                .contains("projector_batch_size")
        );
    }

    #[test]
    fn email_routes_have_their_own_body_limit() {
        let defaults = Settings::default().resolve(None).expect("valid");
        assert_eq!(defaults.max_body_bytes, 1024 * 1024);
        assert_eq!(defaults.max_email_body_bytes, 25 * 1024 * 1024);
        let dir = tempfile_dir();
        let path = dir.join("email.toml");
        std::fs::write(
            &path,
            "max_email_body_bytes = 52428800
",
        )
        .expect("write config");
        let from_file = Settings::default().resolve(Some(&path)).expect("valid");
        assert_eq!(from_file.max_email_body_bytes, 50 * 1024 * 1024);
        assert_eq!(from_file.max_body_bytes, 1024 * 1024);
        let zero = Settings {
            max_email_body_bytes: Some(0),
            ..Settings::default()
        };
        assert!(
            zero.resolve(None)
                .expect_err("zero")
                .to_string()
                .contains("max_email_body_bytes")
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile_dir();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "colour = \"red\"\n").expect("write config");
        assert!(Settings::default().resolve(Some(&path)).is_err());
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("panorama-config-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn uuid_like() -> String {
        format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "")
    }
}

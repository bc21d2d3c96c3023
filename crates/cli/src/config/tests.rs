use std::path::PathBuf;

use clap::{CommandFactory as _, FromArgMatches as _};

use super::*;
use crate::Cli;

/// The command as `main` builds it, without environment variables, so the
/// shell running the tests cannot change what they see (the variables are
/// tested through the binary, in `tests/config.rs`).
fn command() -> Command {
    annotate(Cli::command()).mut_args(|arg| arg.env(None))
}

/// Loads the options from `args` (after `panorama`, before `migrate`) and
/// the config file `file` holds, if any.
fn load_from(file: Option<&str>, args: &[&str]) -> anyhow::Result<panorama::Options> {
    let dir = temp_dir();
    let path = file.map(|text| {
        let path = dir.join("panorama.toml");
        std::fs::write(&path, text).expect("write config");
        path
    });
    let mut command = command();
    let line = ["panorama"].iter().chain(args).chain(&["migrate"]);
    let matches = command
        .try_get_matches_from_mut(line)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let cli = Cli::from_arg_matches(&matches)?;
    load(path.as_deref(), &cli.settings, &command, &matches)
}

fn error(file: Option<&str>, args: &[&str]) -> String {
    load_from(file, args).expect_err("refused").to_string()
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let file = "default_region = \"nl\"\n\
                [http]\naddr = \"0.0.0.0:9000\"\n\
                [kafka]\ntopic = \"from-file\"\ndlq_topic = \"from-file\"\n\
                [projector]\nbatch_size = 10\n";
    let options = load_from(
        Some(file),
        &["--http-addr", "127.0.0.1:1", "--dlq-topic", "from-flag"],
    )
    .expect("valid");
    assert_eq!(options.http.addr, "127.0.0.1:1");
    assert_eq!(options.kafka.dlq_topic, "from-flag");
    assert_eq!(options.kafka.topic, "from-file");
    assert_eq!(options.projector.batch_size, 10);
    assert_eq!(options.default_region, "NL".parse().ok());
    let defaults = panorama::Options::default();
    assert_eq!(options.kafka.consumer_group, defaults.kafka.consumer_group);
    assert_eq!(options.projector.batch_wait, defaults.projector.batch_wait);
    assert_eq!(options.http.max_body_bytes, defaults.http.max_body_bytes);
}

#[test]
fn nothing_given_is_the_defaults() {
    let options = load_from(None, &[]).expect("valid");
    assert_eq!(
        render(&options).expect("renders"),
        render(&panorama::Options::default()).expect("renders")
    );
    assert_eq!(options.http.addr, "127.0.0.1:8080");
    assert_eq!(options.projector.batch_size, 2000);
    // Ingest answers wait for the broker: no linger is added to them.
    let producer = options.producer_settings().expect("producer settings");
    assert_eq!(producer.linger, std::time::Duration::ZERO);
    assert_eq!(
        options.insights.settings().map(|s| s.refresh),
        Some(std::time::Duration::from_secs(60))
    );
}

#[test]
fn bad_values_are_refused_by_name_and_origin() {
    let region = error(None, &["--default-region", "XX"]);
    assert!(
        region.contains("--default-region (default_region)"),
        "{region}"
    );
    let format = error(None, &["--log-format", "xml"]);
    assert!(format.contains("log.format"), "{format}");
    let zero = error(None, &["--projector-batch-size", "0"]);
    assert!(
        zero.contains("--projector-batch-size (projector.batch_size): must be at least 1"),
        "{zero}"
    );
    let in_file = error(Some("[projector]\nbatch_size = 0\n"), &[]);
    assert!(in_file.contains("invalid config file"), "{in_file}");
    assert!(
        in_file.contains("projector.batch_size: must be at least 1"),
        "{in_file}"
    );
    for (args, key) in [
        (["--case-window-days", "0"], "view_rules.case_window_days"),
        (
            ["--unresolved-after-days", "3651"],
            "view_rules.unresolved_after_days",
        ),
        (["--topic-retention-ms", "0"], "topics.retention_ms"),
        (["--topic-partitions", "0"], "topics.partitions"),
        (["--sse-heartbeat-ms", "0"], "live.heartbeat_ms"),
        (["--insights-window-hours", "0"], "insights.window_hours"),
        (["--identity-rules", "fax=1"], "identity_rules"),
        (["--priority-rules", "high"], "view_rules.priority_rules"),
        (["--crash-points", "nowhere=1"], "crash_points"),
        (
            ["--console-frame-ancestors", "https://*"],
            "--console-frame-ancestors (console.frame_ancestors)",
        ),
    ] {
        let refused = error(None, &args);
        assert!(refused.contains(key), "{args:?}: {refused}");
    }
}

#[test]
fn email_routes_have_their_own_body_limit() {
    let defaults = load_from(None, &[]).expect("valid");
    assert_eq!(defaults.http.max_body_bytes, 1024 * 1024);
    assert_eq!(defaults.http.max_email_body_bytes, 25 * 1024 * 1024);
    let from_file =
        load_from(Some("[http]\nmax_email_body_bytes = 52428800\n"), &[]).expect("valid");
    assert_eq!(from_file.http.max_email_body_bytes, 50 * 1024 * 1024);
    assert_eq!(from_file.http.max_body_bytes, 1024 * 1024);
    let zero = error(None, &["--max-email-body-bytes", "0"]);
    assert!(zero.contains("http.max_email_body_bytes"), "{zero}");
}

#[test]
fn unknown_file_keys_are_refused_by_name() {
    let top = error(Some("colour = \"red\"\n"), &[]);
    assert!(top.contains("colour: unknown key"), "{top}");
    let nested = error(Some("[projector]\ncolour = \"red\"\n"), &[]);
    assert!(nested.contains("projector.colour: unknown key"), "{nested}");
    // The flat keys of older files name themselves too.
    let flat = error(Some("projector_batch_size = 10\n"), &[]);
    assert!(flat.contains("projector_batch_size: unknown key"), "{flat}");
    let channels = error(Some("[channels]\ntwilio = \"x\"\n"), &[]);
    assert!(
        channels.contains("channels.twilio: unknown key"),
        "{channels}"
    );
}

#[test]
fn lists_and_secrets_read_from_text_or_arrays() {
    let file = "[channels]\n\
                channel_tokens = [\" a \", \"\", \"b\"]\n\
                web_write_keys = \"x, y,\"\n\
                twilio_auth_token = \"  \"\n\
                sendgrid_secret = \" s \"\n";
    let options = load_from(
        Some(file),
        &[
            "--web-allowed-origins",
            "https://a.example, https://b.example",
        ],
    )
    .expect("valid");
    let channels = &options.channels;
    assert_eq!(channels.channel_tokens, ["a", "b"]);
    assert_eq!(channels.web_write_keys, ["x", "y"]);
    assert_eq!(
        channels.web_allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(channels.twilio_auth_token, None);
    assert_eq!(channels.sendgrid_secret.as_deref(), Some("s"));
}

#[test]
fn zero_turns_timeouts_and_insights_off() {
    let options = load_from(
        None,
        &[
            "--db-statement-timeout-ms",
            "0",
            "--insights-refresh-secs",
            "0",
        ],
    )
    .expect("valid");
    assert_eq!(options.database.statement_timeout, None);
    assert!(options.database.idle_in_transaction_timeout.is_some());
    assert!(options.insights.settings().is_none());
}

#[test]
fn limits_come_from_the_file_and_flags_and_zero_turns_one_off() {
    let options = load_from(
        Some("[limits]\ntoken_rate = 50\nstreams = 10\n"),
        &["--sse-streams-per-token", "0"],
    )
    .expect("valid");
    let limits = options.limits.settings();
    assert_eq!(limits.token_rate, 50);
    assert_eq!(limits.streams, 10);
    assert_eq!(limits.streams_per_token, 0);
    let defaults = panorama::Options::default().limits;
    assert_eq!(limits.token_concurrency, defaults.token_concurrency);
    assert!(defaults.ingest_inflight_bytes > panorama_server::DEFAULT_MAX_EMAIL_BODY_BYTES);
    assert!(
        error(Some("[limits]\ntoken_rate = -1\n"), &[]).contains("token_rate"),
        "a negative limit is refused by name"
    );
}

#[test]
fn the_linger_setting_reaches_the_producer() {
    let options = load_from(Some("[kafka]\nlinger_ms = 7\n"), &[]).expect("valid");
    let producer = options.producer_settings().expect("producer settings");
    assert_eq!(producer.linger, std::time::Duration::from_millis(7));
}

/// Every variable and flag the flat configuration had, with the TOML key
/// it now fills. Names are an interface: none may go or change meaning.
const SETTINGS: [(&str, &str, &str); 94] = [
    ("PANORAMA_HTTP_ADDR", "http-addr", "http.addr"),
    (
        "PANORAMA_CONSOLE_FRAME_ANCESTORS",
        "console-frame-ancestors",
        "console.frame_ancestors",
    ),
    ("PANORAMA_DATABASE_URL", "database-url", "database.url"),
    ("PANORAMA_KAFKA_BROKERS", "kafka-brokers", "kafka.brokers"),
    ("PANORAMA_TOPIC", "topic", "kafka.topic"),
    ("PANORAMA_DLQ_TOPIC", "dlq-topic", "kafka.dlq_topic"),
    (
        "PANORAMA_CHANGES_TOPIC",
        "changes-topic",
        "kafka.changes_topic",
    ),
    (
        "PANORAMA_CONSUMER_GROUP",
        "consumer-group",
        "kafka.consumer_group",
    ),
    (
        "PANORAMA_TOPIC_PARTITIONS",
        "topic-partitions",
        "topics.partitions",
    ),
    (
        "PANORAMA_TOPIC_REPLICATION_FACTOR",
        "topic-replication-factor",
        "topics.replication_factor",
    ),
    (
        "PANORAMA_TOPIC_MIN_INSYNC_REPLICAS",
        "topic-min-insync-replicas",
        "topics.min_insync_replicas",
    ),
    (
        "PANORAMA_TOPIC_RETENTION_MS",
        "topic-retention-ms",
        "topics.retention_ms",
    ),
    (
        "PANORAMA_DEFAULT_REGION",
        "default-region",
        "default_region",
    ),
    (
        "PANORAMA_IDENTITY_RULES",
        "identity-rules",
        "identity_rules",
    ),
    (
        "PANORAMA_CASE_WINDOW_DAYS",
        "case-window-days",
        "view_rules.case_window_days",
    ),
    (
        "PANORAMA_UNRESOLVED_AFTER_DAYS",
        "unresolved-after-days",
        "view_rules.unresolved_after_days",
    ),
    (
        "PANORAMA_PRIORITY_RULES",
        "priority-rules",
        "view_rules.priority_rules",
    ),
    (
        "PANORAMA_MAX_BODY_BYTES",
        "max-body-bytes",
        "http.max_body_bytes",
    ),
    (
        "PANORAMA_MAX_EMAIL_BODY_BYTES",
        "max-email-body-bytes",
        "http.max_email_body_bytes",
    ),
    (
        "PANORAMA_KAFKA_LINGER_MS",
        "kafka-linger-ms",
        "kafka.linger_ms",
    ),
    (
        "PANORAMA_KAFKA_IDLE_PROBE_MS",
        "kafka-idle-probe-ms",
        "kafka.idle_probe_ms",
    ),
    (
        "PANORAMA_PRODUCE_TIMEOUT_MS",
        "produce-timeout-ms",
        "kafka.produce_timeout_ms",
    ),
    (
        "PANORAMA_PROJECTOR_BATCH_SIZE",
        "projector-batch-size",
        "projector.batch_size",
    ),
    (
        "PANORAMA_PROJECTOR_BATCH_WAIT_MS",
        "projector-batch-wait-ms",
        "projector.batch_wait_ms",
    ),
    (
        "PANORAMA_PROJECTOR_BATCH_BYTES",
        "projector-batch-bytes",
        "projector.batch_bytes",
    ),
    (
        "PANORAMA_PROJECTOR_STALL_SECS",
        "projector-stall-secs",
        "projector.stall_secs",
    ),
    (
        "PANORAMA_DB_STATEMENT_TIMEOUT_MS",
        "db-statement-timeout-ms",
        "database.statement_timeout_ms",
    ),
    (
        "PANORAMA_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        "db-idle-in-transaction-timeout-ms",
        "database.idle_in_transaction_timeout_ms",
    ),
    ("PANORAMA_CRASH_POINTS", "crash-points", "crash_points"),
    (
        "PANORAMA_DB_POOL_SIZE",
        "db-pool-size",
        "database.pool_size",
    ),
    (
        "PANORAMA_SSE_HEARTBEAT_MS",
        "sse-heartbeat-ms",
        "live.heartbeat_ms",
    ),
    ("PANORAMA_SSE_POLL_MS", "sse-poll-ms", "live.poll_ms"),
    (
        "PANORAMA_CHANGES_RETENTION_HOURS",
        "changes-retention-hours",
        "live.changes_retention_hours",
    ),
    ("PANORAMA_PUBLIC_URL", "public-url", "channels.public_url"),
    (
        "PANORAMA_TWILIO_AUTH_TOKEN",
        "twilio-auth-token",
        "channels.twilio_auth_token",
    ),
    (
        "PANORAMA_META_APP_SECRET",
        "meta-app-secret",
        "channels.meta_app_secret",
    ),
    (
        "PANORAMA_META_VERIFY_TOKEN",
        "meta-verify-token",
        "channels.meta_verify_token",
    ),
    (
        "PANORAMA_MAILGUN_SIGNING_KEY",
        "mailgun-signing-key",
        "channels.mailgun_signing_key",
    ),
    (
        "PANORAMA_SENDGRID_SECRET",
        "sendgrid-secret",
        "channels.sendgrid_secret",
    ),
    (
        "PANORAMA_CHANNEL_TOKENS",
        "channel-tokens",
        "channels.channel_tokens",
    ),
    (
        "PANORAMA_WEB_WRITE_KEYS",
        "web-write-keys",
        "channels.web_write_keys",
    ),
    (
        "PANORAMA_WEB_ALLOWED_ORIGINS",
        "web-allowed-origins",
        "channels.web_allowed_origins",
    ),
    (
        "PANORAMA_SEGMENT_WRITE_KEYS",
        "segment-write-keys",
        "channels.segment_write_keys",
    ),
    (
        "PANORAMA_SEGMENT_VERIFIED_WRITE_KEYS",
        "segment-verified-write-keys",
        "channels.segment_verified_write_keys",
    ),
    (
        "PANORAMA_SEGMENT_CONTACT_EVENTS",
        "segment-contact-events",
        "channels.segment_contact_events",
    ),
    (
        "PANORAMA_MIME_AUTHSERV_IDS",
        "mime-authserv-ids",
        "channels.mime_authserv_ids",
    ),
    ("PANORAMA_PRIVACY_SEAL", "privacy-seal", "privacy.seal"),
    (
        "PANORAMA_PRIVACY_KEY_CACHE_SECS",
        "privacy-key-cache-secs",
        "privacy.key_cache_secs",
    ),
    (
        "PANORAMA_SUPPRESSION_DAYS",
        "suppression-days",
        "privacy.suppression_days",
    ),
    ("PANORAMA_RETENTION", "retention", "privacy.retention"),
    (
        "PANORAMA_RETENTION_INTERVAL_SECS",
        "retention-interval-secs",
        "privacy.retention_interval_secs",
    ),
    (
        "PANORAMA_RETENTION_BATCH",
        "retention-batch",
        "privacy.retention_batch",
    ),
    (
        "PANORAMA_AUDIT_RETENTION_DAYS",
        "audit-retention-days",
        "privacy.audit_retention_days",
    ),
    (
        "PANORAMA_DEAD_LETTER_RETENTION_DAYS",
        "dead-letter-retention-days",
        "privacy.dead_letter_retention_days",
    ),
    (
        "PANORAMA_INSIGHTS_REFRESH_SECS",
        "insights-refresh-secs",
        "insights.refresh_secs",
    ),
    (
        "PANORAMA_INSIGHTS_WINDOW_HOURS",
        "insights-window-hours",
        "insights.window_hours",
    ),
    (
        "PANORAMA_OTLP_ENDPOINT",
        "otlp-endpoint",
        "log.otlp_endpoint",
    ),
    ("PANORAMA_LOG_FORMAT", "log-format", "log.format"),
    ("PANORAMA_LOG", "log", "log.filter"),
    ("PANORAMA_TOKEN_RATE", "token-rate", "limits.token_rate"),
    (
        "PANORAMA_TOKEN_CONCURRENCY",
        "token-concurrency",
        "limits.token_concurrency",
    ),
    (
        "PANORAMA_WRITE_KEY_RATE",
        "write-key-rate",
        "limits.write_key_rate",
    ),
    (
        "PANORAMA_WRITE_KEY_CONCURRENCY",
        "write-key-concurrency",
        "limits.write_key_concurrency",
    ),
    (
        "PANORAMA_FAILED_AUTH_PER_MINUTE",
        "failed-auth-per-minute",
        "limits.failed_auth_per_minute",
    ),
    (
        "PANORAMA_INGEST_INFLIGHT_BYTES",
        "ingest-inflight-bytes",
        "limits.ingest_inflight_bytes",
    ),
    (
        "PANORAMA_SSE_STREAMS_PER_TOKEN",
        "sse-streams-per-token",
        "limits.streams_per_token",
    ),
    ("PANORAMA_SSE_STREAMS", "sse-streams", "limits.streams"),
    (
        "PANORAMA_REFUSAL_DELAY_MS",
        "refusal-delay-ms",
        "limits.refusal_delay_ms",
    ),
    (
        "PANORAMA_KAFKA_SECURITY_PROTOCOL",
        "kafka-security-protocol",
        "kafka.security_protocol",
    ),
    (
        "PANORAMA_KAFKA_SASL_MECHANISM",
        "kafka-sasl-mechanism",
        "kafka.sasl_mechanism",
    ),
    (
        "PANORAMA_KAFKA_SASL_USERNAME",
        "kafka-sasl-username",
        "kafka.sasl_username",
    ),
    (
        "PANORAMA_KAFKA_SASL_PASSWORD",
        "kafka-sasl-password",
        "kafka.sasl_password",
    ),
    (
        "PANORAMA_KAFKA_SASL_PASSWORD_FILE",
        "kafka-sasl-password-file",
        "kafka.sasl_password_file",
    ),
    (
        "PANORAMA_KAFKA_SSL_CA_LOCATION",
        "kafka-ssl-ca-location",
        "kafka.ssl_ca_location",
    ),
    (
        "PANORAMA_KAFKA_SSL_CERTIFICATE_LOCATION",
        "kafka-ssl-certificate-location",
        "kafka.ssl_certificate_location",
    ),
    (
        "PANORAMA_KAFKA_SSL_KEY_LOCATION",
        "kafka-ssl-key-location",
        "kafka.ssl_key_location",
    ),
    (
        "PANORAMA_KAFKA_SSL_KEY_PASSWORD",
        "kafka-ssl-key-password",
        "kafka.ssl_key_password",
    ),
    (
        "PANORAMA_KAFKA_OAUTHBEARER_TOKEN_ENDPOINT_URL",
        "kafka-oauthbearer-token-endpoint-url",
        "kafka.oauthbearer_token_endpoint_url",
    ),
    (
        "PANORAMA_KAFKA_OAUTHBEARER_CLIENT_ID",
        "kafka-oauthbearer-client-id",
        "kafka.oauthbearer_client_id",
    ),
    (
        "PANORAMA_KAFKA_OAUTHBEARER_CLIENT_SECRET",
        "kafka-oauthbearer-client-secret",
        "kafka.oauthbearer_client_secret",
    ),
    (
        "PANORAMA_KAFKA_OAUTHBEARER_CLIENT_SECRET_FILE",
        "kafka-oauthbearer-client-secret-file",
        "kafka.oauthbearer_client_secret_file",
    ),
    (
        "PANORAMA_KAFKA_OAUTHBEARER_SCOPE",
        "kafka-oauthbearer-scope",
        "kafka.oauthbearer_scope",
    ),
    (
        "PANORAMA_KAFKA_CLIENT_PROPERTIES",
        "kafka-client-properties",
        "kafka.client_properties",
    ),
    (
        "PANORAMA_WEBHOOK_CONSUMER_GROUP",
        "webhook-consumer-group",
        "webhooks.consumer_group",
    ),
    (
        "PANORAMA_WEBHOOK_TIMEOUT_MS",
        "webhook-timeout-ms",
        "webhooks.timeout_ms",
    ),
    (
        "PANORAMA_WEBHOOK_CONCURRENCY",
        "webhook-concurrency",
        "webhooks.concurrency",
    ),
    (
        "PANORAMA_WEBHOOK_POLL_MS",
        "webhook-poll-ms",
        "webhooks.poll_ms",
    ),
    (
        "PANORAMA_WEBHOOK_FIRST_RETRY_MS",
        "webhook-first-retry-ms",
        "webhooks.first_retry_ms",
    ),
    (
        "PANORAMA_WEBHOOK_MAX_RETRY_SECS",
        "webhook-max-retry-secs",
        "webhooks.max_retry_secs",
    ),
    (
        "PANORAMA_WEBHOOK_GIVE_UP_HOURS",
        "webhook-give-up-hours",
        "webhooks.give_up_hours",
    ),
    (
        "PANORAMA_WEBHOOK_DISABLE_AFTER_FAILURES",
        "webhook-disable-after-failures",
        "webhooks.disable_after_failures",
    ),
    (
        "PANORAMA_WEBHOOK_DISABLE_AFTER_HOURS",
        "webhook-disable-after-hours",
        "webhooks.disable_after_hours",
    ),
    (
        "PANORAMA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
        "webhook-allow-private-addresses",
        "webhooks.allow_private_addresses",
    ),
    (
        "PANORAMA_WEBHOOK_RETENTION_DAYS",
        "webhook-retention-days",
        "webhooks.retention_days",
    ),
];

/// A value for `key` other than its default.
fn sample(key: &str) -> &'static str {
    match key {
        "default_region" => "BE",
        "identity_rules" => "email=2",
        "crash_points" => "projector.after_commit=0",
        "view_rules.priority_rules" => "high:customer.tier=gold",
        "topics.retention_ms" => "86400000",
        "kafka.security_protocol" => "sasl_ssl",
        "kafka.sasl_mechanism" => "PLAIN",
        "kafka.client_properties" => "client.id=elsewhere",
        "log.format" => "json",
        "privacy.seal" => "false",
        "webhooks.allow_private_addresses" => "true",
        "privacy.retention" => "chat=90d",
        "log.filter" => "debug",
        "http.addr" => "0.0.0.0:1",
        "console.frame_ancestors" => "https://*.my.salesforce.com",
        key if key.starts_with("channels.")
            || (key.starts_with("kafka.") && !key.ends_with("_ms")) =>
        {
            "https://elsewhere.example"
        }
        "database.url" | "log.otlp_endpoint" => "http://elsewhere.example",
        _ => "9",
    }
}

#[test]
fn every_variable_and_flag_of_before_still_fills_its_key() {
    let command = command();
    let keys = setting_keys();
    assert_eq!(keys.len(), SETTINGS.len(), "a setting with no row here");
    let defaults = defaults();
    for (env, flag, key) in SETTINGS {
        let arg = Cli::command()
            .get_arguments()
            .find(|arg| arg.get_id().as_str() == key)
            .unwrap_or_else(|| panic!("no flag fills {key}"))
            .clone();
        assert_eq!(arg.get_env().and_then(OsStr::to_str), Some(env), "{key}");
        assert_eq!(arg.get_long(), Some(flag), "{key}");
        assert!(arg.is_global_set(), "{key}: usable after the subcommand");
        let options = load_from(None, &[&format!("--{flag}"), sample(key)])
            .unwrap_or_else(|error| panic!("--{flag} {}: {error}", sample(key)));
        let set = Figment::from(Serialized::defaults(&options))
            .find_value(key)
            .unwrap_or_else(|error| panic!("{key}: {error}"));
        let default = defaults.get(key.split('.').next().unwrap_or_default());
        assert!(
            default_text(&defaults, key).as_deref() != value_text(&set).as_deref(),
            "--{flag} left {key} at its default {default:?}"
        );
        // The value is named as the variable is, as it always was.
        let names: Vec<&str> = command
            .get_arguments()
            .find(|arg| arg.get_id().as_str() == key)
            .and_then(clap::Arg::get_value_names)
            .unwrap_or_default()
            .iter()
            .map(|name| name.as_str())
            .collect();
        assert_eq!(names, [&env[ENV_PREFIX.len()..]], "{key}");
    }
}

/// A leaf value as [`default_text`] renders it.
fn value_text(value: &Value) -> Option<String> {
    let mut dict = Dict::new();
    dict.insert("key".into(), value.clone());
    default_text(&dict, "key")
}

/// Every key of the options, with its section: `http.addr`, ...
fn option_keys(prefix: &str, dict: &Dict, keys: &mut BTreeSet<String>) {
    for (name, value) in dict {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value.as_dict() {
            Some(inner) => option_keys(&key, inner, keys),
            None => {
                keys.insert(key);
            }
        }
    }
}

#[test]
fn every_key_of_the_options_has_a_flag_and_a_variable() {
    let mut keys = BTreeSet::new();
    option_keys("", &defaults(), &mut keys);
    assert_eq!(keys, setting_keys());
    for arg in Cli::command().get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        // The README's rule: the flag is the variable, lower case, dashed.
        let spelled = env
            .to_string_lossy()
            .trim_start_matches(ENV_PREFIX)
            .to_lowercase()
            .replace('_', "-");
        assert_eq!(long, spelled, "{}", arg.get_id());
    }
}

#[test]
fn help_shows_every_default() {
    let help = command()
        .try_get_matches_from(["panorama", "serve", "--help"])
        .expect_err("help")
        .to_string();
    let defaults = defaults();
    for key in setting_keys() {
        if let Some(default) = default_text(&defaults, &key) {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "{key}: {help}"
            );
        }
    }
    assert!(
        help.contains("--projector-batch-size <PROJECTOR_BATCH_SIZE>"),
        "{help}"
    );
    assert!(
        help.contains("Most records the projector writes in one transaction [default: 2000]"),
        "{help}"
    );
}

#[test]
fn printed_settings_read_back_and_hide_secrets() {
    let options = load_from(
        Some("[channels]\ntwilio_auth_token = \"hush\"\nchannel_tokens = \"t1,t2\"\n"),
        &[
            "--projector-batch-size",
            "9",
            "--public-url",
            "https://p.example",
        ],
    )
    .expect("valid");
    let printed = render(&options).expect("renders");
    assert!(
        !printed.contains("hush") && !printed.contains("t1"),
        "{printed}"
    );
    assert!(printed.contains("https://p.example"), "{printed}");
    let again = load_from(Some(&printed), &[]).expect("the printed file is valid");
    assert_eq!(again.projector.batch_size, 9);
    assert_eq!(
        again.channels.public_url.as_deref(),
        Some("https://p.example")
    );
}

/// The TOML examples the README's Configuration section shows.
fn readme_examples(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    section
        .split("```toml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_examples_are_valid_config_files() {
    let readme = std::fs::read_to_string(readme_path()).expect("README");
    let examples = readme_examples(&readme);
    assert!(!examples.is_empty(), "no TOML example under Configuration");
    for example in examples {
        load_from(Some(&example), &[]).unwrap_or_else(|error| panic!("{error}\n{example}"));
    }
}

fn readme_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
}

/// The README's settings table is the one the code renders: every variable,
/// its TOML key, default and description. `make settings` rewrites it.
#[test]
fn the_readme_settings_table_is_the_one_the_code_renders() {
    let path = readme_path();
    let mut readme = std::fs::read_to_string(&path).expect("README");
    let rendered = readme::with_table(&readme, &readme::table(&Cli::command()))
        .expect("the README marks where the settings table goes");
    if std::env::var_os("PANORAMA_WRITE_SETTINGS").is_some() {
        std::fs::write(&path, &rendered).expect("README.md is writable");
        readme = std::fs::read_to_string(&path).expect("README");
    }
    assert!(
        readme == rendered,
        "README.md's settings table differs from the one the code renders; \
         if the change is intended, run `make settings` and commit README.md"
    );
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(
        format!(
            "panorama-config-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], ""),
    );
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn retention_rules_are_read_and_bad_ones_named() {
    let options = load_from(
        Some("[privacy]\nretention = \"chat=90d,call.*=730d\"\naudit_retention_days = 400\n"),
        &["--retention-batch", "50"],
    )
    .expect("valid");
    let retention = options.privacy.retention();
    assert_eq!(retention.policy.events.to_string(), "chat=90d,call.*=730d");
    assert_eq!(
        retention.policy.audit_log,
        Some(std::time::Duration::from_secs(400 * 86_400))
    );
    assert_eq!(retention.policy.dead_letters, None);
    assert_eq!(retention.batch, 50);
    assert!(
        panorama::Options::default()
            .privacy
            .retention()
            .policy
            .is_off()
    );

    let refused = error(None, &["--retention", "chat=90d,chta=30d"]);
    assert!(
        refused.contains("retention") && refused.contains("chta=30d"),
        "{refused}"
    );
}

//! The configuration layers through the real binary: `panorama config`
//! prints the settings in effect, so each layer's precedence (defaults,
//! then the file, then `PANORAMA_*` variables, then flags) shows in what
//! it prints, and refused files and values show in its errors.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `panorama` with `args` and exactly the `PANORAMA_*` variables in
/// `env` (none inherited from the shell running the tests).
fn panorama(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_panorama"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PANORAMA_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("panorama runs")
}

/// The settings `panorama config` prints, as TOML.
fn settings(env: &[(&str, &str)], args: &[&str]) -> toml::Table {
    let output = panorama(env, args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).parse().expect("TOML")
}

/// The error `panorama` fails with.
fn refusal(env: &[(&str, &str)], args: &[&str]) -> String {
    let output = panorama(env, args);
    assert!(
        !output.status.success(),
        "accepted: {}",
        text(&output.stdout)
    );
    text(&output.stderr)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn value<'a>(table: &'a toml::Table, key: &str) -> &'a toml::Value {
    let (section, name) = key.split_once('.').expect("section.key");
    &table[section][name]
}

/// A config file in a directory of its own.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("panorama-config-e2e-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("panorama.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn each_layer_beats_the_one_before() {
    // Four settings, each given by one more layer than the one before.
    let file = config_file(
        "layers",
        "[kafka]\n\
         topic = \"from-file\"\n\
         dlq_topic = \"from-file\"\n\
         consumer_group = \"from-file\"\n",
    );
    let env = [
        ("PANORAMA_CONFIG", file.to_str().expect("utf-8 path")),
        ("PANORAMA_DLQ_TOPIC", "from-env"),
        ("PANORAMA_CONSUMER_GROUP", "from-env"),
    ];
    let printed = settings(&env, &["config", "--consumer-group", "from-flag"]);
    assert_eq!(
        value(&printed, "kafka.brokers").as_str(),
        Some("127.0.0.1:9092")
    );
    assert_eq!(value(&printed, "kafka.topic").as_str(), Some("from-file"));
    assert_eq!(
        value(&printed, "kafka.dlq_topic").as_str(),
        Some("from-env")
    );
    assert_eq!(
        value(&printed, "kafka.consumer_group").as_str(),
        Some("from-flag")
    );
    // --config beats PANORAMA_CONFIG like any flag its variable.
    let other = config_file("other", "[kafka]\ntopic = \"from-other-file\"\n");
    let printed = settings(
        &env,
        &["--config", other.to_str().expect("utf-8"), "config"],
    );
    assert_eq!(
        value(&printed, "kafka.topic").as_str(),
        Some("from-other-file")
    );
    assert_eq!(
        value(&printed, "kafka.dlq_topic").as_str(),
        Some("from-env")
    );
}

#[test]
fn typed_values_layer_the_same_way() {
    let file = config_file(
        "typed",
        "[projector]\nbatch_size = 10\nbatch_wait_ms = 10\nstall_secs = 10\n",
    );
    let env = [
        ("PANORAMA_PROJECTOR_BATCH_WAIT_MS", "20"),
        ("PANORAMA_PROJECTOR_STALL_SECS", "20"),
    ];
    let path = file.to_str().expect("utf-8 path");
    let printed = settings(
        &env,
        &["--config", path, "config", "--projector-stall-secs", "30"],
    );
    assert_eq!(
        value(&printed, "projector.batch_size").as_integer(),
        Some(10)
    );
    assert_eq!(
        value(&printed, "projector.batch_wait_ms").as_integer(),
        Some(20)
    );
    assert_eq!(
        value(&printed, "projector.stall_secs").as_integer(),
        Some(30)
    );
    assert_eq!(
        value(&printed, "projector.batch_bytes").as_integer(),
        Some(16 * 1024 * 1024)
    );
}

#[test]
fn unknown_keys_in_the_file_are_refused_by_name() {
    let file = config_file(
        "unknown",
        "[projector]\nbatch_size = 10\ncolour = \"red\"\n",
    );
    let error = refusal(&[], &["--config", file.to_str().expect("utf-8"), "config"]);
    assert!(error.contains("projector.colour: unknown key"), "{error}");
}

#[test]
fn a_refused_value_names_the_variable_or_flag_that_gave_it() {
    let from_env = refusal(&[("PANORAMA_PROJECTOR_BATCH_SIZE", "0")], &["config"]);
    assert!(
        from_env
            .contains("PANORAMA_PROJECTOR_BATCH_SIZE (projector.batch_size): must be at least 1"),
        "{from_env}"
    );
    let from_flag = refusal(
        &[("PANORAMA_PROJECTOR_BATCH_SIZE", "5")],
        &["config", "--projector-batch-size", "0"],
    );
    assert!(
        from_flag.contains("--projector-batch-size (projector.batch_size)"),
        "{from_flag}"
    );
    // What clap cannot parse, clap refuses, naming the flag as it always did.
    let unparsed = refusal(&[("PANORAMA_DB_POOL_SIZE", "many")], &["config"]);
    assert!(
        unparsed.contains("invalid value 'many' for '--db-pool-size <DB_POOL_SIZE>'"),
        "{unparsed}"
    );
}

#[test]
fn an_unknown_sslmode_in_the_database_url_is_refused_at_start() {
    let refused = refusal(
        &[(
            "PANORAMA_DATABASE_URL",
            "postgres://panorama:hunter2@db.example/panorama?sslmode=verify-fully",
        )],
        &["config"],
    );
    assert!(
        refused.contains(
            "PANORAMA_DATABASE_URL (database.url): sslmode \"verify-fully\" is not one of"
        ),
        "{refused}"
    );
    assert!(!refused.contains("hunter2"), "{refused}");
    let rootless = refusal(
        &[(
            "PANORAMA_DATABASE_URL",
            "host=db.example sslmode=verify-full",
        )],
        &["config"],
    );
    assert!(
        rootless.contains(
            "PANORAMA_DATABASE_URL (database.url): sslmode verify-full needs sslrootcert"
        ),
        "{rootless}"
    );
    let accepted = settings(
        &[(
            "PANORAMA_DATABASE_URL",
            "postgres://panorama@db.example/panorama?sslmode=verify-full&sslrootcert=/ca.pem",
        )],
        &["config"],
    );
    assert!(value(&accepted, "database.url").is_str());
}

#[test]
fn printed_secrets_are_masked() {
    let printed = settings(
        &[
            ("PANORAMA_TWILIO_AUTH_TOKEN", "hush-hush"),
            ("PANORAMA_PUBLIC_URL", "https://p.example"),
        ],
        &["config"],
    );
    assert_eq!(
        value(&printed, "channels.twilio_auth_token").as_str(),
        Some("********")
    );
    assert_eq!(
        value(&printed, "channels.public_url").as_str(),
        Some("https://p.example")
    );
}

#[test]
fn help_shows_each_setting_with_its_default_and_variable() {
    let output = panorama(&[], &["serve", "--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for expected in [
        "--projector-batch-size <PROJECTOR_BATCH_SIZE>",
        "[default: 2000]",
        "[env: PANORAMA_PROJECTOR_BATCH_SIZE=]",
        "[default: 127.0.0.1:8080]",
        "[default: panorama.contact-events.v1]",
    ] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
}

#[test]
fn console_frame_ancestors_are_checked_at_start() {
    let refused = refusal(
        &[(
            "PANORAMA_CONSOLE_FRAME_ANCESTORS",
            "https://desk.example.com *",
        )],
        &["config"],
    );
    assert!(
        refused.contains("PANORAMA_CONSOLE_FRAME_ANCESTORS (console.frame_ancestors): \"*\""),
        "{refused}"
    );
    let defaults = settings(&[], &["config"]);
    assert_eq!(
        value(&defaults, "console.frame_ancestors").as_str(),
        Some("'none'")
    );
    // Shells strip the quotes of 'self'; origins are normalised.
    let accepted = settings(
        &[(
            "PANORAMA_CONSOLE_FRAME_ANCESTORS",
            "self, HTTPS://*.My.Salesforce.com:443/",
        )],
        &["config"],
    );
    assert_eq!(
        value(&accepted, "console.frame_ancestors").as_str(),
        Some("'self' https://*.my.salesforce.com")
    );
}

//! `panorama`: the one binary. `serve` runs the gateway, projector and agent
//! API (all in one process by default), `migrate` applies the schema,
//! `topics` creates the Kafka topics, `token` manages API tokens.

mod config;
mod token;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use panorama::{Role, serve};

use crate::config::{Config, LogFormat, Settings};

/// Omnichannel single customer view: contact events from every channel,
/// one history per customer.
#[derive(Debug, Parser)]
#[command(name = "panorama", version)]
struct Cli {
    /// TOML config file; flags and PANORAMA_* variables override it.
    #[arg(long, env = "PANORAMA_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: ingest gateway, projector and agent API.
    Serve {
        /// Which part to run; `all` runs every part in this process.
        #[arg(long, env = "PANORAMA_ROLE", value_enum, default_value_t = RoleArg::All)]
        role: RoleArg,
    },
    /// Apply database migrations (idempotent).
    Migrate,
    /// Create the contact-event and dead-letter topics if missing.
    Topics,
    /// Create, revoke and list API tokens (bearer tokens with a role).
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    All,
    Gateway,
    Projector,
    Api,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::All => Role::All,
            RoleArg::Gateway => Role::Gateway,
            RoleArg::Projector => Role::Projector,
            RoleArg::Api => Role::Api,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.settings.resolve(cli.config.as_ref())?;
    init_logging(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { role } => serve(&config.into_options(), role.into()).await,
        Command::Migrate => {
            let store = panorama_store::Store::connect(&config.database_url, 1)?;
            let ran = store.migrate().await.context("migration failed")?;
            tracing::info!(applied = ran, "database schema is current");
            Ok(())
        }
        Command::Topics => {
            let topics = [
                (config.topic.as_str(), config.topic_partitions),
                (config.dlq_topic.as_str(), config.topic_partitions),
            ];
            tokio::time::timeout(
                Duration::from_secs(30),
                panorama_bus::create_topics(&config.kafka_brokers, &topics),
            )
            .await
            .context("the broker did not answer within 30 s")?
            .context("cannot create topics")?;
            tracing::info!(topic = %config.topic, dlq = %config.dlq_topic, partitions = config.topic_partitions, "topics exist");
            Ok(())
        }
        Command::Token { command } => token::run(command, &config.database_url).await,
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .with_context(|| format!("log: invalid filter {:?}", config.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.compact().init(),
    }
    Ok(())
}

impl Config {
    fn into_options(self) -> Arc<panorama::Options> {
        Arc::new(panorama::Options {
            http_addr: self.http_addr,
            database_url: self.database_url,
            kafka_brokers: self.kafka_brokers,
            topic: self.topic,
            dlq_topic: self.dlq_topic,
            consumer_group: self.consumer_group,
            default_region: self.default_region,
            identity_rules: self.identity_rules,
            view_rules: self.view_rules,
            max_body_bytes: self.max_body_bytes,
            produce_timeout: self.produce_timeout,
            projector_batch_size: self.projector_batch_size,
            projector_batch_wait: self.projector_batch_wait,
            db_pool_size: self.db_pool_size,
            channels: self.channels,
            live: self.live,
            changes_retention: self.changes_retention,
        })
    }
}

//! `panorama`: the one binary. `serve` runs the gateway, projector and agent
//! API (all in one process by default), `migrate` applies the schema,
//! `topics` creates the Kafka topics, `token` manages API tokens, `replay`
//! rebuilds the projection, `simulate` sends contact-centre traffic,
//! `config` prints the settings in effect.

mod config;
#[cfg(feature = "otlp")]
mod otlp;
mod simulate_args;
mod token;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use panorama::{LogFormat, LogOptions, Options, ProcessRole, serve};

use crate::config::Settings;

/// Omnichannel single customer view: contact events from every channel,
/// one history per customer.
#[derive(Debug, Parser)]
#[command(name = "panorama", version)]
struct Cli {
    /// TOML config file; `PANORAMA_*` variables and flags override it.
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
        #[arg(long, env = "PANORAMA_ROLE", value_enum, default_value_t = ProcessRole::All)]
        role: ProcessRole,
    },
    /// Apply database migrations (idempotent).
    Migrate,
    /// Create the contact-event and dead-letter topics if missing, with the
    /// replication, min.insync.replicas and retention settings, and check
    /// that existing ones have them.
    Topics,
    /// Show each partition's stored offset beside the log's start and end;
    /// with --skip-to-log-start, accept that records retention deleted
    /// before they were projected are gone.
    Offsets {
        /// Move stored offsets that lie before the start of the log up to
        /// it, so the projector can go on (the skipped records are lost).
        #[arg(long)]
        skip_to_log_start: bool,
    },
    /// Rebuild the projection from the topic into a fresh schema; with
    /// --switch, make it the live one once caught up.
    Replay {
        /// Schema to rebuild into (created if missing; an existing one is
        /// resumed from its stored offsets).
        #[arg(long, default_value = "panorama_replay")]
        schema: String,
        /// Once caught up, swap the schema in for `public` (stop every
        /// projector first).
        #[arg(long)]
        switch: bool,
        /// Switch even though people made identity decisions (manual merges,
        /// unmerges, settled conflicts) that a replay drops.
        #[arg(long)]
        discard_manual_identity: bool,
        /// Switch even when the broker cannot tell whether live projectors
        /// are still running.
        #[arg(long)]
        force: bool,
        /// Replay even when the log no longer starts at offset 0 (retention
        /// deleted its oldest records): the rebuilt projection then lacks
        /// them, and a switch loses them for good.
        #[arg(long)]
        allow_incomplete_log: bool,
    },
    /// Send simulated contact-centre traffic (calls, email, WhatsApp,
    /// web, chat, surveys) through the webhooks of a running Panorama.
    Simulate(simulate_args::SimulateArgs),
    /// Create, revoke and list API tokens (bearer tokens with a role).
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Print the settings in effect (defaults, then the config file,
    /// PANORAMA_* variables and flags) as a TOML config file, secrets
    /// masked.
    Config,
}

fn main() -> anyhow::Result<()> {
    let mut command = config::annotate(Cli::command());
    let matches = command.get_matches_mut();
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.format(&mut command).exit());
    let options = config::load(cli.config.as_deref(), &cli.settings, &command, &matches)?;
    let exporter = init_logging(&options.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(run(cli.command, options));
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    outcome
}

async fn run(command: Command, options: Options) -> anyhow::Result<()> {
    match command {
        Command::Serve { role } => serve(&options, role).await,
        Command::Migrate => {
            let store = panorama_store::Store::connect(&options.database.url, 1)?;
            let ran = store.migrate().await.context("migration failed")?;
            tracing::info!(applied = ran, "database schema is current");
            Ok(())
        }
        Command::Topics => panorama::topics::create(&options).await,
        Command::Offsets { skip_to_log_start } => {
            panorama::offsets::run(&options, skip_to_log_start).await
        }
        Command::Token { command } => token::run(command, &options.database.url).await,
        Command::Simulate(args) => simulate_args::run(args, &options).await,
        Command::Config => {
            print!("{}", config::render(&options)?);
            Ok(())
        }
        Command::Replay {
            schema,
            switch,
            discard_manual_identity,
            force,
            allow_incomplete_log,
        } => {
            let mut replay = panorama::replay::ReplayOptions::new(schema);
            replay.switch = switch;
            replay.discard_manual_identity = discard_manual_identity;
            replay.force = force;
            replay.allow_incomplete_log = allow_incomplete_log;
            let report = panorama::replay::replay(&options, &replay).await?;
            tracing::info!(records = report.records, group = %report.group, switched = report.switched.is_some(), "replay done");
            Ok(())
        }
    }
}

#[cfg(feature = "otlp")]
use otlp::Exporter;

/// Without the `otlp` feature there is nothing to flush.
#[cfg(not(feature = "otlp"))]
struct Exporter;

#[cfg(not(feature = "otlp"))]
impl Exporter {
    fn shutdown(self) {}
}

/// Logs to stderr as text or JSON lines; with the `otlp` feature and an
/// endpoint, spans also go to the OTLP collector.
fn init_logging(config: &LogOptions) -> anyhow::Result<Option<Exporter>> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_new(&config.filter)
        .with_context(|| format!("log.filter: invalid filter {:?}", config.filter))?;
    #[cfg(feature = "otlp")]
    let (otlp, exporter) = match &config.otlp_endpoint {
        Some(endpoint) => {
            let (layer, exporter) = otlp::layer(endpoint)?;
            (Some(layer), Some(exporter))
        }
        None => (None, None),
    };
    #[cfg(not(feature = "otlp"))]
    let (otlp, exporter) = (None::<tracing_subscriber::layer::Identity>, None);
    let registry = tracing_subscriber::registry().with(otlp).with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match config.format {
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).init(),
        LogFormat::Pretty => registry.with(fmt.compact()).init(),
    }
    #[cfg(not(feature = "otlp"))]
    if config.otlp_endpoint.is_some() {
        tracing::warn!(
            "PANORAMA_OTLP_ENDPOINT is set but this build has no otlp feature; not exporting traces"
        );
    }
    Ok(exporter)
}

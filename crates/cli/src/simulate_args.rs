//! The flags of `panorama simulate`; the simulation itself is
//! `panorama_simulator`.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use panorama::Options;
use panorama_simulator::{Credentials, Provider, SimulateOptions};

/// What `panorama simulate` is told besides the shared settings (whose
/// channel secrets it signs with, as `serve` checks them).
#[derive(Debug, Clone, Args)]
pub(crate) struct SimulateArgs {
    /// Panorama's base URL.
    #[arg(
        long,
        env = "PANORAMA_SIMULATE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Bearer token with the channel (or admin) role: for survey answers
    /// and case resolutions (POST /v1/events), and for providers whose
    /// webhook secret is not set.
    #[arg(long, env = "PANORAMA_SIMULATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Requests per second once the history is sent.
    #[arg(long, env = "PANORAMA_SIMULATE_RATE", default_value_t = 1.0)]
    rate: f64,
    /// Requests per second while sending the history.
    #[arg(long, env = "PANORAMA_SIMULATE_BACKFILL_RATE", default_value_t = 200.0)]
    backfill_rate: f64,
    /// Stop after this long (e.g. 90s, 10m, 2h); default: until Ctrl-C.
    #[arg(long, env = "PANORAMA_SIMULATE_DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long, env = "PANORAMA_SIMULATE_EVENTS")]
    events: Option<u64>,
    /// Population size.
    #[arg(long, env = "PANORAMA_SIMULATE_CUSTOMERS", default_value_t = 50)]
    customers: usize,
    /// Seed; the same seed and start give the same customers and events.
    /// Default: random, and logged so the run can be repeated.
    #[arg(long, env = "PANORAMA_SIMULATE_SEED")]
    seed: Option<u64>,
    /// When the simulated history starts (RFC 3339); default: --history-days ago.
    #[arg(long, env = "PANORAMA_SIMULATE_START")]
    start: Option<DateTime<Utc>>,
    /// Days of history sent first (backfill); the live part follows it.
    #[arg(long, env = "PANORAMA_SIMULATE_HISTORY_DAYS", default_value_t = 14)]
    history_days: u32,
    /// Channels to use: all, phone, email, social, or any of twilio, cti,
    /// sendgrid, mailgun, whatsapp, instagram, web, chat, survey, agent
    /// (agents resolving the cases of settled matters).
    #[arg(long, env = "PANORAMA_SIMULATE_CHANNELS", default_value = "all")]
    channels: String,
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as 90s, 10m or 2h, got {raw:?}"))?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    Ok(Duration::from_secs(seconds))
}

impl SimulateArgs {
    /// The options of the run, with the channel secrets `config` holds.
    pub(crate) fn into_options(self, config: &Options) -> anyhow::Result<SimulateOptions> {
        anyhow::ensure!(
            self.rate.is_finite() && self.rate > 0.0,
            "--rate must be above 0"
        );
        anyhow::ensure!(
            self.backfill_rate.is_finite() && self.backfill_rate > 0.0,
            "--backfill-rate must be above 0"
        );
        anyhow::ensure!(self.customers > 0, "--customers must be at least 1");
        let providers =
            Provider::parse_list(&self.channels).map_err(|e| anyhow::anyhow!("--channels: {e}"))?;
        let seed = match self.seed {
            Some(seed) => seed,
            None => uuid::Uuid::new_v4().as_u64_pair().0 >> 12,
        };
        let credentials = Credentials {
            channels: config.channels.clone(),
            token: self.token.filter(|token| !token.trim().is_empty()),
        };
        let mut options = SimulateOptions::new(self.url, credentials, seed);
        let history = chrono::Duration::days(i64::from(self.history_days));
        options.plan.history = history;
        if let Some(start) = self.start {
            anyhow::ensure!(
                start + history <= Utc::now(),
                "--start plus --history-days lies in the future; the history must have happened"
            );
            options.plan.start = start;
        } else {
            options.plan.start = options.plan.start + chrono::Duration::days(14) - history;
        }
        options.plan.customers = self.customers;
        options.plan.providers = providers;
        options.plan.rate = self.rate;
        options.backfill_rate = self.backfill_rate;
        options.duration = self.duration;
        options.events = self.events;
        options.default_region = config.default_region;
        Ok(options)
    }
}

/// Runs `panorama simulate` until its limits or Ctrl-C.
pub(crate) async fn run(args: SimulateArgs, config: &Options) -> anyhow::Result<()> {
    let options = args.into_options(config)?;
    let report = panorama_simulator::run_until(&options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("simulation failed")?;
    let total = report.total();
    if total.errors > 0 {
        anyhow::bail!(
            "{} simulated requests failed (see the errors above)",
            total.errors
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3w").is_err());
    }
}

//! `panorama simulate`: contact-centre traffic through the real ingest
//! paths of a running Panorama. A seeded population of customers with
//! personas gets in touch about things that matter to them, hops channels,
//! comes back when a matter is not settled, answers surveys, and sometimes
//! shows up under a second number that a later contact links to them.
//!
//! - [`Plan`] (pure): the requests, in time order, from [`PlanOptions`].
//! - [`predict::expect`] (pure): what the projection ends with once they
//!   are projected in order: customers, merges, cases.
//! - [`providers`]: each request as the provider would send it, signed with
//!   `panorama_channels`' own signing code, or as `POST /v1/events` when
//!   the provider's secret is not configured (same events, same ids:
//!   [`gateway::drafts`]).
//! - [`run`]: sends them, paced, with retries and progress.
//!
//! What several parts need has a module of its own: providers, payloads
//! and planned requests (`planned`), request bodies (`bodies`), the shop's
//! addresses (`shop`), the gateway's drafts ([`gateway`]) and the
//! projector's rules (`projection`). `plan`, `predict`, `providers` and
//! `touches` build on those and not on one another, except that `plan`
//! composes contacts from `touches`.

mod bodies;
mod dice;
pub mod gateway;
mod plan;
mod planned;
mod population;
pub mod predict;
pub mod progress;
mod projection;
pub mod providers;
mod reasons;
mod send;
mod shop;
mod touches;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, Utc};
use panorama_core::Region;
use panorama_server::ChannelSettings;

pub use plan::{Plan, PlanOptions};
pub use planned::{Payload, PlannedEvent, Provider};
pub use population::{Customer, Persona};
pub use predict::{Expectation, expect};
pub use providers::{Credentials, Route};
pub use send::{Counts, Report};

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be set up.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Crate result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Secrets for a demo or test Panorama with every provider webhook on:
/// `make run` configures `serve` with them and the test kit's
/// `simulated_channels()` does the same for a test app.
#[derive(Debug, Clone, Copy)]
pub struct DemoSecrets;

impl DemoSecrets {
    /// `PANORAMA_PUBLIC_URL`.
    pub const PUBLIC_URL: &'static str = "https://panorama.example.com";
    /// `PANORAMA_TWILIO_AUTH_TOKEN`.
    pub const TWILIO_AUTH_TOKEN: &'static str = "demo-twilio-auth-token";
    /// `PANORAMA_META_APP_SECRET`.
    pub const META_APP_SECRET: &'static str = "demo-meta-app-secret";
    /// `PANORAMA_META_VERIFY_TOKEN`.
    pub const META_VERIFY_TOKEN: &'static str = "demo-meta-verify-token";
    /// `PANORAMA_SENDGRID_SECRET`.
    pub const SENDGRID_SECRET: &'static str = "demo-sendgrid-secret";
    /// `PANORAMA_MAILGUN_SIGNING_KEY`.
    pub const MAILGUN_SIGNING_KEY: &'static str = "demo-mailgun-signing-key";
    /// `PANORAMA_CHANNEL_TOKENS`.
    pub const CHANNEL_TOKEN: &'static str = "demo-channel-token";
    /// `PANORAMA_WEB_WRITE_KEYS`.
    pub const WEB_WRITE_KEY: &'static str = "demo-web-write-key";
    /// `PANORAMA_WEB_ALLOWED_ORIGINS`.
    pub const WEB_ORIGIN: &'static str = "https://shop.example";

    /// The channel settings of a Panorama with every webhook on.
    pub fn channel_settings() -> ChannelSettings {
        ChannelSettings {
            public_url: Some(Self::PUBLIC_URL.into()),
            twilio_auth_token: Some(Self::TWILIO_AUTH_TOKEN.into()),
            meta_app_secret: Some(Self::META_APP_SECRET.into()),
            meta_verify_token: Some(Self::META_VERIFY_TOKEN.into()),
            mailgun_signing_key: Some(Self::MAILGUN_SIGNING_KEY.into()),
            sendgrid_secret: Some(Self::SENDGRID_SECRET.into()),
            channel_tokens: vec![Self::CHANNEL_TOKEN.into()],
            web_write_keys: vec![Self::WEB_WRITE_KEY.into()],
            web_allowed_origins: vec![Self::WEB_ORIGIN.into()],
            // Segment calls are not simulated.
            segment_write_keys: Vec::new(),
            segment_verified_write_keys: Vec::new(),
            segment_contact_events: Vec::new(),
            // Email arrives through SendGrid; raw MIME is not simulated.
            mime_authserv_ids: Vec::new(),
        }
    }

    /// Credentials for a Panorama configured with [`Self::channel_settings`];
    /// `token` (channel or admin role) is needed for survey answers.
    pub fn credentials(token: Option<String>) -> Credentials {
        Credentials {
            channels: Self::channel_settings(),
            token,
        }
    }
}

/// A fixed start for reproducible runs in tests: 2026-01-05 08:00 UTC.
pub fn fixed_start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_600_000, 0).unwrap_or_default()
}

/// Everything `panorama simulate` is told.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Panorama's base URL.
    pub url: String,
    /// Webhook secrets and the API token.
    pub credentials: Credentials,
    /// The plan: seed, population, providers, start, history, live rate.
    pub plan: PlanOptions,
    /// Region for national numbers, as the gateway has it (for the events
    /// posted to `/v1/events` in place of an unconfigured webhook).
    pub default_region: Option<Region>,
    /// Requests per second while sending the history.
    pub backfill_rate: f64,
    /// Stop after this many planned requests.
    pub events: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// How often progress is shown (log lines: every ten of these).
    pub progress_interval: Duration,
    /// Tries per request (503s, timeouts, refused connections).
    pub attempts: u32,
    /// Timeout of one request.
    pub request_timeout: Duration,
}

impl SimulateOptions {
    /// Defaults: 50 customers, every provider, 14 days of history ending
    /// now (to the minute), then 1 request per second live; the history is
    /// sent at up to 200 requests per second.
    pub fn new(url: impl Into<String>, credentials: Credentials, seed: u64) -> Self {
        let now = Utc::now()
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap_or_else(|_| Utc::now());
        let history = chrono::Duration::days(14);
        SimulateOptions {
            url: url.into(),
            credentials,
            plan: PlanOptions {
                seed,
                customers: 50,
                providers: Provider::ALL.into_iter().collect(),
                start: now - history,
                history,
                rate: 1.0,
            },
            default_region: None,
            backfill_rate: 200.0,
            events: None,
            duration: None,
            progress_interval: Duration::from_secs(1),
            attempts: 5,
            request_timeout: Duration::from_secs(10),
        }
    }

    /// A short reproducible burst for tests: `customers` people, the first
    /// `events` requests of a history of 10 days from [`fixed_start`], sent
    /// as fast as Panorama answers.
    pub fn burst(
        url: impl Into<String>,
        credentials: Credentials,
        seed: u64,
        customers: usize,
        events: u64,
    ) -> Self {
        let mut options = SimulateOptions::new(url, credentials, seed);
        options.plan.customers = customers;
        options.plan.start = fixed_start();
        options.plan.history = chrono::Duration::days(10);
        options.plan.rate = 10_000.0;
        options.backfill_rate = 10_000.0;
        options.events = Some(events);
        options
    }

    /// The plan this run sends.
    pub fn plan(&self) -> Plan {
        Plan::new(self.plan.clone())
    }

    /// The planned requests this run sends when it reaches its `events`
    /// limit (all of them handled).
    pub fn planned(&self) -> Vec<PlannedEvent> {
        let limit = self.events.unwrap_or(0) as usize;
        self.plan().take(limit).collect()
    }

    /// How each provider's requests go.
    pub fn routes(&self) -> BTreeMap<Provider, Route> {
        self.plan
            .providers
            .iter()
            .map(|&provider| (provider, self.credentials.route(provider)))
            .collect()
    }
}

/// Runs the simulation until its limits are reached.
pub async fn run(options: &SimulateOptions) -> Result<Report> {
    run_until(options, std::future::pending()).await
}

/// Runs the simulation until its limits are reached or `stop` resolves.
pub async fn run_until(
    options: &SimulateOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Report> {
    let client = reqwest::Client::builder()
        .timeout(options.request_timeout)
        .build()
        .map_err(Error::Client)?;
    let routes = options.routes();
    for (provider, route) in &routes {
        match route {
            Route::Webhook => {}
            Route::Events => tracing::info!(
                provider = provider.as_str(),
                "webhook secret not set: sending its events to POST /v1/events"
            ),
            Route::Skip(why) => tracing::warn!(
                provider = provider.as_str(),
                "skipping this channel: it {why}"
            ),
        }
    }
    let plan = options.plan();
    tracing::info!(
        seed = options.plan.seed,
        customers = options.plan.customers,
        start = %options.plan.start.to_rfc3339(),
        history_hours = options.plan.history.num_hours(),
        rate = options.plan.rate,
        url = %options.url,
        "simulating; repeat this run with --seed {} --start {}",
        options.plan.seed,
        options.plan.start.to_rfc3339()
    );
    let sender = send::Sender {
        client,
        base_url: options.url.trim_end_matches('/').to_owned(),
        credentials: options.credentials.clone(),
        region: options.default_region,
        attempts: options.attempts,
    };
    let pace = send::Pace {
        rate: options.plan.rate,
        backfill_rate: options.backfill_rate,
        events: options.events,
        duration: options.duration,
        progress: options.progress_interval,
    };
    Ok(send::send_plan(&sender, plan, &routes, pace, stop).await)
}

#[cfg(test)]
mod tests;

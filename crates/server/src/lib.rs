//! Panorama's HTTP side: the ingest gateway, the agent API, health and
//! metrics, in one actix-web application whose routes depend on the roles
//! this process runs.

mod audit;
mod auth;
mod channels;
mod console;
mod endpoints;
mod error;
mod health;
mod idempotency;
mod ingest;
mod insights;
mod limits;
mod live;
mod metrics;
mod openapi;
mod payload;
mod posting;
mod problem;
mod publish;
mod routes;
mod sealing;
mod token_cache;
mod trace;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use panorama_bus::Producer;
use panorama_core::Region;
use panorama_store::Store;

pub use auth::{AUTH_CACHE_TTL, AUTH_STALE_TTL, Caller};
pub use channels::ChannelSettings;
pub use console::{ConsoleSettings, FrameAncestors};
pub use error::{ApiError, Clash, PROBLEM_JSON};
pub use health::{ReadinessCheck, spawn_readiness_monitor};
pub use ingest::{DEFAULT_MAX_EMAIL_BODY_BYTES, MAX_EVENTS_PER_REQUEST};
pub use insights::{InsightsSettings, spawn_insights_refresher};
pub use limits::{Limit, LimitSettings};
pub use live::LiveSettings;
pub use metrics::{SseConnection, register as register_metrics};
pub use sealing::PrivacySettings;
pub use trace::REQUEST_ID_HEADER;

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port.
    pub addr: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest accepted body on the email routes (SendGrid, Mailgun, raw
    /// MIME), which carry whole messages with their attachments.
    pub max_email_body_bytes: usize,
    /// Topic events are published to.
    pub topic: String,
    /// Region for national phone numbers.
    pub default_region: Option<Region>,
    /// Channel adapter secrets.
    pub channels: ChannelSettings,
    /// Heartbeat and safety poll of live-update streams.
    pub live: LiveSettings,
    /// Rate, concurrency, byte and stream limits.
    pub limits: LimitSettings,
    /// Sealing events on the topic.
    pub privacy: PrivacySettings,
    /// Where to crash on purpose, for fault testing.
    pub crash_points: panorama_core::CrashPoints,
    /// The agent console: who may frame it.
    pub console: ConsoleSettings,
    /// Whether webhook URLs may name loopback, private and link-local
    /// addresses (`POST /v1/webhooks`).
    pub webhook_private_addresses: bool,
}

/// What the routes run against. A role that is off leaves its part `None`
/// and its routes unmounted.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// The event producer: present when this process is a gateway.
    pub producer: Option<Producer>,
    /// The database: present when this process serves the agent API.
    pub store: Option<Store>,
    /// The producer agent actions (cases, notes, tasks) are published with:
    /// present when this process serves the agent API.
    pub actions: Option<Producer>,
    /// The database API tokens are checked against: needed by every process
    /// that serves routes behind a token (gateway and API). Without it, such
    /// routes answer 401 without a token and 503 with one.
    pub access: Option<Store>,
}

pub(crate) struct AppState {
    settings: HttpSettings,
    producer: Option<Producer>,
    store: Option<Store>,
    actions: Option<Producer>,
    access: Option<Store>,
    auth: auth::Authenticator,
    limits: limits::Limits,
    readiness: Vec<(String, ReadinessCheck)>,
    channel_state: channels::ChannelState,
    /// Seals events before they are published.
    sealer: sealing::Sealer,
    /// Change notifications for live-update streams (API role).
    feed: Option<live::ChangeFeed>,
    /// The audit pipeline (API role).
    audit: Option<audit::AuditSink>,
}

/// The database, for the routes that are only mounted when there is one:
/// its absence there is a bug (500), not the caller's fault.
pub(crate) fn store(state: &AppState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or(ApiError::Internal)
}

/// A bound, not yet running HTTP server.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Binds the listener and builds the server.
    pub fn build(
        settings: HttpSettings,
        services: Services,
        readiness: Vec<(String, ReadinessCheck)>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&settings.addr)?;
        if services.producer.is_some() {
            settings.channels.log_enabled();
        }
        let port = listener.local_addr()?.port();
        let feed = services.store.clone().and_then(live::ChangeFeed::start);
        let audit = services.store.clone().and_then(audit::AuditSink::start);
        let auth = auth::Authenticator::new(
            services.access.clone(),
            settings.limits.failed_auth_per_minute,
        );
        let limits = limits::Limits::new(&settings.limits);
        let sealer = sealing::Sealer::new(settings.privacy, services.access.clone());
        let console = web::Data::new(console::Console::new(&settings.console));
        let state = web::Data::new(AppState {
            settings,
            producer: services.producer,
            store: services.store,
            actions: services.actions,
            auth,
            limits,
            access: services.access,
            readiness,
            channel_state: channels::ChannelState::default(),
            sealer,
            feed,
            audit,
        });
        let server = HttpServer::new(move || {
            let gateway = state.producer.is_some();
            let api = state.store.is_some();
            App::new()
                .app_data(state.clone())
                .app_data(console.clone())
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    ApiError::InvalidParameter {
                        field: "query".into(),
                        message: error.to_string(),
                    }
                    .into()
                }))
                // Inside authenticate: sees the caller it found.
                .wrap(from_fn(audit::record))
                .wrap(from_fn(auth::authenticate))
                .wrap(from_fn(metrics::observe))
                .wrap(from_fn(trace::trace))
                // Outermost: a held refusal counts in no request duration.
                .wrap(from_fn(limits::slow_refusals))
                .configure(|config| endpoints::mount(config, gateway, api))
                .default_service(web::to(endpoints::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        Ok(Application { port, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (Ctrl-C, SIGTERM, or [`Application::handle`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

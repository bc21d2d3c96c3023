//! Wiring: builds the parts a role needs and runs them. `main` parses
//! configuration and calls [`serve`]; tests call [`start`] to run the same
//! wiring on port 0. [`replay`] rebuilds the projection from the topic.
//! The traffic simulator is its own crate, `panorama_simulator`.

pub mod offsets;
mod options;
pub mod replay;
pub mod topics;

pub use options::{
    DatabaseOptions, HttpOptions, InsightsOptions, KafkaOptions, LimitOptions, LiveOptions,
    LogFormat, LogOptions, Options, ProjectorOptions, SaslMechanism, SecurityProtocol,
    TopicSettings, WebhookOptions,
};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use panorama_projector::Projector;
use panorama_server::{Application, HttpSettings, ReadinessCheck, Services};
use panorama_store::Store;

/// How long the readiness check waits for the broker's metadata: less than
/// the 2 s a check may take, so a broker that refuses this client's TLS or
/// login is reported with the client's reason, not as a check that took
/// too long.
const KAFKA_CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

/// Most PostgreSQL connections of a gateway-only process, which uses them
/// only to check API tokens (and caches what it learns).
pub const GATEWAY_DB_POOL_SIZE: usize = 2;

/// Which parts of Panorama a process runs (`serve --role`). Not to be
/// confused with [`panorama_core::Role`], what an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProcessRole {
    /// Gateway, projector and API in one process.
    All,
    /// `POST /v1/events` and the channel webhooks.
    Gateway,
    /// Kafka → PostgreSQL.
    Projector,
    /// The agent API.
    Api,
}

impl ProcessRole {
    /// The role's name, as `serve --role` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessRole::All => "all",
            ProcessRole::Gateway => "gateway",
            ProcessRole::Projector => "projector",
            ProcessRole::Api => "api",
        }
    }

    fn gateway(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Gateway)
    }
    fn projector(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Projector)
    }
    fn api(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Api)
    }
}

/// A running Panorama: the HTTP server and, for the projector role, the
/// projector thread.
#[derive(Debug)]
pub struct Running {
    /// The bound HTTP port.
    pub port: u16,
    server: actix_web::dev::ServerHandle,
    server_task: tokio::task::JoinHandle<std::io::Result<()>>,
    projector: Option<Projector>,
    /// The webhook dispatcher and sender (projector role).
    webhooks: Option<panorama_webhooks::Webhooks>,
    pruner: Option<tokio::task::JoinHandle<()>>,
    /// Readiness monitor and insights refresher.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the projector alone (the HTTP side keeps serving).
    pub async fn stop_projector(&mut self) {
        if let Some(pruner) = self.pruner.take() {
            pruner.abort();
        }
        if let Some(projector) = self.projector.take() {
            let _ = tokio::task::spawn_blocking(move || projector.stop()).await;
        }
        if let Some(webhooks) = self.webhooks.take() {
            let _ = tokio::task::spawn_blocking(move || webhooks.stop()).await;
        }
    }

    /// Waits for the server to stop by itself (signal), then stops the
    /// projector.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let served = (&mut self.server_task).await;
        for task in self.background.drain(..) {
            task.abort();
        }
        self.stop_projector().await;
        served
            .context("HTTP server task failed")?
            .context("HTTP server failed")
    }

    /// Stops everything gracefully.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop(true).await;
        self.wait().await
    }
}

/// Builds and starts what `role` needs, returning once the HTTP port is
/// bound.
pub async fn start(options: &Options, role: ProcessRole) -> anyhow::Result<Running> {
    // Refused Kafka security settings stop the process before anything
    // starts, naming the setting.
    let kafka = options.kafka.connection()?;
    // Every series is on /metrics from the first scrape, not only once used.
    panorama_server::register_metrics();
    if role.projector() {
        panorama_projector::register_metrics();
        panorama_webhooks::register_metrics();
    }
    // Every role needs the database: the projector writes to it, the API
    // reads from it, and the gateway checks API tokens against it, which
    // takes only a few connections.
    let store = Store::connect_with(&options.database.url, &options.connect_settings(role))
        .context("invalid database url")?
        .with_identity_rules(options.identity_rules.clone())
        .with_view_rules(options.view_rules.clone())
        .with_suppression_days(options.privacy.suppression_days);
    let producer = if role.gateway() || role.projector() || role.api() {
        Some(options.producer()?)
    } else {
        None
    };

    let mut readiness: Vec<(String, ReadinessCheck)> = Vec::new();
    {
        let store = store.clone();
        readiness.push((
            "postgres".into(),
            Arc::new(move || {
                let store = store.clone();
                Box::pin(async move {
                    store.ping().await.map_err(|e| e.to_string())?;
                    match store.migrations_current().await {
                        Ok(true) => Ok(()),
                        Ok(false) => {
                            Err("schema is not current: run `panorama migrate`".to_owned())
                        }
                        Err(error) => Err(error.to_string()),
                    }
                })
            }),
        ));
    }
    if role.gateway() || role.projector() {
        let connection = kafka.clone();
        let topic = options.kafka.topic.clone();
        readiness.push((
            "kafka".into(),
            Arc::new(move || {
                let connection = connection.clone();
                let topic = topic.clone();
                Box::pin(async move {
                    let lookup = topic.clone();
                    let count = tokio::task::spawn_blocking(move || {
                        panorama_bus::topic_partition_count(
                            &connection,
                            &lookup,
                            KAFKA_CHECK_TIMEOUT,
                        )
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                    if count == 0 {
                        return Err(format!(
                            "topic {topic} does not exist: run `panorama topics`"
                        ));
                    }
                    Ok(())
                })
            }),
        ));
    }

    if role.gateway() || role.projector() {
        tokio::spawn(topics::log_at_start(kafka.clone(), options.topic_specs()));
    }

    let projector = match (role.projector(), &producer) {
        (true, Some(producer)) => Some(
            Projector::spawn(
                options.projector_settings()?,
                store.clone(),
                producer.clone(),
            )
            .context("cannot start the projector thread")?,
        ),
        _ => None,
    };

    // Off the projection's path: its own consumer group on the change
    // feed, and a sender whose receivers can only delay their own
    // deliveries.
    let webhooks = if role.projector() {
        Some(
            panorama_webhooks::Webhooks::spawn(
                {
                    let mut settings = options
                        .webhooks
                        .settings(kafka.clone(), &options.kafka.changes_topic);
                    settings.consumer.idle_probe = options.kafka.idle_probe;
                    settings
                },
                store.clone(),
            )
            .context("cannot start the webhooks")?,
        )
    } else {
        None
    };
    let pruner = role.projector().then(|| {
        tokio::spawn(prune_changes(
            store.clone(),
            options.live.changes_retention(),
        ))
    });
    if let Some(projector) = &projector {
        let ready = Arc::new(projector.readiness());
        readiness.push((
            "projector".into(),
            Arc::new(move || {
                let ready = ready.clone();
                Box::pin(async move { ready() })
            }),
        ));
    }
    let mut background = vec![panorama_server::spawn_readiness_monitor(
        readiness.clone(),
        options.readiness_interval,
    )];
    if role.projector() {
        background.push(panorama_projector::spawn_retention(
            store.clone(),
            options.privacy.retention(),
        ));
        background.push(panorama_projector::spawn_change_feed(
            store.clone(),
            options.change_feed_settings()?,
        ));
    }
    if let (true, Some(insights)) = (role.api(), options.insights.settings()) {
        background.push(panorama_server::spawn_insights_refresher(
            store.clone(),
            insights,
        ));
    }

    let services = Services {
        actions: if role.api() { producer.clone() } else { None },
        producer: if role.gateway() { producer } else { None },
        store: role.api().then(|| store.clone()),
        access: Some(store),
    };
    let settings = HttpSettings {
        addr: options.http.addr.clone(),
        max_body_bytes: options.http.max_body_bytes,
        max_email_body_bytes: options.http.max_email_body_bytes,
        topic: options.kafka.topic.clone(),
        default_region: options.default_region,
        channels: options.channels.clone(),
        live: options.live.settings(),
        limits: options.limits.settings(),
        privacy: options.privacy.settings(),
        crash_points: options.crash_points.clone(),
        console: options.console.settings(),
        webhook_private_addresses: options.webhooks.allow_private_addresses,
    };
    let application = Application::build(settings, services, readiness)
        .with_context(|| format!("cannot listen on {}", options.http.addr))?;
    let port = application.port();
    let server = application.handle();
    let server_task = tokio::spawn(application.run_until_stopped());
    tracing::info!(port, ?role, "panorama serving");
    Ok(Running {
        port,
        server,
        server_task,
        projector,
        webhooks,
        pruner,
        background,
    })
}

/// How often the projector role prunes the change log.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Deletes change-log rows older than `retention`, at start and then every
/// [`PRUNE_EVERY`]. Several projectors pruning at once is harmless.
async fn prune_changes(store: Store, retention: Duration) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match store.prune_changes(retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "change log pruned"),
            Err(error) => tracing::warn!(%error, "cannot prune the change log"),
        }
    }
}

/// Runs `role` until SIGINT or SIGTERM.
pub async fn serve(options: &Options, role: ProcessRole) -> anyhow::Result<()> {
    start(options, role).await?.wait().await
}

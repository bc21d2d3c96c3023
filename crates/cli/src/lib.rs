//! Wiring: builds the parts a role needs and runs them. `main` parses
//! configuration and calls [`serve`]; tests call [`start`] to run the same
//! wiring on port 0. [`replay`] rebuilds the projection from the topic;
//! [`simulate`] sends contact-centre traffic through the ingest paths.

pub mod offsets;
mod progress;
pub mod replay;
pub mod simulate;
pub mod topics;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use panorama_bus::{ConsumerSettings, Producer, ProducerSettings};
use panorama_core::Region;
use panorama_core::identity::IdentityRules;
use panorama_projector::{Projector, ProjectorSettings};
use panorama_server::{
    Application, ChannelSettings, HttpSettings, InsightsSettings, LiveSettings, ReadinessCheck,
    Services,
};
use panorama_store::{ConnectSettings, Store, ViewRules};

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

/// Resolved settings for [`start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// HTTP listen address (port 0 for any free port).
    pub http_addr: String,
    /// PostgreSQL URL.
    pub database_url: String,
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// Contact-event topic.
    pub topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Projector consumer group.
    pub consumer_group: String,
    /// Region for national phone numbers.
    pub default_region: Option<Region>,
    /// Identifier kinds' strengths and per-customer limits.
    pub identity_rules: IdentityRules,
    /// Case grouping, signal thresholds, priority tiers.
    pub view_rules: ViewRules,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest request body on the email routes (whole messages with their
    /// attachments).
    pub max_email_body_bytes: usize,
    /// How long ingest waits for the broker.
    pub produce_timeout: Duration,
    /// Most records per projector transaction.
    pub projector_batch_size: usize,
    /// Most bytes of records per projector transaction.
    pub projector_batch_bytes: usize,
    /// How long records may wait without a committed batch before the
    /// projector reports itself unready.
    pub projector_stall_after: Duration,
    /// `statement_timeout` of every PostgreSQL connection of `serve`.
    pub db_statement_timeout: Option<Duration>,
    /// `idle_in_transaction_session_timeout` of every connection of `serve`.
    pub db_idle_in_transaction_timeout: Option<Duration>,
    /// How `panorama topics` creates topics, and what `serve` expects.
    pub topics: TopicSettings,
    /// Where to crash on purpose, for fault testing.
    pub crash_points: panorama_core::CrashPoints,
    /// Longest wait to fill a projector batch.
    pub projector_batch_wait: Duration,
    /// PostgreSQL connections.
    pub db_pool_size: usize,
    /// Channel adapter secrets.
    pub channels: ChannelSettings,
    /// Heartbeat and safety poll of live-update streams.
    pub live: LiveSettings,
    /// How long change-log rows are kept: the window for resuming a
    /// live-update stream. The projector role prunes older ones.
    pub changes_retention: Duration,
    /// The business gauges (`panorama_insights_*`), refreshed by API
    /// processes; `None` turns them off.
    pub insights: Option<InsightsSettings>,
    /// How often readiness is checked for the `panorama_ready` gauge.
    pub readiness_interval: Duration,
}

impl Options {
    /// Defaults for a broker and database, as `panorama serve` would use.
    pub fn new(database_url: impl Into<String>, kafka_brokers: impl Into<String>) -> Self {
        Options {
            http_addr: "127.0.0.1:8080".into(),
            database_url: database_url.into(),
            kafka_brokers: kafka_brokers.into(),
            topic: "panorama.contact-events.v1".into(),
            dlq_topic: "panorama.contact-events.dlq.v1".into(),
            consumer_group: "panorama-projector".into(),
            default_region: None,
            identity_rules: IdentityRules::default(),
            view_rules: ViewRules::default(),
            max_body_bytes: 1024 * 1024,
            max_email_body_bytes: panorama_server::DEFAULT_MAX_EMAIL_BODY_BYTES,
            produce_timeout: Duration::from_secs(5),
            projector_batch_size: 2000,
            projector_batch_bytes: 16 * 1024 * 1024,
            projector_stall_after: Duration::from_secs(60),
            db_statement_timeout: Some(Duration::from_secs(30)),
            db_idle_in_transaction_timeout: Some(Duration::from_secs(30)),
            topics: TopicSettings::default(),
            crash_points: panorama_core::CrashPoints::none(),
            projector_batch_wait: Duration::from_millis(20),
            db_pool_size: 16,
            channels: ChannelSettings::default(),
            live: LiveSettings::default(),
            changes_retention: Duration::from_secs(24 * 3600),
            insights: Some(InsightsSettings {
                refresh: Duration::from_secs(60),
                window: Duration::from_secs(7 * 24 * 3600),
            }),
            readiness_interval: Duration::from_secs(5),
        }
    }

    /// The projector's settings.
    pub fn projector_settings(&self) -> ProjectorSettings {
        ProjectorSettings {
            consumer: ConsumerSettings::new(&self.kafka_brokers, &self.consumer_group, &self.topic),
            dlq_topic: self.dlq_topic.clone(),
            max_batch: self.projector_batch_size,
            max_batch_bytes: self.projector_batch_bytes,
            max_wait: self.projector_batch_wait,
            publish_dead_letters: true,
            stall_after: self.projector_stall_after,
            crash_points: self.crash_points.clone(),
        }
    }

    /// The specs of the contact-event and dead-letter topics.
    pub fn topic_specs(&self) -> Vec<panorama_bus::TopicSpec> {
        [&self.topic, &self.dlq_topic]
            .into_iter()
            .map(|name| panorama_bus::TopicSpec {
                name: name.clone(),
                partitions: self.topics.partitions,
                replication_factor: self.topics.replication_factor,
                min_insync_replicas: self.topics.min_insync_replicas,
                retention_ms: self.topics.retention_ms,
            })
            .collect()
    }

    /// How `role` connects to PostgreSQL: its pool size, its name on the
    /// server, and the timeouts that keep a stuck statement or a frozen
    /// process from holding locks forever.
    pub fn connect_settings(&self, role: ProcessRole) -> ConnectSettings {
        // The gateway uses the database only to check API tokens.
        let max_connections = if role == ProcessRole::Gateway {
            self.db_pool_size.min(GATEWAY_DB_POOL_SIZE)
        } else {
            self.db_pool_size
        };
        ConnectSettings {
            max_connections,
            schema: None,
            application_name: Some(format!("panorama-{}", role.as_str())),
            statement_timeout: self.db_statement_timeout,
            idle_in_transaction_timeout: self.db_idle_in_transaction_timeout,
        }
    }

    fn producer(&self) -> anyhow::Result<Producer> {
        let mut settings = ProducerSettings::new(&self.kafka_brokers);
        settings.timeout = self.produce_timeout;
        Producer::new(&settings).context("cannot create the Kafka producer")
    }
}

/// How `panorama topics` creates the topics: defaults right for a cluster of
/// three or more brokers, records kept forever (the topic is what a replay
/// rebuilds from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSettings {
    /// Partitions of each topic.
    pub partitions: i32,
    /// Copies of every record.
    pub replication_factor: i32,
    /// Copies that must have a record before it is acknowledged.
    pub min_insync_replicas: i32,
    /// `retention.ms`; -1 keeps records forever.
    pub retention_ms: i64,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings {
            partitions: 6,
            replication_factor: 3,
            min_insync_replicas: 2,
            retention_ms: -1,
        }
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
    // Every series is on /metrics from the first scrape, not only once used.
    panorama_server::register_metrics();
    if role.projector() {
        panorama_projector::register_metrics();
    }
    // Every role needs the database: the projector writes to it, the API
    // reads from it, and the gateway checks API tokens against it, which
    // takes only a few connections.
    let store = Store::connect_with(&options.database_url, &options.connect_settings(role))
        .context("invalid database url")?
        .with_identity_rules(options.identity_rules.clone())
        .with_view_rules(options.view_rules.clone());
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
        let brokers = options.kafka_brokers.clone();
        let topic = options.topic.clone();
        readiness.push((
            "kafka".into(),
            Arc::new(move || {
                let brokers = brokers.clone();
                let topic = topic.clone();
                Box::pin(async move {
                    let lookup = topic.clone();
                    let count = tokio::task::spawn_blocking(move || {
                        panorama_bus::topic_partition_count(
                            &brokers,
                            &lookup,
                            Duration::from_secs(2),
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
        tokio::spawn(topics::log_at_start(
            options.kafka_brokers.clone(),
            options.topic_specs(),
        ));
    }

    let projector = match (role.projector(), &producer) {
        (true, Some(producer)) => Some(
            Projector::spawn(
                options.projector_settings(),
                store.clone(),
                producer.clone(),
            )
            .context("cannot start the projector thread")?,
        ),
        _ => None,
    };

    let pruner = role
        .projector()
        .then(|| tokio::spawn(prune_changes(store.clone(), options.changes_retention)));
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
    if let (true, Some(insights)) = (role.api(), options.insights) {
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
        addr: options.http_addr.clone(),
        max_body_bytes: options.max_body_bytes,
        max_email_body_bytes: options.max_email_body_bytes,
        topic: options.topic.clone(),
        default_region: options.default_region,
        channels: options.channels.clone(),
        live: options.live,
        crash_points: options.crash_points.clone(),
    };
    let application = Application::build(settings, services, readiness)
        .with_context(|| format!("cannot listen on {}", options.http_addr))?;
    let port = application.port();
    let server = application.handle();
    let server_task = tokio::spawn(application.run_until_stopped());
    tracing::info!(port, ?role, "panorama serving");
    Ok(Running {
        port,
        server,
        server_task,
        projector,
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

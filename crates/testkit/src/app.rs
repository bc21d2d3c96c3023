//! The whole application on port 0 against the shared PostgreSQL cluster and
//! broker, with its own database, topics and consumer group.

use std::sync::Once;
use std::time::Duration;

use anyhow::Context as _;
use panorama::{Options, ProcessRole, Running};
use panorama_core::Role as TokenRole;
use panorama_store::Store;
use serde_json::Value;

use crate::{TestDatabase, broker, eventually, postgres, random_name};

/// How long tests wait for asynchronous work before failing.
pub const WAIT: Duration = Duration::from_secs(60);

/// A change to the options before start.
type Configure = Box<dyn FnOnce(&mut Options)>;

/// Builds a [`TestApp`].
#[must_use]
pub struct AppBuilder {
    role: ProcessRole,
    partitions: i32,
    configure: Vec<Configure>,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("role", &self.role)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl AppBuilder {
    /// Runs only `role` (default: every role).
    pub fn role(mut self, role: ProcessRole) -> Self {
        self.role = role;
        self
    }

    /// Partitions of the test's topics (default 3).
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Turns every provider webhook on with the simulator's demo secrets
    /// ([`panorama_simulator::DemoSecrets`]), so `panorama simulate` (or
    /// [`TestApp::simulate_burst`]) can post signed requests to it.
    pub fn simulated_channels(self) -> Self {
        self.configure(|options| {
            options.channels = panorama_simulator::DemoSecrets::channel_settings();
        })
    }

    /// Adjusts the options before start.
    pub fn configure(mut self, change: impl FnOnce(&mut Options) + 'static) -> Self {
        self.configure.push(Box::new(change));
        self
    }

    /// Creates the database and topics, migrates, and starts the app.
    pub async fn spawn(self) -> TestApp {
        self.try_spawn().await.expect("test app starts")
    }

    async fn try_spawn(self) -> anyhow::Result<TestApp> {
        init_logging();
        let database = tokio::task::spawn_blocking(|| postgres().create_database()).await??;
        let bootstrap = tokio::task::spawn_blocking(|| broker().bootstrap()).await?;
        let mut options = Options::new(&database.url, bootstrap);
        options.http.addr = "127.0.0.1:0".into();
        options.kafka.topic = random_name("events");
        options.kafka.dlq_topic = random_name("dlq");
        options.kafka.changes_topic = random_name("changes");
        options.kafka.consumer_group = random_name("projector");
        options.database.pool_size = 8;
        // One broker: one copy of each record is what the topics have.
        options.topics.replication_factor = 1;
        options.topics.min_insync_replicas = 1;
        for change in self.configure {
            change(&mut options);
        }
        let store = Store::connect(&options.database.url, 4)?;
        store.migrate().await.context("migrate")?;
        if options.kafka.brokers == broker().bootstrap() {
            panorama_bus::create_topics(
                &options.kafka.brokers,
                &[
                    (&options.kafka.topic, self.partitions),
                    (&options.kafka.dlq_topic, 1),
                    (&options.kafka.changes_topic, self.partitions),
                ],
            )
            .await
            .context("create topics")?;
        }
        let (_, admin) = store
            .create_token(&random_name("testkit_admin"), TokenRole::Admin)
            .await
            .context("create the admin token")?;
        let admin_token = admin.expose().to_owned();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {admin_token}").parse()?,
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()?;
        let running = panorama::start(&options, self.role).await?;
        let base_url = running.base_url();
        Ok(TestApp {
            options,
            database,
            store,
            running: Some(running),
            base_url,
            http,
            anonymous: reqwest::Client::new(),
            admin_token,
        })
    }
}

/// A running Panorama with its own database and topics.
#[derive(Debug)]
pub struct TestApp {
    /// The options it runs with.
    pub options: Options,
    /// Its database.
    pub database: TestDatabase,
    /// A store on its database, for assertions.
    pub store: Store,
    /// The running application.
    pub running: Option<Running>,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// An HTTP client that sends the admin token on every request (a header
    /// the request sets itself, such as other `Authorization`, wins).
    pub http: reqwest::Client,
    /// An HTTP client that sends no credentials.
    pub anonymous: reqwest::Client,
    /// The secret of the admin API token created at spawn.
    pub admin_token: String,
}

impl TestApp {
    /// Every role, 3 partitions.
    pub async fn spawn() -> TestApp {
        TestApp::builder().spawn().await
    }

    /// A builder for other shapes.
    pub fn builder() -> AppBuilder {
        AppBuilder {
            role: ProcessRole::All,
            partitions: 3,
            configure: Vec::new(),
        }
    }

    /// Creates an API token with `role` under a random name and returns its
    /// secret. A channel token posts under the source of the tests' events,
    /// `e2e`.
    pub async fn token(&self, role: TokenRole) -> String {
        let name = random_name(&format!("test_{role}"));
        let source = (role == TokenRole::Channel).then_some("e2e");
        let (_, secret) = self
            .store
            .create_token_with_source(&name, role, source)
            .await
            .expect("create a token");
        secret.expose().to_owned()
    }

    /// A request to a path (with query) of the app carrying `token` as
    /// `Authorization: Bearer`, or no credentials at all for `None`.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self
            .anonymous
            .request(method, format!("{}{path}", self.base_url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST /v1/events` with a JSON body, as admin.
    pub async fn post_events(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/events", self.base_url))
            .json(body)
            .send()
            .await
            .expect("POST /v1/events answers")
    }

    /// `POST` a JSON body to a path of the app, as admin.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base_url))
            .json(body)
            .send()
            .await
            .expect("POST answers")
    }

    /// `GET` a path (with query) of the app, as admin.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("GET answers")
    }

    /// `GET` a path as admin and parse the JSON body of a 200 answer.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }

    /// Waits until the projection holds exactly `count` events.
    pub async fn wait_for_events(&self, count: i64) {
        let store = self.store.clone();
        eventually(&format!("{count} events projected"), WAIT, || {
            let store = store.clone();
            async move { store.totals().await.ok().filter(|t| t.events == count) }
        })
        .await;
    }

    /// Waits until the stored offsets of the test's topic add up to
    /// `records`: every record so far has been consumed and committed.
    pub async fn wait_for_offsets(&self, records: i64) {
        eventually(&format!("offsets at {records}"), WAIT, || async move {
            let stored = self.stored_offsets().await;
            (stored == records).then_some(())
        })
        .await;
    }

    /// The sum of the stored next offsets of the topic's partitions.
    pub async fn stored_offsets(&self) -> i64 {
        let partitions: Vec<i32> = (0..64).collect();
        self.store
            .next_offsets(
                &self.options.kafka.consumer_group,
                &self.options.kafka.topic,
                &partitions,
            )
            .await
            .map(|offsets| offsets.values().sum())
            .unwrap_or(0)
    }

    /// The sum of the high watermarks of `topic`: how many records it holds.
    pub async fn records_in(&self, topic: &str) -> i64 {
        let connection = self.options.kafka.connection().expect("kafka settings");
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            panorama_bus::high_watermarks(connection, &topic, Duration::from_secs(5))
                .expect("watermarks")
                .iter()
                .map(|(_, high)| high)
                .sum()
        })
        .await
        .expect("watermark task")
    }

    /// Starts `role` the way another process would run it: its own pool,
    /// listeners and port, on this app's database, broker, topics and
    /// consumer group. Stop it with [`Running::stop`].
    pub async fn start_role(&self, role: ProcessRole) -> Running {
        panorama::start(&self.options, role)
            .await
            .expect("the other process starts")
    }

    /// Simulator options aimed at this app: the demo secrets (start the app
    /// with [`AppBuilder::simulated_channels`]) and the admin token, for a
    /// burst of the first `events` requests of `seed`'s plan for
    /// `customers` people, as fast as the app answers.
    pub fn simulation(
        &self,
        seed: u64,
        customers: usize,
        events: u64,
    ) -> panorama_simulator::SimulateOptions {
        let credentials =
            panorama_simulator::DemoSecrets::credentials(Some(self.admin_token.clone()));
        let mut options = panorama_simulator::SimulateOptions::burst(
            &self.base_url,
            credentials,
            seed,
            customers,
            events,
        );
        options.default_region = self.options.default_region;
        options
    }

    /// Sends a seeded burst (see [`TestApp::simulation`]) and waits until
    /// every event it sent is projected. Panics when a request fails.
    pub async fn simulate_burst(&self, seed: u64, customers: usize, events: u64) -> Burst {
        let options = self.simulation(seed, customers, events);
        let planned = options.planned();
        let expectation = panorama_simulator::expect(&planned, options.default_region)
            .expect("the plan is valid");
        let report = panorama_simulator::run(&options)
            .await
            .expect("the simulation runs");
        let total = report.total();
        assert_eq!(total.errors, 0, "simulated requests failed: {report:?}");
        assert_eq!(total.sent, events, "every request answered 2xx: {report:?}");
        self.wait_for_events(expectation.events as i64).await;
        Burst {
            customers: options.plan().customers().to_vec(),
            planned,
            expectation,
            report,
        }
    }

    /// Runs `sql` in the app's database with psql and returns its output
    /// (unaligned rows, `|` between columns). Panics when psql fails.
    pub async fn psql(&self, sql: &str) -> String {
        let database = self.database.name.clone();
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || postgres().psql(&database, &sql))
            .await
            .expect("psql task")
            .expect("psql")
    }

    /// `GET /readyz` of the process at `base_url` (this app's, or another
    /// role's from [`TestApp::start_role`]): its status and its body.
    pub async fn readyz(&self, base_url: &str) -> (u16, Value) {
        let response = self
            .anonymous
            .get(format!("{base_url}/readyz"))
            .send()
            .await
            .expect("readyz answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("readiness body"))
    }

    /// Waits until the process at `base_url` reports itself unready because
    /// its readiness check `check` fails with an error containing `needle`,
    /// and returns that error.
    pub async fn unready_because(&self, base_url: &str, check: &str, needle: &str) -> String {
        eventually(
            &format!("{check} check failing with {needle:?}"),
            WAIT,
            || async {
                let (status, body) = self.readyz(base_url).await;
                if status != 503 {
                    return None;
                }
                body["checks"]
                    .as_array()?
                    .iter()
                    .find(|entry| entry["name"] == check && entry["ok"] == false)
                    .and_then(|entry| entry["error"].as_str())
                    .filter(|error| error.contains(needle))
                    .map(str::to_owned)
            },
        )
        .await
    }

    /// Waits until the process at `base_url` is ready.
    pub async fn wait_ready(&self, base_url: &str) {
        eventually("ready", WAIT, || async {
            (self.readyz(base_url).await.0 == 200).then_some(())
        })
        .await;
    }

    /// The text of `GET /metrics`.
    pub async fn metrics_text(&self) -> String {
        self.anonymous
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Stops the app.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
    }
}

fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = std::env::var("PANORAMA_TEST_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

/// What [`TestApp::simulate_burst`] sent, once it is all projected.
#[derive(Debug, Clone)]
pub struct Burst {
    /// The simulated people (`phone`, `email`, `name`, ... of each).
    pub customers: Vec<panorama_simulator::Customer>,
    /// The requests sent, in order.
    pub planned: Vec<panorama_simulator::PlannedEvent>,
    /// What the projection holds now (customers, merges, cases, events).
    pub expectation: panorama_simulator::Expectation,
    /// Counts per provider.
    pub report: panorama_simulator::Report,
}

impl Burst {
    /// The phone number of a simulated person the burst's events are about.
    pub fn a_phone_number(&self) -> &str {
        let index = self.planned.first().map_or(0, |event| event.customer);
        &self.customers[index].phone
    }
}

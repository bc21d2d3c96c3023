//! Outbound webhooks (README "Outbound webhooks"): the change feed
//! (`panorama.customer-changes.v1`) delivered to the URLs admins register,
//! signed the Standard Webhooks way, in order per customer, retried with
//! exponential backoff for hours.
//!
//! Two parts, both run by the projector role ([`Webhooks::spawn`]):
//!
//! - the [`dispatcher`] consumes the change feed in a consumer group of its
//!   own and queues one delivery per (subscription asking for the type,
//!   change), with its offsets, in one PostgreSQL transaction;
//! - the [`sender`] claims due deliveries, posts them ([`signing`]),
//!   records every attempt and schedules retries ([`backoff`]); a
//!   subscription failing for long enough is disabled until an admin
//!   enables it again.
//!
//! Neither is on the projection's path: the projector commits its batches
//! whatever the receivers do, and a receiver that is down only makes its
//! own deliveries wait.

mod backoff;
mod change;
mod dispatcher;
mod http;
mod metrics;
mod sender;
mod signing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use panorama_bus::ConsumerSettings;
use panorama_store::{DisablePolicy, Store};

pub use backoff::Backoff;
pub use change::{ChangeError, decode as decode_change};
pub use metrics::register as register_metrics;
pub use signing::sign;

/// What can go wrong starting the webhooks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client cannot be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
    /// The dispatcher's thread cannot be started.
    #[error("cannot start the webhook dispatcher: {0}")]
    Thread(#[from] std::io::Error),
}

/// Crate result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the webhooks run.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The change feed and the dispatcher's consumer group.
    pub consumer: ConsumerSettings,
    /// Longest an attempt may take, connecting included.
    pub timeout: Duration,
    /// Most attempts in flight per process.
    pub concurrency: usize,
    /// How often the sender looks for due deliveries when it has nothing
    /// to do.
    pub poll: Duration,
    /// When failed deliveries are retried and given up.
    pub backoff: Backoff,
    /// When a failing subscription is disabled.
    pub disable: DisablePolicy,
    /// Whether deliveries may go to loopback, private and link-local
    /// addresses.
    pub allow_private_addresses: bool,
    /// How long delivered and failed deliveries (with their attempts) are
    /// kept.
    pub retention: Duration,
}

/// The running dispatcher and sender.
#[derive(Debug)]
pub struct Webhooks {
    stop: Arc<AtomicBool>,
    dispatcher: Option<JoinHandle<()>>,
    sender: tokio::task::JoinHandle<()>,
}

impl Webhooks {
    /// Starts the dispatcher on a thread of its own and the sender on the
    /// current Tokio runtime.
    pub fn spawn(settings: WebhookSettings, store: Store) -> Result<Self> {
        let client = http::Client::new(settings.allow_private_addresses).map_err(Error::Client)?;
        let stop = Arc::new(AtomicBool::new(false));
        let dispatcher = dispatcher::Dispatcher {
            consumer: settings.consumer.clone(),
            store: store.clone(),
            runtime: tokio::runtime::Handle::current(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("webhooks".into())
            .spawn(move || dispatcher.run())?;
        let sender = tokio::spawn(sender::run(store, settings, client));
        Ok(Webhooks {
            stop,
            dispatcher: Some(thread),
            sender,
        })
    }

    /// Stops both; blocking (the dispatcher finishes its batch): call it
    /// from a blocking context.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.sender.abort();
        if let Some(thread) = self.dispatcher.take() {
            if thread.join().is_err() {
                tracing::error!("webhook dispatcher thread panicked");
            }
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.shutdown();
    }
}

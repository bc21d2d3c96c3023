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
    /// to do (retries falling due, deliveries queued by another process);
    /// deliveries this process queues wake it at once.
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
    /// Disconnects when the dispatcher's thread ends, so stopping can wait
    /// for it with a bound.
    ended: std::sync::mpsc::Receiver<()>,
    sender: tokio::task::JoinHandle<()>,
}

/// Longest [`Webhooks::stop`] (and dropping them) waits for the dispatcher
/// to finish its batch; a thread still busy after it (stuck on a runtime
/// that shut down) is left to end with the process.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

impl Webhooks {
    /// Starts the dispatcher on a thread of its own and the sender on the
    /// current Tokio runtime.
    pub fn spawn(settings: WebhookSettings, store: Store) -> Result<Self> {
        let client = http::Client::new(settings.allow_private_addresses).map_err(Error::Client)?;
        let stop = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(tokio::sync::Notify::new());
        let dispatcher = dispatcher::Dispatcher {
            consumer: settings.consumer.clone(),
            store: store.clone(),
            runtime: tokio::runtime::Handle::current(),
            stop: stop.clone(),
            queued: queued.clone(),
        };
        let (ended_tx, ended) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("webhooks".into())
            .spawn(move || {
                // Dropped when the thread ends, even by a panic.
                let _ended = ended_tx;
                dispatcher.run();
            })?;
        let sender = tokio::spawn(sender::run(store, settings, client, queued));
        Ok(Webhooks {
            stop,
            dispatcher: Some(thread),
            ended,
            sender,
        })
    }

    /// Stops both; blocking (the dispatcher finishes its batch, waited for
    /// at most 15 s): call it from a blocking context.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.sender.abort();
        let Some(thread) = self.dispatcher.take() else {
            return;
        };
        match self.ended.recv_timeout(STOP_TIMEOUT) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    waited_ms = STOP_TIMEOUT.as_millis() as u64,
                    "webhook dispatcher did not stop; leaving it"
                );
            }
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    tracing::error!("webhook dispatcher thread panicked");
                }
            }
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.shutdown();
    }
}

//! The durable queue: work that can wait, held safely and run when — and only when — a route
//! can serve it, served as the OpenAI Files and Batch API so the official SDKs work unchanged.
//!
//! It owns files, batches, request lines, their pacing and their execution:
//! - `api`: the endpoints (`/v1/files…`, `/v1/batches…`), gated by the gateway's client keys
//!   (`gateway::auth`); `upload` streams an upload into the store line by line (`split`),
//!   `validate` checks a batch's input as OpenAI does, `object` writes OpenAI's objects and
//!   errors, `results` produces the output and error files from the stored line results.
//! - `dispatch`: the one task that validates batches, claims pending lines as `pacing` allows,
//!   runs each through the gateway's own router in process (`line`), writes each result once,
//!   and ends batches (completed, expired, cancelled). `telemetry` exports its depth.
//! - `owner`: a key sees only its own files and batches, by a keyed hash of the key.
//!
//! Everything durable lives in the store (`store::queue`): a line is pending, in flight, then
//! done or failed, and its result is written by the one update that ends its flight. A kill at
//! any moment therefore leaves each line either ended (with exactly one result) or pending/in
//! flight; when an instance takes the queue on (at start, alone on its store; with several
//! instances, when it takes over the queue's lease) every line in flight goes back to pending
//! and is sent again. The promise is
//! exactly once in the result files and at least once towards the provider (a line whose answer
//! arrived but was not yet written when the process died is sent twice).
//!
//! It decides nothing about providers itself: which target serves a line, failover, fixes and
//! breakers are the gateway's (it reads them through `Gateway::readiness`), and outages are the
//! monitor's (it wakes when an incident closes). It never calls itself over HTTP.

mod api;
pub mod client;
pub mod dispatch;
pub mod line;
pub mod object;
pub mod owner;
pub mod pacing;
pub mod results;
pub mod settings;
// Public for the `batch_jsonl` fuzz target (fuzz/), which feeds it uploads in arbitrary chunks.
pub mod split;
pub mod telemetry;
mod upload;
pub mod validate;

use std::sync::Arc;

use thiserror::Error;
use tokio::sync::Notify;

use crate::gateway::Gateway;
use crate::store::{Store, StoreError};
use crate::time::{Clock, Millis, millis_of};
use owner::Owners;
use settings::QueueSettings;

pub use dispatch::{Dispatcher, RunDeps};

/// With several instances on one store, an upload unfinished for this long is a dead
/// instance's: no upload within the size limit takes an hour.
pub const UNFINISHED_UPLOAD_AGE: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Why the queue could not start.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read random bytes for the queue's owner secret: {0}")]
    Random(getrandom::Error),
}

/// The queue: its endpoints ([`Queue::router`]) and its dispatcher ([`Queue::dispatcher`]).
/// Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
}

/// What the endpoints and the dispatcher share.
struct Shared {
    store: Arc<dyn Store>,
    gateway: Gateway,
    owners: Owners,
    settings: QueueSettings,
    clock: Clock,
    /// The endpoints wake the dispatcher: a batch to validate, a cancel to apply.
    wake: Notify,
}

impl Shared {
    fn now(&self) -> Millis {
        self.clock.now()
    }

    fn retention_ms(&self) -> Millis {
        millis_of(self.settings.retention)
    }
}

impl Queue {
    /// Opens the queue on `store`: its owner secret (created on first use), and uploads a dead
    /// process left unfinished removed — every one, alone on the store; with other instances
    /// on it, those begun more than [`UNFINISHED_UPLOAD_AGE`] ago (another instance may be
    /// receiving one now). Lines left in flight go back to pending when the dispatcher takes
    /// the queue on.
    pub async fn open(
        store: Arc<dyn Store>,
        gateway: Gateway,
        settings: QueueSettings,
        clock: Clock,
    ) -> Result<Queue, QueueError> {
        let fresh = owner::fresh_secret().map_err(QueueError::Random)?;
        let secret = store.queue().queue_secret(&fresh).await?;
        let before = match store.cluster() {
            None => Millis::MAX,
            Some(_) => clock.now() - millis_of(UNFINISHED_UPLOAD_AGE),
        };
        store.queue().queue_drop_unfinished_uploads(before).await?;
        Ok(Queue {
            shared: Arc::new(Shared {
                store,
                gateway,
                owners: Owners::new(&secret, settings.open),
                settings,
                clock,
                wake: Notify::new(),
            }),
        })
    }

    /// The Files and Batch API endpoints, to merge with the gateway's.
    pub fn router(&self) -> axum::Router {
        api::router(self.shared.clone())
    }

    /// The dispatcher, to run on its own task until shutdown.
    pub fn dispatcher(&self, deps: RunDeps) -> Dispatcher {
        Dispatcher::new(self.shared.clone(), deps)
    }
}

//! The reset request a mock handler sends to its connection: `reset` scenarios ask for a TCP RST
//! from inside a handler (`routes`), and the connection task (`server`) carries it out when it
//! drops the socket. Its own module so that routes and server each depend on it, not on each
//! other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Set by a handler that wants its connection reset; watched by the connection task.
#[derive(Debug, Default)]
pub(super) struct ResetSignal {
    requested: AtomicBool,
    notify: Notify,
}

impl ResetSignal {
    pub(super) fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        // `notify_one` keeps a permit if the connection task is not waiting yet.
        self.notify.notify_one();
    }

    pub(super) fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    pub(super) async fn requested(&self) {
        self.notify.notified().await;
    }
}

/// The per-connection handle handlers find in their request extensions.
#[derive(Debug, Clone)]
pub(super) struct ConnHandle(pub(super) Arc<ResetSignal>);

//! The mock's request log: the API requests it received (the newest [`REQUEST_LOG_LIMIT`]),
//! which `GET /_mock/requests` lists and [`MockServer::requests`](super::MockServer::requests)
//! returns, and a running count that [`MockServer::received`](super::MockServer::received)
//! waits on, so a test learns that a request arrived from the mock itself instead of polling.
//!
//! It records what `routes` hands it and knows nothing about HTTP or scenarios.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

/// The log keeps the newest this many requests (bodies included), so a long demo cannot grow it
/// forever; tests look at a handful.
const REQUEST_LOG_LIMIT: usize = 1_000;

/// One API request as received (admin requests are not recorded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, or the body as text when it is not JSON, or null when empty.
    pub body: Value,
}

#[derive(Debug, Default)]
struct Entries {
    newest: VecDeque<RecordedRequest>,
    /// Every request recorded since start, clearing and eviction notwithstanding.
    total: usize,
}

/// The log, behind a watch channel: the channel is both the lock (it ignores poisoning, and
/// every update is a plain push or clear) and the signal that a request arrived.
#[derive(Debug)]
pub(super) struct RequestLog {
    entries: watch::Sender<Entries>,
}

impl Default for RequestLog {
    fn default() -> Self {
        RequestLog {
            entries: watch::Sender::new(Entries::default()),
        }
    }
}

impl RequestLog {
    pub(super) fn record(&self, request: RecordedRequest) {
        self.entries.send_modify(|entries| {
            if entries.newest.len() == REQUEST_LOG_LIMIT {
                entries.newest.pop_front();
            }
            entries.newest.push_back(request);
            entries.total += 1;
        });
    }

    /// The requests kept, oldest first.
    pub(super) fn list(&self) -> Vec<RecordedRequest> {
        self.entries.borrow().newest.iter().cloned().collect()
    }

    /// Forgets the requests kept; the running count stays.
    pub(super) fn clear(&self) {
        self.entries.send_modify(|entries| entries.newest.clear());
    }

    /// Completes once `count` requests have been recorded since start.
    pub(super) async fn received(&self, count: usize) {
        let mut entries = self.entries.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail; the guard it returns is
        // dropped at once.
        let _ = entries.wait_for(|entries| entries.total >= count).await;
    }
}

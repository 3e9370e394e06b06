//! Probe results and machine snapshots on their way to the store.
//!
//! The core cuts a batch every second (or sooner when it fills) and hands it over without
//! waiting: an intake keeps taking batches whatever the store does, and a writer writes them in
//! order. While the store fails (PostgreSQL restarting, a network partition, a locked or full
//! SQLite file) batches wait and the oldest one is tried again every [`RETRY_EVERY`]. At most
//! [`RESULTS_WAITING_MAX`] results wait: beyond that the oldest batches are dropped, logged
//! and counted — results are history, while incidents, which are state, go through the
//! `journal` and are never dropped. Snapshots wait as the latest one per monitor, so they are
//! bounded by the monitors. After each written batch the health view's `stored_through` moves
//! to the batch's cut, so readers of stored history know which results they can already read.
//!
//! Owns the batches between the core and the store. Must not decide anything.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::health::Health;
use crate::store::{ResultRecord, Store, StoreError};
use crate::time::Millis;

/// How long after a failed write the oldest waiting batch is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Results that may wait for the store: 8 hours of 100 monitors at 30 s (50 minutes of 1,000;
/// one minute of 50,000). A result is 112 bytes plus its monitor id and, when it failed, its
/// error text: 14–35 MB in all.
pub const RESULTS_WAITING_MAX: usize = 100_000;
/// At the stop, how long a last write may take before what waits is given up.
const LAST_WRITE_LIMIT: Duration = Duration::from_secs(5);

/// What the core hands over at each cut.
pub struct WriteBatch {
    pub results: Vec<ResultRecord>,
    pub snapshots: Vec<(String, String)>,
    /// When the batch was cut: every result recorded before it is in this or an earlier batch.
    pub through: Millis,
}

/// One write: a batch's results with every snapshot waiting.
struct Next {
    results: Vec<ResultRecord>,
    through: Millis,
    snapshots: Vec<(String, String)>,
}

/// Batches waiting to be written, oldest first.
#[derive(Default)]
struct Waiting {
    batches: VecDeque<(Vec<ResultRecord>, Millis)>,
    results: usize,
    /// The latest snapshot of each monitor not yet written.
    snapshots: HashMap<String, String>,
    dropped: u64,
    closed: bool,
}

impl Waiting {
    /// Takes a batch in; drops the oldest results beyond the bound. Answers how many it
    /// dropped now.
    fn admit(&mut self, batch: WriteBatch) -> usize {
        self.results += batch.results.len();
        self.batches.push_back((batch.results, batch.through));
        self.snapshots.extend(batch.snapshots);
        let mut dropped = 0;
        while self.results > RESULTS_WAITING_MAX && self.batches.len() > 1 {
            if let Some((results, _)) = self.batches.pop_front() {
                self.results -= results.len();
                dropped += results.len();
            }
        }
        self.dropped += dropped as u64;
        dropped
    }

    /// The next thing to write: the oldest batch, with every snapshot waiting.
    fn next(&mut self) -> Option<Next> {
        let (results, through) = self.batches.pop_front()?;
        self.results -= results.len();
        Some(Next {
            results,
            through,
            snapshots: self.snapshots.drain().collect(),
        })
    }

    /// A write failed: it waits again, in front (snapshots only where none newer came since).
    fn put_back(&mut self, next: Next) {
        self.results += next.results.len();
        self.batches.push_front((next.results, next.through));
        for (monitor, snapshot) in next.snapshots {
            self.snapshots.entry(monitor).or_insert(snapshot);
        }
    }
}

/// Runs until the core drops its sender; then writes what waits (for at most
/// [`LAST_WRITE_LIMIT`] when the store does not answer) and returns.
pub async fn run(store: Arc<dyn Store>, health: Health, rx: mpsc::Receiver<WriteBatch>) {
    let waiting = Arc::new(Mutex::new(Waiting::default()));
    let arrived = Arc::new(Notify::new());
    let intake = tokio::spawn(take_in(
        rx,
        waiting.clone(),
        arrived.clone(),
        health.clone(),
    ));
    write_out(store, health, &waiting, &arrived).await;
    // It has ended: the writer returns only once the intake closed the queue.
    let _ = intake.await;
}

async fn take_in(
    mut rx: mpsc::Receiver<WriteBatch>,
    waiting: Arc<Mutex<Waiting>>,
    arrived: Arc<Notify>,
    health: Health,
) {
    while let Some(batch) = rx.recv().await {
        let (dropped, total, queued) = {
            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let dropped = waiting.admit(batch);
            (dropped, waiting.dropped, waiting.results)
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                waiting = queued,
                "results waiting for the database are at their bound; the oldest were dropped"
            );
            health.update(|view| {
                view.store.waiting_results = queued;
                view.store.dropped_results = total;
            });
        }
        arrived.notify_one();
    }
    waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .closed = true;
    arrived.notify_one();
}

async fn write_out(
    store: Arc<dyn Store>,
    health: Health,
    waiting: &Mutex<Waiting>,
    arrived: &Notify,
) {
    let mut failing = false;
    loop {
        let (next, closed) = {
            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            (waiting.next(), waiting.closed)
        };
        let Some(next) = next else {
            if closed {
                return;
            }
            arrived.notified().await;
            continue;
        };
        let written = if closed {
            tokio::time::timeout(LAST_WRITE_LIMIT, write(store.as_ref(), &next))
                .await
                .unwrap_or(Err(StoreError::NoAnswer(LAST_WRITE_LIMIT)))
        } else {
            write(store.as_ref(), &next).await
        };
        match written {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("the database answers again; waiting results are being written");
                }
                let queued = waiting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .results;
                health.update(|view| {
                    view.stored_through = Some(next.through);
                    view.store.waiting_results = queued;
                });
            }
            Err(e) if closed => {
                let lost = {
                    let waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                    waiting.results + next.results.len()
                };
                tracing::error!(error = %e, lost, "stopping with the database away: results not written");
                return;
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "writing results failed; they wait and are retried");
                }
                failing = true;
                let queued = {
                    let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                    waiting.put_back(next);
                    waiting.results
                };
                health.update(|view| view.store.waiting_results = queued);
                // Woken early by the stop, which makes the next attempt the last.
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                    _ = arrived.notified() => {}
                }
            }
        }
    }
}

async fn write(store: &dyn Store, next: &Next) -> Result<(), StoreError> {
    store.record_results(&next.results).await?;
    store.save_monitor_states(&next.snapshots).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(results: usize, through: Millis) -> WriteBatch {
        WriteBatch {
            results: (0..results)
                .map(|i| ResultRecord {
                    monitor_id: format!("m{i}"),
                    at: through,
                    verdict: crate::verdict::Verdict::Up,
                    blame: None,
                    status: Some(200),
                    latency_ms: None,
                    ttft_ms: None,
                    explanation: None,
                    region: None,
                })
                .collect(),
            snapshots: vec![(format!("m{through}"), format!("s{through}"))],
            through,
        }
    }

    #[test]
    fn the_oldest_results_go_beyond_the_bound_and_the_newest_stay() {
        let mut waiting = Waiting::default();
        let half = RESULTS_WAITING_MAX / 2;
        assert_eq!(waiting.admit(batch(half, 1)), 0);
        assert_eq!(waiting.admit(batch(half, 2)), 0);
        assert_eq!(waiting.admit(batch(10, 3)), half);
        assert_eq!(waiting.results, half + 10);
        assert_eq!(waiting.dropped, half as u64);
        let throughs: Vec<Millis> = waiting.batches.iter().map(|(_, t)| *t).collect();
        assert_eq!(throughs, [2, 3]);
        // Snapshots are not history: every monitor's latest stays.
        assert_eq!(waiting.snapshots.len(), 3);
    }

    #[test]
    fn a_waiting_result_is_the_size_the_bound_is_reckoned_with() {
        assert_eq!(std::mem::size_of::<ResultRecord>(), 112);
    }

    #[test]
    fn one_batch_above_the_bound_alone_is_kept_whole() {
        let mut waiting = Waiting::default();
        assert_eq!(waiting.admit(batch(RESULTS_WAITING_MAX + 5, 1)), 0);
        assert_eq!(waiting.results, RESULTS_WAITING_MAX + 5);
    }

    #[test]
    fn a_failed_write_waits_in_front_and_newer_snapshots_win() {
        let mut waiting = Waiting::default();
        waiting.admit(batch(2, 1));
        let next = waiting.next().unwrap();
        assert!(waiting.snapshots.is_empty());
        waiting.admit(WriteBatch {
            results: Vec::new(),
            snapshots: vec![("m1".into(), "newer".into())],
            through: 2,
        });
        waiting.put_back(next);
        assert_eq!(waiting.batches.front().map(|(_, t)| *t), Some(1));
        assert_eq!(waiting.results, 2);
        assert_eq!(waiting.snapshots["m1"], "newer");
    }
}

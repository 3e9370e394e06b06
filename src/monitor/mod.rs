//! Monitoring: probe every monitor on its interval, turn results into states and incidents,
//! keep history, and publish the health view that the web pages, the API and the gateway read.
//!
//! Pieces: `machine` (pure per-monitor rules), `schedule` (when each monitor probes: spread,
//! no drift, confirmations, bounded concurrency), `service` (the core that owns the machines,
//! decides network-vs-provider blame, writes the store), `health` (the shared read view and the
//! passive-health hook for live traffic), `passive` (how the core reacts to live traffic: an
//! immediate probe, or a hang watch with a streaming chat probe), `regions` (an outage or a
//! regional failure, from several regions' views), `journal` (incident writes in order, also
//! while the database is away), `event` (what the core announces), `writer` (probe results and
//! snapshots on their way to the store, bounded while it is away).

pub mod event;
pub mod health;
pub mod journal;
pub mod machine;
pub mod passive;
pub mod regions;
pub mod schedule;
pub mod service;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use crate::probe::ProbeKind;
use crate::provider::Provider;
use machine::Thresholds;

/// 30 s: frequent enough to see an outage within a minute (two failures), rare enough that a
/// chat probe costs a few cents a month.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// 20 s per probe, as `check`.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings shared by every monitor.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSettings {
    pub thresholds: Thresholds,
    /// Probes running at the same time, across all monitors.
    pub concurrency: usize,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            thresholds: Thresholds::default(),
            // 256: 10,000 monitors at 30 s need ~333 probes/s; at a typical 200 ms each that is
            // ~70 in flight, so 256 leaves room for slow providers without unbounded sockets.
            concurrency: 256,
        }
    }
}

/// One monitor: a provider probed one way on an interval.
#[derive(Debug, Clone)]
pub struct MonitorSpec {
    /// `{provider}-{probe}`, stable across restarts (the store keys history by it).
    pub id: String,
    /// Shared by every monitor of the provider and every copy of the specs (one provider is
    /// ~600 bytes; BENCHMARKS.md "Memory per monitor").
    pub provider: Arc<Provider>,
    pub probe: ProbeKind,
    pub interval: Duration,
    pub timeout: Duration,
}

impl MonitorSpec {
    pub fn new(
        provider: impl Into<Arc<Provider>>,
        probe: ProbeKind,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        let provider = provider.into();
        MonitorSpec {
            id: format!("{}-{}", provider.id, probe.as_str()),
            provider,
            probe,
            interval,
            // A probe never outlives its interval: the next one would overlap it.
            timeout: timeout.min(interval),
        }
    }

    pub fn model(&self) -> Option<&str> {
        (self.probe != ProbeKind::Reachability).then_some(self.provider.probe_model.as_str())
    }
}

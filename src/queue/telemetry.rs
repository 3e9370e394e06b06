//! What the queue shows: its Prometheus metrics, and the lines waiting for each provider that it
//! publishes into the health view for the status page.
//!
//! Labels are bounded: route models come from the batches' requests but only models a route
//! serves pass validation; providers are the config's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::Metrics;
use crate::monitor::health::Health;
use crate::store::queue::BatchStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndLabels {
    /// The provider that answered, or `none`.
    pub provider: String,
    /// `done` (output file) or `failed` (error file).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

/// Seconds from a batch's start to the dispatch that ended a line: a second (a healthy route)
/// to a day (the completion window, an outage waited out).
const WAIT_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 43_200.0, 86_400.0,
];

/// The queue's metric families and the health view it publishes into.
#[derive(Clone)]
pub struct Telemetry {
    pending: Family<RouteLabels, Gauge>,
    waiting: Family<ProviderLabels, Gauge>,
    in_flight: Family<ProviderLabels, Gauge>,
    lines: Family<EndLabels, Counter>,
    wait: Histogram,
    batches: Family<StatusLabels, Counter>,
    health: Health,
    /// Route and provider names of the depth gauges set so far: (pending, waiting, in flight).
    known: Arc<Mutex<[BTreeSet<String>; 3]>>,
}

impl Telemetry {
    pub fn register(metrics: &Metrics, health: Health) -> Telemetry {
        let telemetry = Telemetry {
            pending: Family::default(),
            waiting: Family::default(),
            in_flight: Family::default(),
            lines: Family::default(),
            wait: Histogram::new(WAIT_BUCKETS),
            batches: Family::default(),
            health,
            known: Arc::default(),
        };
        metrics.register(
            "queue_pending_lines",
            "Batch lines waiting to be sent, by route (the model their requests name)",
            telemetry.pending.clone(),
        );
        metrics.register(
            "queue_waiting_lines",
            "Pending batch lines of routes with no target ready, by the route's first provider",
            telemetry.waiting.clone(),
        );
        metrics.register(
            "queue_in_flight_lines",
            "Batch lines sent and not yet answered, by the provider they were sent for",
            telemetry.in_flight.clone(),
        );
        metrics.register(
            "queue_lines",
            "Batch lines ended, by answering provider and outcome (done: output file, failed: \
             error file)",
            telemetry.lines.clone(),
        );
        metrics.register(
            "queue_line_wait_seconds",
            "Time from a batch's start to the dispatch that ended each of its lines",
            telemetry.wait.clone(),
        );
        metrics.register(
            "queue_batches_ended",
            "Batches that ended, by final status",
            telemetry.batches.clone(),
        );
        telemetry
    }

    /// A line ended in its batch's output (`done`) or error file; `provider` answered it (or
    /// none did).
    pub fn line_ended(&self, provider: Option<&str>, done: bool) {
        self.lines
            .get_or_create(&EndLabels {
                provider: provider.unwrap_or("none").to_owned(),
                outcome: if done { "done" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// A line was sent for the last time `seconds` after its batch began.
    pub fn wait_observed(&self, seconds: f64) {
        self.wait.observe(seconds.max(0.0));
    }

    /// Lines closed without being sent (expired, cancelled).
    pub fn lines_closed(&self, count: u64) {
        self.lines
            .get_or_create(&EndLabels {
                provider: "none".to_owned(),
                outcome: "failed".to_owned(),
            })
            .inc_by(count);
    }

    pub fn batch_ended(&self, status: BatchStatus) {
        self.batches
            .get_or_create(&StatusLabels {
                status: status.as_str().to_owned(),
            })
            .inc();
    }

    /// The queue's depth now: pending lines per route, waiting lines and lines in flight per
    /// provider. A series that drops to nothing is set to zero, not left at its last count.
    pub fn depth(
        &self,
        pending: &BTreeMap<String, u64>,
        waiting: BTreeMap<String, u64>,
        in_flight: &BTreeMap<String, u64>,
    ) {
        {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            let [routes, waiters, flying] = &mut *known;
            set_all(&self.pending, routes, pending, |route| RouteLabels {
                route,
            });
            set_all(&self.waiting, waiters, &waiting, |provider| {
                ProviderLabels { provider }
            });
            set_all(&self.in_flight, flying, in_flight, |provider| {
                ProviderLabels { provider }
            });
        }
        self.health.set_queue_waiting(waiting);
    }
}

/// Sets every series of `family` to its count in `counts`; series set before and absent now go
/// to zero. `known` remembers the names set so far (a family cannot list its series).
fn set_all<L>(
    family: &Family<L, Gauge>,
    known: &mut BTreeSet<String>,
    counts: &BTreeMap<String, u64>,
    label: impl Fn(String) -> L,
) where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    for name in known.iter() {
        if !counts.contains_key(name) {
            family.get_or_create(&label(name.clone())).set(0);
        }
    }
    for (name, count) in counts {
        family
            .get_or_create(&label(name.clone()))
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
        known.insert(name.clone());
    }
}

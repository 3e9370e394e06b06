//! Prometheus metrics: one registry for the whole process, rendered at `/metrics`.
//!
//! Writers (the monitor core, the gateway, the alert outbox) hold cheap handles to the families here;
//! label sets are small and bounded (provider, model, probe, verdict, state), never per request.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::LATENCY_BUCKETS_MS;

// Label values that repeat per monitor (its id, provider and model) are `Arc<str>` shared with
// the monitor core, and the ones from a fixed list (probe kind, verdict, state) are `&'static
// str`: a series then costs its map entry, not four or five string copies (BENCHMARKS.md
// "Memory per monitor").

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    pub probe: &'static str,
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    pub probe: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub monitor: Arc<str>,
    pub provider: Arc<str>,
    pub model: Arc<str>,
    pub probe: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_MS.iter().map(|ms| ms / 1000.0))
}

fn lateness_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0])
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub probes: Family<ProbeLabels, Counter>,
    pub probe_latency: Family<TargetLabels, Histogram, fn() -> Histogram>,
    pub monitor_state: Family<StateLabels, Gauge>,
    pub open_incidents: Family<KindLabels, Gauge>,
    pub schedule_lateness: Histogram,
    pub live_requests: Family<ProbeLabels, Counter>,
    /// Monitor snapshots set aside because they could not be read back.
    pub states_quarantined: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("isdown");
        let probes = Family::<ProbeLabels, Counter>::default();
        let probe_latency =
            Family::<TargetLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let monitor_state = Family::<StateLabels, Gauge>::default();
        let open_incidents = Family::<KindLabels, Gauge>::default();
        let schedule_lateness = lateness_histogram();
        let live_requests = Family::<ProbeLabels, Counter>::default();
        let states_quarantined = Counter::default();
        registry.register(
            "states_quarantined",
            "Monitor states set aside at start because they could not be read back",
            states_quarantined.clone(),
        );
        registry.register("probes", "Probes run, by verdict", probes.clone());
        registry.register(
            "probe_latency_seconds",
            "Latency of healthy probes",
            probe_latency.clone(),
        );
        registry.register(
            "monitor_state",
            "1 for the current state of each monitor",
            monitor_state.clone(),
        );
        registry.register(
            "open_incidents",
            "Incidents open now, by kind",
            open_incidents.clone(),
        );
        registry.register(
            "schedule_lateness_seconds",
            "How late probes start after their scheduled time",
            schedule_lateness.clone(),
        );
        registry.register(
            "live_requests",
            "Live request verdicts reported through the passive-health hook",
            live_requests.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            probes,
            probe_latency,
            monitor_state,
            open_incidents,
            schedule_lateness,
            live_requests,
            states_quarantined,
        }
    }

    /// Registers a metric owned elsewhere (e.g. the store's size).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .expect("metrics lock is never poisoned")
            .register(name, help, metric);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .expect("metrics lock is never poisoned");
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

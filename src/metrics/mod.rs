//! Prometheus metrics: one registry for the whole process, rendered at `/metrics`.
//!
//! Writers (the monitor core, the gateway, the alert outbox) hold cheap handles to the families here;
//! label sets are small and bounded (provider, model, probe, verdict, state), never per request.
//! The series that exist once per monitor are rows of atomics ([`monitors`]) rather than
//! families, and the exposition is streamed in chunks ([`chunks`]): both for memory at tens of
//! thousands of monitors.

pub mod chunks;
pub mod monitors;

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use monitors::{MonitorCells, MonitorSeries};

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
pub struct KindLabels {
    pub kind: String,
}

fn lateness_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0])
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// Probe counts, latency and state, per monitor (`isdown_probes_total`,
    /// `isdown_probe_latency_seconds`, `isdown_monitor_state`).
    pub monitors: MonitorSeries,
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
        let open_incidents = Family::<KindLabels, Gauge>::default();
        let schedule_lateness = lateness_histogram();
        let live_requests = Family::<ProbeLabels, Counter>::default();
        let states_quarantined = Counter::default();
        registry.register(
            "states_quarantined",
            "Monitor states set aside at start because they could not be read back",
            states_quarantined.clone(),
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
            monitors: MonitorSeries::default(),
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

    /// The Prometheus text exposition, whole (tests, and anything that wants one string).
    pub fn render(&self) -> String {
        let mut out = self.registered();
        write_rows(&mut out, self.monitors.snapshot()).expect("writing to a String cannot fail");
        out
    }

    /// The same exposition in chunks, for `/metrics`: the registered metrics are encoded into
    /// memory first (their families lock while encoding, and the chunks wait for the client);
    /// the per-monitor rows, most of the text, are encoded as the client takes them.
    pub fn chunks(&self) -> impl futures_util::Stream<Item = String> + Send + 'static {
        let registered = self.registered();
        let rows = self.monitors.snapshot();
        chunks::stream(move |out| {
            out.write_str(&registered)?;
            write_rows(out, rows)
        })
    }

    /// Everything in the registry, without the end-of-exposition marker.
    fn registered(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .expect("metrics lock is never poisoned");
        prometheus_client::encoding::text::encode_registry(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The per-monitor rows and the end-of-exposition marker.
fn write_rows(out: &mut dyn std::fmt::Write, rows: monitors::Snapshot) -> std::fmt::Result {
    let mut table = Registry::with_prefix("isdown");
    table.register_collector(Box::new(rows));
    let mut out = out;
    prometheus_client::encoding::text::encode(&mut out, &table)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    /// `/metrics` sends the same text as `render` builds whole, in several chunks of whole lines.
    #[tokio::test]
    async fn the_streamed_exposition_is_the_whole_one_in_chunks() {
        const STATES: &[&str] = &["up", "down"];
        let metrics = Metrics::new();
        for i in 0..3_000 {
            let row = metrics.monitors.monitor(
                format!("monitor-{i}").into(),
                (format!("provider-{i}").into(), "model".into(), "chat"),
                STATES,
            );
            row.target().count(crate::verdict::Verdict::Up);
            row.target().observe(0.25);
            row.set_state(0);
        }
        metrics.states_quarantined.inc();
        let whole = metrics.render();
        let chunks: Vec<String> = metrics.chunks().collect().await;
        assert!(chunks.len() > 10, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.ends_with('\n')));
        assert_eq!(chunks.concat(), whole);
        assert!(whole.ends_with("# EOF\n"));
        assert_eq!(whole.matches("# EOF").count(), 1);
        assert!(whole.contains("isdown_states_quarantined_total 1\n"));
        assert!(whole.contains(
            "isdown_monitor_state{monitor=\"monitor-2999\",provider=\"provider-2999\",model=\"model\",probe=\"chat\",state=\"up\"} 1\n"
        ));
    }
}

//! The per-monitor series (`isdown_probes_total`, `isdown_probe_latency_seconds`,
//! `isdown_monitor_state`) as a table of plain atomics, one row per probed target and one per
//! monitor, encoded at a scrape from a snapshot of the rows without taking any lock.
//!
//! Why not `prometheus_client` families: a family holds its series in a map behind a lock, and
//! its histogram is a mutex, a bucket vector and native-histogram state (~2.3 KB per monitor
//! with the five state gauges, BENCHMARKS.md "Memory per monitor"); and encoding a family holds
//! its lock for as long as the writer takes, so a scrape streamed to a slow client would stall
//! every probe that needs a new series. Rows here are fixed-size atomics; the scrape reads them
//! as they are (each value is exact, the set is as consistent as a family's would be).
//!
//! Owns: the rows and their encoding. Does not own: when values change (the monitor core) or
//! how the text reaches the client (`super::chunks`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::store::LATENCY_BUCKETS_MS;
use crate::verdict::Verdict;

/// One (provider, model, probe kind): probe counts by verdict and the latency of healthy probes.
/// Monitors of one target share its row, as they shared its series before.
#[derive(Debug)]
pub struct TargetCells {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    pub probe: &'static str,
    /// Indexed like [`Verdict::ALL`].
    verdicts: [AtomicU64; Verdict::ALL.len()],
    /// Observations per bucket (not cumulative), indexed like [`LATENCY_BUCKETS_MS`], then +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    /// The sum of observed seconds, as `f64` bits.
    sum: AtomicU64,
    count: AtomicU64,
}

impl TargetCells {
    fn new(provider: Arc<str>, model: Arc<str>, probe: &'static str) -> TargetCells {
        TargetCells {
            provider,
            model,
            probe,
            verdicts: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    /// One probe ended with `verdict`.
    pub fn count(&self, verdict: Verdict) {
        // `Verdict::ALL` lists every verdict, so the fallback is never taken.
        let slot = Verdict::ALL
            .iter()
            .position(|v| *v == verdict)
            .unwrap_or(Verdict::ALL.len() - 1);
        self.verdicts[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// A healthy probe took `seconds` (the bucket rule is `prometheus_client`'s: the first upper
    /// bound at or above the value).
    pub fn observe(&self, seconds: f64) {
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|ms| ms / 1000.0 >= seconds)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        // Only the monitor core writes, one result at a time; the loop is for correctness if
        // that ever changes, not for contention.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// One monitor's current state, and the target it probes.
#[derive(Debug)]
pub struct MonitorCells {
    monitor: Arc<str>,
    target: Arc<TargetCells>,
    /// The names of the states a monitor can be in, in the monitor's own order (given by the
    /// monitor core, so that this module does not depend on it).
    states: &'static [&'static str],
    /// Index into `states`; [`UNSET`] until the monitor first publishes.
    state: AtomicU8,
}

const UNSET: u8 = u8::MAX;

impl MonitorCells {
    pub fn target(&self) -> &Arc<TargetCells> {
        &self.target
    }

    /// The monitor is in `states[index]` now.
    pub fn set_state(&self, index: usize) {
        let index = u8::try_from(index)
            .ok()
            .filter(|i| usize::from(*i) < self.states.len())
            .unwrap_or(UNSET);
        self.state.store(index, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Rows {
    targets: Vec<Arc<TargetCells>>,
    monitors: Vec<Arc<MonitorCells>>,
    target_at: HashMap<(Arc<str>, Arc<str>, &'static str), usize>,
    monitor_at: HashMap<Arc<str>, usize>,
}

impl Rows {
    fn target(&mut self, key: (Arc<str>, Arc<str>, &'static str)) -> Arc<TargetCells> {
        if let Some(&at) = self.target_at.get(&key) {
            return self.targets[at].clone();
        }
        let (provider, model, probe) = key.clone();
        let target = Arc::new(TargetCells::new(provider, model, probe));
        self.target_at.insert(key, self.targets.len());
        self.targets.push(target.clone());
        target
    }
}

/// Every row ever registered in this process (a reload keeps counters going; a monitor whose
/// target changed gets a fresh row, so its old labels stop being reported).
#[derive(Clone, Default)]
pub struct MonitorSeries {
    rows: Arc<Mutex<Rows>>,
}

impl MonitorSeries {
    /// The row of `monitor`, which probes `probe` on `provider`'s `model` and is always in one
    /// of `states`: the existing one when nothing changed, so a reload does not reset anything.
    pub fn monitor(
        &self,
        monitor: Arc<str>,
        (provider, model, probe): (Arc<str>, Arc<str>, &'static str),
        states: &'static [&'static str],
    ) -> Arc<MonitorCells> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let target = rows.target((provider, model, probe));
        let existing = rows.monitor_at.get(&monitor).copied();
        if let Some(at) = existing
            && Arc::ptr_eq(&rows.monitors[at].target, &target)
        {
            return rows.monitors[at].clone();
        }
        let cells = Arc::new(MonitorCells {
            monitor: monitor.clone(),
            target,
            states,
            state: AtomicU8::new(UNSET),
        });
        match existing {
            Some(at) => rows.monitors[at] = cells.clone(),
            None => {
                let at = rows.monitors.len();
                rows.monitors.push(cells.clone());
                rows.monitor_at.insert(monitor, at);
            }
        }
        cells
    }

    /// The row of `probe` on `provider`'s `model`, for a probe of another kind than the
    /// monitor's own (the hang watch's streaming probe).
    pub fn target(
        &self,
        provider: Arc<str>,
        model: Arc<str>,
        probe: &'static str,
    ) -> Arc<TargetCells> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.target((provider, model, probe))
    }

    /// The rows as they are now, to encode without holding the lock.
    pub fn snapshot(&self) -> Snapshot {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            targets: rows.targets.clone(),
            monitors: rows.monitors.clone(),
        }
    }
}

/// The rows of one scrape.
#[derive(Debug)]
pub struct Snapshot {
    targets: Vec<Arc<TargetCells>>,
    monitors: Vec<Arc<MonitorCells>>,
}

/// The latency histogram's upper bounds in seconds, +Inf last (as `Histogram::new` adds it).
fn upper_bounds() -> impl Iterator<Item = f64> {
    LATENCY_BUCKETS_MS
        .iter()
        .map(|ms| ms / 1000.0)
        .chain(std::iter::once(f64::INFINITY))
}

impl Collector for Snapshot {
    /// The same names, help, labels and series as the families these rows replaced: a series
    /// appears once it has a value (a verdict seen, a healthy probe, a state published). Help
    /// ends with the full stop that `Registry::register` adds and a collector must write itself.
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "probes",
            "Probes run, by verdict.",
            None,
            MetricType::Counter,
        )?;
        for t in &self.targets {
            for (verdict, cell) in Verdict::ALL.iter().zip(&t.verdicts) {
                let value = cell.load(Ordering::Relaxed);
                if value == 0 {
                    continue;
                }
                let labels = [
                    ("provider", &*t.provider),
                    ("model", &*t.model),
                    ("probe", t.probe),
                    ("verdict", verdict.as_str()),
                ];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "probe_latency_seconds",
            "Latency of healthy probes.",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets: Vec<(f64, u64)> = upper_bounds().map(|bound| (bound, 0)).collect();
        for t in &self.targets {
            let count = t.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            for (slot, cell) in buckets.iter_mut().zip(&t.buckets) {
                slot.1 = cell.load(Ordering::Relaxed);
            }
            let sum = f64::from_bits(t.sum.load(Ordering::Relaxed));
            let labels = [
                ("provider", &*t.provider),
                ("model", &*t.model),
                ("probe", t.probe),
            ];
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        let mut family = encoder.encode_descriptor(
            "monitor_state",
            "1 for the current state of each monitor.",
            None,
            MetricType::Gauge,
        )?;
        for m in &self.monitors {
            let current = usize::from(m.state.load(Ordering::Relaxed));
            if current >= m.states.len() {
                continue;
            }
            for (at, state) in m.states.iter().enumerate() {
                let labels = [
                    ("monitor", &*m.monitor),
                    ("provider", &*m.target.provider),
                    ("model", &*m.target.model),
                    ("probe", m.target.probe),
                    ("state", state),
                ];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&i64::from(at == current))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Registry;

    use super::*;

    const STATES: &[&str] = &["unknown", "up", "down"];

    fn text(rows: Snapshot) -> String {
        let mut registry = Registry::with_prefix("isdown");
        registry.register_collector(Box::new(rows));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("a String");
        out
    }

    fn sorted_lines(text: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct ProbeLabels {
        provider: String,
        model: String,
        probe: String,
        verdict: String,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct LatencyLabels {
        provider: String,
        model: String,
        probe: String,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct StateLabels {
        monitor: String,
        provider: String,
        model: String,
        probe: String,
        state: String,
    }

    /// The rows print exactly what `prometheus_client`'s families printed for the same
    /// observations (names, help, types, labels, bucket bounds, number formats), so dashboards
    /// and alert rules built on the old output keep working.
    #[test]
    fn rows_print_what_the_families_they_replace_printed() {
        let series = MonitorSeries::default();
        let kimi = series.monitor(
            "kimi-chat".into(),
            ("kimi".into(), "kimi-k2".into(), "chat"),
            STATES,
        );
        let kimi_too = series.monitor(
            "kimi-chat-eu".into(),
            ("kimi".into(), "kimi-k2".into(), "chat"),
            STATES,
        );
        let deepseek = series.monitor(
            "deepseek".into(),
            ("deepseek".into(), "".into(), "models"),
            STATES,
        );
        let unpublished =
            series.monitor("glm".into(), ("glm".into(), "glm-4".into(), "chat"), STATES);
        let latencies = [0.04, 0.05, 0.051, 0.7, 2.5, 59.0, 61.0, 1e-9];
        for seconds in latencies {
            kimi.target().count(Verdict::Up);
            kimi.target().observe(seconds);
        }
        kimi_too.target().count(Verdict::Timeout);
        deepseek.target().count(Verdict::RateLimited);
        deepseek.target().count(Verdict::RateLimited);
        deepseek.target().count(Verdict::Up);
        deepseek.target().observe(0.123);
        kimi.set_state(1);
        kimi_too.set_state(2);
        deepseek.set_state(0);
        let _ = unpublished;

        let probes = Family::<ProbeLabels, Counter>::default();
        let latency =
            Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS_MS.iter().map(|ms| ms / 1000.0))
            });
        let state = Family::<StateLabels, Gauge>::default();
        let probe = |provider: &str, model: &str, kind: &str, verdict: &str| ProbeLabels {
            provider: provider.into(),
            model: model.into(),
            probe: kind.into(),
            verdict: verdict.into(),
        };
        let target = |provider: &str, model: &str, kind: &str| LatencyLabels {
            provider: provider.into(),
            model: model.into(),
            probe: kind.into(),
        };
        for seconds in latencies {
            probes
                .get_or_create(&probe("kimi", "kimi-k2", "chat", "up"))
                .inc();
            latency
                .get_or_create(&target("kimi", "kimi-k2", "chat"))
                .observe(seconds);
        }
        probes
            .get_or_create(&probe("kimi", "kimi-k2", "chat", "timeout"))
            .inc();
        probes
            .get_or_create(&probe("deepseek", "", "models", "rate_limited"))
            .inc_by(2);
        probes
            .get_or_create(&probe("deepseek", "", "models", "up"))
            .inc();
        latency
            .get_or_create(&target("deepseek", "", "models"))
            .observe(0.123);
        for (monitor, provider, model, kind, current) in [
            ("kimi-chat", "kimi", "kimi-k2", "chat", 1),
            ("kimi-chat-eu", "kimi", "kimi-k2", "chat", 2),
            ("deepseek", "deepseek", "", "models", 0),
        ] {
            for (at, name) in STATES.iter().enumerate() {
                state
                    .get_or_create(&StateLabels {
                        monitor: monitor.into(),
                        provider: provider.into(),
                        model: model.into(),
                        probe: kind.into(),
                        state: (*name).into(),
                    })
                    .set(i64::from(at == current));
            }
        }
        let mut registry = Registry::with_prefix("isdown");
        registry.register("probes", "Probes run, by verdict", probes);
        registry.register(
            "probe_latency_seconds",
            "Latency of healthy probes",
            latency,
        );
        registry.register(
            "monitor_state",
            "1 for the current state of each monitor",
            state,
        );
        let mut families = String::new();
        prometheus_client::encoding::text::encode(&mut families, &registry).expect("a String");

        let rows = text(series.snapshot());
        assert_eq!(sorted_lines(&rows), sorted_lines(&families), "{rows}");
        assert!(rows.contains(
            "isdown_probe_latency_seconds_bucket{le=\"0.05\",provider=\"kimi\",model=\"kimi-k2\",probe=\"chat\"} 3"
        ));
        assert!(
            !rows.contains("glm"),
            "a monitor that never published prints nothing"
        );
    }

    #[test]
    fn a_reload_keeps_counting_and_a_changed_target_gets_a_fresh_row() {
        let series = MonitorSeries::default();
        let first = series.monitor("m".into(), ("kimi".into(), "k2".into(), "chat"), STATES);
        first.target().count(Verdict::Up);
        first.set_state(1);

        let same = series.monitor("m".into(), ("kimi".into(), "k2".into(), "chat"), STATES);
        assert!(Arc::ptr_eq(&first, &same));
        same.target().count(Verdict::Up);
        let text_now = text(series.snapshot());
        assert!(text_now.contains(
            "isdown_probes_total{provider=\"kimi\",model=\"k2\",probe=\"chat\",verdict=\"up\"} 2"
        ));

        let moved = series.monitor("m".into(), ("glm".into(), "glm-4".into(), "chat"), STATES);
        assert!(!Arc::ptr_eq(&first, &moved));
        moved.set_state(2);
        let text_now = text(series.snapshot());
        assert!(text_now.contains(
            "isdown_monitor_state{monitor=\"m\",provider=\"glm\",model=\"glm-4\",probe=\"chat\",state=\"down\"} 1"
        ));
        assert!(
            !text_now.contains("monitor=\"m\",provider=\"kimi\""),
            "the old target's state lines are gone"
        );
        assert!(
            text_now.contains("verdict=\"up\"} 2"),
            "the old target's counts stay (counters never go back)"
        );
    }

    #[test]
    fn a_probe_of_another_kind_counts_on_its_own_target() {
        let series = MonitorSeries::default();
        let m = series.monitor("m".into(), ("kimi".into(), "k2".into(), "chat"), STATES);
        let stream = series.target("kimi".into(), "k2".into(), "stream");
        stream.count(Verdict::Timeout);
        m.target().count(Verdict::Up);
        let text_now = text(series.snapshot());
        assert!(text_now.contains("probe=\"stream\",verdict=\"timeout\"} 1"));
        assert!(text_now.contains("probe=\"chat\",verdict=\"up\"} 1"));
        assert!(Arc::ptr_eq(
            &stream,
            &series.target("kimi".into(), "k2".into(), "stream")
        ));
    }
}

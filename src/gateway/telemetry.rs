//! What the gateway tells the rest of isdown about each attempt: per-target Prometheus metrics
//! (registered in the process registry), the passive-health report through
//! [`PassiveReporter`], and one log line.
//!
//! Metric handles are created once per target, so recording an attempt is a few atomic
//! increments — no label strings are built on the request path after a target's first attempt
//! with a given verdict. A target's attempt series are created at that first attempt, not at
//! start-up: with thousands of configured providers, most never routed to, one counter per
//! verdict and a histogram each was ~3.7 KB of memory and ~3.3 KB of `/metrics` text per
//! provider for series that stay zero (BENCHMARKS.md, "Memory per monitor"). Labels are the provider
//! id, the verdict and a target's model *from the config* (`*` for targets that forward the
//! requested name): model names sent by clients would make the label set unbounded.

use prometheus_client::encoding::EncodeLabelSet;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::Metrics;
use crate::store::LATENCY_BUCKETS_MS;
use crate::verdict::Verdict;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub provider: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

/// A target: its provider and the model from the config (`*`: the requested one).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TestLabels {
    pub provider: String,
    pub model: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecoveryLabels {
    pub provider: String,
    pub strategy: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_MS.iter().map(|ms| ms / 1000.0))
}

/// The gateway's metric families.
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    attempts: Family<AttemptLabels, Counter>,
    latency: Family<ProviderLabels, Histogram, fn() -> Histogram>,
    requests: Family<OutcomeLabels, Counter>,
    skipped: Family<TargetLabels, Counter>,
    hedges: Family<TargetLabels, Counter>,
    tests: Family<TestLabels, Counter>,
    last_test_at: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    last_test_passed: Family<TargetLabels, Gauge>,
    recoveries: Family<RecoveryLabels, Counter>,
}

/// Request outcomes counted by `isdown_gateway_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// An answer from some target (including the caller's own errors passed through).
    Served,
    /// Every target failed or the deadline passed.
    Failed,
    /// Refused before any target was tried (auth, size, JSON, no route).
    Rejected,
}

impl GatewayMetrics {
    pub fn register(metrics: &Metrics) -> GatewayMetrics {
        let attempts = Family::<AttemptLabels, Counter>::default();
        let latency = Family::<ProviderLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let requests = Family::<OutcomeLabels, Counter>::default();
        metrics.register(
            "gateway_attempts",
            "Gateway attempts per target provider, by verdict",
            attempts.clone(),
        );
        metrics.register(
            "gateway_attempt_latency_seconds",
            "Latency of successful gateway attempts (streams: until the end), per target provider",
            latency.clone(),
        );
        metrics.register(
            "gateway_requests",
            "Gateway requests by outcome",
            requests.clone(),
        );
        let skipped = Family::<TargetLabels, Counter>::default();
        let hedges = Family::<TargetLabels, Counter>::default();
        let tests = Family::<TestLabels, Counter>::default();
        let last_test_at = Family::<TargetLabels, Gauge<f64, AtomicU64>>::default();
        let last_test_passed = Family::<TargetLabels, Gauge>::default();
        metrics.register(
            "gateway_skipped",
            "Live requests that passed a target over because it was failing, per target",
            skipped.clone(),
        );
        metrics.register(
            "gateway_hedges",
            "Non-streaming requests also sent to the next target after the hedge delay, per \
             first target",
            hedges.clone(),
        );
        metrics.register(
            "gateway_recovery_tests",
            "Off-path recovery tests of failing targets, by result (passed, failed)",
            tests.clone(),
        );
        metrics.register(
            "gateway_last_recovery_test_timestamp_seconds",
            "Unix time of the last recovery test of each target",
            last_test_at.clone(),
        );
        metrics.register(
            "gateway_last_recovery_test_passed",
            "1 when the last recovery test of the target passed, 0 when it failed",
            last_test_passed.clone(),
        );
        let recoveries = Family::<RecoveryLabels, Counter>::default();
        metrics.register(
            "gateway_stream_recoveries",
            "Tries to continue a broken stream (stream_recovery = \"verified\"), by target \
             provider, strategy (prefix, restart) and result (recovered, refused, diverged, failed)",
            recoveries.clone(),
        );
        GatewayMetrics {
            recoveries,
            attempts,
            latency,
            requests,
            skipped,
            hedges,
            tests,
            last_test_at,
            last_test_passed,
        }
    }

    /// Handles for one route target (`model`: from the config, or `*`), created once.
    pub fn target_counters(&self, provider: &str, model: &str) -> TargetCounters {
        let labels = TargetLabels {
            provider: provider.to_owned(),
            model: model.to_owned(),
        };
        let test = |result: &str| {
            self.tests
                .get_or_create(&TestLabels {
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                    result: result.to_owned(),
                })
                .clone()
        };
        TargetCounters {
            skipped: self.skipped.get_or_create(&labels).clone(),
            hedged: self.hedges.get_or_create(&labels).clone(),
            passed: test("passed"),
            failed: test("failed"),
            last_test_at: self.last_test_at.get_or_create(&labels).clone(),
            last_test_passed: self.last_test_passed.get_or_create(&labels).clone(),
        }
    }

    /// Handles for one target provider; its series appear at its first attempt.
    pub fn target(&self, provider: &str) -> TargetStats {
        TargetStats {
            provider: provider.to_owned(),
            attempts: self.attempts.clone(),
            latencies: self.latency.clone(),
            by_verdict: Default::default(),
            latency: OnceLock::new(),
        }
    }

    pub fn recoveries(&self) -> RecoveryCounters {
        RecoveryCounters {
            family: self.recoveries.clone(),
        }
    }

    pub fn outcomes(&self) -> OutcomeCounters {
        let get = |name: &str| {
            self.requests
                .get_or_create(&OutcomeLabels {
                    outcome: name.to_owned(),
                })
                .clone()
        };
        OutcomeCounters {
            served: get("served"),
            failed: get("failed"),
            rejected: get("rejected"),
        }
    }
}

/// Per-target handles, each taken from its family on first use.
#[derive(Debug, Clone)]
pub struct TargetStats {
    provider: String,
    attempts: Family<AttemptLabels, Counter>,
    latencies: Family<ProviderLabels, Histogram, fn() -> Histogram>,
    /// Boxed at the first attempt: inline it was 240 bytes in every upstream, used or not.
    by_verdict: OnceLock<Box<[OnceLock<Counter>; Verdict::ALL.len()]>>,
    latency: OnceLock<Histogram>,
}

impl TargetStats {
    pub fn record(&self, verdict: Verdict, latency_s: f64) {
        if let Some(i) = Verdict::ALL.iter().position(|v| *v == verdict) {
            self.by_verdict.get_or_init(Box::default)[i]
                .get_or_init(|| {
                    self.attempts
                        .get_or_create(&AttemptLabels {
                            provider: self.provider.clone(),
                            verdict: verdict.as_str().to_owned(),
                        })
                        .clone()
                })
                .inc();
        }
        if verdict.is_healthy() {
            self.latency
                .get_or_init(|| {
                    self.latencies
                        .get_or_create(&ProviderLabels {
                            provider: self.provider.clone(),
                        })
                        .clone()
                })
                .observe(latency_s);
        }
    }
}

/// Per route-target handles (see [`GatewayMetrics::target_counters`]).
#[derive(Debug, Clone)]
pub struct TargetCounters {
    pub skipped: Counter,
    pub hedged: Counter,
    passed: Counter,
    failed: Counter,
    last_test_at: Gauge<f64, AtomicU64>,
    last_test_passed: Gauge,
}

impl TargetCounters {
    /// A recovery test finished now.
    pub fn tested(&self, passed: bool) {
        if passed {
            self.passed.inc();
        } else {
            self.failed.inc();
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_test_at.set(now);
        self.last_test_passed.set(i64::from(passed));
    }
}

/// Stream recovery tries. Rare (only broken streams with recovery on), so labels are built
/// when counted.
#[derive(Debug, Clone)]
pub struct RecoveryCounters {
    family: Family<RecoveryLabels, Counter>,
}

impl RecoveryCounters {
    /// One try of `strategy` (`resume::Strategy::as_str`) on `provider`, ended as `result`.
    pub fn count(&self, provider: &str, strategy: &str, result: &str) {
        self.family
            .get_or_create(&RecoveryLabels {
                provider: provider.to_owned(),
                strategy: strategy.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }
}

#[derive(Debug, Clone)]
pub struct OutcomeCounters {
    served: Counter,
    failed: Counter,
    rejected: Counter,
}

impl OutcomeCounters {
    pub fn count(&self, outcome: RequestOutcome) {
        match outcome {
            RequestOutcome::Served => self.served.inc(),
            RequestOutcome::Failed => self.failed.inc(),
            RequestOutcome::Rejected => self.rejected.inc(),
        };
    }
}

//! What the gateway tells the rest of isdown about each attempt: per-target Prometheus metrics
//! (registered in the process registry), the passive-health report through
//! [`PassiveReporter`], and one log line.
//!
//! Metric handles are created once per target at start-up, so recording an attempt is a few
//! atomic increments — no label strings are built on the request path. Labels are the provider
//! id and the verdict only: model names come from clients and would make the label set unbounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_MS.iter().map(|ms| ms / 1000.0))
}

/// The gateway's metric families.
#[derive(Clone)]
pub struct GatewayMetrics {
    attempts: Family<AttemptLabels, Counter>,
    latency: Family<ProviderLabels, Histogram, fn() -> Histogram>,
    requests: Family<OutcomeLabels, Counter>,
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
        GatewayMetrics {
            attempts,
            latency,
            requests,
        }
    }

    /// Handles for one target provider, created once.
    pub fn target(&self, provider: &str) -> TargetStats {
        let by_verdict = Verdict::ALL.map(|verdict| {
            self.attempts
                .get_or_create(&AttemptLabels {
                    provider: provider.to_owned(),
                    verdict: verdict.as_str().to_owned(),
                })
                .clone()
        });
        let latency = self
            .latency
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
            })
            .clone();
        TargetStats {
            by_verdict,
            latency,
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

/// Per-target handles.
#[derive(Debug, Clone)]
pub struct TargetStats {
    by_verdict: [Counter; Verdict::ALL.len()],
    latency: Histogram,
}

impl TargetStats {
    pub fn record(&self, verdict: Verdict, latency_s: f64) {
        if let Some(i) = Verdict::ALL.iter().position(|v| *v == verdict) {
            self.by_verdict[i].inc();
        }
        if verdict.is_healthy() {
            self.latency.observe(latency_s);
        }
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

//! What the gateway knows about one target (a provider and the model sent to it), shared by
//! every route that lists it: its circuit breaker, its recent times to answer (for hedging) and
//! the handles that make its state visible (metrics, passive-health reports).
//!
//! Built once at start-up by `route`; the request path only reads it and records into it
//! (atomics and a mutex held for a few instructions, never across an `.await`). It decides
//! nothing: `breaker` holds the rules, `mod.rs` and `recovery` act on them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::breaker::{Breaker, BreakerPolicy};
use super::telemetry::{GatewayMetrics, TargetCounters};
use crate::monitor::health::{PassiveReporter, RecoveryTest};

/// The label of a target whose model is the requested one (forwarded unchanged).
pub const FORWARDED: &str = "*";

/// One target's shared state.
#[derive(Debug)]
pub struct TargetState {
    /// The provider id.
    pub provider: Arc<str>,
    /// The fixed model of the target, or [`FORWARDED`].
    pub label: Arc<str>,
    pub breaker: Breaker,
    pub answers: AnswerTimes,
    /// Created at the target's first request ([`TargetState::in_use`]), at zero: a target
    /// nobody sends to costs no series (every keyed provider is a target of the implicit
    /// `PROVIDER/MODEL` routes; at 50,000 providers, six series each were ~830 bytes per
    /// provider), and a target in use has all its series from then on, so `rate()` sees the
    /// first skip or test.
    counters: OnceLock<TargetCounters>,
    metrics: GatewayMetrics,
}

impl TargetState {
    pub fn new(
        provider: &str,
        model: Option<&str>,
        policy: BreakerPolicy,
        metrics: &GatewayMetrics,
    ) -> TargetState {
        let label = model.unwrap_or(FORWARDED);
        TargetState {
            provider: Arc::from(provider),
            label: Arc::from(label),
            breaker: Breaker::new(policy),
            answers: AnswerTimes::default(),
            counters: OnceLock::new(),
            metrics: metrics.clone(),
        }
    }

    fn counters(&self) -> &TargetCounters {
        self.counters
            .get_or_init(|| self.metrics.target_counters(&self.provider, &self.label))
    }

    /// A request is about to be sent to this target (its series exist from now on).
    pub fn in_use(&self) {
        self.counters();
    }

    /// A live request passed this target over because it was failing.
    pub fn skipped(&self, reporter: &PassiveReporter) {
        self.counters().skipped.inc();
        reporter.skipped(self.provider.clone(), self.label.clone());
    }

    /// An off-path recovery test finished.
    pub fn tested(&self, reporter: &PassiveReporter, test: RecoveryTest) {
        self.counters().tested(test.passed);
        reporter.recovery_test(test);
    }

    /// A non-streaming request was hedged from this target to the next one.
    pub fn hedged(&self) {
        self.counters().hedged.inc();
    }
}

/// Recent times to a whole answer of successful non-streaming attempts, newest last.
#[derive(Debug, Default)]
pub struct AnswerTimes {
    recent: Mutex<VecDeque<Duration>>,
}

/// Answers remembered per target: enough for a p95 that follows the provider within minutes.
const ANSWERS_KEPT: usize = 64;

/// Fewer answers than this give no p95: a percentile of a handful is noise.
pub const ANSWERS_FOR_P95: usize = 10;

impl AnswerTimes {
    pub fn record(&self, took: Duration) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == ANSWERS_KEPT {
            recent.pop_front();
        }
        recent.push_back(took);
    }

    /// The 95th percentile (nearest rank), once [`ANSWERS_FOR_P95`] answers are known.
    pub fn p95(&self) -> Option<Duration> {
        let mut sorted: Vec<Duration> = {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() < ANSWERS_FOR_P95 {
                return None;
            }
            recent.iter().copied().collect()
        };
        sorted.sort_unstable();
        let rank = (sorted.len() * 95).div_ceil(100).max(1);
        sorted.get(rank - 1).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_needs_ten_answers_and_takes_the_nearest_rank() {
        let times = AnswerTimes::default();
        for ms in 1..=9 {
            times.record(Duration::from_millis(ms * 100));
        }
        assert_eq!(times.p95(), None);
        times.record(Duration::from_millis(1_000));
        // 10 answers: rank ceil(9.5) = 10, the slowest.
        assert_eq!(times.p95(), Some(Duration::from_millis(1_000)));
        for ms in 11..=20 {
            times.record(Duration::from_millis(ms * 100));
        }
        // 20 answers (100 ms .. 2 s): rank 19.
        assert_eq!(times.p95(), Some(Duration::from_millis(1_900)));
    }

    #[test]
    fn only_the_newest_answers_count() {
        let times = AnswerTimes::default();
        for _ in 0..ANSWERS_KEPT {
            times.record(Duration::from_secs(30));
        }
        for _ in 0..ANSWERS_KEPT {
            times.record(Duration::from_millis(200));
        }
        assert_eq!(times.p95(), Some(Duration::from_millis(200)));
    }
}

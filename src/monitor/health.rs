//! The health view: what every monitor and provider looks like right now, shared read-only with
//! the web layer and the gateway, plus the passive-health hook through which the gateway reports
//! what live traffic saw: every attempt's verdict, each time a live request passed a failing
//! target over, and the result of each off-path recovery test of a failing target.
//!
//! The monitor core is the only writer. Readers take a short read lock and copy what they need;
//! no lock is ever held across an `.await`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use super::machine::MonitorState;
use crate::incident::IncidentKind;
use crate::time::Millis;
use crate::verdict::{Blame, Verdict};

/// Live results remembered per provider.
const PASSIVE_WINDOW: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct MonitorHealth {
    pub id: String,
    pub provider: String,
    pub model: Option<String>,
    pub probe: String,
    pub state: MonitorState,
    pub since: Option<Millis>,
    pub verdict: Option<Verdict>,
    pub last_at: Option<Millis>,
    pub last_latency_ms: Option<f64>,
    pub explanation: Option<String>,
    pub advice: Option<String>,
    pub open_incident: Option<(IncidentKind, Option<i64>)>,
}

/// What live traffic through the gateway says about a provider.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassiveHealth {
    pub requests: usize,
    pub failures: usize,
    pub last_verdict: Option<Verdict>,
    pub last_at: Option<Millis>,
    /// The gateway's targets of this provider, by model from the config (`*`: the targets that
    /// forward the requested model).
    pub gateway_targets: BTreeMap<String, GatewayTarget>,
    #[serde(skip)]
    window: VecDeque<bool>,
}

/// What the gateway reported about one of its targets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayTarget {
    /// Live requests that passed it over because it was failing.
    pub skipped: u64,
    pub last_recovery_test: Option<TestSummary>,
}

/// The last off-path recovery test of a target.
#[derive(Debug, Clone, Serialize)]
pub struct TestSummary {
    pub at: Millis,
    pub passed: bool,
    pub verdict: Verdict,
    /// Time to the first content chunk, when one came.
    pub ttft_ms: Option<f64>,
}

impl PassiveHealth {
    /// Share of provider-blamed failures among the recent live requests.
    pub fn failure_ratio(&self) -> Option<f64> {
        (!self.window.is_empty())
            .then(|| self.window.iter().filter(|f| **f).count() as f64 / self.window.len() as f64)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthSnapshot {
    pub monitors: Vec<MonitorHealth>,
    /// Open `network` incident: isdown itself cannot reach any provider.
    pub network_incident: Option<i64>,
    pub passive: BTreeMap<String, PassiveHealth>,
    /// Monitors whose saved state could not be read back this run, by id: each started afresh.
    pub quarantined: BTreeMap<String, Quarantine>,
}

/// A monitor state set aside at start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quarantine {
    pub at: Millis,
    /// Why it could not be read (never its content).
    pub reason: String,
}

/// Overall status of the status API (a contract: up, degraded, down, setup_problem).
impl HealthSnapshot {
    pub fn overall(&self) -> &'static str {
        let any = |s: MonitorState| self.monitors.iter().any(|m| m.state == s);
        if any(MonitorState::Down) {
            "down"
        } else if self.network_incident.is_some() || any(MonitorState::SetupProblem) {
            "setup_problem"
        } else if any(MonitorState::Degraded) {
            "degraded"
        } else {
            "up"
        }
    }
}

/// A live request's verdict, reported by the gateway.
#[derive(Debug, Clone)]
pub struct LiveVerdict {
    pub provider: String,
    pub verdict: Verdict,
    pub blame: Option<Blame>,
    pub latency_ms: Option<f64>,
}

/// An off-path recovery test of a failing gateway target (a small streaming request).
#[derive(Debug, Clone)]
pub struct RecoveryTest {
    pub provider: Arc<str>,
    /// The target's model from the config, or `*`.
    pub target: Arc<str>,
    pub passed: bool,
    pub verdict: Verdict,
    pub ttft: Option<Duration>,
}

/// One report through the passive-health hook.
#[derive(Debug, Clone)]
pub enum PassiveReport {
    /// A live attempt finished.
    Attempt(LiveVerdict),
    /// A live request passed a failing target over.
    Skipped {
        provider: Arc<str>,
        target: Arc<str>,
    },
    RecoveryTest(RecoveryTest),
}

/// Shared handle on the health view.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<RwLock<HealthSnapshot>>,
}

impl Health {
    pub fn new(monitors: Vec<MonitorHealth>) -> Health {
        Health {
            inner: Arc::new(RwLock::new(HealthSnapshot {
                monitors,
                ..HealthSnapshot::default()
            })),
        }
    }

    /// Replaces the monitor rows with those of `fresh` (after a reload); live stats stay.
    pub fn reset(&self, fresh: Health) {
        let monitors = fresh.snapshot().monitors;
        self.update(|view| view.monitors = monitors);
    }

    /// A copy of the whole view.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.inner
            .read()
            .expect("health lock is never poisoned")
            .clone()
    }

    /// Runs `f` on the view under the read lock, without copying it (the gateway reads open
    /// incidents this way). `f` must be short: it holds the lock.
    pub fn read<R>(&self, f: impl FnOnce(&HealthSnapshot) -> R) -> R {
        f(&self.inner.read().expect("health lock is never poisoned"))
    }

    /// Runs `f` on the view under the write lock (monitor core only).
    pub fn update<R>(&self, f: impl FnOnce(&mut HealthSnapshot) -> R) -> R {
        f(&mut self.inner.write().expect("health lock is never poisoned"))
    }

    pub(crate) fn record_live(&self, live: &LiveVerdict, at: Millis) {
        self.update(|view| {
            let p = view.passive.entry(live.provider.clone()).or_default();
            p.requests += 1;
            let failed = live.blame == Some(Blame::Provider) && !live.verdict.is_healthy();
            if failed {
                p.failures += 1;
            }
            p.last_verdict = Some(live.verdict);
            p.last_at = Some(at);
            p.window.push_back(failed);
            if p.window.len() > PASSIVE_WINDOW {
                p.window.pop_front();
            }
        });
    }

    pub(crate) fn record_skipped(&self, provider: &str, target: &str) {
        self.update(|view| gateway_target(view, provider, target).skipped += 1);
    }

    pub(crate) fn record_test(&self, test: &RecoveryTest, at: Millis) {
        self.update(|view| {
            gateway_target(view, &test.provider, &test.target).last_recovery_test =
                Some(TestSummary {
                    at,
                    passed: test.passed,
                    verdict: test.verdict,
                    ttft_ms: test.ttft.map(|d| d.as_secs_f64() * 1000.0),
                });
        });
    }
}

/// The row of a gateway target, created on first use (allocates only then).
fn gateway_target<'a>(
    view: &'a mut HealthSnapshot,
    provider: &str,
    target: &str,
) -> &'a mut GatewayTarget {
    if !view.passive.contains_key(provider) {
        view.passive
            .insert(provider.to_owned(), PassiveHealth::default());
    }
    let targets = &mut view
        .passive
        .get_mut(provider)
        .expect("inserted above")
        .gateway_targets;
    if !targets.contains_key(target) {
        targets.insert(target.to_owned(), GatewayTarget::default());
    }
    targets.get_mut(target).expect("inserted above")
}

/// The passive-health hook: other parts (the gateway) report live traffic here. Reporting never
/// blocks a request: when the monitor is busy, the report is dropped.
#[derive(Debug, Clone)]
pub struct PassiveReporter {
    tx: mpsc::Sender<PassiveReport>,
}

impl PassiveReporter {
    pub fn channel(capacity: usize) -> (PassiveReporter, mpsc::Receiver<PassiveReport>) {
        let (tx, rx) = mpsc::channel(capacity);
        (PassiveReporter { tx }, rx)
    }

    /// A live attempt's verdict.
    pub fn report(&self, live: LiveVerdict) {
        let _ = self.tx.try_send(PassiveReport::Attempt(live));
    }

    /// A live request passed the failing target `target` of `provider` over.
    pub fn skipped(&self, provider: Arc<str>, target: Arc<str>) {
        let _ = self
            .tx
            .try_send(PassiveReport::Skipped { provider, target });
    }

    pub fn recovery_test(&self, test: RecoveryTest) {
        let _ = self.tx.try_send(PassiveReport::RecoveryTest(test));
    }
}

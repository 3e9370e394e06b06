//! The health view: what every monitor and provider looks like right now, shared read-only with
//! the web layer and the gateway, plus the passive-health hook through which the gateway reports
//! what live traffic saw: every attempt's verdict, each time a live request passed a failing
//! target over, and the result of each off-path recovery test of a failing target.
//!
//! The monitor core is the only writer, but for one field the durable queue publishes (its
//! lines waiting for each provider, [`Health::set_queue_waiting`]). Readers take a short read
//! lock and copy what they need;
//! no lock is ever held across an `.await`. Every change except live traffic's bumps a version
//! that readers can wait on ([`Health::changes`]): the status page renders when it moves. The
//! core also beats a heartbeat every tick, so readers can tell a quiet monitor from a stalled
//! one ([`HealthSnapshot::liveness`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::machine::MonitorState;
use super::regions::RegionView;
use crate::incident::IncidentKind;
use crate::time::Millis;
use crate::verdict::{Blame, Verdict};

/// Live results remembered per provider.
const PASSIVE_WINDOW: usize = 100;

/// 30 s without a heartbeat means the monitor loop has stalled. It beats every second, so this
/// is 30 missed ticks: longer than any routine pause inside the loop (an hourly prune of a large
/// database, a slow disk), and no longer than one default probe interval, so a stalled monitor
/// is reported before its page could have shown the next probe.
pub const STALL_AFTER_MS: Millis = 30_000;

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
    /// Each region's view, with instances in several regions (else empty).
    pub regions: BTreeMap<String, RegionView>,
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
    /// The monitor loop's last tick (it ticks every second while it runs); `None` before it
    /// first started.
    pub heartbeat_at: Option<Millis>,
    /// Every probe result that finished at or before this time is in the store (set by the
    /// monitor's writer after each batch): a reader of stored history that needs a monitor's
    /// result at `last_at` waits until this reaches it.
    pub stored_through: Option<Millis>,
    /// Lines of the durable queue waiting for each provider (by provider id; providers with none
    /// are absent): pending lines of routes with no target ready, counted against the route's
    /// first target. Published by `queue`.
    pub queue_waiting: BTreeMap<String, u64>,
    /// This instance's region (set by the monitor at start; empty before).
    pub region: String,
    /// What waits for the database (set by the monitor's journal and writer).
    pub store: StoreBacklog,
}

/// What waits for the database while it is away (all zero and `None` while it answers).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StoreBacklog {
    /// When the monitor found the database away; `None` while it answers.
    pub away_since: Option<Millis>,
    pub waiting_incident_writes: usize,
    /// Failed-probe notes dropped beyond the journal's bound (this run).
    pub dropped_notes: u64,
    pub waiting_results: usize,
    /// Results dropped beyond the writer's bound (this run).
    pub dropped_results: u64,
}

impl HealthSnapshot {
    /// Each region's view of `m`: what the regions reported (several regions), or this
    /// instance's own view as its region's.
    pub fn regions_of(&self, m: &MonitorHealth) -> BTreeMap<String, RegionView> {
        if !m.regions.is_empty() {
            return m.regions.clone();
        }
        let own = RegionView {
            state: m.state.as_str().to_owned(),
            verdict: m.verdict.map(|v| v.as_str().to_owned()),
            since: m.since,
        };
        BTreeMap::from([(self.region.clone(), own)])
    }
}

/// A monitor state set aside at start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quarantine {
    pub at: Millis,
    /// Why it could not be read (never its content).
    pub reason: String,
}

/// Whether the monitor loop is running, from its heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Liveness {
    /// No heartbeat yet: the monitor is starting.
    Starting,
    Running {
        heartbeat_at: Millis,
    },
    /// No heartbeat for [`STALL_AFTER_MS`] or more.
    Stalled {
        heartbeat_at: Millis,
    },
}

/// Overall status of the status API (a contract: up, degraded, down, setup_problem).
impl HealthSnapshot {
    /// The monitor loop's liveness at `now`.
    pub fn liveness(&self, now: Millis) -> Liveness {
        match self.heartbeat_at {
            None => Liveness::Starting,
            Some(at) if now.saturating_sub(at) >= STALL_AFTER_MS => {
                Liveness::Stalled { heartbeat_at: at }
            }
            Some(at) => Liveness::Running { heartbeat_at: at },
        }
    }

    /// Overall status of the status API (DESIGN.md: up, degraded, down, setup_problem).
    pub fn overall(&self) -> &'static str {
        let any = |s: MonitorState| self.monitors.iter().any(|m| m.state == s);
        if any(MonitorState::Down) {
            "down"
        } else if self.network_incident.is_some() || any(MonitorState::SetupProblem) {
            "setup_problem"
        } else if any(MonitorState::Degraded) || any(MonitorState::Regional) {
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
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<RwLock<HealthSnapshot>>,
    /// Bumped after every change but live traffic's and heartbeats.
    version: Arc<watch::Sender<u64>>,
}

impl Default for Health {
    fn default() -> Health {
        Health::new(Vec::new())
    }
}

impl Health {
    pub fn new(monitors: Vec<MonitorHealth>) -> Health {
        Health {
            inner: Arc::new(RwLock::new(HealthSnapshot {
                monitors,
                ..HealthSnapshot::default()
            })),
            version: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Replaces the monitor rows with those of `fresh` (after a reload); live stats, heartbeat
    /// and the store watermark stay.
    pub fn reset(&self, fresh: Health) {
        let monitors = fresh.snapshot().monitors;
        self.update(|view| view.monitors = monitors);
    }

    /// The view's version, which moves after every change to monitors, incidents or the store
    /// watermark (not for live traffic or heartbeats): wait on it to follow the view.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The monitor loop's heartbeat (monitor core only, every tick). Not a change of the view:
    /// readers that care about liveness look at the time themselves.
    pub fn beat(&self, at: Millis) {
        self.inner
            .write()
            .expect("health lock is never poisoned")
            .heartbeat_at = Some(at);
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

    /// Runs `f` on the view under the write lock (monitor core only), then bumps the version.
    pub fn update<R>(&self, f: impl FnOnce(&mut HealthSnapshot) -> R) -> R {
        let out = f(&mut self.inner.write().expect("health lock is never poisoned"));
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        out
    }

    /// The queue's waiting lines per provider (queue only). Only a change moves the version, so
    /// a queue that keeps publishing the same counts never wakes the status page's renderer.
    pub fn set_queue_waiting(&self, waiting: BTreeMap<String, u64>) {
        if self.read(|view| view.queue_waiting != waiting) {
            self.update(|view| view.queue_waiting = waiting);
        }
    }

    /// Live traffic's verdicts: no version bump, because no public view shows them and a busy
    /// gateway would otherwise wake the status page's renderer on every request.
    pub(crate) fn record_live(&self, live: &LiveVerdict, at: Millis) {
        let mut view = self.inner.write().expect("health lock is never poisoned");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_turns_stalled_after_30_s_without_a_heartbeat() {
        let health = Health::default();
        assert_eq!(health.snapshot().liveness(1_000), Liveness::Starting);
        health.beat(1_000);
        let view = health.snapshot();
        assert_eq!(
            view.liveness(1_000 + STALL_AFTER_MS - 1),
            Liveness::Running {
                heartbeat_at: 1_000
            }
        );
        assert_eq!(
            view.liveness(1_000 + STALL_AFTER_MS),
            Liveness::Stalled {
                heartbeat_at: 1_000
            }
        );
    }

    #[test]
    fn changes_move_the_version_but_heartbeats_and_live_traffic_do_not() {
        let health = Health::default();
        let mut changes = health.changes();
        health.beat(5);
        health.record_live(
            &LiveVerdict {
                provider: "kimi".into(),
                verdict: Verdict::Up,
                blame: None,
                latency_ms: Some(10.0),
            },
            5,
        );
        assert!(!changes.has_changed().unwrap());
        health.update(|view| view.stored_through = Some(5));
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), 1);
        health.reset(Health::default());
        assert_eq!(*changes.borrow_and_update(), 2);
        // A reset keeps the heartbeat, the store's watermark and live stats.
        let view = health.snapshot();
        assert_eq!((view.heartbeat_at, view.stored_through), (Some(5), Some(5)));
        assert_eq!(view.passive["kimi"].requests, 1);
    }
}

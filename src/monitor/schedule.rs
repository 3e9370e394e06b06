//! When each monitor probes.
//!
//! One task per monitor, so a probe that hangs delays nobody else. Each monitor's ticks sit at a
//! fixed phase inside its interval (a hash of its id), which spreads thousands of monitors
//! evenly — no thundering herd at :00 and :30 — and keeps the phase across restarts. Ticks are
//! computed from the schedule, not from when the last probe finished, so there is no drift; a
//! probe longer than the interval skips the ticks it overran instead of bunching them. The core
//! can ask for an extra probe at a given instant (confirmation after a failure, a witness
//! probe), which does not move the regular ticks, and can have a monitor probe another way than
//! configured for a while (a streaming chat probe while it watches for a hang, see `passive`):
//! switching starts with a probe at once. A global semaphore bounds probes in flight.
//!
//! With several instances on one database, a monitor whose lease another instance holds keeps
//! its task and its ticks but skips them ([`Owned`]): taking it over costs a flag, not a task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::MonitorSpec;
use crate::probe::{ProbeKind, ProbeResult, Prober};
use crate::verdict::{TransportFailure, classify_transport};

/// Runs one probe of a monitor. The real one is [`Prober`]; tests substitute scripted answers
/// (paused tokio time cannot be mixed with real sockets).
#[async_trait]
pub trait ProbeRunner: Send + Sync + 'static {
    async fn probe(&self, spec: &MonitorSpec) -> ProbeResult;
}

#[async_trait]
impl ProbeRunner for Prober {
    async fn probe(&self, spec: &MonitorSpec) -> ProbeResult {
        self.run(&spec.provider, spec.probe, spec.timeout).await
    }
}

/// A finished probe, as the scheduler hands it to the core.
#[derive(Debug)]
pub struct Outcome {
    pub monitor: usize,
    pub result: ProbeResult,
    pub scheduled: Instant,
    pub started: Instant,
    pub finished: Instant,
}

/// The phase of a monitor inside its interval: FNV-1a of the id, so it is stable across
/// restarts and machines.
pub fn phase(id: &str, interval: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_nanos(hash % nanos)
}

/// The first regular tick at or after `now` for a schedule anchored at `origin`.
fn next_tick(origin: Instant, interval: Duration, now: Instant) -> Instant {
    if now <= origin {
        return origin;
    }
    let elapsed = now.duration_since(origin).as_nanos();
    let step = interval.as_nanos().max(1);
    let periods = elapsed.div_ceil(step);
    origin + Duration::from_nanos(u64::try_from(periods * step).unwrap_or(u64::MAX))
}

/// Per monitor, indexed like the specs: whether this instance probes it (it holds its lease).
pub type Owned = Arc<[AtomicBool]>;

/// Extra probe requests for one monitor (the instant to probe at).
type Nudges = mpsc::Sender<Instant>;

/// How one monitor probes for now: `None` as configured, `Some(kind)` as `kind`.
type ProbeAs = watch::Sender<Option<ProbeKind>>;

/// The core's handle on the schedule: extra probes and probe switches, indexed like the specs.
/// Nothing here waits.
#[derive(Clone)]
pub struct Schedule {
    nudges: Arc<[Nudges]>,
    switches: Arc<[ProbeAs]>,
}

impl Schedule {
    /// An extra probe of monitor `index` at `at` (or at once, if it is past). It does not move
    /// the regular ticks; while a probe of the monitor runs, it waits until that one is done.
    pub fn nudge(&self, index: usize, at: Instant) {
        // Small queue: nudges are hints, a full one means an earlier one is already pending.
        let _ = self.nudges[index].try_send(at);
    }

    /// Monitor `index` probes as `probe` from now on (`None`: as configured); switching to a
    /// probe starts one at once.
    pub fn probe_as(&self, index: usize, probe: Option<ProbeKind>) {
        let _ = self.switches[index].send(probe);
    }
}

/// What the schedule runs: the monitors, how they are probed, and from when.
pub struct Plan {
    pub specs: Arc<Vec<MonitorSpec>>,
    pub runner: Arc<dyn ProbeRunner>,
    /// Probes in flight at most, all monitors together.
    pub concurrency: usize,
    /// The instant the phases count from.
    pub start: Instant,
    /// Which monitors this instance probes.
    pub owned: Owned,
}

/// Spawns one task per monitor. Returns the handle for extra probes and probe switches.
pub fn spawn(
    plan: Plan,
    out: mpsc::Sender<Outcome>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Schedule {
    let Plan {
        specs,
        runner,
        concurrency,
        start,
        owned,
    } = plan;
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut nudges = Vec::with_capacity(specs.len());
    let mut switches = Vec::with_capacity(specs.len());
    for index in 0..specs.len() {
        // Small: nudges are hints, a full queue means one is already pending.
        let (tx, rx) = mpsc::channel(4);
        nudges.push(tx);
        // A watch, not a queue: only the latest switch matters and it can never be dropped.
        let (probe_as, probe_as_rx) = watch::channel(None);
        switches.push(probe_as);
        let task = MonitorTask {
            index,
            specs: specs.clone(),
            runner: runner.clone(),
            semaphore: semaphore.clone(),
            owned: owned.clone(),
            out: out.clone(),
            nudges: rx,
            probe_as: probe_as_rx,
            shutdown: shutdown.clone(),
        };
        tasks.spawn(task.run(start));
    }
    Schedule {
        nudges: nudges.into(),
        switches: switches.into(),
    }
}

struct MonitorTask {
    index: usize,
    specs: Arc<Vec<MonitorSpec>>,
    runner: Arc<dyn ProbeRunner>,
    semaphore: Arc<Semaphore>,
    owned: Owned,
    out: mpsc::Sender<Outcome>,
    nudges: mpsc::Receiver<Instant>,
    probe_as: watch::Receiver<Option<ProbeKind>>,
    shutdown: watch::Receiver<bool>,
}

impl MonitorTask {
    async fn run(mut self, start: Instant) {
        let spec = &self.specs[self.index];
        let origin = start + phase(&spec.id, spec.interval);
        let mut regular = origin;
        let mut extra: Option<Instant> = None;
        loop {
            let wake = extra.map_or(regular, |e| e.min(regular));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                nudge = self.nudges.recv() => {
                    if let Some(at) = nudge {
                        extra = Some(extra.map_or(at, |e| e.min(at)));
                    }
                    continue;
                }
                Ok(()) = self.probe_as.changed() => {
                    if self.probe_as.borrow_and_update().is_some() {
                        extra = Some(Instant::now());
                    }
                    continue;
                }
                _ = self.shutdown.changed() => return,
            }
            if extra == Some(wake) {
                extra = None;
            }
            if regular <= wake {
                regular = next_tick(origin, spec.interval, wake + Duration::from_nanos(1));
            }
            if !self.owned[self.index].load(Ordering::Relaxed) {
                // Another instance holds this monitor's lease: it probes, this one skips.
                continue;
            }
            // Boxed: the probe's state (its result, the guard's timer, the hand-off) exists only
            // while probing, so a waiting task is a few hundred bytes, not a kilobyte and more
            // (one task per monitor: `a_waiting_monitor_task_is_small`).
            match Box::pin(self.probe_once(wake)).await {
                Some(finished) => {
                    // Ticks that passed while probing are skipped, not bunched.
                    if regular <= finished {
                        regular = next_tick(origin, spec.interval, finished);
                    }
                }
                None => return,
            }
        }
    }

    /// One probe, scheduled for `wake`, handed to the core. `None` when the scheduler is
    /// stopping; otherwise when the probe finished.
    async fn probe_once(&self, wake: Instant) -> Option<Instant> {
        let own = &self.specs[self.index];
        let permit = self.semaphore.acquire().await.ok()?;
        let started = Instant::now();
        let switched = *self.probe_as.borrow();
        let other;
        let spec = match switched {
            Some(probe) if probe != own.probe => {
                other = MonitorSpec {
                    probe,
                    ..own.clone()
                };
                &other
            }
            _ => own,
        };
        // The runner honours the probe timeout; this guard only catches a runner that does
        // not, so that one broken probe can never stall its monitor.
        let guard = spec.timeout + Duration::from_secs(5);
        let result = match tokio::time::timeout(guard, self.runner.probe(spec)).await {
            Ok(result) => result,
            Err(_) => timed_out(spec),
        };
        drop(permit);
        let finished = Instant::now();
        let outcome = Outcome {
            monitor: self.index,
            result,
            scheduled: wake,
            started,
            finished,
        };
        self.out.send(outcome).await.ok()?;
        Some(finished)
    }
}

fn timed_out(spec: &MonitorSpec) -> ProbeResult {
    ProbeResult {
        provider: spec.provider.id.clone(),
        url: spec.provider.base_url.to_string(),
        model: spec.model().map(str::to_owned),
        kind: spec.probe,
        diagnosis: classify_transport(&TransportFailure::Timeout {
            phase: crate::verdict::TimeoutPhase::Response,
        }),
        latency: None,
        ttft: None,
        timings: Default::default(),
    }
}

#[cfg(test)]
mod tests;

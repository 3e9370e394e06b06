//! When each monitor probes.
//!
//! One dispatcher task keeps every monitor's next tick in one queue and starts a task per probe
//! when it is due, so a probe that hangs delays nobody else, and a monitor between probes costs
//! a queue entry, not a task with its own timer and channels (BENCHMARKS.md "Memory per
//! monitor"). Each monitor's ticks sit at a fixed phase inside its interval (a hash of its id),
//! which spreads thousands of monitors evenly — no thundering herd at :00 and :30 — and keeps
//! the phase across restarts. Ticks are computed from the schedule, not from when the last probe
//! finished, so there is no drift; a probe longer than the interval skips the ticks it overran
//! instead of bunching them. The core can ask for an extra probe at a given instant
//! (confirmation after a failure, a witness probe), which does not move the regular ticks, and
//! can have a monitor probe another way than configured for a while (a streaming chat probe
//! while it watches for a hang, see `passive`): switching starts with a probe at once. A monitor
//! has at most one probe at a time; a global semaphore bounds probes in flight.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
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

/// A queued wake-up: the instant, and the monitor (index into the specs).
type Due = Reverse<(Instant, usize)>;

/// One monitor's place in the schedule.
struct Slot {
    /// The first regular tick: the start plus the monitor's phase.
    origin: Instant,
    /// The next regular tick.
    regular: Instant,
    /// An extra probe asked for (the earliest one counts).
    extra: Option<Instant>,
    /// How the monitor probes for now: `None` as configured.
    probe_as: Option<ProbeKind>,
    /// A probe of this monitor is waiting for a turn, running, or handing its outcome over.
    busy: bool,
}

impl Slot {
    fn due(&self) -> Instant {
        self.extra.map_or(self.regular, |e| e.min(self.regular))
    }
}

/// The schedule of every monitor, shared by the dispatcher, the probes it started and the core.
struct Table {
    slots: Vec<Slot>,
    /// Wake-ups by instant. An entry is stale when its monitor is busy or is due at another
    /// instant by the time it comes up; stale entries are skipped, so changing a monitor's due
    /// time only ever pushes.
    queue: BinaryHeap<Due>,
    /// When the dispatcher wakes next by itself (`None`: only when told); an earlier wake-up
    /// notifies it.
    wake: Option<Instant>,
}

impl Table {
    /// Queues `index` at its due instant, waking the dispatcher when that is earlier than its
    /// own wake-up.
    fn queue(&mut self, index: usize, notify: &Notify) {
        let due = self.slots[index].due();
        self.queue.push(Reverse((due, index)));
        if self.wake.is_none_or(|wake| due < wake) {
            self.wake = Some(due);
            notify.notify_one();
        }
    }
}

struct Shared {
    table: Mutex<Table>,
    /// Wakes the dispatcher when a monitor became due earlier than it planned to wake.
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The core's handle on the schedule: extra probes and probe switches, indexed like the specs.
/// Nothing here waits: each call takes a short lock, and never across an `.await`.
#[derive(Clone)]
pub struct Schedule {
    shared: Arc<Shared>,
}

impl Schedule {
    /// An extra probe of monitor `index` at `at` (or at once, if it is past). It does not move
    /// the regular ticks; while a probe of the monitor runs, it waits until that one is done.
    pub fn nudge(&self, index: usize, at: Instant) {
        let mut table = self.shared.lock();
        let slot = &mut table.slots[index];
        slot.extra = Some(slot.extra.map_or(at, |e| e.min(at)));
        if !slot.busy {
            table.queue(index, &self.shared.notify);
        }
    }

    /// Monitor `index` probes as `probe` from now on (`None`: as configured); switching to a
    /// probe starts one at once.
    pub fn probe_as(&self, index: usize, probe: Option<ProbeKind>) {
        self.shared.lock().slots[index].probe_as = probe;
        if probe.is_some() {
            self.nudge(index, Instant::now());
        }
    }
}

/// Starts the dispatcher, which starts each monitor's probes when they are due, into `tasks`.
/// Monitors are indexed like `specs`.
pub fn spawn(
    specs: Arc<Vec<MonitorSpec>>,
    runner: Arc<dyn ProbeRunner>,
    concurrency: usize,
    start: Instant,
    out: mpsc::Sender<Outcome>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Schedule {
    let slots: Vec<Slot> = specs
        .iter()
        .map(|spec| {
            let origin = start + phase(&spec.id, spec.interval);
            Slot {
                origin,
                regular: origin,
                extra: None,
                probe_as: None,
                busy: false,
            }
        })
        .collect();
    let queue = slots
        .iter()
        .enumerate()
        .map(|(index, slot)| Reverse((slot.due(), index)))
        .collect();
    let shared = Arc::new(Shared {
        table: Mutex::new(Table {
            slots,
            queue,
            wake: None,
        }),
        notify: Notify::new(),
    });
    let dispatcher = Dispatcher {
        specs,
        runner,
        semaphore: Arc::new(Semaphore::new(concurrency.max(1))),
        out,
        shared: shared.clone(),
    };
    tasks.spawn(dispatcher.run(shutdown));
    Schedule { shared }
}

/// Wakes when the earliest monitor is due and starts its probe once a turn is free.
struct Dispatcher {
    specs: Arc<Vec<MonitorSpec>>,
    runner: Arc<dyn ProbeRunner>,
    /// Probes in flight across all monitors.
    semaphore: Arc<Semaphore>,
    out: mpsc::Sender<Outcome>,
    shared: Arc<Shared>,
}

/// A probe the dispatcher is about to start.
struct Start {
    index: usize,
    /// The instant it was due (lateness counts from here).
    scheduled: Instant,
    probe_as: Option<ProbeKind>,
}

impl Dispatcher {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // Dropped with the dispatcher: a shutdown aborts the probes in flight.
        let mut probes = JoinSet::new();
        let mut due = Vec::new();
        loop {
            let wake = self.take_due(&mut due);
            for start in due.drain(..) {
                let permit = tokio::select! {
                    permit = self.semaphore.clone().acquire_owned() => permit,
                    _ = shutdown.changed() => return,
                };
                let Ok(permit) = permit else {
                    return;
                };
                probes.spawn(self.probe(start, permit));
            }
            tokio::select! {
                _ = sleep_until_some(wake) => {}
                _ = self.shared.notify.notified() => {}
                Some(joined) = probes.join_next(), if !probes.is_empty() => {
                    if let Err(e) = joined && e.is_panic() {
                        tracing::error!(error = %e, "a probe panicked; its monitor stops probing");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Moves every monitor due by now into `due`, marking it busy and moving its regular tick
    /// on; returns when the next one is due.
    fn take_due(&self, due: &mut Vec<Start>) -> Option<Instant> {
        let mut table = self.shared.lock();
        let now = Instant::now();
        while let Some(&Reverse((at, index))) = table.queue.peek() {
            if at > now {
                break;
            }
            table.queue.pop();
            let spec = &self.specs[index];
            let slot = &mut table.slots[index];
            if slot.busy || slot.due() != at {
                continue;
            }
            slot.busy = true;
            if slot.extra == Some(at) {
                slot.extra = None;
            }
            if slot.regular <= at {
                slot.regular = next_tick(slot.origin, spec.interval, at + Duration::from_nanos(1));
            }
            due.push(Start {
                index,
                scheduled: at,
                probe_as: slot.probe_as,
            });
        }
        table.wake = table.queue.peek().map(|Reverse((at, _))| *at);
        table.wake
    }

    /// One probe of one monitor, holding a turn (`permit`) while it runs; hands the outcome to
    /// the core, then queues the monitor's next probe.
    fn probe(
        &self,
        start: Start,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + 'static {
        let specs = self.specs.clone();
        let runner = self.runner.clone();
        let out = self.out.clone();
        let shared = self.shared.clone();
        async move {
            let index = start.index;
            let configured = &specs[index];
            let started = Instant::now();
            let other;
            let spec = match start.probe_as {
                Some(probe) if probe != configured.probe => {
                    other = MonitorSpec {
                        probe,
                        ..configured.clone()
                    };
                    &other
                }
                _ => configured,
            };
            // The runner honours the probe timeout; this guard only catches a runner that does
            // not, so that one broken probe can never stall its monitor.
            let guard = spec.timeout + Duration::from_secs(5);
            let result = match tokio::time::timeout(guard, runner.probe(spec)).await {
                Ok(result) => result,
                Err(_) => timed_out(spec),
            };
            drop(permit);
            let finished = Instant::now();
            let outcome = Outcome {
                monitor: index,
                result,
                scheduled: start.scheduled,
                started,
                finished,
            };
            if out.send(outcome).await.is_err() {
                return;
            }
            let mut table = shared.lock();
            let slot = &mut table.slots[index];
            slot.busy = false;
            // Ticks that passed while probing are skipped, not bunched.
            if slot.regular <= finished {
                slot.regular = next_tick(slot.origin, configured.interval, finished);
            }
            table.queue(index, &shared.notify);
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wake for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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

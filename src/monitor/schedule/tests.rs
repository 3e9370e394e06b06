//! The scheduler's promises, on paused tokio time with a scripted runner: the phase grid, no
//! drift, skipped overrun ticks, extra probes that leave the grid alone, probe switches, one
//! probe per monitor at a time, the global limit, and hung probes that delay nobody else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinSet;

use super::*;
use crate::provider::Provider;

/// How long a scripted probe takes.
#[derive(Clone, Copy)]
enum Takes {
    For(Duration),
    /// Never answers (the scheduler's guard ends it).
    Forever,
}

/// A probe as the runner saw it start.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Started {
    at: Instant,
    kind: ProbeKind,
}

#[derive(Default)]
struct Log {
    /// Per monitor id, in order; the first matching entry is used (then removed, unless last).
    takes: HashMap<String, Vec<Takes>>,
    started: HashMap<String, Vec<Started>>,
    running: HashMap<String, usize>,
    /// The most probes of one monitor that ran at once.
    most_per_monitor: usize,
    in_flight: usize,
    most_in_flight: usize,
}

#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Log>>);

impl Scripted {
    fn takes(&self, id: &str, takes: &[Takes]) {
        self.0
            .lock()
            .unwrap()
            .takes
            .insert(id.to_owned(), takes.to_vec());
    }

    fn started(&self, id: &str) -> Vec<Started> {
        self.0
            .lock()
            .unwrap()
            .started
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    fn starts(&self, id: &str) -> Vec<Instant> {
        self.started(id).iter().map(|s| s.at).collect()
    }
}

#[async_trait]
impl ProbeRunner for Scripted {
    async fn probe(&self, spec: &MonitorSpec) -> ProbeResult {
        let takes = {
            let mut log = self.0.lock().unwrap();
            log.started
                .entry(spec.id.clone())
                .or_default()
                .push(Started {
                    at: Instant::now(),
                    kind: spec.probe,
                });
            let running = log.running.entry(spec.id.clone()).or_default();
            *running += 1;
            let running = *running;
            log.most_per_monitor = log.most_per_monitor.max(running);
            log.in_flight += 1;
            log.most_in_flight = log.most_in_flight.max(log.in_flight);
            match log.takes.get_mut(&spec.id) {
                Some(list) if list.len() > 1 => list.remove(0),
                Some(list) => list.first().copied().unwrap_or(Takes::For(Duration::ZERO)),
                None => Takes::For(Duration::ZERO),
            }
        };
        // Counted down when the probe ends, also when the scheduler's guard drops it.
        let _running = Running(self.0.clone(), spec.id.clone());
        match takes {
            Takes::For(d) => tokio::time::sleep(d).await,
            Takes::Forever => std::future::pending::<()>().await,
        }
        timed_out(spec)
    }
}

struct Running(Arc<Mutex<Log>>, String);

impl Drop for Running {
    fn drop(&mut self) {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.in_flight -= 1;
        if let Some(n) = log.running.get_mut(&self.1) {
            *n -= 1;
        }
    }
}

const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(10);

fn spec(provider: &str, probe: ProbeKind) -> MonitorSpec {
    MonitorSpec::new(Provider::for_test(provider), probe, INTERVAL, TIMEOUT)
}

struct Harness {
    schedule: Schedule,
    owned: Owned,
    origins: Vec<Instant>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    _stop: watch::Sender<bool>,
    _tasks: JoinSet<()>,
}

fn start(specs: Vec<MonitorSpec>, runner: &Scripted, concurrency: usize) -> Harness {
    let now = Instant::now();
    let origins = specs
        .iter()
        .map(|s| now + phase(&s.id, s.interval))
        .collect();
    let (out, mut rx) = mpsc::channel(16);
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let owned: Owned = specs.iter().map(|_| AtomicBool::new(true)).collect();
    let schedule = spawn(
        Plan {
            specs: Arc::new(specs),
            runner: Arc::new(runner.clone()),
            concurrency,
            start: now,
            owned: owned.clone(),
        },
        out,
        stopped,
        &mut tasks,
    );
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let sink = outcomes.clone();
    tasks.spawn(async move {
        while let Some(outcome) = rx.recv().await {
            sink.lock().unwrap().push(outcome);
        }
    });
    Harness {
        schedule,
        owned,
        origins,
        outcomes,
        _stop: stop,
        _tasks: tasks,
    }
}

fn grid(origin: Instant, ticks: std::ops::Range<u32>) -> Vec<Instant> {
    ticks.map(|k| origin + INTERVAL * k).collect()
}

/// The timer's resolution: a wake-up lands up to this much after the instant asked for.
const RESOLUTION: Duration = Duration::from_millis(1);

/// `actual` are `expected`, each at most one timer tick late (never early, never drifting).
fn assert_at(actual: &[Instant], expected: &[Instant]) {
    let late: Vec<Option<Duration>> = actual
        .iter()
        .zip(expected)
        .map(|(a, e)| a.checked_duration_since(*e))
        .collect();
    assert!(
        actual.len() == expected.len() && late.iter().all(|l| l.is_some_and(|l| l <= RESOLUTION)),
        "started {actual:?}, expected {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn regular_probes_sit_on_the_phase_grid_without_drift() {
    let runner = Scripted::default();
    runner.takes("a-chat", &[Takes::For(Duration::from_millis(2_345))]);
    let h = start(vec![spec("a", ProbeKind::Chat)], &runner, 4);
    tokio::time::sleep_until(h.origins[0] + INTERVAL * 9 + Duration::from_secs(1)).await;
    assert_at(&runner.starts("a-chat"), &grid(h.origins[0], 0..10));
    // Lateness counts from the tick: none here.
    let outcomes = h.outcomes.lock().unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| o.started - o.scheduled <= RESOLUTION)
    );
}

#[tokio::test(start_paused = true)]
async fn a_monitor_another_instance_holds_skips_its_ticks_and_resumes_on_the_grid() {
    let runner = Scripted::default();
    runner.takes("a-chat", &[Takes::For(Duration::from_millis(100))]);
    let h = start(vec![spec("a", ProbeKind::Chat)], &runner, 4);
    let origin = h.origins[0];
    // Held here for ticks 0 and 1, elsewhere for ticks 2 to 4 (extra probes asked for meanwhile
    // are skipped too), then here again.
    tokio::time::sleep_until(origin + INTERVAL + Duration::from_secs(1)).await;
    h.owned[0].store(false, Ordering::Relaxed);
    h.schedule.nudge(0, Instant::now());
    tokio::time::sleep_until(origin + INTERVAL * 4 + Duration::from_secs(1)).await;
    h.owned[0].store(true, Ordering::Relaxed);
    tokio::time::sleep_until(origin + INTERVAL * 6 + Duration::from_secs(1)).await;
    let expected: Vec<Instant> = [0, 1, 5, 6]
        .iter()
        .map(|k| origin + INTERVAL * *k)
        .collect();
    assert_at(&runner.starts("a-chat"), &expected);
}

#[tokio::test(start_paused = true)]
async fn an_extra_probe_does_not_move_the_regular_ticks() {
    let runner = Scripted::default();
    let h = start(vec![spec("a", ProbeKind::Chat)], &runner, 4);
    let origin = h.origins[0];
    let extra = origin + Duration::from_secs(10);
    tokio::time::sleep_until(origin + Duration::from_secs(1)).await;
    h.schedule.nudge(0, extra);
    tokio::time::sleep_until(origin + INTERVAL * 2 + Duration::from_secs(1)).await;
    assert_at(
        &runner.starts("a-chat"),
        &[origin, extra, origin + INTERVAL, origin + INTERVAL * 2],
    );
}

#[tokio::test(start_paused = true)]
async fn of_several_extra_probes_asked_for_the_earliest_runs() {
    let runner = Scripted::default();
    let h = start(vec![spec("a", ProbeKind::Chat)], &runner, 4);
    let origin = h.origins[0];
    tokio::time::sleep_until(origin + Duration::from_secs(1)).await;
    h.schedule.nudge(0, origin + Duration::from_secs(20));
    h.schedule.nudge(0, origin + Duration::from_secs(5));
    tokio::time::sleep_until(origin + INTERVAL + Duration::from_secs(1)).await;
    assert_at(
        &runner.starts("a-chat"),
        &[origin, origin + Duration::from_secs(5), origin + INTERVAL],
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_longer_than_the_interval_skips_the_ticks_it_overran() {
    let runner = Scripted::default();
    // The scheduler's guard is timeout + 5 s; a probe may legitimately run up to it. Use a
    // long timeout so the first probe can overrun two ticks.
    let long = MonitorSpec {
        timeout: Duration::from_secs(80),
        ..spec("a", ProbeKind::Chat)
    };
    runner.takes(
        "a-chat",
        &[
            Takes::For(Duration::from_secs(70)),
            Takes::For(Duration::ZERO),
        ],
    );
    let h = start(vec![long], &runner, 4);
    let origin = h.origins[0];
    tokio::time::sleep_until(origin + INTERVAL * 4 + Duration::from_secs(1)).await;
    // Finished at +70 s: the ticks at +30 s and +60 s are skipped, not run late or bunched.
    assert_at(
        &runner.starts("a-chat"),
        &[origin, origin + INTERVAL * 3, origin + INTERVAL * 4],
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_probe_delays_no_other_monitor() {
    let runner = Scripted::default();
    runner.takes("stuck-chat", &[Takes::Forever]);
    let h = start(
        vec![
            spec("stuck", ProbeKind::Chat),
            spec("fine", ProbeKind::Chat),
        ],
        &runner,
        4,
    );
    let (stuck, fine) = (h.origins[0], h.origins[1]);
    let end = stuck.max(fine) + INTERVAL * 4;
    tokio::time::sleep_until(end).await;
    let fine_grid: Vec<Instant> = grid(fine, 0..5).into_iter().filter(|t| *t < end).collect();
    assert_at(&runner.starts("fine-chat"), &fine_grid);
    // The hung one is cut off by the guard (timeout + 5 s) and keeps its own grid too.
    let stuck_grid: Vec<Instant> = grid(stuck, 0..5).into_iter().filter(|t| *t < end).collect();
    assert_at(&runner.starts("stuck-chat"), &stuck_grid);
    let outcomes = h.outcomes.lock().unwrap();
    let cut = outcomes
        .iter()
        .find(|o| o.monitor == 0)
        .expect("an outcome");
    let guard = TIMEOUT + Duration::from_secs(5);
    assert!((guard..=guard + RESOLUTION).contains(&(cut.finished - cut.started)));
    assert_eq!(
        cut.result.diagnosis.verdict,
        crate::verdict::Verdict::Timeout
    );
}

#[tokio::test(start_paused = true)]
async fn a_monitor_never_runs_two_probes_at_once() {
    let runner = Scripted::default();
    runner.takes("a-chat", &[Takes::For(Duration::from_secs(8))]);
    let h = start(vec![spec("a", ProbeKind::Chat)], &runner, 4);
    let origin = h.origins[0];
    tokio::time::sleep_until(origin + Duration::from_secs(2)).await;
    // Asked for while a probe runs: it waits for that one to finish.
    h.schedule.nudge(0, Instant::now());
    tokio::time::sleep_until(origin + INTERVAL + Duration::from_secs(1)).await;
    assert_at(
        &runner.starts("a-chat"),
        &[origin, origin + Duration::from_secs(8), origin + INTERVAL],
    );
    assert_eq!(runner.0.lock().unwrap().most_per_monitor, 1);
}

#[tokio::test(start_paused = true)]
async fn switching_the_probe_kind_probes_at_once_and_switching_back_waits_for_the_tick() {
    let runner = Scripted::default();
    let h = start(vec![spec("a", ProbeKind::Chat)], &runner, 4);
    let origin = h.origins[0];
    let switched = origin + Duration::from_secs(5);
    tokio::time::sleep_until(switched).await;
    h.schedule.probe_as(0, Some(ProbeKind::Stream));
    tokio::time::sleep_until(origin + INTERVAL + Duration::from_secs(5)).await;
    h.schedule.probe_as(0, None);
    tokio::time::sleep_until(origin + INTERVAL * 2 + Duration::from_secs(1)).await;
    let started = runner.started("a-chat");
    let at: Vec<Instant> = started.iter().map(|s| s.at).collect();
    let kinds: Vec<ProbeKind> = started.iter().map(|s| s.kind).collect();
    assert_at(
        &at,
        &[origin, switched, origin + INTERVAL, origin + INTERVAL * 2],
    );
    assert_eq!(
        kinds,
        [
            ProbeKind::Chat,
            ProbeKind::Stream,
            ProbeKind::Stream,
            ProbeKind::Chat
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_bounds_probes_in_flight() {
    let runner = Scripted::default();
    let specs: Vec<MonitorSpec> = (0..6)
        .map(|i| spec(&format!("p{i}"), ProbeKind::Chat))
        .collect();
    for s in &specs {
        runner.takes(&s.id, &[Takes::For(Duration::from_secs(3))]);
    }
    let h = start(specs, &runner, 2);
    let latest = h.origins.iter().max().copied().expect("monitors");
    tokio::time::sleep_until(latest + Duration::from_secs(1)).await;
    // Everyone asks at once: two run, the others wait their turn.
    for index in 0..6 {
        h.schedule.nudge(index, Instant::now());
    }
    tokio::time::sleep_until(latest + Duration::from_secs(20)).await;
    let log = runner.0.lock().unwrap();
    assert_eq!(log.most_in_flight, 2);
    let total: usize = log.started.values().map(Vec::len).sum();
    assert!(total >= 12, "each monitor probed on its tick and once more");
}

#[tokio::test(start_paused = true)]
async fn many_monitors_with_extra_probes_each_probe_once_per_tick() {
    let runner = Scripted::default();
    let specs: Vec<MonitorSpec> = (0..500)
        .map(|i| spec(&format!("m{i}"), ProbeKind::Chat))
        .collect();
    let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    for id in &ids {
        runner.takes(id, &[Takes::For(Duration::from_millis(700))]);
    }
    let h = start(specs, &runner, 64);
    let t0 = Instant::now();
    // Extra probes sprinkled over the first interval, some into probes in flight.
    for step in 0..30u32 {
        tokio::time::sleep_until(t0 + Duration::from_secs(u64::from(step))).await;
        for index in (step as usize..500).step_by(37) {
            h.schedule
                .nudge(index, Instant::now() + Duration::from_millis(300));
        }
    }
    tokio::time::sleep_until(t0 + INTERVAL * 3).await;
    let started = runner.0.lock().unwrap().started.clone();
    for (index, id) in ids.iter().enumerate() {
        let regular: Vec<Instant> = started[id]
            .iter()
            .map(|s| s.at)
            .filter(|at| {
                (*at - h.origins[index]).as_nanos() % INTERVAL.as_nanos() <= RESOLUTION.as_nanos()
            })
            .collect();
        // Every tick of the grid once, extra probes or not (a tick that fell inside an extra
        // probe is skipped, so allow that one).
        let expected = grid(h.origins[index], 0..3);
        assert!(
            regular
                .iter()
                .all(|t| expected.iter().any(|e| t.duration_since(*e) <= RESOLUTION)),
            "{id}: {regular:?}"
        );
        assert!(regular.len() >= 2, "{id}: {regular:?}");
    }
    assert_eq!(runner.0.lock().unwrap().most_per_monitor, 1);
}

#[test]
fn phases_spread_monitors_across_the_interval() {
    let interval = Duration::from_secs(30);
    let mut buckets = [0u32; 10];
    for i in 0..10_000 {
        let p = phase(&format!("provider{i}-chat"), interval);
        assert!(p < interval);
        buckets[(p.as_secs_f64() / 3.0) as usize] += 1;
    }
    // Every 3-second slice holds close to a tenth of the monitors.
    for count in buckets {
        assert!((800..1200).contains(&count), "{buckets:?}");
    }
}

#[test]
fn phase_is_stable_for_an_id() {
    let interval = Duration::from_secs(30);
    assert_eq!(phase("kimi-chat", interval), phase("kimi-chat", interval));
    assert_ne!(phase("kimi-chat", interval), phase("kimi-stream", interval));
}

#[tokio::test(start_paused = true)]
async fn next_tick_stays_on_the_schedule_grid() {
    let origin = Instant::now();
    let interval = Duration::from_secs(30);
    assert_eq!(next_tick(origin, interval, origin), origin);
    let late = origin + Duration::from_secs(31);
    assert_eq!(
        next_tick(origin, interval, late),
        origin + Duration::from_secs(60)
    );
    let exact = origin + Duration::from_secs(60);
    assert_eq!(next_tick(origin, interval, exact), exact);
}

/// A sleeping monitor task costs its future's size (one allocation per monitor): the probe and
/// the hand-off of its result live in a future of their own, allocated only while probing.
#[tokio::test]
async fn a_waiting_monitor_task_is_small() {
    let (out, _rx) = mpsc::channel(1);
    let (_stop, stopped) = watch::channel(false);
    let (_nudge, nudges) = mpsc::channel(1);
    let (_switch, probe_as) = watch::channel(None);
    let specs = vec![spec("kimi", ProbeKind::Chat)];
    let task = MonitorTask {
        index: 0,
        owned: specs.iter().map(|_| AtomicBool::new(true)).collect(),
        specs: Arc::new(specs),
        runner: Arc::new(Scripted::default()),
        semaphore: Arc::new(Semaphore::new(1)),
        out,
        nudges,
        probe_as,
        shutdown: stopped,
    };
    // 1,208 bytes with the probe inline (and ~1.6 KB before monitors shared their provider).
    let size = std::mem::size_of_val(&task.run(Instant::now()));
    assert!(size <= 768, "{size} bytes");
}

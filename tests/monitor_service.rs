//! The monitor core on paused tokio time: scheduling, outages, recovery, flapping, setup
//! problems, isdown's own network going down, hung probes and restarts — with a real SQLite
//! store in a temp dir. Probes are scripted in-process (paused time cannot mix with sockets);
//! everything else is the production code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use isdown::config::Config;
use isdown::incident::IncidentKind;
use isdown::metrics::Metrics;
use isdown::monitor::MonitorSpec;
use isdown::monitor::health::{Health, LiveVerdict, PassiveReporter};
use isdown::monitor::schedule::ProbeRunner;
use isdown::monitor::service::{MonitorEvent, MonitorService, initial_health};
use isdown::peers::{PeerSettings, Peers};
use isdown::probe::{ProbeResult, Timings};
use isdown::store::sqlite::SqliteStore;
use isdown::store::{
    AlertCommit, AlertGroup, AttemptFailure, DailyLatency, Incident, IncidentFilter, IncidentState,
    MonitorRecord, NewIncident, OfficialIncident, OutboxBacklog, OutboxEntry, Pruned, ResultRecord,
    Retention, SavedState, Store, StoreError, StoredOfficialIncident, Uptime,
};
use isdown::time::{Clock, Millis};
use isdown::verdict::{Diagnosis, Verdict};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// What a scripted provider answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Fail(Verdict, Option<u16>),
    /// Answer nothing until the probe's deadline.
    Hang,
    /// Alternate ok / 503 from one probe to the next.
    Flap,
}

#[derive(Default)]
struct Script {
    answers: HashMap<String, Answer>,
    /// Answers for one probe kind of a provider (`"kimi/stream"`), before `answers`.
    kind_answers: HashMap<String, Answer>,
    probes: HashMap<String, Vec<Instant>>,
    /// The probe kind each monitor ran, in order.
    kinds: HashMap<String, Vec<&'static str>>,
}

#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Script>>);

impl Scripted {
    fn set(&self, provider: &str, answer: Answer) {
        self.0
            .lock()
            .unwrap()
            .answers
            .insert(provider.into(), answer);
    }

    fn set_kind(&self, provider: &str, kind: &str, answer: Answer) {
        self.0
            .lock()
            .unwrap()
            .kind_answers
            .insert(format!("{provider}/{kind}"), answer);
    }

    fn probe_kinds(&self, monitor: &str) -> Vec<&'static str> {
        self.0
            .lock()
            .unwrap()
            .kinds
            .get(monitor)
            .cloned()
            .unwrap_or_default()
    }

    fn probe_times(&self, monitor: &str) -> Vec<Instant> {
        self.0
            .lock()
            .unwrap()
            .probes
            .get(monitor)
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl ProbeRunner for Scripted {
    async fn probe(&self, spec: &MonitorSpec) -> ProbeResult {
        let (answer, count) = {
            let mut s = self.0.lock().unwrap();
            let list = s.probes.entry(spec.id.clone()).or_default();
            list.push(Instant::now());
            let count = list.len();
            s.kinds
                .entry(spec.id.clone())
                .or_default()
                .push(spec.probe.as_str());
            let by_kind = format!("{}/{}", spec.provider.id, spec.probe.as_str());
            (
                s.kind_answers
                    .get(&by_kind)
                    .or_else(|| s.answers.get(&spec.provider.id))
                    .copied()
                    .unwrap_or(Answer::Ok),
                count,
            )
        };
        let answer = match answer {
            Answer::Flap if count % 2 == 0 => Answer::Fail(Verdict::Unavailable, Some(503)),
            Answer::Flap => Answer::Ok,
            other => other,
        };
        let (verdict, status) = match answer {
            Answer::Ok | Answer::Flap => (Verdict::Up, Some(200)),
            Answer::Fail(v, s) => (v, s),
            Answer::Hang => {
                tokio::time::sleep(spec.timeout).await;
                (Verdict::Timeout, None)
            }
        };
        let mut diagnosis = Diagnosis::new(verdict, format!("scripted {verdict}"), "scripted");
        diagnosis.status = status;
        ProbeResult {
            provider: spec.provider.id.clone(),
            url: spec.provider.base_url.to_string(),
            model: spec.model().map(str::to_owned),
            kind: spec.probe,
            diagnosis,
            latency: status.map(|_| Duration::from_millis(120)),
            ttft: None,
            timings: Timings::default(),
        }
    }
}

/// The real SQLite store, with virtual time held still while a query runs. SQLite works on its
/// own threads; without this, paused tokio time would see the runtime idle during every query
/// and race ahead to the next timer (a test deadline, say) before the query returns. A task that
/// keeps yielding while the query is in flight keeps the runtime busy, so no time passes.
struct Frozen(SqliteStore);

async fn frozen<T>(work: impl std::future::Future<Output = T>) -> T {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let spinner = tokio::spawn(async move {
        while !flag.load(std::sync::atomic::Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
    });
    let out = work.await;
    done.store(true, std::sync::atomic::Ordering::Release);
    let _ = spinner.await;
    out
}

#[async_trait]
impl Store for Frozen {
    async fn register_monitors(&self, m: &[MonitorRecord]) -> Result<(), StoreError> {
        frozen(self.0.register_monitors(m)).await
    }
    async fn record_results(&self, r: &[ResultRecord]) -> Result<(), StoreError> {
        frozen(self.0.record_results(r)).await
    }
    async fn recent_results(&self, m: &str, l: u32) -> Result<Vec<ResultRecord>, StoreError> {
        frozen(self.0.recent_results(m, l)).await
    }
    async fn open_incident(&self, i: &NewIncident) -> Result<i64, StoreError> {
        frozen(self.0.open_incident(i)).await
    }
    async fn note_incident_failure(
        &self,
        id: i64,
        v: Verdict,
        e: Option<&str>,
    ) -> Result<(), StoreError> {
        frozen(self.0.note_incident_failure(id, v, e)).await
    }
    async fn close_incident(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        frozen(self.0.close_incident(id, at)).await
    }
    async fn reopen_incident(&self, id: i64) -> Result<(), StoreError> {
        frozen(self.0.reopen_incident(id)).await
    }
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        frozen(self.0.incident(id)).await
    }
    async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        frozen(self.0.incidents(f)).await
    }
    async fn save_monitor_state(&self, m: &str, s: &str) -> Result<(), StoreError> {
        frozen(self.0.save_monitor_state(m, s)).await
    }
    async fn save_monitor_states(&self, s: &[(String, String)]) -> Result<(), StoreError> {
        frozen(self.0.save_monitor_states(s)).await
    }
    async fn load_monitor_states(&self) -> Result<Vec<(String, SavedState)>, StoreError> {
        frozen(self.0.load_monitor_states()).await
    }
    async fn quarantine_monitor_state(
        &self,
        m: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        frozen(self.0.quarantine_monitor_state(m, reason, at)).await
    }
    async fn uptime(&self, m: &str, now: Millis) -> Result<Uptime, StoreError> {
        frozen(self.0.uptime(m, now)).await
    }
    async fn daily_latency(
        &self,
        m: &str,
        now: Millis,
        d: u32,
    ) -> Result<Vec<DailyLatency>, StoreError> {
        frozen(self.0.daily_latency(m, now, d)).await
    }
    async fn prune(&self, now: Millis, r: &Retention) -> Result<Pruned, StoreError> {
        frozen(self.0.prune(now, r)).await
    }
    async fn size_bytes(&self) -> Result<u64, StoreError> {
        frozen(self.0.size_bytes()).await
    }
    async fn unresolved_alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        frozen(self.0.unresolved_alert_groups()).await
    }
    async fn commit_alerts(&self, c: &AlertCommit) -> Result<(), StoreError> {
        frozen(self.0.commit_alerts(c)).await
    }
    async fn pending_alerts(&self, c: &str, l: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        frozen(self.0.pending_alerts(c, l)).await
    }
    async fn alert_delivered(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        frozen(self.0.alert_delivered(id, at)).await
    }
    async fn alert_attempt_failed(&self, id: i64, f: &AttemptFailure) -> Result<(), StoreError> {
        frozen(self.0.alert_attempt_failed(id, f)).await
    }
    async fn outbox_entries(&self, l: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        frozen(self.0.outbox_entries(l)).await
    }
    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, StoreError> {
        frozen(self.0.outbox_backlog()).await
    }
    async fn prune_alerts(&self, before: Millis) -> Result<u64, StoreError> {
        frozen(self.0.prune_alerts(before)).await
    }

    // === status page reads ===

    async fn daily_counts(
        &self,
        m: &str,
        now: Millis,
        d: u32,
    ) -> Result<Vec<isdown::store::DayCounts>, StoreError> {
        frozen(self.0.daily_counts(m, now, d)).await
    }
    async fn latency_series(
        &self,
        m: &str,
        step: isdown::store::SeriesStep,
        now: Millis,
        n: u32,
    ) -> Result<Vec<isdown::store::LatencyPoint>, StoreError> {
        frozen(self.0.latency_series(m, step, now, n)).await
    }
    async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError> {
        frozen(self.0.incidents_between(from, to)).await
    }
    async fn record_official_incidents(
        &self,
        provider: &str,
        incidents: &[OfficialIncident],
        seen_at: Millis,
    ) -> Result<(), StoreError> {
        frozen(
            self.0
                .record_official_incidents(provider, incidents, seen_at),
        )
        .await
    }
    async fn official_incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredOfficialIncident>, StoreError> {
        frozen(self.0.official_incidents_between(from, to)).await
    }
    async fn acknowledge_incidents(&self, links: &[(i64, i64)]) -> Result<(), StoreError> {
        frozen(self.0.acknowledge_incidents(links)).await
    }
    fn queue(&self) -> &dyn isdown::store::QueueStore {
        self.0.queue()
    }
}

struct Harness {
    reporter: PassiveReporter,
    store: Arc<dyn Store>,
    script: Scripted,
    events: broadcast::Receiver<MonitorEvent>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    clock: Clock,
    health: Health,
}

fn config(providers: &[&str]) -> Config {
    let mut text = String::from("[monitor]\nconfirm_after = \"5s\"\n");
    for p in providers {
        text.push_str(&format!(
            "[providers.{p}]\nbase_url = \"http://127.0.0.1:9/v1\"\nprobe_model = \"m\"\n\
             api_key_env = \"KEY\"\n\
             [[monitors]]\nprovider = \"{p}\"\nprobes = [\"reachability\"]\ninterval = \"30s\"\n\
             timeout = \"10s\"\n"
        ));
    }
    // Every provider has a key (`KEY`), so that a chat probe can run.
    Config::from_toml(&text, "test.toml", &|name| {
        (name == "KEY").then(|| "sk-test".to_owned())
    })
    .unwrap()
}

async fn start(dir: &std::path::Path, providers: &[&str], script: Scripted) -> Harness {
    // Opening spawns SQLite's worker threads; on paused time their connect deadlines would fire
    // at once, so the clock runs for the open only.
    tokio::time::resume();
    let store: Arc<dyn Store> = Arc::new(Frozen(
        SqliteStore::open(&dir.join("isdown.db")).await.unwrap(),
    ));
    tokio::time::pause();
    let config = config(providers);
    let (events_tx, events) = broadcast::channel(1_024);
    let (stop, stopped) = watch::channel(false);
    let clock = Clock::starting_at(T0);
    let health = initial_health(&config.monitors);
    let service = MonitorService {
        specs: Arc::new(config.monitors.clone()),
        settings: config.monitor,
        retention: config.retention,
        store: store.clone(),
        runner: Arc::new(script.clone()),
        health: health.clone(),
        metrics: Metrics::new(),
        clock,
        events: events_tx,
        peers: Peers::solo(PeerSettings::default().me),
    };
    let (reporter, mut passive) = PassiveReporter::channel(16);
    let task = tokio::spawn(async move {
        service.run(&mut passive, stopped).await.unwrap();
    });
    Harness {
        reporter,
        store,
        script,
        events,
        stop,
        task,
        clock,
        health,
    }
}

impl Harness {
    /// Waits (in virtual time) for the next event matching `pred`; panics after `within`.
    async fn next(
        &mut self,
        within: Duration,
        pred: impl Fn(&MonitorEvent) -> bool,
    ) -> MonitorEvent {
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(e)) if pred(&e) => return e,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("event channel: {e}"),
                Err(_) => panic!("no matching event within {within:?}"),
            }
        }
    }

    async fn no_event(&mut self, during: Duration, pred: impl Fn(&MonitorEvent) -> bool) {
        let deadline = Instant::now() + during;
        while let Ok(Ok(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            assert!(!pred(&e), "unexpected event {e:?}");
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }

    async fn incidents(&self) -> Vec<Incident> {
        self.store
            .incidents(&IncidentFilter {
                state: None,
                monitor: None,
                limit: 100,
                offset: 0,
            })
            .await
            .unwrap()
    }
}

fn opened(kind: IncidentKind) -> impl Fn(&MonitorEvent) -> bool {
    move |e| matches!(e, MonitorEvent::IncidentOpened { kind: k, .. } if *k == kind)
}

fn closed(e: &MonitorEvent) -> bool {
    matches!(e, MonitorEvent::IncidentClosed { .. })
}

#[tokio::test(start_paused = true)]
async fn outage_is_confirmed_within_seconds_and_closes_after_two_successes() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    // A full interval of health first.
    h.no_event(Duration::from_secs(60), |_| true).await;

    h.script
        .set("kimi", Answer::Fail(Verdict::Unavailable, Some(503)));
    let failing_since = h.clock.now();
    let MonitorEvent::IncidentOpened {
        monitor,
        at,
        reopened,
        ..
    } = h
        .next(Duration::from_secs(60), opened(IncidentKind::Outage))
        .await
    else {
        unreachable!()
    };
    assert_eq!(monitor, "kimi-reachability");
    assert!(!reopened);
    let opened_at = h.clock.now();
    // First failing probe within one interval, confirmation 5 s later.
    assert!(
        opened_at - failing_since <= 30_000 + 5_000,
        "{}",
        opened_at - failing_since
    );
    assert!(at >= failing_since && at <= opened_at);
    assert_eq!(h.health.snapshot().overall(), "down");

    h.script.set("kimi", Answer::Ok);
    let recovering_since = h.clock.now();
    h.next(Duration::from_secs(60), closed).await;
    assert!(h.clock.now() - recovering_since <= 30_000 + 5_000);

    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Outage);
    assert_eq!(incidents[0].verdict, Verdict::Unavailable);
    assert!(incidents[0].ended_at.is_some());
    assert!(
        incidents[0]
            .first_error
            .as_deref()
            .unwrap()
            .contains("unavailable")
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn rate_limits_are_a_setup_problem_never_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    script.set("kimi", Answer::Fail(Verdict::RateLimited, Some(429)));
    let mut h = start(dir.path(), &["kimi", "deepseek"], script).await;
    h.next(Duration::from_secs(60), opened(IncidentKind::SetupProblem))
        .await;
    h.no_event(Duration::from_secs(300), opened(IncidentKind::Outage))
        .await;
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::SetupProblem);
    assert_eq!(h.health.snapshot().overall(), "setup_problem");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_flapping_provider_gets_one_incident_not_one_per_minute() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    script.set("kimi", Answer::Flap);
    let mut h = start(dir.path(), &["kimi", "deepseek"], script).await;
    h.next(Duration::from_secs(600), opened(IncidentKind::Outage))
        .await;
    h.no_event(Duration::from_secs(1_800), |e| {
        closed(e) || matches!(e, MonitorEvent::IncidentOpened { .. })
    })
    .await;
    h.script.set("kimi", Answer::Ok);
    h.next(Duration::from_secs(120), closed).await;
    assert_eq!(h.incidents().await.len(), 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn all_providers_failing_at_the_network_level_is_one_network_incident() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(
        dir.path(),
        &["kimi", "deepseek", "glm", "openai"],
        script.clone(),
    )
    .await;
    h.no_event(Duration::from_secs(40), |_| true).await;
    for p in ["kimi", "deepseek", "glm", "openai"] {
        script.set(p, Answer::Fail(Verdict::Network, None));
    }
    let e = h.next(Duration::from_secs(60), |_| true).await;
    assert!(
        matches!(
            e,
            MonitorEvent::IncidentOpened {
                kind: IncidentKind::Network,
                ..
            }
        ),
        "{e:?}"
    );
    h.no_event(Duration::from_secs(300), |e| {
        matches!(e, MonitorEvent::IncidentOpened { .. })
    })
    .await;
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].kind, IncidentKind::Network);
    assert_eq!(h.health.snapshot().overall(), "setup_problem");

    for p in ["kimi", "deepseek", "glm", "openai"] {
        script.set(p, Answer::Ok);
    }
    h.next(Duration::from_secs(60), closed).await;
    assert!(h.incidents().await[0].ended_at.is_some());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn one_provider_unreachable_while_others_answer_is_that_providers_outage() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek", "glm"], script.clone()).await;
    script.set("kimi", Answer::Fail(Verdict::Network, None));
    h.next(Duration::from_secs(120), opened(IncidentKind::Outage))
        .await;
    assert!(
        h.incidents()
            .await
            .iter()
            .all(|i| i.kind == IncidentKind::Outage)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_probe_never_delays_other_monitors() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    script.set("kimi", Answer::Hang);
    let h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    tokio::time::sleep(Duration::from_secs(300)).await;
    let times = script.probe_times("deepseek-reachability");
    assert!(times.len() >= 9, "{}", times.len());
    for pair in times.windows(2) {
        // Never more than one interval apart: the hung neighbour delays nothing. (Closer is
        // fine: kimi's timeouts ask deepseek for witness probes in between.)
        assert!(
            pair[1] - pair[0] <= Duration::from_secs(30),
            "{:?}",
            pair[1] - pair[0]
        );
    }
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_incident_continues_the_same_incident() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    script.set("kimi", Answer::Fail(Verdict::ServerError, Some(500)));
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    let MonitorEvent::IncidentOpened { id, .. } = h
        .next(Duration::from_secs(60), opened(IncidentKind::Outage))
        .await
    else {
        unreachable!()
    };
    h.stop().await;

    // Same data directory, new service: still failing, then recovering.
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    h.no_event(Duration::from_secs(120), |e| {
        matches!(e, MonitorEvent::IncidentOpened { .. })
    })
    .await;
    script.set("kimi", Answer::Ok);
    let MonitorEvent::IncidentClosed { id: closed_id, .. } =
        h.next(Duration::from_secs(60), closed).await
    else {
        unreachable!()
    };
    assert_eq!(closed_id, id);
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert!(incidents[0].failed_probes >= 4, "{:?}", incidents[0]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn monitors_are_spread_over_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let names: Vec<String> = (0..60).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let start_at = Instant::now();
    let h = start(dir.path(), &refs, script.clone()).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut per_5s = [0usize; 6];
    for name in &names {
        for t in script.probe_times(&format!("{name}-reachability")) {
            if let Some(slot) = per_5s.get_mut(((t - start_at).as_secs() / 5) as usize) {
                *slot += 1;
            }
        }
    }
    // 60 monitors over 30 s: no 5-second slice holds more than a third of them.
    assert!(per_5s.iter().all(|n| *n <= 20), "{per_5s:?}");
    assert_eq!(per_5s.iter().sum::<usize>(), 60);
    let open = h
        .store
        .incidents(&IncidentFilter {
            state: Some(IncidentState::Open),
            monitor: None,
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert!(open.is_empty());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn live_failures_reach_the_health_view_and_trigger_an_immediate_probe() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    h.no_event(Duration::from_secs(60), |_| true).await;
    let probes_before = script.probe_times("kimi-reachability").len();
    let reported_at = Instant::now();
    h.reporter.report(LiveVerdict {
        provider: "kimi".into(),
        verdict: Verdict::Unavailable,
        blame: Some(isdown::verdict::Blame::Provider),
        latency_ms: Some(40.0),
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let times = script.probe_times("kimi-reachability");
    assert_eq!(times.len(), probes_before + 1, "no immediate probe");
    assert!(*times.last().unwrap() - reported_at < Duration::from_millis(10));
    let passive = h.health.snapshot().passive;
    let kimi = &passive["kimi"];
    assert_eq!((kimi.requests, kimi.failures), (1, 1));
    assert_eq!(kimi.failure_ratio(), Some(1.0));
    h.stop().await;
}

// === Alerts on virtual time ===

/// A receiver inside the process (paused time cannot mix with sockets): records what it gets
/// and when, and fails the first `failures` attempts.
#[derive(Clone)]
struct Recorder {
    clock: Clock,
    failures: Arc<Mutex<u32>>,
    /// Attempts after the first never answer (a receiver that hangs).
    hangs: bool,
    attempts: Arc<Mutex<Vec<(Millis, isdown::alert::AlertMessage, bool)>>>,
    arrived: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl isdown::alert::channel::Deliver for Recorder {
    async fn send(
        &self,
        message: &isdown::alert::AlertMessage,
    ) -> Result<(), isdown::alert::DeliveryError> {
        let fail = {
            let mut left = self.failures.lock().unwrap();
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        };
        self.attempts
            .lock()
            .unwrap()
            .push((self.clock.now(), message.clone(), !fail));
        self.arrived.notify_one();
        if self.hangs {
            std::future::pending::<()>().await;
        }
        if fail {
            Err(isdown::alert::DeliveryError::Retryable("HTTP 503".into()))
        } else {
            Ok(())
        }
    }
}

impl Recorder {
    /// Waits in virtual time until `n` messages were accepted, and returns them.
    async fn delivered(
        &self,
        n: usize,
        within: Duration,
    ) -> Vec<(Millis, isdown::alert::AlertMessage)> {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.arrived.notified();
            let got: Vec<_> = self
                .attempts
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, _, ok)| *ok)
                .map(|(at, m, _)| (*at, m.clone()))
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::timeout_at(deadline, arrived)
                .await
                .unwrap_or_else(|_| panic!("{n} deliveries not within {within:?}: {got:?}"));
        }
    }
}

/// The alert dispatcher and one delivery worker on the harness's store and health view, with
/// the default `[alerting]` policy, delivering to a [`Recorder`] that fails its first
/// `failures` attempts.
struct Alerts {
    recorder: Recorder,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn alerts(h: &Harness, providers: &[&str], failures: u32) -> Alerts {
    alerts_to(h, providers, failures, false)
}

/// [`alerts`], with a receiver that never answers when `hangs`.
fn alerts_to(h: &Harness, providers: &[&str], failures: u32, hangs: bool) -> Alerts {
    use isdown::alert::dispatch::Dispatcher;
    use isdown::alert::outbox::{AlertHealth, AlertMetrics, Delivery};
    use isdown::alert::policy::{AlertPolicy, ChannelRoute};

    let recorder = Recorder {
        clock: h.clock,
        failures: Arc::new(Mutex::new(failures)),
        hangs,
        attempts: Arc::default(),
        arrived: Arc::default(),
    };
    let policy = AlertPolicy::default();
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = watch::channel(false);
    let delivery = Delivery {
        store: h.store.clone(),
        channel: Arc::new(isdown::alert::channel::Channel::new(
            "rec",
            "console",
            Box::new(recorder.clone()),
        )),
        policy: policy.clone(),
        clock: h.clock,
        health: AlertHealth::default(),
        metrics: AlertMetrics::register(&Metrics::new()),
        wake: wake.clone(),
        delivered: tokio::sync::broadcast::channel(4).0,
        held: Peers::solo(PeerSettings::default().me).held(),
    };
    let monitors = config(providers).monitors;
    let dispatcher = Dispatcher {
        store: h.store.clone(),
        policy,
        routes: vec![ChannelRoute::new("rec", None, None).unwrap()],
        monitors: monitors
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    isdown::alert::plan::MonitorInfo {
                        provider: m.provider.id.clone(),
                        provider_name: m.provider.name.clone(),
                        model: None,
                    },
                )
            })
            .collect(),
        health: h.health.clone(),
        clock: h.clock,
        public_url: None,
        wake: vec![wake],
        held: Peers::solo(PeerSettings::default().me).held(),
    };
    let tasks = vec![
        tokio::spawn(delivery.run(stopped.clone())),
        tokio::spawn(dispatcher.run(h.events.resubscribe(), stopped)),
    ];
    Alerts {
        recorder,
        stop,
        tasks,
    }
}

impl Alerts {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_a_receiver_hangs_ends_the_alert_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    let rig = alerts_to(&h, &["kimi", "deepseek"], 0, true);
    let recorder = rig.recorder.clone();
    h.script
        .set("kimi", Answer::Fail(Verdict::Unavailable, Some(503)));
    h.next(Duration::from_secs(60), opened(IncidentKind::Outage))
        .await;
    // The attempt is under way and its receiver will never answer.
    loop {
        let arrived = recorder.arrived.notified();
        if !recorder.attempts.lock().unwrap().is_empty() {
            break;
        }
        arrived.await;
    }
    // Stopping then ends the worker (its entry stays queued for the next start). Before, the
    // worker saw the stop inside the attempt and then waited for another stop that never came.
    tokio::time::timeout(Duration::from_secs(3_600), rig.stop())
        .await
        .expect("the alert tasks ended on the stop");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_alerted_at_confirmation_retried_reminded_and_resolved_on_time() {
    use isdown::alert::AlertEvent;

    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    let rig = alerts(&h, &["kimi", "deepseek"], 2);
    let recorder = rig.recorder.clone();
    h.no_event(Duration::from_secs(60), |_| true).await;

    h.script
        .set("kimi", Answer::Fail(Verdict::Unavailable, Some(503)));
    h.next(Duration::from_secs(60), opened(IncidentKind::Outage))
        .await;
    let opened_at = h.clock.now();
    let opened = recorder.delivered(1, Duration::from_secs(120)).await;
    let attempts: Vec<Millis> = recorder
        .attempts
        .lock()
        .unwrap()
        .iter()
        .map(|(at, _, _)| *at - opened_at)
        .collect();
    // Announced as soon as it is confirmed (nothing else is failing), then retried after
    // 2.5–5 s and 5–10 s.
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!((0..1_000).contains(&attempts[0]), "{attempts:?}");
    let gaps = [attempts[1] - attempts[0], attempts[2] - attempts[1]];
    assert!((2_500..=5_100).contains(&gaps[0]), "{gaps:?}");
    assert!((5_000..=10_100).contains(&gaps[1]), "{gaps:?}");
    let message = &opened[0].1;
    assert_eq!(message.event, AlertEvent::Opened);
    assert_eq!(message.items[0].monitor, "kimi-reachability");
    assert!(
        message.advice.starts_with("Fail over to DeepSeek"),
        "{}",
        message.advice
    );

    // Reminders every 30 min while open.
    let reminded = recorder.delivered(3, Duration::from_secs(3_700)).await;
    assert_eq!(reminded[1].1.event, AlertEvent::Reminder);
    assert_eq!(reminded[2].1.event, AlertEvent::Reminder);
    let announced = opened[0].0 - attempts[2] + attempts[0];
    assert!((reminded[1].0 - announced - 1_800_000).abs() < 1_000);
    assert!((reminded[2].0 - reminded[1].0 - 1_800_000).abs() < 1_000);

    h.script.set("kimi", Answer::Ok);
    h.next(Duration::from_secs(120), closed).await;
    let resolved = recorder.delivered(4, Duration::from_secs(60)).await;
    let message = &resolved[3].1;
    assert_eq!(message.event, AlertEvent::Resolved);
    assert_eq!(message.dedup_key, opened[0].1.dedup_key);
    assert!(
        message.duration_s.unwrap() >= 3_600,
        "{:?}",
        message.duration_s
    );

    rig.stop().await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_key_rejected_in_live_traffic_is_probed_at_once_but_a_rate_limit_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    h.no_event(Duration::from_secs(60), |_| true).await;
    let live = |verdict| LiveVerdict {
        provider: "kimi".into(),
        verdict,
        blame: verdict.default_blame(),
        latency_ms: Some(40.0),
    };

    let before = script.probe_times("kimi-reachability").len();
    h.reporter.report(live(Verdict::RateLimited));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        script.probe_times("kimi-reachability").len(),
        before,
        "no extra probe into a rate limit"
    );

    script.set("kimi", Answer::Fail(Verdict::AuthFailed, Some(401)));
    h.reporter.report(live(Verdict::AuthFailed));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(script.probe_times("kimi-reachability").len(), before + 1);
    h.next(Duration::from_secs(30), opened(IncidentKind::SetupProblem))
        .await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_live_timeout_starts_a_stream_probe_watch_that_confirms_a_hang_as_a_timeout_outage() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    h.no_event(Duration::from_secs(60), |_| true).await;
    // Kimi hangs on chat but still lists its models: the configured reachability probe is
    // blind to it.
    script.set_kind("kimi", "stream", Answer::Hang);
    let before = script.probe_kinds("kimi-reachability").len();
    let reported_at = Instant::now();
    h.reporter.report(LiveVerdict {
        provider: "kimi".into(),
        verdict: Verdict::Timeout,
        blame: Some(isdown::verdict::Blame::Provider),
        latency_ms: Some(15_000.0),
    });
    // Confirmed within two probe timeouts (10 s each) and a confirmation delay (5 s).
    let event = h
        .next(Duration::from_secs(60), opened(IncidentKind::Outage))
        .await;
    let MonitorEvent::IncidentOpened { id, monitor, .. } = event else {
        unreachable!()
    };
    assert_eq!(monitor, "kimi-reachability");
    assert!(
        reported_at.elapsed() <= Duration::from_secs(30),
        "{:?}",
        reported_at.elapsed()
    );
    let incident = h.store.incident(id).await.unwrap().unwrap();
    assert_eq!(incident.verdict, Verdict::Timeout);
    // Every probe since the report was a streaming chat probe, the first one at once.
    let kinds = script.probe_kinds("kimi-reachability");
    assert!(kinds[before..].iter().all(|k| *k == "stream"), "{kinds:?}");
    let first = script.probe_times("kimi-reachability")[before];
    assert!(first - reported_at < Duration::from_millis(10));
    // The gateway reads the confirmed hang from the health view.
    let row = h
        .health
        .snapshot()
        .monitors
        .into_iter()
        .find(|m| m.id == "kimi-reachability")
        .unwrap();
    assert_eq!(row.verdict, Some(Verdict::Timeout));
    assert!(row.open_incident.is_some());

    // Kimi recovers: stream probes close the incident, then the monitor goes back to its
    // configured reachability probe.
    script.set_kind("kimi", "stream", Answer::Ok);
    h.next(Duration::from_secs(120), closed).await;
    h.no_event(Duration::from_secs(65), |_| true).await;
    let kinds = script.probe_kinds("kimi-reachability");
    assert_eq!(kinds.last(), Some(&"reachability"), "{kinds:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn skipped_requests_and_recovery_tests_reach_the_health_view_per_gateway_target() {
    use isdown::monitor::health::RecoveryTest;
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path(), &["kimi"], Scripted::default()).await;
    for _ in 0..3 {
        h.reporter.skipped("kimi".into(), "*".into());
    }
    h.reporter.recovery_test(RecoveryTest {
        provider: "kimi".into(),
        target: "*".into(),
        passed: false,
        verdict: Verdict::Timeout,
        ttft: None,
    });
    h.no_event(Duration::from_millis(10), |_| true).await;
    let view = h.health.snapshot();
    let target = &view.passive["kimi"].gateway_targets["*"];
    assert_eq!(target.skipped, 3);
    let test = target.last_recovery_test.as_ref().unwrap();
    assert!(!test.passed);
    assert_eq!(test.verdict, Verdict::Timeout);
    assert!(test.at >= T0 && test.at <= h.clock.now(), "{}", test.at);
    // As the monitor API shows it (`live` of GET /api/v1/monitors/{id}).
    let json = serde_json::to_value(&view.passive["kimi"]).unwrap();
    assert_eq!(json["gateway_targets"]["*"]["skipped"], 3);
    assert_eq!(
        json["gateway_targets"]["*"]["last_recovery_test"]["verdict"],
        "timeout"
    );
    h.stop().await;
}

// === Grouping that costs nothing when there is nothing to group ===

fn live_failure(provider: &str) -> LiveVerdict {
    LiveVerdict {
        provider: provider.into(),
        verdict: Verdict::Unavailable,
        blame: Some(isdown::verdict::Blame::Provider),
        latency_ms: Some(40.0),
    }
}

#[tokio::test(start_paused = true)]
async fn outages_confirmed_within_confirm_after_of_each_other_are_one_message_and_a_later_one_a_follow_up()
 {
    use isdown::alert::AlertEvent;

    let providers = ["kimi", "deepseek", "glm", "qwen", "openai"];
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &providers, script.clone()).await;
    let rig = alerts(&h, &providers, 0);
    h.no_event(Duration::from_secs(60), |_| true).await;

    // Three providers break; live traffic makes each probe at once, so their confirmations (5 s
    // later) land within a moment of each other.
    for p in ["kimi", "deepseek", "glm"] {
        h.script
            .set(p, Answer::Fail(Verdict::Unavailable, Some(503)));
    }
    for p in ["kimi", "deepseek"] {
        h.reporter.report(live_failure(p));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.reporter.report(live_failure("glm"));
    h.next(Duration::from_secs(30), opened(IncidentKind::Outage))
        .await;
    let first_confirmed = h.clock.now();
    for _ in 0..2 {
        h.next(Duration::from_secs(30), opened(IncidentKind::Outage))
            .await;
    }
    let last_confirmed = h.clock.now();
    assert!(
        last_confirmed - first_confirmed < 5_000,
        "within confirm_after"
    );
    let sent = rig.recorder.delivered(1, Duration::from_secs(10)).await;
    let (at, message) = &sent[0];
    assert_eq!(message.event, AlertEvent::Opened);
    assert_eq!(
        message.items.len(),
        3,
        "one message naming all three: {message:?}"
    );
    // The message waited for the last of the three, and no longer.
    assert!(
        *at >= last_confirmed && *at - last_confirmed < 100,
        "{}",
        *at - last_confirmed
    );

    // A fourth breaks after the message went out: a follow-up under the same key, no new page.
    h.script
        .set("qwen", Answer::Fail(Verdict::Unavailable, Some(503)));
    h.reporter.report(live_failure("qwen"));
    let sent = rig.recorder.delivered(2, Duration::from_secs(60)).await;
    let follow_up = &sent[1].1;
    assert_eq!(follow_up.event, AlertEvent::Update);
    assert_eq!(follow_up.dedup_key, message.dedup_key);
    assert_eq!(follow_up.items.len(), 4);
    assert!(
        !sent
            .iter()
            .skip(1)
            .any(|(_, m)| m.event == AlertEvent::Opened),
        "no second page"
    );
    rig.stop().await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn isdowns_own_network_going_down_is_still_one_message() {
    use isdown::alert::AlertEvent;

    let providers = ["kimi", "deepseek", "glm"];
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &providers, script.clone()).await;
    let rig = alerts(&h, &providers, 0);
    h.no_event(Duration::from_secs(60), |_| true).await;
    for p in providers {
        h.script.set(p, Answer::Fail(Verdict::Network, None));
    }
    h.next(Duration::from_secs(120), opened(IncidentKind::Network))
        .await;
    let sent = rig.recorder.delivered(1, Duration::from_secs(30)).await;
    assert_eq!(sent[0].1.kind, IncidentKind::Network);
    h.no_event(Duration::from_secs(120), opened(IncidentKind::Outage))
        .await;
    let all = rig.recorder.delivered(1, Duration::from_secs(1)).await;
    assert_eq!(all.len(), 1, "one message: {all:?}");
    assert_eq!(all[0].1.event, AlertEvent::Opened);
    rig.stop().await;
    h.stop().await;
}

// === Detection from live traffic ===

#[tokio::test(start_paused = true)]
async fn a_burst_of_live_failures_confirms_an_outage_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    h.no_event(Duration::from_secs(60), |_| true).await;
    h.script
        .set("kimi", Answer::Fail(Verdict::Unavailable, Some(503)));
    let broke = Instant::now();
    // Gateway traffic at 10 requests a second, every one failing.
    for _ in 0..3 {
        h.reporter.report(live_failure("kimi"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.next(Duration::from_secs(30), opened(IncidentKind::Outage))
        .await;
    assert!(
        Instant::now() - broke < Duration::from_secs(1),
        "confirmed by the probes the live failures triggered, not after confirm_after"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_single_live_failure_of_a_healthy_provider_is_dismissed() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    h.no_event(Duration::from_secs(60), |_| true).await;
    h.reporter.report(live_failure("kimi"));
    h.no_event(Duration::from_secs(120), opened(IncidentKind::Outage))
        .await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_fails_slowly_is_confirmed_as_soon_as_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let script = Scripted::default();
    let mut h = start(dir.path(), &["kimi", "deepseek"], script.clone()).await;
    h.no_event(Duration::from_secs(60), |_| true).await;
    let before = script.probe_times("kimi-reachability").len();
    // Kimi hangs: each probe runs into its 10 s timeout, twice `confirm_after` (5 s here).
    h.script.set("kimi", Answer::Hang);
    h.next(Duration::from_secs(120), opened(IncidentKind::Outage))
        .await;
    let times = script.probe_times("kimi-reachability");
    let (first, confirmation) = (times[before], times[before + 1]);
    // The confirmation's wait counts from when the failing probe started, which the 10 s probe
    // already covered: it runs right after the timeout, not 5 s later.
    let gap = confirmation - first;
    assert!(
        gap >= Duration::from_secs(10) && gap < Duration::from_secs(11),
        "{gap:?}"
    );
    h.stop().await;
}

//! The status page's renderer on paused tokio time, fed by the real monitor core and a real
//! SQLite store: a state change reaches the page and the JSON within one render, and a monitor
//! loop that stalls shows as stale on the page, in the JSON, on the badges and on `/healthz` —
//! then recovers. Probes are scripted in-process (paused time cannot mix with sockets); the
//! HTTP side is the real router, called in-process.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use isdown::alert::outbox::AlertHealth;
use isdown::config::Config;
use isdown::metrics::Metrics;
use isdown::monitor::MonitorSpec;
use isdown::monitor::health::{Health, PassiveReporter, STALL_AFTER_MS};
use isdown::monitor::schedule::ProbeRunner;
use isdown::monitor::service::{MonitorEvent, MonitorService, initial_health};
use isdown::peers::{PeerSettings, Peers};
use isdown::probe::{ProbeResult, Timings};
use isdown::store::sqlite::SqliteStore;
use isdown::store::{
    AlertCommit, AlertGroup, AttemptFailure, DailyLatency, DayCounts, Incident, IncidentFilter,
    LatencyPoint, MonitorRecord, NewIncident, OfficialIncident, OutboxBacklog, OutboxEntry, Pruned,
    ResultRecord, Retention, SavedState, SeriesStep, Store, StoreError, StoredOfficialIncident,
    Uptime,
};
use isdown::time::Clock;
use isdown::time::Millis;
use isdown::verdict::{Diagnosis, Verdict};
use isdown::web::renderer::{self, MIN_GAP};
use isdown::web::site::{Site, SiteInfo};
use isdown::web::views::{PublicViews, Views};
use isdown::web::{self, AppState};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Probes answer `up`, or `unavailable` for the providers set to fail.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<HashMap<String, Verdict>>>);

impl Scripted {
    fn fail(&self, provider: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(provider.into(), Verdict::Unavailable);
    }
}

#[async_trait]
impl ProbeRunner for Scripted {
    async fn probe(&self, spec: &MonitorSpec) -> ProbeResult {
        let verdict = self
            .0
            .lock()
            .unwrap()
            .get(&spec.provider.id)
            .copied()
            .unwrap_or(Verdict::Up);
        let status = if verdict == Verdict::Up { 200 } else { 503 };
        let mut diagnosis = Diagnosis::new(verdict, format!("scripted {verdict}"), "scripted");
        diagnosis.status = Some(status);
        ProbeResult {
            provider: spec.provider.id.clone(),
            url: spec.provider.base_url.to_string(),
            model: spec.model().map(str::to_owned),
            kind: spec.probe,
            diagnosis,
            latency: Some(Duration::from_millis(120)),
            ttft: None,
            timings: Timings::default(),
        }
    }
}

/// The real SQLite store, with virtual time held still while a query runs (SQLite works on its
/// own threads: without this, paused time would see the runtime idle during a query and race
/// ahead), and a switch that wedges it — every call then waits until it is released, as on a
/// locked or hung disk, and virtual time runs on meanwhile.
struct Wedgeable {
    inner: SqliteStore,
    wedged: watch::Receiver<bool>,
}

impl Wedgeable {
    async fn call<T>(&self, work: impl Future<Output = T>) -> T {
        let mut wedged = self.wedged.clone();
        let _ = wedged.wait_for(|w| !*w).await;
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
}

#[async_trait]
impl Store for Wedgeable {
    async fn register_monitors(&self, m: &[MonitorRecord]) -> Result<(), StoreError> {
        self.call(self.inner.register_monitors(m)).await
    }
    async fn record_results(&self, r: &[ResultRecord]) -> Result<(), StoreError> {
        self.call(self.inner.record_results(r)).await
    }
    async fn recent_results(&self, m: &str, l: u32) -> Result<Vec<ResultRecord>, StoreError> {
        self.call(self.inner.recent_results(m, l)).await
    }
    async fn open_incident(&self, i: &NewIncident) -> Result<i64, StoreError> {
        self.call(self.inner.open_incident(i)).await
    }
    async fn note_incident_failure(
        &self,
        id: i64,
        v: Verdict,
        e: Option<&str>,
    ) -> Result<(), StoreError> {
        self.call(self.inner.note_incident_failure(id, v, e)).await
    }
    async fn close_incident(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        self.call(self.inner.close_incident(id, at)).await
    }
    async fn reopen_incident(&self, id: i64) -> Result<(), StoreError> {
        self.call(self.inner.reopen_incident(id)).await
    }
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.call(self.inner.incident(id)).await
    }
    async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.call(self.inner.incidents(f)).await
    }
    async fn save_monitor_state(&self, m: &str, s: &str) -> Result<(), StoreError> {
        self.call(self.inner.save_monitor_state(m, s)).await
    }
    async fn save_monitor_states(&self, s: &[(String, String)]) -> Result<(), StoreError> {
        self.call(self.inner.save_monitor_states(s)).await
    }
    async fn load_monitor_states(&self) -> Result<Vec<(String, SavedState)>, StoreError> {
        self.call(self.inner.load_monitor_states()).await
    }
    async fn quarantine_monitor_state(
        &self,
        m: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.call(self.inner.quarantine_monitor_state(m, reason, at))
            .await
    }
    async fn uptime(&self, m: &str, now: Millis) -> Result<Uptime, StoreError> {
        self.call(self.inner.uptime(m, now)).await
    }
    async fn daily_latency(
        &self,
        m: &str,
        now: Millis,
        d: u32,
    ) -> Result<Vec<DailyLatency>, StoreError> {
        self.call(self.inner.daily_latency(m, now, d)).await
    }
    async fn prune(&self, now: Millis, r: &Retention) -> Result<Pruned, StoreError> {
        self.call(self.inner.prune(now, r)).await
    }
    async fn size_bytes(&self) -> Result<u64, StoreError> {
        self.call(self.inner.size_bytes()).await
    }
    async fn unresolved_alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        self.call(self.inner.unresolved_alert_groups()).await
    }
    async fn commit_alerts(&self, c: &AlertCommit) -> Result<(), StoreError> {
        self.call(self.inner.commit_alerts(c)).await
    }
    async fn pending_alerts(&self, c: &str, l: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.call(self.inner.pending_alerts(c, l)).await
    }
    async fn alert_delivered(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        self.call(self.inner.alert_delivered(id, at)).await
    }
    async fn alert_attempt_failed(&self, id: i64, f: &AttemptFailure) -> Result<(), StoreError> {
        self.call(self.inner.alert_attempt_failed(id, f)).await
    }
    async fn outbox_entries(&self, l: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.call(self.inner.outbox_entries(l)).await
    }
    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, StoreError> {
        self.call(self.inner.outbox_backlog()).await
    }
    async fn prune_alerts(&self, before: Millis) -> Result<u64, StoreError> {
        self.call(self.inner.prune_alerts(before)).await
    }
    async fn daily_counts(
        &self,
        m: &str,
        now: Millis,
        d: u32,
    ) -> Result<Vec<DayCounts>, StoreError> {
        self.call(self.inner.daily_counts(m, now, d)).await
    }
    async fn latency_series(
        &self,
        m: &str,
        step: SeriesStep,
        now: Millis,
        n: u32,
    ) -> Result<Vec<LatencyPoint>, StoreError> {
        self.call(self.inner.latency_series(m, step, now, n)).await
    }
    async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError> {
        self.call(self.inner.incidents_between(from, to)).await
    }
    async fn record_official_incidents(
        &self,
        provider: &str,
        incidents: &[OfficialIncident],
        seen_at: Millis,
    ) -> Result<(), StoreError> {
        self.call(
            self.inner
                .record_official_incidents(provider, incidents, seen_at),
        )
        .await
    }
    async fn official_incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredOfficialIncident>, StoreError> {
        self.call(self.inner.official_incidents_between(from, to))
            .await
    }
    async fn acknowledge_incidents(&self, links: &[(i64, i64)]) -> Result<(), StoreError> {
        self.call(self.inner.acknowledge_incidents(links)).await
    }
    fn queue(&self) -> &dyn isdown::store::QueueStore {
        self.inner.queue()
    }
}

struct Harness {
    script: Scripted,
    events: broadcast::Receiver<MonitorEvent>,
    wedge: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    monitor: tokio::task::JoinHandle<()>,
    health: Health,
    views: PublicViews,
    router: axum::Router,
    clock: Clock,
}

/// Kimi and DeepSeek probed every 10 s, and OpenAI every second: its results keep the views
/// changing, so the renderer renders as often as it may and a change lands at any point
/// between two renders.
fn config() -> Config {
    let mut text = String::from("[monitor]\nconfirm_after = \"2s\"\n");
    for (p, interval) in [("kimi", "10s"), ("deepseek", "10s"), ("openai", "1s")] {
        text.push_str(&format!(
            "[providers.{p}]\nbase_url = \"http://127.0.0.1:9/v1\"\nprobe_model = \"m\"\n\
             [[monitors]]\nprovider = \"{p}\"\nprobes = [\"reachability\"]\n\
             interval = \"{interval}\"\ntimeout = \"900ms\"\n"
        ));
    }
    Config::from_toml(&text, "test.toml", &|_| None).unwrap()
}

async fn start(dir: &std::path::Path) -> Harness {
    // Opening spawns SQLite's worker threads; on paused time their connect deadlines would fire
    // at once, so the clock runs for the open only.
    tokio::time::resume();
    let sqlite = SqliteStore::open(&dir.join("isdown.db")).await.unwrap();
    tokio::time::pause();
    let (wedge, wedged) = watch::channel(false);
    let store: Arc<dyn Store> = Arc::new(Wedgeable {
        inner: sqlite,
        wedged,
    });
    let config = config();
    let (events_tx, events) = broadcast::channel(1_024);
    let (stop, stopped) = watch::channel(false);
    let clock = Clock::starting_at(T0);
    let health = initial_health(&config.monitors);
    let script = Scripted::default();
    let metrics = Metrics::new();
    let service = MonitorService {
        specs: Arc::new(config.monitors.clone()),
        settings: config.monitor,
        retention: config.retention,
        store: store.clone(),
        runner: Arc::new(script.clone()),
        health: health.clone(),
        metrics: metrics.clone(),
        clock,
        events: events_tx,
        peers: Peers::solo(PeerSettings::default().me),
    };
    let (_reporter, mut passive) = PassiveReporter::channel(16);
    let monitor = tokio::spawn(async move {
        service.run(&mut passive, stopped).await.unwrap();
    });
    let site = Site::new(SiteInfo::of(
        &config.web,
        &config.providers,
        &config.corroboration,
    ));
    let views = renderer::start(renderer::Sources {
        health: health.clone(),
        store: store.clone(),
        site: site.clone(),
        clock,
        // No sources beside the probes here.
        others: tokio::sync::watch::channel(Default::default()).1,
    });
    let (reload, _) = mpsc::channel(1);
    let router = web::router(AppState {
        health: health.clone(),
        store,
        metrics,
        clock,
        admin_token: None,
        reload,
        alerts: AlertHealth::default(),
        site,
        views: views.clone(),
        peers: Peers::solo(PeerSettings::default().me),
    });
    Harness {
        script,
        events,
        wedge,
        stop,
        monitor,
        health,
        views,
        router,
        clock,
    }
}

fn text(views: &Views, path: &str) -> String {
    String::from_utf8(views.get(path).expect("a cached view").identity().to_vec()).unwrap()
}

fn json(views: &Views, path: &str) -> Value {
    serde_json::from_str(&text(views, path)).unwrap()
}

/// Kimi's state in `/api/v1/status`.
fn kimi_state(views: &Views) -> String {
    json(views, "/api/v1/status")["monitors"][0]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

impl Harness {
    /// Waits (in virtual time, at most `within`) for the first rendered version that satisfies
    /// `pred`, returning it and when it was published.
    async fn views_where(
        &self,
        within: Duration,
        pred: impl Fn(&Views) -> bool,
    ) -> (Arc<Views>, Instant) {
        let mut rx = self.views.subscribe();
        let found = tokio::time::timeout(within, rx.wait_for(|v| v.as_deref().is_some_and(&pred)))
            .await
            .expect("no matching render in time")
            .expect("the renderer stopped");
        (found.clone().expect("matched a render"), Instant::now())
    }

    async fn next_event(&mut self, pred: impl Fn(&MonitorEvent) -> bool) -> MonitorEvent {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(120), self.events.recv())
                .await
                .expect("no event in time")
                .expect("event channel");
            if pred(&event) {
                return event;
            }
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.monitor.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn page_and_json_show_a_state_change_within_one_render() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path()).await;
    h.views_where(Duration::from_secs(60), |v| kimi_state(v) == "up")
        .await;

    h.script.fail("kimi");
    h.next_event(|e| {
        matches!(e, MonitorEvent::IncidentOpened { monitor, .. } if monitor == "kimi-reachability")
    })
    .await;
    let changed = Instant::now();
    let (views, shown) = h
        .views_where(Duration::from_secs(10), |v| {
            kimi_state(v) == "down" && text(v, "/").contains("Kimi — major outage")
        })
        .await;
    // One render: at most MIN_GAP after the change, plus the few virtual milliseconds the
    // store's own timers (its writes happen on real I/O) may add to that render.
    assert!(
        shown - changed <= MIN_GAP + Duration::from_millis(20),
        "the page showed the outage {:?} after it opened, more than one render ({MIN_GAP:?})",
        shown - changed
    );
    // Every cached view moved together: the Statuspage JSON and the badge say the same.
    assert_eq!(
        json(&views, "/api/v2/summary.json")["components"][0]["status"],
        "major_outage"
    );
    let badge = views.badge("kimi", 0).expect("kimi's status badge");
    assert!(String::from_utf8_lossy(badge.identity()).contains("Kimi: down"));
    assert_eq!(json(&views, "/api/v1/status")["stale"], false);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_database_leaves_the_page_live_and_a_stalled_monitor_loop_shows_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path()).await;
    let (views, _) = h
        .views_where(Duration::from_secs(60), |v| {
            kimi_state(v) == "up" && text(v, "/").contains("All systems operational")
        })
        .await;
    assert!(!views.freshness.stale);
    let (status, health) = h.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["monitor_loop"]["state"], "running");

    // The disk hangs, and Kimi starts failing: the monitor goes on from memory — its incident
    // waits for the database — so the page stays live and shows Kimi down.
    h.wedge.send(true).unwrap();
    h.script.fail("kimi");
    let (views, _) = h
        .views_where(Duration::from_secs(300), |v| {
            !v.freshness.stale && kimi_state(v) == "down"
        })
        .await;
    assert!(!text(&views, "/").contains("Status unknown"));
    // No request for a cached view touches the (hung) database: each is answered at once.
    for path in [
        "/",
        "/api/v1/status",
        "/api/v2/summary.json",
        "/feed.atom",
        "/incidents",
    ] {
        let (code, _) = tokio::time::timeout(Duration::from_millis(10), h.get(path))
            .await
            .unwrap_or_else(|_| panic!("{path} waited on the store"));
        assert_eq!(code, StatusCode::OK, "{path}");
    }
    let (code, health) = h.get("/healthz").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["reason"], "database unavailable");
    assert_eq!(health["monitor_loop"]["state"], "running");
    assert!(health["database"]["away_since"].is_string(), "{health}");
    assert!(
        health["database"]["waiting_incident_writes"].as_u64() >= Some(1),
        "{health}"
    );

    // The disk comes back: the incident that waited lands, and only then is it announced.
    h.wedge.send(false).unwrap();
    let opened = h
        .next_event(|e| matches!(e, MonitorEvent::IncidentOpened { .. }))
        .await;
    assert!(opened.id() > 0, "announced with the store's id: {opened:?}");
    let (status, health) = h.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["database"]["away_since"], Value::Null, "{health}");
    assert_eq!(health["database"]["waiting_incident_writes"], 0, "{health}");

    // The monitor loop itself stops (a bug, a deadlock): its heartbeat stops, and the page
    // says it no longer knows instead of showing the last state as current.
    h.monitor.abort();
    let (views, _) = h
        .views_where(Duration::from_secs(300), |v| v.freshness.stale)
        .await;
    let beat = h.health.snapshot().heartbeat_at.expect("a heartbeat");
    assert!(
        views.rendered_at - beat >= STALL_AFTER_MS,
        "stale after {} ms of silence",
        views.rendered_at - beat
    );
    let page = text(&views, "/");
    assert!(
        page.contains("Status unknown: isdown&#39;s monitor has stopped")
            || page.contains("Status unknown: isdown's monitor has stopped"),
        "{page}"
    );
    assert!(
        !page.contains("All systems operational"),
        "a stalled page still says all is well"
    );
    assert!(page.contains("class=\"banner state-stale\""));
    let status = json(&views, "/api/v1/status");
    assert_eq!(status["stale"], true);
    assert!(status["updated_at"].is_string());
    let badge = views.badge("deepseek", 0).expect("deepseek's status badge");
    assert!(String::from_utf8_lossy(badge.identity()).contains("DeepSeek: stale"));
    let (code, health) = h.get("/healthz").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["status"], "error");
    assert_eq!(health["monitor_loop"]["state"], "stalled");
    assert!(
        health["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("monitor loop stalled"),
        "{health}"
    );
    assert!(h.clock.now() > T0);
}

//! The monitor core: the single owner of every monitor's state machine.
//!
//! It receives probe outcomes from the scheduler and live reports from the passive-health hook
//! (reacting to them as `passive` says), decides whether a transport failure is the provider's or isdown's own network (correlation
//! across providers, as `check` does), feeds the machines, writes incidents to the store at once
//! and results in batches, and keeps the health view and metrics current. Being the only writer
//! of machine state, it needs no locks; it never blocks on the network.
//!
//! Network rule: a `network`/`timeout` result is held back ("pending") until another provider
//! has answered after it (→ the provider is to blame) or other providers failed at the network
//! level too (→ isdown's network is down: one `network` incident, not N outages). Pending
//! results nudge probes of other providers so the answer comes within seconds.
//!
//! Several instances on one database ([`Peers`]): the core drives only the machines of the
//! monitors whose lease this instance holds. When it takes one over, it reloads that machine
//! from the store (the previous holder saved it with every incident change); the others'
//! machines it follows from the store — open incidents every [`FOLLOW_EVERY`], whole states
//! every [`FOLLOW_STATES_EVERY`] — so its health view, status page and gateway breakers show
//! what the holders see, and it announces their incidents to its own subscribers (the alert
//! dispatcher among them).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::health::{Health, LiveVerdict, MonitorHealth, PassiveReport, Quarantine};
use super::journal::{Journal, Landed, Write};
use super::machine::{Effect, Machine, Observation};
use super::passive::{self, Reaction};
use super::regions::{self, Judgement, RegionView};
use super::schedule::{self, Outcome, Owned, ProbeRunner, Schedule};
use super::writer::{self, WriteBatch};
use super::{MonitorSettings, MonitorSpec};
use crate::incident::IncidentKind;
use crate::metrics::{KindLabels, Metrics, MonitorCells, ProbeLabels};
use crate::peers::{Held, Peers};
use crate::probe::ProbeResult;
use crate::store::{
    Incident, IncidentFilter, MonitorRecord, NewIncident, Origin, RegionReport, ResultRecord,
    Retention, SavedState, Store, StoreError,
};
use crate::time::{Clock, Millis};
use crate::verdict::{Blame, Cause, Verdict};

/// Results are written at least this often (or when [`BATCH_MAX`] accumulate): one transaction
/// per second keeps SQLite far below its limits even at 10,000 monitors.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const BATCH_MAX: usize = 1_000;
/// Retention runs hourly: rows expire by the day, so an hour late costs nothing.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// How often an instance that shares the work reads which incidents the others have open: the
/// lag of its breakers and pages behind another instance's incident.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// How often it reads the others' whole machine states (up, degraded, unknown): one row per
/// monitor, so less often.
const FOLLOW_STATES_EVERY: Duration = Duration::from_secs(30);
/// How long a read of the others' decisions (a lease change, a follow round) may take before
/// the database counts as away: generous, as a round at 50,000 monitors reads them all.
const READ_LIMIT: Duration = Duration::from_secs(10);

pub use super::event::MonitorEvent;

/// Everything the monitor needs.
pub struct MonitorService {
    pub specs: Arc<Vec<MonitorSpec>>,
    pub settings: MonitorSettings,
    pub retention: Retention,
    pub store: Arc<dyn Store>,
    pub runner: Arc<dyn ProbeRunner>,
    pub health: Health,
    pub metrics: Metrics,
    pub clock: Clock,
    pub events: broadcast::Sender<MonitorEvent>,
    /// Which monitors this instance probes ([`Peers::solo`]: all).
    pub peers: Peers,
}

/// The health view's initial rows for `specs`.
pub fn initial_health(specs: &[MonitorSpec]) -> Health {
    Health::new(
        specs
            .iter()
            .map(|s| MonitorHealth {
                id: s.id.clone(),
                provider: s.provider.id.clone(),
                model: s.model().map(str::to_owned),
                probe: s.probe.as_str().to_owned(),
                state: super::machine::MonitorState::Unknown,
                since: None,
                verdict: None,
                last_at: None,
                last_latency_ms: None,
                explanation: None,
                advice: None,
                open_incident: None,
                regions: Default::default(),
            })
            .collect(),
    )
}

struct Pending {
    obs: Observation,
    /// Other providers seen failing at the network level since `obs`.
    failing: HashSet<String>,
    since: Instant,
}

/// The names of [`MonitorState::ALL`](super::machine::MonitorState::ALL), in its order: the
/// metric rows keep a monitor's state as an index into it.
static STATE_NAMES: std::sync::LazyLock<[&'static str; super::machine::MonitorState::ALL.len()]> =
    std::sync::LazyLock::new(|| super::machine::MonitorState::ALL.map(|s| s.as_str()));

/// The metric row of every monitor, indexed like `specs`; monitors of one provider (or model)
/// share its label string, and monitors of one target share its counters.
fn metric_rows(metrics: &Metrics, specs: &[MonitorSpec]) -> Vec<Arc<MonitorCells>> {
    let mut interned: HashSet<Arc<str>> = HashSet::new();
    let mut intern = |text: &str| -> Arc<str> {
        if let Some(shared) = interned.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        interned.insert(shared.clone());
        shared
    };
    specs
        .iter()
        .map(|spec| {
            let target = (
                intern(&spec.provider.id),
                intern(spec.model().unwrap_or_default()),
                spec.probe.as_str(),
            );
            metrics
                .monitors
                .monitor(Arc::from(spec.id.as_str()), target, &*STATE_NAMES)
        })
        .collect()
}

struct Core {
    svc: MonitorService,
    /// Each monitor's metric row, indexed like `specs`.
    rows: Vec<Arc<MonitorCells>>,
    machines: Vec<Machine>,
    pending: Vec<Option<Pending>>,
    /// How many entries of `pending` are `Some` (most of the time none: skip the scans).
    pending_count: usize,
    schedule: Schedule,
    /// Which monitors this instance drives (shared with the scheduler, which skips the others).
    owned: Owned,
    /// Other instances drive the monitors this one does not hold.
    shared: bool,
    /// When the others' whole states were last read.
    followed_states: Instant,
    /// Per monitor, each region's view (instances in several regions; else empty).
    regions: Vec<BTreeMap<String, RegionView>>,
    /// The `changed_at` of the newest region report read.
    regions_read: Millis,
    /// Monitors probing with [`passive::HANG_PROBE`] because live traffic timed out.
    hang_watch: Vec<bool>,
    /// When each monitor's latest probe started: its confirmation counts from then.
    probe_started: Vec<Instant>,
    network_incident: Option<i64>,
    /// What [`Core::network_incident`] is filed under (`MonitorService::network_key`).
    network_key: String,
    /// The regions with a live instance when the incidents were last judged against them.
    live_regions: BTreeSet<String>,
    /// The outage or regional incident this instance knows open, per monitor: what it
    /// opened itself or announced after another region's instance did.
    decided: Vec<Option<(IncidentKind, i64)>>,
    providers: usize,
    /// This instance and its region, as the incidents it opens record them.
    origin: Origin,
    /// What this instance's results record as their region (`None` for the default one).
    result_region: Option<Arc<str>>,
    /// Incident writes, in order; they wait there while the database is away.
    journal: Journal,
    /// Whose incident each opening that has not landed is (by provisional id): the machine to
    /// give the store's id when it does.
    provisional: HashMap<i64, usize>,
    /// Outage decisions waited while the database was away (several regions): judge again
    /// when it is back.
    rejudge_when_back: bool,
    /// A lease change that could not be followed while the database was away.
    held_later: Option<Held>,
    batch: Vec<ResultRecord>,
    snapshots: Vec<(String, String)>,
    writer: mpsc::Sender<WriteBatch>,
    /// Pending results older than this are blamed on the provider for lack of evidence.
    pending_limit: Duration,
}

impl MonitorService {
    /// Runs until `shutdown` turns true; then flushes everything and returns.
    pub async fn run(
        self,
        passive: &mut mpsc::Receiver<PassiveReport>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        // Liveness starts with the loop, before the store is first touched: a start-up that
        // hangs on the database shows as a stall, not as "starting" forever.
        self.health.beat(self.clock.now());
        let records: Vec<MonitorRecord> = self
            .specs
            .iter()
            .map(|s| MonitorRecord {
                id: s.id.clone(),
                provider: s.provider.id.clone(),
                model: s.model().map(str::to_owned),
                probe: s.probe.as_str().to_owned(),
            })
            .collect();
        self.store.register_monitors(&records).await?;
        self.peers
            .set_monitors(self.specs.iter().map(|s| s.id.clone()).collect());
        let mut held_rx = self.peers.held();
        let held = held_rx.borrow_and_update().clone();
        let owned: Owned = self
            .specs
            .iter()
            .map(|s| AtomicBool::new(held.monitor(&s.id)))
            .collect();
        let (machines, network_incident) = self.restore().await?;
        let origin = Origin {
            instance: self.peers.me().instance.clone(),
            region: self.peers.me().region.clone(),
        };
        let result_region = (origin.region != crate::peers::DEFAULT_REGION)
            .then(|| Arc::<str>::from(origin.region.as_str()));
        let region = origin.region.clone();
        self.health.update(|view| view.region = region);

        let (writer_tx, writer_rx) = mpsc::channel::<WriteBatch>(64);
        let writer = tokio::spawn(writer::run(
            self.store.clone(),
            self.health.clone(),
            writer_rx,
        ));

        let (out_tx, mut out_rx) = mpsc::channel::<Outcome>(1_024);
        let mut tasks = JoinSet::new();
        let schedule = schedule::spawn(
            schedule::Plan {
                specs: self.specs.clone(),
                runner: self.runner.clone(),
                concurrency: self.settings.concurrency,
                start: Instant::now(),
                owned: owned.clone(),
            },
            out_tx,
            shutdown.clone(),
            &mut tasks,
        );
        let providers = self
            .specs
            .iter()
            .map(|s| s.provider.id.as_str())
            .collect::<HashSet<_>>()
            .len();
        let longest = self
            .specs
            .iter()
            .map(|s| s.interval)
            .max()
            .unwrap_or_default();
        let count = self.specs.len();
        let network_key = self.network_key();
        let mut core = Core {
            rows: metric_rows(&self.metrics, &self.specs),
            svc: self,
            machines,
            pending: (0..count).map(|_| None).collect(),
            probe_started: vec![Instant::now(); count],
            pending_count: 0,
            schedule,
            owned,
            shared: held.shared(),
            followed_states: Instant::now(),
            regions: vec![BTreeMap::new(); count],
            regions_read: 0,
            live_regions: BTreeSet::new(),
            decided: vec![None; count],
            hang_watch: vec![false; count],
            network_incident,
            network_key,
            providers,
            origin,
            result_region,
            journal: Journal::new(),
            provisional: HashMap::new(),
            rejudge_when_back: false,
            held_later: None,
            batch: Vec::new(),
            snapshots: Vec::new(),
            writer: writer_tx,
            pending_limit: longest * 2,
        };
        core.publish_all();

        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Pruning is the store's alone (no state of the core): its own task, so a long prune or
        // a database that hangs in one never holds up the loop.
        let pruner = tokio::spawn(prune(
            core.svc.store.clone(),
            core.svc.clock,
            core.svc.retention,
            shutdown.clone(),
        ));
        let mut follow = tokio::time::interval(FOLLOW_EVERY);
        follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // From here on the database may come and go: nothing below ends the loop on a store
        // error. Writes wait (journal, writer) and reads are skipped while it is away.
        loop {
            tokio::select! {
                Some(outcome) = out_rx.recv() => core.on_outcome(outcome).await,
                Some(report) = passive.recv() => core.on_report(report),
                Ok(()) = held_rx.changed() => {
                    let held = held_rx.borrow_and_update().clone();
                    core.hold_or_later(held).await;
                }
                _ = follow.tick(), if core.shared && core.journal.away_since().is_none() => {
                    let followed = tokio::time::timeout(READ_LIMIT, core.follow_others()).await;
                    core.read_failed(followed);
                }
                _ = flush.tick() => {
                    core.svc.health.beat(core.svc.clock.now());
                    if core.land(true).await {
                        core.back().await;
                    }
                    core.resolve_stale().await;
                    core.flush().await;
                }
                _ = shutdown.changed() => break,
            }
        }
        tasks.shutdown().await;
        // One last try for incident writes still waiting (what the database does not take now
        // is reported, not waited for); then every machine's snapshot, with the ids that landed.
        core.journal.retry_now(Instant::now());
        core.land(true).await;
        core.save_all_snapshots();
        core.flush().await;
        if core.journal.waiting() > 0 {
            tracing::error!(
                waiting = core.journal.waiting(),
                "stopping with the database away: incident writes not made"
            );
        }
        drop(core);
        writer.await.expect("the writer task does not panic");
        pruner.await.expect("the pruner does not panic");
        Ok(())
    }
}

/// Deletes what the retention no longer keeps, every [`PRUNE_EVERY`] (first at once), until
/// `shutdown` turns true. A failure is retried at the next round.
async fn prune(
    store: Arc<dyn Store>,
    clock: Clock,
    retention: Retention,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        // A stop does not wait for a prune (each of its transactions is short and a dropped one
        // rolls back), nor for a database that hangs in one.
        tokio::select! {
            pruned = store.prune(clock.now(), &retention) => {
                if let Err(e) = pruned {
                    tracing::warn!(error = %e, "pruning old rows failed; will retry");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

impl MonitorService {
    /// Loads the machines' snapshots and reconciles them with the incidents the store has open,
    /// so a restart neither forgets nor duplicates an incident. A snapshot that cannot be read
    /// back is quarantined — set aside in the store, logged, counted and shown in the health
    /// view — and that monitor alone starts afresh.
    async fn restore(&self) -> Result<(Vec<Machine>, Option<i64>), StoreError> {
        let saved = self.store.load_monitor_states().await?;
        let open = self.store.incidents(&IncidentFilter::all_open()).await?;
        let mut machines = Vec::with_capacity(self.specs.len());
        for spec in self.specs.iter() {
            let restored = match saved.iter().find(|(id, _)| *id == spec.id) {
                None => Ok(Machine::default()),
                Some((_, SavedState::Snapshot(text))) => Machine::restore(text)
                    .map_err(|e| format!("the saved state is not a monitor state ({e})")),
                Some((_, SavedState::Unreadable(why))) => Err(why.clone()),
            };
            let mut machine = match restored {
                Ok(machine) => machine,
                Err(reason) => {
                    self.quarantine(&spec.id, reason).await?;
                    Machine::default()
                }
            };
            let incident = open.iter().find(|i| i.monitor == spec.id);
            machine.reconcile(incident.map(|i| (i.kind, i.id, i.started_at)));
            machines.push(machine);
        }
        let key = self.network_key();
        let network = open
            .iter()
            .find(|i| i.kind == IncidentKind::Network && i.monitor == key)
            .map(|i| i.id);
        Ok((machines, network))
    }

    /// What this instance's `network` incident is filed under: its region's own key when it
    /// names a region, so regions' networks fail apart (`incident::network_key`).
    fn network_key(&self) -> String {
        let region = &self.peers.me().region;
        crate::incident::network_key(
            Some(region.as_str()).filter(|r| *r != crate::peers::DEFAULT_REGION),
        )
    }

    async fn quarantine(&self, monitor: &str, reason: String) -> Result<(), StoreError> {
        let at = self.clock.now();
        tracing::error!(
            monitor,
            reason = %reason,
            "unreadable monitor state quarantined; the monitor starts afresh"
        );
        self.store
            .quarantine_monitor_state(monitor, &reason, at)
            .await?;
        self.metrics.states_quarantined.inc();
        self.health.update(|view| {
            view.quarantined
                .insert(monitor.to_owned(), Quarantine { at, reason });
        });
        Ok(())
    }
}

impl Core {
    async fn on_outcome(&mut self, outcome: Outcome) {
        let at = self.svc.clock.at(outcome.finished);
        let lateness = outcome.started.saturating_duration_since(outcome.scheduled);
        self.svc
            .metrics
            .schedule_lateness
            .observe(lateness.as_secs_f64());
        let index = outcome.monitor;
        self.probe_started[index] = outcome.started;
        let result = outcome.result;
        self.count(index, &result);
        let provider = result.provider.clone();
        let answered = result.diagnosis.status.is_some();

        // isdown's own machine ran out of resources: says nothing about the provider or the
        // network, so it is recorded (blamed on this side) and is nobody's evidence.
        let local = result.diagnosis.cause == Some(Cause::LocalResources);
        // Evidence for other monitors' pending results.
        if !local {
            self.weigh_evidence(&provider, answered, &result, at).await;
        }
        if answered && let Some(id) = self.network_incident.take() {
            let announce = MonitorEvent::IncidentClosed {
                id,
                monitor: self.network_key.clone(),
                kind: IncidentKind::Network,
                at,
            };
            self.journal
                .push(Write::Close { id, ended_at: at }, Some(announce));
            self.publish_network();
            self.land(false).await;
        }
        // A monitor's own newer result settles its older pending one first.
        if self.pending[index].is_some() {
            self.settle(index, None).await;
        }

        let obs = Observation {
            at,
            verdict: result.diagnosis.verdict,
            blame: result.diagnosis.blame,
            sample: (!result.diagnosis.verdict.is_healthy())
                .then(|| crate::secret::scrub(&result.diagnosis.explanation)),
        };
        self.record(index, &result, &obs);
        if local {
            // Blamed on this side already: changes no provider's state and opens nothing.
            self.apply(index, obs).await;
        } else if result.diagnosis.verdict.is_transport_level() {
            if self.network_incident.is_some() {
                let mut obs = obs;
                obs.blame = Some(Blame::Network);
                self.apply(index, obs).await;
            } else if self.providers <= 1 {
                self.apply(index, obs).await;
            } else {
                self.pending[index] = Some(Pending {
                    obs,
                    failing: HashSet::new(),
                    since: Instant::now(),
                });
                self.pending_count += 1;
                self.nudge_witnesses(&provider);
            }
        } else {
            self.apply(index, obs).await;
        }
        self.end_hang_watch_if_passed(index, &result);
        if self.batch.len() >= BATCH_MAX {
            self.flush().await;
        }
    }

    /// Uses a result of `provider` as evidence for the pending results of other providers.
    async fn weigh_evidence(
        &mut self,
        provider: &str,
        answered: bool,
        result: &ProbeResult,
        at: Millis,
    ) {
        if self.pending_count == 0 {
            return;
        }
        let needed = (self.providers - 1).min(2);
        for index in 0..self.pending.len() {
            let Some(pending) = self.pending[index].as_mut() else {
                continue;
            };
            if self.svc.specs[index].provider.id == provider || at < pending.obs.at {
                continue;
            }
            if answered {
                self.settle(index, Some(Blame::Provider)).await;
            } else if result.diagnosis.verdict.is_transport_level() {
                pending.failing.insert(provider.to_owned());
                if pending.failing.len() >= needed {
                    self.settle(index, Some(Blame::Network)).await;
                }
            }
        }
    }

    /// Decides a pending result: with `None`, from the evidence gathered so far.
    async fn settle(&mut self, index: usize, blame: Option<Blame>) {
        let Some(pending) = self.pending[index].take() else {
            return;
        };
        self.pending_count -= 1;
        let blame = blame.unwrap_or(if pending.failing.is_empty() {
            Blame::Provider
        } else {
            Blame::Network
        });
        let mut obs = pending.obs;
        obs.blame = Some(blame);
        if blame == Blame::Network && self.network_incident.is_none() {
            let announce = MonitorEvent::IncidentOpened {
                id: 0,
                monitor: self.network_key.clone(),
                kind: IncidentKind::Network,
                reopened: false,
                at: obs.at,
            };
            let id = self.journal.open(
                NewIncident {
                    monitor: self.network_key.clone(),
                    provider: self.network_key.clone(),
                    kind: IncidentKind::Network,
                    verdict: obs.verdict,
                    started_at: obs.at,
                    failed_probes: u32::try_from(pending.failing.len() + 1).unwrap_or(u32::MAX),
                    first_error: obs.sample.clone(),
                    opened_by: Some(self.origin.clone()),
                },
                Some(announce),
            );
            self.network_incident = Some(id);
            tracing::warn!("isdown's own network looks down: no provider is reachable");
            self.publish_network();
            self.land(false).await;
        }
        self.apply(index, obs).await
    }

    /// Pending results that found no evidence within two intervals are the provider's.
    async fn resolve_stale(&mut self) {
        if self.pending_count == 0 {
            return;
        }
        for index in 0..self.pending.len() {
            let stale = self.pending[index]
                .as_ref()
                .is_some_and(|p| p.since.elapsed() >= self.pending_limit);
            if stale {
                self.settle(index, None).await;
            }
        }
    }

    /// Asks one monitor of each of up to two other providers to probe now.
    fn nudge_witnesses(&self, provider: &str) {
        let mut asked = HashSet::new();
        for (index, spec) in self.svc.specs.iter().enumerate() {
            if spec.provider.id != provider && asked.insert(spec.provider.id.as_str()) {
                self.schedule.nudge(index, Instant::now());
                if asked.len() == 2 {
                    break;
                }
            }
        }
    }

    /// Feeds the machine and carries out its effects.
    async fn apply(&mut self, index: usize, obs: Observation) {
        let thresholds = self.svc.settings.thresholds;
        let mut effects = self.machines[index].observe(&obs, &thresholds);
        if self.svc.peers.several_regions() {
            effects = self.judged_with_regions(index, effects, obs.at).await;
        }
        self.carry_out(index, &effects, obs.sample.as_deref()).await
    }

    /// With several regions, the machine's outage effects give way to what the regions call
    /// for ([`Core::across_regions`]). While the database is away, this instance cannot read
    /// the other regions' views: those effects wait (`regions::deferred`) and every monitor
    /// with an outage in play is judged again once it is back ([`Core::back`]).
    async fn judged_with_regions(
        &mut self,
        index: usize,
        effects: Vec<Effect>,
        at: Millis,
    ) -> Vec<Effect> {
        if self.journal.away_since().is_none() {
            match self.across_regions(index, effects.clone(), at, false).await {
                Ok(kept) => return kept,
                Err(e) => self.journal.mark_away(&e, Instant::now(), at),
            }
            self.publish_store_backlog();
        }
        let noting_outage = matches!(
            self.machines[index].open_incident(),
            Some((IncidentKind::Outage, _))
        );
        let (kept, deferred) = regions::deferred(effects, noting_outage);
        self.rejudge_when_back |= deferred;
        // This region's view as this instance sees it, for its own pages and API meanwhile.
        let own = self.own_view(index);
        self.regions[index].insert(self.origin.region.clone(), own);
        kept
    }

    /// This region's view of a monitor: its machine here.
    fn own_view(&self, index: usize) -> RegionView {
        let machine = &self.machines[index];
        RegionView {
            state: machine.state().as_str().to_owned(),
            verdict: machine.last_verdict().map(|v| v.as_str().to_owned()),
            since: machine.since(),
        }
    }

    /// Carries out a machine's effects (`sample`: the observation's error text, noted on a
    /// reopened incident). The incident writes go through the journal: written at once while
    /// the database answers, queued while it does not; either way the machine goes on.
    async fn carry_out(&mut self, index: usize, effects: &[Effect], sample: Option<&str>) {
        let thresholds = self.svc.settings.thresholds;
        let spec = &self.svc.specs[index];
        for effect in effects {
            match effect {
                Effect::Open {
                    kind,
                    verdict,
                    failed_probes,
                    started_at,
                    first_error,
                    reopen,
                } => {
                    let announce = MonitorEvent::IncidentOpened {
                        id: reopen.unwrap_or_default(),
                        monitor: spec.id.clone(),
                        kind: *kind,
                        reopened: reopen.is_some(),
                        at: *started_at,
                    };
                    let id = match reopen {
                        Some(id) => {
                            self.journal.push(Write::Reopen { id: *id }, Some(announce));
                            self.journal.push(
                                Write::Note {
                                    id: *id,
                                    verdict: *verdict,
                                    sample: sample.map(str::to_owned),
                                },
                                None,
                            );
                            *id
                        }
                        None => self.journal.open(
                            NewIncident {
                                monitor: spec.id.clone(),
                                provider: spec.provider.id.clone(),
                                kind: *kind,
                                verdict: *verdict,
                                started_at: *started_at,
                                failed_probes: *failed_probes,
                                first_error: first_error.clone(),
                                opened_by: Some(self.origin.clone()),
                            },
                            Some(announce),
                        ),
                    };
                    self.machines[index].set_incident_id(id);
                    if Journal::is_provisional(id) {
                        self.provisional.insert(id, index);
                    }
                    if regions::DECIDED.contains(kind) {
                        self.decided[index] = Some((*kind, id));
                    }
                    tracing::warn!(monitor = %spec.id, kind = kind.as_str(), verdict = %verdict, "incident opened");
                }
                Effect::Note {
                    incident,
                    verdict,
                    sample,
                } => {
                    if let Some(id) = incident {
                        self.journal.push(
                            Write::Note {
                                id: *id,
                                verdict: *verdict,
                                sample: sample.clone(),
                            },
                            None,
                        );
                    }
                }
                Effect::Close {
                    incident,
                    ended_at,
                    kind,
                } => {
                    if let Some(id) = incident {
                        let announce = MonitorEvent::IncidentClosed {
                            id: *id,
                            monitor: spec.id.clone(),
                            kind: *kind,
                            at: *ended_at,
                        };
                        self.journal.push(
                            Write::Close {
                                id: *id,
                                ended_at: *ended_at,
                            },
                            Some(announce),
                        );
                        if self.decided[index].is_some_and(|(_, known)| known == *id) {
                            self.decided[index] = None;
                        }
                    }
                    tracing::warn!(monitor = %spec.id, "incident closed");
                }
                Effect::Confirm => {
                    // The wait counts from when the failing probe started: a probe that failed
                    // slowly (a timeout) already spanned it, so its confirmation runs at once.
                    let at =
                        (self.probe_started[index] + thresholds.confirm_after).max(Instant::now());
                    self.schedule.nudge(index, at);
                }
            }
        }
        let changed_incident = effects.iter().any(|e| !matches!(e, Effect::Confirm));
        // The health view first, so a subscriber of the announcements sees a consistent view.
        self.publish(index);
        if changed_incident {
            self.publish_incident_counts();
            self.land(false).await;
        }
        self.keep_snapshot(index);
        if changed_incident {
            // Incident changes are saved with their machine now, not with the next batch.
            self.flush().await;
        }
    }

    /// Queues the machine's snapshot for the next batch, unless it names an incident whose
    /// opening has not landed: the store must never hold a provisional id (it is queued
    /// again when the opening lands, see [`Core::landed`]).
    fn keep_snapshot(&mut self, index: usize) {
        let machine = &self.machines[index];
        if let Some((_, Some(id))) = machine.open_incident()
            && Journal::is_provisional(id)
        {
            return;
        }
        let id = &self.svc.specs[index].id;
        self.snapshots.retain(|(kept, _)| kept != id);
        self.snapshots.push((id.clone(), machine.snapshot()));
    }

    /// Lands the waiting incident writes (`retry`: also while the database is away, when its
    /// retry is due) and carries out what landing them means. Answers whether the database
    /// is back after being away (only ever with `retry`): the caller then runs [`Core::back`].
    async fn land(&mut self, retry: bool) -> bool {
        let now = Instant::now();
        let at = self.svc.clock.now();
        let landing = self
            .journal
            .land(self.svc.store.as_ref(), now, at, retry)
            .await;
        // The incident counts need no update: they count open incidents by the machines, which
        // already had theirs before it landed.
        for landed in landing.landed {
            self.landed(landed);
        }
        self.publish_store_backlog();
        landing.back
    }

    /// One write reached the store: provisional ids give way to the store's, and its event is
    /// announced.
    fn landed(&mut self, landed: Landed) {
        if let Some((provisional, id)) = landed.opened {
            if self.network_incident == Some(provisional) {
                self.network_incident = Some(id);
                self.publish_network();
            }
            if let Some(index) = self.provisional.remove(&provisional) {
                if let Some((_, Some(held))) = self.machines[index].open_incident()
                    && held == provisional
                {
                    self.machines[index].set_incident_id(id);
                    self.keep_snapshot(index);
                    self.publish(index);
                }
                if let Some((kind, held)) = self.decided[index]
                    && held == provisional
                {
                    self.decided[index] = Some((kind, id));
                }
            }
        }
        if let Some(event) = landed.event {
            let _ = self.svc.events.send(event);
        }
    }

    /// The database answers again: what waited for it is done now — lease changes it could not
    /// read, the regions' judgement of outages this instance could not share, and every
    /// machine's snapshot (the store's are from before it went away).
    async fn back(&mut self) {
        if let Some(held) = self.held_later.take() {
            self.hold_or_later(held).await;
        }
        if std::mem::take(&mut self.rejudge_when_back) {
            let now = self.svc.clock.now();
            for index in 0..self.machines.len() {
                let failing =
                    self.machines[index].open_incident().is_some() || self.decided[index].is_some();
                if !self.owned[index].load(Ordering::Relaxed) || !failing {
                    continue;
                }
                match self.across_regions(index, Vec::new(), now, true).await {
                    Ok(effects) => self.carry_out(index, &effects, None).await,
                    Err(e) => {
                        self.journal.mark_away(&e, Instant::now(), now);
                        self.rejudge_when_back = true;
                        return;
                    }
                }
            }
        }
        self.save_all_snapshots();
    }

    /// Publishes how much waits for the database (health view and metrics).
    fn publish_store_backlog(&self) {
        let now = (
            self.journal.away_since(),
            self.journal.waiting(),
            self.journal.dropped_notes(),
        );
        // Only a change moves the health view's version (and wakes the status page's renderer).
        let shown = self.svc.health.read(|view| {
            let s = &view.store;
            (s.away_since, s.waiting_incident_writes, s.dropped_notes)
        });
        if shown != now {
            self.svc.health.update(|view| {
                (
                    view.store.away_since,
                    view.store.waiting_incident_writes,
                    view.store.dropped_notes,
                ) = now;
            });
        }
    }

    fn on_report(&mut self, report: PassiveReport) {
        match report {
            PassiveReport::Attempt(live) => self.on_live(live),
            PassiveReport::Skipped { provider, target } => {
                self.svc.health.record_skipped(&provider, &target);
            }
            PassiveReport::RecoveryTest(test) => {
                let at = self.svc.clock.now();
                self.svc.health.record_test(&test, at);
            }
        }
    }

    fn on_live(&mut self, live: LiveVerdict) {
        let at = self.svc.clock.now();
        self.svc.health.record_live(&live, at);
        self.svc
            .metrics
            .live_requests
            .get_or_create(&ProbeLabels {
                provider: Arc::from(live.provider.as_str()),
                model: Arc::from(""),
                probe: "live",
                verdict: live.verdict.as_str(),
            })
            .inc();
        match passive::reaction(&live) {
            Reaction::Nothing => {}
            Reaction::ProbeNow => self.probe_provider_now(&live.provider),
            Reaction::WatchForHang => self.watch_for_hang(&live.provider),
        }
    }

    /// Every monitor of `provider` probes now (its configured probe).
    fn probe_provider_now(&self, provider: &str) {
        for (index, spec) in self.svc.specs.iter().enumerate() {
            if spec.provider.id == provider {
                self.schedule.nudge(index, Instant::now());
            }
        }
    }

    /// Live traffic to `provider` timed out: one of its monitors probes it with the hang probe
    /// now, and keeps doing so until one passes (see `passive`).
    fn watch_for_hang(&mut self, provider: &str) {
        let Some((index, already)) = passive::hang_watcher(&self.svc.specs, provider) else {
            // No monitor can run a chat probe: the configured ones still look.
            self.probe_provider_now(provider);
            return;
        };
        if already {
            self.schedule.nudge(index, Instant::now());
        } else if !self.hang_watch[index] {
            self.hang_watch[index] = true;
            tracing::info!(
                monitor = %self.svc.specs[index].id,
                "live traffic timed out: probing with a streaming chat probe until one passes"
            );
            // The switch itself starts a probe at once.
            self.schedule.probe_as(index, Some(passive::HANG_PROBE));
        }
    }

    /// A watched monitor goes back to its configured probe once a hang probe passed and no
    /// incident is open.
    fn end_hang_watch_if_passed(&mut self, index: usize, result: &ProbeResult) {
        if self.hang_watch[index]
            && result.kind == passive::HANG_PROBE
            && result.diagnosis.verdict.is_healthy()
            && self.machines[index].open_incident().is_none()
        {
            self.hang_watch[index] = false;
            self.schedule.probe_as(index, None);
        }
    }

    fn record(&mut self, index: usize, result: &ProbeResult, obs: &Observation) {
        let d = &result.diagnosis;
        self.batch.push(ResultRecord {
            monitor_id: self.svc.specs[index].id.clone(),
            at: obs.at,
            verdict: d.verdict,
            blame: d.blame,
            status: d.status,
            latency_ms: result.latency.map(|l| l.as_secs_f64() * 1000.0),
            ttft_ms: result.ttft.map(|l| l.as_secs_f64() * 1000.0),
            explanation: obs.sample.clone(),
            region: self.result_region.clone(),
        });
        self.svc.health.update(|view| {
            let row = &mut view.monitors[index];
            row.verdict = Some(d.verdict);
            row.last_at = Some(obs.at);
            row.last_latency_ms = result.latency.map(|l| l.as_secs_f64() * 1000.0);
            row.explanation = Some(crate::secret::scrub(&d.explanation));
            row.advice = (!d.verdict.is_healthy()).then(|| d.advice.clone());
        });
    }

    fn count(&self, index: usize, result: &ProbeResult) {
        let own = self.rows[index].target();
        let other;
        let target = if own.probe == result.kind.as_str() {
            own
        } else {
            other = self.svc.metrics.monitors.target(
                own.provider.clone(),
                own.model.clone(),
                result.kind.as_str(),
            );
            &other
        };
        target.count(result.diagnosis.verdict);
        if let (true, Some(latency)) = (result.diagnosis.verdict.is_healthy(), result.latency) {
            target.observe(latency.as_secs_f64());
        }
    }

    /// Copies a machine's state into the health view and its metric row.
    fn publish(&self, index: usize) {
        let machine = &self.machines[index];
        let regions = &self.regions[index];
        let state = self.effective_state(index);
        self.svc.health.update(|view| {
            let row = &mut view.monitors[index];
            row.state = state;
            row.since = machine.since();
            row.open_incident = machine.open_incident();
            if row.regions != *regions {
                row.regions = regions.clone();
            }
        });
        let at = super::machine::MonitorState::ALL
            .iter()
            .position(|s| *s == state)
            .unwrap_or(usize::MAX);
        self.rows[index].set_state(at);
    }

    /// The machine's state, except that a monitor down from some live regions without an
    /// outage incident is [`MonitorState::Regional`](super::machine::MonitorState::Regional).
    fn effective_state(&self, index: usize) -> super::machine::MonitorState {
        use super::machine::MonitorState;
        let machine = &self.machines[index];
        let state = machine.state();
        if self.regions[index].is_empty()
            || matches!(
                machine.open_incident(),
                Some((IncidentKind::Outage, Some(_)))
            )
        {
            return state;
        }
        let live = self.svc.peers.live_regions();
        let down = self.regions[index].iter().any(|(region, view)| {
            live.contains(region) && view.state == MonitorState::Down.as_str()
        });
        match (down, state) {
            (
                true,
                MonitorState::Down
                | MonitorState::Up
                | MonitorState::Degraded
                | MonitorState::Unknown,
            ) => MonitorState::Regional,
            _ => state,
        }
    }

    fn publish_all(&self) {
        for index in 0..self.machines.len() {
            self.publish(index);
        }
        self.publish_network();
        self.publish_incident_counts();
    }

    fn publish_network(&self) {
        let id = self.network_incident;
        self.svc.health.update(|view| view.network_incident = id);
        self.publish_incident_counts();
    }

    fn publish_incident_counts(&self) {
        let mut outage = 0;
        let mut setup = 0;
        for m in &self.machines {
            match m.open_incident() {
                Some((IncidentKind::Outage, _)) => outage += 1,
                Some((IncidentKind::SetupProblem, _)) => setup += 1,
                _ => {}
            }
        }
        let network = i64::from(self.network_incident.is_some());
        for (kind, n) in [
            ("outage", outage),
            ("setup_problem", setup),
            ("network", network),
        ] {
            self.svc
                .metrics
                .open_incidents
                .get_or_create(&KindLabels { kind: kind.into() })
                .set(n);
        }
    }

    /// The machines this instance drives (the others' are their holders' to save).
    fn save_all_snapshots(&mut self) {
        self.snapshots = self
            .svc
            .specs
            .iter()
            .zip(&self.machines)
            .enumerate()
            .filter(|(index, _)| self.owned[*index].load(Ordering::Relaxed))
            // The store never holds a provisional id: those are saved when they land.
            .filter(|(_, (_, m))| {
                !matches!(m.open_incident(), Some((_, Some(id))) if Journal::is_provisional(id))
            })
            .map(|(_, (s, m))| (s.id.clone(), m.snapshot()))
            .collect();
    }

    /// With instances in several regions, this region's machine speaks for this region only:
    /// its state goes to the store as this region's view, and its outage effects become what
    /// the regions say together (`regions::judge`): the outage incident opens when the quorum
    /// sees it (once, whoever gets there first: the store keeps one open incident per monitor)
    /// and closes when no region sees it down (`regions::incident_for`); a failure that stays
    /// below the quorum opens a *regional* incident instead, so alerts can route it
    /// (`on = ["regional"]`). A regional incident that reaches the quorum closes and the
    /// outage opens.
    /// Setup problems are this instance's own (its key) and pass through.
    ///
    /// `rejudge`: judge even without an outage effect of this machine (the live regions
    /// changed, so an open incident may no longer be what they say).
    async fn across_regions(
        &mut self,
        index: usize,
        effects: Vec<Effect>,
        at: Millis,
        rejudge: bool,
    ) -> Result<Vec<Effect>, StoreError> {
        let Some(cluster) = self.svc.store.cluster() else {
            return Ok(effects);
        };
        let spec = &self.svc.specs[index];
        let region = self.svc.peers.me().region.clone();
        let own = self.own_view(index);
        // Judging again reports too: the view kept in memory while the database was away
        // (`judged_with_regions`) never reached it.
        if rejudge || self.regions[index].get(&region).map(|v| &v.state) != Some(&own.state) {
            cluster
                .report_region(&RegionReport {
                    monitor: spec.id.clone(),
                    region: region.clone(),
                    state: own.state.clone(),
                    verdict: own.verdict.clone(),
                    since: own.since,
                    changed_at: at,
                })
                .await?;
            self.regions[index].insert(region, own);
        }
        // A note belongs to the machine's open incident, whose kind the note does not repeat.
        let noting_outage = matches!(
            self.machines[index].open_incident(),
            Some((IncidentKind::Outage, _))
        );
        let outage_effect = |e: &Effect| match e {
            Effect::Open { kind, .. } | Effect::Close { kind, .. } => *kind == IncidentKind::Outage,
            Effect::Note { incident, .. } => noting_outage && incident.is_some(),
            Effect::Confirm => false,
        };
        if !rejudge && !effects.iter().any(outage_effect) {
            return Ok(effects);
        }
        for report in cluster.regions_of(&spec.id).await? {
            self.regions[index].insert(report.region.clone(), RegionView::of(&report));
        }
        let judgement = regions::judge(
            &self.regions[index],
            &self.svc.peers.live_regions(),
            self.svc.peers.quorum(),
        );
        // The one incident the store has open for the monitor, when it is one the regions
        // decide about (a setup problem is this instance's own).
        let current = self
            .svc
            .store
            .incidents(&IncidentFilter {
                monitor: Some(spec.id.clone()),
                limit: 1,
                ..IncidentFilter::all_open()
            })
            .await?
            .into_iter()
            .find(|i| regions::DECIDED.contains(&i.kind))
            .map(|i| (i.kind, i.id));
        if let Judgement::Regional(failing) = &judgement {
            tracing::debug!(monitor = %spec.id, regions = ?failing, "failing from some regions only");
        }
        let wanted = regions::incident_for(&judgement, current.map(|(kind, _)| kind));
        // The machine's own outage effects give way to what the regions call for; an opening
        // lends its details (verdict, first error) to whichever incident opens.
        let mut opening = None;
        let mut closing_at = at;
        let mut kept = Vec::with_capacity(effects.len() + 2);
        for effect in effects {
            match effect {
                Effect::Open {
                    kind: IncidentKind::Outage,
                    verdict,
                    failed_probes,
                    started_at,
                    first_error,
                    ..
                } => opening = Some((verdict, failed_probes, started_at, first_error)),
                Effect::Close {
                    kind: IncidentKind::Outage,
                    ended_at,
                    ..
                } => closing_at = ended_at,
                // A failure is noted on the open incident only.
                Effect::Note { incident, .. }
                    if noting_outage
                        && incident.is_some()
                        && incident != current.map(|(_, id)| id) => {}
                other => kept.push(other),
            }
        }
        match current {
            // Already what the regions say: a machine that just failed joins it.
            Some((kind, id)) if Some(kind) == wanted => {
                if opening.is_some() {
                    self.machines[index].set_incident_id(id);
                }
            }
            _ => {
                if let Some((kind, id)) = current {
                    kept.push(Effect::Close {
                        incident: Some(id),
                        kind,
                        ended_at: closing_at,
                    });
                }
                if let Some(kind) = wanted {
                    // From this machine's failure, or else from the failing regions' views
                    // (this region recovered while others still fail).
                    let (verdict, failed_probes, started_at, first_error) = match opening {
                        Some(details) => details,
                        None => {
                            let (verdict, since) = regions::failing_since(&self.regions[index]);
                            let verdict = verdict
                                .or_else(|| self.machines[index].last_verdict())
                                .unwrap_or(Verdict::Unavailable);
                            (verdict, 0, since.unwrap_or(at), None)
                        }
                    };
                    kept.push(Effect::Open {
                        kind,
                        verdict,
                        failed_probes,
                        started_at,
                        first_error,
                        reopen: None,
                    });
                }
            }
        }
        Ok(kept)
    }

    /// The leases changed: monitors taken over continue from the machine their previous holder
    /// saved; monitors given up forget what this instance was waiting to decide about them.
    /// Follows a lease change now, or once the database is back when it cannot be read.
    async fn hold_or_later(&mut self, held: Held) {
        if self.journal.away_since().is_none() {
            let followed = tokio::time::timeout(READ_LIMIT, self.hold(&held)).await;
            if self.read_failed(followed) {
                self.held_later = Some(held);
            }
        } else {
            self.held_later = Some(held);
        }
    }

    /// Takes the outcome of a read of the others' decisions: a failure (or no answer within
    /// [`READ_LIMIT`]) means the database is away. Answers whether it failed.
    fn read_failed(
        &mut self,
        read: Result<Result<(), StoreError>, tokio::time::error::Elapsed>,
    ) -> bool {
        let error = match read {
            Ok(Ok(())) => return false,
            Ok(Err(e)) => e,
            Err(_) => StoreError::NoAnswer(READ_LIMIT),
        };
        self.journal
            .mark_away(&error, Instant::now(), self.svc.clock.now());
        self.publish_store_backlog();
        true
    }

    async fn hold(&mut self, held: &Held) -> Result<(), StoreError> {
        self.shared = held.shared();
        let mut gained = Vec::new();
        for (index, spec) in self.svc.specs.iter().enumerate() {
            let now = held.monitor(&spec.id);
            let was = self.owned[index].load(Ordering::Relaxed);
            if now && !was {
                gained.push(index);
            } else if was && !now {
                self.owned[index].store(false, Ordering::Relaxed);
                self.hang_watch[index] = false;
                if self.pending[index].take().is_some() {
                    self.pending_count -= 1;
                }
            }
        }
        if !gained.is_empty() {
            tracing::info!(monitors = gained.len(), "took over monitors");
            let open = self
                .svc
                .store
                .incidents(&IncidentFilter::all_open())
                .await?;
            self.reload(&gained, false, &open).await?;
            // Probing starts after the machine is the stored one: its first result lands on it.
            for index in gained {
                self.owned[index].store(true, Ordering::Relaxed);
                self.schedule.nudge(index, Instant::now());
            }
        }
        Ok(())
    }

    /// Reads what the holders of the other monitors decided: their open incidents every call,
    /// their whole states every [`FOLLOW_STATES_EVERY`]; announces the incidents they opened or
    /// closed since the last call. The open incidents are read once per call, after this
    /// instance's own re-judging, for both the monitors it follows and those it drives.
    async fn follow_others(&mut self) -> Result<(), StoreError> {
        self.follow_regions().await?;
        self.rejudge_on_new_regions().await?;
        let several_regions = self.svc.peers.several_regions();
        let others: Vec<usize> = (0..self.machines.len())
            .filter(|index| !self.owned[*index].load(Ordering::Relaxed))
            .collect();
        if others.is_empty() && !several_regions {
            return Ok(());
        }
        let open = self
            .svc
            .store
            .incidents(&IncidentFilter::all_open())
            .await?;
        if several_regions {
            self.follow_decided(&open);
        }
        if others.is_empty() {
            return Ok(());
        }
        let whole = self.followed_states.elapsed() >= FOLLOW_STATES_EVERY;
        if whole {
            self.followed_states = Instant::now();
        }
        self.reload(&others, !whole, &open).await
    }

    /// Announces the incidents the regions decide together that another region's instance
    /// opened or closed on a monitor this instance drives too: that instance announced them
    /// only to itself, and this one may be the one sending alerts or the one a client's
    /// gateway asks. Its own openings and closings were announced when it made them.
    /// With one region, a monitor has one holder, which announced its incidents itself.
    fn follow_decided(&mut self, open: &[Incident]) {
        let open: HashMap<&str, (IncidentKind, i64, Millis)> = open
            .iter()
            .filter(|i| regions::DECIDED.contains(&i.kind))
            .map(|i| (i.monitor.as_str(), (i.kind, i.id, i.started_at)))
            .collect();
        let now = self.svc.clock.now();
        let mut announce = Vec::new();
        for index in 0..self.machines.len() {
            if !self.owned[index].load(Ordering::Relaxed) {
                continue;
            }
            let monitor = &self.svc.specs[index].id;
            let stored = open.get(monitor.as_str()).copied();
            let known = self.decided[index];
            if known.map(|(_, id)| id) == stored.map(|(_, id, _)| id) {
                continue;
            }
            if let Some((kind, id)) = known {
                announce.push(MonitorEvent::IncidentClosed {
                    id,
                    monitor: monitor.clone(),
                    kind,
                    at: now,
                });
            }
            if let Some((kind, id, at)) = stored {
                announce.push(MonitorEvent::IncidentOpened {
                    id,
                    monitor: monitor.clone(),
                    kind,
                    reopened: false,
                    at,
                });
            }
            self.decided[index] = stored.map(|(kind, id, _)| (kind, id));
        }
        for event in announce {
            let _ = self.svc.events.send(event);
        }
    }

    /// When a region gains its first live instance or loses its last, the incidents the regions
    /// decide may no longer be what they say (a regional incident of a region that is gone
    /// would stay open with nobody left to close it): each monitor this instance drives that
    /// has one open is judged again.
    async fn rejudge_on_new_regions(&mut self) -> Result<(), StoreError> {
        let live = self.svc.peers.live_regions();
        if live == self.live_regions {
            return Ok(());
        }
        self.live_regions = live;
        let open: HashSet<String> = self
            .svc
            .store
            .incidents(&IncidentFilter::all_open())
            .await?
            .into_iter()
            .filter(|i| regions::DECIDED.contains(&i.kind))
            .map(|i| i.monitor)
            .collect();
        let now = self.svc.clock.now();
        for index in 0..self.machines.len() {
            if self.owned[index].load(Ordering::Relaxed) && open.contains(&self.svc.specs[index].id)
            {
                let effects = self.across_regions(index, Vec::new(), now, true).await?;
                self.carry_out(index, &effects, None).await;
            }
        }
        Ok(())
    }

    /// Reads the region views that changed since the last call, and keeps the machines this
    /// instance drives in step with the outage the regions share: a machine down here joins
    /// the outage incident another region opened, and forgets one another region closed (its
    /// own region may still see it down: then it is regional).
    async fn follow_regions(&mut self) -> Result<(), StoreError> {
        let Some(cluster) = self.svc.store.cluster() else {
            return Ok(());
        };
        let changed = cluster.regions_changed(self.regions_read).await?;
        if changed.is_empty() {
            return Ok(());
        }
        // Built per call with changes (rare), so a mass outage's thousands of reports cost one
        // pass over the monitors, not one each.
        let index_of: HashMap<&str, usize> = self
            .svc
            .specs
            .iter()
            .enumerate()
            .map(|(index, spec)| (spec.id.as_str(), index))
            .collect();
        let mut touched = BTreeSet::new();
        for report in &changed {
            self.regions_read = self.regions_read.max(report.changed_at);
            if let Some(&index) = index_of.get(report.monitor.as_str()) {
                self.regions[index].insert(report.region.clone(), RegionView::of(report));
                touched.insert(index);
            }
        }
        let down_here: Vec<usize> = touched
            .iter()
            .copied()
            .filter(|i| self.owned[*i].load(Ordering::Relaxed))
            .filter(|i| {
                matches!(
                    self.machines[*i].open_incident(),
                    Some((IncidentKind::Outage, _))
                )
            })
            .collect();
        if !down_here.is_empty() {
            let open: HashMap<String, i64> = self
                .svc
                .store
                .incidents(&IncidentFilter::all_open())
                .await?
                .into_iter()
                .filter(|i| i.kind == IncidentKind::Outage)
                .map(|i| (i.monitor, i.id))
                .collect();
            for index in down_here {
                let shared = open.get(&self.svc.specs[index].id).copied();
                match (self.machines[index].open_incident(), shared) {
                    (Some((_, None)), Some(id)) => self.machines[index].set_incident_id(id),
                    (Some((_, Some(mine))), shared) if shared != Some(mine) => {
                        self.machines[index].forget_incident_id();
                        if let Some(id) = shared {
                            self.machines[index].set_incident_id(id);
                        }
                    }
                    _ => {}
                }
            }
        }
        for index in touched {
            self.publish(index);
        }
        Ok(())
    }

    /// Sets the machines of `indices` to what the store holds: the saved state (unless
    /// `incidents_only`) reconciled with the monitor's open incident. Announces incidents that
    /// appeared or ended, as the monitor that holds them did. `open`: every incident open now.
    async fn reload(
        &mut self,
        indices: &[usize],
        incidents_only: bool,
        open: &[Incident],
    ) -> Result<(), StoreError> {
        let open: HashMap<&str, (IncidentKind, i64, Millis)> = open
            .iter()
            .map(|i| (i.monitor.as_str(), (i.kind, i.id, i.started_at)))
            .collect();
        let saved: HashMap<String, SavedState> = match incidents_only {
            true => HashMap::new(),
            false => self
                .svc
                .store
                .load_monitor_states()
                .await?
                .into_iter()
                .collect(),
        };
        let now = self.svc.clock.now();
        let mut announce = Vec::new();
        for &index in indices {
            let spec = &self.svc.specs[index];
            let before = self.machines[index].open_incident();
            let stored = open.get(spec.id.as_str()).copied();
            let before_id = before.and_then(|(_, id)| id);
            if incidents_only && before_id == stored.map(|(_, id, _)| id) {
                continue;
            }
            let mut machine = match saved.get(&spec.id) {
                Some(SavedState::Snapshot(text)) => Machine::restore(text).unwrap_or_default(),
                _ if incidents_only => self.machines[index].clone(),
                _ => Machine::default(),
            };
            machine.reconcile(stored);
            if let Some((kind, Some(id))) = before
                && stored.map(|(_, open, _)| open) != Some(id)
            {
                announce.push(MonitorEvent::IncidentClosed {
                    id,
                    monitor: spec.id.clone(),
                    kind,
                    at: now,
                });
            }
            if let Some((kind, id, at)) = stored
                && before_id != Some(id)
            {
                announce.push(MonitorEvent::IncidentOpened {
                    id,
                    monitor: spec.id.clone(),
                    kind,
                    reopened: false,
                    at,
                });
            }
            self.machines[index] = machine;
            self.publish(index);
        }
        if !announce.is_empty() {
            self.publish_incident_counts();
        }
        for event in announce {
            let _ = self.svc.events.send(event);
        }
        Ok(())
    }

    async fn flush(&mut self) {
        if self.batch.is_empty() && self.snapshots.is_empty() {
            return;
        }
        let batch = WriteBatch {
            results: std::mem::take(&mut self.batch),
            snapshots: std::mem::take(&mut self.snapshots),
            through: self.svc.clock.now(),
        };
        if self.writer.send(batch).await.is_err() {
            tracing::error!("the result writer stopped; results are being lost");
        }
    }
}

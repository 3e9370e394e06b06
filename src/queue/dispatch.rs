//! The dispatcher: the one task that moves batches and their lines along.
//!
//! It wakes when a line is answered, when an endpoint created or cancelled a batch, when the
//! monitor closes an incident, when a wait that pacing named ends, and once a second. Each time
//! it may:
//! - **review** the open batches (each tick, and when woken by an endpoint): validate new ones
//!   (on their own tasks), close the pending lines of cancelled and expired ones, and end every
//!   batch whose lines have all ended — completed, cancelled or expired, with its result files;
//! - **dispatch**: for each route with pending lines, ask the gateway how its targets stand
//!   (`Gateway::readiness`) and pacing how many may start, claim that many from the store (they
//!   are in flight from then on) and send each through the gateway in process (`line`);
//! - **land** answered lines: an answer or the request's own fault ends the line (its result is
//!   buffered and written in groups, at most [`FLUSH_EVERY`] later); a rate limit or no answer
//!   sends it back to pending, to wait.
//!
//! A result written is final (the store writes it only over a line in flight); a result not yet
//! written when the process dies is lost with the line's flight, and the line is sent again at
//! the next start. At shutdown, lines still in flight after [`DRAIN`] go back to pending. Once an
//! hour, ended batches and unread uploads older than the retention (30 days) are removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::{broadcast, watch};
use tokio::task::{AbortHandle, Id, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use super::Shared;
use super::line;
use super::object::{self, FILE_PREFIX};
use super::pacing::{Answer, Pacing, Plan};
use super::results;
use super::telemetry::Telemetry;
use super::validate::Validator;
use crate::metrics::Metrics;
use crate::monitor::health::Health;
use crate::monitor::service::MonitorEvent;
use crate::peers::{self, Duty, Held};
use crate::store::StoreError;
use crate::store::queue::{
    BatchEnd, BatchRecord, BatchStatus, ClaimedLine, LineError, LineOutcome, LineResponse,
    LineResult, ResultFile, ResultKind,
};
use crate::time::Millis;

/// The dispatcher looks at everything at least this often.
const TICK: Duration = Duration::from_secs(1);
/// Results are written at most this long after they arrive (or sooner, [`FLUSH_AT`] at once).
pub const FLUSH_EVERY: Duration = Duration::from_millis(25);
/// Results written per transaction when they arrive fast.
const FLUSH_AT: usize = 256;
/// At shutdown, lines in flight get this long to be answered before they go back to pending.
const DRAIN: Duration = Duration::from_secs(5);
/// Ended batches and old uploads are pruned this often (their retention is counted in days).
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// Input lines read per store query while validating.
const VALIDATE_PAGE: u32 = 1_000;
/// The provider lines are counted against when their model has no route any more (the gateway
/// answers them 404, which ends them).
const NO_ROUTE: &str = "none";

/// What the dispatcher needs besides the queue.
pub struct RunDeps {
    pub metrics: Metrics,
    pub health: Health,
    /// The monitor's incidents: a closed one may make lines ready.
    pub events: broadcast::Receiver<MonitorEvent>,
    /// Lines are claimed only while this instance holds the queue's lease (always, alone on
    /// its store).
    pub held: watch::Receiver<Held>,
}

/// A line on its way through the gateway.
struct Flying {
    batch_key: i64,
    line: u32,
    route: String,
    provider: Arc<str>,
    abort: AbortHandle,
}

/// A line's answer, back from its task.
struct Landed {
    batch_key: i64,
    line: u32,
    response: LineResponse,
    sent_at: Millis,
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    router: Router,
    pacing: Pacing,
    telemetry: Telemetry,
    events: broadcast::Receiver<MonitorEvent>,
    held: watch::Receiver<Held>,
    /// Pending lines per route model: counted in the store each review, kept in step with
    /// claims and releases in between.
    pending: BTreeMap<String, u64>,
    flights: JoinSet<Landed>,
    flying: HashMap<Id, Flying>,
    validations: JoinSet<(i64, Result<(), StoreError>)>,
    validating: HashSet<i64>,
    /// When each open batch started (for the wait-time metric).
    started: HashMap<i64, Millis>,
    results: Vec<(LineResult, Option<String>)>,
    releases: Vec<(i64, u32)>,
    flush_due: Option<Instant>,
    /// The earliest end of a wait pacing named.
    next_look: Option<Instant>,
    /// A store call failed: logged once until one succeeds.
    failing: bool,
    /// When ended batches were last pruned.
    pruned_at: Option<Instant>,
}

impl Dispatcher {
    pub(super) fn new(shared: Arc<Shared>, deps: RunDeps) -> Dispatcher {
        Dispatcher {
            router: shared.gateway.router(),
            pacing: Pacing::new(shared.settings.clone()),
            telemetry: Telemetry::register(&deps.metrics, deps.health),
            events: deps.events,
            held: deps.held,
            shared,
            pending: BTreeMap::new(),
            flights: JoinSet::new(),
            flying: HashMap::new(),
            validations: JoinSet::new(),
            validating: HashSet::new(),
            started: HashMap::new(),
            results: Vec::new(),
            releases: Vec::new(),
            flush_due: None,
            next_look: None,
            failing: false,
            pruned_at: None,
        }
    }

    /// Runs until `shutdown` resolves.
    ///
    /// It dispatches only while this instance holds the queue's lease. On taking it, every line
    /// left in flight (by this process before a restart, or by the instance that held the lease
    /// and died) goes back to pending and is sent again; on losing it (the database was
    /// unreachable past the lease time and another instance took over), it lands what is in
    /// flight, writes what it has, and waits to hold it again.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = peers::until_doing(&mut self.held, Duty::Queue) => {}
                _ = &mut shutdown => return,
            }
            match self.shared.store.queue().queue_recover_lines().await {
                Ok(0) => {}
                Ok(lines) => tracing::info!(
                    lines,
                    "queue: lines that were in flight when their sender stopped will be sent again"
                ),
                Err(e) => {
                    // Not taken on yet: the lines stay in flight until a recovery succeeds.
                    self.store_failed("taking the queue on", &e);
                    tokio::select! {
                        _ = tokio::time::sleep(TICK) => continue,
                        _ = &mut shutdown => return,
                    }
                }
            }
            let stopped = self.dispatch_while_held(&mut shutdown).await;
            self.drain().await;
            if stopped {
                return;
            }
            tracing::warn!("queue: another instance runs the queue now; this one stops sending");
            self.pending.clear();
            self.started.clear();
        }
    }

    /// The dispatch loop; true when `shutdown` resolved, false when the lease was lost.
    async fn dispatch_while_held(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let look = self.next_look;
            let flush = self.flush_due;
            let mut review = false;
            tokio::select! {
                _ = &mut *shutdown => return true,
                Ok(()) = self.held.changed() => {
                    if !self.held.borrow_and_update().does(Duty::Queue) {
                        return false;
                    }
                }
                Some(landed) = self.flights.join_next_with_id(), if !self.flights.is_empty() => {
                    match landed {
                        Ok((id, landed)) => self.land(id, landed),
                        Err(e) => {
                            self.flying.remove(&e.id());
                        }
                    }
                }
                Some(done) = self.validations.join_next(), if !self.validations.is_empty() => {
                    if let Ok((key, outcome)) = done {
                        self.validating.remove(&key);
                        if let Err(e) = outcome {
                            self.store_failed("validating a batch", &e);
                        }
                    }
                    review = true;
                }
                _ = self.shared.wake.notified() => review = true,
                event = self.events.recv() => match event {
                    // Lines waiting for it start now, not at the gateway's next read of the
                    // incidents: within one probe interval of the close, as promised.
                    Ok(MonitorEvent::IncidentClosed { .. })
                    | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.shared.gateway.sync_incidents_now();
                    }
                    Ok(MonitorEvent::IncidentOpened { .. }) => {}
                    // The monitor is gone (shutting down): its events no longer matter.
                    Err(broadcast::error::RecvError::Closed) => {
                        self.events = broadcast::channel(1).1;
                    }
                },
                _ = tick.tick() => review = true,
                _ = sleep_until(look), if look.is_some() => {}
                _ = sleep_until(flush), if flush.is_some() => {}
            }
            if self.results.len() >= FLUSH_AT
                || self.flush_due.is_some_and(|due| due <= Instant::now())
                || review
            {
                self.flush().await;
            }
            if review {
                self.review().await;
            }
            self.dispatch().await;
        }
    }

    // === landing ===

    fn land(&mut self, id: Id, landed: Landed) {
        // A flight aborted when its batch expired already has its result.
        let Some(flying) = self.flying.remove(&id) else {
            return;
        };
        let answer = line::answer_for(landed.response.status_code);
        self.pacing.ended(
            &flying.route,
            &flying.provider,
            answer,
            Instant::now(),
            fastrand::f64(),
        );
        let outcome = match answer {
            Answer::Served => LineOutcome::Done,
            Answer::Refused => LineOutcome::Failed,
            Answer::RateLimited | Answer::Unavailable => {
                self.releases.push((landed.batch_key, landed.line));
                *self.pending.entry(flying.route).or_default() += 1;
                self.flush_soon();
                return;
            }
        };
        let waited = self
            .started
            .get(&landed.batch_key)
            .map(|start| (landed.sent_at - start) as f64 / 1_000.0);
        let provider = landed.response.provider.clone();
        self.results.push((
            LineResult {
                batch_key: landed.batch_key,
                line: landed.line,
                outcome,
                finished_at: self.shared.now(),
                response: Some(landed.response),
                error: None,
            },
            provider,
        ));
        if let Some(waited) = waited {
            self.telemetry.wait_observed(waited);
        }
        self.flush_soon();
    }

    fn flush_soon(&mut self) {
        if self.flush_due.is_none() {
            self.flush_due = Some(Instant::now() + FLUSH_EVERY);
        }
    }

    /// Writes buffered results and releases. On a store error they stay buffered and are
    /// written with the next flush (their lines stay in flight meanwhile).
    async fn flush(&mut self) {
        self.flush_due = None;
        let shared = self.shared.clone();
        let queue = shared.store.queue();
        if !self.results.is_empty() {
            let results: Vec<LineResult> = self.results.iter().map(|(r, _)| r.clone()).collect();
            match queue.queue_record(&results).await {
                Ok(_) => {
                    for (result, provider) in self.results.drain(..) {
                        self.telemetry
                            .line_ended(provider.as_deref(), result.outcome == LineOutcome::Done);
                    }
                    self.store_ok();
                }
                Err(e) => {
                    self.store_failed("writing line results", &e);
                    self.flush_soon();
                }
            }
        }
        if !self.releases.is_empty() {
            match queue.queue_release(&self.releases).await {
                Ok(()) => self.releases.clear(),
                Err(e) => {
                    self.store_failed("sending lines back to wait", &e);
                    self.flush_soon();
                }
            }
        }
    }

    // === review ===

    /// Moves every open batch along, then recounts the pending lines and publishes the depth.
    async fn review(&mut self) {
        let shared = self.shared.clone();
        let queue = shared.store.queue();
        let open = match queue.queue_open_batches().await {
            Ok(open) => open,
            Err(e) => return self.store_failed("reading open batches", &e),
        };
        self.started
            .retain(|key, _| open.iter().any(|b| b.key == *key));
        for batch in &open {
            if let Some(at) = batch.times.in_progress_at {
                self.started.insert(batch.key, at);
            }
            if let Err(e) = self.move_along(batch).await {
                self.store_failed("moving a batch along", &e);
            }
        }
        match queue.queue_pending().await {
            Ok(pending) => {
                self.pending = pending.into_iter().map(|p| (p.model, p.pending)).collect();
                self.store_ok();
            }
            Err(e) => self.store_failed("counting pending lines", &e),
        }
        self.publish();
        self.prune().await;
    }

    /// Removes what the retention no longer keeps, at most once per [`PRUNE_EVERY`].
    async fn prune(&mut self) {
        let now = Instant::now();
        if self
            .pruned_at
            .is_some_and(|at| now.saturating_duration_since(at) < PRUNE_EVERY)
        {
            return;
        }
        self.pruned_at = Some(now);
        let before = self.shared.now() - self.shared.retention_ms();
        match self.shared.store.queue().queue_prune(before).await {
            Ok(pruned) if pruned.batches + pruned.files > 0 => {
                tracing::info!(
                    batches = pruned.batches,
                    files = pruned.files,
                    "queue: removed ended batches and files past their retention"
                );
            }
            Ok(_) => {}
            Err(e) => self.store_failed("pruning ended batches", &e),
        }
    }

    async fn move_along(&mut self, batch: &BatchRecord) -> Result<(), StoreError> {
        let now = self.shared.now();
        let in_flight = self.flying.values().any(|f| f.batch_key == batch.key);
        let counts = batch.counts;
        let all_ended = counts.completed + counts.failed >= counts.total;
        match batch.status {
            BatchStatus::Validating if !self.validating.contains(&batch.key) => {
                self.validating.insert(batch.key);
                let shared = self.shared.clone();
                let batch = batch.clone();
                self.validations
                    .spawn(async move { (batch.key, validate(&shared, &batch).await) });
            }
            BatchStatus::InProgress if now >= batch.times.expires_at => {
                self.expire(batch).await?;
            }
            BatchStatus::InProgress if all_ended && !in_flight => {
                self.end(batch, BatchEnd::Completed).await?;
            }
            BatchStatus::Cancelling => {
                if batch.times.in_progress_at.is_none() {
                    // Cancelled while validating: it ends once its validation has stopped.
                    if !self.validating.contains(&batch.key) {
                        self.end(batch, BatchEnd::Cancelled).await?;
                    }
                    return Ok(());
                }
                let closed = self
                    .shared
                    .store
                    .queue()
                    .queue_lines_close(batch.key, &cancelled(), now)
                    .await?;
                self.telemetry.lines_closed(closed);
                if counts.completed + counts.failed + closed >= counts.total && !in_flight {
                    self.end(batch, BatchEnd::Cancelled).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The completion window is over: pending lines and lines in flight end as expired (a line
    /// in flight is abandoned; its provider may still answer it, unseen), then the batch ends.
    async fn expire(&mut self, batch: &BatchRecord) -> Result<(), StoreError> {
        let now = self.shared.now();
        let closed = self
            .shared
            .store
            .queue()
            .queue_lines_close(batch.key, &expired(), now)
            .await?;
        self.telemetry.lines_closed(closed);
        let abandoned: Vec<Id> = self
            .flying
            .iter()
            .filter(|(_, f)| f.batch_key == batch.key)
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            let Some(flying) = self.flying.remove(&id) else {
                continue;
            };
            flying.abort.abort();
            self.pacing.ended(
                &flying.route,
                &flying.provider,
                Answer::Refused,
                Instant::now(),
                fastrand::f64(),
            );
            self.results.push((
                LineResult {
                    batch_key: flying.batch_key,
                    line: flying.line,
                    outcome: LineOutcome::Failed,
                    finished_at: now,
                    response: None,
                    error: Some(expired()),
                },
                None,
            ));
        }
        self.flush().await;
        if !self.results.is_empty() {
            // Not written: the batch ends at a later review, once they are.
            return Ok(());
        }
        self.end(batch, BatchEnd::Expired).await
    }

    /// Ends a batch: its result files (those with lines) are measured and created with it.
    async fn end(&mut self, batch: &BatchRecord, end: BatchEnd) -> Result<(), StoreError> {
        let store = self.shared.store.as_ref();
        let mut files = Vec::new();
        for kind in [ResultKind::Output, ResultKind::Error] {
            let (bytes, lines) = results::measure(store, batch.key, &batch.id, kind).await?;
            if lines > 0 {
                files.push(ResultFile {
                    id: object::new_id(FILE_PREFIX),
                    kind,
                    bytes,
                    lines,
                });
            }
        }
        let now = self.shared.now();
        if store
            .queue()
            .queue_batch_finish(batch.key, end, now, &files)
            .await?
        {
            self.telemetry.batch_ended(end.status());
            tracing::info!(
                batch = %batch.id,
                status = end.status().as_str(),
                completed = batch.counts.completed,
                failed = batch.counts.failed,
                "queue: batch ended"
            );
        }
        Ok(())
    }

    // === dispatch ===

    /// Starts what pacing allows on every route with pending lines.
    async fn dispatch(&mut self) {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let routes: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(route, _)| route.clone())
            .collect();
        for route in routes {
            loop {
                let pending = self.pending.get(&route).copied().unwrap_or(0);
                let plan = match self.shared.gateway.readiness(&route) {
                    Some(readiness) => self.pacing.plan(&route, &readiness, pending, now),
                    None => self.pacing.plan(&route, &no_route(), pending, now),
                };
                let (provider, count) = match plan {
                    Plan::Wait { until } => {
                        next = earliest(next, until);
                        break;
                    }
                    Plan::Start { provider, count } => (provider, count),
                };
                let claimed = match self.shared.store.queue().queue_claim(&route, count).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        self.store_failed("claiming lines", &e);
                        break;
                    }
                };
                let got = claimed.len() as u32;
                self.pacing.started(&route, &provider, got, now);
                for line in claimed {
                    self.launch(line, &route, &provider);
                }
                if got < count {
                    // Fewer than counted (lines of batches still validating, or counted before
                    // they ended): the next review counts again.
                    self.pending.insert(route.clone(), 0);
                    break;
                }
                self.pending
                    .insert(route.clone(), pending.saturating_sub(u64::from(got)));
            }
        }
        self.next_look = next;
    }

    fn launch(&mut self, claimed: ClaimedLine, route: &str, provider: &Arc<str>) {
        let router = self.router.clone();
        let sent_at = self.shared.now();
        let (batch_key, line_no) = (claimed.batch_key, claimed.line);
        let abort = self.flights.spawn(async move {
            let response = line::send(router, &claimed.request).await;
            Landed {
                batch_key,
                line: line_no,
                response,
                sent_at,
            }
        });
        self.flying.insert(
            abort.id(),
            Flying {
                batch_key,
                line: line_no,
                route: route.to_owned(),
                provider: provider.clone(),
                abort,
            },
        );
    }

    /// Pending lines per route, and per provider those waiting (no target of their route ready,
    /// counted against its first target) and those in flight, to metrics and the health view.
    fn publish(&self) {
        let mut waiting: BTreeMap<String, u64> = BTreeMap::new();
        for (route, pending) in self.pending.iter().filter(|(_, n)| **n > 0) {
            let Some(readiness) = self.shared.gateway.readiness(route) else {
                continue;
            };
            if readiness.ready_targets() == 0
                && let Some(first) = readiness.targets.first()
            {
                *waiting.entry(first.provider.to_string()).or_default() += pending;
            }
        }
        let mut in_flight: BTreeMap<String, u64> = BTreeMap::new();
        for flying in self.flying.values() {
            *in_flight.entry(flying.provider.to_string()).or_default() += 1;
        }
        self.telemetry.depth(&self.pending, waiting, &in_flight);
    }

    // === shutdown ===

    /// Gives lines in flight [`DRAIN`] to be answered, writes what came back, and sends the
    /// rest back to pending.
    async fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN;
        while !self.flights.is_empty() {
            match tokio::time::timeout_at(deadline, self.flights.join_next_with_id()).await {
                Ok(Some(Ok((id, landed)))) => self.land(id, landed),
                Ok(Some(Err(e))) => {
                    self.flying.remove(&e.id());
                }
                Ok(None) | Err(_) => break,
            }
        }
        for flying in self.flying.values() {
            flying.abort.abort();
            self.releases.push((flying.batch_key, flying.line));
        }
        self.flush().await;
    }

    fn store_failed(&mut self, doing: &str, error: &StoreError) {
        if !self.failing {
            tracing::error!(error = %error, "queue: the database failed while {doing}; retrying");
        }
        self.failing = true;
    }

    fn store_ok(&mut self) {
        if self.failing {
            tracing::info!("queue: the database answers again");
        }
        self.failing = false;
    }
}

/// Checks a batch's input line by line and adds the valid lines; then starts the batch, or
/// fails it with the errors found. A batch cancelled meanwhile stops taking lines.
async fn validate(shared: &Shared, batch: &BatchRecord) -> Result<(), StoreError> {
    let queue = shared.store.queue();
    let gateway = shared.gateway.clone();
    let serves = move |model: &str| gateway.readiness(model).is_some();
    let mut validator = Validator::new(&batch.endpoint, &serves);
    let mut after = 0;
    let mut clean = true;
    'pages: loop {
        let page = queue
            .queue_file_lines(batch.input_file_key, after, VALIDATE_PAGE)
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.line;
        let mut valid = Vec::with_capacity(page.len());
        for line in &page {
            if !validator.wants_more() {
                break 'pages;
            }
            match validator.check(line) {
                Some(line) => valid.push(line),
                None => clean = false,
            }
        }
        // Once a line failed the batch will fail: its valid lines are not worth storing.
        if clean && !valid.is_empty() {
            match queue.queue_lines_add(batch.key, &valid).await {
                Ok(()) => {}
                // No longer validating: cancelled meanwhile.
                Err(StoreError::Db(sqlx::Error::RowNotFound)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
    let now = shared.now();
    match validator.finish() {
        Ok(_) => {
            queue.queue_batch_start(batch.key, now).await?;
        }
        Err(errors) => {
            let errors = serde_json::to_string(&errors).expect("errors serialize to JSON");
            queue.queue_batch_reject(batch.key, &errors, now).await?;
        }
    }
    Ok(())
}

/// Readiness for lines whose model no route serves: one target, always ready, so that they are
/// sent and the gateway's 404 ends them in the error file.
fn no_route() -> crate::gateway::readiness::Readiness {
    use crate::gateway::readiness::{Readiness, TargetReadiness, TargetState};
    Readiness {
        targets: vec![TargetReadiness {
            provider: Arc::from(NO_ROUTE),
            state: TargetState::Ready,
            next_check_at: None,
            incident: false,
        }],
    }
}

fn expired() -> LineError {
    LineError {
        code: "batch_expired".into(),
        message: "This request could not be executed before the completion window expired.".into(),
    }
}

fn cancelled() -> LineError {
    LineError {
        code: "batch_cancelled".into(),
        message: "This request was not executed: the batch was cancelled.".into(),
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

//! The status page's renderer: one task that re-renders every cached view ([`Views`]) when what
//! they show changes, and never because someone asked.
//!
//! It wakes when the health view's version moves (a probe result, a state change, an incident,
//! the store catching up, a config reload), when the corroboration poller publishes what the
//! sources beside the probes say, and once a second (staleness, the minute and hour
//! turning, new site settings), and renders at most once per [`MIN_GAP`] — more rarely when a
//! render is expensive, so it never takes more than about a fifth of a core. Inputs come from the
//! health view (memory) and the store, read incrementally: a monitor's history (uptime, 90 days,
//! 24 hours of latency) is read again only once its newer results are stored, and all of them
//! at the top of each hour, when the windows move. Above the overview's threshold only failing
//! monitors' days and latency are read and kept; of the others, only the uptime (`Extent`).
//! Drawing and compressing run on the blocking pool, off the threads that run probes.
//!
//! When the store does not answer in [`GATHER_LIMIT`], the views are rendered from what was read
//! before: the page then still says when the monitor stalled, instead of hanging on a wedged
//! database with the last green it drew. The task ends when every [`PublicViews`] is gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::freshness::Freshness;
use super::page::{BAR_DAYS, MonitorHistory, is_failing};
use super::site::{Site, SiteInfo};
use super::summary::OVERVIEW_ROWS_MAX;
use super::views::{Inputs, LATEST, PublicViews, Views};
use crate::corroborate::view::SourcesView;
use crate::monitor::health::{Health, HealthSnapshot, MonitorHealth};
use crate::store::{Incident, IncidentFilter, SeriesStep, Store, StoreError};
use crate::time::Clock;
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis};

/// 1 s: fresh within one probe, and a page that changes with every probe result still costs at
/// most one render a second.
pub const MIN_GAP: Duration = Duration::from_secs(1);
/// A render may take at most this share of the time (1/5): the next one waits at least
/// `COST_FACTOR` times as long as the last one took.
const COST_FACTOR: u32 = 5;
/// How often the renderer looks even when nothing told it to.
const TICK: Duration = Duration::from_secs(1);
/// The store must answer a render's reads within this; otherwise the views are drawn from what
/// was read before.
pub const GATHER_LIMIT: Duration = Duration::from_secs(5);

/// What the renderer reads from.
pub struct Sources {
    pub health: Health,
    pub store: Arc<dyn Store>,
    pub site: Site,
    pub clock: Clock,
    /// What official pages, the aggregator and the community say (the corroboration
    /// poller's view); a new version is a change like any other.
    pub others: watch::Receiver<Arc<SourcesView>>,
}

/// Starts the renderer; the returned handle serves its views. Needs a tokio runtime.
pub fn start(sources: Sources) -> PublicViews {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run(sources, tx));
    PublicViews::new(rx)
}

/// What a render was made from, in as much detail as decides whether another is needed.
struct Made {
    version: u64,
    /// Held, not just compared by address, so a new version can never reuse the address.
    site: Arc<SiteInfo>,
    /// Durations ("major outage for 23 min") are worded to the minute.
    minute: Millis,
    stale: bool,
    /// Held, like `site`.
    others: Arc<SourcesView>,
}

impl PartialEq for Made {
    fn eq(&self, other: &Made) -> bool {
        self.version == other.version
            && Arc::ptr_eq(&self.site, &other.site)
            && Arc::ptr_eq(&self.others, &other.others)
            && self.minute == other.minute
            && self.stale == other.stale
    }
}

async fn run(mut sources: Sources, tx: watch::Sender<Option<Arc<Views>>>) {
    let mut changes = sources.health.changes();
    // Once the poller's side is gone (shutdown), its last view stays.
    let mut others_open = true;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut history = History::default();
    let mut made: Option<Made> = None;
    let mut not_before = Instant::now();
    // Whether the last read failed: a store outage is logged when it starts and when it ends,
    // not at every attempt.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            changed = changes.changed() => if changed.is_err() { return },
            changed = sources.others.changed(), if others_open => others_open = changed.is_ok(),
            _ = tick.tick() => {}
        }
        // Whatever else changes before the gap is over goes into the same render.
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep_until(not_before) => {}
        }
        let version = *changes.borrow_and_update();
        let site = sources.site.get();
        let now = sources.clock.now();
        let health = sources.health.snapshot();
        let freshness = Freshness::of(&health, now);
        let others = sources.others.borrow_and_update().clone();
        let this = Made {
            version,
            site: site.clone(),
            minute: now.div_euclid(MINUTE_MS),
            stale: freshness.stale,
            others: others.clone(),
        };
        if made.as_ref() == Some(&this) {
            continue;
        }
        let started = Instant::now();
        let read = tokio::time::timeout(
            GATHER_LIMIT,
            history.read(sources.store.as_ref(), &health, now),
        )
        .await;
        let read_ok = match read {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!("status page: the store answers again");
                }
                true
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(error = %e, "status page: store read failed; showing what was read before");
                }
                false
            }
            Err(_) => {
                if !failing {
                    tracing::warn!(
                        "status page: the store did not answer in {} s; showing what was read before",
                        GATHER_LIMIT.as_secs()
                    );
                }
                false
            }
        };
        failing = !read_ok;
        let inputs = history.inputs(site, health, now, freshness, others);
        let previous = tx.borrow().clone();
        let built =
            tokio::task::spawn_blocking(move || Views::build(&inputs, previous.as_deref())).await;
        match built {
            Ok(views) => {
                tx.send_replace(Some(Arc::new(views)));
            }
            Err(e) => tracing::error!(error = %e, "status page render panicked"),
        }
        made = Some(this);
        // A render that waited on a dead store cost no CPU: it is retried after the usual gap.
        let cost = if read_ok {
            started.elapsed()
        } else {
            Duration::ZERO
        };
        not_before = started + MIN_GAP.max(cost * COST_FACTOR);
        // A store that failed: look again after the gap.
        if !read_ok {
            made = None;
        }
    }
}

/// What one monitor's history was read for.
struct Known {
    history: Arc<MonitorHistory>,
    /// The `last_at` whose result the history includes; `None` while that result was not
    /// stored yet when it was read (so it is read again once it is).
    includes: Option<Option<Millis>>,
    /// Whether its days and latency were read, or only its uptime ([`Extent`]).
    extent: Extent,
}

/// How much of a monitor's history the views draw. Above
/// [`OVERVIEW_ROWS_MAX`](super::summary::OVERVIEW_ROWS_MAX) monitors the overview draws a row
/// (90-day bar, latency sparkline) only for failing monitors; everything else the views show of
/// a monitor's history is its uptime (`/api/v1/status`, the uptime badge). Keeping 90 days and
/// 24 hours for every monitor would be ~5 KB per monitor once the store holds three months
/// (90 day rollups of 48 bytes, 24 latency points of 32), kept between renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extent {
    Uptime,
    Full,
}

impl Extent {
    fn of(m: &MonitorHealth, monitors: usize) -> Extent {
        if monitors <= OVERVIEW_ROWS_MAX || is_failing(m.state) {
            Extent::Full
        } else {
            Extent::Uptime
        }
    }
}

/// The store's part of the inputs, kept between renders.
#[derive(Default)]
struct History {
    monitors: HashMap<String, Known>,
    /// The hour the histories were last all read in.
    hour: Option<Millis>,
    window: Vec<Incident>,
    latest: Vec<Incident>,
}

impl History {
    /// Reads what changed since the last read. Cancel-safe: each monitor's history is replaced
    /// only once all of its reads succeeded.
    async fn read(
        &mut self,
        store: &dyn Store,
        health: &HealthSnapshot,
        now: Millis,
    ) -> Result<(), StoreError> {
        let hour = now.div_euclid(HOUR_MS);
        let all = self.hour != Some(hour);
        // A set, not a scan per kept monitor: that was quadratic (2.5 billion comparisons per
        // render at 50,000 monitors, half of the process's CPU once renders were frequent).
        let current: HashSet<&str> = health.monitors.iter().map(|m| m.id.as_str()).collect();
        self.monitors.retain(|id, _| current.contains(id.as_str()));
        for m in &health.monitors {
            // The writer's watermark moves (and wakes the renderer) once the result is stored.
            let stored = m.last_at <= health.stored_through;
            let extent = Extent::of(m, health.monitors.len());
            let known = self.monitors.get(&m.id);
            let due = match known {
                None => true,
                Some(_) if all => true,
                // A monitor that starts failing is drawn in full from this render on.
                Some(k) if k.extent != extent => true,
                Some(k) => stored && k.includes != Some(m.last_at),
            };
            if !due {
                continue;
            }
            let history = match extent {
                Extent::Full => {
                    let (uptime, days, latency_24h) = tokio::try_join!(
                        store.uptime(&m.id, now),
                        store.daily_counts(&m.id, now, BAR_DAYS),
                        store.latency_series(&m.id, SeriesStep::Hour, now, 24),
                    )?;
                    MonitorHistory {
                        uptime,
                        days,
                        latency_24h,
                    }
                }
                Extent::Uptime => MonitorHistory {
                    uptime: store.uptime(&m.id, now).await?,
                    ..MonitorHistory::default()
                },
            };
            self.monitors.insert(
                m.id.clone(),
                Known {
                    history: Arc::new(history),
                    includes: stored.then_some(m.last_at),
                    extent,
                },
            );
        }
        let from = now.div_euclid(DAY_MS) * DAY_MS - i64::from(BAR_DAYS - 1) * DAY_MS;
        let (window, latest) = tokio::try_join!(
            store.incidents_between(from, now),
            store.incidents(&IncidentFilter {
                state: None,
                monitor: None,
                limit: LATEST,
                offset: 0,
            }),
        )?;
        self.window = window;
        self.latest = latest;
        if all {
            self.hour = Some(hour);
        }
        Ok(())
    }

    fn inputs(
        &self,
        site: Arc<SiteInfo>,
        health: HealthSnapshot,
        now: Millis,
        freshness: Freshness,
        others: Arc<SourcesView>,
    ) -> Inputs {
        let histories = health
            .monitors
            .iter()
            .map(|m| {
                self.monitors
                    .get(&m.id)
                    .map_or_else(Arc::default, |k| k.history.clone())
            })
            .collect();
        Inputs {
            site,
            health,
            now,
            freshness,
            histories,
            window: self.window.clone(),
            latest: self.latest.clone(),
            others,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::machine::MonitorState;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{MonitorRecord, ResultRecord};
    use crate::verdict::Verdict;
    use crate::web::tests::{NOW, healthy_snapshot, monitor};

    fn result(m: &MonitorHealth, verdict: Verdict) -> ResultRecord {
        ResultRecord {
            monitor_id: m.id.clone(),
            at: m.last_at.expect("the test's monitors have a result"),
            verdict,
            blame: verdict.default_blame(),
            status: Some(if verdict.is_healthy() { 200 } else { 503 }),
            latency_ms: Some(250.0),
            ttft_ms: None,
            explanation: None,
            region: None,
        }
    }

    #[tokio::test]
    async fn above_the_threshold_only_failing_monitors_keep_their_days_and_latency() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("isdown.db"))
            .await
            .unwrap();
        let mut monitors: Vec<MonitorHealth> = (0..=OVERVIEW_ROWS_MAX)
            .map(|n| monitor(&format!("p{n:03}"), MonitorState::Up))
            .collect();
        monitors[7].state = MonitorState::Down;
        let records: Vec<MonitorRecord> = monitors
            .iter()
            .map(|m| MonitorRecord {
                id: m.id.clone(),
                provider: m.provider.clone(),
                model: m.model.clone(),
                probe: m.probe.clone(),
            })
            .collect();
        store.register_monitors(&records).await.unwrap();
        let results: Vec<ResultRecord> = monitors
            .iter()
            .map(|m| match m.state {
                MonitorState::Down => result(m, Verdict::Unavailable),
                _ => result(m, Verdict::Up),
            })
            .collect();
        store.record_results(&results).await.unwrap();
        let mut health = healthy_snapshot(monitors);
        let mut history = History::default();
        history.read(&store, &health, NOW).await.unwrap();
        let kept = |history: &History, id: &str| history.monitors[id].history.clone();

        assert_eq!(kept(&history, "p007-chat").days.len(), 1);
        let up = kept(&history, "p008-chat");
        assert!(up.days.is_empty() && up.latency_24h.is_empty());
        // What the JSON and the uptime badge show is kept for every monitor.
        assert_eq!(up.uptime, store.uptime("p008-chat", NOW).await.unwrap());
        assert!(up.uptime.d30.is_some());

        // A monitor that starts failing is read in full at the next render, without a new result.
        health.monitors[8].state = MonitorState::Down;
        history.read(&store, &health, NOW).await.unwrap();
        let now_failing = kept(&history, "p008-chat");
        assert_eq!(now_failing.days.len(), 1);
        assert_eq!(now_failing.latency_24h.len(), 1);

        // At the threshold (one monitor fewer), every monitor is drawn in full.
        health.monitors.pop();
        history.read(&store, &health, NOW).await.unwrap();
        assert_eq!(kept(&history, "p009-chat").days.len(), 1);
    }
}

//! Incident writes on their way to the database, in the order the core decided them.
//!
//! The core decides incidents in memory and hands every incident write here. While the database
//! answers, each is written at once. While it does not (PostgreSQL restarting, a network
//! partition, a locked or full SQLite file), the writes wait here in order and the core goes on
//! probing and deciding, so the gateway, the status page and the API keep following the
//! providers from memory. Every [`RETRY_EVERY`] the oldest waiting write is tried again; once
//! the database answers, all of them land in order, and the events they announce (alerts start
//! from these) are sent then, with the store's ids and the times things actually happened.
//!
//! An incident opened while the database is away has no store id yet: [`Journal::open`] gives
//! it a provisional, negative one, which the writes queued behind it use and which the store's
//! replaces when it lands ([`Landed::opened`]; the core patches its machines from that).
//!
//! **Bounds.** Openings, reopenings and closings always wait (a monitor makes few: the machine's
//! thresholds and flap rule space them). Notes — one more failed probe of an open incident —
//! wait while fewer than [`WAITING_MAX`] writes do; beyond that they are dropped and counted,
//! which only lowers an incident's count of failed probes. Writes wait in memory: a crash while
//! the database is away loses them, and the restarted monitor finds a still-failing provider
//! again from its probes. Each attempt is bounded by [`ATTEMPT_LIMIT`], so an unreachable
//! database costs the core at most that once per [`RETRY_EVERY`], never a stall.
//!
//! Owns the waiting writes and whether the database answered last time. Must not decide
//! incidents or touch machines.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::{Instant, timeout};

use super::event::MonitorEvent;
use crate::store::{NewIncident, Store, StoreError};
use crate::time::Millis;
use crate::verdict::Verdict;

/// How long the database may stay silent before waiting writes are tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// One write that takes longer counts as failed: the database is treated as away until the next
/// retry (a write that did land meanwhile is harmless to repeat: opening returns the incident
/// already open, closing and reopening set what they set).
pub const ATTEMPT_LIMIT: Duration = Duration::from_secs(2);
/// Waiting writes beyond which notes are dropped.
pub const WAITING_MAX: usize = 10_000;

/// One incident write. Ids may be provisional (negative) while their opening waits.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Open {
        provisional: i64,
        incident: NewIncident,
    },
    Reopen {
        id: i64,
    },
    Note {
        id: i64,
        verdict: Verdict,
        sample: Option<String>,
    },
    Close {
        id: i64,
        ended_at: Millis,
    },
}

/// A write that reached the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Landed {
    /// For an opening: its provisional id and the store's.
    pub opened: Option<(i64, i64)>,
    /// What to announce now, with the store's id.
    pub event: Option<MonitorEvent>,
}

/// What one call of [`Journal::land`] did.
#[derive(Debug, Default)]
pub struct Landing {
    pub landed: Vec<Landed>,
    /// The database answers again after it had not.
    pub back: bool,
}

/// Since when, and until when not to try again.
#[derive(Debug, Clone, Copy)]
struct Away {
    since: Millis,
    retry_at: Instant,
}

struct Waiting {
    write: Write,
    announce: Option<MonitorEvent>,
}

#[derive(Default)]
pub struct Journal {
    waiting: VecDeque<Waiting>,
    /// The last provisional id given out (they count down from -1).
    provisional: i64,
    /// Provisional ids whose opening landed, for the writes still queued behind it.
    landed_ids: HashMap<i64, i64>,
    away: Option<Away>,
    dropped_notes: u64,
}

impl Journal {
    pub fn new() -> Journal {
        Journal::default()
    }

    /// Queues an opening; returns the id to use for it until it lands (provisional: negative).
    /// `announce` is sent when it lands, with the store's id.
    pub fn open(&mut self, incident: NewIncident, announce: Option<MonitorEvent>) -> i64 {
        self.provisional -= 1;
        let provisional = self.provisional;
        let announce = announce.map(|mut event| {
            event.set_id(provisional);
            event
        });
        self.push(
            Write::Open {
                provisional,
                incident,
            },
            announce,
        );
        provisional
    }

    /// Queues any other write.
    pub fn push(&mut self, write: Write, announce: Option<MonitorEvent>) {
        if matches!(write, Write::Note { .. }) && self.waiting.len() >= WAITING_MAX {
            self.dropped_notes += 1;
            if self.dropped_notes == 1 {
                tracing::warn!(
                    waiting = self.waiting.len(),
                    "incident writes waiting for the database are at their bound; failed-probe notes are dropped"
                );
            }
            return;
        }
        self.waiting.push_back(Waiting { write, announce });
    }

    /// Whether an id is provisional (its opening has not landed).
    pub fn is_provisional(id: i64) -> bool {
        id < 0
    }

    /// Since when the database has not answered (`None`: it did last time).
    pub fn away_since(&self) -> Option<Millis> {
        self.away.map(|a| a.since)
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn dropped_notes(&self) -> u64 {
        self.dropped_notes
    }

    /// Makes the next [`Journal::land`] with `retry` try at once (the last try, at a stop).
    pub fn retry_now(&mut self, now: Instant) {
        if let Some(away) = self.away.as_mut() {
            away.retry_at = now;
        }
    }

    /// Writes what waits, in order, until one fails. While the database is away this tries
    /// only when `retry` is set and [`RETRY_EVERY`] has passed (the core's timer); then, with
    /// nothing waiting, a cheap read tells whether it is back.
    pub async fn land(
        &mut self,
        store: &dyn Store,
        now: Instant,
        at: Millis,
        retry: bool,
    ) -> Landing {
        let mut landing = Landing::default();
        if let Some(away) = self.away
            && (!retry || now < away.retry_at)
        {
            return landing;
        }
        if self.waiting.is_empty()
            && self.away.is_some()
            && let Err(e) = bounded(store.size_bytes()).await
        {
            self.mark_away(&e, now, at);
            return landing;
        }
        while let Some(front) = self.waiting.front_mut() {
            rename(&mut front.write, &self.landed_ids);
            match bounded(write(store, &front.write)).await {
                Ok(id) => {
                    let Some(Waiting { write, announce }) = self.waiting.pop_front() else {
                        break;
                    };
                    let opened = match write {
                        Write::Open { provisional, .. } => {
                            self.landed_ids.insert(provisional, id);
                            Some((provisional, id))
                        }
                        _ => None,
                    };
                    let event = announce.map(|mut event| {
                        if let Some(&id) = self.landed_ids.get(&event.id()) {
                            event.set_id(id);
                        }
                        event
                    });
                    landing.landed.push(Landed { opened, event });
                }
                Err(e) if moot(&front.write, &e) => {
                    // The incident is gone or already closed (another instance's doing, or a
                    // retried write that had landed): this write has nothing left to change.
                    tracing::warn!(write = ?front.write, error = %e, "incident write skipped: it no longer applies");
                    self.waiting.pop_front();
                }
                Err(e) => {
                    self.mark_away(&e, now, at);
                    return landing;
                }
            }
        }
        self.landed_ids.clear();
        if let Some(away) = self.away.take() {
            tracing::info!(
                away_ms = at.saturating_sub(away.since),
                landed = landing.landed.len(),
                dropped_notes = self.dropped_notes,
                "the database answers again; the incident writes that waited have landed"
            );
            landing.back = true;
        }
        landing
    }

    /// A write or read failed (here, or a read elsewhere in the core): the database is away
    /// until the next retry.
    pub fn mark_away(&mut self, error: &StoreError, now: Instant, at: Millis) {
        let retry_at = now + RETRY_EVERY;
        match self.away.as_mut() {
            Some(away) => {
                tracing::debug!(error = %error, waiting = self.waiting.len(), "the database is still away");
                away.retry_at = retry_at;
            }
            None => {
                tracing::error!(
                    error = %error,
                    waiting = self.waiting.len(),
                    "the database does not answer; probing goes on and incident writes wait for it"
                );
                self.away = Some(Away {
                    since: at,
                    retry_at,
                });
            }
        }
    }
}

/// Replaces provisional ids whose opening has landed.
fn rename(write: &mut Write, landed: &HashMap<i64, i64>) {
    let id = match write {
        Write::Open { .. } => return,
        Write::Reopen { id } | Write::Note { id, .. } | Write::Close { id, .. } => id,
    };
    if let Some(&real) = landed.get(id) {
        *id = real;
    }
}

/// Whether a write's error says retrying cannot help: a note, close or reopening of an incident
/// the store does not have open (or at all) — `RowNotFound`, by the store's contract. An
/// opening is never moot.
fn moot(write: &Write, error: &StoreError) -> bool {
    !matches!(write, Write::Open { .. })
        && matches!(error, StoreError::Db(sqlx::Error::RowNotFound))
}

/// `call` within [`ATTEMPT_LIMIT`]; running out of it is [`StoreError::NoAnswer`].
async fn bounded<T>(call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    timeout(ATTEMPT_LIMIT, call)
        .await
        .unwrap_or(Err(StoreError::NoAnswer(ATTEMPT_LIMIT)))
}

/// Carries out one write; answers the incident's store id.
async fn write(store: &dyn Store, write: &Write) -> Result<i64, StoreError> {
    match write {
        Write::Open { incident, .. } => store.open_incident(incident).await,
        Write::Reopen { id } => store.reopen_incident(*id).await.map(|()| *id),
        Write::Note {
            id,
            verdict,
            sample,
        } => store
            .note_incident_failure(*id, *verdict, sample.as_deref())
            .await
            .map(|()| *id),
        Write::Close { id, ended_at } => store.close_incident(*id, *ended_at).await.map(|()| *id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::IncidentKind;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{IncidentFilter, MonitorRecord};

    const MONITOR: &str = "kimi-chat";

    fn incident(started_at: Millis) -> NewIncident {
        NewIncident {
            monitor: MONITOR.into(),
            provider: "kimi".into(),
            kind: IncidentKind::Outage,
            verdict: Verdict::Unavailable,
            started_at,
            failed_probes: 2,
            first_error: Some("503".into()),
            opened_by: None,
        }
    }

    fn opened(at: Millis) -> MonitorEvent {
        MonitorEvent::IncidentOpened {
            id: 0,
            monitor: MONITOR.into(),
            kind: IncidentKind::Outage,
            reopened: false,
            at,
        }
    }

    fn note(id: i64) -> Write {
        Write::Note {
            id,
            verdict: Verdict::Unavailable,
            sample: None,
        }
    }

    async fn store(path: &std::path::Path) -> SqliteStore {
        let store = SqliteStore::open(path).await.unwrap();
        store
            .register_monitors(&[MonitorRecord {
                id: MONITOR.into(),
                provider: "kimi".into(),
                model: None,
                probe: "chat".into(),
            }])
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn writes_wait_in_order_while_the_database_is_away_and_land_with_the_stores_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("isdown.db");
        let away = store(&path).await;
        away.close().await;
        let mut journal = Journal::new();
        let now = Instant::now();
        let id = journal.open(incident(1_000), Some(opened(1_000)));
        assert!(Journal::is_provisional(id));
        journal.push(note(id), None);
        let closed = MonitorEvent::IncidentClosed {
            id,
            monitor: MONITOR.into(),
            kind: IncidentKind::Outage,
            at: 3_000,
        };
        journal.push(
            Write::Close {
                id,
                ended_at: 3_000,
            },
            Some(closed),
        );

        let landing = journal.land(&away, now, 2_000, false).await;
        assert!(landing.landed.is_empty() && !landing.back);
        assert_eq!(journal.away_since(), Some(2_000));
        assert_eq!(journal.waiting(), 3);

        // Back, but not tried before the retry is due, nor without `retry`.
        let back = store(&path).await;
        let early = journal
            .land(&back, now + RETRY_EVERY / 2, 2_500, true)
            .await;
        assert!(early.landed.is_empty());
        let unasked = journal.land(&back, now + RETRY_EVERY, 2_500, false).await;
        assert!(unasked.landed.is_empty());
        assert_eq!(journal.waiting(), 3);

        let landing = journal.land(&back, now + RETRY_EVERY, 8_000, true).await;
        assert!(landing.back);
        assert_eq!(landing.landed.len(), 3);
        let (provisional, real) = landing.landed[0].opened.unwrap();
        assert_eq!(provisional, id);
        assert!(real > 0);
        let announced: Vec<i64> = landing
            .landed
            .iter()
            .filter_map(|l| l.event.as_ref().map(MonitorEvent::id))
            .collect();
        assert_eq!(announced, [real, real], "both events carry the store's id");
        assert_eq!(journal.away_since(), None);
        assert_eq!(journal.waiting(), 0);

        let stored = back
            .incidents(&IncidentFilter {
                state: None,
                ..IncidentFilter::all_open()
            })
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id, real);
        assert_eq!(
            stored[0].started_at, 1_000,
            "when it happened, not when it landed"
        );
        assert_eq!(stored[0].ended_at, Some(3_000));
        assert_eq!(stored[0].failed_probes, 3);
    }

    #[tokio::test]
    async fn a_write_that_no_longer_applies_is_skipped_and_the_rest_lands() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir.path().join("isdown.db")).await;
        let gone = store.open_incident(&incident(1_000)).await.unwrap();
        store.close_incident(gone, 2_000).await.unwrap();
        let mut journal = Journal::new();
        journal.push(note(gone), None);
        journal.push(
            Write::Close {
                id: gone + 100,
                ended_at: 2_500,
            },
            None,
        );
        let id = journal.open(incident(3_000), Some(opened(3_000)));
        let landing = journal.land(&store, Instant::now(), 3_000, false).await;
        assert_eq!(journal.waiting(), 0);
        assert_eq!(journal.away_since(), None);
        assert_eq!(landing.landed.len(), 1);
        assert_eq!(landing.landed[0].opened.map(|(p, _)| p), Some(id));
    }

    #[test]
    fn notes_beyond_the_bound_are_dropped_while_openings_and_closings_still_wait() {
        let mut journal = Journal::new();
        for _ in 0..WAITING_MAX {
            journal.push(note(1), None);
        }
        journal.push(note(1), None);
        assert_eq!(journal.dropped_notes(), 1);
        assert_eq!(journal.waiting(), WAITING_MAX);
        journal.push(Write::Close { id: 1, ended_at: 5 }, None);
        journal.open(incident(6), None);
        assert_eq!(journal.waiting(), WAITING_MAX + 2);
    }
}

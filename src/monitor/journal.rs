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

    /// Another part of the core found the database away (a read failed).
    pub fn mark_away(&mut self, error: &StoreError, now: Instant, at: Millis) {
        self.failed(error, now, at);
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
        if self.waiting.is_empty() && self.away.is_some() {
            match timeout(ATTEMPT_LIMIT, store.size_bytes()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    self.failed(&e, now, at);
                    return landing;
                }
                Err(_) => {
                    self.failed(&StoreError::NoAnswer(ATTEMPT_LIMIT), now, at);
                    return landing;
                }
            }
        }
        while let Some(front) = self.waiting.front_mut() {
            rename(&mut front.write, &self.landed_ids);
            match timeout(ATTEMPT_LIMIT, write(store, &front.write)).await {
                Ok(Ok(id)) => {
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
                Ok(Err(e)) => {
                    self.failed(&e, now, at);
                    return landing;
                }
                Err(_) => {
                    self.failed(&StoreError::NoAnswer(ATTEMPT_LIMIT), now, at);
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

    /// A write or read failed: the database is away until the next retry.
    fn failed(&mut self, error: &dyn std::fmt::Display, now: Instant, at: Millis) {
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

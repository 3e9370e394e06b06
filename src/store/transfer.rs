//! The back-end-neutral form of the rows `isdown db copy` moves: what one back end exports and
//! another imports, in the store's own vocabulary (monitor ids, verdicts, counters), never a
//! back end's keys or codes.
//!
//! Plain data, no I/O. Rows that the [`Store`](super::Store) trait already describes travel as
//! its types (`ResultRecord`, `Incident`, `StoredOfficialIncident`, `OutboxEntry`); the rest are
//! here. A row's identity across back ends is what the copy keys on: the monitor id for
//! monitors, results, rollups and states, the row id for incidents, official incidents,
//! quarantined states, alert groups and outbox entries (ids appear in alerts and URLs, so they
//! are kept as they are).

use super::rollup::{Counts, Resolution};
use crate::time::Millis;

/// A monitor's description; `None` where the monitor was seen in results before it was
/// registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRow {
    pub id: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub probe: Option<String>,
}

/// One rollup row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub monitor: String,
    pub resolution: Resolution,
    pub bucket_start: Millis,
    pub counts: Counts,
}

/// A monitor's saved snapshot as found: normally JSON text, but a damaged row may hold anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub monitor: String,
    pub snapshot: Vec<u8>,
}

/// A snapshot set aside (`quarantined_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRow {
    pub id: i64,
    pub monitor: String,
    pub snapshot: Option<Vec<u8>>,
    pub reason: String,
    pub at: Millis,
}

/// An alert group, resolved or not, with its member incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertGroupRow {
    pub id: i64,
    pub dedup_key: String,
    pub kind: String,
    pub opened_at: Millis,
    pub last_sent_at: Millis,
    pub resolved_at: Option<Millis>,
    pub incidents: Vec<i64>,
}

/// Where a paged export continues: after the last row it returned, in the exporter's own key
/// order. Opaque outside the exporting back end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor(pub(super) [i64; 3]);

/// What the source's durable queue holds, left behind by the copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueLeft {
    pub batches: u64,
    /// Batches that have not ended (validating, in progress, finalizing, cancelling).
    pub open_batches: u64,
    pub files: u64,
}

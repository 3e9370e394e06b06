//! Incidents and monitor state snapshots, once for both back ends.
//!
//! The database enforces the one rule it can (at most one open incident per monitor, by a
//! partial unique index); opening an incident is the back end's ([`Backend::open_incident`]),
//! because how that rule holds against concurrent openers differs. When incidents open, flap
//! or close is the monitor's decision.

use std::borrow::Cow;

use sqlx::Database;
use sqlx::query::Query;

use super::{Arg, Backend, Dialect, on, read_all, read_one, require_row, write};
use crate::store::rows::{self, check_snapshot};
use crate::store::{
    Incident, IncidentFilter, IncidentState, NewIncident, SavedState, StoreError, dynamic_sql,
};
use crate::time::Millis;
use crate::verdict::Verdict;

/// `SELECT` of incidents `i` with their official acknowledgement, when they have one, then
/// `$rest` (a macro so that `concat!` can build whole static queries from it).
macro_rules! select_incidents {
    ($rest:literal) => {
        concat!(
            "SELECT i.id, i.monitor, i.provider, i.kind, i.verdict, i.started_at, i.ended_at,
                    i.failed_probes, i.first_error, i.last_error, i.opened_by, i.opened_in,
                    i.official_id,
                    o.title AS official_title, o.url AS official_url,
                    o.acknowledged_at AS official_acknowledged_at,
                    o.resolved_at AS official_resolved_at
               FROM incidents i LEFT JOIN official_incidents o ON o.id = i.official_id ",
            $rest
        )
    };
}

const INCIDENT_BY_ID: &str = select_incidents!("WHERE i.id = $1");

/// $2 is true for open incidents only, false for closed ones only, NULL for both.
const LIST_INCIDENTS: &str = select_incidents!(
    "WHERE ($1 IS NULL OR i.monitor = $1) AND ($2 IS NULL OR (i.ended_at IS NULL) = $2)
     ORDER BY i.started_at DESC, i.id DESC
     LIMIT $3 OFFSET $4"
);

/// Incidents open at some instant of [$1, $2], newest first (the status page's window).
const INCIDENTS_BETWEEN: &str = select_incidents!(
    "WHERE i.started_at <= $2 AND (i.ended_at IS NULL OR i.ended_at >= $1)
     ORDER BY i.started_at DESC, i.id DESC"
);

/// Every incident after id $1, in id order, $2 at a time (`db copy`).
pub const INCIDENTS_AFTER: &str = select_incidents!("WHERE i.id > $1 ORDER BY i.id LIMIT $2");

/// The id of the monitor's open incident.
pub const OPEN_INCIDENT_OF: &str =
    "SELECT id FROM incidents WHERE monitor = $1 AND ended_at IS NULL";

/// The columns and values of a new incident; a back end adds its conflict handling and
/// `RETURNING id`, and binds it with [`insert_incident`].
macro_rules! insert_incident_sql {
    ($tail:literal) => {
        concat!(
            "INSERT INTO incidents
             (monitor, provider, kind, verdict, started_at, failed_probes, first_error,
              opened_by, opened_in)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ",
            $tail
        )
    };
}
pub(crate) use insert_incident_sql;

const NOTE_FAILURE: &str = "UPDATE incidents
     SET failed_probes = failed_probes + 1, verdict = $2, last_error = COALESCE($3, last_error)
     WHERE id = $1 AND ended_at IS NULL";

const CLOSE_INCIDENT: &str =
    "UPDATE incidents SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL";

const REOPEN_INCIDENT: &str = "UPDATE incidents SET ended_at = NULL WHERE id = $1";

const INCIDENT_EXISTS: &str = "SELECT id FROM incidents WHERE id = $1";

const PUT_STATE: &str = "INSERT INTO monitor_state (monitor, snapshot) VALUES ($1, $2)
     ON CONFLICT (monitor) DO UPDATE SET snapshot = excluded.snapshot";

const LOAD_STATES: &str = "SELECT monitor, snapshot FROM monitor_state ORDER BY monitor";

const PRUNE_CLOSED: &str = "DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < $1";

const DROP_STATE: &str = "DELETE FROM monitor_state WHERE monitor = $1";

/// `incident` bound to an insert built by `insert_incident_sql!`.
pub fn insert_incident<'a, DB: Dialect>(
    sql: &'static str,
    incident: &'a NewIncident,
) -> Query<'a, DB, <DB as Database>::Arguments> {
    sqlx::query(sql)
        .arg(incident.monitor.as_str())
        .arg(incident.provider.as_str())
        .arg(incident.kind.as_str())
        .arg(incident.verdict.as_str())
        .arg(incident.started_at)
        .arg(i64::from(incident.failed_probes))
        .arg(incident.first_error.as_deref())
        .arg(incident.opened_by.as_ref().map(|o| o.instance.as_str()))
        .arg(incident.opened_by.as_ref().map(|o| o.region.as_str()))
}

/// Only an open incident takes failures: an unknown or closed id is
/// `StoreError::Db(RowNotFound)`. A failure without an error sample keeps the previous
/// `last_error`.
pub async fn note_failure<B: Backend>(
    store: &B,
    id: i64,
    verdict: Verdict,
    last_error: Option<&str>,
) -> Result<(), StoreError> {
    let note = sqlx::query(NOTE_FAILURE)
        .arg(id)
        .arg(verdict.as_str())
        .arg(last_error);
    require_row(write(store, note).await?)
}

/// Closing a closed incident keeps its first end time; an unknown id is `RowNotFound`.
pub async fn close<B: Backend>(store: &B, id: i64, ended_at: Millis) -> Result<(), StoreError> {
    let updated = write(store, sqlx::query(CLOSE_INCIDENT).arg(id).arg(ended_at)).await?;
    require_if_untouched(store, id, updated).await
}

/// Reopening an open incident changes nothing; an unknown id is `RowNotFound`. When another
/// incident of the same monitor is open, the one-open-per-monitor index refuses the change and
/// this returns that database error (a unique violation), leaving both as they were: the
/// caller should note the failure on the open one instead.
pub async fn reopen<B: Backend>(store: &B, id: i64) -> Result<(), StoreError> {
    let updated = write(store, sqlx::query(REOPEN_INCIDENT).arg(id)).await?;
    require_if_untouched(store, id, updated).await
}

/// After an UPDATE that touched `updated` rows: tells "no such incident" (`RowNotFound`) from
/// "nothing to change".
async fn require_if_untouched<B: Backend>(
    store: &B,
    id: i64,
    updated: u64,
) -> Result<(), StoreError> {
    if updated > 0 {
        return Ok(());
    }
    let found = sqlx::query(INCIDENT_EXISTS)
        .arg(id)
        .fetch_optional(store.writer())
        .await?;
    require_row(u64::from(found.is_some()))
}

pub async fn incident<B: Backend>(store: &B, id: i64) -> Result<Option<Incident>, StoreError> {
    read_one(store, sqlx::query(INCIDENT_BY_ID).arg(id), rows::incident).await
}

/// Newest first by start time, then by id so that equal starts page stably.
pub async fn list<B: Backend>(
    store: &B,
    filter: &IncidentFilter,
) -> Result<Vec<Incident>, StoreError> {
    let open = filter.state.map(|state| state == IncidentState::Open);
    let list = sqlx::query(LIST_INCIDENTS)
        .arg(filter.monitor.as_deref())
        .arg(open)
        .arg(i64::from(filter.limit))
        .arg(i64::from(filter.offset));
    read_all(store, list, rows::incident).await
}

pub async fn between<B: Backend>(
    store: &B,
    from: Millis,
    to: Millis,
) -> Result<Vec<Incident>, StoreError> {
    let between = sqlx::query(INCIDENTS_BETWEEN).arg(from).arg(to);
    read_all(store, between, rows::incident).await
}

/// The snapshot must be JSON (anything else is refused as `Corrupt`): checking on the way in
/// keeps one bad writer from breaking every later start-up.
pub async fn save_state<B: Backend>(
    store: &B,
    monitor: &str,
    snapshot: &str,
) -> Result<(), StoreError> {
    check_snapshot(monitor, snapshot)?;
    write(store, sqlx::query(PUT_STATE).arg(monitor).arg(snapshot)).await?;
    Ok(())
}

/// Snapshots saved together go [`STATES_PER_COMMIT`] to a transaction: one commit (one WAL
/// flush) per chunk instead of per monitor, and no transaction long enough to hold up the
/// writes of the probes still landing.
const STATES_PER_COMMIT: usize = 1_000;

/// Every snapshot is checked before any is written: one that is not JSON refuses the call.
pub async fn save_states<B: Backend>(
    store: &B,
    states: &[(&str, Cow<'_, str>)],
) -> Result<(), StoreError> {
    for (monitor, snapshot) in states {
        check_snapshot(monitor, snapshot)?;
    }
    for chunk in states.chunks(STATES_PER_COMMIT) {
        let mut tx = store.begin_write().await?;
        for (monitor, snapshot) in chunk {
            sqlx::query(PUT_STATE)
                .arg(*monitor)
                .arg(snapshot.as_ref())
                .execute(on(&mut tx))
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Sorted by monitor id. A snapshot that is not JSON text comes back `Unreadable`.
pub async fn load_states<B: Backend>(store: &B) -> Result<Vec<(String, SavedState)>, StoreError> {
    read_all(store, sqlx::query(LOAD_STATES), rows::saved_state).await
}

/// The snapshot is kept byte for byte as found, beside `reason`.
pub async fn quarantine_state<B: Backend>(
    store: &B,
    monitor: &str,
    reason: &str,
    at: Millis,
) -> Result<(), StoreError> {
    let set_aside = dynamic_sql(format!(
        "INSERT INTO quarantined_state (monitor, snapshot, reason, at)
         SELECT monitor, {}, $2, $3 FROM monitor_state WHERE monitor = $1",
        B::Db::SNAPSHOT_BYTES
    ));
    let mut tx = store.begin_write().await?;
    sqlx::query(set_aside)
        .arg(monitor)
        .arg(reason)
        .arg(at)
        .execute(on(&mut tx))
        .await?;
    sqlx::query(DROP_STATE)
        .arg(monitor)
        .execute(on(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Closed incidents that ended before `cutoff`; open ones stay.
pub async fn prune<B: Backend>(store: &B, cutoff: Millis) -> Result<u64, StoreError> {
    write(store, sqlx::query(PRUNE_CLOSED).arg(cutoff)).await
}

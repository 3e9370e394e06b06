//! Incidents and monitor state snapshots in PostgreSQL.
//!
//! The database enforces the one rule it can — at most one open incident per monitor, by a
//! partial unique index — and `open_incident` relies on it rather than on a lock of its own, so
//! it holds however many processes open incidents at once. When incidents open, flap or close
//! is the monitor's decision.

use super::PostgresStore;
use crate::store::rows::{self, check_snapshot};
use crate::store::{Incident, IncidentFilter, IncidentState, NewIncident, SavedState, StoreError};
use crate::time::Millis;
use crate::verdict::Verdict;

/// A macro rather than a const so `concat!` can build whole static queries from it. An
/// incident is read with its official acknowledgement, when it has one.
macro_rules! incident_select {
    () => {
        "SELECT i.id, i.monitor, i.provider, i.kind, i.verdict, i.started_at, i.ended_at, \
         i.failed_probes, i.first_error, i.last_error, i.official_id, \
         o.title AS official_title, o.url AS official_url, \
         o.acknowledged_at AS official_acknowledged_at, o.resolved_at AS official_resolved_at \
         FROM incidents i LEFT JOIN official_incidents o ON o.id = i.official_id"
    };
}

const INCIDENT_BY_ID: &str = concat!(incident_select!(), " WHERE i.id = $1");

/// $2 is true for open incidents only, false for closed ones only, NULL for both.
const LIST_INCIDENTS: &str = concat!(
    incident_select!(),
    " WHERE ($1::text IS NULL OR i.monitor = $1)
        AND ($2::boolean IS NULL OR (i.ended_at IS NULL) = $2)
      ORDER BY i.started_at DESC, i.id DESC
      LIMIT $3 OFFSET $4"
);

/// Incidents open at some instant of [$1, $2], newest first (the status page's window).
pub(super) const INCIDENTS_BETWEEN: &str = concat!(
    incident_select!(),
    " WHERE i.started_at <= $2 AND (i.ended_at IS NULL OR i.ended_at >= $1)
      ORDER BY i.started_at DESC, i.id DESC"
);

/// Inserts unless the monitor has an open incident; answers with the new id, or nothing.
/// A concurrent opener's uncommitted insert makes this wait for its outcome, not fail.
const INSERT_INCIDENT: &str = "INSERT INTO incidents
     (monitor, provider, kind, verdict, started_at, failed_probes, first_error)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (monitor) WHERE ended_at IS NULL DO NOTHING
     RETURNING id";

const OPEN_INCIDENT_OF: &str = "SELECT id FROM incidents WHERE monitor = $1 AND ended_at IS NULL";

/// How often `open_incident` retries when the open incident it collided with was closed before
/// it could read its id. Each round needs another process to open and close an incident of the
/// same monitor in between, so a third round is already beyond any real schedule.
const OPEN_ATTEMPTS: usize = 3;

const NOTE_FAILURE: &str = "UPDATE incidents
     SET failed_probes = failed_probes + 1, verdict = $2, last_error = COALESCE($3, last_error)
     WHERE id = $1 AND ended_at IS NULL";

const CLOSE_INCIDENT: &str =
    "UPDATE incidents SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL";

const REOPEN_INCIDENT: &str = "UPDATE incidents SET ended_at = NULL WHERE id = $1";

const INCIDENT_EXISTS: &str = "SELECT 1::bigint FROM incidents WHERE id = $1";

const PUT_STATE: &str = "INSERT INTO monitor_state (monitor, snapshot) VALUES ($1, $2)
     ON CONFLICT (monitor) DO UPDATE SET snapshot = excluded.snapshot";

impl PostgresStore {
    pub(super) async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError> {
        for _ in 0..OPEN_ATTEMPTS {
            let inserted: Option<i64> = sqlx::query_scalar(INSERT_INCIDENT)
                .bind(&incident.monitor)
                .bind(&incident.provider)
                .bind(incident.kind.as_str())
                .bind(incident.verdict.as_str())
                .bind(incident.started_at)
                .bind(i64::from(incident.failed_probes))
                .bind(&incident.first_error)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(id) = inserted {
                return Ok(id);
            }
            // Another incident of this monitor is open (and committed, or the insert would
            // still be waiting): that one is the answer.
            let open: Option<i64> = sqlx::query_scalar(OPEN_INCIDENT_OF)
                .bind(&incident.monitor)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(id) = open {
                return Ok(id);
            }
        }
        Err(StoreError::Db(sqlx::Error::RowNotFound))
    }

    pub(super) async fn note_incident_failure(
        &self,
        id: i64,
        verdict: Verdict,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(NOTE_FAILURE)
            .bind(id)
            .bind(verdict.as_str())
            .bind(last_error)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    pub(super) async fn close_incident(&self, id: i64, ended_at: Millis) -> Result<(), StoreError> {
        let updated = sqlx::query(CLOSE_INCIDENT)
            .bind(id)
            .bind(ended_at)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            self.require_incident(id).await?;
        }
        Ok(())
    }

    pub(super) async fn reopen_incident(&self, id: i64) -> Result<(), StoreError> {
        let updated = sqlx::query(REOPEN_INCIDENT)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            self.require_incident(id).await?;
        }
        Ok(())
    }

    /// Tells "no such incident" (`RowNotFound`) from "nothing to change" after an UPDATE that
    /// touched no row.
    async fn require_incident(&self, id: i64) -> Result<(), StoreError> {
        let found: Option<i64> = sqlx::query_scalar(INCIDENT_EXISTS)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        found
            .map(|_| ())
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
    }

    pub(super) async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query(INCIDENT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::incident).transpose()
    }

    pub(super) async fn incidents(
        &self,
        filter: &IncidentFilter,
    ) -> Result<Vec<Incident>, StoreError> {
        let open = filter.state.map(|state| state == IncidentState::Open);
        let rows = sqlx::query(LIST_INCIDENTS)
            .bind(&filter.monitor)
            .bind(open)
            .bind(i64::from(filter.limit))
            .bind(i64::from(filter.offset))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::incident).collect()
    }

    pub(super) async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(INCIDENTS_BETWEEN)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::incident).collect()
    }

    pub(super) async fn save_monitor_state(
        &self,
        monitor: &str,
        snapshot: &str,
    ) -> Result<(), StoreError> {
        check_snapshot(monitor, snapshot)?;
        sqlx::query(PUT_STATE)
            .bind(monitor)
            .bind(snapshot)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn load_monitor_states(
        &self,
    ) -> Result<Vec<(String, SavedState)>, StoreError> {
        let rows = sqlx::query("SELECT monitor, snapshot FROM monitor_state ORDER BY monitor")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::saved_state).collect()
    }

    pub(super) async fn quarantine_monitor_state(
        &self,
        monitor: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO quarantined_state (monitor, snapshot, reason, at) \
             SELECT monitor, convert_to(snapshot, 'UTF8'), $2, $3 \
               FROM monitor_state WHERE monitor = $1",
        )
        .bind(monitor)
        .bind(reason)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM monitor_state WHERE monitor = $1")
            .bind(monitor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

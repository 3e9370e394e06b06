//! Writing copied rows into PostgreSQL for `isdown db copy`: every table, keyed so that a rerun
//! writes nothing twice.
//!
//! Monitors are matched by their id (this database's own keys are used); results are inserted
//! unless stored already; rollups, snapshots and the rows with ids of their own (incidents,
//! official incidents, quarantined snapshots, alert groups, outbox entries) are inserted with
//! their ids kept — ids appear in alerts and URLs — or, when the id is there already, brought
//! up to date with the source's values. A row with the same id that is plainly another row (an
//! incident of another monitor or start, another group key, …) is not touched: its id comes
//! back in [`Imported::refused`] and the copy stops there. Text passes the store's scrub like
//! every other write.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sqlx::Transaction;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;

use super::{PostgresStore, results};
use crate::store::rollup::Counts;
use crate::store::rows::StoredRow;
use crate::store::transfer::{AlertGroupRow, MonitorRow, QuarantinedRow, RollupRow, StateRow};
use crate::store::{
    Incident, OutboxEntry, ResultRecord, StoreError, StoredOfficialIncident, scrub,
};
use crate::time::Millis;

/// What one import call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Rows inserted or brought up to date.
    pub written: u64,
    /// Ids present here as another row (see the module doc); nothing was written for them.
    pub refused: Vec<i64>,
}

impl Imported {
    /// Compares the ids written with the ids sent.
    fn of(sent: impl IntoIterator<Item = i64>, written: &[i64]) -> Imported {
        Imported {
            written: written.len() as u64,
            refused: sent
                .into_iter()
                .filter(|id| !written.contains(id))
                .collect(),
        }
    }
}

/// The identity tables whose ids the copy keeps, each with its identity sequence.
const ID_TABLES: [&str; 5] = [
    "incidents",
    "official_incidents",
    "quarantined_state",
    "alert_groups",
    "outbox",
];

const UPSERT_MONITORS: &str = "INSERT INTO monitors (id, provider, model, probe)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
     ON CONFLICT (id) DO UPDATE SET
         provider = COALESCE(excluded.provider, monitors.provider),
         model = COALESCE(excluded.model, monitors.model),
         probe = COALESCE(excluded.probe, monitors.probe)";

const UPSERT_OFFICIAL: &str = "INSERT INTO official_incidents
     (id, provider, source_id, title, url, impact, started_at, acknowledged_at, resolved_at,
      first_seen_at)
     OVERRIDING SYSTEM VALUE
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (id) DO UPDATE SET
         title = excluded.title, url = excluded.url, impact = excluded.impact,
         started_at = excluded.started_at, acknowledged_at = excluded.acknowledged_at,
         resolved_at = excluded.resolved_at
     WHERE official_incidents.provider = excluded.provider
       AND official_incidents.source_id = excluded.source_id
     RETURNING id";

const UPSERT_INCIDENT: &str = "INSERT INTO incidents
     (id, monitor, provider, kind, verdict, started_at, ended_at, failed_probes, first_error,
      last_error, official_id, opened_by, opened_in)
     OVERRIDING SYSTEM VALUE
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (id) DO UPDATE SET
         verdict = excluded.verdict, ended_at = excluded.ended_at,
         failed_probes = excluded.failed_probes, first_error = excluded.first_error,
         last_error = excluded.last_error,
         official_id = COALESCE(incidents.official_id, excluded.official_id)
     WHERE incidents.monitor = excluded.monitor AND incidents.started_at = excluded.started_at
     RETURNING id";

const UPSERT_STATE: &str = "INSERT INTO monitor_state (monitor, snapshot) VALUES ($1, $2)
     ON CONFLICT (monitor) DO UPDATE SET snapshot = excluded.snapshot";

const UPSERT_QUARANTINED: &str = "INSERT INTO quarantined_state (id, monitor, snapshot, reason, at)
     OVERRIDING SYSTEM VALUE
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET reason = excluded.reason
     WHERE quarantined_state.monitor = excluded.monitor AND quarantined_state.at = excluded.at
     RETURNING id";

const ADD_MEMBERS: &str = "INSERT INTO alert_group_incidents (group_id, incident_id)
     SELECT $1, * FROM UNNEST($2::bigint[]) ON CONFLICT DO NOTHING";

const UPSERT_GROUP: &str = "INSERT INTO alert_groups
     (id, dedup_key, kind, opened_at, last_sent_at, resolved_at)
     OVERRIDING SYSTEM VALUE
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET
         last_sent_at = excluded.last_sent_at, resolved_at = excluded.resolved_at
     WHERE alert_groups.dedup_key = excluded.dedup_key
     RETURNING id";

const UPSERT_OUTBOX: &str = "INSERT INTO outbox
     (id, channel, dedup_key, event, payload, created_at, attempts, next_attempt_at,
      delivered_at, failed_at, last_error)
     OVERRIDING SYSTEM VALUE
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (id) DO UPDATE SET
         attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
         delivered_at = excluded.delivered_at, failed_at = excluded.failed_at,
         last_error = excluded.last_error
     WHERE outbox.channel = excluded.channel AND outbox.dedup_key = excluded.dedup_key
       AND outbox.event = excluded.event AND outbox.created_at = excluded.created_at
     RETURNING id";

/// Runs each row's upsert inside `tx`; answers the ids of the rows written (an upsert that
/// found its id taken by another row answers none).
async fn upsert_each<'r, T>(
    tx: &mut Transaction<'static, Postgres>,
    rows: &'r [T],
    upsert: impl Fn(&'r T) -> Query<'r, Postgres, PgArguments>,
) -> Result<Vec<i64>, StoreError> {
    let mut written = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(row) = upsert(row).fetch_optional(&mut **tx).await? {
            written.push(row.int("id")?);
        }
    }
    Ok(written)
}

impl PostgresStore {
    pub async fn import_monitors(&self, monitors: &[MonitorRow]) -> Result<u64, StoreError> {
        let column = |f: fn(&MonitorRow) -> Option<&str>| -> Vec<Option<&str>> {
            monitors.iter().map(f).collect()
        };
        let done = sqlx::query(UPSERT_MONITORS)
            .bind(column(|m| Some(m.id.as_str())))
            .bind(column(|m| m.provider.as_deref()))
            .bind(column(|m| m.model.as_deref()))
            .bind(column(|m| m.probe.as_deref()))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Inserts the results not stored yet; the rollups come separately, as they were.
    pub async fn import_results(&self, rows: &[ResultRecord]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let rows = scrub::results(rows);
        let mut tx = self.pool.begin().await?;
        let keys = self
            .intern_monitors(&mut tx, rows.iter().map(|r| r.monitor_id.as_str()))
            .await?;
        let inserted = results::insert_results(&mut tx, &keys, &rows).await?;
        tx.commit().await?;
        self.keys.remember(keys);
        Ok(inserted.len() as u64)
    }

    /// Writes rollup rows with the source's counts, replacing any counts already there.
    pub async fn import_rollups(&self, rows: &[RollupRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let keys = self
            .intern_monitors(&mut tx, rows.iter().map(|r| r.monitor.as_str()))
            .await?;
        let mut buckets: BTreeMap<(i64, crate::store::rollup::Resolution, Millis), Counts> =
            BTreeMap::new();
        for row in rows {
            let key = keys
                .get(row.monitor.as_str())
                .copied()
                .ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
            buckets.insert((key, row.resolution, row.bucket_start), row.counts);
        }
        results::write_rollups(&mut tx, &buckets, results::RollupWrite::Replace).await?;
        tx.commit().await?;
        self.keys.remember(keys);
        Ok(buckets.len() as u64)
    }

    pub async fn import_official(
        &self,
        rows: &[StoredOfficialIncident],
    ) -> Result<Imported, StoreError> {
        let scrubbed: Vec<StoredOfficialIncident> = rows
            .iter()
            .map(|row| StoredOfficialIncident {
                incident: scrub::official(std::slice::from_ref(&row.incident)).remove(0),
                ..row.clone()
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        let written = upsert_each(&mut tx, &scrubbed, |row| {
            let o = &row.incident;
            sqlx::query(UPSERT_OFFICIAL)
                .bind(row.id)
                .bind(&row.provider)
                .bind(&o.source_id)
                .bind(&o.title)
                .bind(&o.url)
                .bind(&o.impact)
                .bind(o.started_at)
                .bind(o.acknowledged_at)
                .bind(o.resolved_at)
                .bind(row.first_seen_at)
        })
        .await?;
        tx.commit().await?;
        Ok(Imported::of(rows.iter().map(|r| r.id), &written))
    }

    /// Incidents with their official links (copy the official incidents first).
    pub async fn import_incidents(&self, rows: &[Incident]) -> Result<Imported, StoreError> {
        let scrubbed: Vec<Incident> = rows
            .iter()
            .map(|incident| Incident {
                first_error: scrub::error_sample(incident.first_error.as_deref()).map(Cow::into),
                last_error: scrub::error_sample(incident.last_error.as_deref()).map(Cow::into),
                ..incident.clone()
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        let written = upsert_each(&mut tx, &scrubbed, |incident| {
            sqlx::query(UPSERT_INCIDENT)
                .bind(incident.id)
                .bind(&incident.monitor)
                .bind(&incident.provider)
                .bind(incident.kind.as_str())
                .bind(incident.verdict.as_str())
                .bind(incident.started_at)
                .bind(incident.ended_at)
                .bind(i64::from(incident.failed_probes))
                .bind(&incident.first_error)
                .bind(&incident.last_error)
                .bind(incident.official.as_ref().map(|o| o.official_id))
                .bind(incident.opened_by.as_ref().map(|o| &o.instance))
                .bind(incident.opened_by.as_ref().map(|o| &o.region))
        })
        .await?;
        tx.commit().await?;
        Ok(Imported::of(rows.iter().map(|i| i.id), &written))
    }

    /// Monitor snapshots (JSON text), replacing any saved for the same monitor.
    pub async fn import_states(&self, rows: &[(String, String)]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        for (monitor, snapshot) in rows {
            sqlx::query(UPSERT_STATE)
                .bind(monitor)
                .bind(scrub::snapshot(snapshot).as_ref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Snapshots set aside, kept byte for byte as found.
    pub async fn import_quarantined(
        &self,
        rows: &[QuarantinedRow],
    ) -> Result<Imported, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = upsert_each(&mut tx, rows, |row| {
            sqlx::query(UPSERT_QUARANTINED)
                .bind(row.id)
                .bind(&row.monitor)
                .bind(&row.snapshot)
                .bind(&row.reason)
                .bind(row.at)
        })
        .await?;
        tx.commit().await?;
        Ok(Imported::of(rows.iter().map(|r| r.id), &written))
    }

    /// Snapshots that are not JSON text (damaged in the source), set aside as found with
    /// `reason` — once: a snapshot already set aside for its monitor is not added again — and
    /// gone from the monitor's state, so it starts afresh. Answers how many were set aside now.
    pub async fn import_unreadable_states(
        &self,
        rows: &[StateRow],
        reason: &str,
        at: Millis,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for row in rows {
            added += sqlx::query(
                "INSERT INTO quarantined_state (monitor, snapshot, reason, at)
                 SELECT $1, $2, $3, $4
                  WHERE NOT EXISTS (SELECT 1 FROM quarantined_state
                                     WHERE monitor = $1 AND snapshot = $2)",
            )
            .bind(&row.monitor)
            .bind(&row.snapshot)
            .bind(reason)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM monitor_state WHERE monitor = $1")
                .bind(&row.monitor)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Groups with their member incidents (members already there are kept).
    pub async fn import_alert_groups(
        &self,
        rows: &[AlertGroupRow],
    ) -> Result<Imported, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = upsert_each(&mut tx, rows, |group| {
            sqlx::query(UPSERT_GROUP)
                .bind(group.id)
                .bind(&group.dedup_key)
                .bind(&group.kind)
                .bind(group.opened_at)
                .bind(group.last_sent_at)
                .bind(group.resolved_at)
        })
        .await?;
        for group in rows.iter().filter(|g| written.contains(&g.id)) {
            sqlx::query(ADD_MEMBERS)
                .bind(group.id)
                .bind(&group.incidents)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Imported::of(rows.iter().map(|g| g.id), &written))
    }

    pub async fn import_outbox(&self, rows: &[OutboxEntry]) -> Result<Imported, StoreError> {
        let scrubbed: Vec<OutboxEntry> = rows
            .iter()
            .map(|entry| OutboxEntry {
                payload: scrub::json_text(&entry.payload),
                last_error: scrub::error_sample(entry.last_error.as_deref()).map(Cow::into),
                ..entry.clone()
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        let written = upsert_each(&mut tx, &scrubbed, |entry| {
            sqlx::query(UPSERT_OUTBOX)
                .bind(entry.id)
                .bind(&entry.channel)
                .bind(&entry.dedup_key)
                .bind(&entry.event)
                .bind(&entry.payload)
                .bind(entry.created_at)
                .bind(i64::from(entry.attempts))
                .bind(entry.next_attempt_at)
                .bind(entry.delivered_at)
                .bind(entry.failed_at)
                .bind(&entry.last_error)
        })
        .await?;
        tx.commit().await?;
        Ok(Imported::of(rows.iter().map(|e| e.id), &written))
    }

    /// Moves every identity sequence past the highest id now stored (and never back), so rows
    /// created after the copy get ids no copied row has, and an id is still never handed out
    /// twice.
    pub async fn advance_identities(&self) -> Result<(), StoreError> {
        for table in ID_TABLES {
            sqlx::query(crate::store::dynamic_sql(format!(
                "SELECT setval(seq, GREATEST(
                     COALESCE((SELECT MAX(id) FROM {table}), 0),
                     COALESCE(pg_sequence_last_value(seq::regclass), 0),
                     1))
                   FROM (SELECT pg_get_serial_sequence('{table}', 'id') AS seq) AS s"
            )))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_ids_are_those_sent_but_not_written() {
        let imported = Imported::of([1, 2, 3], &[1, 3]);
        assert_eq!(imported.written, 2);
        assert_eq!(imported.refused, vec![2]);
    }
}

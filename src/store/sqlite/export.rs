//! Reading every stored row out of SQLite for `isdown db copy`, in the back-end-neutral form of
//! `store::transfer`: large tables a page at a time, in primary-key order (each page is one
//! short read, so a running `serve` on the same file is never held up); small ones whole.
//!
//! Reads only. Rows decode exactly as the store's own reads decode them, so a damaged row stops
//! the copy with [`StoreError::Corrupt`] naming it instead of being carried over.

use sqlx::Row;

use super::{SqliteStore, read_error};
use crate::store::rollup::{
    COUNTER_COLUMNS, Counts, HISTOGRAM_SLOTS, Resolution, histogram_columns,
};
use crate::store::sql::incidents::INCIDENTS_AFTER;
use crate::store::sql::outbox::ENTRIES_AFTER;
use crate::store::transfer::{
    AlertGroupRow, Cursor, MonitorRow, QuarantinedRow, QueueLeft, RollupRow, StateRow,
};
use crate::store::{
    Incident, OutboxEntry, ResultRecord, StoreError, StoredOfficialIncident, dynamic_sql,
};

/// Results after (monitor key ?1, time ?2) in key order; columns 0–6 as `decode_result` reads
/// them, then the monitor id and key.
const RESULTS_AFTER: &str = "SELECT r.at, r.verdict, r.blame, r.status, r.latency_us, r.ttft_us,
            r.explanation, m.id, r.monitor_key, r.region
       FROM results r JOIN monitors m ON m.key = r.monitor_key
      WHERE (r.monitor_key, r.at) > (?1, ?2)
      ORDER BY r.monitor_key, r.at
      LIMIT ?3";

/// Rollups after (resolution ?1, bucket ?2, monitor key ?3) in key order.
static ROLLUPS_AFTER: std::sync::LazyLock<sqlx::SqlStr> = std::sync::LazyLock::new(|| {
    let counters: Vec<String> = COUNTER_COLUMNS
        .iter()
        .map(|c| format!("r.{c}"))
        .chain(histogram_columns().map(|c| format!("r.{c}")))
        .collect();
    dynamic_sql(format!(
        "SELECT r.resolution, r.bucket_start, r.monitor_key, m.id, {}
           FROM rollups r JOIN monitors m ON m.key = r.monitor_key
          WHERE (r.resolution, r.bucket_start, r.monitor_key) > (?1, ?2, ?3)
          ORDER BY r.resolution, r.bucket_start, r.monitor_key
          LIMIT ?4",
        counters.join(", ")
    ))
});

/// The first cursor: before every key (keys and times are never `i64::MIN`).
const START: Cursor = Cursor([i64::MIN; 3]);

impl SqliteStore {
    /// What the durable queue holds (not copied: see `store::copy`).
    pub async fn export_queue_left(&self) -> Result<QueueLeft, StoreError> {
        let (batches, open_batches, files): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM queue_batches),
                    (SELECT COUNT(*) FROM queue_batches
                      WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling')),
                    (SELECT COUNT(*) FROM queue_files)",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(read_error)?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueLeft {
            batches: count(batches),
            open_batches: count(open_batches),
            files: count(files),
        })
    }

    pub async fn export_monitors(&self) -> Result<Vec<MonitorRow>, StoreError> {
        type Row = (String, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> =
            sqlx::query_as("SELECT id, provider, model, probe FROM monitors ORDER BY key")
                .fetch_all(&self.reader)
                .await
                .map_err(read_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, provider, model, probe)| MonitorRow {
                id,
                provider,
                model,
                probe,
            })
            .collect())
    }

    /// Up to `limit` results after `after` (`None`: from the first), and where to continue.
    pub async fn export_results(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<ResultRecord>, Option<Cursor>), StoreError> {
        let Cursor([key, at, _]) = after.unwrap_or(START);
        let rows = sqlx::query(RESULTS_AFTER)
            .bind(key)
            .bind(at)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        let mut records = Vec::with_capacity(rows.len());
        let mut next = None;
        for row in &rows {
            let monitor: String = row.try_get(7).map_err(read_error)?;
            let record = crate::store::rows::result(&monitor, row)?;
            next = Some(Cursor([row.try_get(8).map_err(read_error)?, record.at, 0]));
            records.push(record);
        }
        Ok((records, next))
    }

    /// Up to `limit` rollup rows after `after`, and where to continue.
    pub async fn export_rollups(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<RollupRow>, Option<Cursor>), StoreError> {
        let Cursor([resolution, start, key]) = after.unwrap_or(START);
        let rows = sqlx::query(ROLLUPS_AFTER.clone())
            .bind(resolution)
            .bind(start)
            .bind(key)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        let mut rollups = Vec::with_capacity(rows.len());
        let mut next = None;
        for row in &rows {
            let code: i64 = row.try_get(0).map_err(read_error)?;
            let bucket_start = row.try_get(1).map_err(read_error)?;
            let key: i64 = row.try_get(2).map_err(read_error)?;
            let count = |i: usize| row.try_get::<i64, _>(4 + i).map_err(read_error);
            let mut histogram = [0i64; HISTOGRAM_SLOTS];
            for (slot, value) in histogram.iter_mut().enumerate() {
                *value = count(COUNTER_COLUMNS.len() + slot)?;
            }
            rollups.push(RollupRow {
                monitor: row.try_get(3).map_err(read_error)?,
                resolution: Resolution::from_code(code).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown rollup resolution {code}"))
                })?,
                bucket_start,
                counts: Counts {
                    total: count(0)?,
                    healthy: count(1)?,
                    degraded: count(2)?,
                    provider_failed: count(3)?,
                    other_failed: count(4)?,
                    histogram,
                },
            });
            next = Some(Cursor([code, bucket_start, key]));
        }
        Ok((rollups, next))
    }

    /// Up to `limit` incidents with an id above `after`, in id order.
    pub async fn export_incidents(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(INCIDENTS_AFTER)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(crate::store::rows::incident).collect()
    }

    pub async fn export_official(&self) -> Result<Vec<StoredOfficialIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, provider, source_id, title, url, impact, started_at, acknowledged_at,
                    resolved_at, first_seen_at
               FROM official_incidents ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(crate::store::rows::official).collect()
    }

    /// Every monitor's snapshot as stored, whatever it holds.
    pub async fn export_states(&self) -> Result<Vec<StateRow>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT monitor, CAST(snapshot AS BLOB) FROM monitor_state ORDER BY monitor",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(read_error)?;
        Ok(rows
            .into_iter()
            .map(|(monitor, snapshot)| StateRow { monitor, snapshot })
            .collect())
    }

    pub async fn export_quarantined(&self) -> Result<Vec<QuarantinedRow>, StoreError> {
        type Row = (i64, String, Option<Vec<u8>>, String, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, monitor, CAST(snapshot AS BLOB), reason, at
               FROM quarantined_state ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(read_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, monitor, snapshot, reason, at)| QuarantinedRow {
                id,
                monitor,
                snapshot,
                reason,
                at,
            })
            .collect())
    }

    /// Every alert group, resolved or not (resolved ones are pruned within days), with members.
    pub async fn export_alert_groups(&self) -> Result<Vec<AlertGroupRow>, StoreError> {
        type Row = (i64, String, String, i64, i64, Option<i64>, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT g.id, g.dedup_key, g.kind, g.opened_at, g.last_sent_at, g.resolved_at,
                    m.incident_id
               FROM alert_groups g
               LEFT JOIN alert_group_incidents m ON m.group_id = g.id
              ORDER BY g.id, m.incident_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(read_error)?;
        let mut groups: Vec<AlertGroupRow> = Vec::new();
        for (id, dedup_key, kind, opened_at, last_sent_at, resolved_at, incident) in rows {
            if groups.last().is_none_or(|g| g.id != id) {
                groups.push(AlertGroupRow {
                    id,
                    dedup_key,
                    kind,
                    opened_at,
                    last_sent_at,
                    resolved_at,
                    incidents: Vec::new(),
                });
            }
            if let (Some(incident), Some(group)) = (incident, groups.last_mut()) {
                group.incidents.push(incident);
            }
        }
        Ok(groups)
    }

    /// Up to `limit` outbox entries with an id above `after`, in id order.
    pub async fn export_outbox(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(ENTRIES_AFTER)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter().map(crate::store::rows::outbox_entry).collect()
    }
}

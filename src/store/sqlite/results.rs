//! Results and rollups in SQLite: writing a batch (raw rows plus the minute, hour and day
//! rollups it touches, in one transaction) and the reads built on them (recent results,
//! uptime, daily latency).
//!
//! The arithmetic (buckets, counters, percentiles) lives in `rollup`; this file only moves
//! numbers in and out of SQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use sqlx::Row;

use super::{BEGIN_WRITE, MultiRow, SqliteStore, dynamic_sql, read_error, statement_chunks};
use crate::store::rollup::{
    self, COUNTER_COLUMNS, Counts, Resolution, first_bucket_within, fraction, histogram_columns,
};
use crate::store::{DailyLatency, MonitorRecord, ResultRecord, StoreError, Uptime};
use crate::store::{codes, rows};
use crate::time::{DAY_MS, HOUR_MS, Millis};

const PUT_MONITOR: &str =
    "INSERT INTO monitors (id, provider, model, probe) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (id) DO UPDATE
     SET provider = excluded.provider, model = excluded.model, probe = excluded.probe
     RETURNING key";

/// A key for a monitor id, new or existing (the no-op update makes RETURNING answer for an
/// existing row too).
const INTERN_MONITOR: &str = "INSERT INTO monitors (id) VALUES (?1)
     ON CONFLICT (id) DO UPDATE SET id = excluded.id
     RETURNING key";

/// Answers with the rows it really inserted, so duplicates are left out of the rollups.
static INSERT_RESULTS: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO results
         (monitor_key, at, verdict, blame, status, latency_us, ttft_us, explanation)",
        8,
        "ON CONFLICT DO NOTHING RETURNING monitor_key, at",
    )
});

const RECENT_RESULTS: &str = "SELECT at, verdict, blame, status, latency_us, ttft_us, explanation
     FROM results
     WHERE monitor_key = ?1
     ORDER BY at DESC
     LIMIT ?2";

/// Adds buckets' counts to their rollup rows, creating them as needed.
static UPSERT_ROLLUPS: LazyLock<MultiRow> = LazyLock::new(|| {
    let columns: Vec<String> = COUNTER_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(histogram_columns())
        .collect();
    let additions = columns
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    MultiRow::new(
        &format!(
            "INSERT INTO rollups (resolution, bucket_start, monitor_key, {})",
            columns.join(", ")
        ),
        3 + columns.len(),
        &format!("ON CONFLICT (resolution, bucket_start, monitor_key) DO UPDATE SET {additions}"),
    )
});

/// One monitor's rollup rows of resolution ?2 whose buckets start in [?3, ?5], ?4 being the
/// bucket width. Rollups are keyed time first, so a range of one monitor's buckets is read as
/// one primary-key lookup per bucket: the recursive CTE lists the bucket starts, and CROSS JOIN
/// keeps it the outer loop. Callers add the select list (over `r`) and the FROM/WHERE below.
macro_rules! one_monitor_buckets {
    () => {
        "WITH RECURSIVE starts (bucket_start) AS (
             SELECT ?3
             UNION ALL
             SELECT bucket_start + ?4 FROM starts WHERE bucket_start + ?4 <= ?5
         )"
    };
}

macro_rules! one_monitor_buckets_from {
    () => {
        " FROM starts CROSS JOIN rollups AS r
          WHERE r.resolution = ?2 AND r.bucket_start = starts.bucket_start
            AND r.monitor_key = ?1 AND starts.bucket_start <= ?5"
    };
}

/// Day buckets with their histograms, for `daily_latency`.
static DAY_HISTOGRAMS: LazyLock<sqlx::SqlStr> = LazyLock::new(|| {
    let columns: Vec<String> = histogram_columns().map(|c| format!("r.{c}")).collect();
    dynamic_sql(format!(
        "{} SELECT r.bucket_start, {} {} ORDER BY r.bucket_start",
        one_monitor_buckets!(),
        columns.join(", "),
        one_monitor_buckets_from!(),
    ))
});

/// Healthy and provider-failed sums over the buckets from ?6 (the short window) and from ?3
/// (the long one) up to ?5.
const WINDOW_SUMS: &str = concat!(
    one_monitor_buckets!(),
    " SELECT
        COALESCE(SUM(CASE WHEN r.bucket_start >= ?6 THEN r.healthy END), 0),
        COALESCE(SUM(CASE WHEN r.bucket_start >= ?6 THEN r.provider_failed END), 0),
        COALESCE(SUM(r.healthy), 0),
        COALESCE(SUM(r.provider_failed), 0)",
    one_monitor_buckets_from!(),
);

impl SqliteStore {
    pub(super) async fn register_monitors(
        &self,
        monitors: &[MonitorRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let mut keys = Vec::with_capacity(monitors.len());
        for monitor in monitors {
            let key: i64 = sqlx::query_scalar(PUT_MONITOR)
                .bind(&monitor.id)
                .bind(&monitor.provider)
                .bind(&monitor.model)
                .bind(&monitor.probe)
                .fetch_one(&mut *tx)
                .await?;
            keys.push((monitor.id.as_str(), key));
        }
        tx.commit().await?;
        self.remember_keys(keys);
        Ok(())
    }

    /// Keys the results, inserts them in multi-row statements, sums what the inserted ones add
    /// to each (resolution, bucket, monitor) in memory, and upserts every touched rollup row
    /// once — all in one transaction.
    pub(super) async fn record_results(&self, results: &[ResultRecord]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;

        let mut new_keys: HashMap<&str, i64> = HashMap::new();
        let mut keyed = Vec::with_capacity(results.len());
        for result in results {
            let id = result.monitor_id.as_str();
            let key = match self.cached_key(id).or_else(|| new_keys.get(id).copied()) {
                Some(key) => key,
                None => {
                    let key: i64 = sqlx::query_scalar(INTERN_MONITOR)
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    new_keys.insert(id, key);
                    key
                }
            };
            keyed.push((key, result));
        }

        // Ordered as the rollups primary key, so the upserts walk its B-tree in order.
        let mut buckets: BTreeMap<(Resolution, Millis, i64), Counts> = BTreeMap::new();
        let mut inserted: HashSet<(i64, Millis)> = HashSet::new();
        for chunk in statement_chunks(&keyed) {
            let mut insert = sqlx::query_as::<_, (i64, Millis)>(INSERT_RESULTS.sql(chunk.len()));
            for &(key, result) in chunk {
                // A healthy result needs no words, and most results are healthy.
                let explanation = if result.verdict.is_healthy() {
                    None
                } else {
                    result.explanation.as_deref()
                };
                insert = insert
                    .bind(key)
                    .bind(result.at)
                    .bind(codes::verdict_code(result.verdict))
                    .bind(result.blame.map(codes::blame_code))
                    .bind(result.status)
                    .bind(codes::ms_to_us(result.latency_ms))
                    .bind(codes::ms_to_us(result.ttft_ms))
                    .bind(explanation);
            }
            inserted.clear();
            inserted.extend(insert.fetch_all(&mut *tx).await?);
            for &(key, result) in chunk {
                // `remove`, so a result given twice in one batch is still counted once.
                if inserted.remove(&(key, result.at)) {
                    for resolution in Resolution::ALL {
                        let bucket = (resolution, resolution.bucket_start(result.at), key);
                        buckets.entry(bucket).or_default().add(result);
                    }
                }
            }
        }

        let buckets: Vec<_> = buckets.into_iter().collect();
        for chunk in statement_chunks(&buckets) {
            let mut upsert = sqlx::query(UPSERT_ROLLUPS.sql(chunk.len()));
            for ((resolution, start, key), counts) in chunk {
                upsert = upsert
                    .bind(resolution.code())
                    .bind(*start)
                    .bind(*key)
                    .bind(counts.total)
                    .bind(counts.healthy)
                    .bind(counts.degraded)
                    .bind(counts.provider_failed)
                    .bind(counts.other_failed);
                for count in counts.histogram {
                    upsert = upsert.bind(count);
                }
            }
            upsert.execute(&mut *tx).await?;
        }

        tx.commit().await?;
        // Only now: keys from a rolled-back transaction were never stored.
        self.remember_keys(new_keys);
        Ok(())
    }

    pub(super) async fn recent_results(
        &self,
        monitor: &str,
        limit: u32,
    ) -> Result<Vec<ResultRecord>, StoreError> {
        let Some(key) = self.key_of(monitor).await? else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(RECENT_RESULTS)
            .bind(key)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|row| rows::result(monitor, row)).collect()
    }

    pub(super) async fn uptime(&self, monitor: &str, now: Millis) -> Result<Uptime, StoreError> {
        let Some(key) = self.key_of(monitor).await? else {
            return Ok(Uptime::default());
        };
        let (h24, d7) = self
            .window_uptime(key, Resolution::Hour, now, 24 * HOUR_MS, 7 * DAY_MS)
            .await?;
        let (d30, d90) = self
            .window_uptime(key, Resolution::Day, now, 30 * DAY_MS, 90 * DAY_MS)
            .await?;
        Ok(Uptime { h24, d7, d30, d90 })
    }

    /// (short, long) uptime fractions from one resolution's buckets within each window.
    async fn window_uptime(
        &self,
        key: i64,
        resolution: Resolution,
        now: Millis,
        short: Millis,
        long: Millis,
    ) -> Result<(Option<f64>, Option<f64>), StoreError> {
        let (short_healthy, short_failed, long_healthy, long_failed): (i64, i64, i64, i64) =
            sqlx::query_as(WINDOW_SUMS)
                .bind(key)
                .bind(resolution.code())
                .bind(first_bucket_within(resolution, now, long))
                .bind(resolution.width())
                .bind(now)
                .bind(first_bucket_within(resolution, now, short))
                .fetch_one(&self.reader)
                .await
                .map_err(read_error)?;
        Ok((
            fraction(short_healthy, short_failed),
            fraction(long_healthy, long_failed),
        ))
    }

    pub(super) async fn daily_latency(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DailyLatency>, StoreError> {
        let Some(key) = self.key_of(monitor).await? else {
            return Ok(Vec::new());
        };
        if days == 0 {
            return Ok(Vec::new());
        }
        let span = i64::from(days).saturating_mul(DAY_MS);
        let rows = sqlx::query(DAY_HISTOGRAMS.clone())
            .bind(key)
            .bind(Resolution::Day.code())
            .bind(first_bucket_within(Resolution::Day, now, span))
            .bind(Resolution::Day.width())
            .bind(now)
            .fetch_all(&self.reader)
            .await?;
        let mut latencies = Vec::with_capacity(rows.len());
        for row in &rows {
            let day: Millis = row.try_get(0).map_err(read_error)?;
            let histogram = rows::histogram(row, 1)?;
            if let Some((p50_ms, p95_ms, samples)) = rollup::percentiles(&histogram) {
                latencies.push(DailyLatency {
                    day,
                    p50_ms,
                    p95_ms,
                    samples,
                });
            }
        }
        Ok(latencies)
    }
}

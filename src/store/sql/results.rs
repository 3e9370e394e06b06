//! Monitors, results and the reads built on rollups (recent results, uptime, daily latency, the
//! status page's day counts and latency series), once for both back ends.
//!
//! How a batch is written and where one monitor's rollup buckets sit are the back end's
//! ([`Results`]): SQLite writes multi-row statements into rollups keyed time first, PostgreSQL
//! `UNNEST` arrays into rollups keyed monitor first. Every read here goes through
//! [`BucketReads`], built from the back end's bucket lookup, so the select lists and the
//! arithmetic (`store::rollup`) exist once.

use sqlx::{Database, Executor, SqlStr};

use super::{Arg, Backend, Dialect, on, read_all, read_one};
use crate::store::keys::MonitorKeys;
use crate::store::rollup::{
    self, COUNTER_COLUMNS, Resolution, first_bucket_within, first_of_last, fraction,
    histogram_columns,
};
use crate::store::rows::{self, StoredRow};
use crate::store::{
    DailyLatency, DayCounts, LatencyPoint, MonitorRecord, ResultRecord, SeriesStep, StoreError,
    Uptime, dynamic_sql,
};
use crate::time::{DAY_MS, HOUR_MS, Millis};

/// What a back end writes and finds its own way.
pub trait Results: Backend {
    /// Appends scrubbed results and folds them into the minute, hour and day rollups, in one
    /// transaction. A result already stored for the same monitor and millisecond is a
    /// duplicate (a retried batch): ignored, and not counted in the rollups. Monitors not
    /// registered yet get a key on the fly.
    fn write_results(
        &self,
        results: &[ResultRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The reads of one monitor's rollup buckets, built once by [`BucketReads::new`].
    fn bucket_reads() -> &'static BucketReads;
}

/// The statements that read one monitor's rollup buckets. A back end gives the lookup: rollup
/// rows `r` of monitor key $1 at resolution $2 whose buckets start in [$3, $5], $4 being the
/// bucket width (SQLite needs it to list the starts; PostgreSQL ignores it), after the select
/// list it is given.
pub struct BucketReads {
    /// Start, then the five counters.
    day_counts: SqlStr,
    /// Start, then the histogram columns.
    histograms: SqlStr,
    /// Healthy and provider-failed sums over the buckets from $6 (the short window) and over
    /// all of them (the long one).
    window_sums: SqlStr,
}

impl BucketReads {
    pub fn new(one_monitor: fn(select: &str) -> String) -> BucketReads {
        let ordered = |select: &str| dynamic_sql(one_monitor(select) + " ORDER BY r.bucket_start");
        let columns = |names: Vec<String>| {
            let listed: Vec<String> = names.iter().map(|c| format!("r.{c}")).collect();
            format!("r.bucket_start, {}", listed.join(", "))
        };
        BucketReads {
            day_counts: ordered(&columns(
                COUNTER_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            )),
            histograms: ordered(&columns(histogram_columns().collect())),
            window_sums: dynamic_sql(one_monitor(
                "COALESCE(SUM(CASE WHEN r.bucket_start >= $6 THEN r.healthy END), 0),
                 COALESCE(SUM(CASE WHEN r.bucket_start >= $6 THEN r.provider_failed END), 0),
                 COALESCE(SUM(r.healthy), 0),
                 COALESCE(SUM(r.provider_failed), 0)",
            )),
        }
    }
}

const PUT_MONITOR: &str =
    "INSERT INTO monitors (id, provider, model, probe) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE
     SET provider = excluded.provider, model = excluded.model, probe = excluded.probe
     RETURNING key";

const KEY_OF: &str = "SELECT key FROM monitors WHERE id = $1";

const ALL_KEYS: &str = "SELECT id, key FROM monitors";

const KEYS_IN_ORDER: &str = "SELECT key FROM monitors ORDER BY key";

const RECENT_RESULTS: &str = "SELECT at, verdict, blame, status, latency_us, ttft_us, explanation,
            region
     FROM results
     WHERE monitor_key = $1
     ORDER BY at DESC
     LIMIT $2";

pub async fn register_monitors<B: Backend>(
    store: &B,
    monitors: &[MonitorRecord],
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    let mut keys = Vec::with_capacity(monitors.len());
    for monitor in monitors {
        let row = sqlx::query(PUT_MONITOR)
            .arg(monitor.id.as_str())
            .arg(monitor.provider.as_str())
            .arg(monitor.model.as_deref())
            .arg(monitor.probe.as_str())
            .fetch_one(on(&mut tx))
            .await?;
        keys.push((monitor.id.as_str(), row.int(0)?));
    }
    tx.commit().await?;
    store.keys().remember(keys);
    Ok(())
}

/// Every monitor's key, read when a store opens: a restarted daemon's first batch then needs no
/// lookups.
pub async fn load_keys<'e, D: Dialect>(
    reader: impl Executor<'e, Database = D>,
) -> Result<MonitorKeys, StoreError> {
    let rows = sqlx::query(ALL_KEYS).fetch_all(reader).await?;
    let keys: Result<Vec<(String, i64)>, StoreError> = rows
        .iter()
        .map(|row| Ok((row.text(0)?, row.int(1)?)))
        .collect();
    Ok(MonitorKeys::new(keys?))
}

/// Every monitor's key, in order.
pub async fn monitor_keys<B: Backend>(store: &B) -> Result<Vec<i64>, StoreError> {
    read_all(store, sqlx::query(KEYS_IN_ORDER), |row| row.int(0)).await
}

/// The monitor's key, or `None` when nothing was ever stored for it.
pub async fn key_of<B: Backend>(store: &B, monitor: &str) -> Result<Option<i64>, StoreError> {
    if let Some(key) = store.keys().get(monitor) {
        return Ok(Some(key));
    }
    // Another process (or a store opened before this monitor existed) may have added it.
    let key = read_one(store, sqlx::query(KEY_OF).arg(monitor), |row| row.int(0)).await?;
    if let Some(key) = key {
        store.keys().remember([(monitor, key)]);
    }
    Ok(key)
}

/// The monitor's key when a read of `buckets` buckets has anything to find: `None` for a
/// monitor never stored, or no bucket asked for.
async fn key_for<B: Backend>(
    store: &B,
    monitor: &str,
    buckets: u32,
) -> Result<Option<i64>, StoreError> {
    if buckets == 0 {
        return Ok(None);
    }
    key_of(store, monitor).await
}

pub async fn recent_results<B: Backend>(
    store: &B,
    monitor: &str,
    limit: u32,
) -> Result<Vec<ResultRecord>, StoreError> {
    let Some(key) = key_of(store, monitor).await? else {
        return Ok(Vec::new());
    };
    let recent = sqlx::query(RECENT_RESULTS).arg(key).arg(i64::from(limit));
    read_all(store, recent, |row| rows::result(monitor, row)).await
}

/// 24 h and 7 d from hour rollups, 30 d and 90 d from day rollups, each over the buckets that
/// started inside the window: the current partial bucket counts, and the oldest bucket that
/// started before the window does not, so "24 h" covers 23 to 24 hours.
pub async fn uptime<B: Results>(
    store: &B,
    monitor: &str,
    now: Millis,
) -> Result<Uptime, StoreError> {
    let Some(key) = key_of(store, monitor).await? else {
        return Ok(Uptime::default());
    };
    let (h24, d7) =
        window_uptime(store, key, Resolution::Hour, now, 24 * HOUR_MS, 7 * DAY_MS).await?;
    let (d30, d90) =
        window_uptime(store, key, Resolution::Day, now, 30 * DAY_MS, 90 * DAY_MS).await?;
    Ok(Uptime { h24, d7, d30, d90 })
}

/// (short, long) uptime fractions from one resolution's buckets within each window.
async fn window_uptime<B: Results>(
    store: &B,
    key: i64,
    resolution: Resolution,
    now: Millis,
    short: Millis,
    long: Millis,
) -> Result<(Option<f64>, Option<f64>), StoreError> {
    let row = buckets(
        &B::bucket_reads().window_sums,
        key,
        resolution,
        first_bucket_within(resolution, now, long),
        now,
    )
    .arg(first_bucket_within(resolution, now, short))
    .fetch_one(store.reader())
    .await?;
    Ok((
        fraction(row.int(0)?, row.int(1)?),
        fraction(row.int(2)?, row.int(3)?),
    ))
}

/// A bucket read of one monitor's buckets of `resolution` starting in [`first`, `last`].
fn buckets<DB: Dialect>(
    sql: &SqlStr,
    key: i64,
    resolution: Resolution,
    first: Millis,
    last: Millis,
) -> sqlx::query::Query<'static, DB, <DB as Database>::Arguments> {
    sqlx::query(sql.clone())
        .arg(key)
        .arg(resolution.code())
        .arg(first)
        .arg(resolution.width())
        .arg(last)
}

/// Latency percentiles of one monitor's buckets of `resolution` in [`first`, `now`] that hold a
/// latency sample. Percentiles are interpolated linearly inside the histogram bucket that holds
/// them; one in the overflow bucket reports the top bound.
async fn percentiles<B: Results>(
    store: &B,
    key: i64,
    resolution: Resolution,
    first: Millis,
    now: Millis,
) -> Result<Vec<LatencyPoint>, StoreError> {
    let histograms = buckets(&B::bucket_reads().histograms, key, resolution, first, now);
    let points = read_all(store, histograms, |row| {
        let start = row.int(0)?;
        let percentiles = rollup::percentiles(&rows::histogram(row, 1)?);
        Ok(percentiles.map(|(p50_ms, p95_ms, samples)| LatencyPoint {
            start,
            p50_ms,
            p95_ms,
            samples,
        }))
    })
    .await?;
    Ok(points.into_iter().flatten().collect())
}

/// Latency p50/p95 per UTC day for the `days` days up to `now`, oldest first.
pub async fn daily_latency<B: Results>(
    store: &B,
    monitor: &str,
    now: Millis,
    days: u32,
) -> Result<Vec<DailyLatency>, StoreError> {
    let Some(key) = key_for(store, monitor, days).await? else {
        return Ok(Vec::new());
    };
    let span = i64::from(days).saturating_mul(DAY_MS);
    let first = first_bucket_within(Resolution::Day, now, span);
    let points = percentiles(store, key, Resolution::Day, first, now).await?;
    Ok(points
        .into_iter()
        .map(|point| DailyLatency {
            day: point.start,
            p50_ms: point.p50_ms,
            p95_ms: point.p95_ms,
            samples: point.samples,
        })
        .collect())
}

/// Percentiles are read from each bucket's histogram exactly as [`daily_latency`] does.
pub async fn latency_series<B: Results>(
    store: &B,
    monitor: &str,
    step: SeriesStep,
    now: Millis,
    buckets: u32,
) -> Result<Vec<LatencyPoint>, StoreError> {
    let Some(key) = key_for(store, monitor, buckets).await? else {
        return Ok(Vec::new());
    };
    let resolution = match step {
        SeriesStep::Hour => Resolution::Hour,
        SeriesStep::Day => Resolution::Day,
    };
    let first = first_of_last(resolution.width(), now, buckets);
    percentiles(store, key, resolution, first, now).await
}

pub async fn daily_counts<B: Results>(
    store: &B,
    monitor: &str,
    now: Millis,
    days: u32,
) -> Result<Vec<DayCounts>, StoreError> {
    let Some(key) = key_for(store, monitor, days).await? else {
        return Ok(Vec::new());
    };
    let first = first_of_last(Resolution::Day.width(), now, days);
    let rows = buckets(
        &B::bucket_reads().day_counts,
        key,
        Resolution::Day,
        first,
        now,
    )
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DayCounts {
                day: row.int(0)?,
                total: rows::count(row, 1)?,
                healthy: rows::count(row, 2)?,
                degraded: rows::count(row, 3)?,
                provider_failed: rows::count(row, 4)?,
                other_failed: rows::count(row, 5)?,
            })
        })
        .collect()
}

//! Writing results and rollups in SQLite: a batch's raw rows plus the minute, hour and day
//! rollups it touches, in one transaction, as multi-row statements; and where one monitor's
//! rollup buckets are found (the reads themselves are shared: `store::sql::results`).
//!
//! The arithmetic (buckets, counters, percentiles) lives in `rollup`; this file only moves
//! numbers into SQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use super::{MultiRow, SqliteStore, statement_chunks};
use crate::store::codes;
use crate::store::rollup::{COUNTER_COLUMNS, Counts, Resolution, histogram_columns};
use crate::store::sql::Backend;
use crate::store::sql::results::{BucketReads, Results};
use crate::store::{ResultRecord, StoreError};
use crate::time::Millis;

/// A key for a monitor id, new or existing (the no-op update makes RETURNING answer for an
/// existing row too).
const INTERN_MONITOR: &str = "INSERT INTO monitors (id) VALUES ($1)
     ON CONFLICT (id) DO UPDATE SET id = excluded.id
     RETURNING key";

/// Answers with the rows it really inserted, so duplicates are left out of the rollups.
static INSERT_RESULTS: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO results
         (monitor_key, at, verdict, blame, status, latency_us, ttft_us, explanation, region)",
        9,
        "ON CONFLICT DO NOTHING RETURNING monitor_key, at",
    )
});

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

/// Rollups are keyed time first (so every write lands in a few hundred pages), so a range of
/// one monitor's buckets is read as one primary-key lookup per bucket: the recursive CTE lists
/// the bucket starts, and CROSS JOIN keeps it the outer loop. A 90-day read costs 90 lookups
/// whatever the number of monitors.
fn one_monitor_buckets(select: &str) -> String {
    format!(
        "WITH RECURSIVE starts (bucket_start) AS (
             SELECT $3
             UNION ALL
             SELECT bucket_start + $4 FROM starts WHERE bucket_start + $4 <= $5
         )
         SELECT {select}
         FROM starts CROSS JOIN rollups AS r
         WHERE r.resolution = $2 AND r.bucket_start = starts.bucket_start
           AND r.monitor_key = $1 AND starts.bucket_start <= $5"
    )
}

static BUCKET_READS: LazyLock<BucketReads> =
    LazyLock::new(|| BucketReads::new(one_monitor_buckets));

impl Results for SqliteStore {
    /// Keys the results, inserts them in multi-row statements, sums what the inserted ones add
    /// to each (resolution, bucket, monitor) in memory, and upserts every touched rollup row
    /// once — all in one transaction.
    async fn write_results(&self, results: &[ResultRecord]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;

        let mut new_keys: HashMap<&str, i64> = HashMap::new();
        let mut keyed = Vec::with_capacity(results.len());
        for result in results {
            let id = result.monitor_id.as_str();
            let key = match self.keys.get(id).or_else(|| new_keys.get(id).copied()) {
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
                    .bind(explanation)
                    .bind(result.region.as_deref());
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
        self.keys.remember(new_keys);
        Ok(())
    }

    fn bucket_reads() -> &'static BucketReads {
        &BUCKET_READS
    }
}

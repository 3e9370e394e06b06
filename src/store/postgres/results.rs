//! Writing results and rollups in PostgreSQL: a batch's raw rows plus the minute, hour and day
//! rollups it touches, in one transaction; and where one monitor's rollup buckets are found
//! (the reads themselves are shared: `store::sql::results`).
//!
//! A batch of any size is a fixed number of statements: rows travel as one array per column and
//! `UNNEST` turns them back into rows on the server, so a statement's text never depends on the
//! batch size and each connection prepares it once. The arithmetic (buckets, counters,
//! percentiles) lives in `store::rollup`; this file only moves numbers into SQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use super::{PostgresStore, dynamic_sql, resolution_code};
use crate::store::codes;
use crate::store::rollup::{
    COUNTER_COLUMNS, Counts, HISTOGRAM_SLOTS, Resolution, histogram_columns,
};
use crate::store::sql::results::{BucketReads, Results};
use crate::store::{ResultRecord, StoreError};
use crate::time::Millis;

/// Creates the monitors not stored yet. `DO NOTHING` rather than a no-op update: it takes no
/// row lock, so instances adding the same monitor never queue behind each other.
const INTERN_MONITORS: &str = "INSERT INTO monitors (id) SELECT * FROM UNNEST($1::text[])
     ON CONFLICT (id) DO NOTHING";

const KEYS_OF: &str = "SELECT id, key FROM monitors WHERE id = ANY($1)";

/// Answers with the rows it really inserted, so duplicates are left out of the rollups.
const INSERT_RESULTS: &str = "INSERT INTO results
     (monitor_key, at, verdict, blame, status, latency_us, ttft_us, explanation, region)
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::smallint[], $4::smallint[],
                          $5::integer[], $6::bigint[], $7::bigint[], $8::text[], $9::text[])
     ON CONFLICT DO NOTHING
     RETURNING monitor_key, at";

/// How a rollup write meets a row already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RollupWrite {
    /// Add the counts to it (recording results).
    Add,
    /// Replace its counts (`db copy`: a rerun writes the same values again, never adds them).
    Replace,
}

/// Writes buckets' counts into their rollup rows, creating them as needed: one array per column.
fn rollup_upsert(write: RollupWrite) -> sqlx::SqlStr {
    let counters: Vec<String> = COUNTER_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(histogram_columns())
        .collect();
    let arrays: Vec<String> = (0..counters.len())
        .map(|i| format!("${}::bigint[]", i + 4))
        .collect();
    let updates: Vec<String> = counters
        .iter()
        .map(|c| match write {
            RollupWrite::Add => format!("{c} = rollups.{c} + excluded.{c}"),
            RollupWrite::Replace => format!("{c} = excluded.{c}"),
        })
        .collect();
    dynamic_sql(format!(
        "INSERT INTO rollups (monitor_key, resolution, bucket_start, {})
         SELECT * FROM UNNEST($1::bigint[], $2::smallint[], $3::bigint[], {})
         ON CONFLICT (monitor_key, resolution, bucket_start) DO UPDATE SET {}",
        counters.join(", "),
        arrays.join(", "),
        updates.join(", ")
    ))
}

static ADD_ROLLUPS: LazyLock<sqlx::SqlStr> = LazyLock::new(|| rollup_upsert(RollupWrite::Add));
static REPLACE_ROLLUPS: LazyLock<sqlx::SqlStr> =
    LazyLock::new(|| rollup_upsert(RollupWrite::Replace));

/// Rollups are keyed monitor first, so one monitor's buckets are one index range scan (the
/// bucket width, $4, is not needed).
fn one_monitor_buckets(select: &str) -> String {
    format!(
        "SELECT {select} FROM rollups AS r
          WHERE r.monitor_key = $1 AND r.resolution = $2 AND r.bucket_start BETWEEN $3 AND $5"
    )
}

static BUCKET_READS: LazyLock<BucketReads> =
    LazyLock::new(|| BucketReads::new(one_monitor_buckets));

/// A verdict's code in the schema's SMALLINT.
fn verdict_code(verdict: crate::verdict::Verdict) -> i16 {
    i16::try_from(codes::verdict_code(verdict)).expect("verdict codes are below 15")
}

/// A blame's code in the schema's SMALLINT.
fn blame_code(blame: crate::verdict::Blame) -> i16 {
    i16::try_from(codes::blame_code(blame)).expect("blame codes are below 4")
}

/// The rows of a results insert, one vector per column.
#[derive(Default)]
struct ResultColumns<'a> {
    keys: Vec<i64>,
    at: Vec<Millis>,
    verdicts: Vec<i16>,
    blames: Vec<Option<i16>>,
    statuses: Vec<Option<i32>>,
    latencies: Vec<Option<i64>>,
    ttfts: Vec<Option<i64>>,
    explanations: Vec<Option<&'a str>>,
    regions: Vec<Option<&'a str>>,
}

impl<'a> ResultColumns<'a> {
    fn push(&mut self, key: i64, result: &'a ResultRecord) {
        // A healthy result needs no words, and most results are healthy.
        let explanation = if result.verdict.is_healthy() {
            None
        } else {
            result.explanation.as_deref()
        };
        self.keys.push(key);
        self.at.push(result.at);
        self.verdicts.push(verdict_code(result.verdict));
        self.blames.push(result.blame.map(blame_code));
        self.statuses.push(result.status.map(i32::from));
        self.latencies.push(codes::ms_to_us(result.latency_ms));
        self.ttfts.push(codes::ms_to_us(result.ttft_ms));
        self.explanations.push(explanation);
        self.regions.push(result.region.as_deref());
    }

    /// Inserts the rows; answers with the (key, at) of those that were not already stored.
    async fn insert(self, conn: &mut sqlx::PgConnection) -> Result<Vec<(i64, Millis)>, StoreError> {
        Ok(sqlx::query_as(INSERT_RESULTS)
            .bind(self.keys)
            .bind(self.at)
            .bind(self.verdicts)
            .bind(self.blames)
            .bind(self.statuses)
            .bind(self.latencies)
            .bind(self.ttfts)
            .bind(self.explanations)
            .bind(self.regions)
            .fetch_all(conn)
            .await?)
    }
}

/// The key `intern_monitors` gave a result's monitor.
fn key_of(keys: &HashMap<&str, i64>, result: &ResultRecord) -> Result<i64, StoreError> {
    keys.get(result.monitor_id.as_str())
        .copied()
        .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
}

/// Inserts `results` (their monitors keyed in `keys`); answers with the (key, at) of those that
/// were not already stored.
pub(super) async fn insert_results(
    conn: &mut sqlx::PgConnection,
    keys: &HashMap<&str, i64>,
    results: &[ResultRecord],
) -> Result<Vec<(i64, Millis)>, StoreError> {
    let mut columns = ResultColumns::default();
    for result in results {
        columns.push(key_of(keys, result)?, result);
    }
    columns.insert(conn).await
}

/// Writes `buckets` into their rollup rows. The rows go in primary-key order, so two writers
/// that touch the same rows lock them in the same order and cannot deadlock.
pub(super) async fn write_rollups(
    conn: &mut sqlx::PgConnection,
    buckets: &BTreeMap<(i64, Resolution, Millis), Counts>,
    write: RollupWrite,
) -> Result<(), StoreError> {
    if buckets.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(buckets.len());
    let mut resolutions = Vec::with_capacity(buckets.len());
    let mut starts = Vec::with_capacity(buckets.len());
    let mut counters: Vec<Vec<i64>> = (0..COUNTER_COLUMNS.len() + HISTOGRAM_SLOTS)
        .map(|_| Vec::with_capacity(buckets.len()))
        .collect();
    for (&(key, resolution, start), counts) in buckets {
        keys.push(key);
        resolutions.push(resolution_code(resolution));
        starts.push(start);
        let values = [
            counts.total,
            counts.healthy,
            counts.degraded,
            counts.provider_failed,
            counts.other_failed,
        ]
        .into_iter()
        .chain(counts.histogram);
        for (column, value) in counters.iter_mut().zip(values) {
            column.push(value);
        }
    }
    let statement = match write {
        RollupWrite::Add => ADD_ROLLUPS.clone(),
        RollupWrite::Replace => REPLACE_ROLLUPS.clone(),
    };
    let mut upsert = sqlx::query(statement)
        .bind(keys)
        .bind(resolutions)
        .bind(starts);
    for column in counters {
        upsert = upsert.bind(column);
    }
    upsert.execute(conn).await?;
    Ok(())
}

impl PostgresStore {
    /// Keys for `ids` (created where missing) inside `tx`; the caller remembers them once the
    /// transaction commits.
    pub(super) async fn intern_monitors<'a>(
        &self,
        conn: &mut sqlx::PgConnection,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<&'a str, i64>, StoreError> {
        let mut keys = HashMap::new();
        let mut missing: Vec<&str> = Vec::new();
        for id in ids {
            match self.keys.get(id) {
                Some(key) => {
                    keys.insert(id, key);
                }
                None if !missing.contains(&id) => missing.push(id),
                None => {}
            }
        }
        if missing.is_empty() {
            return Ok(keys);
        }
        sqlx::query(INTERN_MONITORS)
            .bind(&missing)
            .execute(&mut *conn)
            .await?;
        let found: Vec<(String, i64)> = sqlx::query_as(KEYS_OF)
            .bind(&missing)
            .fetch_all(&mut *conn)
            .await?;
        for (id, key) in found {
            if let Some(id) = missing.iter().find(|m| **m == id) {
                keys.insert(*id, key);
            }
        }
        Ok(keys)
    }
}

impl Results for PostgresStore {
    /// Keys the results, inserts them in one statement, sums what the inserted ones add to each
    /// (monitor, resolution, bucket) in memory, and upserts every touched rollup row once — all
    /// in one transaction.
    async fn write_results(&self, results: &[ResultRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let keys = self
            .intern_monitors(&mut tx, results.iter().map(|r| r.monitor_id.as_str()))
            .await?;
        let mut inserted: HashSet<(i64, Millis)> = insert_results(&mut tx, &keys, results)
            .await?
            .into_iter()
            .collect();

        let mut buckets: BTreeMap<(i64, Resolution, Millis), Counts> = BTreeMap::new();
        for result in results {
            let key = key_of(&keys, result)?;
            // `remove`, so a result given twice in one batch is still counted once.
            if inserted.remove(&(key, result.at)) {
                for resolution in Resolution::ALL {
                    let bucket = (key, resolution, resolution.bucket_start(result.at));
                    buckets.entry(bucket).or_default().add(result);
                }
            }
        }
        write_rollups(&mut tx, &buckets, RollupWrite::Add).await?;
        tx.commit().await?;
        // Only now: keys from a rolled-back transaction were never stored.
        self.keys.remember(keys);
        Ok(())
    }

    fn bucket_reads() -> &'static BucketReads {
        &BUCKET_READS
    }
}

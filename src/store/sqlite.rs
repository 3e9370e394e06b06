//! SQLite implementation of [`Store`]: one database file in WAL mode, written through a single
//! connection and read through a small pool of others.
//!
//! This module owns the SQLite schema (`store/migrations/`, embedded in the binary and applied on
//! open) and the SQL: results and rollups in `results`, incidents and state snapshots in
//! `incidents`, official status pages' incidents in `official`, the raw rows `db copy` reads in
//! `export`, opening, pruning and sizing here. The encodings (`store::codes`) and the rollup
//! arithmetic (`store::rollup`) are shared with the PostgreSQL store. It decides nothing about
//! monitors or incidents beyond what the trait promises (when to open or close an incident is
//! the monitor's call), and it trusts no row it reads: anything that does not decode is
//! [`StoreError::Corrupt`], never a panic. Its inputs come from the monitor (results,
//! incidents, state snapshots), the gateway's passive-health hook (results) and the web layer
//! (queries).

mod export;
mod history;
mod incidents;
mod official;
mod outbox;
mod queue;
mod results;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlStr;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::keys::MonitorKeys;
use super::rollup::{self, Resolution};
use super::{
    AlertCommit, AlertGroup, AttemptFailure, DailyLatency, Incident, IncidentFilter, MonitorRecord,
    NewIncident, OfficialIncident, OutboxBacklog, OutboxEntry, Pruned, ResultRecord, Retention,
    SavedState, Store, StoreError, StoredOfficialIncident, Uptime, scrub,
};
use super::{dynamic_sql, read_error};
use crate::time::Millis;
use crate::verdict::Verdict;

/// 5 s: long enough to outlast another process's write transaction (a `sqlite3` shell, a
/// backup), short enough that a stuck lock surfaces as an error instead of a hang.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections. WAL lets readers run beside the writer; a status page, the JSON API and
/// `/metrics` rarely need more than a few at once.
const READERS: u32 = 4;

/// Page cache of the write connection, in KiB (negative, as SQLite wants it). Every write
/// touches the newest results page of its monitor, so with thousands of monitors the pages
/// worth keeping are thousands too (10,000 monitors: about 40 MiB). SQLite allocates the cache
/// as it fills, so a small deployment never uses it all.
const WRITER_CACHE_KIB: &str = "-65536";

/// Every write transaction takes the write lock up front, so a transaction that reads before it
/// writes cannot fail half-way with SQLITE_BUSY when another process wrote in between.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Monitors whose raw results are pruned per write transaction: few enough that
/// `record_results` never waits long behind a prune, enough not to pay a commit per monitor.
const PRUNE_MONITORS_PER_TX: usize = 100;

/// Rollup rows deleted per statement (each its own transaction), for the same reason.
const PRUNE_ROLLUPS_PER_TX: i64 = 50_000;

/// The most rows one multi-row statement carries (a power of two). Each statement is a round
/// trip to the connection's thread, which costs more than SQLite's own work for a row, so
/// writing rows in groups is what makes `record_results` fast.
const MAX_ROWS_PER_STATEMENT: usize = 64;

/// The migrations, in order: (version, description, SQL). Embedded so the binary needs no files
/// beside it; PostgreSQL's list (`postgres::MIGRATIONS`) has the same versions and descriptions.
pub(super) const MIGRATIONS: [(i64, &str, &str); 6] = [
    (1, "init", include_str!("migrations/0001_init.sql")),
    (2, "alerts", include_str!("migrations/0002_alerts.sql")),
    (
        3,
        "history scrub",
        include_str!("migrations/0003_history_scrub.sql"),
    ),
    (
        4,
        "state quarantine",
        include_str!("migrations/0004_state_quarantine.sql"),
    ),
    (5, "official", include_str!("migrations/0005_official.sql")),
    (6, "queue", include_str!("migrations/0006_queue.sql")),
];

/// The store. Share it behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    /// One connection: SQLite has one writer at a time anyway, and queueing in the pool is
    /// fairer and cheaper than connections polling each other's locks.
    writer: SqlitePool,
    reader: SqlitePool,
    /// A second write connection with SQLite's small default page cache, for the durable
    /// queue's uploads only: a 200 MB file written through `writer` would fill its large cache
    /// (kept for the monitor's hot pages) with pages nobody reads again. SQLite still lets one
    /// of the two write at a time; an upload holds the lock a few milliseconds per group of
    /// lines.
    bulk: SqlitePool,
    keys: MonitorKeys,
}

/// Pools keep a fixed set of connections for the life of the process: a file database gains
/// nothing from recycling them, and a pool that never opens connections lazily never races its
/// own acquire deadline (which tests on paused tokio time would otherwise hit).
fn pool_options(size: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        // A minute: only a wedged database makes a query wait this long for a connection.
        .acquire_timeout(std::time::Duration::from_secs(60))
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directories) the database at `path` and
    /// applies any migrations it has not seen yet.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let location = path.display().to_string();
        let open_error = |source| StoreError::Open {
            location: location.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| open_error(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the
            // file. Losing a few probe results is fine; an fsync per batch is not needed.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let writer = pool_options(1)
            .connect_with(options.clone().pragma("cache_size", WRITER_CACHE_KIB))
            .await
            .map_err(open_error)?;
        // Before the readers connect: the first connection switches a new file to WAL mode.
        super::migrator(&MIGRATIONS).run(&writer).await?;
        history::scrub_once(&writer).await?;
        let bulk = pool_options(1)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let reader = pool_options(READERS)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        // Open every reader now (held at once, then released): the pool then never connects
        // lazily under an acquire deadline.
        let mut held = Vec::with_capacity(READERS as usize);
        for _ in 0..READERS {
            held.push(reader.acquire().await.map_err(open_error)?);
        }
        drop(held);

        // All keys up front: a restarted daemon's first batch then needs no lookups.
        let keys: Vec<(String, i64)> = sqlx::query_as("SELECT id, key FROM monitors")
            .fetch_all(&reader)
            .await
            .map_err(read_error)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer,
            reader,
            bulk,
            keys: MonitorKeys::new(keys),
        })
    }

    /// Closes every connection, waiting for those in use. The last one to close checkpoints the
    /// WAL into the main file.
    pub async fn close(&self) {
        self.reader.close().await;
        self.bulk.close().await;
        self.writer.close().await;
    }

    fn cached_key(&self, monitor: &str) -> Option<i64> {
        self.keys.get(monitor)
    }

    fn remember_keys<'a>(&self, new: impl IntoIterator<Item = (&'a str, i64)>) {
        self.keys.remember(new);
    }

    /// The monitor's key, or `None` when nothing was ever stored for it.
    async fn key_of(&self, monitor: &str) -> Result<Option<i64>, StoreError> {
        if let Some(key) = self.cached_key(monitor) {
            return Ok(Some(key));
        }
        // Another process (or a store opened before this monitor existed) may have added it.
        let key: Option<i64> = sqlx::query_scalar("SELECT key FROM monitors WHERE id = ?1")
            .bind(monitor)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error)?;
        if let Some(key) = key {
            self.remember_keys([(monitor, key)]);
        }
        Ok(key)
    }
}

// === multi-row statements ===

/// An `INSERT … VALUES (…), (…) …` in every power-of-two row count up to
/// [`MAX_ROWS_PER_STATEMENT`]: a batch of any size is then written with few statements, drawn
/// from a handful of texts that each connection prepares once.
struct MultiRow {
    by_log2: Vec<SqlStr>,
}

impl MultiRow {
    /// `head` is everything before `VALUES`, `tail` everything after the rows.
    fn new(head: &str, columns: usize, tail: &str) -> MultiRow {
        let row = format!("({})", vec!["?"; columns].join(", "));
        let by_log2 = (0..=MAX_ROWS_PER_STATEMENT.ilog2())
            .map(|log2| {
                let rows = vec![row.as_str(); 1 << log2].join(", ");
                dynamic_sql(format!("{head} VALUES {rows} {tail}"))
            })
            .collect();
        MultiRow { by_log2 }
    }

    /// The statement for `rows` rows, which [`statement_chunks`] guarantees is a power of two
    /// no larger than the maximum.
    fn sql(&self, rows: usize) -> SqlStr {
        self.by_log2[rows.ilog2() as usize].clone()
    }
}

/// Splits `items` into chunks of [`MAX_ROWS_PER_STATEMENT`], then of falling powers of two.
fn statement_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = rest.len().min(MAX_ROWS_PER_STATEMENT);
        let (chunk, tail) = rest.split_at(1 << size.ilog2());
        rest = tail;
        Some(chunk)
    })
}

// === impl Store for SqliteStore ===

#[async_trait]
// Each trait method is implemented by the inherent method of the same name, in the file of its
// concern (`results.rs`, `incidents.rs`, `outbox.rs`, `rollup.rs`): one name per operation.
// Inherent methods win name resolution, so `SqliteStore::name(self, …)` below is that inherent
// twin, after the store-agnostic scrub of what is written (`store::scrub`).
impl Store for SqliteStore {
    async fn register_monitors(&self, monitors: &[MonitorRecord]) -> Result<(), StoreError> {
        SqliteStore::register_monitors(self, monitors).await
    }

    /// One transaction per call; see `results.rs` for how rows and rollups are written. A
    /// result already stored for the same monitor and millisecond is a duplicate (a retried
    /// batch) and is ignored, so replaying a batch never counts anything twice. A healthy
    /// result's explanation is not stored. Monitors not registered yet get a key on the fly.
    async fn record_results(&self, results: &[ResultRecord]) -> Result<(), StoreError> {
        SqliteStore::record_results(self, &scrub::results(results)).await
    }

    async fn recent_results(
        &self,
        monitor: &str,
        limit: u32,
    ) -> Result<Vec<ResultRecord>, StoreError> {
        SqliteStore::recent_results(self, monitor, limit).await
    }

    async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError> {
        SqliteStore::open_incident(self, &scrub::incident(incident)).await
    }

    /// Only an open incident takes failures: an unknown or closed id is
    /// `StoreError::Db(RowNotFound)`. A failure without an error sample keeps the previous
    /// `last_error`.
    async fn note_incident_failure(
        &self,
        id: i64,
        verdict: Verdict,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let last_error = scrub::error_sample(last_error);
        SqliteStore::note_incident_failure(self, id, verdict, last_error.as_deref()).await
    }

    /// Closing a closed incident keeps its first end time; an unknown id is `RowNotFound`.
    async fn close_incident(&self, id: i64, ended_at: Millis) -> Result<(), StoreError> {
        SqliteStore::close_incident(self, id, ended_at).await
    }

    /// Reopening an open incident changes nothing; an unknown id is `RowNotFound`. When another
    /// incident of the same monitor is open, the one-open-per-monitor index refuses the change
    /// and this returns that database error (a unique violation), leaving both as they were:
    /// the caller should note the failure on the open one instead.
    async fn reopen_incident(&self, id: i64) -> Result<(), StoreError> {
        SqliteStore::reopen_incident(self, id).await
    }

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        SqliteStore::incident(self, id).await
    }

    /// Newest first by start time, then by id so that equal starts page stably.
    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        SqliteStore::incidents(self, filter).await
    }

    /// The snapshot must be JSON (anything else is refused as `Corrupt`): checking on the way
    /// in keeps one bad writer from breaking every later start-up.
    async fn save_monitor_state(&self, monitor: &str, snapshot: &str) -> Result<(), StoreError> {
        SqliteStore::save_monitor_state(self, monitor, &scrub::snapshot(snapshot)).await
    }

    /// Sorted by monitor id. A snapshot that is not JSON text comes back `Unreadable`.
    async fn load_monitor_states(&self) -> Result<Vec<(String, SavedState)>, StoreError> {
        SqliteStore::load_monitor_states(self).await
    }

    async fn quarantine_monitor_state(
        &self,
        monitor: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        SqliteStore::quarantine_monitor_state(self, monitor, &crate::secret::scrub(reason), at)
            .await
    }

    /// 24 h and 7 d from hour rollups, 30 d and 90 d from day rollups, each over the buckets
    /// that started inside the window: the current partial bucket counts, and the oldest
    /// bucket that started before the window does not, so "24 h" covers 23 to 24 hours.
    async fn uptime(&self, monitor: &str, now: Millis) -> Result<Uptime, StoreError> {
        SqliteStore::uptime(self, monitor, now).await
    }

    /// Day buckets that started in the `days` days up to `now` (today's partial one included)
    /// and hold at least one latency sample. Percentiles are interpolated linearly inside the
    /// histogram bucket that holds them; one in the overflow bucket reports the top bound.
    async fn daily_latency(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DailyLatency>, StoreError> {
        SqliteStore::daily_latency(self, monitor, now, days).await
    }

    /// Raw results go when older than `retention.raw`; a rollup row goes once its whole bucket
    /// is older than its resolution's retention (it holds nothing newer than the cutoff);
    /// closed incidents go when they ended before `now - retention.day`; open ones stay.
    /// The work is split into short transactions so writers are never held up for long. Freed
    /// pages are reused by later writes; the file does not shrink.
    async fn unresolved_alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        SqliteStore::unresolved_alert_groups(self).await
    }

    async fn commit_alerts(&self, commit: &AlertCommit) -> Result<(), StoreError> {
        SqliteStore::commit_alerts(self, &scrub::alert_commit(commit)).await
    }

    async fn pending_alerts(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        SqliteStore::pending_alerts(self, channel, limit).await
    }

    /// An entry already delivered (or unknown) is `RowNotFound`: delivering twice is a bug.
    async fn alert_delivered(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        SqliteStore::alert_delivered(self, id, at).await
    }

    /// Only a pending entry takes a failure; anything else is `RowNotFound`.
    async fn alert_attempt_failed(
        &self,
        id: i64,
        failure: &AttemptFailure,
    ) -> Result<(), StoreError> {
        SqliteStore::alert_attempt_failed(self, id, &scrub::attempt_failure(failure)).await
    }

    async fn outbox_entries(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        SqliteStore::outbox_entries(self, limit).await
    }

    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, StoreError> {
        SqliteStore::outbox_backlog(self).await
    }

    async fn prune_alerts(&self, before: Millis) -> Result<u64, StoreError> {
        SqliteStore::prune_alerts(self, before).await
    }

    async fn prune(&self, now: Millis, retention: &Retention) -> Result<Pruned, StoreError> {
        let keys: Vec<i64> = sqlx::query_scalar("SELECT key FROM monitors ORDER BY key")
            .fetch_all(&self.reader)
            .await?;
        let mut pruned = Pruned::default();

        // Results are keyed monitor first: one range delete per monitor.
        let raw_cutoff = now.saturating_sub(retention.raw);
        for chunk in keys.chunks(PRUNE_MONITORS_PER_TX) {
            let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
            for &key in chunk {
                pruned.results +=
                    sqlx::query("DELETE FROM results WHERE monitor_key = ?1 AND at < ?2")
                        .bind(key)
                        .bind(raw_cutoff)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            tx.commit().await?;
        }

        // Rollups are keyed time first: the oldest buckets of every monitor go together, about
        // PRUNE_ROLLUPS_PER_TX rows (one per monitor per bucket) per statement.
        let monitors = i64::try_from(keys.len()).unwrap_or(i64::MAX).max(1);
        let buckets_per_statement = (PRUNE_ROLLUPS_PER_TX / monitors).max(1);
        for resolution in Resolution::ALL {
            let keep = match resolution {
                Resolution::Minute => retention.minute,
                Resolution::Hour => retention.hour,
                Resolution::Day => retention.day,
            };
            let last_start = now.saturating_sub(keep).saturating_sub(resolution.width());
            loop {
                let oldest: Option<Millis> = sqlx::query_scalar(
                    "SELECT MIN(bucket_start) FROM rollups WHERE resolution = ?1",
                )
                .bind(resolution.code())
                .fetch_one(&self.writer)
                .await?;
                let Some(oldest) = oldest.filter(|oldest| *oldest <= last_start) else {
                    break;
                };
                let step_end = oldest
                    .saturating_add(buckets_per_statement.saturating_mul(resolution.width()) - 1)
                    .min(last_start);
                pruned.rollups +=
                    sqlx::query("DELETE FROM rollups WHERE resolution = ?1 AND bucket_start <= ?2")
                        .bind(resolution.code())
                        .bind(step_end)
                        .execute(&self.writer)
                        .await?
                        .rows_affected();
            }
        }

        let cutoff = now.saturating_sub(retention.day);
        pruned.incidents =
            sqlx::query("DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?1")
                .bind(cutoff)
                .execute(&self.writer)
                .await?
                .rows_affected();
        pruned.official = self.delete_old_official(cutoff).await?;
        Ok(pruned)
    }

    /// Pages in use or free in the main file (`page_count × page_size`) plus the WAL file as it
    /// is now; checkpoints fold the WAL back into the main file, so it stays a few MiB.
    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let main: i64 = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.reader)
        .await?;
        let mut wal_path = self.path.clone().into_os_string();
        wal_path.push("-wal");
        let wal = match tokio::fs::metadata(&wal_path).await {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(StoreError::Db(sqlx::Error::Io(e))),
        };
        Ok(main.unsigned_abs() + wal)
    }

    // === status page reads ===

    async fn daily_counts(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<crate::store::DayCounts>, StoreError> {
        SqliteStore::daily_counts(self, monitor, now, days).await
    }

    /// Percentiles are read from each bucket's histogram exactly as `daily_latency` does.
    async fn latency_series(
        &self,
        monitor: &str,
        step: crate::store::SeriesStep,
        now: Millis,
        buckets: u32,
    ) -> Result<Vec<crate::store::LatencyPoint>, StoreError> {
        SqliteStore::latency_series(self, monitor, step, now, buckets).await
    }

    async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError> {
        SqliteStore::incidents_between(self, from, to).await
    }

    // === official status pages ===

    async fn record_official_incidents(
        &self,
        provider: &str,
        incidents: &[OfficialIncident],
        seen_at: Millis,
    ) -> Result<(), StoreError> {
        self.upsert_official(provider, incidents, seen_at).await
    }

    async fn official_incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredOfficialIncident>, StoreError> {
        self.read_official_between(from, to).await
    }

    async fn acknowledge_incidents(&self, links: &[(i64, i64)]) -> Result<(), StoreError> {
        self.link_official(links).await
    }

    fn queue(&self) -> &dyn super::QueueStore {
        self
    }
}

// === status page reads ===
//
// Kept in one block (beside the trait methods above) so the status page's queries stay apart
// from the monitor's. Both rollup reads use the same point-lookup shape as `results.rs`: a
// recursive CTE lists the bucket starts, one primary-key lookup per bucket, so a 90-day read
// costs 90 lookups whatever the number of monitors.

/// Rollup rows of one monitor (?1) at resolution ?2 whose buckets start in [?3, ?5], ?4 being
/// the bucket width; callers put the select list over `r` in the middle.
fn status_page_buckets(select: &str) -> String {
    format!(
        "WITH RECURSIVE starts (bucket_start) AS (
             SELECT ?3
             UNION ALL
             SELECT bucket_start + ?4 FROM starts WHERE bucket_start + ?4 <= ?5
         )
         SELECT {select}
         FROM starts CROSS JOIN rollups AS r
         WHERE r.resolution = ?2 AND r.bucket_start = starts.bucket_start
           AND r.monitor_key = ?1 AND starts.bucket_start <= ?5
         ORDER BY r.bucket_start"
    )
}

static DAY_COUNTS: std::sync::LazyLock<SqlStr> = std::sync::LazyLock::new(|| {
    dynamic_sql(status_page_buckets(
        "r.bucket_start, r.total, r.healthy, r.degraded, r.provider_failed, r.other_failed",
    ))
});

/// The histogram columns, named after `LATENCY_BUCKETS_MS` as the schema names them (the
/// rollup writer derives the same names, so a mismatch fails every write in the tests).
static BUCKET_HISTOGRAMS: std::sync::LazyLock<SqlStr> = std::sync::LazyLock::new(|| {
    let columns: Vec<String> = rollup::histogram_columns()
        .map(|c| format!("r.{c}"))
        .collect();
    dynamic_sql(status_page_buckets(&format!(
        "r.bucket_start, {}",
        columns.join(", ")
    )))
});

impl SqliteStore {
    async fn daily_counts(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<crate::store::DayCounts>, StoreError> {
        use sqlx::Row;
        let Some(key) = self.key_of(monitor).await? else {
            return Ok(Vec::new());
        };
        if days == 0 {
            return Ok(Vec::new());
        }
        let width = Resolution::Day.width();
        let rows = sqlx::query(DAY_COUNTS.clone())
            .bind(key)
            .bind(Resolution::Day.code())
            .bind(rollup::first_of_last(width, now, days))
            .bind(width)
            .bind(now)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(crate::store::DayCounts {
                    day: row.try_get(0).map_err(read_error)?,
                    total: super::rows::count(row, 1)?,
                    healthy: super::rows::count(row, 2)?,
                    degraded: super::rows::count(row, 3)?,
                    provider_failed: super::rows::count(row, 4)?,
                    other_failed: super::rows::count(row, 5)?,
                })
            })
            .collect()
    }

    async fn latency_series(
        &self,
        monitor: &str,
        step: crate::store::SeriesStep,
        now: Millis,
        buckets: u32,
    ) -> Result<Vec<crate::store::LatencyPoint>, StoreError> {
        use sqlx::Row;
        let Some(key) = self.key_of(monitor).await? else {
            return Ok(Vec::new());
        };
        if buckets == 0 {
            return Ok(Vec::new());
        }
        let resolution = match step {
            crate::store::SeriesStep::Hour => Resolution::Hour,
            crate::store::SeriesStep::Day => Resolution::Day,
        };
        let width = resolution.width();
        let rows = sqlx::query(BUCKET_HISTOGRAMS.clone())
            .bind(key)
            .bind(resolution.code())
            .bind(rollup::first_of_last(width, now, buckets))
            .bind(width)
            .bind(now)
            .fetch_all(&self.reader)
            .await?;
        let mut points = Vec::with_capacity(rows.len());
        for row in &rows {
            let start: Millis = row.try_get(0).map_err(read_error)?;
            let histogram = super::rows::histogram(row, 1)?;
            if let Some((p50_ms, p95_ms, samples)) = rollup::percentiles(&histogram) {
                points.push(crate::store::LatencyPoint {
                    start,
                    p50_ms,
                    p95_ms,
                    samples,
                });
            }
        }
        Ok(points)
    }

    async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(incidents::INCIDENTS_BETWEEN)
            .bind(from)
            .bind(to)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(super::rows::incident).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_chunks_are_full_then_falling_powers_of_two() {
        let items: Vec<u32> = (0..(2 * MAX_ROWS_PER_STATEMENT as u32 + 11)).collect();
        let sizes: Vec<usize> = statement_chunks(&items).map(<[u32]>::len).collect();
        assert_eq!(
            sizes,
            vec![MAX_ROWS_PER_STATEMENT, MAX_ROWS_PER_STATEMENT, 8, 2, 1]
        );
        let rejoined: Vec<u32> = statement_chunks(&items).flatten().copied().collect();
        assert_eq!(rejoined, items);
        assert_eq!(statement_chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn multi_row_statements_have_one_row_group_per_row() {
        let insert = MultiRow::new("INSERT INTO t (a, b)", 2, "ON CONFLICT DO NOTHING");
        assert_eq!(
            insert.sql(2).as_str(),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            insert
                .sql(MAX_ROWS_PER_STATEMENT)
                .as_str()
                .matches("(?, ?)")
                .count(),
            MAX_ROWS_PER_STATEMENT
        );
    }

    /// A database that main's releases left at the official incidents (version 5) gains the
    /// queue's tables on open, its earlier migrations unchanged (a changed one is refused).
    #[tokio::test]
    async fn a_database_before_the_queue_gains_it_on_open() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("isdown.db");
        let before_queue = crate::store::migrator(&MIGRATIONS[..5]);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = pool_options(1).connect_with(options).await.unwrap();
        before_queue.run(&pool).await.unwrap();
        pool.close().await;

        let store = SqliteStore::open(&path).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
        let secret = crate::store::QueueStore::queue_secret(&store, b"fresh")
            .await
            .unwrap();
        assert_eq!(secret, b"fresh");
        store.close().await;
    }
}

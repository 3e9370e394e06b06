//! PostgreSQL implementation of [`Store`]: a pool of connections to one database, for
//! installations that already run PostgreSQL or that will share one database between several
//! isdown instances.
//!
//! This module owns the PostgreSQL schema (`postgres/migrations/`, numbered as SQLite's and
//! applied on open under sqlx's advisory lock, so instances starting together migrate once) and
//! its SQL: results and rollups in `results`, incidents and state snapshots in `incidents`, the
//! alert outbox in `outbox`, official status pages' incidents in `official`, what `db copy`
//! writes in `import`, opening, pruning and sizing here. The encodings (`store::codes`), the
//! rollup arithmetic (`store::rollup`) and the scrub of what is written (`store::scrub`) are
//! SQLite's, so both back ends store the same values and answer with the same numbers.
//!
//! Nothing here assumes it is the only process on the database: ids come from identity
//! columns, "one open incident per monitor" is a unique index that `open_incident` leans on,
//! rollups are added to by upserts (row-locked by PostgreSQL, taken in key order so concurrent
//! writers cannot deadlock), and the only memory is the monitor-key cache, which cannot go
//! stale (`store::keys`). Like the SQLite store it decides nothing about monitors or incidents,
//! and it trusts no row it reads: anything that does not decode is [`StoreError::Corrupt`].

pub mod import;
mod incidents;
mod official;
mod outbox;
mod queue;
mod results;
#[doc(hidden)]
pub mod scratch;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Row, SqlStr};

use super::keys::MonitorKeys;
use super::rollup::{self, Resolution};
use super::{
    AlertCommit, AlertGroup, AttemptFailure, DailyLatency, DayCounts, Incident, IncidentFilter,
    LatencyPoint, MonitorRecord, NewIncident, OfficialIncident, OutboxBacklog, OutboxEntry,
    PoolSettings, PostgresUrl, Pruned, ResultRecord, Retention, SavedState, SeriesStep, Store,
    StoreError, StoredOfficialIncident, Uptime, dynamic_sql, read_error, rows, scrub,
};
use crate::time::Millis;
use crate::verdict::Verdict;

/// The migrations, in order, with the same versions and descriptions as SQLite's
/// (`sqlite::MIGRATIONS`; a test keeps the two lists aligned).
pub(super) const MIGRATIONS: [(i64, &str, &str); 6] = [
    (1, "init", include_str!("postgres/migrations/0001_init.sql")),
    (
        2,
        "alerts",
        include_str!("postgres/migrations/0002_alerts.sql"),
    ),
    (
        3,
        "history scrub",
        include_str!("postgres/migrations/0003_history_scrub.sql"),
    ),
    (
        4,
        "state quarantine",
        include_str!("postgres/migrations/0004_state_quarantine.sql"),
    ),
    (
        5,
        "official",
        include_str!("postgres/migrations/0005_official.sql"),
    ),
    (
        6,
        "queue",
        include_str!("postgres/migrations/0006_queue.sql"),
    ),
];

/// Shown in `pg_stat_activity`, so a DBA can tell isdown's connections apart.
const APPLICATION_NAME: &str = "isdown";

/// 10 min: an idle connection is closed after this (the pool reopens one when needed).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// 30 min: every connection is replaced after this, so a failover or a DNS change behind the
/// host name is picked up without a restart.
const MAX_LIFETIME: Duration = Duration::from_secs(1_800);

/// Monitors whose raw results and rollups are pruned per transaction: each is a few index range
/// deletes, and short transactions keep a prune from holding up writers.
const PRUNE_MONITORS_PER_TX: usize = 100;

/// The store. Share it behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    keys: MonitorKeys,
}

impl PostgresStore {
    /// Connects to the database `url` names (which must exist) and applies any migrations it
    /// has not seen yet. Errors name the server and database, never the password.
    pub async fn open(
        url: &PostgresUrl,
        settings: &PoolSettings,
    ) -> Result<PostgresStore, StoreError> {
        let open_error = |source| StoreError::Open {
            location: url.to_string(),
            source,
        };
        let mut options = url.connect_options();
        if options.get_application_name().is_none() {
            options = options.application_name(APPLICATION_NAME);
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.size.max(1))
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(Some(IDLE_TIMEOUT))
            .max_lifetime(Some(MAX_LIFETIME))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        super::migrator(&MIGRATIONS).run(&pool).await?;
        // All keys up front: a restarted daemon's first batch then needs no lookups.
        let keys: Vec<(String, i64)> = sqlx::query_as("SELECT id, key FROM monitors")
            .fetch_all(&pool)
            .await
            .map_err(read_error)?;
        Ok(PostgresStore {
            pool,
            keys: MonitorKeys::new(keys),
        })
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The monitor's key, or `None` when nothing was ever stored for it.
    async fn key_of(&self, monitor: &str) -> Result<Option<i64>, StoreError> {
        if let Some(key) = self.keys.get(monitor) {
            return Ok(Some(key));
        }
        // Another instance (or a store opened before this monitor existed) may have added it.
        let key: Option<i64> = sqlx::query_scalar("SELECT key FROM monitors WHERE id = $1")
            .bind(monitor)
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        if let Some(key) = key {
            self.keys.remember([(monitor, key)]);
        }
        Ok(key)
    }
}

// === impl Store for PostgresStore ===

#[async_trait]
// As in the SQLite store: each trait method is implemented by the inherent method of the same
// name in the file of its concern, after the store-agnostic scrub of what is written.
impl Store for PostgresStore {
    async fn register_monitors(&self, monitors: &[MonitorRecord]) -> Result<(), StoreError> {
        PostgresStore::register_monitors(self, monitors).await
    }

    /// One transaction per call, as SQLite's: a result already stored for the same monitor and
    /// millisecond is a duplicate and is ignored (and not counted in the rollups).
    async fn record_results(&self, results: &[ResultRecord]) -> Result<(), StoreError> {
        PostgresStore::record_results(self, &scrub::results(results)).await
    }

    async fn recent_results(
        &self,
        monitor: &str,
        limit: u32,
    ) -> Result<Vec<ResultRecord>, StoreError> {
        PostgresStore::recent_results(self, monitor, limit).await
    }

    async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError> {
        PostgresStore::open_incident(self, &scrub::incident(incident)).await
    }

    /// Only an open incident takes failures: an unknown or closed id is
    /// `StoreError::Db(RowNotFound)`.
    async fn note_incident_failure(
        &self,
        id: i64,
        verdict: Verdict,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let last_error = scrub::error_sample(last_error);
        PostgresStore::note_incident_failure(self, id, verdict, last_error.as_deref()).await
    }

    async fn close_incident(&self, id: i64, ended_at: Millis) -> Result<(), StoreError> {
        PostgresStore::close_incident(self, id, ended_at).await
    }

    async fn reopen_incident(&self, id: i64) -> Result<(), StoreError> {
        PostgresStore::reopen_incident(self, id).await
    }

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        PostgresStore::incident(self, id).await
    }

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        PostgresStore::incidents(self, filter).await
    }

    async fn save_monitor_state(&self, monitor: &str, snapshot: &str) -> Result<(), StoreError> {
        PostgresStore::save_monitor_state(self, monitor, &scrub::snapshot(snapshot)).await
    }

    async fn load_monitor_states(&self) -> Result<Vec<(String, SavedState)>, StoreError> {
        PostgresStore::load_monitor_states(self).await
    }

    async fn quarantine_monitor_state(
        &self,
        monitor: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        PostgresStore::quarantine_monitor_state(self, monitor, reason, at).await
    }

    async fn uptime(&self, monitor: &str, now: Millis) -> Result<Uptime, StoreError> {
        PostgresStore::uptime(self, monitor, now).await
    }

    async fn daily_latency(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DailyLatency>, StoreError> {
        PostgresStore::daily_latency(self, monitor, now, days).await
    }

    async fn unresolved_alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        PostgresStore::unresolved_alert_groups(self).await
    }

    async fn commit_alerts(&self, commit: &AlertCommit) -> Result<(), StoreError> {
        PostgresStore::commit_alerts(self, &scrub::alert_commit(commit)).await
    }

    async fn pending_alerts(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        PostgresStore::pending_alerts(self, channel, limit).await
    }

    async fn alert_delivered(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        PostgresStore::alert_delivered(self, id, at).await
    }

    async fn alert_attempt_failed(
        &self,
        id: i64,
        failure: &AttemptFailure,
    ) -> Result<(), StoreError> {
        PostgresStore::alert_attempt_failed(self, id, &scrub::attempt_failure(failure)).await
    }

    async fn outbox_entries(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        PostgresStore::outbox_entries(self, limit).await
    }

    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, StoreError> {
        PostgresStore::outbox_backlog(self).await
    }

    async fn prune_alerts(&self, before: Millis) -> Result<u64, StoreError> {
        PostgresStore::prune_alerts(self, before).await
    }

    /// The same cutoffs as SQLite's prune. Results and rollups are keyed monitor first here, so
    /// both go monitor by monitor (a few index range deletes each), in short transactions.
    /// Deleted rows' space is reused by later writes once autovacuum has passed; the database's
    /// files do not shrink.
    async fn prune(&self, now: Millis, retention: &Retention) -> Result<Pruned, StoreError> {
        let keys: Vec<i64> = sqlx::query_scalar("SELECT key FROM monitors ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        let mut pruned = Pruned::default();
        let raw_cutoff = now.saturating_sub(retention.raw);
        let rollup_cutoffs: Vec<(i16, Millis)> = Resolution::ALL
            .into_iter()
            .map(|resolution| {
                let keep = match resolution {
                    Resolution::Minute => retention.minute,
                    Resolution::Hour => retention.hour,
                    Resolution::Day => retention.day,
                };
                // A bucket goes once all of it is older than the cutoff.
                let last_start = now.saturating_sub(keep).saturating_sub(resolution.width());
                (resolution_code(resolution), last_start)
            })
            .collect();
        for chunk in keys.chunks(PRUNE_MONITORS_PER_TX) {
            let mut tx = self.pool.begin().await?;
            pruned.results +=
                sqlx::query("DELETE FROM results WHERE monitor_key = ANY($1) AND at < $2")
                    .bind(chunk)
                    .bind(raw_cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            for (resolution, last_start) in &rollup_cutoffs {
                pruned.rollups += sqlx::query(
                    "DELETE FROM rollups
                      WHERE monitor_key = ANY($1) AND resolution = $2 AND bucket_start <= $3",
                )
                .bind(chunk)
                .bind(resolution)
                .bind(last_start)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
        }

        let cutoff = now.saturating_sub(retention.day);
        pruned.incidents =
            sqlx::query("DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        pruned.official = self.delete_old_official(cutoff).await?;
        Ok(pruned)
    }

    /// The whole database as PostgreSQL counts it (tables, indexes, TOAST, free space not yet
    /// reused): what the operator's disk pays.
    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await
            .map_err(read_error)?;
        Ok(bytes.unsigned_abs())
    }

    // === status page reads ===

    async fn daily_counts(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DayCounts>, StoreError> {
        PostgresStore::daily_counts(self, monitor, now, days).await
    }

    /// Percentiles are read from each bucket's histogram exactly as `daily_latency` does.
    async fn latency_series(
        &self,
        monitor: &str,
        step: SeriesStep,
        now: Millis,
        buckets: u32,
    ) -> Result<Vec<LatencyPoint>, StoreError> {
        PostgresStore::latency_series(self, monitor, step, now, buckets).await
    }

    async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError> {
        PostgresStore::incidents_between(self, from, to).await
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

    // === the durable queue ===

    fn queue(&self) -> &dyn super::QueueStore {
        self
    }
}

/// A rollup resolution's code in the schema's SMALLINT.
fn resolution_code(resolution: Resolution) -> i16 {
    i16::try_from(resolution.code()).expect("resolution codes are 0, 1 and 2")
}

// === status page reads ===

/// Rollup rows of one monitor ($1) at resolution $2 whose buckets start in [$3, $4], oldest
/// first; callers put the select list over `r` in front. One index range scan: the primary key
/// is (monitor_key, resolution, bucket_start).
fn buckets_of_one_monitor(select: &str) -> SqlStr {
    dynamic_sql(format!(
        "SELECT {select} FROM rollups AS r
          WHERE r.monitor_key = $1 AND r.resolution = $2 AND r.bucket_start BETWEEN $3 AND $4
          ORDER BY r.bucket_start"
    ))
}

/// Counters are INTEGER here and read as `bigint`, as every integer the store reads.
static DAY_COUNTS: std::sync::LazyLock<SqlStr> = std::sync::LazyLock::new(|| {
    buckets_of_one_monitor(
        "r.bucket_start, r.total::bigint, r.healthy::bigint, r.degraded::bigint,
         r.provider_failed::bigint, r.other_failed::bigint",
    )
});

/// Bucket starts with their histograms, for `daily_latency` and `latency_series`.
static BUCKET_HISTOGRAMS: std::sync::LazyLock<SqlStr> = std::sync::LazyLock::new(|| {
    let columns: Vec<String> = rollup::histogram_columns()
        .map(|c| format!("r.{c}::bigint"))
        .collect();
    buckets_of_one_monitor(&format!("r.bucket_start, {}", columns.join(", ")))
});

impl PostgresStore {
    /// (bucket start, percentiles) of one monitor's buckets of `resolution` in [from, to].
    async fn bucket_percentiles(
        &self,
        key: i64,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, (f64, f64, u64))>, StoreError> {
        let rows = sqlx::query(BUCKET_HISTOGRAMS.clone())
            .bind(key)
            .bind(resolution_code(resolution))
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let mut points = Vec::with_capacity(rows.len());
        for row in &rows {
            let start: Millis = row.try_get(0).map_err(read_error)?;
            if let Some(percentiles) = rollup::percentiles(&rows::histogram(row, 1)?) {
                points.push((start, percentiles));
            }
        }
        Ok(points)
    }

    async fn daily_latency(
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
        let span = i64::from(days).saturating_mul(crate::time::DAY_MS);
        let first = rollup::first_bucket_within(Resolution::Day, now, span);
        let points = self
            .bucket_percentiles(key, Resolution::Day, first, now)
            .await?;
        Ok(points
            .into_iter()
            .map(|(day, (p50_ms, p95_ms, samples))| DailyLatency {
                day,
                p50_ms,
                p95_ms,
                samples,
            })
            .collect())
    }

    async fn latency_series(
        &self,
        monitor: &str,
        step: SeriesStep,
        now: Millis,
        buckets: u32,
    ) -> Result<Vec<LatencyPoint>, StoreError> {
        let Some(key) = self.key_of(monitor).await? else {
            return Ok(Vec::new());
        };
        if buckets == 0 {
            return Ok(Vec::new());
        }
        let resolution = match step {
            SeriesStep::Hour => Resolution::Hour,
            SeriesStep::Day => Resolution::Day,
        };
        let first = rollup::first_of_last(resolution.width(), now, buckets);
        let points = self.bucket_percentiles(key, resolution, first, now).await?;
        Ok(points
            .into_iter()
            .map(|(start, (p50_ms, p95_ms, samples))| LatencyPoint {
                start,
                p50_ms,
                p95_ms,
                samples,
            })
            .collect())
    }

    async fn daily_counts(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DayCounts>, StoreError> {
        let Some(key) = self.key_of(monitor).await? else {
            return Ok(Vec::new());
        };
        if days == 0 {
            return Ok(Vec::new());
        }
        let resolution = Resolution::Day;
        let rows = sqlx::query(DAY_COUNTS.clone())
            .bind(key)
            .bind(resolution_code(resolution))
            .bind(rollup::first_of_last(resolution.width(), now, days))
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DayCounts {
                    day: row.try_get(0).map_err(read_error)?,
                    total: rows::count(row, 1)?,
                    healthy: rows::count(row, 2)?,
                    degraded: rows::count(row, 3)?,
                    provider_failed: rows::count(row, 4)?,
                    other_failed: rows::count(row, 5)?,
                })
            })
            .collect()
    }
}

//! The PostgreSQL back end of [`Store`](super::Store): a pool of connections to one database,
//! for installations that already run PostgreSQL or that will share one database between
//! several isdown instances.
//!
//! Most of the store's SQL is shared with SQLite (`store::sql`); this module owns what is
//! PostgreSQL's own: connecting (the migrations of `migrations/postgres/`, numbered as
//! SQLite's and applied on open under sqlx's advisory lock, so instances starting together
//! migrate once), opening an incident against concurrent openers, pruning monitor by monitor
//! and sizing here; results and rollups as `UNNEST` arrays in `results`; groups of queue lines
//! and claims that lock what they take in `queue`; what `db copy` writes in `import`.
//!
//! Nothing here assumes it is the only process on the database: ids come from identity
//! columns, "one open incident per monitor" is a unique index that `open_incident` leans on,
//! rollups are added to by upserts (row-locked by PostgreSQL, taken in key order so concurrent
//! writers cannot deadlock), and the only memory is the monitor-key cache, which cannot go
//! stale (`store::keys`). Like the SQLite store it decides nothing about monitors or incidents,
//! and it trusts no row it reads: anything that does not decode is [`StoreError::Corrupt`].

mod cluster;
pub mod import;
mod queue;
mod results;
#[doc(hidden)]
pub mod scratch;

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::{Executor, SqlStr, Transaction};

use super::cluster::Cluster;
use super::keys::MonitorKeys;
use super::migrations::{POSTGRES as POSTGRES_MIGRATIONS, migrator};
use super::rollup::Resolution;
use super::rows::StoredRow;
use super::sql::incidents::{OPEN_INCIDENT_OF, insert_incident, insert_incident_sql};
use super::sql::results::load_keys;
use super::sql::{Backend, Dialect, PRUNE_MONITORS_PER_TX};
use super::{
    NewIncident, PoolSettings, PostgresUrl, Pruned, Retention, StoreError, dynamic_sql, read_error,
};
use crate::time::Millis;

/// Shown in `pg_stat_activity`, so a DBA can tell isdown's connections apart.
const APPLICATION_NAME: &str = "isdown";

/// 10 min: an idle connection is closed after this (the pool reopens one when needed).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// 30 min: every connection is replaced after this, so a failover or a DNS change behind the
/// host name is picked up without a restart.
const MAX_LIFETIME: Duration = Duration::from_secs(1_800);

/// How often `open_incident` retries when the open incident it collided with was closed before
/// it could read its id. Each round needs another process to open and close an incident of the
/// same monitor in between, so a third round is already beyond any real schedule.
const OPEN_ATTEMPTS: usize = 3;

/// The store. Share it behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    keys: MonitorKeys,
    cluster: cluster::PgCluster,
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
        migrator(&POSTGRES_MIGRATIONS).run(&pool).await?;
        let keys = load_keys(&pool).await?;
        let cluster = cluster::PgCluster { pool: pool.clone() };
        Ok(PostgresStore {
            pool,
            keys,
            cluster,
        })
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// === the dialect and the back end ===

impl Dialect for Postgres {
    fn connection(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self> {
        conn
    }

    fn locking(sql: &'static str) -> SqlStr {
        dynamic_sql(format!("{sql} FOR UPDATE"))
    }

    const SNAPSHOT_BYTES: &'static str = "convert_to(snapshot, 'UTF8')";
}

impl Backend for PostgresStore {
    type Db = Postgres;

    fn reader(&self) -> impl Executor<'_, Database = Postgres> {
        &self.pool
    }

    fn writer(&self) -> impl Executor<'_, Database = Postgres> {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn begin_bulk_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.begin_write().await
    }

    fn keys(&self) -> &MonitorKeys {
        &self.keys
    }

    fn cluster(&self) -> Option<&dyn Cluster> {
        Some(&self.cluster)
    }

    /// Leans on the partial unique index rather than on a lock of its own, so it holds however
    /// many processes open incidents at once: the insert does nothing when the monitor has an
    /// open incident (waiting for a concurrent opener's uncommitted insert to settle, not
    /// failing), and that incident is the answer.
    async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError> {
        let insert = insert_incident_sql!(
            "ON CONFLICT (monitor) WHERE ended_at IS NULL DO NOTHING RETURNING id"
        );
        for _ in 0..OPEN_ATTEMPTS {
            let inserted = insert_incident(insert, incident)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = inserted {
                return row.int(0);
            }
            // Another incident of this monitor is open (and committed, or the insert would
            // still be waiting): that one is the answer.
            let open = sqlx::query(OPEN_INCIDENT_OF)
                .bind(&incident.monitor)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = open {
                return row.int(0);
            }
        }
        Err(StoreError::Db(sqlx::Error::RowNotFound))
    }

    /// Results and rollups are keyed monitor first here, so both go monitor by monitor (a few
    /// index range deletes each), in short transactions. Deleted rows' space is reused once
    /// autovacuum has passed.
    async fn prune_history(
        &self,
        monitors: &[i64],
        now: Millis,
        retention: &Retention,
        pruned: &mut Pruned,
    ) -> Result<(), StoreError> {
        let raw_cutoff = now.saturating_sub(retention.raw);
        // Each monitor's rows are a few index range deletes.
        for chunk in monitors.chunks(PRUNE_MONITORS_PER_TX) {
            let mut tx = self.pool.begin().await?;
            pruned.results +=
                sqlx::query("DELETE FROM results WHERE monitor_key = ANY($1) AND at < $2")
                    .bind(chunk)
                    .bind(raw_cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            for resolution in Resolution::ALL {
                pruned.rollups += sqlx::query(
                    "DELETE FROM rollups
                      WHERE monitor_key = ANY($1) AND resolution = $2 AND bucket_start <= $3",
                )
                .bind(chunk)
                .bind(resolution_code(resolution))
                .bind(resolution.last_start_to_prune(now, retention))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
        }
        Ok(())
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
}

/// A rollup resolution's code in the schema's SMALLINT.
fn resolution_code(resolution: Resolution) -> i16 {
    i16::try_from(resolution.code()).expect("resolution codes are 0, 1 and 2")
}

//! The PostgreSQL [`Cluster`]: members in `peers`, leases in `leases` (migration 7), times from
//! the database's own clock.
//!
//! A lease is valid while its holder is a live member (its heartbeat, one row, is fresher than
//! the lease time) or, for its first lease time, by its own `expires_at`. Renewing is therefore
//! the heartbeat alone: a round writes only the leases that change hands. Before, every round
//! rewrote every lease an instance held, and at 25,000 monitors an instance's round was one
//! statement of 25,000 row updates every 5 s that PostgreSQL logged at 1–3 s (BENCHMARKS.md).
//!
//! A round is one transaction: it reads the names the holder has (by the `holder` index), and
//! works out here what to give up and what to take, so the statements that write carry only
//! those names — none in a steady round. (Comparing the whole wanted list in SQL, with
//! `NOT EXISTS` over `UNNEST` or `<> ALL`, planned as a scan of the list per held row: 25,000 ×
//! 25,000 comparisons, up to 6 s a round.) The upsert takes a lease only where it is free or
//! lapsed, so two instances claiming the same name at once cannot both get it (the row's lock
//! orders them; the second sees the first's fresh lease).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::store::StoreError;
use crate::store::cluster::{Cluster, Member, RegionReport};
use crate::time::Millis;

/// The database's clock in Unix milliseconds.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

const HEARTBEAT: &str = concat!(
    "INSERT INTO peers (instance, region, started_at, seen_at) VALUES ($1, $2, ",
    now_ms!(),
    ", ",
    now_ms!(),
    ") ON CONFLICT (instance) DO UPDATE SET region = excluded.region, seen_at = excluded.seen_at"
);

const MEMBERS: &str = concat!(
    "SELECT instance, region FROM peers WHERE seen_at > ",
    now_ms!(),
    " - $1 ORDER BY region, instance"
);

/// Members not seen for a day are forgotten (their rows would only grow the table).
const FORGET: &str = concat!(
    "DELETE FROM peers WHERE seen_at < ",
    now_ms!(),
    " - 86400000"
);

const HELD: &str = "SELECT name FROM leases WHERE holder = $1";

const RELEASE: &str = "DELETE FROM leases WHERE holder = $1 AND name = ANY($2)";

/// Takes each name where it is free, or has lapsed: past its `expires_at` and its holder not a
/// live member. Answers the names taken.
const TAKE: &str = concat!(
    "INSERT INTO leases (name, holder, expires_at)
     SELECT name, $1, ",
    now_ms!(),
    " + $3 FROM UNNEST($2::TEXT[]) AS wanted(name)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
      WHERE leases.expires_at < ",
    now_ms!(),
    " AND NOT EXISTS (SELECT 1 FROM peers WHERE peers.instance = leases.holder AND peers.seen_at > ",
    now_ms!(),
    " - $3)
     RETURNING name"
);

const REPORT: &str = concat!(
    "INSERT INTO region_states (monitor, region, state, verdict, since, changed_at)
     VALUES ($1, $2, $3, $4, $5, ",
    now_ms!(),
    ") ON CONFLICT (monitor, region) DO UPDATE SET state = excluded.state,
       verdict = excluded.verdict, since = excluded.since, changed_at = excluded.changed_at"
);

/// `SELECT` of region reports, then `$rest`.
macro_rules! reports {
    ($rest:literal) => {
        concat!(
            "SELECT monitor, region, state, verdict, since, changed_at FROM region_states ",
            $rest
        )
    };
}

const REPORTS_OF: &str = reports!("WHERE monitor = $1 ORDER BY region");
const REPORTS_AFTER: &str = reports!("WHERE changed_at > $1 ORDER BY changed_at");

/// The cluster of the PostgreSQL store.
#[derive(Debug)]
pub struct PgCluster {
    pub(super) pool: PgPool,
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

fn report(row: &sqlx::postgres::PgRow) -> Result<RegionReport, StoreError> {
    Ok(RegionReport {
        monitor: row.try_get(0)?,
        region: row.try_get(1)?,
        state: row.try_get(2)?,
        verdict: row.try_get(3)?,
        since: row.try_get(4)?,
        changed_at: row.try_get(5)?,
    })
}

#[async_trait]
impl Cluster for PgCluster {
    async fn heartbeat(&self, me: &Member, ttl: Duration) -> Result<Vec<Member>, StoreError> {
        sqlx::query(HEARTBEAT)
            .bind(&me.instance)
            .bind(&me.region)
            .execute(&self.pool)
            .await?;
        sqlx::query(FORGET).execute(&self.pool).await?;
        let rows = sqlx::query(MEMBERS)
            .bind(millis(ttl))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    instance: row.try_get(0)?,
                    region: row.try_get(1)?,
                })
            })
            .collect()
    }

    async fn hold(
        &self,
        holder: &str,
        names: &[String],
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut tx = self.pool.begin().await?;
        let before: Vec<String> = sqlx::query_scalar(HELD)
            .bind(holder)
            .fetch_all(&mut *tx)
            .await?;
        let release: Vec<&str> = before
            .iter()
            .map(String::as_str)
            .filter(|name| !wanted.contains(name))
            .collect();
        if !release.is_empty() {
            sqlx::query(RELEASE)
                .bind(holder)
                .bind(&release)
                .execute(&mut *tx)
                .await?;
        }
        let mut held: HashSet<String> = before
            .into_iter()
            .filter(|n| wanted.contains(n.as_str()))
            .collect();
        let missing: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|name| !held.contains(*name))
            .collect();
        if !missing.is_empty() {
            let taken: Vec<String> = sqlx::query_scalar(TAKE)
                .bind(holder)
                .bind(&missing)
                .bind(millis(ttl))
                .fetch_all(&mut *tx)
                .await?;
            held.extend(taken);
        }
        tx.commit().await?;
        Ok(names
            .iter()
            .filter(|n| held.contains(*n))
            .cloned()
            .collect())
    }

    async fn leave(&self, instance: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM leases WHERE holder = $1")
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM peers WHERE instance = $1")
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn report_region(&self, report: &RegionReport) -> Result<(), StoreError> {
        sqlx::query(REPORT)
            .bind(&report.monitor)
            .bind(&report.region)
            .bind(&report.state)
            .bind(&report.verdict)
            .bind(report.since)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn regions_of(&self, monitor: &str) -> Result<Vec<RegionReport>, StoreError> {
        let rows = sqlx::query(REPORTS_OF)
            .bind(monitor)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(report).collect()
    }

    async fn regions_changed(&self, after: Millis) -> Result<Vec<RegionReport>, StoreError> {
        let rows = sqlx::query(REPORTS_AFTER)
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(report).collect()
    }
}

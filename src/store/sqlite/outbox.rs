//! The alert outbox in SQLite: alert groups with their incidents, and queued messages.
//!
//! The store keeps what the alert rules decided and what each channel's worker did; it decides
//! nothing itself. `commit_alerts` is one transaction, so a pass of the rules is either wholly
//! stored (and will be delivered) or not at all (and will be decided again after a restart).

use sqlx::Row;

use super::{BEGIN_WRITE, SqliteStore, read_error};
use crate::store::rows;
use crate::store::{
    AlertCommit, AlertGroup, AttemptFailure, OutboxBacklog, OutboxEntry, StoreError,
};
use crate::time::Millis;

const UNRESOLVED_GROUPS: &str = "
    SELECT g.id, g.dedup_key, g.kind, g.opened_at, g.last_sent_at, g.resolved_at,
           m.incident_id, i.id AS present, i.ended_at
      FROM alert_groups g
      LEFT JOIN alert_group_incidents m ON m.group_id = g.id
      LEFT JOIN incidents i ON i.id = m.incident_id
     WHERE g.resolved_at IS NULL
     ORDER BY g.id, m.incident_id";

macro_rules! entry_columns {
    () => {
        "id, channel, dedup_key, event, payload, created_at, attempts, next_attempt_at, \
         delivered_at, failed_at, last_error"
    };
}

const PENDING: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM outbox WHERE channel = ?1 AND delivered_at IS NULL AND failed_at IS NULL
      ORDER BY id LIMIT ?2"
);

const ENTRIES: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM outbox ORDER BY id DESC LIMIT ?1"
);

/// Every entry after id ?1, in id order, ?2 at a time (`db copy`).
pub(super) const ENTRIES_AFTER: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2"
);

const BACKLOG: &str = "
    SELECT channel,
           SUM(delivered_at IS NULL AND failed_at IS NULL) AS pending,
           MIN(CASE WHEN delivered_at IS NULL AND failed_at IS NULL THEN created_at END) AS oldest,
           SUM(failed_at IS NOT NULL) AS failed
      FROM outbox GROUP BY channel ORDER BY channel";

impl SqliteStore {
    pub(super) async fn unresolved_alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        let rows = sqlx::query(UNRESOLVED_GROUPS)
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows::alert_groups(&rows)
    }

    pub(super) async fn commit_alerts(&self, commit: &AlertCommit) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        for group in &commit.new_groups {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO alert_groups (dedup_key, kind, opened_at, last_sent_at)
                 VALUES (?1, ?2, ?3, ?3) RETURNING id",
            )
            .bind(&group.dedup_key)
            .bind(group.kind.as_str())
            .bind(group.opened_at)
            .fetch_one(&mut *tx)
            .await?;
            for incident in &group.incidents {
                sqlx::query(
                    "INSERT OR IGNORE INTO alert_group_incidents (group_id, incident_id)
                     VALUES (?1, ?2)",
                )
                .bind(id)
                .bind(incident)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (key, incidents) in &commit.joined {
            for incident in incidents {
                sqlx::query(
                    "INSERT OR IGNORE INTO alert_group_incidents (group_id, incident_id)
                     SELECT id, ?2 FROM alert_groups WHERE dedup_key = ?1",
                )
                .bind(key)
                .bind(incident)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (key, at) in &commit.reminded {
            sqlx::query("UPDATE alert_groups SET last_sent_at = ?2 WHERE dedup_key = ?1")
                .bind(key)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        for (key, at) in &commit.resolved {
            sqlx::query(
                "UPDATE alert_groups SET resolved_at = ?2
                  WHERE dedup_key = ?1 AND resolved_at IS NULL",
            )
            .bind(key)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        for e in &commit.entries {
            sqlx::query(
                "INSERT INTO outbox (channel, dedup_key, event, payload, created_at,
                                     next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )
            .bind(&e.channel)
            .bind(&e.dedup_key)
            .bind(&e.event)
            .bind(&e.payload)
            .bind(e.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn pending_alerts(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(PENDING)
            .bind(channel)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::outbox_entry).collect()
    }

    pub(super) async fn alert_delivered(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL
              WHERE id = ?1 AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    pub(super) async fn alert_attempt_failed(
        &self,
        id: i64,
        failure: &AttemptFailure,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                               failed_at = CASE WHEN ?4 THEN ?5 END
              WHERE id = ?1 AND delivered_at IS NULL AND failed_at IS NULL",
        )
        .bind(id)
        .bind(&failure.error)
        .bind(failure.next_attempt_at)
        .bind(failure.give_up)
        .bind(failure.at)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    pub(super) async fn outbox_entries(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(ENTRIES)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::outbox_entry).collect()
    }

    pub(super) async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, StoreError> {
        let rows = sqlx::query(BACKLOG)
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter()
            .map(|row| {
                let count = |name: &str| -> Result<u64, StoreError> {
                    let n: Option<i64> = row.try_get(name).map_err(read_error)?;
                    Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
                };
                Ok(OutboxBacklog {
                    channel: row.try_get("channel").map_err(read_error)?,
                    pending: count("pending")?,
                    oldest_pending_at: row.try_get("oldest").map_err(read_error)?,
                    failed: count("failed")?,
                })
            })
            .collect()
    }

    pub(super) async fn prune_alerts(&self, before: Millis) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let entries = sqlx::query(
            "DELETE FROM outbox
              WHERE created_at < ?1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let groups = sqlx::query(
            "DELETE FROM alert_groups WHERE resolved_at IS NOT NULL AND resolved_at < ?1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(entries + groups)
    }
}

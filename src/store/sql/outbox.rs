//! The alert outbox, once for both back ends: alert groups with their incidents, and queued
//! messages.
//!
//! The store keeps what the alert rules decided and what each channel's worker did; it decides
//! nothing itself. `commit_alerts` is one transaction, so a pass of the rules is either wholly
//! stored (and will be delivered) or not at all (and will be decided again after a restart).

use super::{Affected, Arg, Backend, on, read_all, require_row, write};
use crate::store::rows::{self, StoredRow};
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

/// `SELECT` of outbox entries, then `$rest` (a macro so that `concat!` can build whole static
/// queries from it).
macro_rules! select_entries {
    ($rest:literal) => {
        concat!(
            "SELECT id, channel, dedup_key, event, payload, created_at, attempts,
                    next_attempt_at, delivered_at, failed_at, last_error
               FROM outbox ",
            $rest
        )
    };
}

const PENDING: &str = select_entries!(
    "WHERE channel = $1 AND delivered_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT $2"
);

const ENTRIES: &str = select_entries!("ORDER BY id DESC LIMIT $1");

/// Every entry after id $1, in id order, $2 at a time (`db copy`).
pub const ENTRIES_AFTER: &str = select_entries!("WHERE id > $1 ORDER BY id LIMIT $2");

const BACKLOG: &str = "
    SELECT channel,
           COUNT(CASE WHEN delivered_at IS NULL AND failed_at IS NULL THEN 1 END) AS pending,
           MIN(CASE WHEN delivered_at IS NULL AND failed_at IS NULL THEN created_at END)
               AS oldest,
           COUNT(CASE WHEN failed_at IS NOT NULL THEN 1 END) AS failed
      FROM outbox GROUP BY channel ORDER BY channel";

const NEW_GROUP: &str = "INSERT INTO alert_groups (dedup_key, kind, opened_at, last_sent_at)
     VALUES ($1, $2, $3, $3) RETURNING id";

const ADD_MEMBER: &str = "INSERT INTO alert_group_incidents (group_id, incident_id)
     VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// A member joining the group with key $1 (SQLite wants the WHERE before an upsert clause on an
/// INSERT … SELECT, and it has one).
const JOIN_MEMBER: &str = "INSERT INTO alert_group_incidents (group_id, incident_id)
     SELECT id, $2 FROM alert_groups WHERE dedup_key = $1
     ON CONFLICT DO NOTHING";

const REMIND: &str = "UPDATE alert_groups SET last_sent_at = $2 WHERE dedup_key = $1";

const RESOLVE: &str = "UPDATE alert_groups SET resolved_at = $2
     WHERE dedup_key = $1 AND resolved_at IS NULL";

const QUEUE_ENTRY: &str = "INSERT INTO outbox (channel, dedup_key, event, payload, created_at,
                         next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $5)";

const DELIVERED: &str =
    "UPDATE outbox SET delivered_at = $2, attempts = attempts + 1, last_error = NULL
      WHERE id = $1 AND delivered_at IS NULL";

const ATTEMPT_FAILED: &str =
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3,
                       failed_at = CASE WHEN $4 THEN $5 END
      WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL";

const PRUNE_ENTRIES: &str = "DELETE FROM outbox
     WHERE created_at < $1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)";

const PRUNE_GROUPS: &str =
    "DELETE FROM alert_groups WHERE resolved_at IS NOT NULL AND resolved_at < $1";

pub async fn unresolved_groups<B: Backend>(store: &B) -> Result<Vec<AlertGroup>, StoreError> {
    let rows = sqlx::query(UNRESOLVED_GROUPS)
        .fetch_all(store.reader())
        .await?;
    rows::alert_groups(&rows)
}

/// Creating a group whose key exists is an error (the unique key refuses it), and then
/// nothing of the commit is stored.
pub async fn commit<B: Backend>(store: &B, commit: &AlertCommit) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    for group in &commit.new_groups {
        let row = sqlx::query(NEW_GROUP)
            .arg(group.dedup_key.as_str())
            .arg(group.kind.as_str())
            .arg(group.opened_at)
            .fetch_one(on(&mut tx))
            .await?;
        let id = row.int(0)?;
        for &incident in &group.incidents {
            sqlx::query(ADD_MEMBER)
                .arg(id)
                .arg(incident)
                .execute(on(&mut tx))
                .await?;
        }
    }
    for (key, incidents) in &commit.joined {
        for &incident in incidents {
            sqlx::query(JOIN_MEMBER)
                .arg(key.as_str())
                .arg(incident)
                .execute(on(&mut tx))
                .await?;
        }
    }
    for (statement, marks) in [(REMIND, &commit.reminded), (RESOLVE, &commit.resolved)] {
        for (key, at) in marks {
            sqlx::query(statement)
                .arg(key.as_str())
                .arg(*at)
                .execute(on(&mut tx))
                .await?;
        }
    }
    for e in &commit.entries {
        sqlx::query(QUEUE_ENTRY)
            .arg(e.channel.as_str())
            .arg(e.dedup_key.as_str())
            .arg(e.event.as_str())
            .arg(e.payload.as_str())
            .arg(e.created_at)
            .execute(on(&mut tx))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn pending<B: Backend>(
    store: &B,
    channel: &str,
    limit: u32,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let pending = sqlx::query(PENDING).arg(channel).arg(i64::from(limit));
    read_all(store, pending, rows::outbox_entry).await
}

/// An entry already delivered (or unknown) is `RowNotFound`: delivering twice is a bug.
pub async fn delivered<B: Backend>(store: &B, id: i64, at: Millis) -> Result<(), StoreError> {
    require_row(write(store, sqlx::query(DELIVERED).arg(id).arg(at)).await?)
}

/// Only a pending entry takes a failure; anything else is `RowNotFound`.
pub async fn attempt_failed<B: Backend>(
    store: &B,
    id: i64,
    failure: &AttemptFailure,
) -> Result<(), StoreError> {
    let failed = sqlx::query(ATTEMPT_FAILED)
        .arg(id)
        .arg(failure.error.as_str())
        .arg(failure.next_attempt_at)
        .arg(failure.give_up)
        .arg(failure.at);
    require_row(write(store, failed).await?)
}

pub async fn entries<B: Backend>(store: &B, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
    let entries = sqlx::query(ENTRIES).arg(i64::from(limit));
    read_all(store, entries, rows::outbox_entry).await
}

pub async fn backlog<B: Backend>(store: &B) -> Result<Vec<OutboxBacklog>, StoreError> {
    read_all(store, sqlx::query(BACKLOG), |row| {
        Ok(OutboxBacklog {
            channel: row.text("channel")?,
            pending: rows::queue_count(row, "pending")?,
            oldest_pending_at: row.int_or_null("oldest")?,
            failed: rows::queue_count(row, "failed")?,
        })
    })
    .await
}

pub async fn prune<B: Backend>(store: &B, before: Millis) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let mut pruned = 0;
    for statement in [PRUNE_ENTRIES, PRUNE_GROUPS] {
        pruned += sqlx::query(statement)
            .arg(before)
            .execute(on(&mut tx))
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(pruned)
}

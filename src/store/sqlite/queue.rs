//! Groups of queue lines in SQLite (the rest of the durable queue is shared:
//! `store::sql::queue`).
//!
//! Lines move in groups, and a group is one multi-row statement ([`MultiRow`]), not one per
//! line: each statement is a round trip to the connection's thread, which costs more than
//! SQLite's work for a line (BENCHMARKS.md, the batch benchmark). The `UPDATE`s that name lines
//! by `(batch_key, line)` pad their row list to a power of two with copies of its last row, so
//! any group up to [`MAX_ROWS_PER_STATEMENT`] lines is one statement drawn from a few texts: a
//! row named twice is still updated once. Uploaded files' lines are written through the
//! store's bulk connection (a small page cache: hundreds of MB pass through it once), claims
//! read requests through a reader (their pages pass through its cache, not the writer's).

use std::sync::LazyLock;

use sqlx::Transaction;
use sqlx::sqlite::{Sqlite, SqliteRow};

use super::{MAX_ROWS_PER_STATEMENT, MultiRow, SqliteStore, statement_chunks};
use crate::store::StoreError;
use crate::store::queue::{ClaimedLine, FileLine, LineResult, NewLine};
use crate::store::rows::{self, StoredRow};
use crate::store::sql::Backend;
use crate::store::sql::queue::{DONE, QueueLines, Recorded, bind_line_result};

/// Pending lines of in-progress batches for one model, in dispatch order, with their requests.
const CLAIMABLE: &str = "
    SELECT l.batch_key, l.line, l.custom_id, l.dispatches, f.content
      FROM queue_lines l
      JOIN queue_batches b ON b.key = l.batch_key
      JOIN queue_file_lines f ON f.file_key = b.input_file_key AND f.line = l.line
     WHERE l.state = 0 AND l.model = $1 AND b.status = 'in_progress'
     ORDER BY l.batch_key, l.line
     LIMIT $2";

/// Uploaded lines, a group per statement.
static INSERT_FILE_LINES: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO queue_file_lines (file_key, line, content)",
        3,
        "",
    )
});

/// A validated batch's lines, pending.
static INSERT_LINES: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO queue_lines (batch_key, line, custom_id, model, state)",
        5,
        "ON CONFLICT DO NOTHING",
    )
});

/// Takes the pending lines of a row list `(batch_key, line)`; returns those it took.
static CLAIM_LINES: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "UPDATE queue_lines SET state = 1, dispatches = dispatches + 1
          WHERE state = 0 AND (batch_key, line) IN (",
        2,
        ") RETURNING batch_key, line",
    )
});

/// Sends the lines in flight of a row list `(batch_key, line)` back to pending.
static RELEASE_LINES: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "UPDATE queue_lines SET state = 0 WHERE state = 1 AND (batch_key, line) IN (",
        2,
        ")",
    )
});

/// Writes the results of a row list over the lines still in flight; returns each line written
/// with its new state (its batch's counts are then moved by as many).
static RECORD_LINES: LazyLock<MultiRow> = LazyLock::new(|| {
    MultiRow::new(
        "WITH r (batch_key, line, state, finished_at, status_code, request_id, provider,
                 served_model, attempts, body, error_code, error_message) AS (",
        12,
        ") UPDATE queue_lines
             SET state = r.state, finished_at = r.finished_at, status_code = r.status_code,
                 request_id = r.request_id, provider = r.provider,
                 served_model = r.served_model, attempts = r.attempts, body = r.body,
                 error_code = r.error_code, error_message = r.error_message
            FROM r
           WHERE queue_lines.batch_key = r.batch_key AND queue_lines.line = r.line
             AND queue_lines.state = 1
       RETURNING queue_lines.batch_key, queue_lines.state",
    )
});

/// `rows` padded to the next power of two with copies of its last row (see the module doc).
fn padded<T>(rows: &[T]) -> impl Iterator<Item = &T> {
    let pad = rows.len().next_power_of_two() - rows.len();
    rows.iter().chain(rows.last().into_iter().cycle().take(pad))
}

/// `rows` in groups of at most [`MAX_ROWS_PER_STATEMENT`], for [`padded`] statements.
fn groups<T>(rows: &[T]) -> std::slice::Chunks<'_, T> {
    rows.chunks(MAX_ROWS_PER_STATEMENT)
}

impl QueueLines for SqliteStore {
    async fn append_file_lines(&self, file_key: i64, lines: &[FileLine]) -> Result<(), StoreError> {
        let mut tx = self.begin_bulk_write().await?;
        for chunk in statement_chunks(lines) {
            let mut insert = sqlx::query(INSERT_FILE_LINES.sql(chunk.len()));
            for line in chunk {
                insert = insert
                    .bind(file_key)
                    .bind(i64::from(line.line))
                    // A slice is bound without a copy (a `Vec` would be cloned): lines may be MBs.
                    .bind(line.content.as_slice());
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_lines(
        tx: &mut Transaction<'static, Sqlite>,
        batch_key: i64,
        lines: &[NewLine],
    ) -> Result<(), StoreError> {
        for chunk in statement_chunks(lines) {
            let mut insert = sqlx::query(INSERT_LINES.sql(chunk.len()));
            for line in chunk {
                insert = insert
                    .bind(batch_key)
                    .bind(i64::from(line.line))
                    .bind(line.custom_id.as_str())
                    .bind(line.model.as_str())
                    .bind(0_i64);
            }
            insert.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn claim_lines(&self, model: &str, limit: u32) -> Result<Vec<ClaimedLine>, StoreError> {
        // The requests are read on a reader (their pages pass through its small page cache,
        // not the writer's); the state change is one statement per group on the writer. A line
        // that stopped being pending in between (no such writer today) is left out: only
        // pending lines move.
        let rows = sqlx::query(CLAIMABLE)
            .bind(model)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        let candidates = line_keys(&rows)?;
        let mut taken: Vec<(i64, u32)> = Vec::with_capacity(candidates.len());
        for group in groups(&candidates) {
            let mut claim = sqlx::query(CLAIM_LINES.sql(group.len().next_power_of_two()));
            for (batch_key, line) in padded(group) {
                claim = claim.bind(*batch_key).bind(i64::from(*line));
            }
            taken.extend(line_keys(&claim.fetch_all(&self.writer).await?)?);
        }
        // Read before the claim counted this dispatch.
        rows.iter()
            .zip(&candidates)
            .filter(|(_, key)| taken.contains(key))
            .map(|(row, _)| rows::claimed_line(row, 1))
            .collect()
    }

    async fn record_lines(&self, results: &[LineResult]) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut recorded = Recorded::default();
        for group in groups(results) {
            let mut record = sqlx::query(RECORD_LINES.sql(group.len().next_power_of_two()));
            for result in padded(group) {
                record = bind_line_result(record, result);
            }
            for row in record.fetch_all(&mut *tx).await? {
                recorded.add(row.int("batch_key")?, row.int("state")? == DONE);
            }
        }
        let written = recorded.count_into(&mut tx).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn release_lines(&self, lines: &[(i64, u32)]) -> Result<(), StoreError> {
        // One statement per group: a group is its own transaction, and a line released is
        // released whichever group it was in.
        for group in groups(lines) {
            let mut release = sqlx::query(RELEASE_LINES.sql(group.len().next_power_of_two()));
            for (batch_key, line) in padded(group) {
                release = release.bind(*batch_key).bind(i64::from(*line));
            }
            release.execute(&self.writer).await?;
        }
        Ok(())
    }
}

/// `(batch_key, line)` of each row.
fn line_keys(rows: &[SqliteRow]) -> Result<Vec<(i64, u32)>, StoreError> {
    rows.iter()
        .map(|row| Ok((row.int("batch_key")?, rows::line_number(row, "line")?)))
        .collect()
}

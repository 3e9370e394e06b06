//! The durable queue in SQLite: uploaded files and their lines, batches, and request lines with
//! their state and result (schema in `migrations/0006_queue.sql`).
//!
//! Uploaded files' lines are written and deleted through the store's bulk connection (a small
//! page cache: hundreds of MB pass through it once), everything else through the writer.
//!
//! Every change of a line's state is a conditional `UPDATE` (inside a write transaction, or one
//! statement that is its own), so the state machine (pending → in flight → done or failed) holds
//! whatever runs concurrently: a result lands only on a line in flight, a claim only takes
//! pending lines. The store decides nothing about when lines run (`queue::dispatch` does); it
//! keeps counts in step with lines.
//!
//! Lines move in groups, and a group is one multi-row statement (`MultiRow`), not one per line:
//! each statement is a round trip to the connection's thread, which costs more than SQLite's
//! work for a line (BENCHMARKS.md, the batch benchmark). The `UPDATE`s that name lines by
//! `(batch_key, line)` pad their row list to a power of two with copies of its last row, so any
//! group up to [`MAX_ROWS_PER_STATEMENT`] lines is one statement drawn from a few texts: a row
//! named twice is still updated once.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row;

use super::{
    BEGIN_WRITE, MAX_ROWS_PER_STATEMENT, MultiRow, SqliteStore, read_error, statement_chunks,
};
use crate::store::queue::{
    BatchEnd, BatchRecord, BatchStatus, ClaimedLine, FileDeletion, FileLine, FilePurpose,
    FileRecord, LineError, LineOutcome, LineResult, ListPage, NewBatch, NewFile, NewLine,
    PendingLines, QueuePruned, QueueStore, ResultFile, ResultKind, StoredResult,
};
use crate::store::{StoreError, rows, scrub};
use crate::time::Millis;

/// Line states as stored (pending is 0 and in flight 1, written as literals in the SQL).
const DONE: i64 = 2;
const FAILED: i64 = 3;

fn outcome_code(outcome: LineOutcome) -> i64 {
    match outcome {
        LineOutcome::Done => DONE,
        LineOutcome::Failed => FAILED,
    }
}

fn kind_state(kind: ResultKind) -> i64 {
    match kind {
        ResultKind::Output => DONE,
        ResultKind::Error => FAILED,
    }
}

/// Statuses of a batch that has not ended, as an SQL list (a macro so `concat!` can use it).
macro_rules! open_statuses {
    () => {
        "('validating', 'in_progress', 'finalizing', 'cancelling')"
    };
}
#[cfg(test)]
const OPEN_STATUSES: &str = open_statuses!();

/// Columns of `queue_files f`, with the id of a result file's batch (`queue_batches b`).
macro_rules! file_columns {
    () => {
        "f.key, f.id, f.owner, f.filename, f.purpose, f.bytes, f.lines, f.created_at, \
         f.batch_key, f.result_kind, b.id AS batch_id"
    };
}

macro_rules! batch_columns {
    () => {
        "key, id, owner, input_file_key, input_file_id, endpoint, completion_window, metadata, \
         status, errors, created_at, in_progress_at, expires_at, finalizing_at, completed_at, \
         failed_at, expired_at, cancelling_at, cancelled_at, total, completed, failed, \
         output_file_id, error_file_id"
    };
}

const FILE_BY_ID: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM queue_files f LEFT JOIN queue_batches b ON b.key = f.batch_key
      WHERE f.owner = ?1 AND f.id = ?2 AND f.complete = 1"
);

/// ?2: the `after` file's key (NULL: from the start); ?3: 1 for newest first; ?4: purpose or
/// NULL; ?5: limit.
const FILES_PAGE: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM queue_files f LEFT JOIN queue_batches b ON b.key = f.batch_key
      WHERE f.owner = ?1 AND f.complete = 1 AND (?4 IS NULL OR f.purpose = ?4)
        AND (?2 IS NULL OR (?3 = 1 AND f.key < ?2) OR (?3 = 0 AND f.key > ?2))
      ORDER BY CASE WHEN ?3 = 1 THEN -f.key ELSE f.key END
      LIMIT ?5"
);

const BATCH_BY_ID: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)"
);

const BATCH_BY_KEY: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE key = ?1"
);

const BATCHES_PAGE: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE owner = ?1 AND (?2 IS NULL OR key < ?2)
      ORDER BY key DESC LIMIT ?3"
);

const OPEN_BATCHES: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE status IN ",
    open_statuses!(),
    " ORDER BY key"
);

/// An open batch reading the file ?1.
const FILE_USER: &str = concat!(
    "SELECT id FROM queue_batches WHERE input_file_key = ?1 AND status IN ",
    open_statuses!(),
    " ORDER BY key LIMIT 1"
);

/// Complete uploads created before ?1 that no open batch reads.
const STALE_UPLOADS: &str = concat!(
    "SELECT key FROM queue_files f
      WHERE complete = 1 AND batch_key IS NULL AND created_at < ?1
        AND NOT EXISTS (SELECT 1 FROM queue_batches b
                         WHERE b.input_file_key = f.key AND b.status IN ",
    open_statuses!(),
    ") ORDER BY key"
);

/// Pending lines of in-progress batches for one model, in dispatch order, with their requests.
const CLAIMABLE: &str = "
    SELECT l.batch_key, l.line, l.custom_id, l.dispatches, f.content
      FROM queue_lines l
      JOIN queue_batches b ON b.key = l.batch_key
      JOIN queue_file_lines f ON f.file_key = b.input_file_key AND f.line = l.line
     WHERE l.state = 0 AND l.model = ?1 AND b.status = 'in_progress'
     ORDER BY l.batch_key, l.line
     LIMIT ?2";

const RESULTS_PAGE: &str = "
    SELECT line, custom_id, status_code, request_id, provider, served_model, attempts, body,
           error_code, error_message
      FROM queue_lines
     WHERE batch_key = ?1 AND state = ?2 AND line > ?3
     ORDER BY line LIMIT ?4";

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

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn queue_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        sqlx::query("INSERT INTO queue_secret (id, secret) VALUES (1, ?1) ON CONFLICT DO NOTHING")
            .bind(fresh)
            .execute(&mut *tx)
            .await?;
        let secret: Vec<u8> = sqlx::query_scalar("SELECT secret FROM queue_secret WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(read_error)?;
        tx.commit().await?;
        Ok(secret)
    }

    async fn queue_file_begin(&self, file: &NewFile) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO queue_files (id, owner, filename, purpose, created_at, complete)
             VALUES (?1, ?2, ?3, ?4, ?5, 0) RETURNING key",
        )
        .bind(&file.id)
        .bind(&file.owner)
        .bind(&file.filename)
        .bind(file.purpose.as_str())
        .bind(file.created_at)
        .fetch_one(&self.writer)
        .await?)
    }

    async fn queue_file_append(&self, file_key: i64, lines: &[FileLine]) -> Result<(), StoreError> {
        let mut tx = self.bulk.begin_with(BEGIN_WRITE).await?;
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

    async fn queue_file_complete(
        &self,
        file_key: i64,
        bytes: u64,
        lines: u64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE queue_files SET complete = 1, bytes = ?2, lines = ?3 WHERE key = ?1",
        )
        .bind(file_key)
        .bind(to_i64(bytes))
        .bind(to_i64(lines))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    async fn queue_file_discard(&self, file_key: i64) -> Result<(), StoreError> {
        let mut tx = self.bulk.begin_with(BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM queue_file_lines WHERE file_key = ?1")
            .bind(file_key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM queue_files WHERE key = ?1 AND complete = 0")
            .bind(file_key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_file(&self, owner: &str, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let row = sqlx::query(FILE_BY_ID)
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error)?;
        row.as_ref().map(rows::queue_file).transpose()
    }

    async fn queue_files(
        &self,
        owner: &str,
        page: &ListPage,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let after: Option<i64> = match &page.after {
            Some(id) => {
                sqlx::query_scalar("SELECT key FROM queue_files WHERE owner = ?1 AND id = ?2")
                    .bind(owner)
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(read_error)?
                    // An unknown cursor starts past every file: an empty page, not the first one.
                    .or(Some(if page.newest_first {
                        i64::MIN
                    } else {
                        i64::MAX
                    }))
            }
            None => None,
        };
        let rows = sqlx::query(FILES_PAGE)
            .bind(owner)
            .bind(after)
            .bind(i64::from(page.newest_first))
            .bind(page.purpose.map(FilePurpose::as_str))
            .bind(i64::from(page.limit))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_file).collect()
    }

    async fn queue_file_delete(&self, owner: &str, id: &str) -> Result<FileDeletion, StoreError> {
        let mut tx = self.bulk.begin_with(BEGIN_WRITE).await?;
        let key: Option<i64> = sqlx::query_scalar(
            "SELECT key FROM queue_files WHERE owner = ?1 AND id = ?2 AND complete = 1",
        )
        .bind(owner)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(key) = key else {
            return Ok(FileDeletion::NotFound);
        };
        let user: Option<String> = sqlx::query_scalar(FILE_USER)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(batch) = user {
            return Ok(FileDeletion::InUse { batch });
        }
        sqlx::query("DELETE FROM queue_file_lines WHERE file_key = ?1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM queue_files WHERE key = ?1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(FileDeletion::Deleted)
    }

    async fn queue_file_lines(
        &self,
        file_key: i64,
        after: u32,
        limit: u32,
    ) -> Result<Vec<FileLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT line, content FROM queue_file_lines WHERE file_key = ?1 AND line > ?2
             ORDER BY line LIMIT ?3",
        )
        .bind(file_key)
        .bind(i64::from(after))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(read_error)?;
        rows.iter()
            .map(|row| {
                Ok(FileLine {
                    line: rows::line_number(row, "line")?,
                    content: row.try_get("content").map_err(read_error)?,
                })
            })
            .collect()
    }

    async fn queue_batch_create(&self, batch: &NewBatch) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO queue_batches (id, owner, input_file_key, input_file_id, endpoint,
                                        completion_window, metadata, status, created_at,
                                        expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'validating', ?8, ?9) RETURNING key",
        )
        .bind(&batch.id)
        .bind(&batch.owner)
        .bind(batch.input_file_key)
        .bind(&batch.input_file_id)
        .bind(&batch.endpoint)
        .bind(&batch.completion_window)
        .bind(&batch.metadata)
        .bind(batch.created_at)
        .bind(batch.expires_at)
        .fetch_one(&self.writer)
        .await?)
    }

    async fn queue_batch(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<BatchRecord>, StoreError> {
        let row = sqlx::query(BATCH_BY_ID)
            .bind(id)
            .bind(owner)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error)?;
        row.as_ref().map(rows::queue_batch).transpose()
    }

    async fn queue_batches(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        let after: Option<i64> = match after {
            Some(id) => Some(
                sqlx::query_scalar("SELECT key FROM queue_batches WHERE owner = ?1 AND id = ?2")
                    .bind(owner)
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(read_error)?
                    .unwrap_or(i64::MIN),
            ),
            None => None,
        };
        let rows = sqlx::query(BATCHES_PAGE)
            .bind(owner)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_batch).collect()
    }

    async fn queue_open_batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        let rows = sqlx::query(OPEN_BATCHES)
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_batch).collect()
    }

    async fn queue_lines_add(&self, batch_key: i64, lines: &[NewLine]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM queue_batches WHERE key = ?1")
                .bind(batch_key)
                .fetch_optional(&mut *tx)
                .await?;
        if status.as_deref() != Some(BatchStatus::Validating.as_str()) {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
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
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn queue_batch_start(&self, batch_key: i64, at: Millis) -> Result<bool, StoreError> {
        let started = sqlx::query(
            "UPDATE queue_batches
                SET status = 'in_progress', in_progress_at = ?2,
                    total = (SELECT COUNT(*) FROM queue_lines WHERE batch_key = ?1)
              WHERE key = ?1 AND status = 'validating'",
        )
        .bind(batch_key)
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(started.rows_affected() == 1)
    }

    async fn queue_batch_reject(
        &self,
        batch_key: i64,
        errors: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        let errors = crate::secret::scrub_json_text(errors);
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM queue_lines WHERE batch_key = ?1")
            .bind(batch_key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE queue_batches SET status = 'failed', errors = ?2, failed_at = ?3, total = 0
              WHERE key = ?1 AND status IN ('validating', 'cancelling')",
        )
        .bind(batch_key)
        .bind(&errors)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_batch_cancel(
        &self,
        owner: &str,
        id: &str,
        at: Millis,
    ) -> Result<Option<BatchRecord>, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "UPDATE queue_batches SET status = 'cancelling', cancelling_at = ?3
              WHERE owner = ?1 AND id = ?2 AND status IN ('validating', 'in_progress')",
        )
        .bind(owner)
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(BATCH_BY_ID)
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await
            .map_err(read_error)?;
        tx.commit().await?;
        row.as_ref().map(rows::queue_batch).transpose()
    }

    async fn queue_lines_close(
        &self,
        batch_key: i64,
        error: &LineError,
        at: Millis,
    ) -> Result<u64, StoreError> {
        let error = scrub::line_error(error);
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let closed = sqlx::query(
            "UPDATE queue_lines SET state = 3, finished_at = ?2, error_code = ?3,
                                    error_message = ?4
              WHERE batch_key = ?1 AND state = 0",
        )
        .bind(batch_key)
        .bind(at)
        .bind(&error.code)
        .bind(&error.message)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE queue_batches SET failed = failed + ?2 WHERE key = ?1")
            .bind(batch_key)
            .bind(to_i64(closed))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(closed)
    }

    async fn queue_batch_finish(
        &self,
        batch_key: i64,
        end: BatchEnd,
        at: Millis,
        files: &[ResultFile],
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let row = sqlx::query(BATCH_BY_KEY)
            .bind(batch_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(read_error)?;
        let Some(batch) = row.as_ref().map(rows::queue_batch).transpose()? else {
            return Ok(false);
        };
        if batch.status.is_final() {
            return Ok(false);
        }
        if batch.times.in_progress_at.is_none() {
            // Cancelled while validating: the lines found valid so far never ran.
            sqlx::query("DELETE FROM queue_lines WHERE batch_key = ?1")
                .bind(batch_key)
                .execute(&mut *tx)
                .await?;
        }
        let file_of = |kind: ResultKind| files.iter().find(|f| f.kind == kind);
        for file in files {
            sqlx::query(
                "INSERT INTO queue_files (id, owner, filename, purpose, bytes, lines, created_at,
                                          complete, batch_key, result_kind)
                 VALUES (?1, ?2, ?3, 'batch_output', ?4, ?5, ?6, 1, ?7, ?8)",
            )
            .bind(&file.id)
            .bind(&batch.owner)
            .bind(format!("{}_{}.jsonl", batch.id, file.kind.as_str()))
            .bind(to_i64(file.bytes))
            .bind(to_i64(file.lines))
            .bind(at)
            .bind(batch_key)
            .bind(file.kind.as_str())
            .execute(&mut *tx)
            .await?;
        }
        // The end's own timestamp column is chosen from a fixed list, never from input.
        let end_column = match end {
            BatchEnd::Completed => "completed_at",
            BatchEnd::Expired => "expired_at",
            BatchEnd::Cancelled => "cancelled_at",
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE queue_batches
                SET status = ?2, finalizing_at = COALESCE(finalizing_at, ?3), {end_column} = ?3,
                    output_file_id = ?4, error_file_id = ?5
              WHERE key = ?1"
        )))
        .bind(batch_key)
        .bind(end.status().as_str())
        .bind(at)
        .bind(file_of(ResultKind::Output).map(|f| f.id.as_str()))
        .bind(file_of(ResultKind::Error).map(|f| f.id.as_str()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn queue_claim(&self, model: &str, limit: u32) -> Result<Vec<ClaimedLine>, StoreError> {
        // The requests are read on a reader (their pages pass through its small page cache,
        // not the writer's); the state change is one statement per group on the writer. A line
        // that stopped being pending in between (no such writer today) is left out: only
        // pending lines move.
        let rows = sqlx::query(CLAIMABLE)
            .bind(model)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        let mut candidates = Vec::with_capacity(rows.len());
        for row in &rows {
            let batch_key: i64 = row.try_get("batch_key").map_err(read_error)?;
            candidates.push((batch_key, rows::line_number(row, "line")?));
        }
        let mut taken: Vec<(i64, u32)> = Vec::with_capacity(candidates.len());
        for group in groups(&candidates) {
            let mut claim = sqlx::query(CLAIM_LINES.sql(group.len().next_power_of_two()));
            for (batch_key, line) in padded(group) {
                claim = claim.bind(*batch_key).bind(i64::from(*line));
            }
            for row in claim.fetch_all(&self.writer).await? {
                let batch_key: i64 = row.try_get("batch_key").map_err(read_error)?;
                taken.push((batch_key, rows::line_number(&row, "line")?));
            }
        }
        let mut claimed = Vec::with_capacity(taken.len());
        for (row, key) in rows.iter().zip(&candidates) {
            if !taken.contains(key) {
                continue;
            }
            let dispatches: i64 = row.try_get("dispatches").map_err(read_error)?;
            claimed.push(ClaimedLine {
                batch_key: key.0,
                line: key.1,
                custom_id: row.try_get("custom_id").map_err(read_error)?,
                request: row.try_get("content").map_err(read_error)?,
                dispatches: u32::try_from(dispatches.saturating_add(1)).unwrap_or(u32::MAX),
            });
        }
        Ok(claimed)
    }

    async fn queue_record(&self, results: &[LineResult]) -> Result<u64, StoreError> {
        let results = scrub::line_results(results);
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        // (batch key, completed, failed) written, folded into each batch's counts at the end.
        let mut counts: Vec<(i64, i64, i64)> = Vec::new();
        let mut written = 0;
        for group in groups(&results) {
            let mut record = sqlx::query(RECORD_LINES.sql(group.len().next_power_of_two()));
            for result in padded(group) {
                let response = result.response.as_ref();
                let error = result.error.as_ref();
                record = record
                    .bind(result.batch_key)
                    .bind(i64::from(result.line))
                    .bind(outcome_code(result.outcome))
                    .bind(result.finished_at)
                    .bind(response.map(|r| i64::from(r.status_code)))
                    .bind(response.map(|r| r.request_id.as_str()))
                    .bind(response.and_then(|r| r.provider.as_deref()))
                    .bind(response.and_then(|r| r.model.as_deref()))
                    .bind(response.and_then(|r| r.attempts).map(i64::from))
                    .bind(response.map(|r| r.body.as_slice()))
                    .bind(error.map(|e| e.code.as_str()))
                    .bind(error.map(|e| e.message.as_str()));
            }
            for row in record.fetch_all(&mut *tx).await? {
                let batch_key: i64 = row.try_get("batch_key").map_err(read_error)?;
                let state: i64 = row.try_get("state").map_err(read_error)?;
                let (done, failed) = if state == DONE { (1, 0) } else { (0, 1) };
                written += 1;
                match counts.iter_mut().find(|(key, _, _)| *key == batch_key) {
                    Some(entry) => {
                        entry.1 += done;
                        entry.2 += failed;
                    }
                    None => counts.push((batch_key, done, failed)),
                }
            }
        }
        for (key, done, failed) in counts {
            sqlx::query(
                "UPDATE queue_batches SET completed = completed + ?2, failed = failed + ?3
                  WHERE key = ?1",
            )
            .bind(key)
            .bind(done)
            .bind(failed)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn queue_release(&self, lines: &[(i64, u32)]) -> Result<(), StoreError> {
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

    async fn queue_recover(&self) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let back = sqlx::query("UPDATE queue_lines SET state = 0 WHERE state = 1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM queue_file_lines
              WHERE file_key IN (SELECT key FROM queue_files WHERE complete = 0)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM queue_files WHERE complete = 0")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(back)
    }

    async fn queue_pending(&self) -> Result<Vec<PendingLines>, StoreError> {
        let rows = sqlx::query(
            "SELECT model, COUNT(*) AS pending FROM queue_lines WHERE state = 0
              GROUP BY model ORDER BY model",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(read_error)?;
        rows.iter()
            .map(|row| {
                Ok(PendingLines {
                    model: row.try_get("model").map_err(read_error)?,
                    pending: rows::queue_count(row, "pending")?,
                })
            })
            .collect()
    }

    async fn queue_results(
        &self,
        batch_key: i64,
        kind: ResultKind,
        after: u32,
        limit: u32,
    ) -> Result<Vec<StoredResult>, StoreError> {
        let rows = sqlx::query(RESULTS_PAGE)
            .bind(batch_key)
            .bind(kind_state(kind))
            .bind(i64::from(after))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_result).collect()
    }

    async fn queue_prune(&self, before: Millis) -> Result<QueuePruned, StoreError> {
        let mut pruned = QueuePruned::default();
        let ended: Vec<i64> = sqlx::query_scalar(
            "SELECT key FROM queue_batches
              WHERE status IN ('failed', 'completed', 'expired', 'cancelled')
                AND COALESCE(completed_at, expired_at, cancelled_at, failed_at) < ?1
              ORDER BY key",
        )
        .bind(before)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error)?;
        // One transaction per batch: a batch's lines may be many, and writers must not wait long.
        for key in ended {
            let mut tx = self.bulk.begin_with(BEGIN_WRITE).await?;
            sqlx::query("DELETE FROM queue_lines WHERE batch_key = ?1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
            pruned.files += sqlx::query("DELETE FROM queue_files WHERE batch_key = ?1")
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            pruned.batches += sqlx::query("DELETE FROM queue_batches WHERE key = ?1")
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        }
        let stale: Vec<i64> = sqlx::query_scalar(STALE_UPLOADS)
            .bind(before)
            .fetch_all(&self.reader)
            .await
            .map_err(read_error)?;
        for key in stale {
            let mut tx = self.bulk.begin_with(BEGIN_WRITE).await?;
            sqlx::query("DELETE FROM queue_file_lines WHERE file_key = ?1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
            pruned.files += sqlx::query("DELETE FROM queue_files WHERE key = ?1")
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_open_ones_are_listed() {
        for status in BatchStatus::ALL {
            assert_eq!(BatchStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                OPEN_STATUSES.contains(&format!("'{}'", status.as_str())),
                !status.is_final(),
                "{status:?}"
            );
        }
        assert_eq!(kind_state(ResultKind::Output), DONE);
        assert_eq!(kind_state(ResultKind::Error), FAILED);
    }
}

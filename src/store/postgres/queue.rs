//! The durable queue in PostgreSQL: uploaded files and their lines, batches, and request lines
//! with their state and result (schema in `postgres/migrations/0006_queue.sql`).
//!
//! The same state machine as SQLite's (pending → in flight → done or failed), each change one
//! conditional `UPDATE`, so a result lands only on a line in flight and a claim only takes
//! pending lines. Claims lock the rows they take (`FOR UPDATE SKIP LOCKED`): several processes
//! claiming at once each get different lines. The store decides nothing about when lines run
//! (`queue::dispatch` does); it keeps counts in step with lines. Rows decode as SQLite's do
//! (`store::rows`).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{PostgresStore, read_error};
use crate::store::queue::{
    BatchEnd, BatchRecord, BatchStatus, ClaimedLine, FileDeletion, FileLine, FilePurpose,
    FileRecord, LineError, LineOutcome, LineResult, ListPage, NewBatch, NewFile, NewLine,
    PendingLines, QueuePruned, QueueStore, ResultFile, ResultKind, StoredResult,
};
use crate::store::rows::{self, StoredRow};
use crate::store::{StoreError, scrub};
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

/// Statuses of a batch that has not ended, as an SQL list.
macro_rules! open_statuses {
    () => {
        "('validating', 'in_progress', 'finalizing', 'cancelling')"
    };
}

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
      WHERE f.owner = $1 AND f.id = $2 AND f.complete"
);

/// $2: the `after` file's key (NULL: from the start); $3: newest first; $4: purpose or NULL;
/// $5: limit.
const FILES_PAGE: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM queue_files f LEFT JOIN queue_batches b ON b.key = f.batch_key
      WHERE f.owner = $1 AND f.complete AND ($4::text IS NULL OR f.purpose = $4)
        AND ($2::bigint IS NULL OR ($3 AND f.key < $2) OR (NOT $3 AND f.key > $2))
      ORDER BY CASE WHEN $3 THEN -f.key ELSE f.key END
      LIMIT $5"
);

const BATCH_BY_ID: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
);

const BATCH_BY_KEY: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE key = $1 FOR UPDATE"
);

const BATCHES_PAGE: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE owner = $1 AND ($2::bigint IS NULL OR key < $2)
      ORDER BY key DESC LIMIT $3"
);

const OPEN_BATCHES: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM queue_batches WHERE status IN ",
    open_statuses!(),
    " ORDER BY key"
);

/// An open batch reading the file $1.
const FILE_USER: &str = concat!(
    "SELECT id FROM queue_batches WHERE input_file_key = $1 AND status IN ",
    open_statuses!(),
    " ORDER BY key LIMIT 1"
);

/// Complete uploads created before $1 that no open batch reads.
const STALE_UPLOADS: &str = concat!(
    "SELECT key FROM queue_files f
      WHERE complete AND batch_key IS NULL AND created_at < $1
        AND NOT EXISTS (SELECT 1 FROM queue_batches b
                         WHERE b.input_file_key = f.key AND b.status IN ",
    open_statuses!(),
    ") ORDER BY key"
);

/// Takes up to $2 pending lines of in-progress batches for model $1, oldest batch first and in
/// line order, and answers with them and their requests. Rows another claim holds are skipped,
/// not waited for.
const CLAIM: &str = "
    WITH picked AS (
        SELECT l.batch_key, l.line
          FROM queue_lines l JOIN queue_batches b ON b.key = l.batch_key
         WHERE l.state = 0 AND l.model = $1 AND b.status = 'in_progress'
         ORDER BY l.batch_key, l.line
         LIMIT $2
           FOR UPDATE OF l SKIP LOCKED
    ), claimed AS (
        UPDATE queue_lines q SET state = 1, dispatches = q.dispatches + 1
          FROM picked p
         WHERE q.batch_key = p.batch_key AND q.line = p.line
        RETURNING q.batch_key, q.line, q.custom_id, q.dispatches
    )
    SELECT c.batch_key, c.line, c.custom_id, c.dispatches, f.content
      FROM claimed c
      JOIN queue_batches b ON b.key = c.batch_key
      JOIN queue_file_lines f ON f.file_key = b.input_file_key AND f.line = c.line
     ORDER BY c.batch_key, c.line";

const RESULTS_PAGE: &str = "
    SELECT line, custom_id, status_code, request_id, provider, served_model, attempts, body,
           error_code, error_message
      FROM queue_lines
     WHERE batch_key = $1 AND state = $2 AND line > $3
     ORDER BY line LIMIT $4";

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl QueueStore for PostgresStore {
    async fn queue_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO queue_secret (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .bind(fresh)
            .execute(&self.pool)
            .await?;
        // Read after the insert committed (or lost to another's): every caller sees the one row.
        Ok(
            sqlx::query_scalar("SELECT secret FROM queue_secret WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(read_error)?,
        )
    }

    async fn queue_file_begin(&self, file: &NewFile) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO queue_files (id, owner, filename, purpose, created_at, complete)
             VALUES ($1, $2, $3, $4, $5, false) RETURNING key",
        )
        .bind(&file.id)
        .bind(&file.owner)
        .bind(&file.filename)
        .bind(file.purpose.as_str())
        .bind(file.created_at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn queue_file_append(&self, file_key: i64, lines: &[FileLine]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for line in lines {
            sqlx::query(
                "INSERT INTO queue_file_lines (file_key, line, content) VALUES ($1, $2, $3)",
            )
            .bind(file_key)
            .bind(i64::from(line.line))
            // A slice is bound without a copy: lines may be MBs.
            .bind(line.content.as_slice())
            .execute(&mut *tx)
            .await?;
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
            "UPDATE queue_files SET complete = true, bytes = $2, lines = $3 WHERE key = $1",
        )
        .bind(file_key)
        .bind(to_i64(bytes))
        .bind(to_i64(lines))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    async fn queue_file_discard(&self, file_key: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM queue_file_lines WHERE file_key = $1")
            .bind(file_key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM queue_files WHERE key = $1 AND NOT complete")
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
            .fetch_optional(&self.pool)
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
                sqlx::query_scalar("SELECT key FROM queue_files WHERE owner = $1 AND id = $2")
                    .bind(owner)
                    .bind(id)
                    .fetch_optional(&self.pool)
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
            .bind(page.newest_first)
            .bind(page.purpose.map(FilePurpose::as_str))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_file).collect()
    }

    async fn queue_file_delete(&self, owner: &str, id: &str) -> Result<FileDeletion, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Locked, so a batch cannot start reading it between the check and the delete.
        let key: Option<i64> = sqlx::query_scalar(
            "SELECT key FROM queue_files WHERE owner = $1 AND id = $2 AND complete FOR UPDATE",
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
        sqlx::query("DELETE FROM queue_file_lines WHERE file_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM queue_files WHERE key = $1")
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
            "SELECT line, content FROM queue_file_lines WHERE file_key = $1 AND line > $2
             ORDER BY line LIMIT $3",
        )
        .bind(file_key)
        .bind(i64::from(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        rows.iter()
            .map(|row| {
                Ok(FileLine {
                    line: rows::line_number(row, "line")?,
                    content: row.bytes("content")?,
                })
            })
            .collect()
    }

    async fn queue_batch_create(&self, batch: &NewBatch) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO queue_batches (id, owner, input_file_key, input_file_id, endpoint,
                                        completion_window, metadata, status, created_at,
                                        expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'validating', $8, $9) RETURNING key",
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
        .fetch_one(&self.pool)
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
            .fetch_optional(&self.pool)
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
                sqlx::query_scalar("SELECT key FROM queue_batches WHERE owner = $1 AND id = $2")
                    .bind(owner)
                    .bind(id)
                    .fetch_optional(&self.pool)
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
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_batch).collect()
    }

    async fn queue_open_batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        let rows = sqlx::query(OPEN_BATCHES)
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_batch).collect()
    }

    async fn queue_lines_add(&self, batch_key: i64, lines: &[NewLine]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Locked: a cancel cannot slip in between the check and the inserts.
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM queue_batches WHERE key = $1 FOR UPDATE")
                .bind(batch_key)
                .fetch_optional(&mut *tx)
                .await?;
        if status.as_deref() != Some(BatchStatus::Validating.as_str()) {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
        let numbers: Vec<i64> = lines.iter().map(|l| i64::from(l.line)).collect();
        let custom_ids: Vec<&str> = lines.iter().map(|l| l.custom_id.as_str()).collect();
        let models: Vec<&str> = lines.iter().map(|l| l.model.as_str()).collect();
        sqlx::query(
            "INSERT INTO queue_lines (batch_key, line, custom_id, model, state)
             SELECT $1, line, custom_id, model, 0
               FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS l (line, custom_id, model)
             ON CONFLICT DO NOTHING",
        )
        .bind(batch_key)
        .bind(numbers)
        .bind(custom_ids)
        .bind(models)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_batch_start(&self, batch_key: i64, at: Millis) -> Result<bool, StoreError> {
        let started = sqlx::query(
            "UPDATE queue_batches
                SET status = 'in_progress', in_progress_at = $2,
                    total = (SELECT COUNT(*) FROM queue_lines WHERE batch_key = $1)
              WHERE key = $1 AND status = 'validating'",
        )
        .bind(batch_key)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(started.rows_affected() == 1)
    }

    async fn queue_batch_reject(
        &self,
        batch_key: i64,
        errors: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        let errors = scrub::json_text(errors);
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM queue_lines WHERE batch_key = $1")
            .bind(batch_key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE queue_batches SET status = 'failed', errors = $2, failed_at = $3, total = 0
              WHERE key = $1 AND status IN ('validating', 'cancelling')",
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE queue_batches SET status = 'cancelling', cancelling_at = $3
              WHERE owner = $1 AND id = $2 AND status IN ('validating', 'in_progress')",
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
        let mut tx = self.pool.begin().await?;
        let closed = sqlx::query(
            "UPDATE queue_lines SET state = 3, finished_at = $2, error_code = $3,
                                    error_message = $4
              WHERE batch_key = $1 AND state = 0",
        )
        .bind(batch_key)
        .bind(at)
        .bind(&error.code)
        .bind(&error.message)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE queue_batches SET failed = failed + $2 WHERE key = $1")
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
        let mut tx = self.pool.begin().await?;
        // Locked: two finishers of one batch end it once.
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
            sqlx::query("DELETE FROM queue_lines WHERE batch_key = $1")
                .bind(batch_key)
                .execute(&mut *tx)
                .await?;
        }
        let file_of = |kind: ResultKind| files.iter().find(|f| f.kind == kind);
        for file in files {
            sqlx::query(
                "INSERT INTO queue_files (id, owner, filename, purpose, bytes, lines, created_at,
                                          complete, batch_key, result_kind)
                 VALUES ($1, $2, $3, 'batch_output', $4, $5, $6, true, $7, $8)",
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
                SET status = $2, finalizing_at = COALESCE(finalizing_at, $3), {end_column} = $3,
                    output_file_id = $4, error_file_id = $5
              WHERE key = $1"
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
        let rows = sqlx::query(CLAIM)
            .bind(model)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        rows.iter()
            .map(|row| {
                let dispatches = row.int("dispatches")?;
                Ok(ClaimedLine {
                    batch_key: row.int("batch_key")?,
                    line: rows::line_number(row, "line")?,
                    custom_id: row.text("custom_id")?,
                    request: row.bytes("content")?,
                    dispatches: u32::try_from(dispatches).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn queue_record(&self, results: &[LineResult]) -> Result<u64, StoreError> {
        let results = scrub::line_results(results);
        let mut tx = self.pool.begin().await?;
        // Batch key → (completed, failed) written, folded into each batch's counts at the end,
        // in key order (concurrent recorders then lock batches in the same order).
        let mut counts: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        let mut written = 0;
        for result in results.iter() {
            let response = result.response.as_ref();
            let error = result.error.as_ref();
            let applied = sqlx::query(
                "UPDATE queue_lines
                    SET state = $3, finished_at = $4, status_code = $5, request_id = $6,
                        provider = $7, served_model = $8, attempts = $9, body = $10,
                        error_code = $11, error_message = $12
                  WHERE batch_key = $1 AND line = $2 AND state = 1",
            )
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
            .bind(error.map(|e| e.message.as_str()))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if applied == 0 {
                continue;
            }
            written += 1;
            let entry = counts.entry(result.batch_key).or_default();
            match result.outcome {
                LineOutcome::Done => entry.0 += 1,
                LineOutcome::Failed => entry.1 += 1,
            }
        }
        for (key, (done, failed)) in counts {
            sqlx::query(
                "UPDATE queue_batches SET completed = completed + $2, failed = failed + $3
                  WHERE key = $1",
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
        if lines.is_empty() {
            return Ok(());
        }
        let keys: Vec<i64> = lines.iter().map(|(key, _)| *key).collect();
        let numbers: Vec<i64> = lines.iter().map(|(_, line)| i64::from(*line)).collect();
        sqlx::query(
            "UPDATE queue_lines q SET state = 0
               FROM UNNEST($1::bigint[], $2::bigint[]) AS r (batch_key, line)
              WHERE q.batch_key = r.batch_key AND q.line = r.line AND q.state = 1",
        )
        .bind(keys)
        .bind(numbers)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every line in flight goes back to pending: right while one process serves the queue (it
    /// runs at that process's start). Several processes on one database need in-flight lines to
    /// name their claimer first, so only a dead claimer's lines go back.
    async fn queue_recover(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let back = sqlx::query("UPDATE queue_lines SET state = 0 WHERE state = 1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM queue_file_lines
              WHERE file_key IN (SELECT key FROM queue_files WHERE NOT complete)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM queue_files WHERE NOT complete")
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
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        rows.iter()
            .map(|row| {
                Ok(PendingLines {
                    model: row.text("model")?,
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
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        rows.iter().map(rows::queue_result).collect()
    }

    async fn queue_prune(&self, before: Millis) -> Result<QueuePruned, StoreError> {
        let mut pruned = QueuePruned::default();
        let ended: Vec<i64> = sqlx::query_scalar(
            "SELECT key FROM queue_batches
              WHERE status IN ('failed', 'completed', 'expired', 'cancelled')
                AND COALESCE(completed_at, expired_at, cancelled_at, failed_at) < $1
              ORDER BY key",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        // One transaction per batch: a batch's lines may be many, and writers must not wait long.
        for key in ended {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM queue_lines WHERE batch_key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
            pruned.files += sqlx::query("DELETE FROM queue_files WHERE batch_key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            pruned.batches += sqlx::query("DELETE FROM queue_batches WHERE key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        }
        let stale: Vec<i64> = sqlx::query_scalar(STALE_UPLOADS)
            .bind(before)
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        for key in stale {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM queue_file_lines WHERE file_key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
            pruned.files += sqlx::query("DELETE FROM queue_files WHERE key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        }
        Ok(pruned)
    }
}

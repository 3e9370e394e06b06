//! The durable queue, once for both back ends: uploaded files and their lines, batches, and
//! request lines with their state and result (schema in `migrations/*/0006_queue.sql`).
//!
//! Every change of a line's state is a conditional `UPDATE` (inside a write transaction, or one
//! statement that is its own), so the state machine (pending → in flight → done or failed)
//! holds whatever runs concurrently: a result lands only on a line in flight, a claim only takes
//! pending lines. How groups of lines are inserted, claimed, recorded and released is the back
//! end's ([`QueueLines`]): SQLite sends a group as one multi-row statement, PostgreSQL as
//! arrays, and PostgreSQL's claims lock the rows they take so that several processes claiming
//! at once get different lines. The store decides nothing about when lines run
//! (`queue::dispatch` does); it keeps counts in step with lines.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::{Database, Transaction};

use super::{Affected, Arg, Backend, Dialect, RowOf, on, read_all, read_one, require_row, write};
use crate::store::queue::{
    BatchEnd, BatchRecord, BatchStatus, ClaimedLine, FileDeletion, FileLine, FilePurpose,
    FileRecord, LineError, LineOutcome, LineResult, ListPage, NewBatch, NewFile, NewLine,
    PendingLines, QueuePruned, QueueStore, ResultFile, ResultKind, StoredResult,
};
use crate::store::rows::{self, StoredRow};
use crate::store::{StoreError, dynamic_sql, scrub};
use crate::time::Millis;

/// What a back end does with groups of lines its own way.
pub trait QueueLines: Backend {
    /// Appends an upload's lines, in one transaction.
    fn append_file_lines(
        &self,
        file_key: i64,
        lines: &[FileLine],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts a validating batch's lines, pending, inside `tx`; a line already there is left
    /// as it is.
    fn insert_lines(
        tx: &mut Transaction<'static, Self::Db>,
        batch_key: i64,
        lines: &[NewLine],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims up to `limit` pending lines of in-progress batches for `model`, oldest batch
    /// first and in line order.
    fn claim_lines(
        &self,
        model: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ClaimedLine>, StoreError>> + Send;

    /// Writes scrubbed results over lines still in flight and counts them into their batches,
    /// in one transaction; answers how many were written.
    fn record_lines(
        &self,
        results: &[LineResult],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Sends lines in flight back to pending.
    fn release_lines(
        &self,
        lines: &[(i64, u32)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Line states as stored (pending is 0 and in flight 1, written as literals in the SQL, where
/// the partial indexes name them).
pub const DONE: i64 = 2;
pub const FAILED: i64 = 3;

pub fn outcome_code(outcome: LineOutcome) -> i64 {
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

/// A line result's values, in the order `record_lines` statements take them: batch key, line,
/// state, finished_at, status_code, request_id, provider, served_model, attempts, body,
/// error_code, error_message.
pub fn bind_line_result<'q, DB: Dialect>(
    query: Query<'q, DB, <DB as Database>::Arguments>,
    result: &'q LineResult,
) -> Query<'q, DB, <DB as Database>::Arguments> {
    let response = result.response.as_ref();
    let error = result.error.as_ref();
    query
        .arg(result.batch_key)
        .arg(i64::from(result.line))
        .arg(outcome_code(result.outcome))
        .arg(result.finished_at)
        .arg(response.map(|r| i64::from(r.status_code)))
        .arg(response.map(|r| r.request_id.as_str()))
        .arg(response.and_then(|r| r.provider.as_deref()))
        .arg(response.and_then(|r| r.model.as_deref()))
        .arg(response.and_then(|r| r.attempts).map(i64::from))
        .arg(response.map(|r| r.body.as_slice()))
        .arg(error.map(|e| e.code.as_str()))
        .arg(error.map(|e| e.message.as_str()))
}

/// Lines a record wrote, per batch: (completed, failed), in batch key order.
#[derive(Debug, Default)]
pub struct Recorded(BTreeMap<i64, (i64, i64)>);

impl Recorded {
    pub fn add(&mut self, batch_key: i64, done: bool) {
        let (completed, failed) = self.0.entry(batch_key).or_default();
        *(if done { completed } else { failed }) += 1;
    }

    /// Adds the counts to their batches inside `tx` (in key order, so concurrent recorders
    /// lock batches in the same order); answers how many lines were written.
    pub async fn count_into<D: Dialect>(
        self,
        tx: &mut Transaction<'static, D>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        for (batch_key, (completed, failed)) in self.0 {
            sqlx::query(COUNT_RECORDED)
                .arg(batch_key)
                .arg(completed)
                .arg(failed)
                .execute(on(tx))
                .await?;
            written += completed + failed;
        }
        Ok(written.unsigned_abs())
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

/// `SELECT` of complete files `f` of owner $1, with the id of a result file's batch, then
/// `$rest` (a macro so that `concat!` can build whole static queries from it).
macro_rules! select_files {
    ($($rest:tt)*) => {
        concat!(
            "SELECT f.key, f.id, f.owner, f.filename, f.purpose, f.bytes, f.lines, f.created_at,
                    f.batch_key, f.result_kind, b.id AS batch_id
               FROM queue_files f LEFT JOIN queue_batches b ON b.key = f.batch_key
              WHERE f.owner = $1 AND f.complete ",
            $($rest)*
        )
    };
}

/// `SELECT` of batches, then `$rest`.
macro_rules! select_batches {
    ($($rest:tt)*) => {
        concat!(
            "SELECT key, id, owner, input_file_key, input_file_id, endpoint, completion_window,
                    metadata, status, errors, created_at, in_progress_at, expires_at,
                    finalizing_at, completed_at, failed_at, expired_at, cancelling_at,
                    cancelled_at, total, completed, failed, output_file_id, error_file_id
               FROM queue_batches ",
            $($rest)*
        )
    };
}

const PUT_SECRET: &str =
    "INSERT INTO queue_secret (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING";

const SECRET: &str = "SELECT secret FROM queue_secret WHERE id = 1";

const NEW_FILE: &str =
    "INSERT INTO queue_files (id, owner, filename, purpose, created_at, complete)
     VALUES ($1, $2, $3, $4, $5, FALSE) RETURNING key";

const COMPLETE_FILE: &str =
    "UPDATE queue_files SET complete = TRUE, bytes = $2, lines = $3 WHERE key = $1";

const DROP_FILE_LINES: &str = "DELETE FROM queue_file_lines WHERE file_key = $1";

const DROP_UNFINISHED_FILE: &str = "DELETE FROM queue_files WHERE key = $1 AND NOT complete";

const DROP_FILE: &str = "DELETE FROM queue_files WHERE key = $1";

const FILE_BY_ID: &str = select_files!("AND f.id = $2");

const FILE_KEY: &str = "SELECT key FROM queue_files WHERE owner = $1 AND id = $2";

const COMPLETE_FILE_KEY: &str =
    "SELECT key FROM queue_files WHERE owner = $1 AND id = $2 AND complete";

/// $2: the `after` file's key (NULL: from the start); $3: newest first; $4: purpose or NULL;
/// $5: limit.
const FILES_PAGE: &str = select_files!(
    "AND ($4 IS NULL OR f.purpose = $4)
     AND ($2 IS NULL OR ($3 AND f.key < $2) OR (NOT $3 AND f.key > $2))
     ORDER BY CASE WHEN $3 THEN -f.key ELSE f.key END
     LIMIT $5"
);

const FILE_LINES: &str = "SELECT line, content FROM queue_file_lines
     WHERE file_key = $1 AND line > $2
     ORDER BY line LIMIT $3";

const NEW_BATCH: &str = "INSERT INTO queue_batches (id, owner, input_file_key, input_file_id,
                            endpoint, completion_window, metadata, status, created_at,
                            expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'validating', $8, $9) RETURNING key";

const BATCH_BY_ID: &str = select_batches!("WHERE id = $1 AND ($2 IS NULL OR owner = $2)");

const BATCH_BY_KEY: &str = select_batches!("WHERE key = $1");

const BATCH_KEY: &str = "SELECT key FROM queue_batches WHERE owner = $1 AND id = $2";

const BATCHES_PAGE: &str =
    select_batches!("WHERE owner = $1 AND ($2 IS NULL OR key < $2) ORDER BY key DESC LIMIT $3");

const OPEN_BATCHES: &str = select_batches!("WHERE status IN ", open_statuses!(), " ORDER BY key");

const BATCH_STATUS: &str = "SELECT status FROM queue_batches WHERE key = $1";

/// An open batch reading the file $1.
const FILE_USER: &str = concat!(
    "SELECT id FROM queue_batches WHERE input_file_key = $1 AND status IN ",
    open_statuses!(),
    " ORDER BY key LIMIT 1"
);

const START_BATCH: &str = "UPDATE queue_batches
        SET status = 'in_progress', in_progress_at = $2,
            total = (SELECT COUNT(*) FROM queue_lines WHERE batch_key = $1)
      WHERE key = $1 AND status = 'validating'";

const DROP_LINES: &str = "DELETE FROM queue_lines WHERE batch_key = $1";

const REJECT_BATCH: &str =
    "UPDATE queue_batches SET status = 'failed', errors = $2, failed_at = $3, total = 0
      WHERE key = $1 AND status IN ('validating', 'cancelling')";

const CANCEL_BATCH: &str = "UPDATE queue_batches SET status = 'cancelling', cancelling_at = $3
      WHERE owner = $1 AND id = $2 AND status IN ('validating', 'in_progress')";

const CLOSE_LINES: &str = "UPDATE queue_lines
        SET state = 3, finished_at = $2, error_code = $3, error_message = $4
      WHERE batch_key = $1 AND state = 0";

const COUNT_RECORDED: &str =
    "UPDATE queue_batches SET completed = completed + $2, failed = failed + $3 WHERE key = $1";

const COUNT_FAILED: &str = "UPDATE queue_batches SET failed = failed + $2 WHERE key = $1";

const NEW_RESULT_FILE: &str = "INSERT INTO queue_files (id, owner, filename, purpose, bytes,
                          lines, created_at, complete, batch_key, result_kind)
     VALUES ($1, $2, $3, 'batch_output', $4, $5, $6, TRUE, $7, $8)";

const RECOVER_LINES: &str = "UPDATE queue_lines SET state = 0 WHERE state = 1";

const DROP_UNFINISHED_UPLOADS_LINES: &str = "DELETE FROM queue_file_lines
      WHERE file_key IN (SELECT key FROM queue_files WHERE NOT complete AND created_at < $1)";

const DROP_UNFINISHED_UPLOADS: &str =
    "DELETE FROM queue_files WHERE NOT complete AND created_at < $1";

const PENDING_BY_MODEL: &str = "SELECT model, COUNT(*) AS pending FROM queue_lines
      WHERE state = 0
      GROUP BY model ORDER BY model";

const RESULTS_PAGE: &str = "
    SELECT line, custom_id, status_code, request_id, provider, served_model, attempts, body,
           error_code, error_message
      FROM queue_lines
     WHERE batch_key = $1 AND state = $2 AND line > $3
     ORDER BY line LIMIT $4";

const ENDED_BATCHES: &str = "SELECT key FROM queue_batches
      WHERE status IN ('failed', 'completed', 'expired', 'cancelled')
        AND COALESCE(completed_at, expired_at, cancelled_at, failed_at) < $1
      ORDER BY key";

const DROP_RESULT_FILES: &str = "DELETE FROM queue_files WHERE batch_key = $1";

const DROP_BATCH: &str = "DELETE FROM queue_batches WHERE key = $1";

/// Complete uploads created before $1 that no open batch reads.
const STALE_UPLOADS: &str = concat!(
    "SELECT key FROM queue_files f
      WHERE complete AND batch_key IS NULL AND created_at < $1
        AND NOT EXISTS (SELECT 1 FROM queue_batches b
                         WHERE b.input_file_key = f.key AND b.status IN ",
    open_statuses!(),
    ") ORDER BY key"
);

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Runs each of `statements` with $1 = `key` inside `tx`; answers the rows each one deleted.
async fn delete_by_key<D: Dialect, const N: usize>(
    tx: &mut Transaction<'static, D>,
    key: i64,
    statements: [&'static str; N],
) -> Result<[u64; N], StoreError> {
    let mut deleted = [0; N];
    for (statement, count) in statements.into_iter().zip(&mut deleted) {
        *count = sqlx::query(statement)
            .arg(key)
            .execute(on(tx))
            .await?
            .rows_affected();
    }
    Ok(deleted)
}

/// Where a page of a listing starts: the key of the owner's object `after` ($2) that `sql` finds
/// by owner ($1), or — for an id that is not one of the owner's — a key past every object, so
/// the page is empty rather than the first one.
async fn cursor<B: Backend>(
    store: &B,
    sql: &'static str,
    owner: &str,
    after: Option<&str>,
    newest_first: bool,
) -> Result<Option<i64>, StoreError> {
    let Some(after) = after else {
        return Ok(None);
    };
    let found = read_one(store, sqlx::query(sql).arg(owner).arg(after), |row| {
        row.int(0)
    })
    .await?;
    let past_every_object = if newest_first { i64::MIN } else { i64::MAX };
    Ok(Some(found.unwrap_or(past_every_object)))
}

#[async_trait]
impl<B: QueueLines> QueueStore for B {
    async fn queue_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(PUT_SECRET)
            .arg(fresh)
            .execute(on(&mut tx))
            .await?;
        // Read after the insert (or after losing to another's): every caller sees the one row.
        let secret = sqlx::query(SECRET).fetch_one(on(&mut tx)).await?.bytes(0)?;
        tx.commit().await?;
        Ok(secret)
    }

    async fn queue_file_begin(&self, file: &NewFile) -> Result<i64, StoreError> {
        sqlx::query(NEW_FILE)
            .arg(file.id.as_str())
            .arg(file.owner.as_str())
            .arg(file.filename.as_str())
            .arg(file.purpose.as_str())
            .arg(file.created_at)
            .fetch_one(self.writer())
            .await?
            .int(0)
    }

    async fn queue_file_append(&self, file_key: i64, lines: &[FileLine]) -> Result<(), StoreError> {
        self.append_file_lines(file_key, lines).await
    }

    async fn queue_file_complete(
        &self,
        file_key: i64,
        bytes: u64,
        lines: u64,
    ) -> Result<(), StoreError> {
        let complete = sqlx::query(COMPLETE_FILE)
            .arg(file_key)
            .arg(to_i64(bytes))
            .arg(to_i64(lines));
        require_row(write(self, complete).await?)
    }

    async fn queue_file_discard(&self, file_key: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_bulk_write().await?;
        delete_by_key(&mut tx, file_key, [DROP_FILE_LINES, DROP_UNFINISHED_FILE]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_file(&self, owner: &str, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let file = sqlx::query(FILE_BY_ID).arg(owner).arg(id);
        read_one(self, file, rows::queue_file).await
    }

    async fn queue_files(
        &self,
        owner: &str,
        page: &ListPage,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let after = page.after.as_deref();
        let after = cursor(self, FILE_KEY, owner, after, page.newest_first).await?;
        let files = sqlx::query(FILES_PAGE)
            .arg(owner)
            .arg(after)
            .arg(page.newest_first)
            .arg(page.purpose.map(FilePurpose::as_str))
            .arg(i64::from(page.limit));
        read_all(self, files, rows::queue_file).await
    }

    async fn queue_file_delete(&self, owner: &str, id: &str) -> Result<FileDeletion, StoreError> {
        let mut tx = self.begin_bulk_write().await?;
        // Locked, so a batch cannot start reading it between the check and the delete.
        let found = sqlx::query(B::Db::locking(COMPLETE_FILE_KEY))
            .arg(owner)
            .arg(id)
            .fetch_optional(on(&mut tx))
            .await?;
        let Some(key) = found.map(|row| row.int(0)).transpose()? else {
            return Ok(FileDeletion::NotFound);
        };
        let user = sqlx::query(FILE_USER)
            .arg(key)
            .fetch_optional(on(&mut tx))
            .await?;
        if let Some(row) = user {
            return Ok(FileDeletion::InUse {
                batch: row.text(0)?,
            });
        }
        delete_by_key(&mut tx, key, [DROP_FILE_LINES, DROP_FILE]).await?;
        tx.commit().await?;
        Ok(FileDeletion::Deleted)
    }

    async fn queue_file_lines(
        &self,
        file_key: i64,
        after: u32,
        limit: u32,
    ) -> Result<Vec<FileLine>, StoreError> {
        let lines = sqlx::query(FILE_LINES)
            .arg(file_key)
            .arg(i64::from(after))
            .arg(i64::from(limit));
        read_all(self, lines, |row| {
            Ok(FileLine {
                line: rows::line_number(row, "line")?,
                content: row.bytes("content")?,
            })
        })
        .await
    }

    async fn queue_batch_create(&self, batch: &NewBatch) -> Result<i64, StoreError> {
        sqlx::query(NEW_BATCH)
            .arg(batch.id.as_str())
            .arg(batch.owner.as_str())
            .arg(batch.input_file_key)
            .arg(batch.input_file_id.as_str())
            .arg(batch.endpoint.as_str())
            .arg(batch.completion_window.as_str())
            .arg(batch.metadata.as_deref())
            .arg(batch.created_at)
            .arg(batch.expires_at)
            .fetch_one(self.writer())
            .await?
            .int(0)
    }

    async fn queue_batch(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<BatchRecord>, StoreError> {
        let batch = sqlx::query(BATCH_BY_ID).arg(id).arg(owner);
        read_one(self, batch, rows::queue_batch).await
    }

    async fn queue_batches(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BatchRecord>, StoreError> {
        let after = cursor(self, BATCH_KEY, owner, after, true).await?;
        let batches = sqlx::query(BATCHES_PAGE)
            .arg(owner)
            .arg(after)
            .arg(i64::from(limit));
        read_all(self, batches, rows::queue_batch).await
    }

    async fn queue_open_batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        read_all(self, sqlx::query(OPEN_BATCHES), rows::queue_batch).await
    }

    async fn queue_lines_add(&self, batch_key: i64, lines: &[NewLine]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // Locked: a cancel cannot slip in between the check and the inserts.
        let status = sqlx::query(B::Db::locking(BATCH_STATUS))
            .arg(batch_key)
            .fetch_optional(on(&mut tx))
            .await?
            .map(|row| row.text(0))
            .transpose()?;
        if status.as_deref() != Some(BatchStatus::Validating.as_str()) {
            return Err(StoreError::Db(sqlx::Error::RowNotFound));
        }
        B::insert_lines(&mut tx, batch_key, lines).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_batch_start(&self, batch_key: i64, at: Millis) -> Result<bool, StoreError> {
        let start = sqlx::query(START_BATCH).arg(batch_key).arg(at);
        Ok(write(self, start).await? == 1)
    }

    async fn queue_batch_reject(
        &self,
        batch_key: i64,
        errors: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        let errors = scrub::json_text(errors);
        let mut tx = self.begin_write().await?;
        delete_by_key(&mut tx, batch_key, [DROP_LINES]).await?;
        sqlx::query(REJECT_BATCH)
            .arg(batch_key)
            .arg(errors.as_str())
            .arg(at)
            .execute(on(&mut tx))
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
        let mut tx = self.begin_write().await?;
        sqlx::query(CANCEL_BATCH)
            .arg(owner)
            .arg(id)
            .arg(at)
            .execute(on(&mut tx))
            .await?;
        let row = sqlx::query(BATCH_BY_ID)
            .arg(id)
            .arg(owner)
            .fetch_optional(on(&mut tx))
            .await?;
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
        let mut tx = self.begin_write().await?;
        let closed = sqlx::query(CLOSE_LINES)
            .arg(batch_key)
            .arg(at)
            .arg(error.code.as_str())
            .arg(error.message.as_str())
            .execute(on(&mut tx))
            .await?
            .rows_affected();
        sqlx::query(COUNT_FAILED)
            .arg(batch_key)
            .arg(to_i64(closed))
            .execute(on(&mut tx))
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
        let mut tx = self.begin_write().await?;
        // Locked: two finishers of one batch end it once.
        let row = sqlx::query(B::Db::locking(BATCH_BY_KEY))
            .arg(batch_key)
            .fetch_optional(on(&mut tx))
            .await?;
        let Some(batch) = row.as_ref().map(rows::queue_batch).transpose()? else {
            return Ok(false);
        };
        if batch.status.is_final() {
            return Ok(false);
        }
        if batch.times.in_progress_at.is_none() {
            // Cancelled while validating: the lines found valid so far never ran.
            delete_by_key(&mut tx, batch_key, [DROP_LINES]).await?;
        }
        let file_of = |kind: ResultKind| files.iter().find(|f| f.kind == kind);
        for file in files {
            let filename = format!("{}_{}.jsonl", batch.id, file.kind.as_str());
            sqlx::query(NEW_RESULT_FILE)
                .arg(file.id.as_str())
                .arg(batch.owner.as_str())
                .arg(filename.as_str())
                .arg(to_i64(file.bytes))
                .arg(to_i64(file.lines))
                .arg(at)
                .arg(batch_key)
                .arg(file.kind.as_str())
                .execute(on(&mut tx))
                .await?;
        }
        // The end's own timestamp column is chosen from a fixed list, never from input.
        let end_column = match end {
            BatchEnd::Completed => "completed_at",
            BatchEnd::Expired => "expired_at",
            BatchEnd::Cancelled => "cancelled_at",
        };
        sqlx::query(dynamic_sql(format!(
            "UPDATE queue_batches
                SET status = $2, finalizing_at = COALESCE(finalizing_at, $3), {end_column} = $3,
                    output_file_id = $4, error_file_id = $5
              WHERE key = $1"
        )))
        .arg(batch_key)
        .arg(end.status().as_str())
        .arg(at)
        .arg(file_of(ResultKind::Output).map(|f| f.id.as_str()))
        .arg(file_of(ResultKind::Error).map(|f| f.id.as_str()))
        .execute(on(&mut tx))
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn queue_claim(&self, model: &str, limit: u32) -> Result<Vec<ClaimedLine>, StoreError> {
        self.claim_lines(model, limit).await
    }

    async fn queue_record(&self, results: &[LineResult]) -> Result<u64, StoreError> {
        self.record_lines(&scrub::line_results(results)).await
    }

    async fn queue_release(&self, lines: &[(i64, u32)]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.release_lines(lines).await
    }

    /// Every line in flight goes back to pending: right while one process serves the queue (it
    /// runs at that process's start). Several processes on one database would need in-flight
    /// lines to name their claimer first, so that only a dead claimer's lines go back.
    async fn queue_recover_lines(&self) -> Result<u64, StoreError> {
        write(self, sqlx::query(RECOVER_LINES)).await
    }

    async fn queue_drop_unfinished_uploads(&self, before: Millis) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(DROP_UNFINISHED_UPLOADS_LINES)
            .arg(before)
            .execute(on(&mut tx))
            .await?;
        let dropped = sqlx::query(DROP_UNFINISHED_UPLOADS)
            .arg(before)
            .execute(on(&mut tx))
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(dropped)
    }

    async fn queue_pending(&self) -> Result<Vec<PendingLines>, StoreError> {
        read_all(self, sqlx::query(PENDING_BY_MODEL), |row| {
            Ok(PendingLines {
                model: row.text("model")?,
                pending: rows::queue_count(row, "pending")?,
            })
        })
        .await
    }

    async fn queue_results(
        &self,
        batch_key: i64,
        kind: ResultKind,
        after: u32,
        limit: u32,
    ) -> Result<Vec<StoredResult>, StoreError> {
        let results = sqlx::query(RESULTS_PAGE)
            .arg(batch_key)
            .arg(kind_state(kind))
            .arg(i64::from(after))
            .arg(i64::from(limit));
        read_all(self, results, rows::queue_result).await
    }

    async fn queue_prune(&self, before: Millis) -> Result<QueuePruned, StoreError> {
        let mut pruned = QueuePruned::default();
        let key = |row: &RowOf<B>| row.int(0);
        let ended = read_all(self, sqlx::query(ENDED_BATCHES).arg(before), key).await?;
        // One transaction per batch: a batch's lines may be many, and writers must not wait long.
        for key in ended {
            let mut tx = self.begin_bulk_write().await?;
            let [_, files, batches] =
                delete_by_key(&mut tx, key, [DROP_LINES, DROP_RESULT_FILES, DROP_BATCH]).await?;
            tx.commit().await?;
            pruned.files += files;
            pruned.batches += batches;
        }
        let stale = read_all(self, sqlx::query(STALE_UPLOADS).arg(before), key).await?;
        for key in stale {
            let mut tx = self.begin_bulk_write().await?;
            let [_, files] = delete_by_key(&mut tx, key, [DROP_FILE_LINES, DROP_FILE]).await?;
            tx.commit().await?;
            pruned.files += files;
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

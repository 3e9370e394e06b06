//! Groups of queue lines in PostgreSQL (the rest of the durable queue is shared:
//! `store::sql::queue`).
//!
//! Claims lock the rows they take (`FOR UPDATE SKIP LOCKED`): several processes claiming at
//! once each get different lines. Validated lines and released lines travel as arrays
//! (`UNNEST`), a statement per call; results are written one conditional `UPDATE` per line, so
//! each lands only on a line still in flight.

use sqlx::Transaction;
use sqlx::postgres::Postgres;

use super::PostgresStore;
use crate::store::StoreError;
use crate::store::queue::{ClaimedLine, FileLine, LineOutcome, LineResult, NewLine};
use crate::store::rows;
use crate::store::sql::queue::{QueueLines, Recorded, bind_line_result};

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

const APPEND_FILE_LINE: &str =
    "INSERT INTO queue_file_lines (file_key, line, content) VALUES ($1, $2, $3)";

const INSERT_LINES: &str = "INSERT INTO queue_lines (batch_key, line, custom_id, model, state)
     SELECT $1, line, custom_id, model, 0
       FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS l (line, custom_id, model)
     ON CONFLICT DO NOTHING";

/// A result over its line, if still in flight; the values in `bind_line_result`'s order.
const RECORD_LINE: &str = "UPDATE queue_lines
        SET state = $3, finished_at = $4, status_code = $5, request_id = $6,
            provider = $7, served_model = $8, attempts = $9, body = $10,
            error_code = $11, error_message = $12
      WHERE batch_key = $1 AND line = $2 AND state = 1";

const RELEASE_LINES: &str = "UPDATE queue_lines q SET state = 0
       FROM UNNEST($1::bigint[], $2::bigint[]) AS r (batch_key, line)
      WHERE q.batch_key = r.batch_key AND q.line = r.line AND q.state = 1";

impl QueueLines for PostgresStore {
    async fn append_file_lines(&self, file_key: i64, lines: &[FileLine]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for line in lines {
            sqlx::query(APPEND_FILE_LINE)
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

    async fn insert_lines(
        tx: &mut Transaction<'static, Postgres>,
        batch_key: i64,
        lines: &[NewLine],
    ) -> Result<(), StoreError> {
        let numbers: Vec<i64> = lines.iter().map(|l| i64::from(l.line)).collect();
        let custom_ids: Vec<&str> = lines.iter().map(|l| l.custom_id.as_str()).collect();
        let models: Vec<&str> = lines.iter().map(|l| l.model.as_str()).collect();
        sqlx::query(INSERT_LINES)
            .bind(batch_key)
            .bind(numbers)
            .bind(custom_ids)
            .bind(models)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn claim_lines(&self, model: &str, limit: u32) -> Result<Vec<ClaimedLine>, StoreError> {
        let rows = sqlx::query(CLAIM)
            .bind(model)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| rows::claimed_line(row, 0)).collect()
    }

    async fn record_lines(&self, results: &[LineResult]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut recorded = Recorded::default();
        for result in results {
            let applied = bind_line_result(sqlx::query(RECORD_LINE), result)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if applied > 0 {
                recorded.add(result.batch_key, result.outcome == LineOutcome::Done);
            }
        }
        let written = recorded.count_into(&mut tx).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn release_lines(&self, lines: &[(i64, u32)]) -> Result<(), StoreError> {
        let keys: Vec<i64> = lines.iter().map(|(key, _)| *key).collect();
        let numbers: Vec<i64> = lines.iter().map(|(_, line)| i64::from(*line)).collect();
        sqlx::query(RELEASE_LINES)
            .bind(keys)
            .bind(numbers)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

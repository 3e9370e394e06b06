//! The one-time scrub of stored history: rows written before isdown scrubbed text on its way
//! into the store may quote a configured secret (an error body echoing the key). The first start
//! of a version with this migration rewrites every stored text through
//! [`crate::secret::scrub`] — with the secrets of the config it starts with — and records that it
//! is done, so later starts pay nothing. Everything written afterwards is scrubbed on the way in.

use sqlx::SqlitePool;

use super::{dynamic_sql, read_error};
use crate::secret::{scrub, scrub_json_text};
use crate::store::StoreError;

/// Rows read and rewritten per transaction: keeps the writer lock short on a large file.
const BATCH: i64 = 1_000;

/// Text columns and how each is scrubbed: (table, key columns, text column, is JSON).
const COLUMNS: [(&str, &str, &str, bool); 6] = [
    ("results", "monitor_key, at", "explanation", false),
    ("incidents", "id", "first_error", false),
    ("incidents", "id", "last_error", false),
    ("monitor_state", "monitor", "snapshot", true),
    ("outbox", "id", "payload", true),
    ("outbox", "id", "last_error", false),
];

/// Scrubs every stored text once per database; returns how many values changed.
pub(super) async fn scrub_once(writer: &SqlitePool) -> Result<u64, StoreError> {
    let done: Option<i64> = sqlx::query_scalar("SELECT done_at FROM history_scrubbed LIMIT 1")
        .fetch_optional(writer)
        .await
        .map_err(read_error)?;
    if done.is_some() {
        return Ok(0);
    }
    let mut changed = 0;
    for (table, keys, column, json) in COLUMNS {
        changed += scrub_column(writer, table, keys, column, json).await?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, crate::time::millis_of);
    sqlx::query("INSERT INTO history_scrubbed (done_at) VALUES (?)")
        .bind(now)
        .execute(writer)
        .await?;
    if changed > 0 {
        tracing::warn!(changed, "removed configured secrets from stored history");
    }
    Ok(changed)
}

/// Walks one column in key order, `BATCH` rows at a time, rewriting the values that change.
async fn scrub_column(
    writer: &SqlitePool,
    table: &str,
    keys: &str,
    column: &str,
    json: bool,
) -> Result<u64, StoreError> {
    // Paged by primary key (every table has one; `results` has no rowid), carrying the last
    // key's values as SQLite values (integers or text).
    let key_list: Vec<&str> = keys.split(", ").collect();
    let first = format!(
        "SELECT {keys}, {column} FROM {table} WHERE {column} IS NOT NULL \
         ORDER BY {keys} LIMIT {BATCH}"
    );
    let next = format!(
        "SELECT {keys}, {column} FROM {table} WHERE {column} IS NOT NULL \
         AND ({keys}) > ({}) ORDER BY {keys} LIMIT {BATCH}",
        vec!["?"; key_list.len()].join(", ")
    );
    let update = format!(
        "UPDATE {table} SET {column} = ? WHERE {}",
        key_list
            .iter()
            .map(|k| format!("{k} = ?"))
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    let mut after: Option<Vec<KeyValue>> = None;
    let mut changed = 0;
    loop {
        let query = match &after {
            None => sqlx::query(dynamic_sql(first.clone())),
            Some(keys) => keys
                .iter()
                .fold(sqlx::query(dynamic_sql(next.clone())), |q, k| {
                    k.clone().bind(q)
                }),
        };
        let rows = query.fetch_all(writer).await.map_err(read_error)?;
        let Some(last) = rows.last() else {
            return Ok(changed);
        };
        after = Some(
            (0..key_list.len())
                .map(|i| KeyValue::read(last, i))
                .collect(),
        );
        let mut tx = writer.begin().await?;
        for row in &rows {
            // A value that is not text (a damaged row) is left for its reader to quarantine.
            let Ok(text) = sqlx::Row::try_get::<String, _>(row, key_list.len()) else {
                continue;
            };
            let clean = if json {
                scrub_json_text(&text)
            } else {
                scrub(&text)
            };
            if clean == text {
                continue;
            }
            let mut query = sqlx::query(dynamic_sql(update.clone())).bind(clean);
            for i in 0..key_list.len() {
                query = KeyValue::read(row, i).bind(query);
            }
            query.execute(&mut *tx).await?;
            changed += 1;
        }
        tx.commit().await?;
        if rows.len() < BATCH as usize {
            return Ok(changed);
        }
    }
}

/// A primary-key value as read back, to page on.
#[derive(Debug, Clone)]
enum KeyValue {
    /// Neither an integer nor text (not expected in a key): bound as NULL.
    Null,
    Int(i64),
    Text(String),
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

impl KeyValue {
    fn read(row: &sqlx::sqlite::SqliteRow, index: usize) -> KeyValue {
        if let Ok(v) = sqlx::Row::try_get::<i64, _>(row, index) {
            KeyValue::Int(v)
        } else if let Ok(v) = sqlx::Row::try_get::<String, _>(row, index) {
            KeyValue::Text(v)
        } else {
            KeyValue::Null
        }
    }

    fn bind(self, query: Query<'_>) -> Query<'_> {
        match self {
            KeyValue::Null => query.bind(None::<i64>),
            KeyValue::Int(v) => query.bind(v),
            KeyValue::Text(v) => query.bind(v),
        }
    }
}

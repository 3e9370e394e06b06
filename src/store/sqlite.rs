//! The SQLite back end of [`Store`](super::Store): one database file in WAL mode, written
//! through a single connection and read through a small pool of others.
//!
//! Most of the store's SQL is shared with PostgreSQL (`store::sql`); this module owns what is
//! SQLite's own: opening the file (pragmas, pools, the migrations of `migrations/sqlite/`,
//! embedded and applied on open, and the one-time scrub of older history in `history`), its
//! write transactions (`BEGIN IMMEDIATE`), opening an incident under that lock, pruning and
//! sizing here; multi-row statements (`MultiRow`) for results and rollups in `results` and
//! for groups of queue lines in `queue`; the raw rows `db copy` reads in `export`. It decides
//! nothing about monitors or incidents beyond what the trait promises (when to open or close an
//! incident is the monitor's call), and it trusts no row it reads: anything that does not
//! decode is [`StoreError::Corrupt`], never a panic. Its inputs come from the monitor (results,
//! incidents, state snapshots), the gateway's passive-health hook (results) and the web layer
//! (queries).

mod export;
mod history;
mod queue;
mod results;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Executor, SqlSafeStr, SqlStr, Transaction};

use super::keys::MonitorKeys;
use super::migrations::{SQLITE as SQLITE_MIGRATIONS, migrator};
use super::rollup::Resolution;
use super::rows::StoredRow;
use super::sql::incidents::{OPEN_INCIDENT_OF, insert_incident, insert_incident_sql};
use super::sql::results::load_keys;
use super::sql::{Backend, Dialect, PRUNE_MONITORS_PER_TX};
use super::{NewIncident, Pruned, Retention, StoreError, dynamic_sql, read_error};
use crate::time::Millis;

/// 5 s: long enough to outlast another process's write transaction (a `sqlite3` shell, a
/// backup), short enough that a stuck lock surfaces as an error instead of a hang.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections. WAL lets readers run beside the writer; a status page, the JSON API and
/// `/metrics` rarely need more than a few at once.
const READERS: u32 = 4;

/// Page cache of the write connection, in KiB (negative, as SQLite wants it). Every write
/// touches the newest results page of its monitor, so with thousands of monitors the pages
/// worth keeping are thousands too (10,000 monitors: about 40 MiB). SQLite allocates the cache
/// as it fills, so a small deployment never uses it all.
const WRITER_CACHE_KIB: &str = "-65536";

/// Every write transaction takes the write lock up front, so a transaction that reads before it
/// writes cannot fail half-way with SQLITE_BUSY when another process wrote in between.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Rollup rows deleted per statement (each its own transaction), for the reason raw results are
/// pruned a few monitors at a time (`sql::PRUNE_MONITORS_PER_TX`): writers never wait long.
const PRUNE_ROLLUPS_PER_TX: i64 = 50_000;

/// The most rows one multi-row statement carries (a power of two). Each statement is a round
/// trip to the connection's thread, which costs more than SQLite's own work for a row, so
/// writing rows in groups is what makes `record_results` fast.
const MAX_ROWS_PER_STATEMENT: usize = 64;

/// The store. Share it behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    /// One connection: SQLite has one writer at a time anyway, and queueing in the pool is
    /// fairer and cheaper than connections polling each other's locks.
    writer: SqlitePool,
    reader: SqlitePool,
    /// A second write connection with SQLite's small default page cache, for the durable
    /// queue's uploads only: a 200 MB file written through `writer` would fill its large cache
    /// (kept for the monitor's hot pages) with pages nobody reads again. SQLite still lets one
    /// of the two write at a time; an upload holds the lock a few milliseconds per group of
    /// lines.
    bulk: SqlitePool,
    keys: MonitorKeys,
}

/// Pools keep a fixed set of connections for the life of the process: a file database gains
/// nothing from recycling them, and a pool that never opens connections lazily never races its
/// own acquire deadline (which tests on paused tokio time would otherwise hit).
fn pool_options(size: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        // A minute: only a wedged database makes a query wait this long for a connection.
        .acquire_timeout(std::time::Duration::from_secs(60))
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directories) the database at `path` and
    /// applies any migrations it has not seen yet.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let location = path.display().to_string();
        let open_error = |source| StoreError::Open {
            location: location.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| open_error(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the
            // file. Losing a few probe results is fine; an fsync per batch is not needed.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let writer = pool_options(1)
            .connect_with(options.clone().pragma("cache_size", WRITER_CACHE_KIB))
            .await
            .map_err(open_error)?;
        // Before the readers connect: the first connection switches a new file to WAL mode.
        migrator(&SQLITE_MIGRATIONS).run(&writer).await?;
        history::scrub_once(&writer).await?;
        let bulk = pool_options(1)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let reader = pool_options(READERS)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        // Open every reader now (held at once, then released): the pool then never connects
        // lazily under an acquire deadline.
        let mut held = Vec::with_capacity(READERS as usize);
        for _ in 0..READERS {
            held.push(reader.acquire().await.map_err(open_error)?);
        }
        drop(held);

        let keys = load_keys(&reader).await?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer,
            reader,
            bulk,
            keys,
        })
    }

    /// Closes every connection, waiting for those in use. The last one to close checkpoints the
    /// WAL into the main file.
    pub async fn close(&self) {
        self.reader.close().await;
        self.bulk.close().await;
        self.writer.close().await;
    }
}

// === multi-row statements ===

/// An `INSERT … VALUES (…), (…) …` in every power-of-two row count up to
/// [`MAX_ROWS_PER_STATEMENT`]: a batch of any size is then written with few statements, drawn
/// from a handful of texts that each connection prepares once.
struct MultiRow {
    by_log2: Vec<SqlStr>,
}

impl MultiRow {
    /// `head` is everything before `VALUES`, `tail` everything after the rows.
    fn new(head: &str, columns: usize, tail: &str) -> MultiRow {
        let row = format!("({})", vec!["?"; columns].join(", "));
        let by_log2 = (0..=MAX_ROWS_PER_STATEMENT.ilog2())
            .map(|log2| {
                let rows = vec![row.as_str(); 1 << log2].join(", ");
                dynamic_sql(format!("{head} VALUES {rows} {tail}"))
            })
            .collect();
        MultiRow { by_log2 }
    }

    /// The statement for `rows` rows, which [`statement_chunks`] guarantees is a power of two
    /// no larger than the maximum.
    fn sql(&self, rows: usize) -> SqlStr {
        self.by_log2[rows.ilog2() as usize].clone()
    }
}

/// Splits `items` into chunks of [`MAX_ROWS_PER_STATEMENT`], then of falling powers of two.
fn statement_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = rest.len().min(MAX_ROWS_PER_STATEMENT);
        let (chunk, tail) = rest.split_at(1 << size.ilog2());
        rest = tail;
        Some(chunk)
    })
}

// === the dialect and the back end ===

impl Dialect for Sqlite {
    fn connection(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self> {
        conn
    }

    fn locking(sql: &'static str) -> SqlStr {
        sql.into_sql_str()
    }

    const SNAPSHOT_BYTES: &'static str = "CAST(snapshot AS BLOB)";
}

impl Backend for SqliteStore {
    type Db = Sqlite;

    fn reader(&self) -> impl Executor<'_, Database = Sqlite> {
        &self.reader
    }

    fn writer(&self) -> impl Executor<'_, Database = Sqlite> {
        &self.writer
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with(BEGIN_WRITE).await?)
    }

    async fn begin_bulk_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.bulk.begin_with(BEGIN_WRITE).await?)
    }

    fn keys(&self) -> &MonitorKeys {
        &self.keys
    }

    /// Checks and inserts under the write lock, so two callers cannot both see "none open". The
    /// partial unique index stays the last line of defence.
    async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let open = sqlx::query(OPEN_INCIDENT_OF)
            .bind(&incident.monitor)
            .fetch_optional(&mut *tx)
            .await?;
        let id = match open {
            Some(row) => row.int(0)?,
            None => insert_incident(insert_incident_sql!("RETURNING id"), incident)
                .fetch_one(&mut *tx)
                .await?
                .int(0)?,
        };
        tx.commit().await?;
        Ok(id)
    }

    /// Results are keyed monitor first: one range delete per monitor. Rollups are keyed time
    /// first: the oldest buckets of every monitor go together, about [`PRUNE_ROLLUPS_PER_TX`]
    /// rows (one per monitor per bucket) per statement.
    async fn prune_history(
        &self,
        monitors: &[i64],
        now: Millis,
        retention: &Retention,
        pruned: &mut Pruned,
    ) -> Result<(), StoreError> {
        let raw_cutoff = now.saturating_sub(retention.raw);
        for chunk in monitors.chunks(PRUNE_MONITORS_PER_TX) {
            let mut tx = self.begin_write().await?;
            for &key in chunk {
                pruned.results +=
                    sqlx::query("DELETE FROM results WHERE monitor_key = $1 AND at < $2")
                        .bind(key)
                        .bind(raw_cutoff)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            tx.commit().await?;
        }

        let count = i64::try_from(monitors.len()).unwrap_or(i64::MAX).max(1);
        let buckets_per_statement = (PRUNE_ROLLUPS_PER_TX / count).max(1);
        for resolution in Resolution::ALL {
            let last_start = resolution.last_start_to_prune(now, retention);
            loop {
                let oldest: Option<Millis> = sqlx::query_scalar(
                    "SELECT MIN(bucket_start) FROM rollups WHERE resolution = $1",
                )
                .bind(resolution.code())
                .fetch_one(&self.writer)
                .await?;
                let Some(oldest) = oldest.filter(|oldest| *oldest <= last_start) else {
                    break;
                };
                let step_end = oldest
                    .saturating_add(buckets_per_statement.saturating_mul(resolution.width()) - 1)
                    .min(last_start);
                pruned.rollups +=
                    sqlx::query("DELETE FROM rollups WHERE resolution = $1 AND bucket_start <= $2")
                        .bind(resolution.code())
                        .bind(step_end)
                        .execute(&self.writer)
                        .await?
                        .rows_affected();
            }
        }
        Ok(())
    }

    /// Pages in use or free in the main file (`page_count × page_size`) plus the WAL file as it
    /// is now; checkpoints fold the WAL back into the main file, so it stays a few MiB.
    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let main: i64 = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.reader)
        .await?;
        let mut wal_path = self.path.clone().into_os_string();
        wal_path.push("-wal");
        let wal = match tokio::fs::metadata(&wal_path).await {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(StoreError::Db(sqlx::Error::Io(e))),
        };
        Ok(main.unsigned_abs() + wal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_chunks_are_full_then_falling_powers_of_two() {
        let items: Vec<u32> = (0..(2 * MAX_ROWS_PER_STATEMENT as u32 + 11)).collect();
        let sizes: Vec<usize> = statement_chunks(&items).map(<[u32]>::len).collect();
        assert_eq!(
            sizes,
            vec![MAX_ROWS_PER_STATEMENT, MAX_ROWS_PER_STATEMENT, 8, 2, 1]
        );
        let rejoined: Vec<u32> = statement_chunks(&items).flatten().copied().collect();
        assert_eq!(rejoined, items);
        assert_eq!(statement_chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn multi_row_statements_have_one_row_group_per_row() {
        let insert = MultiRow::new("INSERT INTO t (a, b)", 2, "ON CONFLICT DO NOTHING");
        assert_eq!(
            insert.sql(2).as_str(),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            insert
                .sql(MAX_ROWS_PER_STATEMENT)
                .as_str()
                .matches("(?, ?)")
                .count(),
            MAX_ROWS_PER_STATEMENT
        );
    }

    /// A database that main's releases left at the official incidents (version 5) gains the
    /// queue's tables on open, its earlier migrations unchanged (a changed one is refused).
    #[tokio::test]
    async fn a_database_before_the_queue_gains_it_on_open() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("isdown.db");
        let before_queue = migrator(&SQLITE_MIGRATIONS[..5]);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = pool_options(1).connect_with(options).await.unwrap();
        before_queue.run(&pool).await.unwrap();
        pool.close().await;

        let store = SqliteStore::open(&path).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8]);
        let secret = crate::store::QueueStore::queue_secret(&store, b"fresh")
            .await
            .unwrap();
        assert_eq!(secret, b"fresh");
        store.close().await;
    }
}

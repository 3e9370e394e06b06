//! The store written once for both back ends: every operation whose SQL SQLite and PostgreSQL
//! both accept, generic over the back end, and the one implementation of [`Store`] and
//! [`QueueStore`](super::QueueStore) on top of it.
//!
//! A back end plugs in through [`Backend`] (its connections, its write transactions, its
//! monitor-key cache and the history work it does its own way) and the two traits of the
//! concerns where its schema or its locking differ: [`Results`](results::Results) (how a batch
//! of results is written, how one monitor's rollup buckets are found) and
//! [`QueueLines`](queue::QueueLines) (how groups of request lines are inserted, claimed,
//! recorded and released). Its SQL dialect is a [`Dialect`]: what sqlx needs to run a
//! statement on it, bundled so that generic code states one bound instead of a dozen.
//!
//! The shared SQL numbers its parameters `$1, $2, …`, which SQLite accepts too (and binds by
//! number, so a parameter may repeat or come out of order: the store test
//! `numbered_parameters_bind_by_number` checks it on both). It avoids the spellings only one
//! dialect knows: `TRUE`/`FALSE` and plain boolean tests rather than `1`/`0`, `CASE` rather
//! than `MIN(a, b)`/`LEAST`, `COUNT(CASE …)` rather than `FILTER`, `ON CONFLICT DO NOTHING`
//! rather than `INSERT OR IGNORE`, and casts (sqlx tells PostgreSQL each parameter's type, and
//! `store::rows` reads PostgreSQL's narrow integers as `i64`). Rows decode in `store::rows`,
//! once for both, and so do their errors. What reads only one way stays with its back end,
//! small: SQLite's pragmas, multi-row statements and time-first rollup keys; PostgreSQL's
//! `UNNEST` arrays, `FOR UPDATE SKIP LOCKED` claims and insert-or-retry incident opening; and
//! the two statements a [`Dialect`] spells itself (`FOR UPDATE`, text as bytes). Nothing here
//! opens a database; `store::open` does.

pub(super) mod incidents;
pub(super) mod official;
pub(super) mod outbox;
pub(super) mod queue;
pub(super) mod results;
mod store;

use sqlx::query::Query;
use sqlx::{Database, Encode, Executor, IntoArguments, SqlStr, Transaction, Type};

use super::StoreError;
use super::cluster::Cluster;
use super::keys::MonitorKeys;
use super::rows::StoredRow;
use super::{NewIncident, Pruned, Retention};
use crate::time::Millis;

/// A database driver the shared SQL runs on (sqlx's `Sqlite` and `Postgres`).
///
/// sqlx's generic API asks every generic function to state, for each value it binds, that the
/// driver can encode it, and that a connection of the driver is an executor: a dozen `where`
/// lines that Rust would make every caller repeat. Stated here once, as supertraits and methods
/// (which callers do see), they cost the shared code `.arg(…)` for `.bind(…)` and [`on`] for
/// `&mut *tx`.
pub trait Dialect:
    Database<Row: StoredRow, QueryResult: Affected, Arguments: IntoArguments<Self>>
    + Encodes<i64>
    + Encodes<Option<i64>>
    + Encodes<bool>
    + Encodes<Option<bool>>
    + for<'a> Encodes<&'a str>
    + for<'a> Encodes<Option<&'a str>>
    + for<'a> Encodes<&'a [u8]>
    + for<'a> Encodes<Option<&'a [u8]>>
{
    /// A connection as an executor.
    fn connection(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self>;

    /// `sql` for a read inside a write transaction that must keep the rows it reads from
    /// changing until the transaction ends: PostgreSQL locks them (`FOR UPDATE`); SQLite's
    /// write transactions hold the whole database already (`BEGIN IMMEDIATE`).
    fn locking(sql: &'static str) -> SqlStr;

    /// The snapshot column (text) as bytes, as `quarantined_state` keeps it: byte for byte,
    /// whatever the text holds.
    const SNAPSHOT_BYTES: &'static str;
}

/// Monitors whose raw results are pruned per write transaction: few enough that writers never
/// wait long behind a prune, enough not to pay a commit per monitor.
pub const PRUNE_MONITORS_PER_TX: usize = 100;

/// A statement with its arguments bound.
pub type Statement<'q, D> = Query<'q, D, <D as Database>::Arguments>;

/// A row of `B`'s database.
pub type RowOf<B> = <<B as Backend>::Db as Database>::Row;

/// Runs a write on `store`'s writer; answers the rows it changed.
pub async fn write<B: Backend>(
    store: &B,
    statement: Statement<'_, B::Db>,
) -> Result<u64, StoreError> {
    Ok(statement.execute(store.writer()).await?.rows_affected())
}

/// Every row a read answers, decoded.
pub async fn read_all<B: Backend, T>(
    store: &B,
    statement: Statement<'_, B::Db>,
    decode: impl Fn(&RowOf<B>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = statement.fetch_all(store.reader()).await?;
    rows.iter().map(decode).collect()
}

/// The row a read answers, if any, decoded.
pub async fn read_one<B: Backend, T>(
    store: &B,
    statement: Statement<'_, B::Db>,
    decode: impl Fn(&RowOf<B>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let row = statement.fetch_optional(store.reader()).await?;
    row.as_ref().map(decode).transpose()
}

/// After an update that had to change a row: none changed is `StoreError::Db(RowNotFound)`.
pub fn require_row(changed: u64) -> Result<(), StoreError> {
    match changed {
        0 => Err(StoreError::Db(sqlx::Error::RowNotFound)),
        _ => Ok(()),
    }
}

/// `tx` as an executor: what `&mut *tx` is to a concrete driver.
pub fn on<'t, D: Dialect>(tx: &'t mut Transaction<'_, D>) -> impl Executor<'t, Database = D> {
    D::connection(&mut **tx)
}

/// The rows a statement changed (sqlx's drivers each have the method, no trait has it).
pub trait Affected {
    fn rows_affected(&self) -> u64;
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The driver can bind a `T`: sqlx's `T: Encode<DB> + Type<DB>`, turned around so that it is a
/// bound on the driver, which a supertrait of [`Dialect`] can carry.
pub trait Encodes<T>: Database {
    fn bind_to(
        query: Query<'_, Self, Self::Arguments>,
        value: T,
    ) -> Query<'_, Self, Self::Arguments>;
}

impl<'t, DB: Database, T: Encode<'t, DB> + Type<DB> + 't> Encodes<T> for DB {
    fn bind_to(query: Query<'_, DB, DB::Arguments>, value: T) -> Query<'_, DB, DB::Arguments> {
        query.bind(value)
    }
}

/// `.arg(value)`: `.bind(value)` for generic code, bound by [`Encodes`].
pub trait Arg<DB: Database> {
    fn arg<T>(self, value: T) -> Self
    where
        DB: Encodes<T>;
}

impl<DB: Database> Arg<DB> for Query<'_, DB, DB::Arguments> {
    fn arg<T>(self, value: T) -> Self
    where
        DB: Encodes<T>,
    {
        DB::bind_to(self, value)
    }
}

/// What a back end provides to the shared operations: its connections and its write
/// transactions, its monitor-key cache, and the history work whose SQL is its own.
pub trait Backend: Send + Sync + 'static {
    type Db: Dialect;

    /// Where reads go (SQLite: a pool of read connections beside the writer).
    fn reader(&self) -> impl Executor<'_, Database = Self::Db>;

    /// Where single-statement writes go.
    fn writer(&self) -> impl Executor<'_, Database = Self::Db>;

    /// A write transaction, holding whatever lock its back end needs to take up front.
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;

    /// A write transaction for bulk line data (uploaded files' lines): SQLite gives it a
    /// connection of its own, with a small page cache; PostgreSQL any connection.
    fn begin_bulk_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;

    /// Monitor id → key, for every key this store has seen committed.
    fn keys(&self) -> &MonitorKeys;

    /// What instances sharing this database know of each other; `None` for a store that serves
    /// one instance.
    fn cluster(&self) -> Option<&dyn Cluster> {
        None
    }

    /// Opens an incident unless its monitor has one open, and answers with the id of the one
    /// that is open afterwards: the back end's, because how the rule holds against concurrent
    /// openers is (SQLite: under its write lock; PostgreSQL: the partial unique index).
    fn open_incident(
        &self,
        incident: &NewIncident,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Deletes raw results and rollup rows older than the retention allows, in short
    /// transactions (at most [`PRUNE_MONITORS_PER_TX`] monitors' raw results each); fills in
    /// `results` and `rollups`. `monitors` are every monitor's key, in order.
    fn prune_history(
        &self,
        monitors: &[i64],
        now: Millis,
        retention: &Retention,
        pruned: &mut Pruned,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Bytes the database occupies.
    fn size_bytes(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

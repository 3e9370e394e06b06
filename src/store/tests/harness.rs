//! One back end under test: a fresh, empty database of it, a store opened on it (as often as a
//! test likes, as a restarted `serve` would), and a connection behind the store's back. A test
//! written against [`Harness`] runs on both back ends from one definition.

use std::path::{Path, PathBuf};

use sqlx::postgres::{PgConnection, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Database, Row, SqlSafeStr};

use crate::store::postgres::PostgresStore;
use crate::store::postgres::scratch::ScratchDatabase;
use crate::store::rows::StoredRow;
use crate::store::sql::{Affected, Dialect};
use crate::store::sqlite::SqliteStore;
use crate::store::{PoolSettings, Store, StoreError};

pub trait Harness: Sized {
    type Db: Dialect;
    type Store: Store;

    /// Whether a column holds values of any type, whatever it was declared as (SQLite): tests
    /// then also damage rows in ways PostgreSQL's types refuse.
    const ANY_VALUE_IN_ANY_COLUMN: bool;

    /// A fresh, empty database (not opened yet).
    async fn create() -> Self;

    /// Opens the store on it, applying the migrations it has not seen.
    async fn try_open(&self) -> Result<Self::Store, StoreError>;

    async fn open(&self) -> Self::Store {
        self.try_open().await.unwrap()
    }

    /// Closes a store [`Harness::open`] opened, waiting for its connections.
    async fn close(store: Self::Store);

    /// A connection of its own, for reading and damaging rows behind the store's back.
    async fn raw(&self) -> <Self::Db as Database>::Connection;

    /// Removes the database.
    async fn remove(self);
}

/// A connection of its own to the SQLite file at `path` (created if missing, as a scratch
/// PostgreSQL database exists before a store opens it).
pub async fn sqlite_raw(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap()
}

/// A SQLite file in a temporary directory of its own.
pub struct SqliteFile {
    // Kept for its drop, which removes the directory.
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Harness for SqliteFile {
    type Db = Sqlite;
    type Store = SqliteStore;

    const ANY_VALUE_IN_ANY_COLUMN: bool = true;

    async fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("isdown.db");
        SqliteFile { _dir: dir, path }
    }

    async fn try_open(&self) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(&self.path).await
    }

    async fn close(store: SqliteStore) {
        store.close().await;
    }

    async fn raw(&self) -> SqliteConnection {
        sqlite_raw(&self.path).await
    }

    async fn remove(self) {}
}

/// A scratch database on the server `ISDOWN_TEST_POSTGRES` names (without it, the test fails
/// saying what to set).
pub struct ScratchPostgres(pub ScratchDatabase);

impl Harness for ScratchPostgres {
    type Db = Postgres;
    type Store = PostgresStore;

    const ANY_VALUE_IN_ANY_COLUMN: bool = false;

    async fn create() -> Self {
        ScratchPostgres(
            ScratchDatabase::create()
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    async fn try_open(&self) -> Result<PostgresStore, StoreError> {
        PostgresStore::open(self.0.url(), &PoolSettings::default()).await
    }

    async fn close(store: PostgresStore) {
        store.close().await;
    }

    async fn raw(&self) -> PgConnection {
        PgConnection::connect_with(&self.0.url().connect_options())
            .await
            .unwrap()
    }

    async fn remove(self) {
        self.0.drop_now().await;
    }
}

/// Runs `sql` on a raw connection; answers the rows it changed.
pub async fn exec<D: Dialect>(conn: &mut D::Connection, sql: &str) -> u64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str())
        .execute(D::connection(conn))
        .await
        .unwrap()
        .rows_affected()
}

/// The rows `sql` answers on a raw connection, for the test to read with [`StoredRow`].
pub async fn select<D: Dialect>(conn: &mut D::Connection, sql: &str) -> Vec<D::Row> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str())
        .fetch_all(D::connection(conn))
        .await
        .unwrap()
}

/// Every column of every row `sql` answers, as integers.
pub async fn integers<D: Dialect>(conn: &mut D::Connection, sql: &str) -> Vec<Vec<i64>> {
    select::<D>(conn, sql)
        .await
        .iter()
        .map(|row| (0..row.len()).map(|i| row.int(i).unwrap()).collect())
        .collect()
}

/// Closes a raw connection.
pub async fn close_raw<D: Dialect>(conn: D::Connection) {
    conn.close().await.unwrap();
}

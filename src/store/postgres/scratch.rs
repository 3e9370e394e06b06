//! Scratch databases for tests: each test that needs PostgreSQL creates its own, uniquely named
//! database on the server `ISDOWN_TEST_POSTGRES` names, and drops it when done — so tests run
//! in parallel without seeing each other's rows, and leave nothing behind.
//!
//! Test support, compiled into the library so that unit tests (`store::tests`) and integration
//! tests (`tests/`) share one implementation; nothing in isdown itself calls it. Without the
//! variable, [`ScratchDatabase::create`] fails with what to set: the PostgreSQL half of the
//! tests is never skipped silently (`.ci/run` always sets it; a developer without PostgreSQL
//! leaves those tests out by name, `cargo test -- --skip postgres`).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, PgConnection};
use thiserror::Error;

use crate::store::{DatabaseUrl, PostgresUrl};

/// The variable naming the server (any database on it: scratch databases are created beside).
pub const SERVER_VAR: &str = "ISDOWN_TEST_POSTGRES";

/// Every scratch database's name starts with this, so leftovers of a killed run are easy to
/// spot (`\l isdown_test_*`).
pub const NAME_PREFIX: &str = "isdown_test_";

#[derive(Debug, Error)]
pub enum ScratchError {
    #[error(
        "{SERVER_VAR} is not set: the PostgreSQL half of the tests needs a server to create \
         scratch databases on, e.g. {SERVER_VAR}=postgres://isdown:isdown@127.0.0.1:5432/postgres \
         with a role allowed to CREATE DATABASE (.ci/run starts one and sets it; see README, \
         Development). Without PostgreSQL, leave those tests out: cargo test -- --skip postgres"
    )]
    Unset,
    #[error("{SERVER_VAR} is not a postgres:// URL: {0}")]
    NotPostgres(String),
    #[error("cannot create a scratch database on {server}: {source}")]
    Create { server: String, source: sqlx::Error },
}

/// A database of its own, dropped on drop (or earlier with [`ScratchDatabase::drop_now`]).
pub struct ScratchDatabase {
    server: PostgresUrl,
    name: String,
    url: PostgresUrl,
    dropped: bool,
}

impl ScratchDatabase {
    /// Creates a fresh, empty database on the server [`SERVER_VAR`] names.
    pub async fn create() -> Result<ScratchDatabase, ScratchError> {
        let text = std::env::var(SERVER_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or(ScratchError::Unset)?;
        let server = match DatabaseUrl::parse(&text) {
            Ok(DatabaseUrl::Postgres(url)) => url,
            Ok(DatabaseUrl::Sqlite(_)) => {
                return Err(ScratchError::NotPostgres("it names SQLite".into()));
            }
            Err(e) => return Err(ScratchError::NotPostgres(e.to_string())),
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{NAME_PREFIX}{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let create_error = |source| ScratchError::Create {
            server: server.to_string(),
            source,
        };
        let mut admin = PgConnection::connect_with(&server.connect_options())
            .await
            .map_err(create_error)?;
        admin
            .execute(crate::store::dynamic_sql(format!(
                "CREATE DATABASE \"{name}\""
            )))
            .await
            .map_err(create_error)?;
        let _ = admin.close().await;
        Ok(ScratchDatabase {
            url: server.with_database(&name),
            server,
            name,
            dropped: false,
        })
    }

    /// The database's URL (password included when the server's URL has one).
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }

    /// Drops the database now (closing whatever is still connected to it).
    pub async fn drop_now(mut self) {
        self.dropped = true;
        drop_database(&self.server, &self.name).await;
    }
}

impl Drop for ScratchDatabase {
    /// A test that panicked before `drop_now` still drops its database: from a thread of its
    /// own, since this may run inside the test's runtime, which cannot be blocked on.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropper = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(drop_database(&server, &name));
            }
        });
        let _ = dropper.join();
    }
}

/// Best effort: a database left behind is harmless (and named to be found).
async fn drop_database(server: &PostgresUrl, name: &str) {
    let Ok(mut admin) = PgConnection::connect_with(&server.connect_options()).await else {
        return;
    };
    let _ = admin
        .execute(crate::store::dynamic_sql(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await;
    let _ = admin.close().await;
}

//! The PostgreSQL half of the store tests: the shared suite on a scratch database per test (so
//! they run in parallel), and what only PostgreSQL can be asked — its tables, raw rows, its
//! migrations, and several stores (as several isdown instances would) on one database.
//!
//! The server comes from `ISDOWN_TEST_POSTGRES` (`store::postgres::scratch`); without it every
//! test here fails saying what to set. Every test's path contains `postgres`, so
//! `cargo test -- --skip postgres` leaves exactly these out.

use sqlx::{Connection, PgConnection};

use super::suite;
use super::suite::{T0, all_incidents, new_incident, result};
use crate::store::postgres::PostgresStore;
use crate::store::postgres::scratch::ScratchDatabase;
use crate::store::{DatabaseUrl, PoolSettings, SavedState, Store, StoreError};
use crate::verdict::Verdict;

async fn scratch() -> ScratchDatabase {
    ScratchDatabase::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn open(db: &ScratchDatabase) -> PostgresStore {
    PostgresStore::open(db.url(), &PoolSettings::default())
        .await
        .unwrap()
}

/// A connection of its own, for reading and damaging rows behind the store's back.
async fn raw(db: &ScratchDatabase) -> PgConnection {
    PgConnection::connect_with(&db.url().connect_options())
        .await
        .unwrap()
}

/// One `#[tokio::test]` per suite function, each on a scratch database of its own.
macro_rules! postgres_suite {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let db = scratch().await;
                let store = open(&db).await;
                suite::$name(&store).await;
                store.close().await;
                db.drop_now().await;
            }
        )*
    };
}

for_each_suite_test!(postgres_suite);

#[tokio::test]
async fn everything_survives_a_restart() {
    let db = scratch().await;
    let store = open(&db).await;
    let incident = suite::everything_survives_a_restart_write(&store).await;
    store.close().await;
    let store = open(&db).await;
    suite::everything_survives_a_restart_check(&store, incident).await;
    store.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn reopening_does_not_rerun_migrations() {
    let db = scratch().await;
    for round in 0..3 {
        let store = open(&db).await;
        store
            .record_results(&[result("m", T0 + round, Verdict::Up)])
            .await
            .unwrap();
        store.close().await;
    }
    let mut conn = raw(&db).await;
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        applied,
        vec![
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, true),
            (6, true)
        ]
    );
    let results: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(results, 3);
    // A new database was never written by a version before the scrub: marked done once.
    let marks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM history_scrubbed")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(marks, 1);
    conn.close().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn rollup_rows_count_per_resolution_and_bucket() {
    use crate::time::{HOUR_MS, MINUTE_MS};
    let db = scratch().await;
    let store = open(&db).await;
    let mut fast = result("m", T0 + HOUR_MS - 1, Verdict::Up);
    fast.latency_ms = Some(120.0);
    let mut slow = result("m", T0 + HOUR_MS + 30_000, Verdict::Degraded);
    slow.latency_ms = Some(9_000.0);
    // Two calls, so the second one's buckets are added to rows the first one created.
    store
        .record_results(&[fast, result("m", T0 + HOUR_MS, Verdict::Unavailable)])
        .await
        .unwrap();
    store
        .record_results(&[
            slow,
            result("m", T0 + HOUR_MS + 61_000, Verdict::AuthFailed),
        ])
        .await
        .unwrap();
    store.close().await;

    let mut conn = raw(&db).await;
    type Row = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT resolution::bigint, bucket_start, total::bigint, healthy::bigint,
                degraded::bigint, provider_failed::bigint, other_failed::bigint,
                le_200::bigint, le_10000::bigint, le_inf::bigint
         FROM rollups ORDER BY resolution, bucket_start",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let (m0, m1, h1) = (T0 + 59 * MINUTE_MS, T0 + HOUR_MS, T0 + HOUR_MS);
    assert_eq!(
        rows,
        vec![
            // resolution, start, total, healthy, degraded, provider, other, le_200, le_10000, inf
            (0, m0, 1, 1, 0, 0, 0, 1, 0, 0),
            (0, m1, 2, 1, 1, 1, 0, 0, 1, 0),
            (0, m1 + MINUTE_MS, 1, 0, 0, 0, 1, 0, 0, 0),
            (1, T0, 1, 1, 0, 0, 0, 1, 0, 0),
            (1, h1, 3, 1, 1, 1, 1, 0, 1, 0),
            (2, T0, 4, 2, 1, 1, 1, 1, 1, 0),
        ]
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_snapshot_that_is_not_json_is_unreadable_for_its_monitor_only() {
    let db = scratch().await;
    let store = open(&db).await;
    store.save_monitor_state("ok", "{}").await.unwrap();
    let mut conn = raw(&db).await;
    sqlx::query("INSERT INTO monitor_state (monitor, snapshot) VALUES ('m', '{\"state\": ')")
        .execute(&mut conn)
        .await
        .unwrap();
    let loaded = store.load_monitor_states().await.unwrap();
    assert_eq!(loaded[1].1, SavedState::Snapshot("{}".into()), "{loaded:?}");
    assert!(
        matches!(&loaded[0], (m, SavedState::Unreadable(_)) if m == "m"),
        "{loaded:?}"
    );
    // Quarantined, it is kept as found, and gone from the monitor's state.
    store
        .quarantine_monitor_state("m", "not JSON", T0)
        .await
        .unwrap();
    let kept: (Vec<u8>, String) =
        sqlx::query_as("SELECT snapshot, reason FROM quarantined_state WHERE monitor = 'm'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(kept, (b"{\"state\": ".to_vec(), "not JSON".into()));
    assert_eq!(store.load_monitor_states().await.unwrap().len(), 1);
    conn.close().await.unwrap();
    store.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn unknown_codes_in_the_database_are_corrupt_not_a_panic() {
    let db = scratch().await;
    let store = open(&db).await;
    store
        .record_results(&[result("m", T0, Verdict::Up)])
        .await
        .unwrap();
    let id = store.open_incident(&new_incident("m", T0)).await.unwrap();
    let mut conn = raw(&db).await;

    for damage in [
        "UPDATE results SET verdict = 99",
        "UPDATE results SET blame = 7",
        "UPDATE results SET status = 70000",
    ] {
        sqlx::query("UPDATE results SET verdict = 0, blame = NULL, status = 200")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(damage))
            .execute(&mut conn)
            .await
            .unwrap();
        let read = store.recent_results("m", 10).await;
        assert!(
            matches!(read, Err(StoreError::Corrupt(_))),
            "{damage}: {read:?}"
        );
    }

    for damage in [
        "UPDATE incidents SET verdict = 'exploded'",
        "UPDATE incidents SET verdict = 'up', kind = 'apocalypse'",
        "UPDATE incidents SET kind = 'outage', failed_probes = -1",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(damage))
            .execute(&mut conn)
            .await
            .unwrap();
        let one = store.incident(id).await;
        assert!(
            matches!(one, Err(StoreError::Corrupt(_))),
            "{damage}: {one:?}"
        );
        let listed = store.incidents(&all_incidents(10)).await;
        assert!(
            matches!(listed, Err(StoreError::Corrupt(_))),
            "{damage}: {listed:?}"
        );
    }
    conn.close().await.unwrap();
    store.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_changed_released_migration_is_refused() {
    let db = scratch().await;
    open(&db).await.close().await;
    let mut conn = raw(&db).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let reopened = PostgresStore::open(db.url(), &PoolSettings::default()).await;
    assert!(
        matches!(reopened, Err(StoreError::Migrate(_))),
        "{reopened:?}"
    );
    db.drop_now().await;
}

// === several stores on one database (as several isdown instances would be) ===

#[tokio::test]
async fn stores_opening_together_migrate_once() {
    let db = scratch().await;
    let (a, b, c) = tokio::join!(open(&db), open(&db), open(&db));
    for store in [a, b, c] {
        store.close().await;
    }
    let mut conn = raw(&db).await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, 6);
    conn.close().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn stores_opening_one_incident_at_once_get_the_same_one() {
    let db = scratch().await;
    let stores: Vec<PostgresStore> =
        futures_util::future::join_all((0..4).map(|_| open(&db))).await;
    for round in 0..5 {
        let incident = new_incident(&format!("m{round}"), T0);
        let ids =
            futures_util::future::join_all(stores.iter().map(|s| s.open_incident(&incident))).await;
        let ids: Vec<i64> = ids.into_iter().map(Result::unwrap).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }
    let all = stores[0].incidents(&all_incidents(100)).await.unwrap();
    assert_eq!(all.len(), 5, "one incident per monitor: {all:?}");
    for store in &stores {
        store.close().await;
    }
    db.drop_now().await;
}

#[tokio::test]
async fn stores_writing_the_same_buckets_at_once_add_up() {
    let db = scratch().await;
    let stores: Vec<PostgresStore> =
        futures_util::future::join_all((0..4).map(|_| open(&db))).await;
    // Each store writes its own results of the same monitors into the same minute buckets.
    let writes = stores.iter().enumerate().map(|(i, store)| async move {
        for round in 0..10i64 {
            let at = T0 + round * 1_000 + i as i64 * 10;
            let batch: Vec<_> = ["a", "b", "c"]
                .iter()
                .map(|m| result(m, at, Verdict::Up))
                .collect();
            store.record_results(&batch).await.unwrap();
        }
    });
    futures_util::future::join_all(writes).await;
    for monitor in ["a", "b", "c"] {
        let counts = stores[0].daily_counts(monitor, T0, 1).await.unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].total, 40, "{monitor}");
    }
    for store in &stores {
        store.close().await;
    }
    db.drop_now().await;
}

// === the URL is a secret ===

#[tokio::test]
async fn a_rejected_password_is_an_error_naming_the_server_not_the_password() {
    const WRONG: &str = "wrong-password-Zq9x";
    let db = scratch().await;
    let mut url = reqwest::Url::parse(db.url().expose()).unwrap();
    url.set_password(Some(WRONG)).unwrap();
    let DatabaseUrl::Postgres(wrong) = DatabaseUrl::parse(url.as_str()).unwrap() else {
        panic!("a postgres URL");
    };
    let error = PostgresStore::open(&wrong, &PoolSettings::default())
        .await
        .expect_err(
            "the server accepted a wrong password: point ISDOWN_TEST_POSTGRES at a server that \
             checks passwords (scram-sha-256 over TCP, as .ci/run sets up)",
        );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(WRONG), "{shown}");
    assert!(shown.contains(&db.url().to_string()), "{shown}");
    db.drop_now().await;
}

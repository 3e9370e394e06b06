//! What only PostgreSQL can be asked: several stores (as several isdown instances would be) on
//! one database, and the password in its URL. The server comes from `ISDOWN_TEST_POSTGRES`
//! (`store::postgres::scratch`); without it every test here fails saying what to set.

use super::harness::{Harness, ScratchPostgres, close_raw, integers};
use super::suite::{T0, all_incidents, new_incident, result};
use crate::store::postgres::PostgresStore;
use crate::store::{DatabaseUrl, PoolSettings, Store};
use crate::verdict::Verdict;

// === several stores on one database (as several isdown instances would be) ===

/// Four stores opened at once on `db`.
async fn four_stores(db: &ScratchPostgres) -> Vec<PostgresStore> {
    futures_util::future::join_all((0..4).map(|_| db.open())).await
}

async fn close_all(stores: Vec<PostgresStore>) {
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn stores_opening_together_migrate_once() {
    let db = ScratchPostgres::create().await;
    close_all(four_stores(&db).await).await;
    let mut conn = db.raw().await;
    let applied = integers::<sqlx::Postgres>(&mut conn, "SELECT COUNT(*) FROM _sqlx_migrations");
    assert_eq!(
        applied.await,
        [[6]],
        "four stores opened at once migrated once"
    );
    close_raw::<sqlx::Postgres>(conn).await;
    db.remove().await;
}

#[tokio::test]
async fn stores_opening_one_incident_at_once_get_the_same_one() {
    let db = ScratchPostgres::create().await;
    let stores = four_stores(&db).await;
    for round in 0..5 {
        let incident = new_incident(&format!("m{round}"), T0);
        let ids =
            futures_util::future::join_all(stores.iter().map(|s| s.open_incident(&incident))).await;
        let ids: Vec<i64> = ids.into_iter().map(Result::unwrap).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }
    let all = stores[0].incidents(&all_incidents(100)).await.unwrap();
    assert_eq!(all.len(), 5, "one incident per monitor: {all:?}");
    close_all(stores).await;
    db.remove().await;
}

#[tokio::test]
async fn stores_writing_the_same_buckets_at_once_add_up() {
    let db = ScratchPostgres::create().await;
    let stores = four_stores(&db).await;
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
    close_all(stores).await;
    db.remove().await;
}

// === the URL is a secret ===

#[tokio::test]
async fn a_rejected_password_is_an_error_naming_the_server_not_the_password() {
    const WRONG: &str = "wrong-password-Zq9x";
    let db = ScratchPostgres::create().await;
    let mut url = reqwest::Url::parse(db.0.url().expose()).unwrap();
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
    assert!(shown.contains(&db.0.url().to_string()), "{shown}");
    db.remove().await;
}

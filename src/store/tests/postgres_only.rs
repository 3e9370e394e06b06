//! What only PostgreSQL can be asked: several stores (as several isdown instances would be) on
//! one database, and the password in its URL. The server comes from `ISDOWN_TEST_POSTGRES`
//! (`store::postgres::scratch`); without it every test here fails saying what to set.

use super::harness::{Harness, ScratchPostgres, close_raw, integers};
use super::suite::{T0, all_incidents, new_incident, result};
use crate::store::postgres::PostgresStore;
use std::time::Duration;

use crate::store::{DatabaseUrl, Member, PoolSettings, Store};
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
        [[8]],
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

// === members and leases (several instances) ===

fn member(instance: &str, region: &str) -> Member {
    Member {
        instance: instance.into(),
        region: region.into(),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|n| (*n).to_owned()).collect()
}

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn heartbeats_list_the_live_members_and_leaving_removes_one() {
    let db = ScratchPostgres::create().await;
    let stores = four_stores(&db).await;
    let (a, b) = (stores[0].cluster().unwrap(), stores[1].cluster().unwrap());
    a.heartbeat(&member("a", "eu"), LEASE).await.unwrap();
    let seen = b.heartbeat(&member("b", "us"), LEASE).await.unwrap();
    assert_eq!(seen, vec![member("a", "eu"), member("b", "us")]);
    // A member not seen within the lease time is not alive.
    let mut conn = db.raw().await;
    sqlx::query("UPDATE peers SET seen_at = seen_at - 120000 WHERE instance = 'a'")
        .execute(&mut conn)
        .await
        .unwrap();
    let seen = b.heartbeat(&member("b", "us"), LEASE).await.unwrap();
    assert_eq!(seen, vec![member("b", "us")]);
    b.leave("b").await.unwrap();
    let seen = a.heartbeat(&member("a", "eu"), LEASE).await.unwrap();
    assert_eq!(seen, vec![member("a", "eu")]);
    close_raw::<sqlx::Postgres>(conn).await;
    close_all(stores).await;
    db.remove().await;
}

#[tokio::test]
async fn a_lease_is_held_by_one_member_until_it_expires_or_is_given_up() {
    let db = ScratchPostgres::create().await;
    let stores = four_stores(&db).await;
    let (a, b) = (stores[0].cluster().unwrap(), stores[1].cluster().unwrap());
    let wanted = names(&["monitor/eu/kimi-chat", "alerts"]);
    assert_eq!(a.hold("a", &wanted, LEASE).await.unwrap(), wanted);
    // Renewing keeps them; another member asking for them gets none.
    assert_eq!(a.hold("a", &wanted, LEASE).await.unwrap(), wanted);
    assert!(b.hold("b", &wanted, LEASE).await.unwrap().is_empty());
    // No longer wanted is given up in the same call, and another member may take it.
    let kept = names(&["alerts"]);
    assert_eq!(a.hold("a", &kept, LEASE).await.unwrap(), kept);
    assert_eq!(
        b.hold("b", &wanted, LEASE).await.unwrap(),
        names(&["monitor/eu/kimi-chat"])
    );
    // An expired lease of a member that is not alive (it died) goes to the next member that
    // asks.
    let mut conn = db.raw().await;
    expire_leases_of("a", &mut conn).await;
    assert_eq!(b.hold("b", &wanted, LEASE).await.unwrap(), wanted);
    assert!(a.hold("a", &kept, LEASE).await.unwrap().is_empty());
    // Leaving gives every lease up at once.
    b.leave("b").await.unwrap();
    assert_eq!(a.hold("a", &wanted, LEASE).await.unwrap(), wanted);
    close_raw::<sqlx::Postgres>(conn).await;
    close_all(stores).await;
    db.remove().await;
}

/// Moves every lease of `holder` past its own expiry, as if taken long ago.
async fn expire_leases_of(holder: &str, conn: &mut sqlx::PgConnection) {
    sqlx::query("UPDATE leases SET expires_at = expires_at - 120000 WHERE holder = $1")
        .bind(holder)
        .execute(conn)
        .await
        .unwrap();
}

/// Each lease row's `xmin` (the transaction that last wrote it), by name.
async fn lease_versions(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar("SELECT xmin::TEXT FROM leases ORDER BY name")
        .fetch_all(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_live_member_keeps_its_leases_by_its_heartbeat_alone() {
    let db = ScratchPostgres::create().await;
    let stores = four_stores(&db).await;
    let (a, b) = (stores[0].cluster().unwrap(), stores[1].cluster().unwrap());
    let wanted = names(&["monitor/eu/kimi-chat", "monitor/eu/glm-chat", "alerts"]);
    a.heartbeat(&member("a", "eu"), LEASE).await.unwrap();
    b.heartbeat(&member("b", "eu"), LEASE).await.unwrap();
    assert_eq!(a.hold("a", &wanted, LEASE).await.unwrap(), wanted);
    let mut conn = db.raw().await;
    // Long after the leases were taken, a member that beats still holds them: holding them
    // again rewrites no row (`xmin`, the writing transaction, stays), and nobody may take them.
    expire_leases_of("a", &mut conn).await;
    let before = lease_versions(&mut conn).await;
    a.heartbeat(&member("a", "eu"), LEASE).await.unwrap();
    assert_eq!(a.hold("a", &wanted, LEASE).await.unwrap(), wanted);
    assert_eq!(lease_versions(&mut conn).await, before);
    assert!(b.hold("b", &wanted, LEASE).await.unwrap().is_empty());
    // Once its heartbeat is older than the lease time, they lapse and go to who asks.
    sqlx::query("UPDATE peers SET seen_at = seen_at - 120000 WHERE instance = 'a'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(b.hold("b", &wanted, LEASE).await.unwrap(), wanted);
    close_raw::<sqlx::Postgres>(conn).await;
    close_all(stores).await;
    db.remove().await;
}

#[tokio::test]
async fn members_claiming_the_same_leases_at_once_never_share_one() {
    let db = ScratchPostgres::create().await;
    let stores = four_stores(&db).await;
    let wanted: Vec<String> = (0..200).map(|i| format!("monitor/eu/m{i}")).collect();
    let claims = stores.iter().enumerate().map(|(i, store)| {
        let wanted = &wanted;
        async move {
            let holder = format!("i{i}");
            store
                .cluster()
                .unwrap()
                .hold(&holder, wanted, LEASE)
                .await
                .unwrap()
        }
    });
    let held = futures_util::future::join_all(claims).await;
    let mut all: Vec<&String> = held.iter().flatten().collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "a lease held twice");
    assert_eq!(total, 200, "every lease held by someone");
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

//! Store tests. Whatever holds for any back end runs on both from one definition: the suite
//! (`suite`, written against the `Store` trait, one fresh store per function) and the tests
//! below that reach behind the store with raw SQL (written against [`Harness`]).
//! `on_each_back_end!` turns both lists into the modules `sqlite` and `postgres`, one
//! `#[tokio::test]` per function and back end. Then what only SQLite can be asked (its file, its
//! pragmas, history left by older versions) and, in `postgres_only`, what only PostgreSQL can
//! (several stores on one database, the password in its URL). Every PostgreSQL test's path
//! contains `postgres`, so `cargo test -- --skip postgres` leaves exactly those out.

mod harness;
mod postgres_only;
mod suite;

use sqlx::{Database, Sqlite};

use super::rows::StoredRow;
use super::sql::{Arg, Dialect};
use super::sqlite::SqliteStore;
use super::{SavedState, Store, StoreError};
use crate::verdict::Verdict;
use harness::{Harness, SqliteFile, close_raw, exec, integers, select, sqlite_raw};
use suite::{T0, all_incidents, new_incident, result};

/// The suite's functions, each run on a fresh store of each back end.
macro_rules! suite_tests {
    ($harness:ty) => {
        suite_tests!(
            $harness;
            recent_results_come_newest_first_up_to_the_limit,
            a_result_keeps_the_region_it_was_probed_from,
            healthy_results_keep_no_explanation,
            a_replayed_batch_is_not_counted_twice,
            an_empty_batch_is_fine,
            a_large_batch_over_many_monitors_lands_in_each,
            monitors_register_idempotently_before_or_after_results,
            uptime_counts_only_provider_failures_per_window,
            uptime_is_none_without_provider_evidence,
            hour_buckets_split_exactly_on_the_hour,
            daily_latency_interpolates_percentiles_per_day,
            one_incident_is_open_per_monitor,
            incident_failures_close_and_reopen,
            incidents_filter_and_page_newest_first,
            monitor_state_snapshots_overwrite_and_load,
            a_snapshot_that_is_not_json_is_refused,
            snapshots_saved_together_land_each_and_one_bad_refuses_all,
            a_quarantined_state_is_set_aside_and_the_monitor_starts_afresh,
            texts_are_scrubbed_and_nul_free_on_their_way_in,
            prune_removes_exactly_what_retention_allows,
            size_grows_with_data,
            alert_commits_create_groups_and_queue_entries_per_channel,
            a_commit_with_a_duplicate_group_key_stores_nothing,
            groups_see_incidents_end_and_leave_once_resolved,
            outbox_entries_are_delivered_retried_or_given_up,
            pruning_alerts_keeps_what_is_pending_or_unresolved,
            // status page reads
            daily_counts_split_each_day_by_blame,
            latency_series_reads_hour_and_day_percentiles,
            incidents_between_are_those_open_in_the_window,
            // official status pages
            official_incidents_are_inserted_then_updated_in_place,
            official_incidents_between_are_those_open_in_the_window,
            an_acknowledged_incident_reads_back_with_the_official_incident_as_it_stands,
            pruning_keeps_official_incidents_an_incident_refers_to,
            // durable queue
            queue_secret_is_created_once,
            queue_uploads_are_invisible_until_complete_and_owned,
            queue_listings_page_newest_first_after_a_cursor,
            queue_a_line_ends_once_whatever_is_replayed,
            queue_groups_of_any_size_move_each_line_once,
            queue_released_and_recovered_lines_are_claimed_again,
            queue_claims_take_the_oldest_batch_first_and_only_running_ones,
            queue_a_rejected_batch_keeps_its_errors_and_no_lines,
            queue_an_ended_batch_has_its_result_files_and_frees_its_input,
            queue_prune_removes_ended_batches_and_unread_uploads,
        );
    };
    ($harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let db = <$harness>::create().await;
                let store = db.open().await;
                suite::$name(&store).await;
                <$harness>::close(store).await;
                db.remove().await;
            }
        )*
    };
}

/// The functions below, each run on each back end.
macro_rules! raw_tests {
    ($harness:ty) => {
        raw_tests!(
            $harness;
            numbered_parameters_bind_by_number,
            everything_survives_a_restart,
            reopening_does_not_rerun_migrations,
            rollup_rows_count_per_resolution_and_bucket,
            a_snapshot_that_is_not_json_is_unreadable_for_its_monitor_only,
            unknown_codes_in_the_database_are_corrupt_not_a_panic,
            a_changed_released_migration_is_refused,
            scrubbed_texts_are_what_the_database_holds,
        );
    };
    ($harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                super::$name::<$harness>().await;
            }
        )*
    };
}

macro_rules! on_each_back_end {
    ($($module:ident: $harness:ty),* $(,)?) => {
        $(
            mod $module {
                use super::*;
                suite_tests!($harness);
                raw_tests!($harness);
            }
        )*
    };
}

on_each_back_end!(sqlite: SqliteFile, postgres: harness::ScratchPostgres);

/// A raw connection of `H`'s back end.
type Raw<H> = <<H as Harness>::Db as Database>::Connection;

/// The shared SQL numbers its parameters `$1, $2, …` for both dialects: SQLite must bind them by
/// number too, whatever order they appear in and however often.
async fn numbered_parameters_bind_by_number<H: Harness>() {
    let db = H::create().await;
    let mut conn: Raw<H> = db.raw().await;
    let row = sqlx::query("SELECT $2 - $1, $1, $2 * $2")
        .arg(1_i64)
        .arg(10_i64)
        .fetch_one(H::Db::connection(&mut conn))
        .await
        .unwrap();
    let values: Vec<i64> = (0..3).map(|i| row.int(i).unwrap()).collect();
    assert_eq!(values, [9, 1, 100]);
    close_raw::<H::Db>(conn).await;
    db.remove().await;
}

async fn everything_survives_a_restart<H: Harness>() {
    let db = H::create().await;
    let store = db.open().await;
    let incident = suite::everything_survives_a_restart_write(&store).await;
    H::close(store).await;
    let store = db.open().await;
    suite::everything_survives_a_restart_check(&store, incident).await;
    H::close(store).await;
    db.remove().await;
}

async fn reopening_does_not_rerun_migrations<H: Harness>() {
    let db = H::create().await;
    for round in 0..3 {
        let store = db.open().await;
        store
            .record_results(&[result("m", T0 + round, Verdict::Up)])
            .await
            .unwrap();
        H::close(store).await;
    }
    let mut conn: Raw<H> = db.raw().await;
    let applied = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    assert_eq!(
        integers::<H::Db>(&mut conn, applied).await,
        (1..=8).map(|v| vec![v]).collect::<Vec<_>>()
    );
    let count = |table| format!("SELECT COUNT(*) FROM {table}");
    assert_eq!(integers::<H::Db>(&mut conn, &count("results")).await, [[3]]);
    // The history scrub is marked done once (SQLite at its first open, PostgreSQL at creation).
    assert_eq!(
        integers::<H::Db>(&mut conn, &count("history_scrubbed")).await,
        [[1]]
    );
    close_raw::<H::Db>(conn).await;
    db.remove().await;
}

async fn rollup_rows_count_per_resolution_and_bucket<H: Harness>() {
    use crate::time::{HOUR_MS, MINUTE_MS};
    let db = H::create().await;
    let store = db.open().await;
    let mut fast = result("m", T0 + HOUR_MS - 1, Verdict::Up); // 00:59:59.999
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
    H::close(store).await;

    let mut conn: Raw<H> = db.raw().await;
    let rows = integers::<H::Db>(
        &mut conn,
        "SELECT resolution, bucket_start, total, healthy, degraded, provider_failed,
                other_failed, le_200, le_10000, le_inf
         FROM rollups ORDER BY resolution, bucket_start",
    )
    .await;
    close_raw::<H::Db>(conn).await;
    let (m0, m1, h1) = (T0 + 59 * MINUTE_MS, T0 + HOUR_MS, T0 + HOUR_MS);
    assert_eq!(
        rows,
        [
            // resolution, start, total, healthy, degraded, provider, other, le_200, le_10000, inf
            [0, m0, 1, 1, 0, 0, 0, 1, 0, 0],
            [0, m1, 2, 1, 1, 1, 0, 0, 1, 0],
            [0, m1 + MINUTE_MS, 1, 0, 0, 0, 1, 0, 0, 0],
            [1, T0, 1, 1, 0, 0, 0, 1, 0, 0],
            [1, h1, 3, 1, 1, 1, 1, 0, 1, 0],
            [2, T0, 4, 2, 1, 1, 1, 1, 1, 0],
        ]
    );
    db.remove().await;
}

/// The newest (snapshot, reason) set aside for monitor `m`, as stored.
async fn quarantined_of_m<D: Dialect>(conn: &mut D::Connection) -> (Vec<u8>, String) {
    let rows = select::<D>(
        conn,
        "SELECT snapshot, reason FROM quarantined_state WHERE monitor = 'm' ORDER BY id DESC",
    )
    .await;
    (rows[0].bytes(0).unwrap(), rows[0].text(1).unwrap())
}

async fn a_snapshot_that_is_not_json_is_unreadable_for_its_monitor_only<H: Harness>() {
    let db = H::create().await;
    let store = db.open().await;
    store.save_monitor_state("ok", "{}").await.unwrap();
    let mut conn: Raw<H> = db.raw().await;
    // (SQL literal, its bytes): JSON cut short, and — where a column takes any value — not
    // even text.
    let not_json = ("'{\"state\": '", b"{\"state\": ".to_vec());
    let not_text = ("X'FF00FE'", vec![0xFF, 0x00, 0xFE]);
    let damaged = [not_json]
        .into_iter()
        .chain(H::ANY_VALUE_IN_ANY_COLUMN.then_some(not_text));
    for (literal, bytes) in damaged {
        let damage =
            format!("INSERT INTO monitor_state (monitor, snapshot) VALUES ('m', {literal})");
        exec::<H::Db>(&mut conn, &damage).await;
        let loaded = store.load_monitor_states().await.unwrap();
        assert_eq!(loaded[1].1, SavedState::Snapshot("{}".into()), "{loaded:?}");
        assert!(
            matches!(&loaded[0], (m, SavedState::Unreadable(_)) if m == "m"),
            "{literal}: {loaded:?}"
        );
        // Quarantined, it is kept as found, and gone from the monitor's state.
        store
            .quarantine_monitor_state("m", "unreadable", T0)
            .await
            .unwrap();
        assert_eq!(
            quarantined_of_m::<H::Db>(&mut conn).await,
            (bytes, "unreadable".into())
        );
        assert_eq!(store.load_monitor_states().await.unwrap().len(), 1);
    }
    close_raw::<H::Db>(conn).await;
    H::close(store).await;
    db.remove().await;
}

async fn unknown_codes_in_the_database_are_corrupt_not_a_panic<H: Harness>() {
    let db = H::create().await;
    let store = db.open().await;
    store
        .record_results(&[result("m", T0, Verdict::Up)])
        .await
        .unwrap();
    let id = store.open_incident(&new_incident("m", T0)).await.unwrap();
    let mut conn: Raw<H> = db.raw().await;

    // Corruptions of a results row, each checked on its own.
    let results_damage = [
        "UPDATE results SET verdict = 99",
        "UPDATE results SET blame = 7",
        "UPDATE results SET status = 70000",
    ];
    let text_for_a_code = "UPDATE results SET verdict = 'up'";
    let loose = H::ANY_VALUE_IN_ANY_COLUMN.then_some(text_for_a_code);
    for damage in results_damage.into_iter().chain(loose) {
        let repair = "UPDATE results SET verdict = 0, blame = NULL, status = 200";
        exec::<H::Db>(&mut conn, repair).await;
        exec::<H::Db>(&mut conn, damage).await;
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
        exec::<H::Db>(&mut conn, damage).await;
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
    close_raw::<H::Db>(conn).await;
    H::close(store).await;
    db.remove().await;
}

async fn a_changed_released_migration_is_refused<H: Harness>() {
    let db = H::create().await;
    H::close(db.open().await).await;
    let mut conn: Raw<H> = db.raw().await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1")
        .arg(&[0_u8][..])
        .execute(H::Db::connection(&mut conn))
        .await
        .unwrap();
    close_raw::<H::Db>(conn).await;
    let reopened = db.try_open().await;
    assert!(
        matches!(reopened, Err(StoreError::Migrate(_))),
        "{:?}",
        reopened.map(|_| "opened")
    );
    db.remove().await;
}

/// What the suite's scrub test wrote is what the database holds: no read path hides a secret
/// that was stored.
async fn scrubbed_texts_are_what_the_database_holds<H: Harness>() {
    let db = H::create().await;
    let store = db.open().await;
    suite::texts_are_scrubbed_and_nul_free_on_their_way_in(&store).await;
    H::close(store).await;

    let mut conn: Raw<H> = db.raw().await;
    for (table, column) in [
        ("results", "explanation"),
        ("incidents", "first_error"),
        ("incidents", "last_error"),
        ("monitor_state", "snapshot"),
        ("official_incidents", "title"),
    ] {
        let sql = format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL");
        let values = select::<H::Db>(&mut conn, &sql).await;
        assert!(!values.is_empty(), "{table}.{column}");
        for row in values {
            let value = row.text(0).unwrap();
            assert!(
                !value.contains(suite::SCRUBBED_KEY),
                "{table}.{column}: {value}"
            );
            assert!(!value.contains('\0'), "{table}.{column}: {value}");
            assert!(value.contains("[redacted]"), "{table}.{column}: {value}");
        }
    }
    close_raw::<H::Db>(conn).await;
    db.remove().await;
}

// === SQLite only ===

#[tokio::test]
async fn open_creates_parent_directories_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    assert!(path.exists());
    let mut conn = sqlite_raw(&path).await;
    let mode = select::<Sqlite>(&mut conn, "PRAGMA journal_mode").await;
    assert_eq!(mode[0].text(0).unwrap(), "wal");
    close_raw::<Sqlite>(conn).await;
}

#[tokio::test]
async fn history_written_by_older_versions_is_scrubbed_once_at_start_up() {
    const OLD_KEY: &str = "legacyproxytoken";
    let db = SqliteFile::create().await;
    let store = db.open().await;
    store
        .record_results(&[result("m", T0, Verdict::Up)])
        .await
        .unwrap();
    store.close().await;
    // What an older version left: the key verbatim in every text column, and no scrub mark.
    let mut conn = db.raw().await;
    let echo = format!("key {OLD_KEY} rejected");
    let payload = serde_json::json!({ "summary": echo }).to_string();
    for statement in [
        "DELETE FROM history_scrubbed",
        "UPDATE results SET explanation = ?1",
        "INSERT INTO incidents (monitor, provider, kind, verdict, started_at, failed_probes, \
         first_error, last_error) VALUES ('m', 'p', 'outage', 'server_error', 0, 2, ?1, ?1)",
        "INSERT INTO monitor_state (monitor, snapshot) VALUES ('m', ?2)",
        "INSERT INTO outbox (channel, dedup_key, event, payload, created_at, next_attempt_at, \
         last_error) VALUES ('c', 'k', 'opened', ?2, 0, 0, ?1)",
    ] {
        sqlx::query(statement)
            .bind(&echo)
            .bind(&payload)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    close_raw::<Sqlite>(conn).await;

    crate::secret::register([OLD_KEY]);
    db.open().await.close().await;
    let mut conn = db.raw().await;
    let dump = select::<Sqlite>(
        &mut conn,
        "SELECT explanation FROM results UNION ALL SELECT first_error FROM incidents \
         UNION ALL SELECT last_error FROM incidents UNION ALL SELECT snapshot FROM monitor_state \
         UNION ALL SELECT payload FROM outbox UNION ALL SELECT last_error FROM outbox",
    )
    .await;
    assert_eq!(dump.len(), 6);
    for row in &dump {
        let value = row.text(0).unwrap();
        assert!(!value.contains(OLD_KEY), "{value}");
        assert!(value.contains("[redacted]"), "{value}");
    }
    let marks = integers::<Sqlite>(&mut conn, "SELECT COUNT(*) FROM history_scrubbed").await;
    assert_eq!(marks, [[1]], "done once, and remembered");
    close_raw::<Sqlite>(conn).await;
}

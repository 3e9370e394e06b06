//! Store tests: the back-end-neutral suite (`suite`), run against SQLite files in temporary
//! directories (here) and against scratch PostgreSQL databases (`postgres`), plus what only one
//! back end can be asked (its files or tables, raw rows, corruption, migrations).

mod suite;

use std::path::Path;

use sqlx::{ConnectOptions, Connection, SqliteConnection, sqlite::SqliteConnectOptions};

use super::sqlite::SqliteStore;
use super::{SavedState, Store, StoreError};
use crate::verdict::Verdict;
use suite::{T0, all_incidents, new_incident, result};

/// Calls `$harness!` with every suite function that takes one fresh store: each back end's
/// harness turns the list into one `#[tokio::test]` per function, so a test added to the suite
/// runs on both.
macro_rules! for_each_suite_test {
    ($harness:ident) => {
        $harness!(
            recent_results_come_newest_first_up_to_the_limit,
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
}

mod postgres;

/// One `#[tokio::test]` per suite function, each on a fresh database file.
macro_rules! sqlite_suite {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(&dir.path().join("isdown.db")).await.unwrap();
                suite::$name(&store).await;
                store.close().await;
            }
        )*
    };
}

for_each_suite_test!(sqlite_suite);

#[test]
fn both_back_ends_list_the_same_migrations() {
    let names = |list: &super::Migrations| -> Vec<(i64, &str)> {
        list.iter().map(|(v, d, _)| (*v, *d)).collect()
    };
    assert_eq!(
        names(&super::sqlite::MIGRATIONS),
        names(&super::postgres::MIGRATIONS),
        "a schema change is one numbered migration in each back end's directory"
    );
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let incident = suite::everything_survives_a_restart_write(&store).await;
    store.close().await;
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    suite::everything_survives_a_restart_check(&store, incident).await;
    store.close().await;
}

// === SQLite only ===

/// A second connection to the file, for reading and damaging rows behind the store's back.
async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn open_creates_parent_directories_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    assert!(path.exists());
    let mut conn = raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn reopening_does_not_rerun_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    for round in 0..3 {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .record_results(&[result("m", T0 + round, Verdict::Up)])
            .await
            .unwrap();
        store.close().await;
    }
    let mut conn = raw(&path).await;
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
    conn.close().await.unwrap();
}

#[tokio::test]
async fn rollup_rows_count_per_resolution_and_bucket() {
    use crate::time::{HOUR_MS, MINUTE_MS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut fast = result("m", T0 + HOUR_MS - 1, Verdict::Up); // 00:59:59.999
    fast.latency_ms = Some(120.0);
    let mut slow = result("m", T0 + HOUR_MS + 30_000, Verdict::Degraded);
    slow.latency_ms = Some(9_000.0);
    // Two calls, so the second one's buckets are merged into rows the first one created.
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

    let mut conn = raw(&path).await;
    type Row = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT resolution, bucket_start, total, healthy, degraded, provider_failed,
                other_failed, le_200, le_10000, le_inf
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
}

#[tokio::test]
async fn a_garbage_snapshot_is_unreadable_for_its_monitor_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.save_monitor_state("ok", "{}").await.unwrap();
    let mut conn = raw(&path).await;
    sqlx::query("INSERT INTO monitor_state (monitor, snapshot) VALUES ('m', '{\"state\": ')")
        .execute(&mut conn)
        .await
        .unwrap();
    let unreadable = |loaded: Vec<(String, SavedState)>| {
        assert_eq!(loaded[1].1, SavedState::Snapshot("{}".into()), "{loaded:?}");
        matches!(&loaded[0], (m, SavedState::Unreadable(_)) if m == "m")
    };
    assert!(unreadable(store.load_monitor_states().await.unwrap()));

    // Not even text.
    sqlx::query("UPDATE monitor_state SET snapshot = X'FF00FE' WHERE monitor = 'm'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(unreadable(store.load_monitor_states().await.unwrap()));

    // Quarantined, it is kept as found, and gone from the monitor's state.
    store
        .quarantine_monitor_state("m", "the snapshot is not text", T0)
        .await
        .unwrap();
    let kept: (Vec<u8>, String) =
        sqlx::query_as("SELECT snapshot, reason FROM quarantined_state WHERE monitor = 'm'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        kept,
        (vec![0xFF, 0x00, 0xFE], "the snapshot is not text".into())
    );
    assert_eq!(store.load_monitor_states().await.unwrap().len(), 1);
    conn.close().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn unknown_verdicts_in_the_database_are_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .record_results(&[result("m", T0, Verdict::Up)])
        .await
        .unwrap();
    let id = store.open_incident(&new_incident("m", T0)).await.unwrap();
    let mut conn = raw(&path).await;

    // Corruptions of a results row, each checked on its own.
    for damage in [
        "UPDATE results SET verdict = 99",
        "UPDATE results SET verdict = 'up'",
        "UPDATE results SET blame = 7",
        "UPDATE results SET status = 70000",
    ] {
        sqlx::query("UPDATE results SET verdict = 0, blame = NULL, status = 200")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(damage).execute(&mut conn).await.unwrap();
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
        sqlx::query(damage).execute(&mut conn).await.unwrap();
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
}

#[tokio::test]
async fn a_changed_released_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    let mut conn = raw(&path).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = X'00'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let reopened = SqliteStore::open(&path).await;
    assert!(
        matches!(reopened, Err(StoreError::Migrate(_))),
        "{reopened:?}"
    );
}

/// A key no pattern would recognise (short, no digits, no prefix): only the exact-value scrub
/// can catch it.
const PLAIN_KEY: &str = "internalproxykey";

#[tokio::test]
async fn every_text_is_scrubbed_of_configured_secrets_on_its_way_in() {
    crate::secret::register([PLAIN_KEY]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let echo = format!("Incorrect API key provided: {PLAIN_KEY}");
    let mut failed = result("m", T0, Verdict::AuthFailed);
    failed.explanation = Some(echo.clone());
    store.record_results(&[failed]).await.unwrap();
    let mut incident = new_incident("m", T0);
    incident.first_error = Some(echo.clone());
    let id = store.open_incident(&incident).await.unwrap();
    store
        .note_incident_failure(id, Verdict::AuthFailed, Some(&echo))
        .await
        .unwrap();
    let snapshot = serde_json::json!({ "last": echo, "count": 2 }).to_string();
    store.save_monitor_state("m", &snapshot).await.unwrap();
    store.close().await;

    let mut conn = raw(&path).await;
    for (table, column) in [
        ("results", "explanation"),
        ("incidents", "first_error"),
        ("incidents", "last_error"),
        ("monitor_state", "snapshot"),
    ] {
        let values: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(!values.is_empty(), "{table}.{column}");
        for value in values {
            assert!(!value.contains(PLAIN_KEY), "{table}.{column}: {value}");
            assert!(value.contains("[redacted]"), "{table}.{column}: {value}");
        }
    }
    let snapshot: String = sqlx::query_scalar("SELECT snapshot FROM monitor_state")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(snapshot["count"], 2, "the JSON keeps its structure");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn history_written_by_older_versions_is_scrubbed_once_at_start_up() {
    const OLD_KEY: &str = "legacyproxytoken";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .record_results(&[result("m", T0, Verdict::Up)])
        .await
        .unwrap();
    store.close().await;
    // What an older version left: the key verbatim in every text column, and no scrub mark.
    let mut conn = raw(&path).await;
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
    conn.close().await.unwrap();

    crate::secret::register([OLD_KEY]);
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let mut conn = raw(&path).await;
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT explanation FROM results UNION ALL SELECT first_error FROM incidents \
         UNION ALL SELECT last_error FROM incidents UNION ALL SELECT snapshot FROM monitor_state \
         UNION ALL SELECT payload FROM outbox UNION ALL SELECT last_error FROM outbox",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(dump.len(), 6);
    for value in &dump {
        assert!(!value.contains(OLD_KEY), "{value}");
        assert!(value.contains("[redacted]"), "{value}");
    }
    let marks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM history_scrubbed")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(marks, 1, "done once, and remembered");
    conn.close().await.unwrap();
}

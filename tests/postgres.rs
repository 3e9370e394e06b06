//! isdown on PostgreSQL, end to end, with the real binary: `isdown serve` keeping its history in
//! PostgreSQL (an outage opens and closes, and the API answers from the database), a password
//! that never shows, and `isdown db copy` moving a real SQLite file's history into PostgreSQL —
//! every table, the same answers from both stores, and a rerun that duplicates nothing.
//!
//! Each test creates its own scratch database on the server `ISDOWN_TEST_POSTGRES` names
//! (`isdown::store::postgres::scratch`) and fails saying what to set when it is unset. Every
//! test name contains `postgres`, so `cargo test -- --skip postgres` leaves them out.

mod support;

use std::path::Path;
use std::time::Duration;

use isdown::incident::IncidentKind;
use isdown::store::postgres::PostgresStore;
use isdown::store::postgres::scratch::ScratchDatabase;
use isdown::store::queue::{FilePurpose, NewFile};
use isdown::store::sqlite::SqliteStore;
use isdown::store::{
    AlertCommit, AttemptFailure, IncidentFilter, MonitorRecord, NewAlertGroup, NewIncident,
    NewOutboxEntry, OfficialIncident, Origin, PoolSettings, ResultRecord, SeriesStep, Store,
};
use isdown::verdict::{Blame, Verdict};
use serde_json::Value;
use support::*;

const KEY: &str = "sk-test-Qw8ErTy2UiOp4AsDf6Gh";

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn scratch(rt: &tokio::runtime::Runtime) -> ScratchDatabase {
    rt.block_on(ScratchDatabase::create())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn password_of(db: &ScratchDatabase) -> Option<String> {
    reqwest::Url::parse(db.url().expose())
        .unwrap()
        .password()
        .map(str::to_owned)
}

// === serve ===

fn open_incidents(serve: &Serve) -> Vec<Value> {
    serve.json("/api/v1/incidents?state=open")["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn serve_on_postgres_opens_and_closes_an_outage_and_answers_from_the_database() {
    let rt = runtime();
    let db = scratch(&rt);
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let cfg = config(&format!(
        "{}{}[monitor]\nconfirm_after = \"300ms\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
         [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"reachability\"]\n",
        provider_toml("kimi", &kimi.v1(), "openai", "KIMI_KEY"),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
    ));
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let env = [
        ("KIMI_KEY", KEY),
        ("DS_KEY", KEY),
        ("ISDOWN_DATABASE_URL", db.url().expose()),
        // Everything isdown (and sqlx) logs, at its most talkative.
        ("ISDOWN_LOG", "debug"),
    ];
    let serve = Serve::start_logged(&cfg.path, data.path(), &env, &log);

    eventually(Duration::from_secs(10), "kimi up", || {
        let status = serve.json("/api/v1/status");
        (status["status"] == "up").then_some(())
    });
    kimi.set_scenario(Scenario::Unavailable);
    let incident = eventually(Duration::from_secs(15), "an outage to open", || {
        open_incidents(&serve).into_iter().next()
    });
    assert_eq!(incident["monitor"], "kimi-chat");
    assert_eq!(incident["kind"], "outage");
    kimi.set_scenario(Scenario::Ok);
    eventually(Duration::from_secs(15), "the outage to close", || {
        open_incidents(&serve).is_empty().then_some(())
    });
    let all = serve.json("/api/v1/incidents")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0]["ended_at"].is_string());
    // Uptime and recent results come from the rollups and results in PostgreSQL.
    let detail = serve.json("/api/v1/monitors/kimi-chat");
    assert!(detail["recent_results"].as_array().unwrap().len() >= 3);
    assert!(detail["uptime"]["24h"].as_f64().unwrap() < 1.0, "{detail}");
    assert_eq!(serve.json("/healthz")["status"], "ok");
    assert!(serve.terminate().success(), "graceful stop on SIGTERM");

    // The database holds what the API said, and no SQLite file was made.
    let store = rt
        .block_on(PostgresStore::open(db.url(), &PoolSettings::default()))
        .unwrap();
    let stored = rt
        .block_on(store.incidents(&IncidentFilter {
            state: None,
            monitor: None,
            limit: 10,
            offset: 0,
        }))
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(Some(stored[0].id), all[0]["id"].as_i64());
    assert!(stored[0].ended_at.is_some());
    assert!(
        !rt.block_on(store.recent_results("kimi-chat", 5))
            .unwrap()
            .is_empty()
    );
    rt.block_on(store.close());
    assert!(!data.path().join("isdown.db").exists());

    let log = std::fs::read_to_string(&log).unwrap();
    if let Some(password) = password_of(&db) {
        assert!(!log.contains(&password), "the log holds the password");
    }
    assert!(!log.contains(KEY), "the log holds a key");
    rt.block_on(db.drop_now());
}

#[test]
fn serve_refused_by_postgres_names_the_server_and_never_the_password() {
    const WRONG: &str = "not-the-password-Rt5";
    let rt = runtime();
    let db = scratch(&rt);
    let mut url = reqwest::Url::parse(db.url().expose()).unwrap();
    url.set_password(Some(WRONG)).unwrap();
    let out = isdown(
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("ISDOWN_DATABASE_URL", url.as_str()),
            ("ISDOWN_LOG", "debug"),
        ],
    );
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("cannot open the database at {}", db.url())),
        "{stderr}"
    );
    assert!(!stderr.contains(WRONG), "{stderr}");
    assert!(!stdout.contains(WRONG), "{stdout}");
    rt.block_on(db.drop_now());
}

// === db copy ===

fn result(monitor: &str, at: i64, verdict: Verdict, latency_ms: f64) -> ResultRecord {
    let healthy = verdict.is_healthy();
    ResultRecord {
        monitor_id: monitor.to_owned(),
        at,
        verdict,
        blame: verdict.default_blame(),
        status: Some(if healthy { 200 } else { 503 }),
        latency_ms: healthy.then_some(latency_ms),
        ttft_ms: healthy.then_some(latency_ms / 3.0),
        explanation: (!healthy).then(|| format!("{verdict} at {at}")),
        // Every other result from a named region: the copy keeps both.
        region: (at % 2 == 0).then(|| "eu-west".into()),
    }
}

fn incident(monitor: &str, kind: IncidentKind, started_at: i64) -> NewIncident {
    NewIncident {
        monitor: monitor.to_owned(),
        provider: "kimi".to_owned(),
        kind,
        verdict: Verdict::Unavailable,
        started_at,
        failed_probes: 2,
        first_error: Some("503 from the mock".to_owned()),
        // Who opened it goes along in a copy, as everything else does.
        opened_by: Some(Origin {
            instance: "solo-1".to_owned(),
            region: "default".to_owned(),
        }),
    }
}

fn entry(channel: &str, key: &str, event: &str, at: i64) -> NewOutboxEntry {
    NewOutboxEntry {
        channel: channel.to_owned(),
        dedup_key: key.to_owned(),
        event: event.to_owned(),
        payload: format!("{{\"event\":\"{event}\",\"key\":\"{key}\"}}"),
        created_at: at,
    }
}

/// Two days of minute results for two monitors (more than one page of results and of rollups),
/// a monitor only seen in results, incidents of every kind (one open, one linked to an official
/// incident), snapshots (one set aside), and alert groups with queued, delivered and failing
/// messages.
async fn fill(store: &SqliteStore) {
    store
        .register_monitors(&[
            MonitorRecord {
                id: "kimi-chat".into(),
                provider: "kimi".into(),
                model: Some("kimi-k2.6".into()),
                probe: "chat".into(),
            },
            MonitorRecord {
                id: "deepseek-reachability".into(),
                provider: "deepseek".into(),
                model: None,
                probe: "reachability".into(),
            },
        ])
        .await
        .unwrap();
    for day in 0..2 {
        let mut batch = Vec::new();
        for minute in 0..1_440 {
            let at = T0 + day * DAY + minute * MINUTE;
            let verdict = match minute % 97 {
                0 => Verdict::Unavailable,
                1 => Verdict::RateLimited,
                2 => Verdict::Degraded,
                _ => Verdict::Up,
            };
            let latency = 80.0 + (minute % 13) as f64 * 150.0;
            batch.push(result("kimi-chat", at, verdict, latency));
            batch.push(result(
                "deepseek-reachability",
                at + 7,
                Verdict::Up,
                latency / 2.0,
            ));
        }
        store.record_results(&batch).await.unwrap();
    }
    let mut passive = result("gateway-only", T0 + 5, Verdict::ServerError, 0.0);
    passive.blame = Some(Blame::Provider);
    store.record_results(&[passive]).await.unwrap();

    let closed = store
        .open_incident(&incident("kimi-chat", IncidentKind::Outage, T0 + HOUR))
        .await
        .unwrap();
    store
        .note_incident_failure(closed, Verdict::ServerError, Some("500 from the mock"))
        .await
        .unwrap();
    store.close_incident(closed, T0 + 2 * HOUR).await.unwrap();
    let network = store
        .open_incident(&incident("*", IncidentKind::Network, T0 + 3 * HOUR))
        .await
        .unwrap();
    store
        .close_incident(network, T0 + 3 * HOUR + 5 * MINUTE)
        .await
        .unwrap();
    let open = store
        .open_incident(&incident("kimi-chat", IncidentKind::Outage, T0 + DAY))
        .await
        .unwrap();
    store
        .record_official_incidents(
            "kimi",
            &[
                OfficialIncident {
                    source_id: "sp-1".into(),
                    title: "Elevated errors".into(),
                    url: Some("https://status.example/sp-1".into()),
                    impact: "major".into(),
                    started_at: T0 + HOUR - MINUTE,
                    acknowledged_at: T0 + HOUR + 10 * MINUTE,
                    resolved_at: Some(T0 + 2 * HOUR),
                },
                OfficialIncident {
                    source_id: "sp-2".into(),
                    title: "Scheduled maintenance".into(),
                    url: None,
                    impact: "maintenance".into(),
                    started_at: T0 + 30 * HOUR,
                    acknowledged_at: T0 + 29 * HOUR,
                    resolved_at: None,
                },
            ],
            T0 + HOUR + 11 * MINUTE,
        )
        .await
        .unwrap();
    let official = store.official_incidents_between(0, i64::MAX).await.unwrap();
    let sp1 = official
        .iter()
        .find(|o| o.incident.source_id == "sp-1")
        .unwrap();
    store
        .acknowledge_incidents(&[(closed, sp1.id)])
        .await
        .unwrap();

    store
        .save_monitor_state("kimi-chat", r#"{"state":"down","failures":3}"#)
        .await
        .unwrap();
    store
        .save_monitor_state("deepseek-reachability", r#"{"state":"up"}"#)
        .await
        .unwrap();
    store
        .save_monitor_state("retired", r#"{"v":0}"#)
        .await
        .unwrap();
    store
        .quarantine_monitor_state("retired", "written by an unknown version", T0)
        .await
        .unwrap();

    store
        .commit_alerts(&AlertCommit {
            new_groups: vec![
                NewAlertGroup {
                    dedup_key: "g-closed".into(),
                    kind: IncidentKind::Outage,
                    opened_at: T0 + HOUR,
                    incidents: vec![closed],
                },
                NewAlertGroup {
                    dedup_key: "g-open".into(),
                    kind: IncidentKind::Outage,
                    opened_at: T0 + DAY,
                    incidents: vec![open],
                },
            ],
            resolved: vec![("g-closed".into(), T0 + 2 * HOUR)],
            entries: vec![
                entry("slack", "g-closed", "opened", T0 + HOUR),
                entry("pager", "g-closed", "opened", T0 + HOUR),
                entry("slack", "g-closed", "resolved", T0 + 2 * HOUR),
                entry("slack", "g-open", "opened", T0 + DAY),
            ],
            ..AlertCommit::default()
        })
        .await
        .unwrap();
    let slack = store.pending_alerts("slack", 10).await.unwrap();
    store
        .alert_delivered(slack[0].id, T0 + HOUR + 1)
        .await
        .unwrap();
    store
        .alert_attempt_failed(
            slack[1].id,
            &AttemptFailure {
                at: T0 + 2 * HOUR + 1,
                error: "HTTP 503".into(),
                next_attempt_at: T0 + 2 * HOUR + MINUTE,
                give_up: false,
            },
        )
        .await
        .unwrap();
    // An upload in the durable queue: not history, left in the file and reported.
    let queue = store.queue();
    let file = queue
        .queue_file_begin(&NewFile {
            id: "file-left".into(),
            owner: "owner".into(),
            filename: "batch.jsonl".into(),
            purpose: FilePurpose::Batch,
            created_at: T0,
        })
        .await
        .unwrap();
    queue.queue_file_complete(file, 0, 0).await.unwrap();

    let pager = store.pending_alerts("pager", 10).await.unwrap();
    store
        .alert_attempt_failed(
            pager[0].id,
            &AttemptFailure {
                at: T0 + HOUR + 1,
                error: "HTTP 400: bad routing key".into(),
                next_attempt_at: T0 + HOUR + 1,
                give_up: true,
            },
        )
        .await
        .unwrap();
}

/// What the store answers, through the trait only: the same on both back ends after a copy.
async fn answers(store: &dyn Store) -> Vec<String> {
    let now = T0 + 2 * DAY;
    let mut out = Vec::new();
    for monitor in ["kimi-chat", "deepseek-reachability", "gateway-only"] {
        out.push(format!(
            "{:?}",
            store.recent_results(monitor, 100_000).await.unwrap()
        ));
        out.push(format!("{:?}", store.uptime(monitor, now).await.unwrap()));
        out.push(format!(
            "{:?}",
            store.daily_latency(monitor, now, 90).await.unwrap()
        ));
        out.push(format!(
            "{:?}",
            store.daily_counts(monitor, now, 90).await.unwrap()
        ));
        for step in [SeriesStep::Hour, SeriesStep::Day] {
            out.push(format!(
                "{:?}",
                store.latency_series(monitor, step, now, 48).await.unwrap()
            ));
        }
    }
    let all = IncidentFilter {
        state: None,
        monitor: None,
        limit: 1_000,
        offset: 0,
    };
    out.push(format!("{:?}", store.incidents(&all).await.unwrap()));
    out.push(format!(
        "{:?}",
        store.incidents_between(0, now).await.unwrap()
    ));
    out.push(format!(
        "{:?}",
        store.official_incidents_between(0, i64::MAX).await.unwrap()
    ));
    out.push(format!("{:?}", store.load_monitor_states().await.unwrap()));
    out.push(format!(
        "{:?}",
        store.unresolved_alert_groups().await.unwrap()
    ));
    out.push(format!("{:?}", store.outbox_entries(1_000).await.unwrap()));
    out.push(format!("{:?}", store.outbox_backlog().await.unwrap()));
    out
}

/// Rows per table, read straight from each database. Every table of the SQLite file that
/// holds data must be listed here: a table added to the schema and forgotten by the copy fails
/// this test.
const COPIED_TABLES: [&str; 10] = [
    "alert_group_incidents",
    "alert_groups",
    "incidents",
    "monitor_state",
    "monitors",
    "official_incidents",
    "outbox",
    "quarantined_state",
    "results",
    "rollups",
];

/// Tables that hold no history: sqlx's bookkeeping, SQLite's own, the one-time scrub's mark —
/// and the durable queue, work in progress that `db copy` leaves in the file and reports.
const NOT_HISTORY: [&str; 8] = [
    "_sqlx_migrations",
    "sqlite_sequence",
    "history_scrubbed",
    "queue_batches",
    "queue_file_lines",
    "queue_files",
    "queue_lines",
    "queue_secret",
];

async fn sqlite_counts(path: &Path) -> Vec<(String, i64)> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let tables: Vec<String> = tables
        .into_iter()
        .filter(|t| !NOT_HISTORY.contains(&t.as_str()))
        .collect();
    assert_eq!(
        tables, COPIED_TABLES,
        "every table that holds history is copied (and compared here)"
    );
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut conn)
                .await
                .unwrap();
        counts.push((table, n));
    }
    conn.close().await.unwrap();
    counts
}

async fn postgres_counts(db: &ScratchDatabase) -> Vec<(String, i64)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&db.url().connect_options())
        .await
        .unwrap();
    let mut counts = Vec::new();
    for table in COPIED_TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut conn)
                .await
                .unwrap();
        counts.push((table.to_owned(), n));
    }
    conn.close().await.unwrap();
    counts
}

fn copy(path: &Path, db: &ScratchDatabase) -> std::process::Output {
    let from = format!("sqlite:{}", path.display());
    // The destination through the environment, as the README advises (no password in `ps`).
    let out = isdown(
        &["db", "copy", "--from", &from],
        &[("ISDOWN_DATABASE_URL", db.url().expose())],
    );
    let all = format!("{}{}", stdout(&out), stderr(&out));
    if let Some(password) = password_of(db) {
        assert!(!all.contains(&password), "the password shows: {all}");
    }
    out
}

#[test]
fn db_copy_to_postgres_moves_every_table_and_a_rerun_duplicates_nothing() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let sqlite = rt.block_on(SqliteStore::open(&path)).unwrap();
    rt.block_on(fill(&sqlite));
    rt.block_on(sqlite.close());
    let db = scratch(&rt);

    let out = copy(&path, &db);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("results              5761"), "{report}");
    assert!(
        report.contains(
            "the durable queue stays in the SQLite file (batches 0, not ended 0, files 1)"
        ),
        "{report}"
    );
    let copied = rt.block_on(postgres_counts(&db));
    assert_eq!(copied, rt.block_on(sqlite_counts(&path)));

    // The same answers from both stores.
    let sqlite = rt.block_on(SqliteStore::open(&path)).unwrap();
    let postgres = rt
        .block_on(PostgresStore::open(db.url(), &PoolSettings::default()))
        .unwrap();
    let before = rt.block_on(answers(&sqlite));
    assert_eq!(before, rt.block_on(answers(&postgres)));

    // A rerun writes nothing twice.
    let out = copy(&path, &db);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("(5761 already there)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(rt.block_on(postgres_counts(&db)), copied);
    assert_eq!(before, rt.block_on(answers(&postgres)));

    // History the file gains afterwards is picked up by the next run, changes included.
    let later = T0 + 2 * DAY;
    rt.block_on(sqlite.record_results(&[
        result("kimi-chat", later, Verdict::Up, 90.0),
        result("kimi-chat", later + MINUTE, Verdict::Unavailable, 0.0),
    ]))
    .unwrap();
    let open = rt
        .block_on(sqlite.incidents(&IncidentFilter {
            state: Some(isdown::store::IncidentState::Open),
            monitor: None,
            limit: 10,
            offset: 0,
        }))
        .unwrap();
    rt.block_on(sqlite.close_incident(open[0].id, later))
        .unwrap();
    rt.block_on(sqlite.close());
    let out = copy(&path, &db);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        rt.block_on(postgres_counts(&db)),
        rt.block_on(sqlite_counts(&path))
    );
    let sqlite = rt.block_on(SqliteStore::open(&path)).unwrap();
    assert_eq!(
        rt.block_on(answers(&sqlite)),
        rt.block_on(answers(&postgres))
    );

    // Ids go on after the copied ones: a new incident never takes a copied incident's id.
    let highest = rt
        .block_on(postgres.incidents(&IncidentFilter {
            state: None,
            monitor: None,
            limit: 100,
            offset: 0,
        }))
        .unwrap()
        .iter()
        .map(|i| i.id)
        .max()
        .unwrap();
    let new = rt
        .block_on(postgres.open_incident(&incident(
            "deepseek-reachability",
            IncidentKind::Outage,
            later,
        )))
        .unwrap();
    assert!(new > highest, "{new} after {highest}");
    rt.block_on(sqlite.close());
    rt.block_on(postgres.close());
    rt.block_on(db.drop_now());
}

#[test]
fn db_copy_to_postgres_sets_an_unreadable_snapshot_aside_once() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let sqlite = rt.block_on(SqliteStore::open(&path)).unwrap();
    rt.block_on(sqlite.save_monitor_state("ok", r#"{"state":"up"}"#))
        .unwrap();
    rt.block_on(sqlite.close());
    // Damaged behind the store's back: not text at all.
    rt.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        sqlx::query("INSERT INTO monitor_state (monitor, snapshot) VALUES ('broken', X'FF00FE')")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let db = scratch(&rt);
    for _ in 0..2 {
        let out = copy(&path, &db);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let postgres = rt
        .block_on(PostgresStore::open(db.url(), &PoolSettings::default()))
        .unwrap();
    let states = rt.block_on(postgres.load_monitor_states()).unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0].0, "ok");
    rt.block_on(postgres.close());
    let counts = rt.block_on(postgres_counts(&db));
    let quarantined = counts
        .iter()
        .find(|(t, _)| t == "quarantined_state")
        .unwrap();
    assert_eq!(quarantined.1, 1, "set aside once, kept as found");
    rt.block_on(db.drop_now());
}

#[test]
fn db_copy_to_postgres_refuses_to_overwrite_another_installations_history() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.db");
    let sqlite = rt.block_on(SqliteStore::open(&path)).unwrap();
    rt.block_on(sqlite.open_incident(&incident("kimi-chat", IncidentKind::Outage, T0)))
        .unwrap();
    rt.block_on(sqlite.close());
    let db = scratch(&rt);
    // Another installation already wrote incident 1 here.
    let postgres = rt
        .block_on(PostgresStore::open(db.url(), &PoolSettings::default()))
        .unwrap();
    rt.block_on(postgres.open_incident(&incident("glm-chat", IncidentKind::Outage, T0 + DAY)))
        .unwrap();
    let out = copy(&path, &db);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("already holds a different incident row with id 1"),
        "{}",
        stderr(&out)
    );
    let kept = rt
        .block_on(postgres.incident(1))
        .unwrap()
        .expect("incident 1");
    assert_eq!(kept.monitor, "glm-chat", "left untouched");
    rt.block_on(postgres.close());
    rt.block_on(db.drop_now());
}

#[test]
fn db_copy_to_postgres_needs_a_sqlite_file_and_a_postgres_url() {
    let rt = runtime();
    let db = scratch(&rt);
    let out = isdown(
        &["db", "copy", "--from", "sqlite:/nonexistent/isdown.db"],
        &[("ISDOWN_DATABASE_URL", db.url().expose())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("there is no SQLite database at /nonexistent/isdown.db"),
        "{}",
        stderr(&out)
    );
    let out = isdown(
        &[
            "db",
            "copy",
            "--from",
            db.url().expose(),
            "--to",
            "sqlite:x.db",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("goes from a SQLite file"),
        "{}",
        stderr(&out)
    );
    rt.block_on(db.drop_now());
}

//! `isdown serve` end to end: the real binary monitors mock providers, opens an incident
//! when the mock starts failing, keeps it across a crash (kill -9) and restart, closes it on
//! recovery, and exposes it all through the JSON API and /metrics.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

const KEY: &str = "sk-test-Qw8ErTy2UiOp4AsDf6Gh";

fn monitor_state(serve: &Serve, id: &str) -> Option<String> {
    let status = serve.json("/api/v1/status");
    status["monitors"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == id)
        .and_then(|m| m["state"].as_str().map(str::to_owned))
}

fn open_incidents(serve: &Serve) -> Vec<Value> {
    serve.json("/api/v1/incidents?state=open")["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

fn setup(kimi: &MockServer, deepseek: &MockServer, extra: &str) -> ConfigFile {
    config(&format!(
        "{}{}[monitor]\nconfirm_after = \"300ms\"\ninterval = \"2s\"\ntimeout = \"1500ms\"\n\
         [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"reachability\"]\n{extra}",
        provider_toml("kimi", &kimi.v1(), "openai", "KIMI_KEY"),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
    ))
}

#[test]
fn outage_opens_an_incident_survives_a_crash_and_closes_on_recovery() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek, "");
    let data = tempfile::tempdir().unwrap();
    let env = [("KIMI_KEY", KEY), ("DS_KEY", KEY)];
    let serve = Serve::start(&cfg.path, data.path(), &env);

    eventually(Duration::from_secs(10), "kimi up", || {
        (monitor_state(&serve, "kimi-chat")? == "up").then_some(())
    });
    assert_eq!(serve.json("/api/v1/status")["status"], "up");

    kimi.set_scenario(Scenario::Unavailable);
    // How soon it opens is the detection benchmark's to measure (bench/), and the monitor's
    // paused-time tests' to pin; here it only has to open.
    let incident = eventually(Duration::from_secs(15), "incident to open", || {
        open_incidents(&serve).into_iter().next()
    });
    assert_eq!(incident["monitor"], "kimi-chat");
    assert_eq!(incident["provider"], "kimi");
    assert_eq!(incident["kind"], "outage");
    assert_eq!(incident["verdict"], "unavailable");
    assert!(incident["ended_at"].is_null());
    assert!(incident["started_at"].as_str().unwrap().ends_with('Z'));
    // `/api/v1/status` is rendered on change (within about a second of the incident API),
    // and the uptime behind it once the failed results are stored.
    let status = eventually(Duration::from_secs(5), "status to show the outage", || {
        let status = serve.json("/api/v1/status");
        let kimi = status["monitors"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == "kimi-chat")?;
        (status["status"] == "down" && kimi["uptime"]["24h"].as_f64()? < 1.0).then_some(status)
    });
    let kimi_row = status["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "kimi-chat")
        .unwrap()
        .clone();
    assert_eq!(kimi_row["state"], "down");
    assert_eq!(kimi_row["verdict"], "unavailable");
    assert_eq!(kimi_row["model"], "test-model");
    // Results reach the store in batches (at least once a second), after the incident.
    eventually(Duration::from_secs(10), "the failure in the uptime", || {
        let status = serve.json("/api/v1/status");
        let row = status["monitors"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == "kimi-chat")?
            .clone();
        (row["uptime"]["24h"].as_f64()? < 1.0).then_some(())
    });

    let metrics = get(&format!("{}/metrics", serve.url)).1;
    assert!(metrics.contains("isdown_probes_total{provider=\"kimi\",model=\"test-model\",probe=\"chat\",verdict=\"unavailable\"}"), "{metrics}");
    assert!(
        metrics.contains("isdown_open_incidents{kind=\"outage\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("Qw8ErTy2"), "key in metrics");

    // Crash mid-incident, restart on the same data: the same incident continues.
    serve.crash();
    let serve = Serve::start(&cfg.path, data.path(), &env);
    eventually(Duration::from_secs(10), "kimi down after restart", || {
        (monitor_state(&serve, "kimi-chat")? == "down").then_some(())
    });
    let open = open_incidents(&serve);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], incident["id"]);

    kimi.set_scenario(Scenario::Ok);
    eventually(Duration::from_secs(15), "incident to close", || {
        open_incidents(&serve).is_empty().then_some(())
    });
    let all = serve.json("/api/v1/incidents")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 1, "one incident, not two: {all:?}");
    assert!(all[0]["ended_at"].is_string());
    assert!(all[0]["duration_s"].as_i64().unwrap() >= 1);
    let detail = serve.json("/api/v1/monitors/kimi-chat");
    assert!(detail["recent_results"].as_array().unwrap().len() >= 3);
    assert_eq!(detail["incidents"].as_array().unwrap().len(), 1);

    let health = serve.json("/healthz");
    assert_eq!(health["status"], "ok");
    assert!(serve.terminate().success(), "graceful stop on SIGTERM");
}

#[test]
fn a_bad_key_is_a_setup_problem_not_an_outage() {
    let kimi = mock("kimi", "auth_failed");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek, "");
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[("KIMI_KEY", KEY), ("DS_KEY", KEY)],
    );
    let incident = eventually(Duration::from_secs(15), "setup incident", || {
        open_incidents(&serve).into_iter().next()
    });
    assert_eq!(incident["kind"], "setup_problem");
    assert_eq!(incident["verdict"], "auth_failed");
    // Rendered on change: within about a second of the incident API.
    eventually(
        Duration::from_secs(5),
        "status to say setup_problem",
        || (serve.json("/api/v1/status")["status"] == "setup_problem").then_some(()),
    );
}

#[test]
fn admin_reload_needs_the_token_and_applies_a_new_config() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek, "[serve]\nadmin_token_env = \"ADMIN\"\n");
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("KIMI_KEY", KEY),
        ("DS_KEY", KEY),
        ("ADMIN", "let-me-in-0123"),
    ];
    let serve = Serve::start(&cfg.path, data.path(), &env);
    let reload = format!("{}/api/v1/admin/reload", serve.url);

    let (status, _) = request("POST", &reload, "", &[]);
    assert_eq!(status, 401);
    let (status, _) = request("POST", &reload, "", &[("Authorization", "Bearer wrong")]);
    assert_eq!(status, 401);

    // A broken file is refused and the running config stays.
    std::fs::write(&cfg.path, "[monitor]\ninterval = \"never\"\n").unwrap();
    let (status, body) = request(
        "POST",
        &reload,
        "",
        &[("Authorization", "Bearer let-me-in-0123")],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("monitor.interval"), "{body}");
    assert_eq!(
        serve.json("/api/v1/status")["monitors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A good one adds a monitor.
    let mut text = std::fs::read_to_string(
        setup(&kimi, &deepseek, "[serve]\nadmin_token_env = \"ADMIN\"\n").path,
    )
    .unwrap();
    text.push_str("[[monitors]]\nprovider = \"kimi\"\nprobes = [\"stream\"]\n");
    std::fs::write(&cfg.path, text).unwrap();
    let (status, body) = request(
        "POST",
        &reload,
        "",
        &[("Authorization", "Bearer let-me-in-0123")],
    );
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(10), "stream monitor up", || {
        (monitor_state(&serve, "kimi-stream")? == "up").then_some(())
    });
}

#[test]
fn sighup_reloads_the_config_and_keeps_history() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek, "");
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[("KIMI_KEY", KEY), ("DS_KEY", KEY)],
    );
    eventually(Duration::from_secs(10), "kimi up", || {
        (monitor_state(&serve, "kimi-chat")? == "up").then_some(())
    });
    let before = serve.json("/api/v1/monitors/kimi-chat")["recent_results"]
        .as_array()
        .unwrap()
        .len();

    let mut text = std::fs::read_to_string(&cfg.path).unwrap();
    text.push_str("[[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\"]\n");
    std::fs::write(&cfg.path, text).unwrap();
    let pid = serve.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually(Duration::from_secs(10), "new monitor after SIGHUP", || {
        (monitor_state(&serve, "deepseek-chat")? == "up").then_some(())
    });
    // Same process, same history: the old monitor's results are still there and growing.
    let after = serve.json("/api/v1/monitors/kimi-chat")["recent_results"]
        .as_array()
        .unwrap()
        .len();
    assert!(after >= before, "{after} < {before}");
}

#[test]
fn a_corrupt_state_row_quarantines_one_monitor_and_the_others_keep_recording() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek, "");
    let data = tempfile::tempdir().unwrap();
    let env = [("KIMI_KEY", KEY), ("DS_KEY", KEY)];
    let serve = Serve::start(&cfg.path, data.path(), &env);
    eventually(Duration::from_secs(10), "both monitors up", || {
        (monitor_state(&serve, "kimi-chat")? == "up"
            && monitor_state(&serve, "deepseek-reachability")? == "up")
            .then_some(())
    });
    assert_eq!(serve.terminate().code(), Some(0));

    // Damage one monitor's saved state behind isdown's back: bytes that are not even text.
    let db = data.path().join("isdown.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .connect()
            .await
            .unwrap();
        let damaged = sqlx::query(
            "UPDATE monitor_state SET snapshot = X'FF00FE' WHERE monitor = 'kimi-chat'",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        assert_eq!(damaged.rows_affected(), 1);
        conn.close().await.unwrap();
    });

    let serve = Serve::start(&cfg.path, data.path(), &env);
    let results =
        |id: &str| serve.json(&format!("/api/v1/monitors/{id}"))["recent_results"][0]["at"].clone();
    let (kimi_before, deepseek_before) = (results("kimi-chat"), results("deepseek-reachability"));
    eventually(
        Duration::from_secs(15),
        "both monitors recording again",
        || {
            (results("kimi-chat") != kimi_before
                && results("deepseek-reachability") != deepseek_before)
                .then_some(())
        },
    );
    let kimi = serve.json("/api/v1/monitors/kimi-chat");
    assert!(
        kimi["quarantined"]["reason"]
            .as_str()
            .unwrap()
            .contains("not text"),
        "{kimi}"
    );
    assert!(serve.json("/api/v1/monitors/deepseek-reachability")["quarantined"].is_null());
    let health = serve.json("/healthz");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["quarantined_states"]["kimi-chat"]["at"].is_string(),
        "{health}"
    );
    let metrics = get(&format!("{}/metrics", serve.url)).1;
    assert!(
        metrics.contains("isdown_states_quarantined_total 1"),
        "{metrics}"
    );
}

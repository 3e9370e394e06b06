//! `isdown serve` on PostgreSQL whose database goes away in the middle of an outage, with the
//! real binary: the path to the database runs through a relay on 127.0.0.1 that the test cuts
//! and mends (the database itself keeps running for the other tests).
//!
//! While it is away the instance keeps probing and following the provider from memory (its
//! gateway routes around the provider it sees down); the
//! outage's incident and its probe results wait, and once the database is back they land with
//! the times things happened. An outage still going on then is alerted; one that began and
//! ended while the database was away is stored but not paged. Nothing lost, nothing doubled.
//!
//! A test that needs PostgreSQL creates its own scratch database on the server
//! `ISDOWN_TEST_POSTGRES` names; its name contains `postgres`, so `cargo test -- --skip
//! postgres` leaves it out.

mod support;

use std::time::Duration;

use isdown::store::postgres::scratch::ScratchDatabase;
use serde_json::Value;
use support::receiver::{Answer, Receiver};
use support::relay::Relay;
use support::*;

const KEY: &str = "sk-test-Qw8ErTy2UiOp4AsDf6Gh";
const WAIT: Duration = Duration::from_secs(30);
const GW_KEY: &str = "gw-client-key-1";

fn state_of(serve: &Serve, monitor: &str) -> String {
    let status = serve.json("/api/v1/status");
    status["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == monitor)
        .map(|m| m["state"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Every incident the API lists (answers only once the database does).
fn stored_incidents(serve: &Serve) -> Vec<Value> {
    serve.json("/api/v1/incidents")["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

/// When kimi-chat's stored results that failed were made.
fn failed_results(serve: &Serve) -> Vec<i64> {
    serve.json("/api/v1/monitors/kimi-chat")["recent_results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "unavailable")
        .map(|r| api_time(&r["at"]))
        .collect()
}

fn healthz(serve: &Serve) -> (u16, Value) {
    let (status, body) = get(&format!("{}/healthz", serve.url));
    (status, serde_json::from_str(&body).unwrap())
}

#[test]
fn on_postgres_an_outage_while_the_database_is_away_lands_with_its_alerts_when_it_returns() {
    let db = background()
        .block_on(ScratchDatabase::create())
        .unwrap_or_else(|e| panic!("{e}"));
    let (relay, url) = Relay::in_front_of(db.url().expose());
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let receiver = Receiver::start(Answer::Accept);
    let hook = receiver.url("/isdown");
    let cfg = config(&format!(
        "[monitor]\nconfirm_after = \"300ms\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
         [alerting]\ngroup_window = \"1s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n\
         [alerts.hook]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n\
         [gateway]\nclient_keys_env = [\"GW_KEY\"]\n\
         [[routes]]\nmodel = \"agent\"\n\
         targets = [{{ provider = \"kimi\" }}, {{ provider = \"deepseek\" }}]\n\
         {}{}[[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n",
        provider_toml("kimi", &kimi.v1(), "openai", "KIMI_KEY"),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
    ));
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[
            ("ISDOWN_DATABASE_URL", url.as_str()),
            ("KIMI_KEY", KEY),
            ("DS_KEY", KEY),
            ("GW_KEY", GW_KEY),
            ("HOOK_URL", hook.as_str()),
        ],
    );
    eventually(WAIT, "kimi up", || {
        (state_of(&serve, "kimi-chat") == "up").then_some(())
    });
    assert_eq!(healthz(&serve).1["database"]["away_since"], Value::Null);

    // 1. The database goes away, then Kimi fails: the instance still sees it from memory.
    relay.cut();
    let cut_at = api_second();
    kimi.set_scenario(Scenario::Unavailable);
    eventually(WAIT, "kimi down while the database is away", || {
        (state_of(&serve, "kimi-chat") == "down").then_some(())
    });
    let away = eventually(WAIT, "the health check to say what waits", || {
        let (status, body) = healthz(&serve);
        let database = &body["database"];
        (status == 503 && database["waiting_incident_writes"].as_u64() >= Some(1))
            .then(|| database.clone())
    });
    assert!(api_time(&away["away_since"]) >= cut_at, "{away}");
    // The gateway routes from memory: Kimi is known down, so the agent's request goes to
    // DeepSeek at once.
    let answered = send(
        client()
            .post(format!("{}/v1/chat/completions", serve.url))
            .bearer_auth(GW_KEY)
            .header("content-type", "application/json")
            .body(r#"{"model":"agent","messages":[{"role":"user","content":"hi"}]}"#),
    );
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert_eq!(answered.header("x-isdown-provider"), Some("deepseek"));
    assert!(
        receiver.accepted().is_empty(),
        "no alert before its incident is stored: {:?}",
        receiver.accepted()
    );
    // Back while Kimi is still down: the incident lands with when it began, and is alerted.
    let mended_at = api_second() + 1000;
    relay.mend();
    receiver.wait_for(WAIT, "the outage's alert", |log| {
        log.iter()
            .any(|r| r.answer == Answer::Accept && r.json()["event"] == "opened")
            .then_some(())
    });
    let open = stored_incidents(&serve);
    assert_eq!(open.len(), 1, "one outage, one incident: {open:?}");
    assert_eq!(open[0]["monitor"], "kimi-chat");
    assert_eq!(open[0]["kind"], "outage");
    assert_eq!(open[0]["ended_at"], Value::Null);
    let started = api_time(&open[0]["started_at"]);
    assert!(cut_at <= started && started <= mended_at, "{}", open[0]);
    // The probes made while it was away are stored too.
    let failed = eventually(WAIT, "the results that waited to be stored", || {
        let failed = failed_results(&serve);
        failed.iter().any(|at| *at < mended_at).then_some(failed)
    });
    assert!(
        failed.iter().all(|at| *at >= cut_at),
        "{failed:?} before {cut_at}"
    );
    kimi.set_scenario(Scenario::Ok);
    receiver.wait_for(WAIT, "the recovery's alert", |log| {
        log.iter()
            .any(|r| r.answer == Answer::Accept && r.json()["event"] == "resolved")
            .then_some(())
    });
    eventually(WAIT, "the database counted as back", || {
        let (status, body) = healthz(&serve);
        (status == 200 && body["database"]["away_since"].is_null()).then_some(body)
    });

    // 2. Kimi fails again, within `reopen_within` of the close, and recovers, all while the
    // database is away: the flap rule reopens the first incident (the reopening, its notes and
    // its second close wait and land in order), and it is not paged again — it is over before
    // anyone could act on it.
    let first = stored_incidents(&serve)[0].clone();
    relay.cut();
    let cut_at = api_second();
    kimi.set_scenario(Scenario::Unavailable);
    eventually(
        WAIT,
        "kimi's failure confirmed while the database is away",
        || {
            let (_, body) = healthz(&serve);
            (body["database"]["waiting_incident_writes"].as_u64() >= Some(1)).then_some(())
        },
    );
    kimi.set_scenario(Scenario::Ok);
    eventually(WAIT, "kimi up again while the database is away", || {
        (state_of(&serve, "kimi-chat") == "up").then_some(())
    });
    // The incident closes after the machine's run of successes, not at the first one: three
    // more probes make sure the close, too, was decided while the database was away.
    let seen = kimi.requests().len();
    wait_received(&kimi, seen + 3, WAIT);
    let recovered_by = api_second() + 1000;
    relay.mend();
    let again = eventually(WAIT, "the reopening and its close stored", || {
        let stored = stored_incidents(&serve);
        let incident = stored.first()?;
        let noted = incident["failed_probes"].as_u64() > first["failed_probes"].as_u64();
        let ended = &incident["ended_at"];
        (noted && !ended.is_null() && api_time(ended) > api_time(&first["ended_at"]))
            .then_some(stored)
    });
    assert_eq!(
        again.len(),
        1,
        "the flap rule reopens the incident: {again:?}"
    );
    let incident = &again[0];
    assert_eq!(incident["id"], first["id"]);
    assert_eq!(incident["started_at"], first["started_at"]);
    let ended = api_time(&incident["ended_at"]);
    assert!(cut_at <= ended && ended <= recovered_by, "{incident}");
    let body = eventually(WAIT, "nothing waiting for the database", || {
        let (status, body) = healthz(&serve);
        let database = &body["database"];
        (status == 200
            && database["away_since"].is_null()
            && database["waiting_incident_writes"] == 0
            && body["alerts"]["hook"]["pending"] == 0)
            .then_some(body)
    });
    assert_eq!(body["database"]["dropped_results"], 0, "{body}");
    // One page and one resolve in all: the first outage's, neither of them twice.
    assert_eq!(receiver.accepted_events(), ["opened", "resolved"]);

    drop(serve);
    background().block_on(db.drop_now());
}

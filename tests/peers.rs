//! Several `isdown serve` instances on one PostgreSQL, with the real binary: they split the
//! monitors by lease so each is probed once per interval (counted at the mock providers), one
//! of them sends the alerts, and when the instance probing a failing provider is killed with
//! SIGKILL in the middle of its outage, a survivor takes the monitor over and continues the
//! same incident — one incident, one "opened" and one "resolved" alert at the webhook.
//!
//! A test that needs PostgreSQL creates its own scratch database on the server
//! `ISDOWN_TEST_POSTGRES` names and fails saying what to set when it is unset; its name contains
//! `postgres`, so `cargo test -- --skip postgres` leaves it out.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use isdown::config::Config;
use isdown::store::postgres::scratch::ScratchDatabase;
use serde_json::Value;
use support::receiver::{Answer, Received, Receiver};
use support::relay::Relay;
use support::*;

const KEY: &str = "sk-test-Qw8ErTy2UiOp4AsDf6Gh";
const WAIT: Duration = Duration::from_secs(30);
/// A region's config for the region tests: its own path to Kimi, DeepSeek shared, and
/// `alerts` (the `[alerts.*]` tables).
fn region_config(kimi: &MockServer, deepseek: &MockServer, alerts: &str) -> ConfigFile {
    config(&format!(
        "[serve]\nlease = \"2s\"\n\
         [monitor]\nconfirm_after = \"300ms\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
         [alerting]\ngroup_window = \"1s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n\
         {alerts}{}{}[[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\"]\n",
        provider_toml("kimi", &kimi.v1(), "openai", "KIMI_KEY"),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
    ))
}

/// Probes every second; leases of two seconds, so a dead instance's monitors move within
/// about three.
const SETTINGS: &str = "[serve]\nlease = \"2s\"\n\
    [monitor]\nconfirm_after = \"300ms\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
    [alerting]\ngroup_window = \"1s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n\
    [alerts.hook]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n";
/// kimi-chat, deepseek-chat, deepseek-reachability, glm-chat, glm-reachability.
const MONITORS: usize = 5;

struct Providers {
    kimi: MockServer,
    deepseek: MockServer,
    glm: MockServer,
}

impl Providers {
    fn start() -> Providers {
        Providers {
            kimi: mock("kimi", "ok"),
            deepseek: mock("deepseek", "ok"),
            glm: mock("openai", "ok"),
        }
    }

    fn config(&self) -> ConfigFile {
        config(&format!(
            "{SETTINGS}{}{}{}\
             [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
             [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\", \"reachability\"]\n\
             [[monitors]]\nprovider = \"glm\"\nprobes = [\"chat\", \"reachability\"]\n",
            provider_toml("kimi", &self.kimi.v1(), "openai", "KIMI_KEY"),
            provider_toml("deepseek", &self.deepseek.v1(), "openai", "DS_KEY"),
            provider_toml("glm", &self.glm.v1(), "openai", "GLM_KEY"),
        ))
    }

    /// Requests the three providers have received so far.
    fn requests(&self) -> usize {
        [&self.kimi, &self.deepseek, &self.glm]
            .iter()
            .map(|m| m.requests().len())
            .sum()
    }
}

struct Instance {
    name: &'static str,
    serve: Serve,
    _data: tempfile::TempDir,
}

/// `serve` named `name` on `db` with `cfg`, its own data directory, and `env` besides.
fn instance(
    name: &'static str,
    cfg: &ConfigFile,
    db: &ScratchDatabase,
    env: &[(&str, &str)],
) -> Instance {
    instance_at(name, cfg, db.url().expose(), env)
}

/// As [`instance`], reaching the database at `url` (through a [`Relay`], say).
fn instance_at(name: &'static str, cfg: &ConfigFile, url: &str, env: &[(&str, &str)]) -> Instance {
    let data = tempfile::tempdir().unwrap();
    let mut all = vec![("ISDOWN_DATABASE_URL", url), ("ISDOWN_INSTANCE", name)];
    all.extend_from_slice(env);
    let serve = Serve::start(&cfg.path, data.path(), &all);
    Instance {
        name,
        serve,
        _data: data,
    }
}

fn start(name: &'static str, cfg: &ConfigFile, db: &ScratchDatabase, hook: &str) -> Instance {
    let keys = [("KIMI_KEY", KEY), ("DS_KEY", KEY), ("GLM_KEY", KEY)];
    instance(
        name,
        cfg,
        db,
        &[keys.as_slice(), &[("HOOK_URL", hook)]].concat(),
    )
}

/// A scratch database of the test's own (dropped at the test's end).
fn scratch() -> ScratchDatabase {
    background()
        .block_on(ScratchDatabase::create())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn peers(instance: &Instance) -> Value {
    instance.serve.json("/api/v1/peers")
}

fn held_monitors(view: &Value) -> Vec<String> {
    view["held"]["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

/// When every instance sees all of them as members, the monitors are held once each between
/// them, and one of them sends the alerts: the instance holding each monitor, by name.
fn settled(instances: &[&Instance]) -> Option<Vec<(String, &'static str)>> {
    let mut holders = Vec::new();
    let mut alert_holders = 0;
    for instance in instances {
        let view = peers(instance);
        assert_eq!(view["instance"], instance.name);
        assert_eq!(view["region"], "default");
        assert_eq!(view["shared"], true);
        if view["members"].as_array().unwrap().len() != instances.len() {
            return None;
        }
        alert_holders += usize::from(view["held"]["alerts"] == true);
        holders.extend(
            held_monitors(&view)
                .into_iter()
                .map(|id| (id, instance.name)),
        );
    }
    let distinct: BTreeSet<&String> = holders.iter().map(|(id, _)| id).collect();
    (holders.len() == MONITORS && distinct.len() == MONITORS && alert_holders == 1)
        .then_some(holders)
}

fn open_incidents(instance: &Instance) -> Vec<Value> {
    instance.serve.json("/api/v1/incidents?state=open")["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

fn state_of(instance: &Instance, monitor: &str) -> String {
    let status = instance.serve.json("/api/v1/status");
    status["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == monitor)
        .map(|m| m["state"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn three_instances_on_postgres_probe_once_and_a_survivor_carries_a_killed_ones_outage() {
    let db = scratch();
    let providers = Providers::start();
    let receiver = Receiver::start(Answer::Accept);
    let hook = receiver.url("/isdown");
    let cfg = providers.config();
    let mut instances = vec![
        start("a", &cfg, &db, &hook),
        start("b", &cfg, &db, &hook),
        start("c", &cfg, &db, &hook),
    ];
    let all: Vec<&Instance> = instances.iter().collect();
    let holders = eventually(WAIT, "the monitors split between three instances", || {
        settled(&all)
    });

    // Each monitor once per interval: a window of wall time to count probes in, not a wait for
    // something to happen. One instance per monitor makes about one probe per monitor-second
    // (fewer when probes start late); every instance probing every monitor would make three.
    let window = Duration::from_secs(5);
    let before = providers.requests();
    std::thread::sleep(window);
    let probes = providers.requests() - before;
    let once = MONITORS * window.as_secs() as usize;
    assert!(
        probes <= once + MONITORS,
        "{probes} probes in {window:?}: more than one instance probes a monitor"
    );
    assert!(
        probes >= once / 3,
        "{probes} probes in {window:?}: probing stalled"
    );

    // An outage of kimi: one incident, seen alike from every instance (the others follow the
    // holder's machine from the database).
    providers.kimi.set_scenario(Scenario::Unavailable);
    let incident = eventually(WAIT, "kimi's outage to open", || {
        open_incidents(&instances[0]).into_iter().next()
    });
    assert_eq!(incident["monitor"], "kimi-chat");
    for instance in &instances {
        eventually(WAIT, "every instance to show kimi down", || {
            (state_of(instance, "kimi-chat") == "down").then_some(())
        });
    }
    receiver.wait_for(WAIT, "the outage's alert", |log| {
        log.iter()
            .any(|r| r.answer == Answer::Accept && r.json()["event"] == "opened")
            .then_some(())
    });

    // The instance probing kimi dies mid-outage; the two others take its monitors over.
    let holder = holders
        .iter()
        .find(|(id, _)| id == "kimi-chat")
        .map(|(_, name)| *name)
        .unwrap();
    let position = instances.iter().position(|i| i.name == holder).unwrap();
    instances.remove(position).serve.crash();
    let survivors: Vec<&Instance> = instances.iter().collect();
    eventually(WAIT, "the survivors to hold every monitor", || {
        settled(&survivors)
    });

    providers.kimi.set_scenario(Scenario::Ok);
    eventually(WAIT, "kimi's outage to close", || {
        open_incidents(&instances[0]).is_empty().then_some(())
    });
    receiver.wait_for(WAIT, "the recovery's alert", |log| {
        log.iter()
            .any(|r| r.answer == Answer::Accept && r.json()["event"] == "resolved")
            .then_some(())
    });
    let every = instances[0].serve.json("/api/v1/incidents")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(every.len(), 1, "one incident for one outage: {every:?}");
    assert_eq!(every[0]["id"], incident["id"]);
    // Every alert the outbox holds is delivered by now; none was sent twice.
    for instance in &instances {
        eventually(WAIT, "the outbox drained", || {
            let hook = &instance.serve.json("/healthz")["alerts"]["hook"];
            (hook["pending"] == 0).then_some(())
        });
    }
    assert_eq!(receiver.accepted_events(), ["opened", "resolved"]);
    drop(instances);
    background().block_on(db.drop_now());
}

#[test]
fn region_instance_and_lease_come_from_the_environment_or_the_file_and_are_checked() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        }
    };
    let file = "[serve]\nregion = \"eu-west\"\ninstance = \"eu-1\"\nlease = \"10s\"\n";
    let config = Config::from_toml(file, "isdown.toml", &env(&[])).unwrap();
    assert_eq!(config.serve.region, "eu-west");
    assert_eq!(config.serve.instance.as_deref(), Some("eu-1"));
    assert_eq!(config.serve.lease, Duration::from_secs(10));

    let config = Config::from_toml(
        file,
        "isdown.toml",
        &env(&[("ISDOWN_REGION", "ap-east"), ("ISDOWN_INSTANCE", "ap-2")]),
    )
    .unwrap();
    assert_eq!(config.serve.region, "ap-east");
    assert_eq!(config.serve.instance.as_deref(), Some("ap-2"));

    let defaults = Config::from_toml("", "isdown.toml", &env(&[])).unwrap();
    assert_eq!(defaults.serve.region, "default");
    assert_eq!(defaults.serve.instance, None);
    assert_eq!(defaults.serve.lease, Duration::from_secs(15));

    let bad = Config::from_toml("[serve]\nregion = \"eu west\"\n", "isdown.toml", &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(bad.contains("isdown.toml:2:"), "{bad}");
    assert!(bad.contains("letters, digits"), "{bad}");
    let bad = Config::from_toml("", "isdown.toml", &env(&[("ISDOWN_REGION", "eu/west")]))
        .unwrap_err()
        .to_string();
    assert!(bad.contains("ISDOWN_REGION"), "{bad}");
    let short = Config::from_toml("[serve]\nlease = \"200ms\"\n", "isdown.toml", &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(short.contains("at least 1s"), "{short}");
}

/// `n` batch lines for the gateway route `agent`, each with its own `custom_id`.
fn batch_lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"custom_id\":\"row-{i}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\
                 \"body\":{{\"model\":\"agent\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}}}\n"
            )
        })
        .collect()
}

const GATEWAY_KEY: &str = "gw-peers-key-7Hj2";

fn batch(instance: &Instance, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["batch", "--url", instance.serve.url.as_str()];
    all.extend_from_slice(args);
    all.push("--json");
    let out = isdown(&all, &[("ISDOWN_GATEWAY_KEY", GATEWAY_KEY)]);
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out)
}

#[test]
fn a_batch_on_postgres_finishes_each_line_once_when_the_instance_running_it_is_killed() {
    let db = scratch();
    // Each answer takes 200 ms, so the batch is still running when its instance dies.
    let upstream = mock_with(isdown::mock::MockOptions {
        delay: Duration::from_millis(200),
        ..options("openai", "slow")
    });
    let cfg = config(&format!(
        "[serve]\nlease = \"2s\"\n{}[[monitors]]\nprovider = \"a\"\ninterval = \"1h\"\n\
         [[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"a\" }}]\n\
         [gateway]\nclient_keys_env = [\"GW_KEY\"]\n",
        provider_toml("a", &upstream.v1(), "openai", "KEY_A"),
    ));
    let start = |name| instance(name, &cfg, &db, &[("GW_KEY", GATEWAY_KEY), ("KEY_A", KEY)]);
    let mut instances = vec![start("a"), start("b")];
    let runner = eventually(WAIT, "one instance to run the queue", || {
        let running: Vec<usize> = (0..instances.len())
            .filter(|i| peers(&instances[*i])["held"]["queue"] == true)
            .collect();
        let members = peers(&instances[0])["members"].as_array().unwrap().len();
        (running.len() == 1 && members == 2).then(|| running[0])
    });

    // Submitted through the instance that does not run the queue: any instance takes batches.
    let file = cfg.dir.path().join("requests.jsonl");
    const LINES: usize = 60;
    std::fs::write(&file, batch_lines(LINES)).unwrap();
    let other = 1 - runner;
    let submitted = batch(&instances[other], &["submit", file.to_str().unwrap()]);
    let id = submitted["id"].as_str().unwrap().to_owned();
    eventually(WAIT, "some lines done", || {
        let status = batch(&instances[other], &["status", &id]);
        (status["request_counts"]["completed"].as_u64().unwrap_or(0) >= 5).then_some(())
    });
    instances.remove(runner).serve.crash();

    let done = eventually(Duration::from_secs(90), "the batch to complete", || {
        let status = batch(&instances[0], &["status", &id]);
        (status["status"] == "completed").then_some(status)
    });
    assert_eq!(done["request_counts"]["completed"], LINES as u64);
    assert_eq!(done["request_counts"]["failed"], 0);
    let results = cfg.dir.path().join("results.jsonl");
    let out = isdown(
        &[
            "batch",
            "--url",
            instances[0].serve.url.as_str(),
            "results",
            &id,
            "--output",
            results.to_str().unwrap(),
        ],
        &[("ISDOWN_GATEWAY_KEY", GATEWAY_KEY)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut ids: Vec<String> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["custom_id"].to_string())
        .collect();
    assert_eq!(ids.len(), LINES, "one result per line, none twice");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), LINES, "every line has its own result");
    drop(instances);
    background().block_on(db.drop_now());
}

fn monitor_status(instance: &Instance, id: &str) -> Value {
    let status = instance.serve.json("/api/v1/status");
    status["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The kinds and events a receiver's log accepted, in order ("regional opened", …).
fn alerts_in(log: &[Received]) -> Vec<String> {
    log.iter()
        .filter(|r| r.answer == Answer::Accept)
        .map(|r| {
            let alert = r.json();
            format!(
                "{} {}",
                alert["kind"].as_str().unwrap_or("?"),
                alert["event"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn on_postgres_a_provider_failing_from_one_region_is_regional_and_from_both_one_outage() {
    let db = scratch();
    // Each region reaches Kimi by its own path (its own base URL); DeepSeek is one for both.
    let kimi_eu = mock("kimi", "ok");
    let kimi_us = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    // Two channels: `every` takes every kind (the default, regional included), `outages`
    // only outages.
    let every = Receiver::start(Answer::Accept);
    let outages = Receiver::start(Answer::Accept);
    let alerts = "[alerts.every]\nkind = \"webhook\"\nurl_env = \"EVERY_URL\"\n\
                  [alerts.outages]\nkind = \"webhook\"\nurl_env = \"OUTAGES_URL\"\n\
                  on = [\"outage\"]\n";
    let eu_config = region_config(&kimi_eu, &deepseek, alerts);
    let us_config = region_config(&kimi_us, &deepseek, alerts);
    let (every_url, outages_url) = (every.url("/isdown"), outages.url("/isdown"));
    let start = |name, region, cfg| {
        let env = [
            ("KIMI_KEY", KEY),
            ("DS_KEY", KEY),
            ("ISDOWN_REGION", region),
            ("EVERY_URL", every_url.as_str()),
            ("OUTAGES_URL", outages_url.as_str()),
        ];
        instance(name, cfg, &db, &env)
    };
    let mut instances = vec![
        start("eu-1", "eu", &eu_config),
        start("us-1", "us", &us_config),
    ];
    // One instance per region: each probes every monitor for its region.
    eventually(WAIT, "both regions probing every monitor", || {
        instances
            .iter()
            .all(|i| {
                let view = peers(i);
                view["members"].as_array().unwrap().len() == 2 && held_monitors(&view).len() == 2
            })
            .then_some(())
    });
    eventually(WAIT, "kimi up from both regions", || {
        instances
            .iter()
            .all(|i| monitor_status(i, "kimi-chat")["state"] == "up")
            .then_some(())
    });

    // Kimi fails from eu only: regional, seen alike from both instances, and a regional
    // incident, not an outage.
    kimi_eu.set_scenario(Scenario::Unavailable);
    for instance in &instances {
        let kimi = eventually(WAIT, "kimi regional", || {
            let kimi = monitor_status(instance, "kimi-chat");
            (kimi["state"] == "regional").then_some(kimi)
        });
        assert_eq!(kimi["regions"]["eu"]["state"], "down", "{kimi}");
        assert_eq!(kimi["regions"]["eu"]["verdict"], "unavailable", "{kimi}");
        assert_eq!(kimi["regions"]["us"]["state"], "up", "{kimi}");
        assert_eq!(monitor_status(instance, "deepseek-chat")["state"], "up");
    }
    let regional = eventually(WAIT, "kimi's regional incident to open", || {
        open_incidents(&instances[1]).into_iter().next()
    });
    assert_eq!(regional["monitor"], "kimi-chat");
    assert_eq!(regional["kind"], "regional");
    let opened = every.wait_for(WAIT, "the regional alert", |log| {
        log.iter()
            .find(|r| r.answer == Answer::Accept && r.json()["event"] == "opened")
            .map(|r| r.json())
    });
    assert_eq!(opened["kind"], "regional", "{opened}");
    let title = opened["title"].as_str().unwrap();
    assert!(title.contains("down from eu only"), "{title}");
    // Three more failing probes from eu later: still the one regional incident.
    let seen = kimi_eu.requests().len();
    wait_received(&kimi_eu, seen + 3, WAIT);
    // The stored results say which region probed: eu's fail, us's answer.
    let recent = instances[1].serve.json("/api/v1/monitors/kimi-chat")["recent_results"]
        .as_array()
        .unwrap()
        .clone();
    for (region, verdict) in [("eu", "unavailable"), ("us", "up")] {
        assert!(
            recent
                .iter()
                .any(|r| r["region"] == region && r["verdict"] == verdict),
            "no {verdict} result from {region}: {recent:#?}"
        );
    }
    assert!(
        !recent
            .iter()
            .any(|r| r["region"] == "us" && r["verdict"] != "up"),
        "{recent:#?}"
    );
    let open = open_incidents(&instances[0]);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], regional["id"]);
    assert_eq!(
        instances[1].serve.json("/api/v1/status")["status"],
        "degraded"
    );

    // Both regions fail: the regional incident gives way to one outage.
    kimi_us.set_scenario(Scenario::Unavailable);
    let incident = eventually(WAIT, "kimi's outage to open", || {
        open_incidents(&instances[1])
            .into_iter()
            .find(|i| i["kind"] == "outage")
    });
    assert_eq!(incident["monitor"], "kimi-chat");
    for instance in &instances {
        eventually(WAIT, "kimi down everywhere", || {
            (monitor_status(instance, "kimi-chat")["state"] == "down").then_some(())
        });
    }
    assert_eq!(open_incidents(&instances[0]).len(), 1);
    // Announced on both channels before it ends (an incident that ends before the instance
    // sending alerts has seen it open pages nobody).
    for receiver in [&every, &outages] {
        receiver.wait_for(WAIT, "the outage's alert", |log| {
            log.iter()
                .any(|r| r.json()["kind"] == "outage" && r.json()["event"] == "opened")
                .then_some(())
        });
    }

    // Both recover: the outage closes.
    kimi_eu.set_scenario(Scenario::Ok);
    kimi_us.set_scenario(Scenario::Ok);
    eventually(WAIT, "the outage to close", || {
        open_incidents(&instances[0]).is_empty().then_some(())
    });
    for instance in &instances {
        eventually(WAIT, "kimi up again", || {
            (monitor_status(instance, "kimi-chat")["state"] == "up").then_some(())
        });
    }
    let all = instances[0].serve.json("/api/v1/incidents")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    // Newest first: the outage, which stayed open until both regions recovered (no regional
    // tail when one recovers a probe before the other), and the regional incident before it.
    let kinds: Vec<&str> = all.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["outage", "regional"], "{all:#?}");
    // Every alert delivered: the channel taking every kind saw both incidents open and
    // resolve, the outage channel the outage only.
    let to_every = every.wait_for(WAIT, "every incident's alerts", |log| {
        let alerts = alerts_in(log);
        (alerts.len() >= 4).then_some(alerts)
    });
    assert_eq!(to_every[0], "regional opened", "{to_every:?}");
    let mut sorted = to_every.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "outage opened",
            "outage resolved",
            "regional opened",
            "regional resolved"
        ]
    );
    let to_outages = outages.wait_for(WAIT, "the outage's resolution", |log| {
        let alerts = alerts_in(log);
        (alerts.len() == 2).then_some(alerts)
    });
    assert_eq!(to_outages, ["outage opened", "outage resolved"]);

    // Kimi fails from eu again, and then eu's only instance dies: its regional incident has
    // nobody left in eu to close it, so us judges it again once eu is no longer live.
    kimi_eu.set_scenario(Scenario::Unavailable);
    let again = eventually(WAIT, "a second regional incident", || {
        open_incidents(&instances[1])
            .into_iter()
            .find(|i| i["kind"] == "regional")
    });
    instances.remove(0).serve.crash();
    eventually(
        WAIT,
        "the regional incident of a region gone to close",
        || open_incidents(&instances[0]).is_empty().then_some(()),
    );
    let closed = instances[0].serve.json("/api/v1/incidents?state=closed")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    assert!(closed.iter().any(|i| i["id"] == again["id"]), "{closed:?}");
    drop(instances);
    background().block_on(db.drop_now());
}

#[test]
fn on_postgres_a_region_that_lost_the_database_judges_with_the_others_once_it_is_back() {
    let db = scratch();
    // eu reaches the database through a relay the test cuts; us directly.
    let (relay, eu_url) = Relay::in_front_of(db.url().expose());
    let kimi_eu = mock("kimi", "ok");
    let kimi_us = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let every = Receiver::start(Answer::Accept);
    let alerts = "[alerts.every]\nkind = \"webhook\"\nurl_env = \"EVERY_URL\"\n";
    let eu_config = region_config(&kimi_eu, &deepseek, alerts);
    let us_config = region_config(&kimi_us, &deepseek, alerts);
    let every_url = every.url("/isdown");
    let start = |name, region, cfg: &ConfigFile, url: &str| {
        let env = [
            ("ISDOWN_REGION", region),
            ("KIMI_KEY", KEY),
            ("DS_KEY", KEY),
            ("EVERY_URL", every_url.as_str()),
        ];
        instance_at(name, cfg, url, &env)
    };
    let eu = start("eu-1", "eu", &eu_config, &eu_url);
    let us = start("us-1", "us", &us_config, db.url().expose());
    eventually(WAIT, "kimi up from both regions", || {
        [&eu, &us]
            .iter()
            .all(|i| {
                let kimi = monitor_status(i, "kimi-chat");
                kimi["regions"]["eu"]["state"] == "up" && kimi["regions"]["us"]["state"] == "up"
            })
            .then_some(())
    });

    // eu loses the database, then sees Kimi fail: it cannot read what us sees, so it decides
    // nothing yet and keeps its own view in memory.
    relay.cut();
    let cut_at = api_second();
    kimi_eu.set_scenario(Scenario::Unavailable);
    eventually(
        WAIT,
        "eu to see kimi down while the database is away",
        || {
            let kimi = monitor_status(&eu, "kimi-chat");
            (kimi["regions"]["eu"]["state"] == "down").then_some(())
        },
    );
    let seen = kimi_eu.requests().len();
    wait_received(&kimi_eu, seen + 3, WAIT);
    assert!(
        open_incidents(&us).is_empty(),
        "nobody has decided anything: {:?}",
        open_incidents(&us)
    );

    // Back: eu's view lands and the regions judge together — Kimi fails from eu only, a
    // regional incident that began when eu saw it fail, opened by eu.
    let mended_at = api_second() + 1000;
    relay.mend();
    let regional = eventually(WAIT, "kimi's regional incident once eu is back", || {
        open_incidents(&us)
            .into_iter()
            .find(|i| i["monitor"] == "kimi-chat")
    });
    assert_eq!(regional["kind"], "regional", "{regional}");
    assert_eq!(regional["opened_by"]["region"], "eu", "{regional}");
    let started = api_time(&regional["started_at"]);
    assert!(cut_at <= started && started <= mended_at, "{regional}");
    let opened = every.wait_for(WAIT, "the regional alert", |log| {
        log.iter()
            .find(|r| r.answer == Answer::Accept && r.json()["event"] == "opened")
            .map(|r| r.json())
    });
    assert_eq!(opened["kind"], "regional", "{opened}");

    // eu recovers: the regional incident closes, and there never was an outage.
    kimi_eu.set_scenario(Scenario::Ok);
    eventually(WAIT, "the regional incident to close", || {
        open_incidents(&us).is_empty().then_some(())
    });
    let all = us.serve.json("/api/v1/incidents")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["id"], regional["id"]);
    let alerts = every.wait_for(WAIT, "the regional incident's two alerts", |log| {
        let alerts = alerts_in(log);
        (alerts.len() >= 2).then_some(alerts)
    });
    assert_eq!(alerts, ["regional opened", "regional resolved"]);
    drop((eu, us));
    background().block_on(db.drop_now());
}

#[test]
fn on_postgres_a_region_whose_own_network_is_down_is_marked_so_and_blames_no_provider() {
    let db = scratch();
    let (kimi, deepseek) = (mock("kimi", "ok"), mock("deepseek", "ok"));
    let hook = Receiver::start(Answer::Accept);
    // eu reaches no provider at all (nothing listens on port 1: every connection is refused);
    // us reaches both.
    let region_config = |kimi_url: &str, deepseek_url: &str| {
        config(&format!(
            "{SETTINGS}{}{}[[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
             [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\"]\n",
            provider_toml("kimi", kimi_url, "openai", "KIMI_KEY"),
            provider_toml("deepseek", deepseek_url, "openai", "DS_KEY"),
        ))
    };
    let unreachable = "http://127.0.0.1:1/v1";
    let eu_config = region_config(unreachable, unreachable);
    let us_config = region_config(&kimi.v1(), &deepseek.v1());
    let hook_url = hook.url("/isdown");
    let start = |name, region, cfg| {
        let env = [
            ("KIMI_KEY", KEY),
            ("DS_KEY", KEY),
            ("ISDOWN_REGION", region),
            ("HOOK_URL", hook_url.as_str()),
        ];
        instance(name, cfg, &db, &env)
    };
    let instances = [
        start("eu-1", "eu", &eu_config),
        start("us-1", "us", &us_config),
    ];
    let network = eventually(WAIT, "eu's network incident", || {
        open_incidents(&instances[1])
            .into_iter()
            .find(|i| i["kind"] == "network")
    });
    assert_eq!(network["monitor"], "*/eu", "{network}");
    eventually(WAIT, "eu to show its network down", || {
        (instances[0].serve.json("/api/v1/status")["network_down"] == true).then_some(())
    });
    let us = instances[1].serve.json("/api/v1/status");
    assert_eq!(us["network_down"], false, "{us}");
    let opened = hook.wait_for(WAIT, "the network alert", |log| {
        log.iter()
            .find(|r| r.answer == Answer::Accept && r.json()["kind"] == "network")
            .map(|r| r.json())
    });
    let title = opened["title"].as_str().unwrap();
    assert!(title.contains("in region eu"), "{title}");
    // Probes from eu go on failing; still no provider is blamed for them, from any region.
    let mut seen = instances[0].serve.json("/api/v1/status")["updated_at"].clone();
    for _ in 0..3 {
        seen = eventually(WAIT, "another probe from eu", || {
            let now = instances[0].serve.json("/api/v1/status")["updated_at"].clone();
            (now != seen).then_some(now)
        });
    }
    let open = open_incidents(&instances[0]);
    assert_eq!(open.len(), 1, "only the network incident: {open:?}");
    for monitor in ["kimi-chat", "deepseek-chat"] {
        let row = monitor_status(&instances[1], monitor);
        assert_ne!(row["state"], "down", "{row}");
        assert_ne!(row["state"], "regional", "{row}");
    }
    drop(instances);
    background().block_on(db.drop_now());
}

//! Alerts end to end: the real `isdown serve` watches mock providers, and its alerts go to
//! scripted HTTP receivers on 127.0.0.1 — once per incident, on recovery too, retried when
//! the receiver fails, resent after a crash only if never delivered, and grouped when many
//! monitors fail together.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::receiver::{Answer, Received, Receiver};
use support::*;

const KEY: &str = "sk-test-Qw8ErTy2UiOp4AsDf6Gh";
const WAIT: Duration = Duration::from_secs(20);

/// Fast monitors, a one-second grouping window and short retries, so the tests run in seconds.
fn settings(retry_initial: &str) -> String {
    format!(
        "[monitor]\nconfirm_after = \"300ms\"\ninterval = \"2s\"\ntimeout = \"1500ms\"\n\
         [alerting]\ngroup_window = \"1s\"\nretry_initial = \"{retry_initial}\"\n\
         retry_max = \"2s\"\n"
    )
}

fn kimi_monitor(mock: &MockServer) -> String {
    format!(
        "{}[[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n",
        provider_toml("kimi", &mock.v1(), "openai", "KIMI_KEY")
    )
}

fn hook(name: &str) -> String {
    format!(
        "[alerts.{name}]\nkind = \"webhook\"\nurl_env = \"{}_URL\"\n",
        name.to_uppercase()
    )
}

fn event(r: &Received) -> String {
    r.json()["event"].as_str().unwrap_or("?").to_owned()
}

fn events(list: &[Received]) -> Vec<String> {
    list.iter().map(event).collect()
}

/// The channel's delivery status as `/healthz` reports it.
fn channel_health(serve: &Serve, channel: &str) -> Value {
    serve.json("/healthz")["alerts"][channel].clone()
}

/// Waits until `channel` has nothing queued and has delivered at least once.
fn drained(serve: &Serve, channel: &str) {
    eventually(WAIT, "outbox drained", || {
        let h = channel_health(serve, channel);
        (h["pending"] == 0 && !h["last_delivered_at"].is_null()).then_some(())
    });
}

#[test]
fn a_receiver_failing_three_times_gets_the_alert_once_on_the_fourth_attempt() {
    let kimi = mock("kimi", "unavailable");
    let receiver = Receiver::start(Answer::Accept);
    receiver.script(&[
        Answer::Status(503),
        Answer::Status(503),
        Answer::Status(500),
    ]);
    let cfg = config(&format!(
        "{}{}{}",
        settings("200ms"),
        kimi_monitor(&kimi),
        hook("hook")
    ));
    let data = tempfile::tempdir().unwrap();
    let hook_url = receiver.url("/isdown");
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[("KIMI_KEY", KEY), ("HOOK_URL", &hook_url)],
    );

    receiver.wait_for(WAIT, "a delivered alert", |log| {
        log.iter().any(|r| r.answer == Answer::Accept).then_some(())
    });
    drained(&serve, "hook");
    let log = receiver.log();
    assert_eq!(
        log.iter().map(|r| r.answer.clone()).collect::<Vec<_>>(),
        vec![
            Answer::Status(503),
            Answer::Status(503),
            Answer::Status(500),
            Answer::Accept
        ]
    );
    let bodies: Vec<&str> = log.iter().map(|r| r.body.as_str()).collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every attempt is the same alert"
    );
    let alert = log[3].json();
    assert_eq!(alert["event"], "opened");
    assert_eq!(alert["kind"], "outage");
    assert_eq!(alert["items"][0]["monitor"], "kimi-chat");
    assert_eq!(alert["items"][0]["verdict"], "unavailable");
    assert_eq!(alert["items"][0]["blame"], "provider");

    let health = channel_health(&serve, "hook");
    assert_eq!(health["state"], "ok");
    assert_eq!(health["given_up"], 0);
    let metrics = get(&format!("{}/metrics", serve.url)).1;
    assert!(
        metrics.contains(r#"isdown_alert_attempts_total{channel="hook",outcome="retry"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"isdown_alert_attempts_total{channel="hook",outcome="delivered"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(KEY) && !get(&format!("{}/healthz", serve.url)).1.contains(KEY));
}

#[test]
fn serve_killed_between_written_and_delivered_sends_it_after_restart_exactly_once() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    // The receiver holds the first alert without answering: written, attempted, not delivered.
    let receiver = Receiver::start(Answer::Hold);
    let cfg = config(&format!(
        "{}{}{}[[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\"]\n{}",
        settings("200ms"),
        kimi_monitor(&kimi),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
        hook("hook")
    ));
    let data = tempfile::tempdir().unwrap();
    let hook_url = receiver.url("/isdown");
    let env = [
        ("KIMI_KEY", KEY),
        ("DS_KEY", KEY),
        ("HOOK_URL", hook_url.as_str()),
    ];
    let serve = Serve::start(&cfg.path, data.path(), &env);

    kimi.set_scenario(Scenario::Unavailable);
    receiver.wait_for(WAIT, "the held alert", |log| {
        (!log.is_empty()).then_some(())
    });
    serve.crash();
    receiver.set_default(Answer::Accept);
    assert!(receiver.accepted().is_empty());

    let serve = Serve::start(&cfg.path, data.path(), &env);
    receiver.wait_for(WAIT, "the resent alert", |log| {
        log.iter().any(|r| r.answer == Answer::Accept).then_some(())
    });
    kimi.set_scenario(Scenario::Ok);
    receiver.wait_for(WAIT, "the resolve", |log| {
        log.iter()
            .any(|r| r.answer == Answer::Accept && event(r) == "resolved")
            .then_some(())
    });
    drained(&serve, "hook");
    serve.crash();

    // After a second restart nothing delivered comes back: the next alert the receiver gets is
    // a new incident's (a channel delivers in order, so any resend would come before it).
    let serve = Serve::start(&cfg.path, data.path(), &env);
    deepseek.set_scenario(Scenario::Unavailable);
    receiver.wait_for(WAIT, "deepseek's alert", |log| {
        log.iter()
            .any(|r| r.json()["items"][0]["monitor"] == "deepseek-chat")
            .then_some(())
    });
    drained(&serve, "hook");
    let accepted = receiver.accepted();
    assert_eq!(events(&accepted), vec!["opened", "resolved", "opened"]);
    let monitors: Vec<Value> = accepted
        .iter()
        .map(|r| r.json()["items"][0]["monitor"].clone())
        .collect();
    assert_eq!(monitors, vec!["kimi-chat", "kimi-chat", "deepseek-chat"]);
    let resolved = accepted[1].json();
    assert!(resolved["duration_s"].as_i64().unwrap() >= 0);
    assert_eq!(resolved["dedup_key"], accepted[0].json()["dedup_key"]);
    // The held attempt and its resend carried the same dedup key: receivers drop the repeat.
    let log = receiver.log();
    assert_eq!(log[0].answer, Answer::Hold);
    assert_eq!(log[0].json()["dedup_key"], accepted[0].json()["dedup_key"]);
}

#[test]
fn twenty_monitors_failing_together_are_one_page_and_at_most_one_follow_up_per_channel() {
    let mock = mock("openai", "ok");
    let receiver = Receiver::start(Answer::Accept);
    let mut text = settings("200ms").replace("group_window = \"1s\"", "group_window = \"5s\"");
    for n in 0..20 {
        text.push_str(&provider_toml(
            &format!("p{n:02}"),
            &mock.v1(),
            "openai",
            "P_KEY",
        ));
        text.push_str(&format!(
            "[[monitors]]\nprovider = \"p{n:02}\"\nprobes = [\"chat\"]\n"
        ));
    }
    text.push_str(&hook("hook"));
    text.push_str("[alerts.chat]\nkind = \"slack\"\nurl_env = \"CHAT_URL\"\n");
    let cfg = config(&text);
    let data = tempfile::tempdir().unwrap();
    let (hook_url, chat_url) = (receiver.url("/hook"), receiver.url("/slack"));
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[
            ("P_KEY", KEY),
            ("HOOK_URL", &hook_url),
            ("CHAT_URL", &chat_url),
        ],
    );
    eventually(WAIT, "every monitor up", || {
        let status = serve.json("/api/v1/status");
        let monitors = status["monitors"].as_array()?;
        monitors.iter().all(|m| m["state"] == "up").then_some(())
    });

    mock.set_scenario(Scenario::Unavailable);
    eventually(WAIT, "twenty incidents", || {
        let open = serve.json("/api/v1/incidents?state=open")["incidents"].clone();
        (open.as_array()?.len() == 20).then_some(())
    });
    // Monitors are spread over their interval: the first message names those confirmed (or
    // being confirmed) when it goes out; the rest follow in one update under the same key.
    receiver.wait_for(WAIT, "every monitor announced on both channels", |log| {
        let hook_items: std::collections::HashSet<String> = log
            .iter()
            .filter(|r| r.path == "/hook")
            .flat_map(|r| r.json()["items"].as_array().cloned().unwrap_or_default())
            .filter_map(|i| i["monitor"].as_str().map(str::to_owned))
            .collect();
        let hooks = log.iter().filter(|r| r.path == "/hook").count();
        let chats = log.iter().filter(|r| r.path == "/slack").count();
        (hook_items.len() == 20 && chats == hooks).then_some(())
    });
    drained(&serve, "hook");
    drained(&serve, "chat");

    let log = receiver.log();
    let hooks: Vec<Value> = log
        .iter()
        .filter(|r| r.path == "/hook")
        .map(|r| r.json())
        .collect();
    let chats: Vec<&Received> = log.iter().filter(|r| r.path == "/slack").collect();
    assert!(
        (1..=2).contains(&hooks.len()),
        "one page, at most one follow-up: {log:#?}"
    );
    assert_eq!(hooks.len(), chats.len(), "{log:#?}");
    assert_eq!(hooks[0]["event"], "opened");
    let key = hooks[0]["dedup_key"].clone();
    assert!(hooks.iter().all(|h| h["dedup_key"] == key), "one dedup key");
    let last = hooks.last().unwrap();
    if hooks.len() == 2 {
        assert_eq!(last["event"], "update");
    }
    assert_eq!(last["items"].as_array().unwrap().len(), 20);
    let title = last["title"].as_str().unwrap();
    assert!(
        title.starts_with("20 monitors DOWN: p") && title.ends_with(" and 17 more"),
        "{title}"
    );
    let mut listed: Vec<&str> = last["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["monitor"].as_str().unwrap())
        .collect();
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), 20, "every monitor once");
    let slack = chats.last().unwrap().json();
    assert!(
        slack["text"].as_str().unwrap().contains("20 monitors DOWN"),
        "{slack}"
    );
}

#[test]
fn setup_problems_and_outages_go_to_their_own_channels() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let receiver = Receiver::start(Answer::Accept);
    let cfg = config(&format!(
        "{}{}{}[[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\"]\n\
         {}on = [\"outage\", \"network\"]\nmonitors = [\"kimi\"]\n{}on = [\"setup_problem\"]\n",
        settings("200ms"),
        kimi_monitor(&kimi),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
        hook("oncall"),
        hook("mail"),
    ));
    let data = tempfile::tempdir().unwrap();
    let (oncall, mail) = (receiver.url("/oncall"), receiver.url("/mail"));
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[
            ("KIMI_KEY", KEY),
            ("DS_KEY", KEY),
            ("ONCALL_URL", &oncall),
            ("MAIL_URL", &mail),
        ],
    );
    kimi.set_scenario(Scenario::Unavailable);
    deepseek.set_scenario(Scenario::AuthFailed);
    receiver.wait_for(WAIT, "both alerts", |log| (log.len() >= 2).then_some(()));
    drained(&serve, "oncall");
    drained(&serve, "mail");
    let log = receiver.log();
    assert_eq!(log.len(), 2, "{log:#?}");
    let to = |path: &str| log.iter().find(|r| r.path == path).unwrap().json();
    assert_eq!(to("/oncall")["kind"], "outage");
    assert_eq!(to("/oncall")["items"][0]["monitor"], "kimi-chat");
    assert_eq!(to("/mail")["kind"], "setup_problem");
    assert_eq!(to("/mail")["items"][0]["verdict"], "auth_failed");
    assert_eq!(to("/mail")["items"][0]["blame"], "account");
}

#[test]
fn a_channel_that_keeps_failing_is_reported_and_never_blocks_the_others() {
    let kimi = mock("kimi", "unavailable");
    let broken = Receiver::start(Answer::Status(503));
    let working = Receiver::start(Answer::Accept);
    let cfg = config(&format!(
        "{}{}{}{}",
        settings("100ms"),
        kimi_monitor(&kimi),
        hook("broken"),
        hook("working")
    ));
    let data = tempfile::tempdir().unwrap();
    let (broken_url, working_url) = (broken.url("/b"), working.url("/w"));
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[
            ("KIMI_KEY", KEY),
            ("BROKEN_URL", &broken_url),
            ("WORKING_URL", &working_url),
        ],
    );
    working.wait_for(WAIT, "the working channel's alert", |log| {
        (!log.is_empty()).then_some(())
    });
    broken.wait_for(WAIT, "three failed attempts", |log| {
        (log.len() >= 3).then_some(())
    });
    let health = eventually(WAIT, "the broken channel reported", || {
        let h = serve.json("/healthz");
        (h["alerts"]["broken"]["state"] == "failing").then_some(h)
    });
    assert_eq!(health["status"], "degraded");
    assert_eq!(
        health["failing_alert_channels"],
        serde_json::json!(["broken"])
    );
    assert_eq!(health["alerts"]["broken"]["pending"], 1);
    assert!(
        health["alerts"]["broken"]["last_error"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert_eq!(health["alerts"]["working"]["state"], "ok");
    assert_eq!(health["alerts"]["working"]["pending"], 0);
    let metrics = get(&format!("{}/metrics", serve.url)).1;
    assert!(
        metrics.contains(r#"isdown_alert_channel_failing{channel="broken"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"isdown_alert_outbox_pending{channel="broken"} 1"#));
}

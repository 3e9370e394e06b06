//! `isdown alert test CHANNEL` against a real HTTP receiver on 127.0.0.1.

mod support;

use std::time::Duration;

use support::receiver::{Answer, Receiver};
use support::*;

/// The receiver's path: a secret of its own, which no output may show.
const HOOK_PATH: &str = "/hooks/s3cr3t-path-0123456789";

#[test]
fn test_alert_reaches_a_signed_webhook() {
    let receiver = Receiver::start(Answer::Accept);
    let url = receiver.url(HOOK_PATH);
    let cfg = config(
        "[alerts.hook]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\nsecret_env = \"HOOK_SECRET\"\n",
    );
    let out = isdown(
        &[
            "alert",
            "test",
            "hook",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("HOOK_URL", &url), ("HOOK_SECRET", "shh-0123456789")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("sent a test alert through `hook` (webhook)"));
    let got = receiver.wait_for(Duration::from_secs(10), "the test alert", |log| {
        log.first().cloned()
    });
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", HOOK_PATH)
    );
    assert!(
        got.header("x-isdown-signature").starts_with("sha256="),
        "{}",
        got.head()
    );
    assert!(
        !got.header("x-isdown-timestamp").is_empty(),
        "{}",
        got.head()
    );
    assert_eq!(got.json()["event"], "test");
}

#[test]
fn a_failing_receiver_is_reported_with_exit_1_and_without_the_secret_url() {
    let receiver = Receiver::start(Answer::Status(500));
    let url = receiver.url(HOOK_PATH);
    let cfg = config("[alerts.hook]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n");
    let out = isdown(
        &[
            "alert",
            "test",
            "hook",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("HOOK_URL", &url)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(!err.contains("s3cr3t-path"), "{err}");
}

#[test]
fn unknown_channels_and_broken_channel_config_exit_2() {
    let cfg = config("[alerts.log]\nkind = \"console\"\n");
    let out = isdown(
        &[
            "alert",
            "test",
            "pager",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("configured: log"), "{}", stderr(&out));

    let cfg = config("[alerts.oncall]\nkind = \"pagerduty\"\nrouting_key_env = \"PD_KEY\"\n");
    let out = isdown(
        &[
            "alert",
            "test",
            "oncall",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("isdown.toml:1:") && err.contains("alerts.oncall.routing_key_env"),
        "{err}"
    );
}

#[test]
fn every_channel_block_in_the_readme_is_a_valid_config() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Alert channels").unwrap()..];
    let block = section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let cfg = config(block);
    let env = [
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.invalid/services/T/B/X",
        ),
        (
            "DISCORD_WEBHOOK_URL",
            "https://discord.invalid/api/webhooks/1/x",
        ),
        ("TEAMS_WORKFLOW_URL", "https://workflows.invalid/x"),
        ("TELEGRAM_BOT_TOKEN", "123456:ABCdef"),
        ("PD_ROUTING_KEY", "abcdefabcdefabcdefabcdefabcdefab"),
        ("OPSGENIE_API_KEY", "key-123"),
        ("TWILIO_AUTH_TOKEN", "token"),
        ("SMTP_PASSWORD", "password"),
        ("HOOK_SECRET", "secret"),
    ];
    // Loading checks every channel; the console one is then exercised end to end.
    let out = isdown(
        &[
            "alert",
            "test",
            "log",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The rules block (routing keys, [alerting], maintenance) loads too: asking for a channel
    // it does not have gets past loading to the "no such channel" answer.
    let rules = section
        .split("```toml\n")
        .nth(2)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert!(rules.contains("[alerting]"));
    let cfg = config(rules);
    let out = isdown(
        &[
            "alert",
            "test",
            "none",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &env,
    );
    assert!(
        stderr(&out).contains("no alert channel \"none\"; configured: mail, oncall"),
        "{}",
        stderr(&out)
    );
}

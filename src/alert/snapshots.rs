//! Snapshot tests of every channel's messages: one outage as the alert rules announce it
//! (opened, reminded, resolved; `alert::plan::tests::lifecycle`) plus the test message, sent by
//! each channel built from its `[alerts.NAME]` table to a recording receiver on 127.0.0.1, and
//! compared byte for byte with `src/alert/snapshots/KIND.txt`. What a receiver gets is
//! pinned here: a change of wording anywhere (the rules, `alert::render`, a channel's format)
//! shows up as a diff of these files.
//!
//! Each file lists, per message, the request line and the body (JSON pretty-printed, a form
//! decoded one field a line). Email is rendered without SMTP: the subject and the two parts
//! exactly as the mail carries them. The console channel's snapshot is its log line.
//!
//! After an intended change: `ISDOWN_UPDATE_SNAPSHOTS=1 cargo test --lib alert::snapshots`
//! rewrites the files; review them with `git diff src/alert/snapshots` and commit them.

use std::path::PathBuf;

use super::channel::support::{Received, env, receiver};
use crate::alert::AlertMessage;
use crate::alert::render::test_message;
use crate::alert::spec::ChannelSpec;

/// The rules' outage sequence and the test message, stamped at the outage's start.
fn messages() -> Vec<AlertMessage> {
    let mut messages = crate::alert::plan::tests::lifecycle();
    messages.push(test_message("snap", messages[0].started_at));
    messages
}

fn assert_snapshot(kind: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/alert/snapshots")
        .join(format!("{kind}.txt"));
    if std::env::var_os("ISDOWN_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot {} ({e}); create it with ISDOWN_UPDATE_SNAPSHOTS=1 cargo test --lib \
             alert::snapshots",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "the end".to_owned(), |n| format!("line {}", n + 1));
        panic!(
            "{kind}: the message differs from {} at {line}; if intended, rerun with \
             ISDOWN_UPDATE_SNAPSHOTS=1 and review the diff.\n--- got ---\n{actual}",
            path.display()
        );
    }
}

/// The request as a receiver sees it: request line, then the body, readable.
fn show(request: &Received) -> String {
    let target = match &request.query {
        Some(query) => format!("{}?{query}", request.path),
        None => request.path.clone(),
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&request.body) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap(),
        Err(_) => {
            let form = String::from_utf8_lossy(&request.body);
            let as_query = reqwest::Url::parse(&format!("http://form/?{form}")).unwrap();
            as_query
                .query_pairs()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    format!("{} {target}\n{body}\n", request.method)
}

/// Sends every message through the channel of `table` (with `{base}` replaced by the
/// receiver's address and `vars` as its environment) and snapshots what arrived.
async fn snapshot_http(kind: &str, table: &str, vars: &[(&str, &str)]) {
    let mut receiver = receiver(|_| (200, r#"{"ok": true}"#.to_owned())).await;
    let base = receiver.base.clone();
    let vars: Vec<(&str, String)> = vars
        .iter()
        .map(|(k, v)| (*k, v.replace("{base}", &base)))
        .collect();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let table: toml::Table = toml::from_str(&table.replace("{base}", &base)).unwrap();
    let spec = ChannelSpec::from_table("snap", table, &env(&vars)).unwrap();
    let channel = spec.build(&super::channel::support::client());
    let mut out = String::new();
    for message in messages() {
        channel.send(&message).await.unwrap();
        out.push_str(&format!("=== {} ===\n", message.event.as_str()));
        while let Some(request) = receiver.try_take() {
            out.push_str(&show(&request));
        }
        out.push('\n');
    }
    assert_snapshot(kind, &out);
}

/// Environment variables of a channel under test.
type Vars = &'static [(&'static str, &'static str)];

/// Every HTTP channel: its kind, its table (`{base}` is the receiver) and its environment.
const HTTP_CHANNELS: &[(&str, &str, Vars)] = &[
    ("slack", "url_env = \"URL\"", &[("URL", "{base}/hook")]),
    ("discord", "url_env = \"URL\"", &[("URL", "{base}/hook")]),
    ("teams", "url_env = \"URL\"", &[("URL", "{base}/hook")]),
    (
        "telegram",
        "token_env = \"TOKEN\"\nchat_id = -1001234567890\napi_base = \"{base}\"",
        &[("TOKEN", "123456:ABCdef")],
    ),
    (
        "pagerduty",
        "routing_key_env = \"KEY\"\napi_url = \"{base}\"",
        &[("KEY", "routing-key")],
    ),
    (
        "opsgenie",
        "api_key_env = \"KEY\"\napi_url = \"{base}\"",
        &[("KEY", "genie-key")],
    ),
    (
        "twilio",
        "account_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token_env = \"TOKEN\"\n\
         from = \"+15005550006\"\nto = [\"+15551234567\"]\napi_url = \"{base}\"",
        &[("TOKEN", "auth-token")],
    ),
    ("webhook", "url_env = \"URL\"", &[("URL", "{base}/isdown")]),
];

#[tokio::test]
async fn every_http_channel() {
    for (kind, table, vars) in HTTP_CHANNELS {
        snapshot_http(kind, &format!("kind = \"{kind}\"\n{table}"), vars).await;
    }
}

#[test]
fn email() {
    let mut out = String::new();
    for message in messages() {
        out.push_str(&format!("=== {} ===\n", message.event.as_str()));
        out.push_str(&format!(
            "Subject: {}\n\n",
            super::channel::email::subject("[isdown]", &message)
        ));
        out.push_str(&super::channel::email::plain_body(&message));
        out.push_str("--- html ---\n");
        out.push_str(&super::channel::email::html_body(&message).unwrap());
        out.push('\n');
    }
    assert_snapshot("email", &out);
}

#[test]
fn console() {
    let mut out = String::new();
    for message in messages() {
        out.push_str(&format!("=== {} ===\n", message.event.as_str()));
        out.push_str(&super::channel::console::line(&message));
        out.push_str("\n\n");
    }
    assert_snapshot("console", &out);
}

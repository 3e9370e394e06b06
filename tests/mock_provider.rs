//! `isdown mock-provider` as a process: the one test of the command itself — its banner names the
//! bound address, `--style`, `--scenario` and `--delay` set what it answers, the admin endpoints
//! switch the scenario and list the requests at run time, SIGTERM stops it, and an unknown
//! scenario is refused with the list of known ones. Every other test runs the same server
//! in-process (`isdown::mock::MockServer`).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use support::*;

/// The running command, killed on drop if the test did not stop it.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chat(url: &str) -> (u16, Value) {
    let (status, body) = request(
        "POST",
        &format!("{url}/v1/chat/completions"),
        &json!({"model": "kimi-k2.6", "messages": [{"role": "user", "content": "ping"}]})
            .to_string(),
        &[("authorization", "Bearer sk-test-key")],
    );
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, body)
}

#[test]
fn mock_provider_announces_its_address_answers_its_scenario_and_switches_at_run_time() {
    let mut child = Command::new(BIN)
        .args([
            "mock-provider",
            "--listen",
            "127.0.0.1:0",
            "--style",
            "kimi",
        ])
        .args(["--scenario", "unavailable", "--delay", "1500ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mock-provider");
    // The first stdout line announces the bound address: the server is listening by then.
    let mut banner = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("read the banner");
    let mut process = Process(child);
    let url = banner
        .trim()
        .strip_prefix("mock-provider listening on ")
        .unwrap_or_else(|| panic!("banner: {banner}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{banner}");

    let (status, body) = chat(&url);
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");

    let (status, state) = request(
        "POST",
        &format!("{url}/_mock/scenario"),
        r#"{"scenario": "ok"}"#,
        &[],
    );
    assert_eq!(status, 200, "{state}");
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["scenario"], "ok");
    assert_eq!(state["style"], "kimi");
    assert_eq!(state["delay_ms"], 1500);

    let (status, body) = chat(&url);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "pong");

    let (status, log) = get(&format!("{url}/_mock/requests"));
    assert_eq!(status, 200, "{log}");
    let log: Value = serde_json::from_str(&log).unwrap();
    let paths: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/v1/chat/completions", "/v1/chat/completions"]);

    let pid = process.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(process.0.wait().unwrap().success());
}

#[test]
fn mock_provider_rejects_an_unknown_scenario_and_lists_them_all() {
    let out = isdown(&["mock-provider", "--scenario", "no-such-scenario"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let names = stderr(&out);
    for scenario in [
        "ok",
        "slow",
        "hang",
        "reset",
        "rate_limited",
        "rate_limited_no_retry_after",
        "quota_exhausted",
        "auth_failed",
        "model_not_found",
        "context_too_long",
        "content_filtered",
        "bad_request",
        "overloaded",
        "server_error",
        "unavailable",
        "html_504",
        "malformed",
        "empty_choices",
        "error_in_200",
        "no_tool_call",
        "bad_tool_args",
        "stream_cut",
        "stream_stall",
        "stream_error",
        "keepalive_only",
        "flapping",
    ] {
        assert!(names.contains(scenario), "mock lacks {scenario}: {names}");
    }
}

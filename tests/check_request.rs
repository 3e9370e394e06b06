//! `isdown check PROVIDER --request FILE` as a user meets it: the offline `--json` contract
//! (`findings` of `{path, rule, message, fix}`, exit 3 with findings and 0 without), the input
//! forms (JSON, JSONL, curl, stdin), and the live diagnosis against mock-provider scenarios
//! that refuse one tool's schema with 400 or 500 while the ping succeeds.

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use isdown::mock::RecordedRequest;
use serde_json::{Value, json};
use support::*;

const KEY: &str = "sk-test-Hd93KfLq0PzWm27XcVb8";

/// An agent's real-shaped request from the lint corpus (a Kimi K2.6 turn with 22 tools and a
/// history of answered tool calls), without the one tool that uses `anyOf`.
fn agent_request() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/lint_corpus/valid-agent-kimi-22-tools-replayed-reasoning.json"
    );
    let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut request = case["request"].clone();
    let tools = request["tools"].as_array_mut().unwrap();
    tools.retain(|t| t["function"]["name"] != "postgres_query");
    request
}

/// The agent request with the `postgres_query` tool (its `params` items are an `anyOf`) back in
/// at position 20.
fn agent_request_with_union_tool() -> Value {
    let mut request = agent_request();
    let tool = json!({"type": "function", "function": {"name": "postgres_query",
        "description": "Run a read-only SQL query.",
        "parameters": {"type": "object", "properties": {
            "sql": {"type": "string"},
            "params": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}}},
            "required": ["sql"]}}});
    request["tools"].as_array_mut().unwrap().insert(20, tool);
    request
}

fn write_request(dir: &std::path::Path, request: &Value) -> String {
    let path = dir.join("request.json");
    std::fs::write(&path, request.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

/// Config pointing the catalog's `kimi` at the mock, so Kimi's rules apply.
fn kimi_at(mock: &MockServer) -> ConfigFile {
    config(&provider_toml(
        "kimi",
        &mock.v1(),
        "openai",
        "MOONSHOT_API_KEY",
    ))
}

fn check_request(cfg: &ConfigFile, file: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check",
        "kimi",
        "--request",
        file,
        "--json",
        "--config",
        cfg.path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    isdown(&args, &[("MOONSHOT_API_KEY", KEY)])
}

fn chat_requests(mock: &MockServer) -> Vec<RecordedRequest> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect()
}

// === offline: the JSON contract ===

#[test]
fn offline_json_lists_findings_with_exactly_path_rule_message_fix_and_exits_3() {
    let cfg = config("");
    let mut request = agent_request();
    request["temperature"] = json!(0.2);
    request["tools"][3]["function"]["name"] = json!("Edit File");
    let file = write_request(cfg.dir.path(), &request);
    let out = isdown(
        &[
            "check",
            "kimi",
            "--request",
            &file,
            "--offline",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let doc = json(&out);
    let findings = doc["findings"].as_array().unwrap();
    let paths: Vec<&str> = findings
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["temperature", "tools[3].function.name"]);
    for finding in findings {
        let keys: Vec<&String> = finding.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["fix", "message", "path", "rule"], "{finding}");
    }
    assert_eq!(findings[0]["rule"], "parameter_value");
    assert_eq!(findings[1]["rule"], "tool_name_pattern");
    assert_eq!(doc["verdict"], "your_request");
    assert_eq!(doc["requests_sent"], 0);
}

#[test]
fn offline_json_of_a_valid_request_has_no_findings_and_exits_0() {
    let cfg = config("");
    let file = write_request(cfg.dir.path(), &agent_request());
    let out = isdown(
        &[
            "check",
            "kimi",
            "--request",
            &file,
            "--offline",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc = json(&out);
    assert_eq!(doc["findings"], json!([]));
    assert_eq!(doc["verdict"], "no_findings");
}

fn run_with_stdin(args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stdin_takes_a_curl_command_line_and_never_echoes_its_key() {
    let body = json!({"model": "gpt-4o", "max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}]});
    let curl = format!(
        "curl https://api.openai.com/v1/chat/completions \\\n  -H \"Authorization: Bearer {KEY}\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{body}'\n"
    );
    let out = run_with_stdin(
        &["check", "openai", "--request", "-", "--offline", "--json"],
        &curl,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["findings"][0]["path"], "max_tokens");
    assert_eq!(doc["findings"][0]["rule"], "max_tokens_above_limit");
    assert_eq!(doc["requests"][0]["origin"], "the curl command");
    assert!(!stdout(&out).contains("Hd93KfLq0PzWm27XcVb8"));
}

#[test]
fn jsonl_checks_every_recorded_request_and_says_which_line_is_at_fault() {
    let good = json!({"model": "kimi-k2.6", "messages": [{"role": "user", "content": "a"}]});
    let bad = json!({"ts": "2026-11-02T10:00:00Z", "body": {"model": "kimi-k2.6", "n": 3, "messages": [{"role": "user", "content": "b"}]}});
    let text = format!("{good}\n{bad}\n");
    let out = run_with_stdin(
        &["check", "kimi", "--request", "-", "--offline", "--json"],
        &text,
    );
    assert_eq!(out.status.code(), Some(3));
    let doc = json(&out);
    assert_eq!(doc["requests"][0]["origin"], "line 1");
    assert_eq!(doc["requests"][0]["findings"], json!([]));
    assert_eq!(doc["requests"][1]["origin"], "line 2");
    assert_eq!(doc["requests"][1]["findings"][0]["path"], "n");
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1);
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    let cfg = config("");
    let file = write_request(cfg.dir.path(), &agent_request());
    let garbage = cfg.dir.path().join("garbage.txt");
    std::fs::write(&garbage, "this is not a request").unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["check", "kimi", "deepseek", "--request", &file],
            "exactly one",
        ),
        (vec!["check", "--request", &file], "exactly one"),
        (
            vec!["check", "kimi", "--request", garbage.to_str().unwrap()],
            "neither a JSON body",
        ),
        (
            vec!["check", "kimi", "--request", "/nonexistent/req.json"],
            "cannot read the request",
        ),
    ];
    for (args, want) in cases {
        let out = isdown(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}

// === live: ping, request, reduction ===

#[test]
fn ping_ok_and_request_refused_with_400_is_your_request_explained_by_the_tool_name() {
    let mock = mock("kimi", "tool_schema_rejected");
    let cfg = kimi_at(&mock);
    let mut request = agent_request();
    request["tools"][5]["function"]["name"] = json!("grep files");
    let file = write_request(cfg.dir.path(), &request);
    let out = check_request(&cfg, &file, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let doc = json(&out);
    assert_eq!(doc["verdict"], "your_request");
    assert_eq!(doc["ping"]["verdict"], "up");
    let live = &doc["requests"][0]["live"];
    assert_eq!(live["verdict"], "bad_request");
    assert_eq!(live["status"], 400);
    assert_eq!(
        doc["requests"][0]["explained_by"],
        json!(["tools[5].function.name"])
    );
    assert_eq!(doc["findings"][0]["path"], "tools[5].function.name");
    assert!(
        doc["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("grep files")
    );
    // Explained by reading: no reduction, two requests in all.
    assert!(doc["requests"][0]["narrowing"].is_null());
    assert_eq!(doc["requests_sent"], 2);
    assert_eq!(chat_requests(&mock).len(), 2);
    let summary = doc["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("YOUR REQUEST — kimi is up"),
        "{summary}"
    );
}

#[test]
fn ping_ok_and_an_unexplained_500_is_narrowed_down_to_the_property_within_the_bound() {
    let mock = mock("kimi", "tool_schema_500");
    let cfg = kimi_at(&mock);
    let file = write_request(cfg.dir.path(), &agent_request_with_union_tool());
    let out = check_request(&cfg, &file, &["--max-requests", "12"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let doc = json(&out);
    assert_eq!(doc["verdict"], "your_request");
    assert_eq!(doc["requests"][0]["live"]["verdict"], "server_error");
    let want = "tools[20].function.parameters.properties.params";
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["path"], want);
    assert_eq!(findings[0]["rule"], "provider_rejects_part");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("postgres_query")
    );
    assert_eq!(doc["requests"][0]["explained_by"], json!([want]));
    let narrowing = &doc["requests"][0]["narrowing"];
    assert_eq!(narrowing["part"], want);
    assert_eq!(narrowing["announced_requests"], 10);
    let sent = doc["requests_sent"].as_u64().unwrap();
    assert!(sent <= 12, "{sent}");
    assert_eq!(
        chat_requests(&mock).len() as u64,
        sent,
        "every request sent is counted"
    );
}

#[test]
fn a_budget_too_small_to_name_the_part_says_so_and_sends_no_more() {
    let mock = mock("kimi", "tool_schema_500");
    let cfg = kimi_at(&mock);
    let file = write_request(cfg.dir.path(), &agent_request_with_union_tool());
    let out = check_request(&cfg, &file, &["--max-requests", "4"]);
    assert_eq!(out.status.code(), Some(3));
    let doc = json(&out);
    assert_eq!(doc["requests_sent"], 4);
    assert_eq!(chat_requests(&mock).len(), 4);
    assert_eq!(doc["requests"][0]["narrowing"]["out_of_budget"], true);
    assert!(doc["requests"][0]["narrowing"]["part"].is_null());
    assert_eq!(doc["findings"], json!([]));
}

#[test]
fn ping_failing_blames_the_provider_and_the_request_is_not_sent() {
    let mock = mock("kimi", "unavailable");
    let cfg = kimi_at(&mock);
    let file = write_request(cfg.dir.path(), &agent_request());
    let out = check_request(&cfg, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc = json(&out);
    assert_eq!(doc["verdict"], "provider");
    assert_eq!(doc["ping"]["verdict"], "unavailable");
    assert!(doc["requests"][0]["live"].is_null());
    assert!(
        doc["requests"][0]["not_sent"]
            .as_str()
            .unwrap()
            .contains("ping failed")
    );
    assert_eq!(chat_requests(&mock).len(), 1);
}

#[test]
fn a_request_the_provider_answers_and_the_lint_passes_exits_0() {
    let mock = mock("kimi", "tool_schema_rejected");
    let cfg = kimi_at(&mock);
    let file = write_request(cfg.dir.path(), &agent_request());
    let out = check_request(&cfg, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc = json(&out);
    assert_eq!(doc["verdict"], "ok");
    assert_eq!(doc["requests"][0]["live"]["verdict"], "up");
    // The request went out as given.
    let sent = &chat_requests(&mock)[1].body;
    assert_eq!(sent["tools"].as_array().unwrap().len(), 21);
    assert_eq!(sent["messages"], agent_request()["messages"]);
}

#[test]
fn human_output_announces_the_narrowing_and_its_cost_before_spending() {
    let mock = mock("kimi", "tool_schema_500");
    let cfg = kimi_at(&mock);
    let file = write_request(cfg.dir.path(), &agent_request_with_union_tool());
    let out = isdown(
        &[
            "check",
            "kimi",
            "--request",
            &file,
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("MOONSHOT_API_KEY", KEY)],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("narrowing it down with up to 10 more requests"),
        "{err}"
    );
    assert!(err.contains("prompt tokens each"), "{err}");
    let text = stdout(&out);
    assert!(
        text.contains("tools[20].function.parameters.properties.params"),
        "{text}"
    );
    assert!(text.contains("YOUR REQUEST — kimi is up"), "{text}");
    assert!(!text.contains("Hd93KfLq0PzWm27XcVb8") && !err.contains("Hd93KfLq0PzWm27XcVb8"));
}

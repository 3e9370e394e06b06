//! The request lint against a corpus of requests, `tests/lint_corpus/*.json`: each file holds a
//! request, the provider it is sent to, and exactly the findings expected (path and rule). A
//! finding that is not expected fails the test as surely as a missing one: valid requests
//! (`valid-*`) must come out clean, because a false finding sends users after a problem they do
//! not have. The corpus covers every rule, agent-shaped requests with 20+ tools, and histories
//! near the context window. Beside it, the gateway's request fixes are checked against the
//! lint: both tables describe the same providers and must not contradict each other.

use std::path::Path;

use isdown::config::Config;
use isdown::gateway::fixes::{FixTable, fixed};
use isdown::lint::{Rule, Target, Wire, lint, lint_map};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    provider: String,
    #[serde(default)]
    wire: Option<String>,
    request: Value,
    findings: Vec<Expected>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
#[serde(deny_unknown_fields)]
struct Expected {
    path: String,
    rule: String,
}

fn corpus() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint_corpus");
    let mut cases: Vec<(String, Case)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let case: Case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

fn run(case: &Case) -> Vec<Expected> {
    let target = Target {
        provider: &case.provider,
        wire: match case.wire.as_deref() {
            Some("messages") => Wire::Messages,
            _ => Wire::Chat,
        },
        ..Target::default()
    };
    let mut found: Vec<Expected> = lint(&case.request, &target)
        .into_iter()
        .map(|f| Expected {
            path: f.path,
            rule: f.rule.as_str().to_owned(),
        })
        .collect();
    found.sort();
    found
}

#[test]
fn every_corpus_request_gets_exactly_its_expected_findings() {
    let mut failures = Vec::new();
    for (name, case) in corpus() {
        let mut want = case.findings.clone();
        want.sort();
        let got = run(&case);
        if got != want {
            failures.push(format!(
                "{name} ({}):\n  want {want:?}\n  got  {got:?}",
                case.description
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_corpus_covers_every_rule_agents_and_the_window_edge() {
    let cases = corpus();
    let bad = cases.iter().filter(|(n, _)| n.starts_with("bad-")).count();
    let valid = cases
        .iter()
        .filter(|(n, _)| n.starts_with("valid-"))
        .count();
    assert!(bad >= 25, "{bad} bad requests");
    assert!(valid >= 8, "{valid} valid requests");
    for (name, case) in &cases {
        assert!(
            name.starts_with("valid-") == case.findings.is_empty(),
            "{name}: valid-* files expect no finding, bad-* files at least one"
        );
    }
    // Every rule that reading a request can find (not the live-only one) has a case.
    for rule in Rule::ALL {
        if rule == Rule::ProviderRejectsPart {
            continue;
        }
        assert!(
            cases
                .iter()
                .any(|(_, c)| c.findings.iter().any(|f| f.rule == rule.as_str())),
            "no corpus case for {rule}"
        );
    }
    let agent_shaped = cases
        .iter()
        .filter(|(_, c)| {
            c.request
                .get("tools")
                .and_then(Value::as_array)
                .is_some_and(|t| t.len() >= 20)
                && c.request
                    .get("messages")
                    .and_then(Value::as_array)
                    .is_some_and(|m| m.len() >= 8)
        })
        .count();
    assert!(agent_shaped >= 5, "{agent_shaped} agent-shaped requests");
    assert!(
        cases
            .iter()
            .any(|(n, _)| n.starts_with("valid-near-window"))
    );
}

/// The fixes never strip what the request lint says a target requires, for any provider of the
/// built-in catalog.
#[test]
fn fixes_never_remove_a_field_the_lint_says_the_target_requires() {
    let table = FixTable::embedded().unwrap();
    let request = json!({
        "model": "deepseek-v4-flash",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "reasoning_content": "I should call f.",
             "tool_calls": [{"id": "c1", "type": "function",
                             "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
    });
    let Value::Object(request) = request else {
        unreachable!("a JSON object literal")
    };
    let providers = Config::from_toml("", "test", &|_| None).unwrap().providers;
    for provider in &providers {
        let target = Target {
            provider: &provider.id,
            ..Target::default()
        };
        let fixed = fixed(&table.for_provider(&provider.id), &request);
        let findings = lint_map(&fixed, &target);
        assert!(
            findings.iter().all(|f| f.rule != Rule::FieldRequired),
            "{}: {findings:?}",
            provider.id
        );
    }
}

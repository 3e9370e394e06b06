//! Unit tests of the lint's parts; the corpus of whole requests with their expected findings is
//! `tests/lint_corpus.rs`.

use serde_json::{Value, json};

use super::{Finding, Rule, Target, Wire, lint};

fn rules_at(findings: &[Finding]) -> Vec<(String, &'static str)> {
    findings
        .iter()
        .map(|f| (f.path.clone(), f.rule.as_str()))
        .collect()
}

fn target(provider: &str) -> Target<'_> {
    Target {
        provider,
        ..Target::default()
    }
}

#[test]
fn rule_table_is_in_declaration_order_and_names_round_trip() {
    for (i, rule) in Rule::ALL.iter().enumerate() {
        assert_eq!(*rule as usize, i, "{rule}");
        assert_eq!(Rule::parse(rule.as_str()), Some(*rule));
    }
}

#[test]
fn a_minimal_valid_request_has_no_findings() {
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    assert!(lint(&request, &target("openai")).is_empty());
}

#[test]
fn a_body_that_is_not_an_object_is_one_finding_at_the_root() {
    let findings = lint(&json!([1, 2]), &target("openai"));
    assert_eq!(
        rules_at(&findings),
        vec![("$".into(), "request_not_object")]
    );
}

#[test]
fn findings_carry_message_and_fix_without_unfilled_placeholders() {
    let request = json!({
        "model": "kimi-k2.6", "temperature": 0.3,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "read file", "parameters": {"type": "object"}}}],
    });
    let findings = lint(&request, &target("kimi"));
    assert_eq!(
        rules_at(&findings),
        vec![
            ("temperature".into(), "parameter_value"),
            ("tools[0].function.name".into(), "tool_name_pattern"),
        ]
    );
    for finding in &findings {
        for text in [&finding.message, &finding.fix] {
            assert!(!text.is_empty());
            for placeholder in ["{value}", "{expected}", "{detail}"] {
                assert!(!text.contains(placeholder), "{text}");
            }
        }
    }
    assert!(
        findings[0].message.contains("0.3"),
        "{}",
        findings[0].message
    );
    assert!(findings[0].fix.contains('1'), "{}", findings[0].fix);
}

#[test]
fn anthropic_wire_tools_and_tool_use_pairing_are_read_in_their_own_shape() {
    let request = json!({
        "model": "claude-sonnet-4-6", "max_tokens": 1024,
        "tools": [
            {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        ],
    });
    let wire = Target {
        provider: "anthropic",
        wire: Wire::Messages,
        ..Target::default()
    };
    assert!(
        lint(&request, &wire).is_empty(),
        "{:?}",
        lint(&request, &wire)
    );
    let mut broken = request.clone();
    broken["messages"][2] = json!({"role": "user", "content": "no result"});
    assert_eq!(
        rules_at(&lint(&broken, &wire)),
        vec![("messages[1].content[0]".into(), "tool_call_unanswered")]
    );
}

#[test]
fn deep_schemas_stop_at_the_depth_bound_without_overflow() {
    let mut schema = json!({"type": "object"});
    for _ in 0..200 {
        schema = json!({"type": "object", "properties": {"x": schema}});
    }
    let request: Value = json!({
        "model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "deep", "parameters": schema}}],
    });
    assert!(lint(&request, &target("openai")).is_empty());
}

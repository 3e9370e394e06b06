//! `isdown check` against the mock provider: every scripted fault comes out as the right
//! verdict, blame, exit code and `--json` fields. The real binary, real HTTP, loopback only.

mod support;

use std::time::Duration;

use isdown::mock::MockOptions;
use serde_json::Value;
use support::*;

const KEY: &str = "sk-test-Zq8xVb2Nw4Lk7Pm1Rt5Yc3";

struct Run {
    code: i32,
    doc: Value,
    raw: String,
}

impl Run {
    fn check(&self) -> &Value {
        &self.doc["checks"][0]
    }
}

/// Runs `check target` against a mock in `style` with `scenario`; an `ok` witness proves the
/// network works, so transport failures are blamed on the target.
fn check(style: &str, scenario: &str, probe: &str) -> Run {
    let target = mock(style, scenario);
    let witness = mock("openai", "ok");
    let base = if style == "anthropic" {
        target.url()
    } else {
        target.v1()
    };
    let wire = if style == "anthropic" {
        "anthropic"
    } else {
        "openai"
    };
    let cfg = config(&format!(
        "{}\n{}\n[check]\nwitnesses = [\"witness\"]\n",
        provider_toml("target", &base, wire, "TARGET_KEY"),
        provider_toml("witness", &witness.v1(), "openai", "WITNESS_KEY"),
    ));
    let cfg_path = cfg.path.to_str().unwrap();
    let out = isdown(
        &[
            "check",
            "target",
            "--json",
            "--probe",
            probe,
            "--timeout",
            "2s",
            "--config",
            cfg_path,
        ],
        &[("TARGET_KEY", KEY)],
    );
    let raw = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!raw.contains("Zq8xVb2Nw4Lk7Pm1Rt5Yc3"), "key leaked: {raw}");
    Run {
        code: out.status.code().unwrap_or(-1),
        doc: json(&out),
        raw,
    }
}

fn assert_verdict(run: &Run, verdict: &str, blame: Option<&str>, exit: i32) {
    let c = run.check();
    assert_eq!(c["verdict"], verdict, "{}", run.raw);
    match blame {
        Some(b) => assert_eq!(c["blame"], b, "{}", run.raw),
        None => assert!(c["blame"].is_null(), "{}", run.raw),
    }
    assert_eq!(run.code, exit, "{}", run.raw);
    assert!(
        !c["explanation"].as_str().unwrap_or_default().is_empty(),
        "{}",
        run.raw
    );
}

#[test]
fn healthy_chat_is_up_with_exit_0_and_every_json_field() {
    let run = check("kimi", "ok", "chat");
    assert_verdict(&run, "up", None, 0);
    let c = run.check();
    for field in [
        "provider",
        "url",
        "model",
        "probe",
        "verdict",
        "blame",
        "status",
        "retry_after_s",
        "latency_ms",
        "ttft_ms",
        "explanation",
        "advice",
    ] {
        assert!(c.get(field).is_some(), "missing {field}: {}", run.raw);
    }
    assert_eq!(c["provider"], "target");
    assert_eq!(c["probe"], "chat");
    assert_eq!(c["model"], "test-model");
    assert_eq!(c["status"], 200);
    assert!(c["url"].as_str().unwrap().ends_with("/v1/chat/completions"));
    assert!(c["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(c["timings"]["connect_ms"].as_f64().is_some());
    assert!(run.doc["summary"].as_str().unwrap().contains("up"));
}

#[test]
fn healthy_stream_reports_time_to_first_token() {
    let run = check("openai", "ok", "stream");
    assert_verdict(&run, "up", None, 0);
    assert!(run.check()["ttft_ms"].as_f64().is_some(), "{}", run.raw);
}

#[test]
fn healthy_tool_call_is_up() {
    assert_verdict(&check("openai", "ok", "tools"), "up", None, 0);
}

#[test]
fn anthropic_messages_api_healthy_stream_is_up() {
    assert_verdict(&check("anthropic", "ok", "stream"), "up", None, 0);
    assert_verdict(&check("anthropic", "ok", "tools"), "up", None, 0);
}

#[test]
fn slow_answer_is_degraded_and_still_exit_0() {
    // degraded_after is 5 s in the test config; the mock waits 6 s before its first byte and the
    // probe deadline is raised to let it finish.
    let mock = mock_with(MockOptions {
        delay: Duration::from_secs(6),
        ..options("openai", "slow")
    });
    let cfg = config(&format!(
        "{}\n[check]\nwitnesses = []\n",
        provider_toml("target", &mock.v1(), "openai", "TARGET_KEY")
    ));
    let out = isdown(
        &[
            "check",
            "target",
            "--json",
            "--timeout",
            "20s",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("TARGET_KEY", KEY)],
    );
    let doc = json(&out);
    assert_eq!(doc["checks"][0]["verdict"], "degraded", "{}", stdout(&out));
    assert_eq!(out.status.code(), Some(0));
    assert!(doc["summary"].as_str().unwrap().contains("SLOW"));
}

#[test]
fn hanging_provider_is_a_timeout_blamed_on_the_provider() {
    let run = check("openai", "hang", "chat");
    assert_verdict(&run, "timeout", Some("provider"), 1);
    assert!(run.check()["status"].is_null());
    assert!(
        run.doc["summary"]
            .as_str()
            .unwrap()
            .contains("Your network is fine")
    );
}

#[test]
fn connection_reset_is_network_blamed_on_the_provider_when_others_answer() {
    let run = check("openai", "reset", "chat");
    assert_verdict(&run, "network", Some("provider"), 1);
}

#[test]
fn rate_limit_with_retry_after_is_the_accounts_problem_with_the_wait() {
    for style in ["kimi", "openai", "anthropic", "zhipu", "dashscope"] {
        let run = check(style, "rate_limited", "chat");
        assert_verdict(&run, "rate_limited", Some("account"), 3);
        assert_eq!(run.check()["status"], 429, "{style}");
        assert_eq!(run.check()["retry_after_s"], 2.0, "{style}: {}", run.raw);
        assert!(
            run.doc["summary"]
                .as_str()
                .unwrap()
                .contains("not an outage")
        );
    }
}

#[test]
fn rate_limit_without_a_wait_has_null_retry_after() {
    let run = check("kimi", "rate_limited_no_retry_after", "chat");
    assert_verdict(&run, "rate_limited", Some("account"), 3);
    assert!(run.check()["retry_after_s"].is_null(), "{}", run.raw);
}

#[test]
fn billing_errors_are_quota_exhausted_in_every_style() {
    for style in [
        "kimi",
        "deepseek",
        "openai",
        "anthropic",
        "zhipu",
        "dashscope",
        "openrouter",
    ] {
        let run = check(style, "quota_exhausted", "chat");
        assert_verdict(&run, "quota_exhausted", Some("account"), 3);
    }
}

#[test]
fn rejected_key_is_auth_failed_on_the_account() {
    for style in [
        "kimi",
        "deepseek",
        "openai",
        "anthropic",
        "zhipu",
        "dashscope",
        "openrouter",
    ] {
        assert_verdict(
            &check(style, "auth_failed", "chat"),
            "auth_failed",
            Some("account"),
            3,
        );
    }
}

#[test]
fn request_side_errors_are_blamed_on_the_request() {
    for (scenario, verdict) in [
        ("model_not_found", "model_not_found"),
        ("context_too_long", "context_too_long"),
        ("content_filtered", "content_filtered"),
        ("bad_request", "bad_request"),
    ] {
        for style in ["kimi", "deepseek", "zhipu", "dashscope", "anthropic"] {
            let run = check(style, scenario, "chat");
            assert_verdict(&run, verdict, Some("request"), 3);
        }
    }
}

#[test]
fn provider_side_errors_are_blamed_on_the_provider_with_exit_1() {
    for (scenario, verdict) in [
        ("overloaded", "overloaded"),
        ("server_error", "server_error"),
        ("unavailable", "unavailable"),
        ("malformed", "malformed"),
        ("empty_choices", "malformed"),
    ] {
        for style in ["kimi", "openai", "anthropic", "zhipu"] {
            let run = check(style, scenario, "chat");
            assert_verdict(&run, verdict, Some("provider"), 1);
        }
    }
}

#[test]
fn moonshot_engine_overload_429_is_overloaded_not_rate_limited() {
    let run = check("kimi", "overloaded", "chat");
    assert_verdict(&run, "overloaded", Some("provider"), 1);
    assert_eq!(run.check()["status"], 429);
    assert!(run.doc["summary"].as_str().unwrap().contains("OVERLOADED"));
}

#[test]
fn html_gateway_page_is_unavailable_and_never_echoed() {
    let run = check("kimi", "html_504", "chat");
    assert_verdict(&run, "unavailable", Some("provider"), 1);
    assert_eq!(run.check()["status"], 504);
    assert!(!run.raw.contains("<html"), "{}", run.raw);
    assert!(run.doc["summary"].as_str().unwrap().contains("DOWN — 504"));
}

#[test]
fn error_object_inside_a_200_is_classified_by_the_error() {
    let run = check("openrouter", "error_in_200", "chat");
    let c = run.check();
    assert_ne!(c["verdict"], "up", "{}", run.raw);
    assert_eq!(c["status"], 200);
}

#[test]
fn dropped_or_broken_tool_calls_are_malformed() {
    for scenario in ["no_tool_call", "bad_tool_args"] {
        let run = check("openai", scenario, "tools");
        assert_verdict(&run, "malformed", Some("provider"), 1);
    }
}

#[test]
fn stream_cut_before_done_is_malformed_not_up() {
    for style in ["openai", "kimi", "anthropic"] {
        let run = check(style, "stream_cut", "stream");
        assert_verdict(&run, "malformed", Some("provider"), 1);
    }
}

#[test]
fn stalled_stream_is_a_timeout() {
    let run = check("openai", "stream_stall", "stream");
    assert_verdict(&run, "timeout", Some("provider"), 1);
}

#[test]
fn error_event_inside_a_200_stream_is_classified_by_the_error() {
    let run = check("openai", "stream_error", "stream");
    assert_verdict(&run, "server_error", Some("provider"), 1);
    let run = check("anthropic", "stream_error", "stream");
    assert_verdict(&run, "overloaded", Some("provider"), 1);
    let run = check("zhipu", "stream_error", "stream");
    assert_verdict(&run, "server_error", Some("provider"), 1);
}

#[test]
fn keep_alives_without_a_first_token_time_out() {
    let run = check("deepseek", "keepalive_only", "stream");
    assert_verdict(&run, "timeout", Some("provider"), 1);
    let explanation = run.check()["explanation"].as_str().unwrap().to_lowercase();
    assert!(explanation.contains("keep-alive"), "{explanation}");
}

#[test]
fn flapping_provider_alternates_between_up_and_unavailable() {
    let run = check("openai", "flapping", "all");
    let verdicts: Vec<&str> = run.doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["up", "unavailable", "up", "unavailable"],
        "{}",
        run.raw
    );
    assert_eq!(run.code, 1);
}

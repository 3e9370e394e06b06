//! `isdown check` as a user meets it: correlation ("is it you or them"), keys that never leak,
//! config errors with file/line/field, reachability without keys, human output, `--url`, `init`.

mod support;

use std::time::Duration;

use support::*;

const KEY: &str = "sk-test-Hd93KfLq0PzWm27XcVb8";
const KEY_TAIL: &str = "Hd93KfLq0PzWm27XcVb8";

/// A loopback address where nothing listens: connections are refused at once. Port 1 (tcpmux)
/// is never bound here, unlike a freed ephemeral port that a parallel test's mock may take.
fn closed_port_url() -> String {
    "http://127.0.0.1:1/v1".into()
}

#[test]
fn one_provider_down_while_another_answers_blames_the_provider_and_says_the_network_is_fine() {
    let down = mock("kimi", "unavailable");
    let up = mock("deepseek", "ok");
    let cfg = config(&format!(
        "{}{}[check]\nwitnesses = []\n",
        provider_toml("kimi", &down.v1(), "openai", "K1"),
        provider_toml("deepseek", &up.v1(), "openai", "K2"),
    ));
    let out = isdown(
        &[
            "check",
            "kimi",
            "deepseek",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("K1", KEY), ("K2", KEY)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc = json(&out);
    assert_eq!(doc["checks"][0]["verdict"], "unavailable");
    assert_eq!(doc["checks"][0]["blame"], "provider");
    assert_eq!(doc["checks"][1]["verdict"], "up");
    let summary = doc["summary"].as_str().unwrap();
    assert!(summary.contains("kimi is DOWN — 503"), "{summary}");
    assert!(
        summary.contains("Your network is fine: deepseek answered in"),
        "{summary}"
    );
    assert!(
        summary.ends_with("deepseek answers completions: fail over to it."),
        "{summary}"
    );
}

#[test]
fn unreachable_provider_with_a_reachable_witness_is_blamed_on_the_provider() {
    let witness = mock("openai", "ok");
    let cfg = config(&format!(
        "{}{}[check]\nwitnesses = [\"witness\"]\n",
        provider_toml("kimi", &closed_port_url(), "openai", "K1"),
        provider_toml("witness", &witness.v1(), "openai", "K2"),
    ));
    let out = isdown(
        &[
            "check",
            "kimi",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("K1", KEY)],
    );
    let doc = json(&out);
    assert_eq!(doc["checks"][0]["verdict"], "network", "{doc}");
    assert_eq!(doc["checks"][0]["blame"], "provider");
    assert_eq!(doc["witnesses"][0]["provider"], "witness");
    assert_eq!(out.status.code(), Some(1));
    // The witness's probe was a key-less reachability GET.
    let requests = witness.requests();
    let first = &requests[0];
    assert_eq!(first.method, "GET");
    assert!(first.path.ends_with("/models"));
}

#[test]
fn everything_unreachable_is_blamed_on_the_network_with_exit_3() {
    let cfg = config(&format!(
        "{}{}{}[check]\nwitnesses = [\"c\"]\n",
        provider_toml("a", &closed_port_url(), "openai", "K1"),
        provider_toml("b", &closed_port_url(), "openai", "K2"),
        provider_toml("c", &closed_port_url(), "openai", "K3"),
    ));
    let out = isdown(
        &[
            "check",
            "a",
            "b",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("K1", KEY)],
    );
    let doc = json(&out);
    for check in doc["checks"].as_array().unwrap() {
        assert_eq!(check["verdict"], "network", "{doc}");
        assert_eq!(check["blame"], "network", "{doc}");
    }
    assert_eq!(out.status.code(), Some(3));
    let summary = doc["summary"].as_str().unwrap();
    assert!(summary.starts_with("Your network looks down"), "{summary}");
    assert!(summary.contains("all 3"), "{summary}");
}

#[test]
fn keys_reach_the_provider_but_never_any_output() {
    // The mock echoes nothing secret itself; the classifier must also scrub what providers say.
    let mock = mock("openai", "auth_failed");
    let cfg = config(&format!(
        "{}[check]\nwitnesses = []\n",
        provider_toml("p", &mock.v1(), "openai", "P_KEY")
    ));
    for format in [&["--json"][..], &[][..]] {
        let mut args = vec![
            "check",
            "p",
            "--probe",
            "all",
            "--config",
            cfg.path.to_str().unwrap(),
        ];
        args.extend_from_slice(format);
        let out = isdown(&args, &[("P_KEY", KEY), ("ISDOWN_LOG", "trace")]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(KEY_TAIL), "key leaked: {all}");
        assert_eq!(out.status.code(), Some(3), "{all}");
    }
    let requests = mock.requests();
    let auth = requests[0]
        .headers
        .get("authorization")
        .expect("authorization header recorded");
    assert_eq!(*auth, format!("Bearer {KEY}"));
}

#[test]
fn probes_send_no_sampling_parameters() {
    let mock = mock("kimi", "ok");
    let cfg = config(&format!(
        "{}[check]\nwitnesses = []\n",
        provider_toml("kimi", &mock.v1(), "openai", "K")
    ));
    let out = isdown(
        &[
            "check",
            "kimi",
            "--probe",
            "all",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("K", KEY)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let requests = mock.requests();
    let posts: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3);
    for post in posts {
        let body = &post.body;
        assert!(
            body.get("temperature").is_none() && body.get("top_p").is_none(),
            "{body}"
        );
        assert!(body["max_tokens"].as_u64().unwrap() <= 256);
    }
}

#[test]
fn without_a_key_only_reachability_runs_and_the_summary_says_so() {
    let mock = mock("openai", "ok");
    let cfg = config(&format!(
        "{}[check]\nwitnesses = []\n",
        provider_toml("p", &mock.v1(), "openai", "UNSET_KEY_VAR")
    ));
    let out = isdown(
        &[
            "check",
            "p",
            "--probe",
            "chat",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc = json(&out);
    assert_eq!(doc["checks"].as_array().unwrap().len(), 1);
    assert_eq!(doc["checks"][0]["probe"], "reachability");
    assert_eq!(doc["checks"][0]["verdict"], "up");
    let summary = doc["summary"].as_str().unwrap();
    assert!(summary.contains("reachability only"), "{summary}");
    assert!(summary.contains("UNSET_KEY_VAR is not set"), "{summary}");
}

#[test]
fn reachability_without_a_key_treats_401_as_proof_the_api_answers() {
    let mock = mock("kimi", "auth_failed");
    let cfg = config(&format!(
        "{}[check]\nwitnesses = []\n",
        provider_toml("kimi", &mock.v1(), "openai", "UNSET_KEY_VAR")
    ));
    let out = isdown(
        &[
            "check",
            "kimi",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[],
    );
    let doc = json(&out);
    assert_eq!(doc["checks"][0]["verdict"], "up", "{doc}");
    assert_eq!(doc["checks"][0]["status"], 401);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn providers_are_checked_concurrently_not_one_after_another() {
    // Three providers behind one silent mock, and a deadline no test would wait for: one after
    // another, the second request could only arrive after the first timed out, an hour later.
    // Concurrently, all three are in flight at once.
    let mock = mock("openai", "hang");
    let mut toml = String::new();
    for i in 0..3 {
        toml.push_str(&provider_toml(&format!("p{i}"), &mock.v1(), "openai", "K"));
    }
    toml.push_str("[check]\nwitnesses = []\n");
    let cfg = config(&toml);
    let mut check = std::process::Command::new(BIN)
        .args([
            "check",
            "p0",
            "p1",
            "p2",
            "--json",
            "--timeout",
            "1h",
            "--config",
        ])
        .arg(&cfg.path)
        .env_clear()
        .env("K", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_received(&mock, 3, Duration::from_secs(30));
    assert_eq!(mock.requests().len(), 3, "one request per provider");
    assert!(
        check.try_wait().unwrap().is_none(),
        "still waiting on all three"
    );
    check.kill().unwrap();
    check.wait().unwrap();
}

#[test]
fn broken_config_exits_2_naming_file_line_and_field() {
    let cfg = config("[providers.kimi]\nprobe_model = \"kimi-k2.6\"\ndegraded_after = \"soon\"\n");
    let out = isdown(
        &["check", "kimi", "--config", cfg.path.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("isdown.toml:3:"), "{err}");
    assert!(err.contains("providers.kimi.degraded_after"), "{err}");
}

#[test]
fn impossible_durations_exit_2_with_their_place_and_never_panic() {
    for (toml, line, field, says) in [
        (
            "[monitor]\ninterval = \"1ns\"\n",
            2,
            "monitor.interval",
            "too short",
        ),
        (
            "[monitor]\ninterval = \"500000000000y\"\n",
            2,
            "monitor.interval",
            "too long",
        ),
        (
            "[monitor]\ntimeout = \"0s\"\n",
            2,
            "monitor.timeout",
            "zero",
        ),
        (
            "[gateway.timeouts]\ntotal = \"200y\"\n",
            2,
            "gateway.timeouts.total",
            "too long",
        ),
    ] {
        let cfg = config(toml);
        let out = isdown(&["check", "--config", cfg.path.to_str().unwrap()], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{toml}: {err}");
        assert!(
            err.contains(&format!("isdown.toml:{line}:")),
            "{toml}: {err}"
        );
        assert!(err.contains(field) && err.contains(says), "{toml}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    for flag in ["0s", "580000000000y", "2h"] {
        let out = isdown(&["check", "--timeout", flag], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--timeout {flag}: {err}");
        assert!(err.contains("--timeout"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_key_with_a_control_character_is_a_config_error_not_an_outage() {
    let mock = mock("openai", "ok");
    let cfg = config(&provider_toml("local", &mock.v1(), "openai", "LOCAL_KEY"));
    // Surrounding white space is trimmed (a trailing newline from a file is harmless); inside a
    // key, a control character is a broken paste.
    for key in ["vllm\u{1}token", "sk-pasted\nkey", "tab\tinside-key"] {
        let out = isdown(
            &["check", "local", "--config", cfg.path.to_str().unwrap()],
            &[("LOCAL_KEY", key)],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{key:?}: {err}");
        assert!(
            err.contains("LOCAL_KEY") && err.contains("control character"),
            "{err}"
        );
        assert!(err.contains("api_key_env"), "{err}");
        assert!(
            !err.contains("vllm") && !err.contains("pasted"),
            "the key is never echoed: {err}"
        );
        assert!(!stdout(&out).contains("network"), "not a network verdict");
    }
}

#[test]
fn unknown_provider_exits_2_and_lists_the_known_ones() {
    let cfg = config("[check]\nwitnesses = []\n");
    let out = isdown(
        &["check", "kimmi", "--config", cfg.path.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("unknown provider \"kimmi\"") && err.contains("kimi, kimi-cn"),
        "{err}"
    );
}

#[test]
fn human_output_is_a_plain_table_with_advice_and_a_summary_when_not_a_tty() {
    let mock = mock("kimi", "rate_limited");
    let cfg = config(&format!(
        "{}[check]\nwitnesses = []\n",
        provider_toml("kimi", &mock.v1(), "openai", "K")
    ));
    let out = isdown(
        &["check", "kimi", "--config", cfg.path.to_str().unwrap()],
        &[("K", KEY)],
    );
    let text = stdout(&out);
    assert!(text.starts_with("PROVIDER"), "{text}");
    assert!(
        text.contains("rate_limited") && text.contains("→"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "colour codes outside a terminal: {text:?}"
    );
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("not an outage"),
        "{text}"
    );
    assert!(
        stderr(&out).is_empty(),
        "spinner or logs on a non-TTY stderr: {}",
        stderr(&out)
    );
}

#[test]
fn adhoc_url_checks_any_openai_compatible_endpoint() {
    let mock = mock("openai", "ok");
    let cfg = config("[check]\nwitnesses = []\n");
    let out = isdown(
        &[
            "check",
            "--url",
            &mock.v1(),
            "--model",
            "my-model",
            "--key-env",
            "MY_KEY",
            "--probe",
            "stream",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("MY_KEY", KEY)],
    );
    let doc = json(&out);
    assert_eq!(doc["checks"][0]["verdict"], "up", "{doc}");
    assert_eq!(doc["checks"][0]["model"], "my-model");
    let requests = mock.requests();
    assert_eq!(requests[0].body["model"], "my-model");
}

#[test]
fn adhoc_url_in_anthropic_style_uses_the_messages_api() {
    let mock = mock("anthropic", "ok");
    let cfg = config("[check]\nwitnesses = []\n");
    let out = isdown(
        &[
            "check",
            "--url",
            &mock.url(),
            "--model",
            "claude-x",
            "--key-env",
            "AK",
            "--style",
            "anthropic",
            "--json",
            "--config",
            cfg.path.to_str().unwrap(),
        ],
        &[("AK", KEY)],
    );
    assert_eq!(json(&out)["checks"][0]["verdict"], "up");
    let requests = mock.requests();
    let first = &requests[0];
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.headers["x-api-key"], KEY);
    assert_eq!(first.headers["anthropic-version"], "2023-06-01");
}

#[test]
fn init_writes_a_config_that_check_accepts_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isdown.toml");
    let path = path.to_str().unwrap();
    let out = isdown(&["init", "--path", path], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = isdown(&["init", "--path", path], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"));
    // The written file parses: an unknown provider is the only complaint.
    let out = isdown(&["check", "nope", "--config", path], &[]);
    assert!(
        stderr(&out).contains("unknown provider"),
        "{}",
        stderr(&out)
    );
}

//! `isdown batch` against the real `isdown serve` in front of a mock provider: submit a JSONL
//! file and wait for it, list, show, download the results, and the words a failed batch gets.

mod support;

use support::*;

const KEY: &str = "gw-cli-key-5Tg8";

fn lines(n: usize, model: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"custom_id\":\"row-{i}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\
                 \"body\":{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}}}\n"
            )
        })
        .collect()
}

fn setup() -> (MockServer, Serve, ConfigFile) {
    let mock = mock("openai", "ok");
    let config = config(&format!(
        "{}[[monitors]]\nprovider = \"a\"\ninterval = \"1h\"\n\
         [[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"a\" }}]\n\
         [gateway]\nclient_keys_env = [\"GW_KEY\"]\n",
        provider_toml("a", &mock.v1(), "openai", "KEY_A"),
    ));
    let serve = Serve::start(
        &config.path,
        &config.dir.path().join("data"),
        &[("GW_KEY", KEY), ("KEY_A", "sk-upstream-a-Qw8ErTy2UiOp")],
    );
    (mock, serve, config)
}

fn batch(serve: &Serve, args: &[&str]) -> std::process::Output {
    let mut all = vec!["batch", "--url", serve.url.as_str()];
    all.extend_from_slice(args);
    isdown(&all, &[("ISDOWN_GATEWAY_KEY", KEY)])
}

#[test]
fn submit_wait_list_status_and_results() {
    let (_mock, serve, config) = setup();
    let file = config.dir.path().join("requests.jsonl");
    std::fs::write(&file, lines(25, "agent")).unwrap();
    let out = batch(
        &serve,
        &["submit", file.to_str().unwrap(), "--wait", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let done = json(&out);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["request_counts"]["completed"], 25);
    let id = done["id"].as_str().unwrap();

    let out = batch(&serve, &["ls"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(table.contains(id) && table.contains("completed"), "{table}");

    let out = batch(&serve, &["status", id]);
    let words = stdout(&out);
    assert!(
        words.contains("completed: 25 of 25 lines done, 0 failed"),
        "{words}"
    );
    assert!(
        words.contains(&format!("isdown batch results {id}")),
        "{words}"
    );

    let results = config.dir.path().join("results.jsonl");
    let out = batch(
        &serve,
        &["results", id, "--output", results.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&results).unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["custom_id"].to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25);

    // No error file: said in words, exit code 2.
    let out = batch(&serve, &["results", id, "--errors"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no error file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_batch_names_its_bad_line_and_exits_1() {
    let (_mock, serve, config) = setup();
    let file = config.dir.path().join("bad.jsonl");
    std::fs::write(&file, format!("{}{{oops\n", lines(2, "agent"))).unwrap();
    let out = batch(&serve, &["submit", file.to_str().unwrap(), "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let words = stdout(&out);
    assert!(words.contains("failed: 0 of 0 lines done"), "{words}");
    assert!(
        words.contains("line 3: This line is not parseable as valid JSON."),
        "{words}"
    );
}

#[test]
fn a_wrong_key_is_an_error_not_a_crash() {
    let (_mock, serve, _config) = setup();
    let out = isdown(
        &["batch", "--url", &serve.url, "ls"],
        &[("ISDOWN_GATEWAY_KEY", "not-the-key-123")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("401"), "{err}");
    assert!(
        !err.contains("not-the-key-123"),
        "the key is never printed: {err}"
    );
}

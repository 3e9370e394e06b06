//! Secrets stay secret, end to end: providers that quote the key they received back in their
//! error (the mock's `echo_key` scenario) with keys of several shapes — one a pattern would
//! catch, and several it would not (letters only, short, dotted) — and the real `isdown serve`
//! probing them, alerting a webhook and serving the gateway. No key, client key, admin token or
//! channel secret may appear in any page, JSON, feed, badge, metric, gateway answer, webhook
//! body, log line or byte of the database.

mod support;

use std::time::Duration;

use base64::Engine;
use support::receiver::{Answer, Receiver};
use support::*;

/// (variable, value): provider keys of several shapes and every other kind of secret.
const SECRETS: [(&str, &str); 6] = [
    ("KEY_KIMI", "sk-proj-Abc123Def456Ghi789"),
    ("KEY_DEEPSEEK", "internalproxykey"),
    ("KEY_GLM", "Tok.en-x"),
    ("GW_KEY", "clientsecretword"),
    ("ADMIN_TOKEN", "adminonlytoken"),
    ("HOOK_SECRET", "hooksigningsecret"),
];

fn forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
    ]
}

fn assert_clean(place: &str, text: &str) {
    for (_, secret) in SECRETS {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{place} leaks a secret ({form}):\n{text}"
            );
        }
    }
}

#[test]
fn keys_echoed_by_providers_reach_no_output_and_no_table() {
    let mocks: Vec<(&str, MockServer)> = ["kimi", "deepseek", "glm"]
        .into_iter()
        .map(|id| (id, mock("kimi", "echo_key")))
        .collect();
    let hook = Receiver::start(Answer::Accept);
    let mut text = format!(
        "[serve]\nadmin_token_env = \"ADMIN_TOKEN\"\n\
         [monitor]\ninterval = \"1s\"\nconfirm_after = \"200ms\"\ntimeout = \"1s\"\n\
         [alerting]\ngroup_window = \"1s\"\n\
         [alerts.hook]\nkind = \"webhook\"\nurl = \"{}\"\nsecret_env = \"HOOK_SECRET\"\n\
         [gateway]\nclient_keys_env = [\"GW_KEY\"]\n\
         [[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"kimi\" }}, \
         {{ provider = \"deepseek\" }}, {{ provider = \"glm\" }}]\n",
        hook.url("/hook")
    );
    for (id, mock) in &mocks {
        text.push_str(&provider_toml(
            id,
            &mock.v1(),
            "openai",
            &format!("KEY_{}", id.to_uppercase()),
        ));
        text.push_str(&format!(
            "[[monitors]]\nprovider = \"{id}\"\nprobes = [\"chat\"]\n"
        ));
    }
    let cfg = config(&text);
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    // Everything isdown logs, at its most talkative.
    let env: Vec<(&str, &str)> = SECRETS
        .into_iter()
        .chain([("ISDOWN_LOG", "debug")])
        .collect();
    let serve = Serve::start_logged(&cfg.path, &data.path().join("db"), &env, &log);
    let base = serve.url.clone();

    // Every provider rejects its key, quoting it: three setup-problem incidents and an alert.
    let incidents = eventually(Duration::from_secs(30), "three incidents", || {
        let (_, body) = get(&format!("{base}/api/v1/incidents?state=open"));
        let list: serde_json::Value = serde_json::from_str(&body).ok()?;
        let ids: Vec<i64> = list["incidents"]
            .as_array()?
            .iter()
            .filter_map(|i| i["id"].as_i64())
            .collect();
        (ids.len() == 3).then_some(ids)
    });
    hook.wait_for(Duration::from_secs(30), "an alert", |log| {
        (!log.is_empty()).then_some(())
    });

    // The gateway tries all three; its error names each attempt and their explanations.
    let (status, gateway_error) = request(
        "POST",
        &format!("{base}/v1/chat/completions"),
        r#"{"model":"agent","messages":[{"role":"user","content":"hi"}]}"#,
        &[
            ("authorization", "Bearer clientsecretword"),
            ("content-type", "application/json"),
        ],
    );
    assert_eq!(status, 502, "{gateway_error}");
    assert!(gateway_error.contains("[redacted]"), "{gateway_error}");
    assert_clean("the gateway's error", &gateway_error);

    let mut paths: Vec<String> = [
        "/",
        "/incidents",
        "/api/v1/status",
        "/api/v1/incidents",
        "/api/v2/status.json",
        "/api/v2/summary.json",
        "/api/v2/components.json",
        "/api/v2/incidents.json",
        "/api/v2/incidents/unresolved.json",
        "/feed.atom",
        "/healthz",
        "/metrics",
        "/v1/models",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    for id in ["kimi-chat", "deepseek-chat", "glm-chat"] {
        paths.push(format!("/monitors/{id}"));
        paths.push(format!("/api/v1/monitors/{id}"));
        paths.push(format!("/badge/{id}/status.svg"));
    }
    let mut saw_redaction = false;
    for path in &paths {
        let (_, body) = get(&format!("{base}{path}"));
        saw_redaction |= body.contains("[redacted]");
        assert_clean(path, &body);
    }
    assert!(saw_redaction, "the explanations are shown, redacted");
    for received in hook.log() {
        assert_clean(
            "a webhook",
            &format!("{}\n{}", received.head(), received.body),
        );
    }
    assert_eq!(incidents.len(), 3);

    assert!(serve.terminate().success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("invalid_api_key") || logged.contains("401"),
        "{logged}"
    );
    assert_clean("the log", &logged);
    for entry in std::fs::read_dir(data.path().join("db")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert_clean(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }
}

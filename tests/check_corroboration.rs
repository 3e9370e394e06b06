//! `isdown check` with what others see: the provider's official status page, OpenRouter's view
//! and a community feed, all served from 127.0.0.1 — every state shown after the verdict and in
//! `--json`, and every bad source reported as unavailable without changing a verdict.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::sources::{self, Answer, Receiver};
use support::*;

const KEY: &str = "sk-test-Zx81PqLm30VbNc7tRw4Y";
const MODEL: &str = "moonshotai/kimi-k2.6";

/// A config whose provider `kimi` is the mock, with every kind of source on `sources`.
fn setup(mock: &MockServer, sources: &Receiver) -> ConfigFile {
    config(&format!(
        "{}status_url = \"{}\"\nstatus_components = [\"Open API\"]\n\
         aggregator_model = \"{MODEL}\"\naggregator_provider = \"Moonshot AI\"\n\
         [check]\nwitnesses = []\n\
         [corroboration]\naggregator_url = \"{}\"\n\
         [[corroboration.community]]\nprovider = \"kimi\"\nname = \"r/LocalLLaMA\"\n\
         url = \"{}/feed.xml\"\nkeywords = [\"kimi down\"]\n",
        provider_toml("kimi", &mock.v1(), "openai", "K1"),
        sources.status_root(),
        sources.aggregator_root(),
        sources.url(""),
    ))
}

fn check(cfg: &ConfigFile, json: bool) -> std::process::Output {
    let mut args = vec!["check", "kimi", "--timeout", "3s", "--config"];
    args.push(cfg.path.to_str().unwrap());
    if json {
        args.push("--json");
    }
    isdown(&args, &[("K1", KEY)])
}

fn quiet(sources: &Receiver) {
    sources.summary(Answer::Json(sources::summary(
        "none",
        "operational",
        vec![],
    )));
    sources.endpoints(
        MODEL,
        Answer::Json(sources::endpoints(&[
            ("Moonshot AI", 99.6),
            ("DeepInfra", 99.9),
        ])),
    );
    sources.set(
        "/feed.xml",
        Answer::Rss(sources::rss(&[(
            "kimi down?",
            Duration::from_secs(3 * 86_400),
        )])),
    );
}

#[test]
fn each_official_state_is_shown_after_the_verdict_and_in_json() {
    let mock = mock("kimi", "unavailable");
    let sources = sources::start();
    quiet(&sources);
    let cfg = setup(&mock, &sources);
    let open = sources::incident(
        "inc1",
        "Elevated API error rates",
        "major",
        &sources::ago(Duration::from_secs(600)),
        None,
    );
    for (name, summary, indicator, words) in [
        (
            "operational",
            sources::summary("none", "operational", vec![]),
            "none",
            "Official page (127.0.0.1",
        ),
        (
            "degraded",
            sources::summary("minor", "degraded_performance", vec![]),
            "minor",
            "minor outage — Open API: degraded performance",
        ),
        (
            "major outage",
            sources::summary("critical", "major_outage", vec![]),
            "critical",
            "critical outage — Open API: major outage",
        ),
        (
            "open incident",
            sources::summary("major", "operational", vec![open.clone()]),
            "major",
            "Open incident: \"Elevated API error rates\" (major impact, investigating)",
        ),
    ] {
        sources.summary(Answer::Json(summary));
        let out = check(&cfg, true);
        // The probes decide: 503 from the provider is exit 1 whatever the page says.
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let doc = json(&out);
        assert_eq!(doc["checks"][0]["verdict"], "unavailable", "{name}");
        let official = &doc["checks"][0]["corroboration"]["official"];
        assert_eq!(official["state"], "ok", "{name}: {official}");
        assert_eq!(official["indicator"], indicator, "{name}");
        assert!(official.get("reason").is_none(), "{name}");
        let human = stdout(&check(&cfg, false));
        let others = human
            .split("What others see")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no section after the verdict: {human}"));
        assert!(others.contains(words), "{name}: {others}");
        let disagree = "Your probe fails and the official page says operational: it may be \
                        you, or the page is late.";
        assert_eq!(
            others.contains(disagree),
            name == "operational",
            "{name}: {others}"
        );
        if name == "open incident" {
            let incident = &official["incidents"][0];
            assert_eq!(incident["name"], "Elevated API error rates");
            assert_eq!(incident["impact"], "major");
            assert_eq!(incident["url"], "https://stspg.io/inc1");
            assert!(incident["started_at"].as_str().unwrap().ends_with('Z'));
            assert!(
                others.contains("The official page confirms a problem."),
                "{others}"
            );
        }
    }
}

#[test]
fn the_aggregator_and_a_community_spike_are_shown_against_their_baselines() {
    let mock = mock("kimi", "unavailable");
    let sources = sources::start();
    quiet(&sources);
    let cfg = setup(&mock, &sources);

    // Quiet: OpenRouter reaches Moonshot fine, one old post.
    let doc = json(&check(&cfg, true));
    let c = &doc["checks"][0]["corroboration"];
    assert_eq!(c["aggregator"]["state"], "ok");
    assert_eq!(c["aggregator"]["view"], "operational");
    assert_eq!(c["aggregator"]["endpoint"]["provider"], "Moonshot AI");
    assert_eq!(c["aggregator"]["endpoints"], 2);
    assert_eq!(c["community"]["state"], "ok");
    assert_eq!(c["community"]["reports"], 0);
    assert_eq!(c["community"]["spike"], false);
    let notes: Vec<&str> = c["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("OpenRouter reaches kimi fine")),
        "{notes:?}"
    );

    // OpenRouter sees Moonshot failing, and fourteen reports in half an hour.
    sources.endpoints(
        MODEL,
        Answer::Json(sources::endpoints(&[
            ("Moonshot AI", 41.0),
            ("DeepInfra", 99.9),
        ])),
    );
    let mut posts: Vec<(&str, Duration)> = (0..14)
        .map(|n| ("Is Kimi down for everyone?", Duration::from_secs(60 * n)))
        .collect();
    posts.extend((1..=12).map(|d| ("kimi down again", Duration::from_secs(d * 43_200 + 600))));
    sources.set("/feed.xml", Answer::Rss(sources::rss(&posts)));
    let out = check(&cfg, true);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    let c = &doc["checks"][0]["corroboration"];
    assert_eq!(c["aggregator"]["view"], "down");
    assert_eq!(c["aggregator"]["endpoint"]["uptime_last_30m"], 41.0);
    assert_eq!(c["community"]["reports"], 14);
    assert_eq!(c["community"]["usual"], serde_json::json!([0, 0]));
    assert_eq!(c["community"]["spike"], true);
    assert_eq!(c["community"]["feeds"][0]["name"], "r/LocalLLaMA");
    let human = stdout(&check(&cfg, false));
    for line in [
        "OpenRouter (moonshotai/kimi-k2.6): Moonshot AI endpoint down — 41% uptime over 30 min; \
         1 of 2 endpoints operational",
        "Community (r/LocalLLaMA): 14 reports in 30 min, usually 0 — a spike",
        "→ OpenRouter sees kimi failing too: others are affected, not just you.",
        "→ Community reports are spiking too.",
    ] {
        assert!(human.contains(line), "missing {line:?} in:\n{human}");
    }
    // The verdict line comes first; what others see after it.
    assert!(human.find("kimi is DOWN").unwrap() < human.find("What others see").unwrap());
}

#[test]
fn a_probe_that_works_stays_up_whatever_the_page_says() {
    let mock = mock("kimi", "ok");
    let sources = sources::start();
    quiet(&sources);
    sources.summary(Answer::Json(sources::summary(
        "critical",
        "major_outage",
        vec![],
    )));
    let cfg = setup(&mock, &sources);
    let out = check(&cfg, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["checks"][0]["verdict"], "up");
    assert_eq!(
        doc["checks"][0]["corroboration"]["official"]["indicator"],
        "critical"
    );
    let notes = doc["checks"][0]["corroboration"]["notes"].to_string();
    assert!(
        notes.contains("The official page reports a problem your probe does not see"),
        "{notes}"
    );
}

/// The check without any source, for comparison.
fn bare_verdict(mock: &MockServer) -> (Option<i32>, Value) {
    let cfg = config(&format!(
        "{}[check]\nwitnesses = []\n",
        provider_toml("kimi", &mock.v1(), "openai", "K1")
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
    assert_eq!(doc["checks"][0]["corroboration"]["official"], Value::Null);
    (out.status.code(), doc["checks"][0]["verdict"].clone())
}

#[test]
fn every_bad_source_is_unavailable_with_a_reason_and_changes_no_verdict() {
    for scenario in ["ok", "unavailable"] {
        let mock = mock("kimi", scenario);
        let expected = bare_verdict(&mock);
        let sources = sources::start();
        quiet(&sources);
        let cfg = setup(&mock, &sources);
        sources.set(
            "/loop-b",
            Answer::Redirect("/status/api/v2/summary.json".into()),
        );
        let changed = serde_json::json!({"page": {}, "status": {"state": "green"}});
        for (bad, answer, reason) in [
            ("down", Answer::Status(503), "HTTP 503"),
            ("slow", Answer::Hold, "no answer within 3 s"),
            (
                "redirect loop",
                Answer::Redirect("/loop-b".into()),
                "redirects in a loop",
            ),
            (
                "html",
                Answer::Html,
                "an HTML page, not Statuspage summary JSON",
            ),
            ("garbage", Answer::Garbage, "not Statuspage summary JSON"),
            (
                "changed format",
                Answer::Json(changed.clone()),
                "not Statuspage summary JSON",
            ),
        ] {
            sources.summary(answer.clone());
            sources.endpoints(MODEL, answer.clone());
            sources.set("/feed.xml", answer);
            let out = check(&cfg, true);
            let doc = json(&out);
            assert_eq!(
                (out.status.code(), doc["checks"][0]["verdict"].clone()),
                expected,
                "{bad}: the verdict is the probes'"
            );
            let c = &doc["checks"][0]["corroboration"];
            for source in ["official", "aggregator", "community"] {
                assert_eq!(c[source]["state"], "unavailable", "{bad} {source}: {c}");
                assert!(
                    c[source]["reason"].as_str().is_some_and(|r| !r.is_empty()),
                    "{bad} {source}: {c}"
                );
            }
            assert!(
                c["official"]["reason"].as_str().unwrap().contains(reason),
                "{bad}: {}",
                c["official"]["reason"]
            );
            assert_eq!(c["official"]["indicator"], Value::Null);
            assert_eq!(c["official"]["incidents"], serde_json::json!([]));
            let human = stdout(&check(&cfg, false));
            assert!(
                human.contains("Official page (127.0.0.1") && human.contains("unavailable — "),
                "{bad}: {human}"
            );
            assert!(!stderr(&out).contains("panicked"), "{bad}");
        }
        // Nothing listening at all.
        let closed = config(&format!(
            "{}status_url = \"http://127.0.0.1:1/status\"\n[check]\nwitnesses = []\n",
            provider_toml("kimi", &mock.v1(), "openai", "K1")
        ));
        let out = isdown(
            &[
                "check",
                "kimi",
                "--json",
                "--config",
                closed.path.to_str().unwrap(),
            ],
            &[("K1", KEY)],
        );
        let doc = json(&out);
        assert_eq!(
            (out.status.code(), doc["checks"][0]["verdict"].clone()),
            expected
        );
        assert_eq!(
            doc["checks"][0]["corroboration"]["official"]["reason"],
            "connection refused or unreachable"
        );
    }
}

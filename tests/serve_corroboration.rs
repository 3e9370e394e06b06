//! `isdown serve` and the official status page: an outage isdown detects first is acknowledged
//! later by the provider's page, and the API, the incident history and the status page say
//! how far ahead isdown was; an official incident isdown's probes did not see is listed; a page
//! that breaks is reported, never fatal.

mod support;

use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::sources::{self, Answer, Receiver};
use support::*;

const KEY: &str = "sk-test-Vb72NmQa19XcLp4TzWe8";

fn setup(kimi: &MockServer, deepseek: &MockServer, sources: &Receiver) -> ConfigFile {
    config(&format!(
        "{}status_url = \"{}\"\nstatus_components = [\"Open API\"]\n\
         {}status_url = \"{}/status2\"\n\
         [monitor]\nconfirm_after = \"300ms\"\ninterval = \"1s\"\ntimeout = \"1500ms\"\n\
         [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"reachability\"]\n\
         [corroboration]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
        provider_toml("kimi", &kimi.v1(), "openai", "KIMI_KEY"),
        sources.status_root(),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
        sources.url(""),
    ))
}

fn rfc3339_seconds(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn kimi_incident(serve: &Serve) -> Option<Value> {
    serve.json("/api/v1/incidents")["incidents"]
        .as_array()?
        .iter()
        .find(|i| i["provider"] == "kimi")
        .cloned()
}

#[test]
fn an_acknowledgement_that_arrives_later_gets_its_lead_time_everywhere() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let sources = sources::start();
    sources.summary(Answer::Json(sources::summary(
        "none",
        "operational",
        vec![],
    )));
    sources.incidents(Answer::Json(serde_json::json!({"incidents": []})));
    sources.set(
        "/status2/api/v2/summary.json",
        Answer::Json(sources::summary("none", "operational", vec![])),
    );
    let cfg = setup(&kimi, &deepseek, &sources);
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[("KIMI_KEY", KEY), ("DS_KEY", KEY)],
    );

    kimi.set_scenario(Scenario::Unavailable);
    let incident = eventually(Duration::from_secs(20), "kimi's outage", || {
        kimi_incident(&serve)
    });
    assert_eq!(incident["kind"], "outage");
    // Not acknowledged yet: `official` is null, and the history says so.
    assert_eq!(incident["official"], Value::Null);
    let started = rfc3339_seconds(incident["started_at"].as_str().unwrap());
    eventually(Duration::from_secs(20), "the history page", || {
        get(&format!("{}/incidents", serve.url))
            .1
            .contains("not acknowledged officially")
            .then_some(())
    });

    // The page posts it two seconds after isdown's start (once that moment has passed).
    let posted = started + Duration::from_secs(2);
    eventually(Duration::from_secs(10), "two seconds to pass", || {
        (SystemTime::now() >= posted).then_some(())
    });
    let posted_text = humantime::format_rfc3339_seconds(posted).to_string();
    let official = sources::incident("sp1", "Open API errors", "major", &posted_text, None);
    sources.summary(Answer::Json(sources::summary(
        "major",
        "major_outage",
        vec![official],
    )));
    let acknowledged = eventually(Duration::from_secs(20), "the acknowledgement", || {
        kimi_incident(&serve).filter(|i| !i["official"].is_null())
    });
    let o = &acknowledged["official"];
    assert_eq!(o["title"], "Open API errors");
    assert_eq!(o["url"], "https://stspg.io/sp1");
    assert_eq!(o["acknowledged_at"], posted_text.as_str());
    assert_eq!(o["resolved_at"], Value::Null);
    assert_eq!(o["lead_s"], 2);
    // The same object on the open-incident list.
    let open = serve.json("/api/v1/incidents?state=open");
    let listed = open["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["provider"] == "kimi")
        .unwrap();
    assert_eq!(listed["official"], *o);

    // Pages (rendered on change): the history's row, and the overview's median lead.
    eventually(Duration::from_secs(20), "the history's row", || {
        let history = get(&format!("{}/incidents", serve.url)).1;
        (history.contains("before the official page</a>") && history.contains("“Open API errors”"))
            .then_some(())
    });
    eventually(Duration::from_secs(20), "the overview's lead", || {
        let page = get(&format!("{}/", serve.url)).1;
        page.contains("What others see")
            .then_some(page)
            .filter(|p| p.contains("(1 of 1 outage acknowledged officially)"))
    });

    // The page resolves it later: the acknowledgement follows.
    let resolved_at = sources::ago(Duration::ZERO);
    sources.incidents(Answer::Json(
        serde_json::json!({"incidents": [sources::incident(
            "sp1", "Open API errors", "major", &posted_text, Some(&resolved_at)
        )]}),
    ));
    sources.summary(Answer::Json(sources::summary(
        "none",
        "operational",
        vec![],
    )));
    eventually(Duration::from_secs(20), "the official resolution", || {
        kimi_incident(&serve).filter(|i| i["official"]["resolved_at"] == resolved_at.as_str())
    });

    // A page that breaks: the overview says why, the acknowledgement stays.
    sources.summary(Answer::Html);
    eventually(Duration::from_secs(20), "the broken page's reason", || {
        get(&format!("{}/", serve.url))
            .1
            .contains("unavailable — an HTML page, not Statuspage summary JSON")
            .then_some(())
    });
    assert_eq!(kimi_incident(&serve).unwrap()["official"]["lead_s"], 2);
}

#[test]
fn an_official_incident_isdowns_probes_did_not_see_is_listed() {
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let sources = sources::start();
    sources.summary(Answer::Json(sources::summary(
        "none",
        "operational",
        vec![],
    )));
    let trouble = sources::incident(
        "ds1",
        "Elevated latency on the chat API",
        "minor",
        &sources::ago(Duration::from_secs(120)),
        None,
    );
    sources.set(
        "/status2/api/v2/summary.json",
        Answer::Json(sources::summary("minor", "operational", vec![trouble])),
    );
    let cfg = setup(&kimi, &deepseek, &sources);
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &cfg.path,
        data.path(),
        &[("KIMI_KEY", KEY), ("DS_KEY", KEY)],
    );
    let page = eventually(Duration::from_secs(20), "the unseen incident", || {
        let page = get(&format!("{}/", serve.url)).1;
        page.contains("Official incidents isdown's probes did not see:")
            .then_some(page)
    });
    assert!(
        page.contains(
            "<a href=\"https://stspg.io/ds1\" rel=\"noopener\">Elevated latency on the chat API</a>"
        ),
        "{page}"
    );
    // Isdown saw no deepseek outage: nothing is "acknowledged", the API has no incident.
    assert!(
        serve.json("/api/v1/incidents")["incidents"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

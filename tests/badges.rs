//! Badges over HTTP from the real `isdown serve`: drawn when they are requested, they must be
//! what the pre-rendered ones were, byte for byte, with the same headers — an up, a down and a
//! never-probed (unknown) monitor, by monitor id and by provider id — and revalidate like every
//! cached view: 304 on a matching `If-None-Match`, a new body and ETag once the state changes,
//! 404 for an id that names nothing.
//!
//! `tests/status_page/badges/*.svg` are the badges the pre-rendering server drew (main at
//! 5efb8f5, before badges were drawn per request), fetched over HTTP from that build with this
//! file's setup: each monitor's status badge, and the uptime badge by what it says (a new
//! monitor's 30-day uptime is "no data" until its results count; which of the captured values
//! a run shows depends on timing, the bytes of each do not).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::*;

const KEY: &str = "sk-test-Zx9CvBn3MqWe5RtYu7Io";

/// The three monitors, their mock's first scenario, and the state that scenario gives.
const MONITORS: [(&str, &str, &str); 3] = [
    ("kimi", "ok", "up"),
    ("deepseek", "unavailable", "down"),
    // Probed every 300 s and its first probe hangs: never has a result while the test runs.
    ("openai", "hang", "unknown"),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/status_page/badges")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture of the badge `file` of `monitor` whose body is `got`: its status badge, or the
/// uptime badge that says the same.
fn pre_rendered(monitor: &str, file: &str, got: &str) -> Vec<u8> {
    if file == "status.svg" {
        return fixture(&format!("{monitor}-status.svg"));
    }
    let says = ["no data", "0.00%"]
        .into_iter()
        .find(|value| got.contains(&format!("aria-label=\"uptime 30d: {value}\"")))
        .unwrap_or_else(|| panic!("an uptime no fixture was captured for: {got}"));
    fixture(&format!(
        "uptime-30d-{}.svg",
        says.trim_end_matches('%').replace(' ', "-")
    ))
}

fn fetch(base: &str, path: &str, headers: &[(&str, &str)]) -> Fetched {
    let mut request = client().get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request)
}

/// Each provider's own mock, probed by chat every second; the hanging one every 300 s (a probe's
/// timeout is at most its interval).
fn setup(mocks: &[MockServer]) -> ConfigFile {
    let mut text = String::from("[monitor]\nconfirm_after = \"300ms\"\n");
    for ((provider, _, shown), mock) in MONITORS.iter().zip(mocks) {
        let every = if *shown == "unknown" { "300s" } else { "1s" };
        text.push_str(&format!(
            "[providers.{provider}]\nbase_url = \"{}\"\napi_key_env = \"KEY\"\n\
             probe_model = \"kimi-k2.6\"\n\
             [[monitors]]\nprovider = \"{provider}\"\nprobes = [\"chat\"]\n\
             interval = \"{every}\"\ntimeout = \"{every}\"\n",
            mock.v1()
        ));
    }
    config(&text)
}

/// The state of `monitor` in `/api/v1/status`.
fn state(serve: &Serve, monitor: &str) -> Option<String> {
    let status = serve.json("/api/v1/status");
    status["monitors"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == monitor)?["state"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn badges_drawn_per_request_are_the_pre_rendered_bytes_and_revalidate() {
    let mocks: Vec<MockServer> = MONITORS
        .iter()
        .map(|(_, scenario, _)| mock("kimi", scenario))
        .collect();
    let config = setup(&mocks);
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&config.path, data.path(), &[("KEY", KEY)]);
    // The badges follow the cached views: once the JSON says so, so do they.
    eventually(Duration::from_secs(20), "kimi up and deepseek down", || {
        (state(&serve, "kimi-chat")? == "up" && state(&serve, "deepseek-chat")? == "down")
            .then_some(())
    });
    eventually(
        Duration::from_secs(10),
        "the badges to show the states",
        || {
            let down = fetch(&serve.url, "/badge/deepseek-chat/status.svg", &[]);
            down.text().contains("DeepSeek: down").then_some(())
        },
    );

    for (provider, _, shown) in MONITORS {
        let monitor = format!("{provider}-chat");
        assert_eq!(state(&serve, &monitor).as_deref(), Some(shown));
        for file in ["status.svg", "uptime-30d.svg"] {
            for key in [monitor.as_str(), provider] {
                let path = format!("/badge/{key}/{file}");
                let got = fetch(&serve.url, &path, &[("Accept-Encoding", "gzip, br")]);
                assert_eq!(got.status, 200, "{path}");
                let want = pre_rendered(&monitor, file, &got.text());
                assert_eq!(
                    got.text(),
                    String::from_utf8_lossy(&want),
                    "{path} is not the pre-rendered badge"
                );
                assert_eq!(
                    got.header("content-type"),
                    Some("image/svg+xml; charset=utf-8")
                );
                assert_eq!(
                    got.header("cache-control"),
                    Some("public, max-age=5, stale-while-revalidate=30")
                );
                assert_eq!(got.header("vary"), Some("accept-encoding"));
                assert_eq!(
                    got.header("content-encoding"),
                    None,
                    "badges are sent as they are"
                );
                assert!(got.header("last-modified").is_some(), "{path}");
                let etag = got.header("etag").expect("an ETag").to_owned();
                assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
                let again = fetch(&serve.url, &path, &[("If-None-Match", &etag)]);
                assert_eq!(again.status, 304, "{path}");
                assert_eq!(again.header("etag"), Some(etag.as_str()));
                assert!(again.body.is_empty());
            }
        }
    }

    // Kimi goes down: a new body and a new ETag; the old ETag no longer gets a 304.
    let before = fetch(&serve.url, "/badge/kimi/status.svg", &[]);
    let old_etag = before.header("etag").unwrap().to_owned();
    mocks[0].set_scenario(Scenario::Unavailable);
    let after = eventually(Duration::from_secs(20), "kimi's badge to say down", || {
        let now = fetch(&serve.url, "/badge/kimi/status.svg", &[]);
        now.text().contains("Kimi: down").then_some(now)
    });
    assert_ne!(after.body, before.body);
    let new_etag = after.header("etag").unwrap();
    assert_ne!(new_etag, old_etag);
    let stale = fetch(
        &serve.url,
        "/badge/kimi-chat/status.svg",
        &[("If-None-Match", &old_etag)],
    );
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, after.body);
    let current = fetch(
        &serve.url,
        "/badge/kimi-chat/status.svg",
        &[("If-None-Match", new_etag)],
    );
    assert_eq!(current.status, 304);

    // An id that names no monitor and no provider: the "no such monitor" badge, 404.
    for file in ["status.svg", "uptime-30d.svg"] {
        let missing = fetch(
            &serve.url,
            &format!("/badge/nobody/{file}"),
            &[("If-None-Match", "*")],
        );
        assert_eq!(missing.status, 404);
        assert!(missing.text().contains("isdown: no such monitor"));
    }
}

//! The status page end to end: the real `isdown serve` monitors mock providers, Kimi's mock
//! fails, and a real headless Chromium (driven by `tests/status_page/browser.py` through
//! Playwright) must show the outage — banner, row, incident, the day's details read out by
//! keyboard — then the recovery, live, without a reload. Screenshots (light and dark, desktop
//! and phone width) land in `target/status-page/` for review; `docs/status-page.png` in the
//! README is `status-desktop-light.png` of this run.
//!
//! Over plain HTTP: the public views hide keys and upstream addresses (the JSON API too), and
//! the views served from memory carry strong ETags, answer 304 to a matching `If-None-Match`,
//! and send gzip and brotli bodies that decode to the identity bytes.
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium` package) and a Python with `playwright`
//! (`.venv/bin/python`, or `$ISDOWN_TEST_PYTHON`); `.ci/run` installs both. Without them the
//! test fails and says what to install: a browser test that silently passes proves nothing.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;
use tokio::io::AsyncReadExt;

const KEY: &str = "sk-test-Zx9CvBn3MqWe5RtYu7Io";
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "bash .ci/run (or: apt-get install -y chromium; python3 -m venv .venv; \
                       .venv/bin/pip install playwright==1.65.2)";
/// The whole browser session: four page loads with screenshots, then the wait for recovery
/// (the script's own deadline is 60 s).
const BROWSER_DEADLINE: Duration = Duration::from_secs(180);

/// `isdown serve` with the keys of [`setup`]'s providers.
fn serve(config: &Path, data: &Path) -> Serve {
    Serve::start(config, data, &[("KIMI_KEY", KEY), ("DS_KEY", KEY)])
}

/// Kimi (chat) and DeepSeek (reachability) on mocks, probed every 2 s, display names from the
/// catalog (the entries only override URLs and keys), upstream URLs hidden.
fn setup(kimi: &MockServer, deepseek: &MockServer) -> ConfigFile {
    config(&format!(
        "[providers.kimi]\nbase_url = \"{}\"\napi_key_env = \"KIMI_KEY\"\n\
         probe_model = \"kimi-k2.6\"\n\
         [providers.deepseek]\nbase_url = \"{}\"\napi_key_env = \"DS_KEY\"\n\
         [monitor]\nconfirm_after = \"300ms\"\ninterval = \"2s\"\ntimeout = \"1500ms\"\n\
         [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"reachability\"]\n\
         [web]\nhide_urls = true\n",
        kimi.v1(),
        deepseek.v1(),
    ))
}

/// The views served from memory are rendered about once a second after a change: what the
/// store-backed incident API already says, they say within a render.
const RENDER_WAIT: Duration = Duration::from_secs(10);

fn wait_for_open_outage(serve: &Serve) -> Value {
    eventually(Duration::from_secs(20), "the Kimi outage to open", || {
        serve.json("/api/v1/incidents?state=open")["incidents"]
            .as_array()?
            .iter()
            .find(|i| i["kind"] == "outage" && i["monitor"] == "kimi-chat")
            .cloned()
    })
}

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("ISDOWN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no Python for the browser test at {}: run {INSTALL}, or set ISDOWN_TEST_PYTHON",
        python.display()
    );
    let probe = Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .output()
        .expect("run python");
    assert!(
        probe.status.success(),
        "{} cannot import playwright ({}): run {INSTALL}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    python
}

/// Runs the browser script to its end (or kills it at the deadline) and returns its output.
/// The script's exit is the event waited on, on the support runtime; the deadline only stops a
/// wedged browser.
fn run_browser(python: &Path, serve: &Serve, mock: &MockServer, out: &Path) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/status_page/browser.py");
    let mut command = tokio::process::Command::new(python);
    command
        .arg(&script)
        .args(["--url", &serve.url, "--mock", &mock.url(), "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    background().block_on(async {
        let mut child = command.spawn().expect("start the browser script");
        // Pipes are drained on their own tasks so a chatty browser never blocks on a full pipe.
        let drain = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
            tokio::spawn(async move {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_string(&mut text).await;
                }
                text
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let status = match tokio::time::timeout(BROWSER_DEADLINE, child.wait()).await {
            Ok(status) => Some(status.expect("wait for the browser script")),
            Err(_) => {
                let _ = child.kill().await;
                None
            }
        };
        let output = format!(
            "--- stdout\n{}--- stderr\n{}",
            stdout.await.unwrap_or_default(),
            stderr.await.unwrap_or_default()
        );
        match status {
            Some(status) => (status.success(), output),
            None => (
                false,
                format!("killed after {BROWSER_DEADLINE:?}\n{output}"),
            ),
        }
    })
}

#[test]
fn status_page_shows_an_outage_and_its_recovery_live_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run {INSTALL}"
    );
    let python = python();
    let kimi = mock("kimi", "unavailable");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek);
    let data = tempfile::tempdir().unwrap();
    let serve = serve(&cfg.path, data.path());
    wait_for_open_outage(&serve);
    // The outage's state shows at once; today's stored counts within a render after the
    // monitor's writer has them. The browser reads both.
    eventually(RENDER_WAIT, "today's uptime on the page", || {
        Some(()).filter(|_| serve.get("/").contains("% uptime, 1 incident"))
    });

    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the test tmp dir is inside target/")
        .join("status-page");
    std::fs::create_dir_all(&out).unwrap();
    let (ok, output) = run_browser(&python, &serve, &kimi, &out);
    println!("{output}");
    assert!(ok, "the browser check failed:\n{output}");
    for shot in [
        "status-desktop-light.png",
        "status-desktop-dark.png",
        "status-phone-light.png",
        "status-phone-dark.png",
        "status-desktop-light-recovered.png",
        "monitor-desktop-light.png",
    ] {
        let size = std::fs::metadata(out.join(shot)).map_or(0, |m| m.len());
        assert!(size > 10_000, "{shot} missing or empty ({size} bytes)");
    }
}

#[test]
fn public_views_show_the_outage_without_keys_or_upstream_urls() {
    let kimi = mock("kimi", "unavailable");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek);
    let data = tempfile::tempdir().unwrap();
    let serve = serve(&cfg.path, data.path());
    let incident = wait_for_open_outage(&serve);

    let views = [
        ("/", "Kimi — major outage for"),
        ("/monitors/kimi-chat", "Major outage"),
        ("/incidents", "Outage"),
        ("/feed.atom", "Kimi: outage (unavailable) — ongoing"),
        ("/badge/kimi-chat/status.svg", "Kimi: down"),
        ("/badge/kimi/uptime-30d.svg", "uptime 30d"),
        ("/api/v2/status.json", "Partial System Outage"),
        ("/api/v2/summary.json", "major_outage"),
        ("/api/v2/incidents.json", "investigating"),
    ];
    // The mocks' addresses stand in for upstream URLs: with hide_urls they must not show.
    let upstream: Vec<String> = [&kimi, &deepseek]
        .iter()
        .map(|m| m.addr().to_string())
        .collect();
    for (path, expected) in views {
        let body = eventually(RENDER_WAIT, &format!("{path} to show {expected:?}"), || {
            Some(serve.get(path)).filter(|body| body.contains(expected))
        });
        assert!(
            !body.contains(KEY) && !body.contains("Zx9CvBn3"),
            "{path} shows the key"
        );
        for address in &upstream {
            assert!(!body.contains(address.as_str()), "{path} shows {address}");
        }
    }
    let summary = serve.json("/api/v2/summary.json");
    assert_eq!(summary["incidents"][0]["id"], incident["id"].to_string());
    let (status, body) = get(&format!("{}/badge/nobody/status.svg", serve.url));
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&format!("{}/monitors/nobody", serve.url));
    assert_eq!(status, 404);
}

#[test]
fn incident_and_monitor_json_hide_upstream_addresses() {
    // Kimi's endpoint refuses connections: the error text names its address, which `hide_urls`
    // must keep out of the JSON API as it does off the pages.
    let deepseek = mock("deepseek", "ok");
    let cfg = config(&format!(
        "[providers.kimi]\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key_env = \"KIMI_KEY\"\n\
         probe_model = \"kimi-k2.6\"\n\
         [providers.deepseek]\nbase_url = \"{}\"\napi_key_env = \"DS_KEY\"\n\
         [monitor]\nconfirm_after = \"300ms\"\ninterval = \"2s\"\ntimeout = \"1500ms\"\n\
         [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"reachability\"]\n\
         [web]\nhide_urls = true\n",
        deepseek.v1(),
    ));
    let data = tempfile::tempdir().unwrap();
    let serve = serve(&cfg.path, data.path());
    wait_for_open_outage(&serve);
    for path in [
        "/api/v1/incidents",
        "/api/v1/incidents?state=open",
        "/api/v1/monitors/kimi-chat",
    ] {
        let body = serve.get(path);
        assert!(
            body.contains("[upstream]"),
            "{path} has no hidden address:\n{body}"
        );
        assert!(
            !body.contains("127.0.0.1"),
            "{path} shows an upstream address:\n{body}"
        );
    }
}

/// One GET with `headers`, read whole: the body's bytes as sent (this client decodes nothing).
fn fetch(base: &str, path: &str, headers: &[(&str, &str)]) -> Fetched {
    let mut request = client().get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let fetched = send(request);
    assert!(
        !fetched
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked")),
        "views are sent with a length, not chunked"
    );
    fetched
}

/// The ETag without its encoding suffix: which rendered version a response is.
fn version(etag: &str) -> String {
    etag.trim_matches('"')
        .trim_end_matches("-gzip")
        .trim_end_matches("-br")
        .to_owned()
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("valid gzip"),
        "br" => brotli::Decompressor::new(bytes, 4096)
            .read_to_end(&mut out)
            .expect("valid brotli"),
        other => panic!("unexpected encoding {other}"),
    };
    out
}

#[test]
fn cached_views_revalidate_and_compress_to_the_same_bytes() {
    let kimi = mock("kimi", "unavailable");
    let deepseek = mock("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek);
    let data = tempfile::tempdir().unwrap();
    let serve = serve(&cfg.path, data.path());
    wait_for_open_outage(&serve);
    for path in ["/", "/api/v1/status", "/api/v2/summary.json", "/feed.atom"] {
        // The three encodings of one rendered version (the views change every few seconds
        // here, as probes land: a version that changed between the fetches is fetched again).
        let (plain, packed) = eventually(RENDER_WAIT, &format!("one version of {path}"), || {
            let plain = fetch(&serve.url, path, &[("Accept-Encoding", "identity")]);
            let gzip = fetch(&serve.url, path, &[("Accept-Encoding", "gzip")]);
            let br = fetch(
                &serve.url,
                path,
                &[("Accept-Encoding", "gzip, deflate, br")],
            );
            let tag = |r: &Fetched| version(r.header("etag").expect("an ETag"));
            (tag(&plain) == tag(&gzip) && tag(&gzip) == tag(&br)).then_some((plain, [gzip, br]))
        });
        assert_eq!(plain.status, 200, "{path}");
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert_eq!(plain.header("vary"), Some("accept-encoding"), "{path}");
        let cache = plain.header("cache-control").unwrap_or_default();
        assert!(
            cache.contains("public")
                && cache.contains("max-age=")
                && cache.contains("stale-while-revalidate="),
            "{path}: cache-control {cache}"
        );
        assert!(plain.header("last-modified").is_some(), "{path}");
        for (response, encoding) in packed.iter().zip(["gzip", "br"]) {
            assert_eq!(response.status, 200, "{path} {encoding}");
            assert_eq!(
                response.header("content-encoding"),
                Some(encoding),
                "{path}"
            );
            assert!(
                response.body.len() < plain.body.len(),
                "{path}: {encoding} is not smaller"
            );
            assert_eq!(
                decode(encoding, &response.body),
                plain.body,
                "{path}: {encoding} decodes differently"
            );
        }
        // A client holding the current version gets a 304 without a body; one holding another
        // version gets the page.
        let again = eventually(RENDER_WAIT, &format!("a 304 for {path}"), || {
            let current = fetch(&serve.url, path, &[("Accept-Encoding", "gzip")]);
            let etag = current.header("etag").expect("an ETag").to_owned();
            let again = fetch(
                &serve.url,
                path,
                &[
                    ("Accept-Encoding", "gzip"),
                    ("If-None-Match", etag.as_str()),
                ],
            );
            (again.status == 304).then_some(again)
        });
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty(), "{path}: a 304 has no body");
        assert!(again.header("etag").is_some() && again.header("vary").is_some());
        let other = fetch(
            &serve.url,
            path,
            &[("If-None-Match", "\"0000000000000000\"")],
        );
        assert_eq!(other.status, 200, "{path}");
        assert!(!other.body.is_empty());
    }
    // Badges too, and a missing badge is a 404 that is never "not modified".
    let badge = fetch(&serve.url, "/badge/kimi-chat/status.svg", &[]);
    assert_eq!(badge.status, 200);
    assert!(badge.header("etag").is_some());
    let missing = fetch(
        &serve.url,
        "/badge/nobody/status.svg",
        &[("If-None-Match", "*")],
    );
    assert_eq!(missing.status, 404);
}

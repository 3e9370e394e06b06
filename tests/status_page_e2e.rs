//! The status page end to end: the real `isdown serve` monitors `isdown mock-provider`, Kimi's
//! mock fails, and a real headless Chromium (driven by `tests/status_page/browser.py` through
//! Playwright) must show the outage — banner, row, incident — then the recovery, live, without
//! a reload. Screenshots (light and dark, desktop and phone width) land in
//! `target/status-page/` for review.
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium` package) and a Python with `playwright`
//! (`.venv/bin/python`, or `$ISDOWN_TEST_PYTHON`); `.ci/run` installs both. Without them the
//! test fails and says what to install: a browser test that silently passes proves nothing.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const KEY: &str = "sk-test-Zx9CvBn3MqWe5RtYu7Io";
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "bash .ci/run (or: apt-get install -y chromium; python3 -m venv .venv; \
                       .venv/bin/pip install playwright==1.65.2)";
/// The whole browser session: four page loads with screenshots, then the wait for recovery
/// (the script's own deadline is 60 s).
const BROWSER_DEADLINE: Duration = Duration::from_secs(180);

struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(config: &Path, data: &Path) -> Serve {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--data")
            .arg(data)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KIMI_KEY", KEY)
            .env("DS_KEY", KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("banner");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in banner: {line}"))
            .to_owned();
        Serve { child, url }
    }

    fn get(&self, path: &str) -> String {
        let (status, body) = get(&format!("{}{path}", self.url));
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    fn json(&self, path: &str) -> Value {
        let body = self.get(path);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kimi (chat) and DeepSeek (reachability) on mocks, probed every 2 s, display names from the
/// catalog (the entries only override URLs and keys), upstream URLs hidden.
fn setup(kimi: &Mock, deepseek: &Mock) -> ConfigFile {
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
fn run_browser(python: &Path, serve: &Serve, mock: &Mock, out: &Path) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/status_page/browser.py");
    let mut child = Command::new(python)
        .arg(&script)
        .args(["--url", &serve.url, "--mock", &mock.url, "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the browser script");
    // Pipes are drained on their own threads so a chatty browser never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + BROWSER_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the browser script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "--- stdout\n{}--- stderr\n{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) => (status.success(), output),
        None => (
            false,
            format!("killed after {BROWSER_DEADLINE:?}\n{output}"),
        ),
    }
}

#[test]
fn status_page_shows_an_outage_and_its_recovery_live_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run {INSTALL}"
    );
    let python = python();
    let kimi = Mock::start("kimi", "unavailable");
    let deepseek = Mock::start("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek);
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&cfg.path, data.path());
    wait_for_open_outage(&serve);

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
    let kimi = Mock::start("kimi", "unavailable");
    let deepseek = Mock::start("deepseek", "ok");
    let cfg = setup(&kimi, &deepseek);
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&cfg.path, data.path());
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
        .map(|m| m.url.trim_start_matches("http://").to_owned())
        .collect();
    for (path, expected) in views {
        let body = serve.get(path);
        assert!(
            body.contains(expected),
            "{path} lacks {expected:?}:\n{body}"
        );
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

//! Shared by the integration tests: mock providers (the library's [`MockServer`], in-process on
//! a free loopback port), the one HTTP client (reqwest), scripted receivers and status sources
//! ([`receiver`], [`sources`]), the real `isdown serve` as a process ([`serve`]), the gateway
//! in-process ([`gateway`]), configs, and the real `isdown` binary.
//!
//! Two kinds of test use it. Async tests (`#[tokio::test]`, mostly on paused time) start their
//! mocks with [`mock_async`], on their own runtime, so the mocks run on the test's clock. Plain
//! `#[test]`s block their thread on child processes; their stand-ins (mocks, receivers) and
//! HTTP calls run on one [`background`] runtime per test binary: [`mock`], [`get`], [`request`],
//! [`send`].
//!
//! Nothing here sleeps to synchronise: servers listen before their handles are returned, and
//! a test waits for a mock ([`wait_received`]) or a receiver (`Receiver::wait_for`) on their own
//! signals. [`eventually`] polls, and only where the thing observed is another process (the
//! state `isdown serve` reports over HTTP), which offers no event to wait on.
#![allow(dead_code)]

pub mod gateway;
pub mod receiver;
pub mod relay;
pub mod serve;
pub mod sources;
#[allow(unused_imports)]
pub use isdown::mock::{MockServer, Scenario};
#[allow(unused_imports)]
pub use serve::Serve;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::LazyLock;
use std::time::Duration;

use isdown::mock::{MockOptions, Style};
use reqwest::header::HeaderMap;
use tokio::runtime::Runtime;

pub const BIN: &str = env!("CARGO_BIN_EXE_isdown");

/// A safety net for a broken build on every blocking HTTP call, not a bound under test.
const HTTP_GUARD: Duration = Duration::from_secs(60);

/// The runtime of the plain tests' stand-ins and HTTP calls: two workers serve every test of
/// the binary, while the tests' own threads block on processes.
pub fn background() -> &'static Runtime {
    static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-stand-ins")
            .enable_all()
            .build()
            .expect("a test runtime builds")
    });
    &RUNTIME
}

// === mock providers ===

/// Options of a mock in `style` with `scenario` (names as `isdown mock-provider` takes them).
pub fn options(style: &str, scenario: &str) -> MockOptions {
    MockOptions {
        scenario: scenario.parse::<Scenario>().expect("a known scenario"),
        style: style.parse::<Style>().expect("a known style"),
        ..MockOptions::default()
    }
}

/// A mock provider on the [`background`] runtime, for plain `#[test]`s.
pub fn mock(style: &str, scenario: &str) -> MockServer {
    mock_with(options(style, scenario))
}

/// As [`mock`], with every option.
pub fn mock_with(options: MockOptions) -> MockServer {
    background()
        .block_on(MockServer::start(options))
        .expect("a mock provider starts")
}

/// A mock provider on the calling test's runtime (and clock: paused time reaches it).
pub async fn mock_async(style: &str, scenario: &str) -> MockServer {
    MockServer::start(options(style, scenario))
        .await
        .expect("a mock provider starts")
}

/// Blocks until `mock` has received `count` requests; panics after `within`.
pub fn wait_received(mock: &MockServer, count: usize, within: Duration) {
    background()
        .block_on(async { tokio::time::timeout(within, mock.received(count)).await })
        .unwrap_or_else(|_| {
            panic!(
                "{count} requests did not reach the mock in {within:?}; it got {:#?}",
                mock.requests()
            )
        });
}

// === HTTP ===

/// The client of every blocking call: one connection per request (as a user's `curl` would;
/// a pooled connection could meet a server that has since been restarted or idled it out),
/// and never a proxy from the environment.
pub fn client() -> &'static reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(HTTP_GUARD)
            .build()
            .expect("a plain client builds")
    });
    &CLIENT
}

/// A response read whole: status, headers and the body's bytes as sent.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request` (built on [`client`]) and reads the whole response, blocking the thread.
pub fn send(request: reqwest::RequestBuilder) -> Fetched {
    background().block_on(async {
        let response = request.send().await.expect("an HTTP response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the whole body").to_vec();
        Fetched {
            status,
            headers,
            body,
        }
    })
}

/// GET `url`, returning (status, body).
pub fn get(url: &str) -> (u16, String) {
    let fetched = send(client().get(url));
    (fetched.status, fetched.text())
}

/// `method` `url` with a JSON `body` (none when empty) and extra `headers`: (status, body).
pub fn request(method: &str, url: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = client().request(method, url).body(body.to_owned());
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let fetched = send(request);
    (fetched.status, fetched.text())
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `within`. Only for
/// another process's state (what `isdown serve` reports over HTTP), which offers no event.
pub fn eventually<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// === configs and the binary ===

/// A temporary directory holding an isdown.toml.
pub struct ConfigFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn config(text: &str) -> ConfigFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("isdown.toml");
    std::fs::write(&path, text).expect("write config");
    ConfigFile { dir, path }
}

/// One provider entry in TOML.
pub fn provider_toml(id: &str, base_url: &str, style: &str, key_env: &str) -> String {
    format!(
        "[providers.{id}]\nname = \"{id}\"\nbase_url = \"{base_url}\"\nstyle = \"{style}\"\n\
         api_key_env = \"{key_env}\"\nprobe_model = \"test-model\"\ndegraded_after = \"5s\"\n"
    )
}

/// Runs `isdown` with a clean environment (no real provider keys leak in from the host).
pub fn isdown(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear();
    for var in ["PATH", "HOME", "TMPDIR"] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run isdown")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses `check --json` output.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout={} stderr={}",
            stdout(out),
            stderr(out)
        )
    })
}

// === times as the API shows them ===

/// Now, in milliseconds since the epoch, floored to the whole second (the API's precision).
pub fn api_second() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(now.as_secs()).expect("a date this side of 2^63 s") * 1000
}

/// An RFC 3339 time the API wrote, in milliseconds since the epoch.
pub fn api_time(text: &serde_json::Value) -> i64 {
    text.as_str()
        .and_then(isdown::time::parse_rfc3339)
        .unwrap_or_else(|| panic!("not a time: {text}"))
}

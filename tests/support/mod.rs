//! Shared by the integration tests: start the real `isdown mock-provider` on a free loopback
//! port, switch its scenario, write configs, and run the real `isdown` binary.
#![allow(dead_code)]

pub mod receiver;
pub mod serve;
pub mod sources;
#[allow(unused_imports)]
pub use serve::Serve;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_isdown");

/// A running `isdown mock-provider`, killed on drop.
pub struct Mock {
    child: Child,
    pub url: String,
}

impl Mock {
    pub fn start(style: &str, scenario: &str) -> Mock {
        Mock::start_with(style, scenario, &[])
    }

    pub fn start_with(style: &str, scenario: &str, extra: &[&str]) -> Mock {
        let mut child = Command::new(BIN)
            .args(["mock-provider", "--listen", "127.0.0.1:0", "--style", style])
            .args(["--scenario", scenario])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mock-provider");
        // The first stdout line announces the bound address: the server is listening by then.
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read mock-provider banner");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("banner ends with the URL")
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "banner: {line}");
        Mock { child, url }
    }

    /// Base URL for OpenAI-style providers.
    pub fn v1(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn set_scenario(&self, scenario: &str) {
        let body = format!("{{\"scenario\":\"{scenario}\"}}");
        let (status, out) = request("POST", &format!("{}/_mock/scenario", self.url), &body, &[]);
        assert!(
            status == 200 && out.contains(scenario),
            "switch failed: {out}"
        );
    }

    pub fn requests(&self) -> serde_json::Value {
        serde_json::from_str(&get(&format!("{}/_mock/requests", self.url)).1)
            .expect("requests JSON")
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url`, returning (status, body).
pub fn get(url: &str) -> (u16, String) {
    request("GET", url, "", &[])
}

/// A minimal HTTP/1.1 client over a raw loopback socket (no extra test dependencies).
pub fn request(method: &str, url: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let mut head = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}\r\n{body}").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `within`. Used only to
/// observe another process, which offers no event to wait on.
pub fn eventually<T>(
    within: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

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

//! Hostile neighbours: the real `isdown serve` under a lowered open-file limit, flooded with
//! idle and half-sent connections, keeps answering `/healthz`, the API and the gateway, and its
//! own probes keep working — no incident opens from isdown running out of descriptors.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const KEY: &str = "sk-test-Qw8ErTy2UiOp4AsDf6Gh";
/// The open-file limit serve runs under (soft and hard, so it cannot raise it).
const OPEN_FILES: u32 = 512;
/// Idle connections and half-sent requests: together over twice the limit.
const IDLE: usize = 1_100;
const HALF_SENT: usize = 200;

/// Lets this test process hold the flood (its own soft limit may be 1,024).
fn raise_own_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(max) = limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

fn last_probe_at(base: &str) -> Option<String> {
    let (_, body) = get(&format!("{base}/api/v1/monitors/kimi-chat"));
    let monitor: serde_json::Value = serde_json::from_str(&body).ok()?;
    // Newest first; results reach the store within a second of the probe.
    Some(monitor["recent_results"][0]["at"].to_string()).filter(|at| at != "null")
}

#[test]
fn a_connection_flood_under_a_low_descriptor_limit_locks_nobody_out() {
    raise_own_limit();
    let kimi = mock("kimi", "ok");
    let deepseek = mock("deepseek", "ok");
    let cfg = config(&format!(
        "{}{}[monitor]\ninterval = \"1s\"\nconfirm_after = \"200ms\"\ntimeout = \"1s\"\n\
         [gateway]\nclient_keys_env = [\"GW_KEY\"]\n\
         [[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"kimi\" }}]\n\
         [[monitors]]\nprovider = \"kimi\"\nprobes = [\"chat\"]\n\
         [[monitors]]\nprovider = \"deepseek\"\nprobes = [\"chat\"]\n",
        provider_toml("kimi", &kimi.v1(), "openai", "KIMI_KEY"),
        provider_toml("deepseek", &deepseek.v1(), "openai", "DS_KEY"),
    ));
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {OPEN_FILES} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg.path)
        .arg("--data")
        .arg(data.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KIMI_KEY", KEY)
        .env("DS_KEY", KEY)
        .env("GW_KEY", "gw-client-key-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let base = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let addr = base.trim_start_matches("http://").to_owned();
    eventually(Duration::from_secs(15), "kimi probed", || {
        last_probe_at(&base)
    });

    // The flood: idle sockets that never send a byte, and requests that stop mid-header. Raw
    // sockets on purpose: no HTTP client opens a connection and then sends nothing, or half a
    // head.
    let mut flood = Vec::with_capacity(IDLE + HALF_SENT);
    for _ in 0..IDLE {
        if let Ok(stream) = TcpStream::connect(&addr) {
            flood.push(stream);
        }
    }
    for _ in 0..HALF_SENT {
        if let Ok(mut stream) = TcpStream::connect(&addr) {
            let _ = stream.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow:");
            flood.push(stream);
        }
    }
    assert!(flood.len() >= IDLE, "the flood connected");

    // Everyone else is still served.
    let (status, body) = get(&format!("{base}/healthz"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(
        "POST",
        &format!("{base}/v1/chat/completions"),
        r#"{"model":"agent","messages":[{"role":"user","content":"hi"}]}"#,
        &[
            ("authorization", "Bearer gw-client-key-1"),
            ("content-type", "application/json"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    // The monitor keeps probing through it, and sees no outage of its own making.
    let before = last_probe_at(&base).unwrap();
    eventually(Duration::from_secs(15), "a probe during the flood", || {
        last_probe_at(&base).filter(|at| *at != before)
    });
    let (_, incidents) = get(&format!("{base}/api/v1/incidents"));
    let incidents: serde_json::Value = serde_json::from_str(&incidents).unwrap();
    assert_eq!(incidents["incidents"], serde_json::json!([]), "{incidents}");
    let (_, status) = get(&format!("{base}/api/v1/status"));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["status"], "up", "{status}");

    drop(flood);
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

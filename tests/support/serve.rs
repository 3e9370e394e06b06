//! The real `isdown serve` binary on a free loopback port, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{BIN, get};

pub struct Serve {
    pub child: Child,
    pub url: String,
}

impl Serve {
    pub fn start(config: &std::path::Path, data: &std::path::Path, env: &[(&str, &str)]) -> Serve {
        Serve::start_to(config, data, env, Stdio::inherit())
    }

    /// As [`Serve::start`], with standard error (its log) written to `log`.
    pub fn start_logged(
        config: &std::path::Path,
        data: &std::path::Path,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Serve {
        let file = std::fs::File::create(log).expect("create the log file");
        Serve::start_to(config, data, env, Stdio::from(file))
    }

    fn start_to(
        config: &std::path::Path,
        data: &std::path::Path,
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Serve {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--data")
            .arg(data)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("banner");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in banner: {line}"))
            .to_owned();
        Serve { child, url }
    }

    /// The body of `GET path`, which must answer 200.
    pub fn get(&self, path: &str) -> String {
        let (status, body) = get(&format!("{}{path}", self.url));
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// As [`Serve::get`], parsed as JSON.
    pub fn json(&self, path: &str) -> Value {
        let body = self.get(path);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    pub fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

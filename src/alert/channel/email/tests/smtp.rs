//! Test support: a real SMTP server (aiosmtpd, `tests/smtp/server.py`) on a free port of
//! 127.0.0.1, and what it received.
//!
//! The interpreter is `$ISDOWN_TEST_PYTHON`, or `.venv/bin/python` at the repository root. A
//! missing interpreter or package fails the test with the command that installs it: a skipped
//! delivery test would hide a broken channel.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Generous: the first start imports `cryptography`, and CI machines are slow.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test waits for a message the channel said it delivered.
const MAIL_TIMEOUT: Duration = Duration::from_secs(10);

const INSTALL: &str = "python3 -m venv .venv && .venv/bin/pip install aiosmtpd cryptography";

/// How the server protects the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    None,
    StartTls,
    Implicit,
}

#[derive(Debug)]
pub struct Options {
    pub tls: Encryption,
    pub auth: Option<(&'static str, &'static str)>,
    /// Recipients answered with 550.
    pub reject: Vec<&'static str>,
    /// Recipients answered with 451.
    pub defer: Vec<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: Encryption::None,
            auth: None,
            reject: Vec::new(),
            defer: Vec::new(),
        }
    }
}

/// One accepted message, as the server saw it.
#[derive(Debug, Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The AUTH login, when the client logged in.
    pub login: Option<String>,
    /// Whether the session was encrypted when the message came in.
    pub tls: bool,
    /// The raw message.
    pub data: String,
    /// Header fields, decoded (RFC 2047) by Python's `email` package.
    pub headers: Vec<(String, String)>,
    /// The decoded text/plain part.
    pub text: Option<String>,
    /// The decoded text/html part.
    pub html: Option<String>,
}

impl Received {
    /// The value of header `name` (case-insensitive); panics when absent.
    pub fn header(&self, name: &str) -> &str {
        self.try_header(name)
            .unwrap_or_else(|| panic!("no {name} header in:\n{}", self.data))
    }

    pub fn try_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().expect("a text/plain part")
    }

    pub fn html(&self) -> &str {
        self.html.as_deref().expect("a text/html part")
    }
}

pub struct SmtpServer {
    pub port: u16,
    /// The throwaway CA that signed the server certificate (TLS modes only).
    pub ca_pem: Option<Vec<u8>>,
    lines: Lines<BufReader<ChildStdout>>,
    /// Sync requests go here; closing it (on drop) stops the server, kill_on_drop makes sure.
    stdin: ChildStdin,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    pub async fn start(options: Options) -> SmtpServer {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let python = std::env::var_os("ISDOWN_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        let script = root.join("tests/smtp/server.py");
        let dir = tempfile::tempdir().expect("temporary directory");

        let mut command = Command::new(&python);
        command.arg(&script);
        match options.tls {
            Encryption::None => {}
            Encryption::StartTls => {
                command.arg("--starttls").arg(dir.path());
            }
            Encryption::Implicit => {
                command.arg("--tls").arg(dir.path());
            }
        }
        if let Some((user, password)) = options.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        for address in &options.reject {
            command.arg("--reject").arg(address);
        }
        for address in &options.defer {
            command.arg("--defer").arg(address);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the test SMTP server with {} ({e}). The email channel tests \
                     need Python with aiosmtpd and cryptography: run `{INSTALL}` at the \
                     repository root, or set ISDOWN_TEST_PYTHON to such an interpreter",
                    python.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();

        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let port = match first {
            Ok(Ok(Some(line))) => line.trim().parse::<u16>().ok(),
            _ => None,
        };
        let Some(port) = port else {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), err.read_to_string(&mut stderr))
                        .await;
            }
            panic!(
                "the test SMTP server ({} {}) did not print its port. Does that Python have \
                 aiosmtpd and cryptography? Run `{INSTALL}` at the repository root, or set \
                 ISDOWN_TEST_PYTHON. Its stderr:\n{stderr}",
                python.display(),
                script.display()
            );
        };
        let ca_pem = match options.tls {
            Encryption::None => None,
            Encryption::StartTls | Encryption::Implicit => {
                Some(std::fs::read(dir.path().join("ca.pem")).expect("the server wrote ca.pem"))
            }
        };
        SmtpServer {
            port,
            ca_pem,
            lines,
            stdin,
            _child: child,
            _dir: dir,
        }
    }

    /// The next message the server accepted; panics if none comes.
    pub async fn next_mail(&mut self) -> Received {
        let line = self.next_line().await;
        serde_json::from_value(line).expect("the server prints one JSON object per message")
    }

    /// The messages the server accepted that no test has read yet. Asked of the server, not
    /// waited for: it answers a sync request after every message accepted before it, and a
    /// message is accepted before the client hears its 250.
    pub async fn unread_mail(&mut self) -> Vec<Received> {
        self.stdin
            .write_all(b"sync\n")
            .await
            .expect("the server reads its stdin");
        self.stdin
            .flush()
            .await
            .expect("the server reads its stdin");
        let mut unread = Vec::new();
        loop {
            let line = self.next_line().await;
            if line == serde_json::json!({"sync": true}) {
                return unread;
            }
            unread.push(serde_json::from_value(line).expect("a message"));
        }
    }

    /// The next line the server prints, as JSON; panics if none comes in [`MAIL_TIMEOUT`].
    async fn next_line(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(MAIL_TIMEOUT, self.lines.next_line())
            .await
            .expect("the server printed a line")
            .expect("reading the server's stdout")
            .expect("the server is still running");
        serde_json::from_str(&line).expect("the server prints one JSON object per line")
    }
}

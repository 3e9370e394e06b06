//! A scripted HTTP receiver on 127.0.0.1 standing in for Slack, PagerDuty or a webhook
//! endpoint: it records every request and answers each as told (fail, accept, or hold it
//! without answering, the way a wedged receiver does).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 OK.
    Accept,
    /// This status (e.g. 503), and nothing is accepted.
    Fail(u16),
    /// Read the request, never answer (until the mode changes, then close).
    Hold,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub head: String,
    pub body: String,
    pub answer: Answer,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

#[derive(Default)]
struct State {
    /// Answers for the next requests, in order; `mode` after they run out.
    script: Vec<Answer>,
    mode: Option<Answer>,
    log: Vec<Received>,
}

pub struct Receiver {
    pub addr: std::net::SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Receiver {
    /// Answers `mode` to every request after the `script`ed ones.
    pub fn start(script: &[Answer], mode: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((
            Mutex::new(State {
                script: script.iter().rev().copied().collect(),
                mode: Some(mode),
                log: Vec::new(),
            }),
            Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = shared.clone();
                std::thread::spawn(move || serve_connection(stream, &shared));
            }
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_mode(&self, mode: Answer) {
        let (lock, cvar) = &*self.state;
        lock.lock().unwrap().mode = Some(mode);
        cvar.notify_all();
    }

    pub fn log(&self) -> Vec<Received> {
        self.state.0.lock().unwrap().log.clone()
    }

    /// Requests that were accepted (answered 2xx).
    pub fn accepted(&self) -> Vec<Received> {
        self.log()
            .into_iter()
            .filter(|r| r.answer == Answer::Accept)
            .collect()
    }

    /// Waits (on the receiver's own signal, not a sleep) until `done` holds for the log.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&[Received]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.state;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some(v) = done(&state.log) {
                return v;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}; got {:#?}", state.log));
            state = cvar.wait_timeout(state, left).unwrap().0;
        }
    }
}

fn serve_connection(stream: TcpStream, shared: &Arc<(Mutex<State>, Condvar)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (lock, cvar) = &**shared;
        let mut state = lock.lock().unwrap();
        let answer = state.script.pop().or(state.mode).unwrap_or(Answer::Accept);
        state.log.push(Received {
            path,
            head,
            body: String::from_utf8_lossy(&body).into_owned(),
            answer,
        });
        cvar.notify_all();
        match answer {
            Answer::Accept | Answer::Fail(_) => {
                drop(state);
                let status = match answer {
                    Answer::Fail(s) => s,
                    _ => 200,
                };
                let ok = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: 2\r\n\r\n{{}}"
                );
                if ok.is_err() {
                    return;
                }
            }
            Answer::Hold => {
                // Hold until the mode changes, then drop the connection unanswered.
                while state.mode == Some(Answer::Hold) {
                    state = cvar.wait(state).unwrap();
                }
                return;
            }
        }
    }
}

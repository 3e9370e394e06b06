//! A scripted HTTP server on 127.0.0.1, standing in for whatever isdown calls that is not a
//! provider: Slack, PagerDuty or a webhook endpoint, a Statuspage, OpenRouter's endpoint data,
//! a community feed ([`super::sources`] names their paths and documents). It records every
//! request and answers each as told — accept, a status, a document, garbage, a redirect, or
//! nothing at all, the way a wedged server does.
//!
//! axum on the [`background`] runtime, so plain `#[test]`s can use it while they block on child
//! processes; [`Receiver::wait_for`] waits on the receiver's own signal, never a sleep.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use super::background;

/// What a request is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200 with `{}`.
    Accept,
    /// This status (e.g. 503) with an empty body; nothing is accepted.
    Status(u16),
    /// 200 with this JSON document.
    Json(Value),
    /// 200 with this RSS feed.
    Rss(String),
    /// 200 with a bot-challenge HTML page, where JSON was expected.
    Html,
    /// 200 with bytes that are no text at all.
    Garbage,
    /// A temporary redirect to this location.
    Redirect(String),
    /// Read the request and answer nothing while its path's answer (set or default) is `Hold`;
    /// once that changes, answer the new one (a 503 if the receiver is dropped first).
    Hold,
}

/// One request as the receiver saw it, with the answer it got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    pub answer: Answer,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The header's value, empty when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The request line and headers as text (names lower-cased), for "does it leak" checks.
    pub fn head(&self) -> String {
        let mut head = format!("{} {}\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        head
    }
}

struct Script {
    /// Answers for the next requests, whatever their path, in order.
    next: VecDeque<Answer>,
    /// Answers by exact path.
    paths: HashMap<String, Answer>,
    /// The answer to every other request.
    default: Answer,
    log: Vec<Received>,
    /// Set when the receiver is dropped: held requests stop waiting.
    closed: bool,
}

struct Shared {
    script: Mutex<Script>,
    /// Signalled on every request received, for the blocking [`Receiver::wait_for`].
    arrived: Condvar,
    /// Signalled when held requests may go (the default changed, or the receiver is dropped).
    released: Notify,
}

impl Shared {
    fn script(&self) -> MutexGuard<'_, Script> {
        self.script
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Script {
    /// The answer set for `path`, or the default.
    fn for_path(&self, path: &str) -> Answer {
        self.paths.get(path).unwrap_or(&self.default).clone()
    }
}

pub struct Receiver {
    base: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// Answers `default` to every request not otherwise scripted.
    pub fn start(default: Answer) -> Receiver {
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                next: VecDeque::new(),
                paths: HashMap::new(),
                default,
                log: Vec::new(),
                closed: false,
            }),
            arrived: Condvar::new(),
            released: Notify::new(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let base = background().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a receiver");
            let base = format!("http://{}", listener.local_addr().expect("its address"));
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("the receiver serves");
            });
            base
        });
        Receiver {
            base,
            shared,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next requests, whatever their path, get these answers in order (then the usual).
    pub fn script(&self, answers: &[Answer]) {
        self.shared.script().next.extend(answers.iter().cloned());
    }

    /// Requests for `path` get `answer` from now on; held ones go if it is not `Hold`.
    pub fn set(&self, path: &str, answer: Answer) {
        self.shared.script().paths.insert(path.to_owned(), answer);
        self.shared.released.notify_waiters();
    }

    /// Every request not otherwise scripted gets `answer` from now on; held ones go if it is
    /// not `Hold`.
    pub fn set_default(&self, answer: Answer) {
        self.shared.script().default = answer;
        self.shared.released.notify_waiters();
    }

    pub fn log(&self) -> Vec<Received> {
        self.shared.script().log.clone()
    }

    /// Requests that were accepted.
    pub fn accepted(&self) -> Vec<Received> {
        self.log()
            .into_iter()
            .filter(|r| r.answer == Answer::Accept)
            .collect()
    }

    /// The `event` of each accepted alert, in order ("opened", "resolved", …).
    pub fn accepted_events(&self) -> Vec<String> {
        self.accepted()
            .iter()
            .map(|r| r.json()["event"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    /// Waits (on the receiver's own signal, not a sleep) until `done` holds for the log; panics
    /// after `timeout`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&[Received]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut script = self.shared.script();
        loop {
            if let Some(value) = done(&script.log) {
                return value;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}; got {:#?}", script.log));
            script = self
                .shared
                .arrived
                .wait_timeout(script, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.script().closed = true;
        self.shared.released.notify_waiters();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut answer = {
        let mut script = shared.script();
        let answer = match script.next.pop_front() {
            Some(answer) => answer,
            None => script.for_path(uri.path()),
        };
        script.log.push(Received {
            method,
            path: uri.path().to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            answer: answer.clone(),
        });
        shared.arrived.notify_all();
        answer
    };
    while answer == Answer::Hold {
        // Registered before the check, so a release between the two is not missed.
        let released = shared.released.notified();
        {
            let script = shared.script();
            if script.closed {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            answer = script.for_path(uri.path());
        }
        if answer == Answer::Hold {
            released.await;
        }
    }
    respond(answer)
}

fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Accept => (
            [(header::CONTENT_TYPE, "application/json")],
            "{}".to_owned(),
        )
            .into_response(),
        Answer::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Answer::Json(value) => (
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
        Answer::Rss(text) => {
            ([(header::CONTENT_TYPE, "application/rss+xml")], text).into_response()
        }
        Answer::Html => (
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>",
        )
            .into_response(),
        Answer::Garbage => vec![0u8, 159, 146, 150, 7, 255, 12, 33].into_response(),
        Answer::Redirect(to) => Redirect::temporary(&to).into_response(),
        Answer::Hold => unreachable!("a held request is answered once released"),
    }
}

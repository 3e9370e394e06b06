//! Test support for the chat channels' tests: a recording HTTP receiver on a loopback port, the
//! failure-mapping checks every HTTP channel must pass, and sample messages.
//!
//! The receiver binds `127.0.0.1:0` before it is spawned, and records each request before it
//! answers, so a test reads what arrived as soon as `send` returns: no sleeps, no polling.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::alert::channel::Channel;
use crate::alert::{AlertEvent, AlertItem, AlertMessage, DeliveryError};
use crate::incident::IncidentKind;
use crate::verdict::{Blame, Verdict};

/// 2026-11-25 14:03:07 UTC.
pub(crate) const STARTED_AT: i64 = 1_795_615_387_000;

/// One request as the receiver saw it.
#[derive(Debug)]
pub(crate) struct Received {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: Arc<String>,
    seen: mpsc::UnboundedSender<Received>,
}

/// A receiver answering every request with one fixed status and JSON body.
pub(crate) struct Receiver {
    pub base: String,
    seen: mpsc::UnboundedReceiver<Received>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    pub(crate) async fn start(status: u16, body: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let answer = Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: Arc::new(body.to_owned()),
            seen: seen_tx,
        };
        let app = Router::new().fallback(record).with_state(answer);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            base,
            seen,
            stop: Some(stop),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next request received; panics when none arrived.
    pub(crate) fn take(&mut self) -> Received {
        self.seen.try_recv().expect("the receiver got a request")
    }

    pub(crate) fn nothing_more(&mut self) -> bool {
        self.seen.try_recv().is_err()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn record(
    State(answer): State<Answer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let _ = answer.seen.send(Received {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
    });
    (
        answer.status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body.as_str().to_owned(),
    )
}

/// A base URL nothing listens on: bound, then closed.
pub(crate) async fn closed_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    base
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An environment holding exactly `vars`.
pub(crate) fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// The status mapping every HTTP channel shares: 500 and 429 retryable, 400 and 404 permanent.
/// `build` makes the channel for a receiver's base URL; `body` is what the receiver answers with
/// for a status.
pub(crate) async fn assert_status_mapping(
    build: impl Fn(&str) -> Box<dyn Channel>,
    body: impl Fn(u16) -> String,
) {
    for (status, retryable) in [
        (500, true),
        (503, true),
        (429, true),
        (400, false),
        (404, false),
    ] {
        let mut receiver = Receiver::start(status, &body(status)).await;
        let channel = build(&receiver.base);
        let err = channel.send(&opened()).await.unwrap_err();
        match (retryable, &err) {
            (true, DeliveryError::Retryable(_)) | (false, DeliveryError::Permanent(_)) => {}
            _ => panic!("HTTP {status} should be retryable={retryable}, got {err:?}"),
        }
        assert!(err.to_string().contains(&status.to_string()), "{err}");
        receiver.take();
    }
}

/// A refused connection is retryable and its text quotes none of `secrets`.
pub(crate) async fn assert_refused_hides(channel: &dyn Channel, secrets: &[&str]) {
    let err = channel.send(&opened()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Retryable(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "error text leaks {secret:?}: {text}"
        );
    }
}

pub(crate) fn item(provider: &str, name: &str, verdict: Verdict, explanation: &str) -> AlertItem {
    AlertItem {
        monitor: format!("{provider}-chat"),
        provider: provider.to_owned(),
        provider_name: name.to_owned(),
        model: Some(format!("{provider}-large")),
        verdict,
        blame: verdict.default_blame(),
        explanation: explanation.to_owned(),
        started_at: STARTED_AT,
    }
}

/// An opened outage over two monitors, with a status-page URL.
pub(crate) fn opened() -> AlertMessage {
    AlertMessage {
        event: AlertEvent::Opened,
        kind: IncidentKind::Outage,
        title: "Kimi is DOWN (unavailable) since 14:03 UTC".to_owned(),
        summary: "Kimi has answered 503 to every probe since 14:03 UTC. It is on the provider's \
                  side: DeepSeek answers normally from the same host."
            .to_owned(),
        advice: "Fail over to DeepSeek; check status.moonshot.cn".to_owned(),
        items: vec![
            item(
                "kimi",
                "Kimi",
                Verdict::Unavailable,
                "HTTP 503: upstream connect error",
            ),
            AlertItem {
                blame: Some(Blame::Provider),
                ..item(
                    "moonshot",
                    "Moonshot",
                    Verdict::Timeout,
                    "no first byte within 20 s",
                )
            },
        ],
        started_at: STARTED_AT,
        ended_at: None,
        duration_s: None,
        url: Some("https://status.example.com/incidents/42".to_owned()),
        dedup_key: "isdown-outage-kimi-1795615387".to_owned(),
    }
}

/// The resolve of [`opened`]: 1 h 2 min 3 s later, no status-page URL.
pub(crate) fn resolved() -> AlertMessage {
    AlertMessage {
        event: AlertEvent::Resolved,
        title: "Kimi is back up after 1h 2m".to_owned(),
        summary: "Kimi answers normally again.".to_owned(),
        advice: "Nothing to do.".to_owned(),
        ended_at: Some(STARTED_AT + 3_723_000),
        duration_s: Some(3723),
        url: None,
        ..opened()
    }
}

/// [`opened`] with every free-text field `n` characters long and `items` monitors.
pub(crate) fn oversized(n: usize, items: usize) -> AlertMessage {
    let long = |c: &str| c.repeat(n);
    let base = opened();
    AlertMessage {
        title: long("T"),
        summary: long("S"),
        advice: long("A"),
        items: (0..items)
            .map(|i| {
                item(
                    &format!("p{i}"),
                    &long("N"),
                    Verdict::ServerError,
                    &long("E"),
                )
            })
            .collect(),
        ..base
    }
}

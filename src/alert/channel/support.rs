//! Test support for every channel's tests: a recording HTTP receiver on a loopback port, the
//! failure-mapping checks every HTTP channel must pass, an environment table, and sample
//! messages (a chat-style pair, [`opened`]/[`resolved`], and a paging-style incident,
//! [`message`]/[`paging_resolved`]).
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
use tokio::task::JoinHandle;

use crate::alert::channel::Deliver;
use crate::alert::channel::http::{JsonPost, Payload, Region, UrlEnvConfig};
use crate::alert::{AlertEvent, AlertItem, AlertMessage, DeliveryError};
use crate::incident::IncidentKind;
use crate::time::Millis;
use crate::verdict::{Blame, Verdict};

/// 2026-11-25 14:03:07 UTC.
pub(crate) const STARTED_AT: i64 = 1_795_615_387_000;
/// 2026-01-01T14:03:00Z.
pub(crate) const PAGING_STARTED: Millis = 1_767_276_180_000;

/// One request as the receiver saw it.
#[derive(Debug)]
pub(crate) struct Received {
    pub method: Method,
    pub uri: Uri,
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

type Answer = Arc<dyn Fn(&Received) -> (u16, String) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    answer: Answer,
    seen: mpsc::UnboundedSender<Received>,
}

/// A loopback HTTP server that records every request and answers it as JSON.
pub(crate) struct Receiver {
    pub base: String,
    seen: mpsc::UnboundedReceiver<Received>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A receiver answering each request with `answer(request)`.
pub(crate) async fn receiver(
    answer: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let shared = Shared {
        answer: Arc::new(answer),
        seen: seen_tx,
    };
    let app = Router::new().fallback(record).with_state(shared);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
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
        task: Some(task),
    }
}

impl Receiver {
    /// A receiver answering every request with one fixed status and JSON body.
    pub(crate) async fn start(status: u16, body: &str) -> Receiver {
        let body = body.to_owned();
        receiver(move |_| (status, body.clone())).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next request received; panics when none arrived.
    pub(crate) fn take(&mut self) -> Received {
        self.seen.try_recv().expect("the receiver got a request")
    }

    /// The next request received, if any.
    pub(crate) fn try_take(&mut self) -> Option<Received> {
        self.seen.try_recv().ok()
    }

    pub(crate) fn nothing_more(&mut self) -> bool {
        self.seen.try_recv().is_err()
    }

    /// Stops the server and returns what it received, in order.
    pub(crate) async fn finish(mut self) -> Vec<Received> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        let mut all = Vec::new();
        while let Ok(received) = self.seen.try_recv() {
            all.push(received);
        }
        all
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
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let received = Received {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        uri,
        headers,
        body,
    };
    let (status, body) = (shared.answer)(&received);
    let _ = shared.seen.send(received);
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
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

/// A Slack- or Teams-style channel: one JSON POST of `payload` to the URL its `url_env`
/// variable `var` holds, here `url`.
pub(crate) fn url_env_post(var: &str, url: &str, payload: Payload) -> JsonPost {
    let config = UrlEnvConfig {
        url_env: var.to_owned(),
    };
    JsonPost::new(
        config.resolve(&env(&[(var, url)])).unwrap(),
        client(),
        payload,
    )
}

/// A paging channel's endpoint per region: the US one without a region and with `us`, the EU
/// one with `eu`.
pub(crate) fn assert_regions(url_for: impl Fn(Option<Region>) -> String, us: &str, eu: &str) {
    assert_eq!(url_for(None), us, "no region");
    assert_eq!(url_for(Some(Region::Us)), us, "region us");
    assert_eq!(url_for(Some(Region::Eu)), eu, "region eu");
}

/// The keys of a JSON object body, in order.
pub(crate) fn keys(body: &Value) -> Vec<&str> {
    body.as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
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
    build: impl Fn(&str) -> Box<dyn Deliver>,
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

/// The whole failure mapping of an HTTP channel that holds `secrets`: [`assert_status_mapping`]
/// with receivers whose answers (`body` by status) may quote a secret back, none of which may
/// reach the error text, then a refused connection (retryable, no secret either).
pub(crate) async fn assert_failures_hide(
    build: impl Fn(&str) -> Box<dyn Deliver>,
    body: impl Fn(u16) -> String,
    secrets: &[&str],
) {
    for status in [500, 429, 400, 401] {
        let mut receiver = Receiver::start(status, &body(status)).await;
        let err = build(&receiver.base).send(&opened()).await.unwrap_err();
        let retryable = status != 400 && status != 401;
        assert_eq!(
            matches!(err, DeliveryError::Retryable(_)),
            retryable,
            "HTTP {status}: {err:?}"
        );
        let text = format!("{err} {err:?}");
        assert!(text.contains(&format!("HTTP {status}")), "{text}");
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "HTTP {status} leaks {secret:?}: {text}"
            );
        }
        receiver.take();
    }
    assert_refused_hides(&*build(&closed_base().await), secrets).await;
}

/// A refused connection is retryable and its text quotes none of `secrets`.
pub(crate) async fn assert_refused_hides(channel: &dyn Deliver, secrets: &[&str]) {
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
        title: "Kimi is back up after 1 h 2 min".to_owned(),
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

/// Kimi down since 14:03 UTC, on Kimi's side.
pub(crate) fn message(event: AlertEvent, kind: IncidentKind) -> AlertMessage {
    AlertMessage {
        event,
        kind,
        title: "Kimi is DOWN (unavailable) since 14:03 UTC".to_owned(),
        summary: "Kimi answered 503 to every probe since 14:03 UTC. It is on Kimi's side: \
                  DeepSeek answers from the same network."
            .to_owned(),
        advice: "Fail over to DeepSeek".to_owned(),
        items: vec![AlertItem {
            monitor: "kimi-chat".to_owned(),
            provider: "kimi".to_owned(),
            provider_name: "Kimi".to_owned(),
            model: Some("kimi-k2.6".to_owned()),
            verdict: Verdict::Unavailable,
            blame: Some(Blame::Provider),
            explanation: "503 from api.moonshot.ai".to_owned(),
            started_at: PAGING_STARTED,
        }],
        started_at: PAGING_STARTED,
        ended_at: None,
        duration_s: None,
        url: Some("https://status.example.com/".to_owned()),
        dedup_key: "isdown:outage:kimi:1767276180000".to_owned(),
    }
}

/// The same incident, over after 1 h 12 min.
pub(crate) fn paging_resolved() -> AlertMessage {
    AlertMessage {
        title: "Kimi is back up".to_owned(),
        ended_at: Some(PAGING_STARTED + 4_320_000),
        duration_s: Some(4_320),
        ..message(AlertEvent::Resolved, IncidentKind::Outage)
    }
}

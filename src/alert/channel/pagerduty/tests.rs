//! The PagerDuty channel against a real receiver on a loopback port: the exact Events API v2
//! bodies, the status mapping, and the routing key kept out of every error and `Debug` output.

use axum::http::{Method, header};
use serde_json::json;

use super::*;
use crate::incident::IncidentKind;
use support::{Received, STARTED, client, message, receiver, resolved};

/// Hex letters only: `secret::redact` would not catch it, so the tests prove the exact scrub.
const KEY: &str = "deadbeefcafebabedeadbeefcafebabe";

/// What the paging channels' tests share (pagerduty, opsgenie, twilio): a recording receiver on
/// a loopback port and one incident's messages. It lives here, not in `channel.rs`, only because
/// this work owns these three channels; it can move to a channel-wide test module unchanged.
pub(in crate::alert::channel) mod support {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use serde_json::Value;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use crate::alert::{AlertEvent, AlertItem, AlertMessage};
    use crate::incident::IncidentKind;
    use crate::time::Millis;
    use crate::verdict::{Blame, Verdict};

    /// 2026-01-01T14:03:00Z.
    pub const STARTED: Millis = 1_767_276_180_000;

    pub struct Received {
        pub method: Method,
        pub uri: Uri,
        pub headers: HeaderMap,
        pub body: Bytes,
    }

    impl Received {
        pub fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }
    }

    type Log = Arc<Mutex<Vec<Received>>>;
    type Answer = Arc<dyn Fn(&Received) -> (u16, String) + Send + Sync>;

    /// A loopback HTTP server, bound before it is spawned, that records every request and
    /// answers it with `answer(request)` as JSON.
    pub struct Receiver {
        pub base: String,
        log: Log,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    pub async fn receiver(
        answer: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log: Log = Arc::default();
        let answer: Answer = Arc::new(answer);
        let app = Router::new()
            .fallback(record)
            .with_state((log.clone(), answer));
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
            log,
            stop,
            task,
        }
    }

    async fn record(
        State((log, answer)): State<(Log, Answer)>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
        let received = Received {
            method,
            uri,
            headers,
            body,
        };
        let (status, body) = answer(&received);
        log.lock().unwrap().push(received);
        (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
    }

    impl Receiver {
        /// Stops the server and returns what it received, in order.
        pub async fn finish(self) -> Vec<Received> {
            let _ = self.stop.send(());
            self.task.await.unwrap();
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    /// A base URL on which nothing listens: the port was just bound and released.
    pub async fn refused_base() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        base
    }

    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// Kimi down since 14:03 UTC, on Kimi's side.
    pub fn message(event: AlertEvent, kind: IncidentKind) -> AlertMessage {
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
                started_at: STARTED,
            }],
            started_at: STARTED,
            ended_at: None,
            duration_s: None,
            url: Some("https://status.example.com/".to_owned()),
            dedup_key: "isdown:outage:kimi:1767276180000".to_owned(),
        }
    }

    /// The same incident, over after 1 h 12 min.
    pub fn resolved() -> AlertMessage {
        AlertMessage {
            title: "Kimi is back up".to_owned(),
            ended_at: Some(STARTED + 4_320_000),
            duration_s: Some(4_320),
            ..message(AlertEvent::Resolved, IncidentKind::Outage)
        }
    }
}

fn accepted(_: &Received) -> (u16, String) {
    (
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": "k"}).to_string(),
    )
}

fn env(var: &str) -> Option<String> {
    (var == "PD_ROUTING_KEY").then(|| KEY.to_owned())
}

fn config(api_url: Option<&str>) -> Config {
    Config {
        routing_key_env: "PD_ROUTING_KEY".to_owned(),
        region: None,
        api_url: api_url.map(str::to_owned),
    }
}

fn channel(base: &str) -> PagerDutyChannel {
    PagerDutyChannel::new("oncall", config(Some(base)), &env, client()).unwrap()
}

// === shapes ===

#[tokio::test]
async fn trigger_and_resolve_share_one_dedup_key_in_the_documented_shapes() {
    let rx = receiver(accepted).await;
    let channel = channel(&rx.base);
    channel
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await
        .unwrap();
    channel.send(&resolved()).await.unwrap();
    let got = rx.finish().await;

    assert_eq!(got.len(), 2);
    for request in &got {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.uri.path(), "/v2/enqueue");
        assert_eq!(request.headers[header::CONTENT_TYPE], "application/json");
    }
    assert_eq!(
        got[0].json(),
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "isdown:outage:kimi:1767276180000",
            "payload": {
                "summary": "Kimi is DOWN (unavailable) since 14:03 UTC — Fail over to DeepSeek",
                "source": "isdown",
                "severity": "critical",
                "timestamp": "2026-01-01T14:03:00Z",
                "component": "kimi",
                "group": "llm-api",
                "class": "outage",
                "custom_details": {
                    "explanation": "Kimi answered 503 to every probe since 14:03 UTC. It is on \
                                    Kimi's side: DeepSeek answers from the same network.",
                    "advice": "Fail over to DeepSeek",
                    "event": "opened",
                    "kind": "outage",
                    "started_at": "2026-01-01T14:03:00Z",
                    "url": "https://status.example.com/",
                    "items": [{
                        "monitor": "kimi-chat",
                        "provider": "Kimi",
                        "model": "kimi-k2.6",
                        "verdict": "unavailable",
                        "blame": "provider",
                        "explanation": "503 from api.moonshot.ai",
                        "since": "2026-01-01T14:03:00Z",
                    }],
                },
            },
            "client": "isdown",
            "client_url": "https://status.example.com/",
            "links": [{ "href": "https://status.example.com/", "text": "isdown status page" }],
        })
    );
    assert_eq!(
        got[1].json(),
        json!({
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": "isdown:outage:kimi:1767276180000",
        })
    );
}

#[tokio::test]
async fn severity_follows_the_message_kind_and_event() {
    let rx = receiver(accepted).await;
    let channel = channel(&rx.base);
    let cases = [
        (
            AlertEvent::Opened,
            IncidentKind::Outage,
            "critical",
            "outage",
        ),
        (
            AlertEvent::Reminder,
            IncidentKind::Network,
            "critical",
            "network",
        ),
        (
            AlertEvent::Opened,
            IncidentKind::SetupProblem,
            "warning",
            "setup_problem",
        ),
        (AlertEvent::Test, IncidentKind::Outage, "info", "test"),
    ];
    for (event, kind, _, _) in cases {
        channel.send(&message(event, kind)).await.unwrap();
    }
    let got = rx.finish().await;
    for ((event, kind, severity, class), request) in cases.iter().zip(&got) {
        let body = request.json();
        assert_eq!(body["event_action"], "trigger", "{event:?} {kind:?}");
        assert_eq!(body["payload"]["severity"], *severity, "{event:?} {kind:?}");
        assert_eq!(body["payload"]["class"], *class, "{event:?} {kind:?}");
    }
    assert_eq!(
        got[1].json()["payload"]["summary"],
        "Still open: Kimi is DOWN (unavailable) since 14:03 UTC — Fail over to DeepSeek"
    );
}

#[tokio::test]
async fn a_test_is_one_info_trigger_that_never_touches_the_incident_key() {
    let rx = receiver(accepted).await;
    let channel = channel(&rx.base);
    let test = message(AlertEvent::Test, IncidentKind::Outage);
    channel.send(&test).await.unwrap();
    let later = AlertMessage {
        started_at: STARTED + 60_000,
        ..test.clone()
    };
    channel.send(&later).await.unwrap();
    let got = rx.finish().await;

    assert_eq!(got.len(), 2, "one request per test, no resolve");
    let first = got[0].json();
    assert_eq!(first["event_action"], "trigger");
    assert_eq!(first["payload"]["severity"], "info");
    assert_ne!(first["dedup_key"], test.dedup_key.as_str());
    assert_ne!(first["dedup_key"], got[1].json()["dedup_key"]);
}

#[tokio::test]
async fn without_a_url_there_are_no_links_and_no_client_url() {
    let rx = receiver(accepted).await;
    let msg = AlertMessage {
        url: None,
        ..message(AlertEvent::Opened, IncidentKind::Outage)
    };
    channel(&rx.base).send(&msg).await.unwrap();
    let body = rx.finish().await[0].json();
    assert!(body.get("links").is_none(), "{body}");
    assert!(body.get("client_url").is_none(), "{body}");
    assert!(body["payload"]["custom_details"].get("url").is_none());
}

#[test]
fn summary_is_cut_to_1024_characters() {
    let msg = AlertMessage {
        title: "é".repeat(2000),
        ..message(AlertEvent::Opened, IncidentKind::Outage)
    };
    let summary = event(KEY, &msg)["payload"]["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(summary.chars().count(), 1024);
    assert!(summary.ends_with('…'));

    let short = message(AlertEvent::Opened, IncidentKind::Outage);
    assert!(
        !event(KEY, &short)["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains('…')
    );
}

#[test]
fn an_overlong_dedup_key_becomes_a_stable_digest() {
    let msg = AlertMessage {
        dedup_key: "k".repeat(300),
        ..message(AlertEvent::Opened, IncidentKind::Outage)
    };
    let trigger = event(KEY, &msg)["dedup_key"].clone();
    let resolve = event(
        KEY,
        &AlertMessage {
            event: AlertEvent::Resolved,
            ..msg
        },
    )["dedup_key"]
        .clone();
    assert_eq!(trigger, resolve);
    assert!(trigger.as_str().unwrap().len() <= 255);
}

// === endpoints ===

#[test]
fn region_picks_the_documented_endpoint() {
    let build = |region: Option<Region>| {
        let config = Config {
            region,
            ..config(None)
        };
        PagerDutyChannel::new("oncall", config, &env, client())
            .unwrap()
            .enqueue_url()
            .to_string()
    };
    assert_eq!(build(None), "https://events.pagerduty.com/v2/enqueue");
    assert_eq!(
        build(Some(Region::Us)),
        "https://events.pagerduty.com/v2/enqueue"
    );
    assert_eq!(
        build(Some(Region::Eu)),
        "https://events.eu.pagerduty.com/v2/enqueue"
    );
}

#[test]
fn api_url_overrides_the_base_and_keeps_its_path() {
    let url = |base: &str| {
        PagerDutyChannel::new("oncall", config(Some(base)), &env, client())
            .unwrap()
            .enqueue_url()
            .to_string()
    };
    assert_eq!(url("http://127.0.0.1:9"), "http://127.0.0.1:9/v2/enqueue");
    assert_eq!(url("http://proxy/pd/"), "http://proxy/pd/v2/enqueue");
}

// === failures ===

async fn send_answered(status: u16, body: &str) -> DeliveryError {
    let body = body.to_owned();
    let rx = receiver(move |_| (status, body.clone())).await;
    let result = channel(&rx.base)
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await;
    rx.finish().await;
    result.unwrap_err()
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable() {
    for status in [500, 502, 503, 429] {
        let err = send_answered(status, r#"{"status":"error"}"#).await;
        assert!(
            matches!(err, DeliveryError::Retryable(_)),
            "{status}: {err:?}"
        );
    }
}

#[tokio::test]
async fn an_invalid_event_is_permanent_and_the_quoted_key_is_scrubbed() {
    // A receiver that quotes the routing key back must not get it into the outbox's log.
    let body = json!({
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [format!("routing key {KEY} is not recognised")],
    })
    .to_string();
    let err = send_answered(400, &body).await;
    let DeliveryError::Permanent(text) = &err else {
        panic!("expected permanent: {err:?}");
    };
    assert!(text.contains("HTTP 400"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let err = channel(&support::refused_base().await)
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Retryable(_)), "{err:?}");
    assert!(!err.to_string().contains(KEY));
}

#[test]
fn debug_output_never_shows_the_routing_key() {
    let channel = channel("http://127.0.0.1:9");
    let debug = format!("{channel:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("oncall"), "{debug}");
}

// === config ===

#[test]
fn config_reads_the_documented_table() {
    let config: Config =
        toml::from_str("routing_key_env = \"PD_ROUTING_KEY\"\nregion = \"eu\"\n").unwrap();
    assert_eq!(config.routing_key_env, "PD_ROUTING_KEY");
    assert_eq!(config.region, Some(Region::Eu));
}

#[test]
fn config_rejects_unknown_fields_and_regions() {
    let unknown = toml::from_str::<Config>("routing_key_env = \"X\"\nrouting_key = \"abc\"\n");
    assert!(unknown.unwrap_err().to_string().contains("routing_key"));
    assert!(toml::from_str::<Config>("routing_key_env = \"X\"\nregion = \"apac\"\n").is_err());
}

#[test]
fn a_missing_environment_variable_names_the_field() {
    let err = PagerDutyChannel::new("oncall", config(None), &|_| None, client()).unwrap_err();
    assert_eq!(err.channel, "oncall");
    assert_eq!(err.field, "routing_key_env");
    assert!(err.message.contains("PD_ROUTING_KEY"), "{err}");
}

#[test]
fn region_and_api_url_together_are_rejected() {
    let config = Config {
        region: Some(Region::Eu),
        ..config(Some("http://127.0.0.1:9"))
    };
    let err = PagerDutyChannel::new("oncall", config, &env, client()).unwrap_err();
    assert_eq!(err.field, "api_url");
}

#[test]
fn a_malformed_api_url_is_rejected() {
    for bad in ["events.pagerduty.com", "ftp://x/", "mailto:a@b"] {
        let err = PagerDutyChannel::new("oncall", config(Some(bad)), &env, client()).unwrap_err();
        assert_eq!(err.field, "api_url", "{bad}");
    }
}

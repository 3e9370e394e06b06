//! The PagerDuty channel against a real receiver on a loopback port: the exact Events API v2
//! bodies, the status mapping, and the routing key kept out of every error and `Debug` output.

use axum::http::{Method, header};
use serde_json::json;

use super::*;
use crate::alert::channel::support::{
    PAGING_STARTED as STARTED, Received, assert_failures_hide, assert_regions, client, message,
    paging_resolved as resolved, receiver,
};
use crate::incident::IncidentKind;

/// Hex letters only: `secret::redact` would not catch it, so the tests prove the exact scrub.
const KEY: &str = "deadbeefcafebabedeadbeefcafebabe";

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
    PagerDutyChannel::new(config(Some(base)).resolve(&env).unwrap(), client())
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
        "Kimi is DOWN (unavailable) since 14:03 UTC — Fail over to DeepSeek"
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
        config.resolve(&env).unwrap().enqueue_url().to_string()
    };
    assert_regions(
        build,
        "https://events.pagerduty.com/v2/enqueue",
        "https://events.eu.pagerduty.com/v2/enqueue",
    );
}

#[test]
fn api_url_overrides_the_base_and_keeps_its_path() {
    let url = |base: &str| {
        config(Some(base))
            .resolve(&env)
            .unwrap()
            .enqueue_url()
            .to_string()
    };
    assert_eq!(url("http://127.0.0.1:9"), "http://127.0.0.1:9/v2/enqueue");
    assert_eq!(url("http://proxy/pd/"), "http://proxy/pd/v2/enqueue");
}

// === failures ===

/// A receiver that quotes the routing key back must not get it into the outbox's log.
#[tokio::test]
async fn failures_map_to_retry_or_give_up_and_never_quote_the_key() {
    assert_failures_hide(
        |base| Box::new(channel(base)),
        |_| {
            json!({
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [format!("routing key {KEY} is not recognised")],
            })
            .to_string()
        },
        &[KEY],
    )
    .await;
}

#[test]
fn debug_output_never_shows_the_routing_key() {
    let channel = channel("http://127.0.0.1:9");
    let debug = format!("{channel:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(
        debug.contains("enqueue") && debug.contains("REDACTED"),
        "{debug}"
    );
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
    let err = config(None).resolve(&|_| None).unwrap_err();
    assert_eq!(err.field, "routing_key_env");
    assert!(err.message.contains("PD_ROUTING_KEY"), "{err}");
}

#[test]
fn region_and_api_url_together_are_rejected() {
    let config = Config {
        region: Some(Region::Eu),
        ..config(Some("http://127.0.0.1:9"))
    };
    let err = config.resolve(&env).unwrap_err();
    assert_eq!(err.field, "api_url");
}

#[test]
fn a_malformed_api_url_is_rejected() {
    for bad in ["events.pagerduty.com", "ftp://x/", "mailto:a@b"] {
        let err = config(Some(bad)).resolve(&env).unwrap_err();
        assert_eq!(err.field, "api_url", "{bad}");
    }
}

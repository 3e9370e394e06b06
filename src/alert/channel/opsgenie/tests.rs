//! The Opsgenie channel against a real receiver on a loopback port: the exact Alert API
//! requests (create and close by alias), the status mapping, and the GenieKey kept out of every
//! error and `Debug` output.

use axum::http::{Method, header};
use serde_json::json;

use super::*;
use crate::alert::channel::support::{
    Received, assert_failures_hide, assert_regions, client, message, paging_resolved as resolved,
    receiver,
};
use crate::incident::IncidentKind;

/// Not key-shaped: `secret::redact` would not catch it, so the tests prove the exact scrub.
const KEY: &str = "opsgenie-integration-secret";

fn accepted(_: &Received) -> (u16, String) {
    (
        202,
        json!({"result": "Request will be processed", "took": 0.1, "requestId": "r"}).to_string(),
    )
}

fn env(var: &str) -> Option<String> {
    (var == "OPSGENIE_KEY").then(|| KEY.to_owned())
}

fn config(api_url: Option<&str>) -> Config {
    Config {
        api_key_env: "OPSGENIE_KEY".to_owned(),
        region: None,
        api_url: api_url.map(str::to_owned),
        tags: Vec::new(),
    }
}

fn channel(base: &str) -> OpsgenieChannel {
    OpsgenieChannel::new(config(Some(base)).resolve(&env).unwrap(), client())
}

// === shapes ===

#[tokio::test]
async fn an_opened_incident_creates_an_alert_aliased_by_the_dedup_key() {
    let rx = receiver(accepted).await;
    let config = Config {
        tags: vec!["team-llm".to_owned()],
        ..config(Some(&rx.base))
    };
    let channel = OpsgenieChannel::new(config.resolve(&env).unwrap(), client());
    channel
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await
        .unwrap();
    let got = rx.finish().await;

    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.uri.path(), "/v2/alerts");
    assert_eq!(request.uri.query(), None);
    assert_eq!(
        request.headers[header::AUTHORIZATION],
        "GenieKey opsgenie-integration-secret"
    );
    assert_eq!(request.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        request.json(),
        json!({
            "message": "Kimi is DOWN (unavailable) since 14:03 UTC",
            "alias": "isdown:outage:kimi:1767276180000",
            "description": "Kimi answered 503 to every probe since 14:03 UTC. It is on Kimi's \
                            side: DeepSeek answers from the same network.\n\
                            \n\
                            What to do: Fail over to DeepSeek\n\
                            \n\
                            Monitors:\n\
                            - kimi-chat (Kimi, kimi-k2.6): unavailable, the provider's side, since \
                            2026-01-01 14:03 UTC. 503 from api.moonshot.ai\n\
                            \n\
                            Status page: https://status.example.com/",
            "priority": "P1",
            "source": "isdown",
            "tags": ["isdown", "outage", "kimi", "unavailable", "team-llm"],
            "details": {
                "event": "opened",
                "kind": "outage",
                "started_at": "2026-01-01T14:03:00Z",
                "verdicts": "unavailable",
                "blame": "provider",
                "monitors": "kimi-chat",
                "url": "https://status.example.com/",
            },
            "entity": "kimi",
        })
    );
}

#[tokio::test]
async fn a_resolve_closes_the_alert_by_alias() {
    let rx = receiver(accepted).await;
    channel(&rx.base).send(&resolved()).await.unwrap();
    let got = rx.finish().await;

    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(
        request.uri.path(),
        "/v2/alerts/isdown:outage:kimi:1767276180000/close"
    );
    assert_eq!(request.uri.query(), Some("identifierType=alias"));
    assert_eq!(
        request.headers[header::AUTHORIZATION],
        "GenieKey opsgenie-integration-secret"
    );
    assert_eq!(
        request.json(),
        json!({ "source": "isdown", "note": "Kimi is back up" })
    );
}

#[test]
fn an_alias_is_one_encoded_path_segment_of_the_close_url() {
    let channel = channel("http://127.0.0.1:9");
    assert_eq!(
        channel.spec.close_url("outage/kimi?x#1 2").as_str(),
        "http://127.0.0.1:9/v2/alerts/outage%2Fkimi%3Fx%231%202/close?identifierType=alias"
    );
}

#[tokio::test]
async fn priority_follows_the_message_severity() {
    let rx = receiver(accepted).await;
    let channel = channel(&rx.base);
    let cases = [
        (AlertEvent::Opened, IncidentKind::Outage, "P1"),
        (AlertEvent::Reminder, IncidentKind::Network, "P1"),
        (AlertEvent::Opened, IncidentKind::SetupProblem, "P3"),
        (AlertEvent::Test, IncidentKind::Outage, "P5"),
    ];
    for (event, kind, _) in cases {
        channel.send(&message(event, kind)).await.unwrap();
    }
    let got = rx.finish().await;
    assert_eq!(got.len(), cases.len());
    for ((event, kind, priority), request) in cases.iter().zip(&got) {
        assert_eq!(request.uri.path(), "/v2/alerts", "{event:?} {kind:?}");
        assert_eq!(request.json()["priority"], *priority, "{event:?} {kind:?}");
    }
}

#[tokio::test]
async fn a_test_creates_an_alert_with_an_alias_of_its_own() {
    let rx = receiver(accepted).await;
    let test = message(AlertEvent::Test, IncidentKind::Outage);
    channel(&rx.base).send(&test).await.unwrap();
    let body = rx.finish().await[0].json();
    assert_ne!(body["alias"], test.dedup_key.as_str());
    assert!(body["alias"].as_str().unwrap().contains(":test:"));
    assert_eq!(body["tags"][1], "test");
    assert_eq!(body["priority"], "P5");
}

#[test]
fn message_is_cut_to_130_characters_and_tags_to_the_documented_limits() {
    let msg = AlertMessage {
        title: "x".repeat(200),
        ..message(AlertEvent::Opened, IncidentKind::Outage)
    };
    let extra: Vec<String> = (0..30).map(|i| format!("tag-{i}")).collect();
    let body = create_body(&msg, "a", &extra);
    let text = body["message"].as_str().unwrap();
    assert_eq!(text.chars().count(), 130);
    assert!(text.ends_with('…'));
    let tags = body["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 20);
}

#[test]
fn an_overlong_dedup_key_becomes_a_stable_alias() {
    let msg = AlertMessage {
        dedup_key: "k".repeat(600),
        ..message(AlertEvent::Opened, IncidentKind::Outage)
    };
    let created = alias(&msg);
    let closed = alias(&AlertMessage {
        event: AlertEvent::Resolved,
        ..msg
    });
    assert_eq!(created, closed);
    assert!(created.len() <= 512);
}

// === endpoints ===

#[test]
fn region_picks_the_documented_api_host() {
    let build = |region: Option<Region>| {
        let config = Config {
            region,
            ..config(None)
        };
        config.resolve(&env).unwrap().alerts_url().to_string()
    };
    assert_regions(
        build,
        "https://api.opsgenie.com/v2/alerts",
        "https://api.eu.opsgenie.com/v2/alerts",
    );
}

// === failures ===

#[tokio::test]
async fn failures_map_to_retry_or_give_up_and_never_quote_the_key() {
    assert_failures_hide(
        |base| Box::new(channel(base)),
        |_| json!({ "message": format!("Key {KEY} is not valid"), "took": 0.0 }).to_string(),
        &[KEY],
    )
    .await;
}

#[test]
fn debug_output_never_shows_the_key() {
    let debug = format!("{:?}", channel("http://127.0.0.1:9"));
    assert!(!debug.contains(KEY), "{debug}");
    assert!(
        debug.contains("alerts") && debug.contains("REDACTED"),
        "{debug}"
    );
}

// === config ===

#[test]
fn config_reads_the_documented_table() {
    let config: Config =
        toml::from_str("api_key_env = \"OPSGENIE_KEY\"\nregion = \"eu\"\ntags = [\"a\"]\n")
            .unwrap();
    assert_eq!(config.api_key_env, "OPSGENIE_KEY");
    assert_eq!(config.region, Some(Region::Eu));
    assert_eq!(config.tags, ["a"]);
}

#[test]
fn config_rejects_unknown_fields() {
    let err = toml::from_str::<Config>("api_key_env = \"X\"\napi_key = \"abc\"\n").unwrap_err();
    assert!(err.to_string().contains("api_key"), "{err}");
}

#[test]
fn a_missing_environment_variable_names_the_field() {
    let err = config(None).resolve(&|_| None).unwrap_err();
    assert_eq!(err.field, "api_key_env");
    assert!(err.message.contains("OPSGENIE_KEY"), "{err}");
}

#[test]
fn invalid_settings_are_rejected_at_construction() {
    let both = Config {
        region: Some(Region::Eu),
        ..config(Some("http://127.0.0.1:9"))
    };
    let long_tag = Config {
        tags: vec!["t".repeat(51)],
        ..config(None)
    };
    let cases = [
        (both, "api_url"),
        (config(Some("not a url")), "api_url"),
        (long_tag, "tags"),
    ];
    for (config, field) in cases {
        let err = config.resolve(&env).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

//! Teams: the Workflows message a real receiver gets, the size cap, failure mapping and config.

use serde_json::{Value, json};

use super::CARD_BYTES_MAX;
use crate::alert::AlertMessage;
use crate::alert::channel::Deliver;
use crate::alert::channel::http::JsonPost;
use crate::alert::channel::http::UrlEnvConfig as Config;
use crate::alert::channel::support::{
    Receiver, assert_refused_hides, assert_status_mapping, closed_base, env, opened, oversized,
    resolved, url_env_post,
};

const FLOW_PATH: &str = "/workflows/abc/triggers/manual/paths/invoke";
const FLOW_QUERY: &str = "api-version=1&sig=SIGSECRET123";

fn channel(url: &str) -> JsonPost {
    url_env_post("TEAMS_URL", url, super::payload)
}

/// Sends `message` to a flow answering `status` (Workflows answer 202 Accepted).
async fn delivered_with(status: u16, message: &AlertMessage) -> Value {
    let mut receiver = Receiver::start(status, "").await;
    let url = receiver.url(&format!("{FLOW_PATH}?{FLOW_QUERY}"));
    channel(&url).send(message).await.unwrap();
    let request = receiver.take();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, FLOW_PATH);
    assert_eq!(request.query.as_deref(), Some(FLOW_QUERY));
    assert_eq!(request.header("content-type"), "application/json");
    request.json()
}

fn card(body: &Value) -> &Value {
    &body["attachments"][0]["content"]
}

#[tokio::test]
async fn opened_message_posts_an_adaptive_card_in_a_message_envelope() {
    let body = delivered_with(202, &opened()).await;
    assert_eq!(body["type"], "message");
    let attachments = body["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert!(attachments[0]["contentUrl"].is_null());
    assert!(
        attachments[0]
            .as_object()
            .unwrap()
            .contains_key("contentUrl")
    );

    let card = card(&body);
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");

    let blocks = card["body"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "TextBlock");
    assert_eq!(blocks[0]["color"], "Attention");
    assert_eq!(blocks[0]["weight"], "Bolder");
    assert!(blocks[0]["text"].as_str().unwrap().contains("Kimi is DOWN"));
    assert!(
        blocks[1]["text"]
            .as_str()
            .unwrap()
            .contains("provider's side")
    );
    assert_eq!(
        blocks[2]["text"],
        "**What to do:** Fail over to DeepSeek; check status.moonshot.cn"
    );
    assert_eq!(
        blocks[3],
        json!({ "type": "FactSet", "facts": [
            { "title": "Event", "value": "Opened" },
            { "title": "When", "value": "Since 2026-11-25 14:03 UTC" },
            { "title": "Dedup key", "value": "isdown-outage-kimi-1795615387" },
        ]})
    );
    // Two monitors: a TextBlock and a FactSet each.
    assert_eq!(blocks.len(), 8);
    assert_eq!(blocks[4]["text"], "Kimi · kimi-large (monitor kimi-chat)");
    assert_eq!(
        blocks[5]["facts"],
        json!([
            { "title": "Verdict", "value": "unavailable" },
            { "title": "Whose side", "value": "the provider's side" },
            { "title": "Since", "value": "2026-11-25 14:03 UTC" },
            { "title": "Details", "value": "HTTP 503: upstream connect error" },
        ])
    );
    assert_eq!(
        blocks[6]["text"],
        "Moonshot · moonshot-large (monitor moonshot-chat)"
    );

    assert_eq!(
        card["actions"],
        json!([{
            "type": "Action.OpenUrl",
            "title": "Open status page",
            "url": "https://status.example.com/incidents/42",
        }])
    );
}

#[tokio::test]
async fn resolved_message_is_good_states_the_duration_and_has_no_action_without_url() {
    let body = delivered_with(200, &resolved()).await;
    let card = card(&body);
    assert_eq!(card["body"][0]["color"], "Good");
    assert!(
        card["body"][3]["facts"][1]["value"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-25 14:03 UTC → 2026-11-25 15:05 UTC")
    );
    assert!(card.get("actions").is_none());
}

#[tokio::test]
async fn large_alerts_stay_under_the_message_size_limit() {
    // Four bytes per character in UTF-8: the worst case for the byte cap.
    let mut message = oversized(5000, 40);
    for item in &mut message.items {
        item.explanation = "😀".repeat(5000);
    }
    let body = delivered_with(202, &message).await;
    let size = serde_json::to_vec(&body).unwrap().len();
    assert!(size <= CARD_BYTES_MAX, "{size} bytes");
    let blocks = card(&body)["body"].as_array().unwrap();
    let last = blocks.last().unwrap()["text"].as_str().unwrap();
    assert!(
        last.starts_with("…and ") && last.ends_with(" more monitors"),
        "{last}"
    );
    let title = blocks[0]["text"].as_str().unwrap();
    assert!(title.chars().count() <= 300 && title.ends_with('…'));
}

#[tokio::test]
async fn http_failures_map_to_retryable_or_permanent() {
    assert_status_mapping(
        |base| Box::new(channel(&format!("{base}{FLOW_PATH}?{FLOW_QUERY}"))),
        |_| r#"{"error":{"code":"TriggerInputSchemaMismatch"}}"#.to_owned(),
    )
    .await;
}

#[tokio::test]
async fn refused_connection_is_retryable_and_hides_the_signed_url() {
    let url = format!("{}{FLOW_PATH}?{FLOW_QUERY}", closed_base().await);
    assert_refused_hides(&channel(&url), &[&url, "SIGSECRET123"]).await;
}

#[test]
fn config_rejects_unknown_fields_and_missing_secrets() {
    let err = toml::from_str::<Config>("url_env = \"T\"\nurl = \"https://x\"").unwrap_err();
    assert!(err.to_string().contains("url"), "{err}");
    let config: Config = toml::from_str("url_env = \"TEAMS_URL\"").unwrap();
    let err = config.resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "url_env");
    assert!(err.message.contains("TEAMS_URL"));
}

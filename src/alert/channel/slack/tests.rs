//! Slack: the body a real receiver gets, Block Kit limits, escaping, failure mapping and config.

use serde_json::Value;

use crate::alert::channel::Deliver;
use crate::alert::channel::http::JsonPost;
use crate::alert::channel::http::UrlEnvConfig as Config;
use crate::alert::channel::support::{
    Receiver, assert_refused_hides, assert_status_mapping, closed_base, env, keys, opened,
    oversized, resolved, url_env_post,
};
use crate::alert::render::{escape_markup, truncate};
use crate::alert::{AlertMessage, DeliveryError};

const HOOK_PATH: &str = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX";

fn channel(url: &str) -> JsonPost {
    url_env_post("SLACK_URL", url, super::payload)
}

async fn delivered(message: &AlertMessage) -> Value {
    let mut receiver = Receiver::start(200, "ok").await;
    channel(&receiver.url(HOOK_PATH))
        .send(message)
        .await
        .unwrap();
    let request = receiver.take();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, HOOK_PATH);
    assert_eq!(request.header("content-type"), "application/json");
    assert!(receiver.nothing_more());
    request.json()
}

fn blocks_of<'a>(body: &'a Value, kind: &str) -> Vec<&'a Value> {
    body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == kind)
        .collect()
}

fn chars(value: &Value) -> usize {
    value.as_str().unwrap().chars().count()
}

#[tokio::test]
async fn opened_message_posts_block_kit_with_fallback_text() {
    let body = delivered(&opened()).await;
    let keys = keys(&body);
    assert_eq!(keys, ["blocks", "text"], "no channel/username overrides");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("Kimi is DOWN (unavailable) since 14:03 UTC"),
        "{text}"
    );

    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Kimi is DOWN")
    );

    let overview = blocks[1]["text"]["text"].as_str().unwrap();
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    assert!(overview.contains("on the provider's side"), "{overview}");
    assert!(
        overview.contains("*What to do:* Fail over to DeepSeek"),
        "{overview}"
    );
    assert!(
        overview.contains("Since 2026-11-25 14:03 UTC"),
        "{overview}"
    );

    // One section per monitor: subject and explanation, then verdict, blame and start as fields.
    let kimi = &blocks[2];
    assert_eq!(kimi["type"], "section");
    let kimi_text = kimi["text"]["text"].as_str().unwrap();
    assert!(
        kimi_text.contains("*Kimi · kimi-large (monitor kimi-chat)*"),
        "{kimi_text}"
    );
    assert!(kimi_text.contains("HTTP 503: upstream connect error"));
    let fields: Vec<&str> = kimi["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "*Verdict*\n`unavailable`",
            "*Whose side*\nthe provider's side",
            "*Since*\n2026-11-25 14:03 UTC"
        ]
    );
    assert!(
        blocks[3]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Moonshot")
    );

    let context = blocks.last().unwrap();
    assert_eq!(context["type"], "context");
    let elements = context["elements"].as_array().unwrap();
    assert!(
        elements[0]["text"]
            .as_str()
            .unwrap()
            .contains("`isdown-outage-kimi-1795615387`")
    );
    assert_eq!(
        elements[1]["text"],
        "<https://status.example.com/incidents/42|Status page>"
    );
    assert_eq!(blocks.len(), 5);
}

#[tokio::test]
async fn resolved_message_states_the_duration_and_has_no_link_without_url() {
    let body = delivered(&resolved()).await;
    let overview = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        overview.contains("_2026-11-25 14:03 UTC → 2026-11-25 15:05 UTC_"),
        "{overview}"
    );
    assert!(
        body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with('✅')
    );
    let context = blocks_of(&body, "context");
    assert_eq!(context[0]["elements"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn long_texts_and_many_monitors_are_cut_to_block_kit_limits() {
    let body = delivered(&oversized(5000, 60)).await;
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 50);
    for header in blocks_of(&body, "header") {
        assert!(chars(&header["text"]["text"]) <= 150);
    }
    for section in blocks_of(&body, "section") {
        assert!(chars(&section["text"]["text"]) <= 3000);
        for field in section["fields"].as_array().into_iter().flatten() {
            assert!(chars(&field["text"]) <= 2000);
        }
    }
    let explanation = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(explanation.ends_with('…'), "a cut says so");
    assert_eq!(
        blocks[48]["text"]["text"], "…and 14 more monitors",
        "46 monitors shown, the rest counted"
    );
    assert!(chars(&body["text"]) <= 3000);
}

#[tokio::test]
async fn provider_text_cannot_inject_mentions_or_links() {
    let mut message = opened();
    message.items[0].explanation = "<!channel> see <http://evil|here> & retry".to_owned();
    let body = delivered(&message).await;
    let text = body["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;!channel&gt; see &lt;http://evil|here&gt; &amp; retry"),
        "{text}"
    );
}

#[tokio::test]
async fn http_failures_map_to_retryable_or_permanent() {
    assert_status_mapping(
        |base| Box::new(channel(&format!("{base}{HOOK_PATH}"))),
        |_| "invalid_payload".to_owned(),
    )
    .await;
}

#[tokio::test]
async fn refused_connection_is_retryable_and_hides_the_webhook_url() {
    let url = format!("{}{HOOK_PATH}", closed_base().await);
    assert_refused_hides(&channel(&url), &[&url, HOOK_PATH, "XXXXXXXXXXXX"]).await;
}

#[test]
fn unknown_config_fields_are_rejected() {
    let err = toml::from_str::<Config>("url_env = \"SLACK_URL\"\nchannel = \"#ops\"").unwrap_err();
    assert!(err.to_string().contains("channel"), "{err}");
    let config: Config = toml::from_str("url_env = \"SLACK_URL\"").unwrap();
    assert_eq!(config.url_env, "SLACK_URL");
}

#[test]
fn missing_or_invalid_webhook_url_names_the_field_not_the_value() {
    let config = Config {
        url_env: "SLACK_URL".to_owned(),
    };
    let err = config.clone().resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "url_env");
    assert!(err.message.contains("SLACK_URL"), "{err}");

    let secret = "hooks.slack.com/services/T0/B0/SECRET";
    let err = config.resolve(&env(&[("SLACK_URL", secret)])).unwrap_err();
    assert_eq!(err.field, "url_env");
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[test]
fn debug_output_hides_the_webhook_url() {
    let channel = channel("https://hooks.slack.com/services/T0/B0/SECRET");
    assert!(!format!("{channel:?}").contains("SECRET"));
}

#[test]
fn escaping_never_splits_an_entity_and_respects_the_budget() {
    assert_eq!(escape_markup("a<b>&c", 100), "a&lt;b&gt;&amp;c");
    // "a&lt;" is 5 characters; one more would not leave room for the ellipsis.
    assert_eq!(escape_markup("a<b>&c", 7), "a&lt;b…");
    assert_eq!(escape_markup("a<b>&c", 6), "a&lt;…");
    assert_eq!(escape_markup("a<b>&c", 5), "a…");
    assert_eq!(truncate("héllo", 5), "héllo");
    assert_eq!(truncate("héllo!", 5), "héll…");
}

#[tokio::test]
async fn delivery_error_texts_carry_the_receiver_answer() {
    let mut receiver = Receiver::start(404, "channel_not_found").await;
    let err = channel(&receiver.url(HOOK_PATH))
        .send(&opened())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Permanent("HTTP 404: channel_not_found".to_owned())
    );
    receiver.take();
}

//! Discord: the body a real receiver gets, embed limits, failure mapping and config.

use serde_json::{Value, json};

use super::Config;
use crate::alert::AlertMessage;
use crate::alert::channel::Deliver;
use crate::alert::channel::http::JsonPost;
use crate::alert::channel::support::{
    Received, Receiver, assert_refused_hides, assert_status_mapping, client, closed_base, env,
    opened, oversized, resolved,
};

const HOOK_PATH: &str = "/api/webhooks/1234567890/SECRETTOKENabcdef";

fn channel(url: &str) -> JsonPost {
    let config = Config {
        url_env: "DISCORD_URL".to_owned(),
    };
    JsonPost::new(
        config.resolve(&env(&[("DISCORD_URL", url)])).unwrap(),
        client(),
        super::payload,
    )
}

async fn delivered_to(path: &str, message: &AlertMessage) -> Received {
    // With `wait=true` Discord answers 200 and the created message.
    let mut receiver = Receiver::start(200, r#"{"id":"1","type":0}"#).await;
    channel(&receiver.url(path)).send(message).await.unwrap();
    let request = receiver.take();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, HOOK_PATH);
    assert_eq!(request.header("content-type"), "application/json");
    request
}

async fn delivered(message: &AlertMessage) -> Value {
    let request = delivered_to(HOOK_PATH, message).await;
    assert_eq!(request.query.as_deref(), Some("wait=true"));
    request.json()
}

fn chars(value: &Value) -> usize {
    value.as_str().unwrap().chars().count()
}

#[tokio::test]
async fn opened_message_posts_one_embed_without_mentions() {
    let body = delivered(&opened()).await;
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
    let content = body["content"].as_str().unwrap();
    assert!(content.contains("**Opened**: Kimi is DOWN"), "{content}");

    let embeds = body["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 1);
    let embed = &embeds[0];
    assert_eq!(embed["title"], "Kimi is DOWN (unavailable) since 14:03 UTC");
    assert_eq!(embed["url"], "https://status.example.com/incidents/42");
    assert_eq!(embed["color"], 0xE0_1E_5A, "critical is red");
    assert_eq!(embed["timestamp"], "2026-11-25T14:03:07Z");
    let description = embed["description"].as_str().unwrap();
    assert!(
        description.contains("on the provider's side"),
        "{description}"
    );
    assert!(description.contains("**What to do:** Fail over to DeepSeek"));
    assert!(description.contains("Since 2026-11-25 14:03 UTC"));

    let fields = embed["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0]["name"], "Kimi · kimi-large (monitor kimi-chat)");
    assert_eq!(
        fields[0]["value"],
        "`unavailable` · the provider's side · since 2026-11-25 14:03 UTC\n\
         HTTP 503: upstream connect error"
    );
    assert_eq!(
        fields[1]["name"],
        "Moonshot · moonshot-large (monitor moonshot-chat)"
    );
    assert!(
        embed["footer"]["text"]
            .as_str()
            .unwrap()
            .contains("isdown-outage-kimi-1795615387")
    );
}

#[tokio::test]
async fn resolved_message_is_green_stamped_at_the_end_and_states_the_duration() {
    let body = delivered(&resolved()).await;
    let embed = &body["embeds"][0];
    assert_eq!(embed["color"], 0x2E_B6_7D);
    assert_eq!(embed["timestamp"], "2026-11-25T15:05:10Z");
    assert!(embed.get("url").is_none(), "no status page configured");
    assert!(
        embed["description"]
            .as_str()
            .unwrap()
            .contains("2026-11-25 14:03 UTC → 2026-11-25 15:05 UTC")
    );
}

#[tokio::test]
async fn long_texts_and_many_monitors_stay_within_embed_limits() {
    for items in [1, 2, 40] {
        let body = delivered(&oversized(5000, items)).await;
        let embed = &body["embeds"][0];
        assert!(chars(&body["content"]) <= 2000);
        assert!(chars(&embed["title"]) <= 256);
        assert!(chars(&embed["description"]) <= 4096);
        assert!(chars(&embed["footer"]["text"]) <= 2048);
        let fields = embed["fields"].as_array().unwrap();
        assert!(fields.len() <= 25);
        let mut total =
            chars(&embed["title"]) + chars(&embed["description"]) + chars(&embed["footer"]["text"]);
        for field in fields {
            assert!(chars(&field["name"]) <= 256);
            assert!(chars(&field["value"]) <= 1024);
            total += chars(&field["name"]) + chars(&field["value"]);
        }
        assert!(total <= 6000, "{items} monitors: embed total {total}");
        assert!(fields[0]["value"].as_str().unwrap().ends_with('…'));
        let counted = fields.last().unwrap()["name"] == "More monitors";
        assert_eq!(
            counted,
            items == 40,
            "{items} monitors: only what does not fit is counted"
        );
    }
}

#[tokio::test]
async fn many_short_monitors_fill_at_most_25_fields() {
    let mut message = opened();
    message.items = (0..30).map(|_| message.items[0].clone()).collect();
    let body = delivered(&message).await;
    let fields = body["embeds"][0]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 25);
    assert_eq!(fields[24]["value"], "…and 6 more");
}

#[tokio::test]
async fn the_webhook_urls_own_query_is_kept_next_to_wait() {
    let request = delivered_to(&format!("{HOOK_PATH}?thread_id=42&wait=false"), &opened()).await;
    assert_eq!(request.query.as_deref(), Some("thread_id=42&wait=true"));
}

#[tokio::test]
async fn http_failures_map_to_retryable_or_permanent() {
    assert_status_mapping(
        |base| Box::new(channel(&format!("{base}{HOOK_PATH}"))),
        |status| format!(r#"{{"message": "error {status}", "code": 0}}"#),
    )
    .await;
}

#[tokio::test]
async fn refused_connection_is_retryable_and_hides_the_webhook_token() {
    let url = format!("{}{HOOK_PATH}", closed_base().await);
    assert_refused_hides(&channel(&url), &[&url, "SECRETTOKEN"]).await;
}

#[test]
fn config_rejects_unknown_fields_and_missing_secrets() {
    let err = toml::from_str::<Config>("url_env = \"D\"\nusername = \"bot\"").unwrap_err();
    assert!(err.to_string().contains("username"), "{err}");

    let config: Config = toml::from_str("url_env = \"DISCORD_URL\"").unwrap();
    let err = config.clone().resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "url_env");
    assert!(err.message.contains("DISCORD_URL"));

    let bad = env(&[("DISCORD_URL", "discord.com/api/webhooks/1/SECRETTOKEN")]);
    let err = config.resolve(&bad).unwrap_err();
    assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
}

#[test]
fn debug_output_hides_the_webhook_token() {
    let channel = channel("https://discord.com/api/webhooks/1/SECRETTOKEN");
    assert!(!format!("{channel:?}").contains("SECRETTOKEN"));
}

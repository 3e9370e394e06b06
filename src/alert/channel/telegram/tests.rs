//! Telegram: the request a real Bot API stand-in gets, HTML escaping, the length limit, `ok:
//! false` answers, token hygiene and config.

use serde_json::{Value, json};

use super::{ChatId, Config, TelegramChannel};
use crate::alert::channel::Deliver;
use crate::alert::channel::support::{
    Receiver, assert_refused_hides, assert_status_mapping, client, closed_base, env, keys, opened,
    oversized, resolved,
};
use crate::alert::{AlertMessage, DeliveryError};

const TOKEN: &str = "123456789:AAHsecretTOKENpart_xyz-987";
const OK: &str = r#"{"ok":true,"result":{"message_id":7}}"#;

fn config(api_base: &str, chat_id: ChatId) -> Config {
    Config {
        token_env: "TG_TOKEN".to_owned(),
        chat_id,
        api_base: api_base.to_owned(),
    }
}

fn channel(api_base: &str) -> TelegramChannel {
    let config = config(api_base, ChatId::Id(-1_001_234_567_890));
    TelegramChannel::new(
        config.resolve(&env(&[("TG_TOKEN", TOKEN)])).unwrap(),
        client(),
    )
}

async fn delivered(message: &AlertMessage) -> Value {
    let mut receiver = Receiver::start(200, OK).await;
    channel(&receiver.base).send(message).await.unwrap();
    let request = receiver.take();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(request.header("content-type"), "application/json");
    request.json()
}

fn text(body: &Value) -> &str {
    body["text"].as_str().unwrap()
}

#[tokio::test]
async fn opened_message_is_one_html_send_message() {
    let body = delivered(&opened()).await;
    let keys = keys(&body);
    assert_eq!(
        keys,
        ["chat_id", "disable_web_page_preview", "parse_mode", "text"]
    );
    assert_eq!(body["chat_id"], json!(-1_001_234_567_890_i64));
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["disable_web_page_preview"], true);

    let text = text(&body);
    assert!(
        text.starts_with("🔴 <b>Kimi is DOWN (unavailable) since 14:03 UTC</b>\n"),
        "{text}"
    );
    assert!(text.contains("on the provider's side"));
    assert!(text.contains("<b>What to do:</b> Fail over to DeepSeek"));
    assert!(text.contains("<i>Since 2026-11-25 14:03 UTC</i>"));
    assert!(text.contains(
        "• <b>Kimi · kimi-large (monitor kimi-chat)</b>: <code>unavailable</code>, \
         the provider's side, since 2026-11-25 14:03 UTC\nHTTP 503: upstream connect error"
    ));
    assert!(text.contains("<b>Moonshot · moonshot-large (monitor moonshot-chat)</b>"));
    assert!(text.contains("<a href=\"https://status.example.com/incidents/42\">Status page</a>"));
    assert!(text.ends_with("Dedup key: <code>isdown-outage-kimi-1795615387</code>"));
}

#[tokio::test]
async fn resolved_message_states_the_duration() {
    let body = delivered(&resolved()).await;
    let text = text(&body);
    assert!(text.starts_with("✅ "));
    assert!(
        text.contains("back up after 1 h 2 min")
            && text.contains("14:03 UTC → 2026-11-25 15:05 UTC"),
        "{text}"
    );
    assert!(!text.contains("<a href"), "no status page configured");
}

#[tokio::test]
async fn every_interpolated_value_is_html_escaped() {
    let mut message = opened();
    message.title = "<script>alert(1)</script>".to_owned();
    message.items[0].explanation = "a < b && c > d".to_owned();
    message.url = Some("https://status.example.com/?a=1&b=\"2\"".to_owned());
    let body = delivered(&message).await;
    let text = text(&body);
    assert!(!text.contains("<script>"), "{text}");
    assert!(text.contains("<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"));
    assert!(text.contains("a &lt; b &amp;&amp; c &gt; d"));
    assert!(text.contains("href=\"https://status.example.com/?a=1&amp;b=&quot;2&quot;\""));
}

#[tokio::test]
async fn long_alerts_stay_within_4096_characters() {
    // Emoji are two UTF-16 units each: the worst case for Telegram's count.
    let mut message = oversized(5000, 30);
    message.summary = "😀".repeat(5000);
    message.title = "<".repeat(5000);
    let body = delivered(&message).await;
    let text = text(&body);
    assert!(text.encode_utf16().count() <= 4096, "{}", text.len());
    assert!(text.contains("more monitors"));
    assert!(
        text.contains("<b>&lt;"),
        "an entity is never split: {}",
        &text[..40]
    );
}

#[tokio::test]
async fn ok_false_is_a_failure_even_with_http_200() {
    let answer = r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
    let mut receiver = Receiver::start(200, answer).await;
    let err = channel(&receiver.base).send(&opened()).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Permanent("Telegram 400: Bad Request: chat not found".to_owned())
    );
    receiver.take();
}

#[tokio::test]
async fn flood_control_is_retryable_with_retry_after() {
    let answer = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
    let mut receiver = Receiver::start(429, answer).await;
    let err = channel(&receiver.base).send(&opened()).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Retryable(
            "Telegram 429: Too Many Requests: retry after 7 (retry after 7 s)".to_owned()
        )
    );
    receiver.take();
}

#[tokio::test]
async fn http_failures_map_to_retryable_or_permanent() {
    assert_status_mapping(
        |base| Box::new(channel(base)),
        |status| format!(r#"{{"ok":false,"error_code":{status},"description":"failed"}}"#),
    )
    .await;
    // A stand-in that does not speak the Bot API is judged by status.
    assert_status_mapping(|base| Box::new(channel(base)), |_| "<html>".to_owned()).await;
}

#[tokio::test]
async fn refused_connection_is_retryable_and_never_shows_the_token() {
    let base = closed_base().await;
    assert_refused_hides(&channel(&base), &[TOKEN, "AAHsecret"]).await;
}

#[tokio::test]
async fn error_texts_never_show_the_token() {
    let answer = format!(r#"{{"ok":false,"error_code":401,"description":"Unauthorized {TOKEN}"}}"#);
    let mut receiver = Receiver::start(401, &answer).await;
    let err = channel(&receiver.base).send(&opened()).await.unwrap_err();
    assert!(!err.to_string().contains("AAHsecret"), "{err}");
    receiver.take();
}

#[tokio::test]
async fn chat_id_is_sent_as_configured() {
    let parsed: Config =
        toml::from_str("token_env = \"TG_TOKEN\"\nchat_id = \"@isdown_alerts\"").unwrap();
    assert_eq!(parsed.chat_id, ChatId::Name("@isdown_alerts".to_owned()));
    assert_eq!(parsed.api_base, "https://api.telegram.org");
    let numeric: Config = toml::from_str("token_env = \"T\"\nchat_id = -100123").unwrap();
    assert_eq!(numeric.chat_id, ChatId::Id(-100_123));

    let mut receiver = Receiver::start(200, OK).await;
    let config = Config {
        api_base: format!("{}/", receiver.base),
        ..parsed
    };
    let channel = TelegramChannel::new(
        config.resolve(&env(&[("TG_TOKEN", TOKEN)])).unwrap(),
        client(),
    );
    channel.send(&opened()).await.unwrap();
    let request = receiver.take();
    assert_eq!(
        request.path,
        format!("/bot{TOKEN}/sendMessage"),
        "no double slash"
    );
    assert_eq!(request.json()["chat_id"], "@isdown_alerts");
}

#[test]
fn config_errors_name_the_field_and_never_the_token() {
    let err = toml::from_str::<Config>("token_env = \"T\"\nchat_id = 1\nparse_mode = \"HTML\"")
        .unwrap_err();
    assert!(err.to_string().contains("parse_mode"), "{err}");

    let base = "https://api.telegram.org";
    let err = config(base, ChatId::Id(1)).resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "token_env");
    assert!(err.message.contains("TG_TOKEN"));

    let pasted_url = format!("https://api.telegram.org/bot{TOKEN}");
    let bad = env(&[("TG_TOKEN", pasted_url.as_str())]);
    let err = config(base, ChatId::Id(1)).resolve(&bad).unwrap_err();
    assert_eq!(err.field, "token_env");
    assert!(!err.to_string().contains("AAHsecret"), "{err}");

    let good = env(&[("TG_TOKEN", TOKEN)]);
    let empty_chat = config(base, ChatId::Name(" ".to_owned()));
    let err = empty_chat.resolve(&good).unwrap_err();
    assert_eq!(err.field, "chat_id");

    let err = config("ftp://x", ChatId::Id(1)).resolve(&good).unwrap_err();
    assert_eq!(err.field, "api_base");

    let channel = TelegramChannel::new(
        config(base, ChatId::Id(1)).resolve(&good).unwrap(),
        client(),
    );
    assert!(!format!("{channel:?}").contains("AAHsecret"));
}

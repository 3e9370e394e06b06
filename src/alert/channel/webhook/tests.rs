//! Webhook: the default body, templates, the signature a receiver verifies, headers, failure
//! mapping and config.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Config, WebhookChannel};
use crate::alert::channel::Deliver;
use crate::alert::channel::support::{
    Received, Receiver, assert_refused_hides, assert_status_mapping, client, closed_base, env,
    opened, resolved,
};
use crate::alert::{AlertMessage, DeliveryError};

const SECRET: &str = "whsec_5f2b8c0d9e7a4136b1c2d3e4f5a6b7c8";

fn config(url: &str) -> Config {
    Config {
        url: Some(url.to_owned()),
        url_env: None,
        secret_env: None,
        template: None,
        headers: BTreeMap::new(),
    }
}

fn build(config: Config) -> WebhookChannel {
    WebhookChannel::new(
        config.resolve(&env(&[("HOOK_SECRET", SECRET)])).unwrap(),
        client(),
    )
}

async fn delivered(config: impl FnOnce(String) -> Config, message: &AlertMessage) -> Received {
    let mut receiver = Receiver::start(204, "").await;
    let channel = build(config(receiver.url("/isdown")));
    channel.send(message).await.unwrap();
    let request = receiver.take();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/isdown");
    assert_eq!(request.header("content-type"), "application/json");
    request
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn default_body_is_the_message_with_version_and_severity() {
    let request = delivered(|url| config(&url), &opened()).await;
    let body = request.json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["event"], "opened");
    assert_eq!(body["kind"], "outage");
    assert_eq!(body["title"], "Kimi is DOWN (unavailable) since 14:03 UTC");
    assert_eq!(body["dedup_key"], "isdown-outage-kimi-1795615387");
    assert_eq!(body["url"], "https://status.example.com/incidents/42");
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert_eq!(body["items"][0]["verdict"], "unavailable");
    assert_eq!(body["items"][0]["blame"], "provider");
    // Everything else is exactly the message as serde writes it.
    let mut rest = body.as_object().unwrap().clone();
    rest.remove("version");
    rest.remove("severity");
    assert_eq!(Value::Object(rest), serde_json::to_value(opened()).unwrap());
    assert_eq!(
        request.header("x-isdown-signature"),
        "",
        "unsigned without a secret"
    );

    let resolved = delivered(|url| config(&url), &resolved()).await.json();
    assert_eq!(resolved["severity"], "info");
    assert_eq!(resolved["duration_s"], 3723);
}

#[tokio::test]
async fn signature_verifies_with_an_independent_hmac_and_the_timestamp_is_recent() {
    let signed = |url: String| Config {
        secret_env: Some("HOOK_SECRET".to_owned()),
        ..config(&url)
    };
    let request = delivered(signed, &opened()).await;
    let timestamp = request.header("x-isdown-timestamp");
    let seconds: u64 = timestamp.parse().unwrap();
    assert!(now().abs_diff(seconds) <= 60, "recent: {seconds}");

    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        request.header("x-isdown-signature"),
        format!("sha256={expected}")
    );

    // A body changed in transit no longer verifies.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&request.body[1..]);
    let hex = request
        .header("x-isdown-signature")
        .trim_start_matches("sha256=");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert!(mac.verify_slice(&bytes).is_err());
}

#[tokio::test]
async fn template_placeholders_are_substituted_json_escaped() {
    let template = r#"{"text": "{{title}}: {{summary}}", "sev": "{{severity}}", "event": "{{event}}",
        "kind": "{{kind}}", "key": "{{ dedup_key }}", "link": "{{url}}", "advice": "{{advice}}",
        "from": "{{started_at}}", "to": "{{ended_at}}", "secs": "{{duration_s}}"}"#;
    let templated = |url: String| Config {
        template: Some(template.to_owned()),
        ..config(&url)
    };
    let mut message = resolved();
    message.title = "Kimi said \"no\" \\ {{summary}}".to_owned();
    message.summary = "line one\nline two".to_owned();
    let body = delivered(templated, &message).await.json();
    assert_eq!(
        body,
        json!({
            "text": "Kimi said \"no\" \\ {{summary}}: line one\nline two",
            "sev": "info",
            "event": "resolved",
            "kind": "outage",
            "key": "isdown-outage-kimi-1795615387",
            "link": "",
            "advice": "Nothing to do.",
            "from": "2026-11-25T14:03:07Z",
            "to": "2026-11-25T15:05:10Z",
            "secs": "3723",
        })
    );
}

#[test]
fn templates_are_checked_when_the_channel_is_built() {
    let with = |template: &str| {
        let config = Config {
            template: Some(template.to_owned()),
            ..config("https://example.internal/isdown")
        };
        config.resolve(&env(&[])).unwrap_err()
    };
    let err = with(r#"{"text": "{{titel}}"}"#);
    assert_eq!(err.field, "template");
    assert!(
        err.message.contains("{{titel}}") && err.message.contains("title"),
        "{err}"
    );

    // Outside quotes a value breaks the JSON (and an absent one leaves nothing).
    let err = with(r#"{"secs": {{duration_s}}}"#);
    assert!(err.message.contains("valid JSON"), "{err}");
    let err = with(r#"{"text": {{title}}}"#);
    assert!(err.message.contains("valid JSON"), "{err}");
    let err = with(r#"{"text": "{{title}""#);
    assert!(err.message.contains("closing"), "{err}");
}

#[tokio::test]
async fn extra_headers_are_sent_and_reserved_ones_refused() {
    let with_headers = |url: String| Config {
        headers: BTreeMap::from([("X-Team".to_owned(), "llm-platform".to_owned())]),
        ..config(&url)
    };
    let request = delivered(with_headers, &opened()).await;
    assert_eq!(request.header("x-team"), "llm-platform");

    for name in ["Content-Type", "X-Isdown-Signature", "bad header"] {
        let config = Config {
            headers: BTreeMap::from([(name.to_owned(), "x".to_owned())]),
            ..config("https://example.internal/isdown")
        };
        let err = config.resolve(&env(&[])).unwrap_err();
        assert_eq!(err.field, "headers", "{name}");
    }
}

#[tokio::test]
async fn url_env_is_read_from_the_environment() {
    let mut receiver = Receiver::start(200, "{}").await;
    let config = Config {
        url: None,
        url_env: Some("HOOK_URL".to_owned()),
        ..config("unused")
    };
    let url = receiver.url("/secret/path");
    let channel = WebhookChannel::new(
        config.resolve(&env(&[("HOOK_URL", url.as_str())])).unwrap(),
        client(),
    );
    channel.send(&opened()).await.unwrap();
    assert_eq!(receiver.take().path, "/secret/path");
}

#[tokio::test]
async fn http_failures_map_to_retryable_or_permanent() {
    assert_status_mapping(
        |base| Box::new(build(config(&format!("{base}/isdown")))),
        |_| r#"{"error":"nope"}"#.to_owned(),
    )
    .await;
}

#[tokio::test]
async fn refused_connection_is_retryable_and_hides_a_secret_url() {
    let url = format!("{}/hooks/SECRETPATH123", closed_base().await);
    let config = Config {
        url: None,
        url_env: Some("HOOK_URL".to_owned()),
        ..config("unused")
    };
    let channel = WebhookChannel::new(
        config.resolve(&env(&[("HOOK_URL", url.as_str())])).unwrap(),
        client(),
    );
    assert_refused_hides(&channel, &[&url, "SECRETPATH123"]).await;
}

#[test]
fn config_needs_exactly_one_url_and_names_missing_secrets() {
    let both = Config {
        url_env: Some("HOOK_URL".to_owned()),
        ..config("https://example.internal/isdown")
    };
    let err = both.resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "url");
    assert!(err.message.contains("not both"), "{err}");

    let neither = Config {
        url: None,
        ..config("unused")
    };
    let err = neither.resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "url");

    let unsigned = Config {
        secret_env: Some("HOOK_SECRET".to_owned()),
        ..config("https://example.internal/isdown")
    };
    let err = unsigned.resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "secret_env");
    assert!(err.message.contains("HOOK_SECRET"));

    let err = config("not a url").resolve(&env(&[])).unwrap_err();
    assert_eq!(err.field, "url");

    let toml = "url = \"https://example.internal/isdown\"\nsecret = \"inline\"";
    let err = toml::from_str::<Config>(toml).unwrap_err();
    assert!(err.to_string().contains("secret"), "{err}");
    let parsed: Config = toml::from_str(
        "url = \"https://example.internal/isdown\"\nsecret_env = \"HOOK_SECRET\"\n\
         [headers]\nX-Team = \"llm\"",
    )
    .unwrap();
    assert_eq!(parsed.headers["X-Team"], "llm");
}

#[test]
fn debug_output_hides_the_secret() {
    let config = Config {
        secret_env: Some("HOOK_SECRET".to_owned()),
        ..config("https://example.internal/isdown")
    };
    let channel = build(config);
    assert!(!format!("{channel:?}").contains("whsec_"));
}

#[tokio::test]
async fn an_accepted_delivery_is_ok_and_a_gone_receiver_is_permanent() {
    let mut receiver = Receiver::start(410, "gone").await;
    let channel = build(config(&receiver.url("/isdown")));
    let err = channel.send(&opened()).await.unwrap_err();
    assert_eq!(err, DeliveryError::Permanent("HTTP 410: gone".to_owned()));
    receiver.take();
}

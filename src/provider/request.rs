//! Building requests for a provider: endpoint URLs, auth headers and the probe payloads.
//!
//! Probe payloads are deliberately minimal: no sampling parameters at all (Kimi K2.5+ answer 400
//! to any `temperature` other than 1, and a probe must never cause the error it looks for), and
//! small `max_tokens` (Moonshot counts `max_tokens` against the TPM limit, OpenRouter against
//! credits).

use reqwest::{Client, RequestBuilder, Url};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Provider, WireStyle};

/// Anthropic's API version header; the Messages API has been stable under this one.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The one tool a `tools` probe offers. Small and unambiguous so that every model calls it.
const TOOL_NAME: &str = "get_current_time";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatPayload {
    /// "ping", one token.
    Plain,
    /// "ping", streamed, a few tokens so that a first content chunk exists.
    Stream,
    /// One tool and a prompt that calls it.
    Tools,
}

/// `{base}/models` (OpenAI style) or `{base}/v1/models` (Anthropic style).
pub fn models_url(provider: &Provider) -> Url {
    join(&provider.base_url, models_path(provider.style))
}

/// `{base}/chat/completions` or `{base}/v1/messages`.
pub fn chat_url(provider: &Provider) -> Url {
    join(&provider.base_url, chat_path(provider.style))
}

fn models_path(style: WireStyle) -> &'static str {
    match style {
        WireStyle::Openai => "models",
        WireStyle::Anthropic => "v1/models",
    }
}

fn chat_path(style: WireStyle) -> &'static str {
    match style {
        WireStyle::Openai => "chat/completions",
        WireStyle::Anthropic => "v1/messages",
    }
}

fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

/// Adds the provider's auth and fixed headers. Without a key nothing is sent (reachability).
pub fn authorize(builder: RequestBuilder, provider: &Provider) -> RequestBuilder {
    let mut builder = builder;
    for (name, value) in &provider.headers {
        builder = builder.header(name, value);
    }
    if provider.style == WireStyle::Anthropic {
        builder = builder.header("anthropic-version", ANTHROPIC_VERSION);
    }
    let Some(key) = &provider.api_key else {
        return builder;
    };
    match provider.style {
        WireStyle::Openai => builder.bearer_auth(key.expose_secret()),
        WireStyle::Anthropic => {
            let mut value = reqwest::header::HeaderValue::from_str(key.expose_secret())
                .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("invalid-key"));
            value.set_sensitive(true);
            builder.header("x-api-key", value)
        }
    }
}

pub fn models_request(client: &Client, provider: &Provider) -> RequestBuilder {
    authorize(client.get(models_url(provider)), provider)
}

pub fn chat_request(
    client: &Client,
    provider: &Provider,
    model: &str,
    payload: ChatPayload,
) -> RequestBuilder {
    let body = chat_body(provider.style, model, payload);
    authorize(client.post(chat_url(provider)), provider).json(&body)
}

/// A caller's own chat request body, sent unchanged to the chat endpoint with the provider's
/// auth (`isdown check --request`).
pub fn body_request(client: &Client, provider: &Provider, body: &Value) -> RequestBuilder {
    authorize(client.post(chat_url(provider)), provider).json(body)
}

/// The JSON body of a chat probe.
pub fn chat_body(style: WireStyle, model: &str, payload: ChatPayload) -> Value {
    let (prompt, max_tokens) = match payload {
        ChatPayload::Plain => ("ping", 1),
        ChatPayload::Stream => ("ping", 8),
        // Room for the call itself; reasoning models spend some tokens before it.
        ChatPayload::Tools => ("What time is it in UTC? Use the tool.", 256),
    };
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{ "role": "user", "content": prompt }],
    });
    if payload == ChatPayload::Stream {
        body["stream"] = json!(true);
    }
    if payload == ChatPayload::Tools {
        let parameters = json!({
            "type": "object",
            "properties": { "timezone": { "type": "string", "description": "IANA name, e.g. UTC" } },
            "required": ["timezone"],
        });
        let description = "Returns the current time in a time zone.";
        match style {
            WireStyle::Openai => {
                body["tools"] = json!([{ "type": "function", "function": {
                    "name": TOOL_NAME, "description": description, "parameters": parameters } }]);
            }
            WireStyle::Anthropic => {
                body["tools"] = json!([{
                    "name": TOOL_NAME, "description": description, "input_schema": parameters }]);
                body["tool_choice"] = json!({ "type": "any" });
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::time::Duration;

    fn provider(style: WireStyle, base: &str) -> Provider {
        Provider {
            id: "p".into(),
            name: "P".into(),
            base_url: Url::parse(base).unwrap(),
            style,
            api_key_env: Some("K".into()),
            api_key: Some(SecretString::from("sk-test-0123456789")),
            probe_model: "m".into(),
            context_window: None,
            degraded_after: Duration::from_secs(5),
            status_page: None,
            headers: vec![],
            prefill: None,
            builtin: false,
        }
    }

    #[test]
    fn openai_style_paths_append_to_the_base_path() {
        let p = provider(WireStyle::Openai, "https://open.bigmodel.cn/api/paas/v4");
        assert_eq!(
            chat_url(&p).as_str(),
            "https://open.bigmodel.cn/api/paas/v4/chat/completions"
        );
        assert_eq!(
            models_url(&p).as_str(),
            "https://open.bigmodel.cn/api/paas/v4/models"
        );
    }

    #[test]
    fn anthropic_style_paths_add_v1() {
        let p = provider(WireStyle::Anthropic, "http://127.0.0.1:9/anthropic");
        assert_eq!(
            chat_url(&p).as_str(),
            "http://127.0.0.1:9/anthropic/v1/messages"
        );
    }

    #[test]
    fn probe_bodies_carry_no_sampling_parameters() {
        for payload in [ChatPayload::Plain, ChatPayload::Stream, ChatPayload::Tools] {
            for style in [WireStyle::Openai, WireStyle::Anthropic] {
                let body = chat_body(style, "kimi-k2.6", payload);
                for key in [
                    "temperature",
                    "top_p",
                    "n",
                    "presence_penalty",
                    "frequency_penalty",
                ] {
                    assert!(body.get(key).is_none(), "{payload:?} {style:?} sends {key}");
                }
            }
        }
        assert_eq!(
            chat_body(WireStyle::Openai, "m", ChatPayload::Plain)["max_tokens"],
            1
        );
    }

    #[test]
    fn keys_go_in_the_style_specific_header_and_are_marked_sensitive() {
        let client = Client::new();
        let openai = provider(WireStyle::Openai, "http://127.0.0.1:9/v1");
        let req = models_request(&client, &openai).build().unwrap();
        let auth = req.headers().get("authorization").unwrap();
        assert_eq!(auth.to_str().unwrap(), "Bearer sk-test-0123456789");
        assert!(auth.is_sensitive());

        let anthropic = provider(WireStyle::Anthropic, "http://127.0.0.1:9");
        let req = models_request(&client, &anthropic).build().unwrap();
        assert!(req.headers().get("x-api-key").unwrap().is_sensitive());
        assert_eq!(
            req.headers().get("anthropic-version").unwrap(),
            ANTHROPIC_VERSION
        );
        assert!(req.headers().get("authorization").is_none());
    }
}

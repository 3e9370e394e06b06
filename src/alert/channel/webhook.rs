//! `webhook` channel: a JSON POST to any URL, optionally signed, for receivers isdown does not
//! know by name.
//!
//! The URL is `url` (plain, when it is not a secret) or `url_env` (an environment variable, when
//! it is); exactly one. Extra, non-secret request headers may be set in `headers`.
//!
//! **Body.** By default the [`AlertMessage`] as JSON, plus `"version": 1` (this format's version;
//! fields may be added, never renamed) and `"severity"` (`critical`, `warning` or `info`). With
//! `template`, the body is that text with `{{field}}` placeholders replaced: `title`, `summary`,
//! `advice`, `event`, `kind`, `severity`, `dedup_key`, `url`, `started_at`, `ended_at` (RFC 3339),
//! `duration_s`. Values are inserted JSON-escaped and without quotes, so placeholders belong
//! inside JSON strings (`{"text": "{{title}}"}`); an absent value (`url`, `ended_at`,
//! `duration_s`) becomes the empty string. The template is checked when the channel is built: an
//! unknown placeholder, or a result that is not valid JSON, is a config error.
//!
//! **Signature.** With `secret_env`, every request carries
//!
//! ```text
//! X-Isdown-Timestamp: <unix seconds>
//! X-Isdown-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//! ```
//!
//! (the Stripe scheme). A receiver recomputes the HMAC over the timestamp header, a dot and the
//! raw body bytes as received (before any JSON parsing), compares it with the header in constant
//! time, and rejects a timestamp more than 5 minutes from its own clock, so a captured request
//! cannot be replayed later. Retries of one alert are new requests with new timestamps; the
//! body's `dedup_key` is what identifies the alert.
//!
//! Any 2xx is delivered; 408, 429 and 5xx are retried; other statuses are permanent.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use super::http::{http_url, judge_response, transport_error, webhook_url_from_env};
use super::{Deliver, Env, FieldError, secret_from_env};
use crate::alert::{AlertEvent, AlertItem, AlertMessage, DeliveryError};
use crate::incident::IncidentKind;
use crate::time::rfc3339;
use crate::verdict::Verdict;

#[cfg(test)]
mod tests;

/// The default body's format version.
const BODY_VERSION: u32 = 1;
pub const TIMESTAMP_HEADER: &str = "x-isdown-timestamp";
pub const SIGNATURE_HEADER: &str = "x-isdown-signature";
/// Headers isdown sets itself; `headers` may not replace them.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
];

/// The `[alerts.NAME]` table of a `kind = "webhook"` channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The receiver's URL, when it is not a secret.
    pub url: Option<String>,
    /// Environment variable holding the URL, when it is.
    pub url_env: Option<String>,
    /// Environment variable holding the HMAC signing secret.
    pub secret_env: Option<String>,
    /// A JSON body with `{{field}}` placeholders, instead of the default body.
    pub template: Option<String>,
    /// Extra request headers (not secrets: they are config).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A checked `webhook` channel.
#[derive(Debug, Clone)]
pub struct Spec {
    url: SecretString,
    secret: Option<SecretString>,
    template: Option<Template>,
    headers: HeaderMap,
}

impl Config {
    pub fn resolve(self, env: Env<'_>) -> Result<Spec, FieldError> {
        let error = |field: &'static str, message: &str| FieldError::new(field, message);
        let url = match (&self.url, &self.url_env) {
            (Some(url), None) => {
                http_url("url", url, "`url`")?;
                SecretString::from(url.trim().to_owned())
            }
            (None, Some(var)) => webhook_url_from_env("url_env", var, env)?,
            (Some(_), Some(_)) => {
                return Err(error("url", "set either `url` or `url_env`, not both"));
            }
            (None, None) => return Err(error("url", "set `url` or `url_env`")),
        };
        let secret = self
            .secret_env
            .as_deref()
            .map(|var| secret_from_env("secret_env", var, env))
            .transpose()?;
        let template = self
            .template
            .as_deref()
            .map(Template::parse)
            .transpose()
            .map_err(|message| FieldError::new("template", message))?;
        let headers =
            headers(&self.headers).map_err(|message| FieldError::new("headers", message))?;
        Ok(Spec {
            url,
            secret,
            template,
            headers,
        })
    }
}

/// A generic JSON webhook.
#[derive(Debug)]
pub struct WebhookChannel {
    spec: Spec,
    client: reqwest::Client,
}

impl WebhookChannel {
    pub fn new(spec: Spec, client: reqwest::Client) -> Self {
        WebhookChannel { spec, client }
    }

    fn body(&self, message: &AlertMessage) -> Result<Vec<u8>, DeliveryError> {
        match &self.spec.template {
            Some(template) => Ok(template.render(message).into_bytes()),
            None => default_body(message),
        }
    }
}

#[async_trait]
impl Deliver for WebhookChannel {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let body = self.body(message)?;
        let mut request = self
            .client
            .post(self.spec.url.expose_secret())
            .headers(self.spec.headers.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.spec.secret {
            let timestamp = unix_seconds(SystemTime::now());
            let signature = sign(secret.expose_secret().as_bytes(), timestamp, &body);
            request = request
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, format!("sha256={signature}"));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| transport_error(&err))?;
        judge_response(response).await
    }
}

/// The default body: the message as serde writes it, plus `version` and `severity`.
fn default_body(message: &AlertMessage) -> Result<Vec<u8>, DeliveryError> {
    let cannot = |err: serde_json::Error| {
        DeliveryError::Permanent(format!("cannot serialize the alert as JSON: {err}"))
    };
    let mut value = serde_json::to_value(message).map_err(cannot)?;
    if let Value::Object(fields) = &mut value {
        fields.insert("version".into(), BODY_VERSION.into());
        let severity = serde_json::to_value(message.severity()).map_err(cannot)?;
        fields.insert("severity".into(), severity);
    }
    serde_json::to_vec(&value).map_err(cannot)
}

/// Hex HMAC-SHA256 over `"<timestamp>.<body>"`.
fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| {
            [
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 0xf)],
            ]
        })
        .map(char::from)
        .collect()
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn headers(configured: &BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(format!(
                "`{name}` is set by isdown and cannot be overridden"
            ));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
        headers.insert(header, value);
    }
    Ok(headers)
}

// === impl Template ===

/// A parsed `template`: literal text and placeholders, in order.
#[derive(Debug, Clone)]
struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    Field(Field),
}

/// A placeholder name and how to read its value from a message.
#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    value: fn(&AlertMessage) -> Option<String>,
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{{}}}}}", self.name)
    }
}

/// The placeholders a template may use.
const FIELDS: [Field; 11] = [
    Field {
        name: "title",
        value: |m| Some(m.title.clone()),
    },
    Field {
        name: "summary",
        value: |m| Some(m.summary.clone()),
    },
    Field {
        name: "advice",
        value: |m| Some(m.advice.clone()),
    },
    Field {
        name: "event",
        value: |m| serde_name(&m.event),
    },
    Field {
        name: "kind",
        value: |m| Some(m.kind.as_str().to_owned()),
    },
    Field {
        name: "severity",
        value: |m| serde_name(&m.severity()),
    },
    Field {
        name: "dedup_key",
        value: |m| Some(m.dedup_key.clone()),
    },
    Field {
        name: "url",
        value: |m| m.url.clone(),
    },
    Field {
        name: "started_at",
        value: |m| Some(rfc3339(m.started_at)),
    },
    Field {
        name: "ended_at",
        value: |m| m.ended_at.map(rfc3339),
    },
    Field {
        name: "duration_s",
        value: |m| m.duration_s.map(|s| s.to_string()),
    },
];

/// The name serde gives a unit variant (`opened`, `critical`): one spelling everywhere.
fn serde_name<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => Some(name),
        _ => None,
    }
}

impl Template {
    /// Splits the text at `{{name}}` placeholders and checks the result is JSON for a message
    /// with every optional value set and one with none.
    fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "a `{{` has no closing `}}`".to_owned())?;
            let name = after[..close].trim();
            let field = FIELDS
                .iter()
                .find(|field| field.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = FIELDS.iter().map(|field| field.name).collect();
                    format!(
                        "unknown placeholder `{{{{{name}}}}}`; known: {}",
                        known.join(", ")
                    )
                })?;
            segments.push(Segment::Text(rest[..open].to_owned()));
            segments.push(Segment::Field(*field));
            rest = &after[close + 2..];
        }
        segments.push(Segment::Text(rest.to_owned()));
        let template = Template { segments };
        for sample in samples() {
            serde_json::from_str::<serde::de::IgnoredAny>(&template.render(&sample))
                .map_err(|err| format!("does not produce valid JSON: {err}"))?;
        }
        Ok(template)
    }

    fn render(&self, message: &AlertMessage) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Field(field) => {
                    out.push_str(&json_escape(&(field.value)(message).unwrap_or_default()));
                }
            }
        }
        out
    }
}

/// `text` as it appears between the quotes of a JSON string.
fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).expect("a string always serializes");
    quoted[1..quoted.len() - 1].to_owned()
}

/// Messages a template is checked against: every optional value set (with quotes, backslashes
/// and newlines in the text), and none set.
fn samples() -> [AlertMessage; 2] {
    let full = AlertMessage {
        event: AlertEvent::Resolved,
        kind: IncidentKind::Outage,
        title: "Kimi is \"DOWN\" \\ again".to_owned(),
        summary: "line one\nline two\t</script>".to_owned(),
        advice: "Fail over to DeepSeek".to_owned(),
        items: vec![AlertItem {
            monitor: "kimi-chat".to_owned(),
            provider: "kimi".to_owned(),
            provider_name: "Kimi".to_owned(),
            model: None,
            verdict: Verdict::Unavailable,
            blame: Verdict::Unavailable.default_blame(),
            explanation: "HTTP 503".to_owned(),
            started_at: 0,
        }],
        started_at: 0,
        ended_at: Some(60_000),
        duration_s: Some(60),
        url: Some("https://status.example.com/?a=1&b=2".to_owned()),
        dedup_key: "isdown-sample".to_owned(),
    };
    let bare = AlertMessage {
        event: AlertEvent::Opened,
        ended_at: None,
        duration_s: None,
        url: None,
        ..full.clone()
    };
    [full, bare]
}

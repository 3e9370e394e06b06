//! `pagerduty` channel: PagerDuty Events API v2 (`POST {api_url}/v2/enqueue`).
//!
//! Owns the event format and nothing else: an opened incident, a follow-up (`update`) or a
//! reminder is a `trigger` event, a resolve is a `resolve` event with the same `dedup_key`, a
//! test is one `info` trigger with a key of its own. PagerDuty deduplicates on `dedup_key`, so a
//! follow-up or a resend after a crash only adds a log entry to the alert it already opened. The routing (integration) key is read from
//! the environment variable the config names, lives in a [`SecretString`] and is exposed only
//! while the request body is built; error texts are scrubbed of it.
//!
//! The format is PagerDuty's Events API v2 (`createV2Event`): the body carries `routing_key`, `event_action`, `dedup_key`, and for triggers `payload`
//! (`summary`, `source`, `severity`, `timestamp`, `component`, `group`, `class`,
//! `custom_details`) plus top-level `client`, `client_url` and `links`. PagerDuty answers 202;
//! 400 is an invalid event (do not retry), 429 and 5xx are worth retrying.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use super::http::Region;
use super::http::{Hosts, endpoint, judge_response, transport_error};
use super::{Deliver, Env, FieldError, secret_from_env};
use crate::alert::render::{distinct, severity_name, truncate_owned};
use crate::alert::{AlertEvent, AlertMessage, DeliveryError};

/// The documented endpoints of the two PagerDuty service regions.
const HOSTS: Hosts = Hosts {
    us: "https://events.pagerduty.com",
    eu: "https://events.eu.pagerduty.com",
};

/// PagerDuty cuts `payload.summary` at 1024 characters; cutting it ourselves keeps the end
/// readable ("…") instead of losing it silently.
const MAX_SUMMARY_CHARS: usize = 1024;
/// Longest `dedup_key` PagerDuty accepts; longer keys are replaced by a digest (still
/// deterministic, so trigger and resolve keep matching).
const MAX_DEDUP_KEY_CHARS: usize = 255;

/// `[alerts.NAME]` with `kind = "pagerduty"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Environment variable holding the Events API v2 integration key ("routing key").
    pub routing_key_env: String,
    /// `us` (default) or `eu`; picks the documented endpoint.
    #[serde(default)]
    pub region: Option<Region>,
    /// Overrides the endpoint base (tests, proxies). Default: per `region`.
    #[serde(default)]
    pub api_url: Option<String>,
}

/// A checked `pagerduty` channel.
#[derive(Debug, Clone)]
pub struct Spec {
    routing_key: SecretString,
    /// `{api_url}/v2/enqueue`.
    enqueue_url: reqwest::Url,
}

impl Config {
    pub fn resolve(self, env: Env<'_>) -> Result<Spec, FieldError> {
        let enqueue_url = endpoint(
            &HOSTS,
            self.region,
            self.api_url.as_deref(),
            &["v2", "enqueue"],
        )?;
        let routing_key = secret_from_env("routing_key_env", &self.routing_key_env, env)?;
        Ok(Spec {
            routing_key,
            enqueue_url,
        })
    }
}

impl Spec {
    /// Where events are posted.
    pub fn enqueue_url(&self) -> &reqwest::Url {
        &self.enqueue_url
    }
}

/// Sends alerts as PagerDuty events.
#[derive(Debug)]
pub struct PagerDutyChannel {
    spec: Spec,
    client: reqwest::Client,
}

impl PagerDutyChannel {
    pub fn new(spec: Spec, client: reqwest::Client) -> Self {
        PagerDutyChannel { spec, client }
    }
}

#[async_trait]
impl Deliver for PagerDutyChannel {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let key = self.spec.routing_key.expose_secret();
        let body = event(key, message);
        let response = self
            .client
            .post(self.spec.enqueue_url.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error(&e).scrubbed(key))?;
        judge_response(response).await.map_err(|e| e.scrubbed(key))
    }
}

// === event bodies ===

/// The whole request body for one message.
fn event(routing_key: &str, message: &AlertMessage) -> Value {
    let dedup_key = dedup_key(message);
    if message.event == AlertEvent::Resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload(message),
        "client": "isdown",
    });
    if let Some(url) = &message.url {
        body["client_url"] = json!(url);
        body["links"] = json!([{ "href": url, "text": "isdown status page" }]);
    }
    body
}

fn payload(message: &AlertMessage) -> Value {
    let mut payload = json!({
        "summary": summary(message),
        "source": "isdown",
        "severity": severity_name(message.severity()),
        "timestamp": crate::time::rfc3339(message.started_at),
        "group": "llm-api",
        "class": match message.event {
            AlertEvent::Test => "test",
            _ => message.kind.as_str(),
        },
        "custom_details": custom_details(message),
    });
    let providers = distinct(message.items.iter().map(|item| item.provider.as_str()));
    if !providers.is_empty() {
        payload["component"] = json!(providers.join(", "));
    }
    payload
}

/// The line PagerDuty shows as the alert's title and in its own notifications: what is down
/// since when (the title), then what to do.
fn summary(message: &AlertMessage) -> String {
    let text = match message.advice.trim() {
        "" => message.title.clone(),
        advice => format!("{} — {advice}", message.title),
    };
    truncate_owned(&text, MAX_SUMMARY_CHARS)
}

fn custom_details(message: &AlertMessage) -> Value {
    let items: Vec<Value> = message
        .items
        .iter()
        .map(|item| {
            json!({
                "monitor": item.monitor,
                "provider": item.provider_name,
                "model": item.model,
                "verdict": item.verdict.as_str(),
                "blame": item.blame.map(|b| b.as_str()),
                "explanation": item.explanation,
                "since": crate::time::rfc3339(item.started_at),
            })
        })
        .collect();
    let mut details = Map::new();
    details.insert("explanation".into(), json!(message.summary));
    details.insert("advice".into(), json!(message.advice));
    details.insert("event".into(), json!(message.event.as_str()));
    details.insert("kind".into(), json!(message.kind.as_str()));
    details.insert(
        "started_at".into(),
        json!(crate::time::rfc3339(message.started_at)),
    );
    details.insert("items".into(), Value::Array(items));
    if let Some(url) = &message.url {
        details.insert("url".into(), json!(url));
    }
    Value::Object(details)
}

/// The receiver's dedup key, within its length limit.
fn dedup_key(message: &AlertMessage) -> String {
    message.receiver_key(MAX_DEDUP_KEY_CHARS)
}

#[cfg(test)]
pub(super) mod tests;

//! `opsgenie` channel: the Opsgenie Alert API.
//!
//! Owns the alert format and nothing else. An opened incident, a reminder or a test creates an
//! alert (`POST {api_url}/v2/alerts`) whose `alias` is the message's dedup key: while that alert
//! is open Opsgenie only counts further creates, so a resend after a crash is harmless. A
//! resolve closes it by alias (`POST {api_url}/v2/alerts/{alias}/close?identifierType=alias`).
//! A test gets an alias of its own so it never touches a real incident.
//!
//! Format as documented in Opsgenie's Alert API reference: header
//! `Authorization: GenieKey <key>`; create body `message` (≤ 130 characters), `alias` (≤ 512),
//! `description` (≤ 15000), `tags` (≤ 20 of ≤ 50 characters), `details` (string → string),
//! `entity` (≤ 512), `source`, `priority` P1–P5; close body `source`, `note`. Both answer 202
//! (the request is processed asynchronously). The key comes from the environment variable the config names, lives in a
//! [`SecretString`] and is exposed only in the marked-sensitive header; error texts are
//! scrubbed of it.

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Channel, ChannelConfigError, judge_response, secret_from_env, transport_error};
use crate::alert::{AlertEvent, AlertMessage, DeliveryError, Severity};

/// The documented API hosts of the two Opsgenie instances.
const US_API: &str = "https://api.opsgenie.com";
const EU_API: &str = "https://api.eu.opsgenie.com";

// Documented field limits: Opsgenie rejects or cuts longer values.
const MAX_MESSAGE_CHARS: usize = 130;
const MAX_ALIAS_CHARS: usize = 512;
const MAX_DESCRIPTION_CHARS: usize = 15_000;
const MAX_ENTITY_CHARS: usize = 512;
const MAX_TAGS: usize = 20;
const MAX_TAG_CHARS: usize = 50;
/// `details` may hold 8000 characters in all; a few short values stay far below that.
const MAX_DETAIL_CHARS: usize = 500;

/// The account's Opsgenie instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Us,
    Eu,
}

/// `[alerts.NAME]` with `kind = "opsgenie"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Environment variable holding the API integration's key.
    pub api_key_env: String,
    /// `us` (default) or `eu`; picks the documented API host.
    #[serde(default)]
    pub region: Option<Region>,
    /// Overrides the API base (tests, proxies). Default: per `region`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Extra tags on every alert, e.g. a team's routing tag.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Sends alerts as Opsgenie alerts.
#[derive(Debug)]
pub struct OpsgenieChannel {
    name: String,
    api_key: SecretString,
    /// `{api_url}/v2/alerts`.
    alerts_url: reqwest::Url,
    tags: Vec<String>,
    client: reqwest::Client,
}

impl OpsgenieChannel {
    pub fn new(
        name: &str,
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
        client: reqwest::Client,
    ) -> Result<Self, ChannelConfigError> {
        let error = |field: &str, message: String| ChannelConfigError {
            channel: name.to_owned(),
            field: field.to_owned(),
            message,
        };
        let base = match (&config.api_url, config.region) {
            (Some(_), Some(_)) => {
                return Err(error(
                    "api_url",
                    "set either `region` or `api_url`, not both".to_owned(),
                ));
            }
            (Some(url), None) => url.as_str(),
            (None, Some(Region::Eu)) => EU_API,
            (None, Some(Region::Us) | None) => US_API,
        };
        let mut alerts_url = reqwest::Url::parse(base)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| error("api_url", format!("`{base}` is not an http(s) URL")))?;
        alerts_url
            .path_segments_mut()
            .expect("an http(s) URL with a host has path segments")
            .pop_if_empty()
            .extend(["v2", "alerts"]);
        for tag in &config.tags {
            if tag.trim().is_empty() || tag.chars().count() > MAX_TAG_CHARS {
                return Err(error(
                    "tags",
                    format!("tag `{tag}` must have 1 to {MAX_TAG_CHARS} characters"),
                ));
            }
        }
        let api_key = secret_from_env(name, "api_key_env", &config.api_key_env, env)?;
        Ok(OpsgenieChannel {
            name: name.to_owned(),
            api_key,
            alerts_url,
            tags: config.tags,
            client,
        })
    }

    /// Where alerts are created.
    pub fn alerts_url(&self) -> &reqwest::Url {
        &self.alerts_url
    }

    /// Where the alert with this alias is closed. The alias is one path segment, so any `/`
    /// or `?` in it is percent-encoded.
    pub fn close_url(&self, alias: &str) -> reqwest::Url {
        let mut url = self.alerts_url.clone();
        url.path_segments_mut()
            .expect("alerts_url is an http(s) URL")
            .extend([alias, "close"]);
        url.query_pairs_mut().append_pair("identifierType", "alias");
        url
    }
}

#[async_trait]
impl Channel for OpsgenieChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "opsgenie"
    }

    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let alias = alias(message);
        let (url, body) = match message.event {
            AlertEvent::Resolved => (self.close_url(&alias), close_body(message)),
            _ => (
                self.alerts_url.clone(),
                create_body(message, &alias, &self.tags),
            ),
        };
        let key = self.api_key.expose_secret();
        let mut auth = HeaderValue::from_str(&format!("GenieKey {key}")).map_err(|_| {
            DeliveryError::Permanent(
                "the Opsgenie API key holds characters a header cannot carry".to_owned(),
            )
        })?;
        auth.set_sensitive(true);
        let response = self
            .client
            .post(url)
            .header(AUTHORIZATION, auth)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error(&e).scrubbed(key))?;
        judge_response(response).await.map_err(|e| e.scrubbed(key))
    }
}

// === request bodies ===

fn create_body(message: &AlertMessage, alias: &str, extra_tags: &[String]) -> Value {
    let mut body = json!({
        "message": super::truncate_owned(&message.title, MAX_MESSAGE_CHARS),
        "alias": alias,
        "description": super::truncate_owned(&description(message), MAX_DESCRIPTION_CHARS),
        "priority": priority(message.severity()),
        "source": "isdown",
        "tags": tags(message, extra_tags),
        "details": details(message),
    });
    let providers = super::distinct(message.items.iter().map(|item| item.provider.as_str()));
    if !providers.is_empty() {
        body["entity"] = json!(super::truncate_owned(
            &providers.join(", "),
            MAX_ENTITY_CHARS
        ));
    }
    body
}

fn close_body(message: &AlertMessage) -> Value {
    let note = match message.duration_s {
        Some(secs) => format!("Resolved after {}: {}", duration_text(secs), message.title),
        None => format!("Resolved: {}", message.title),
    };
    json!({ "source": "isdown", "note": note })
}

/// What is down since when and whose side it is (the summary), what to do, the monitors one
/// line each, and the status page.
fn description(message: &AlertMessage) -> String {
    let mut text = message.summary.trim().to_owned();
    if !message.advice.trim().is_empty() {
        text.push_str("\n\nWhat to do: ");
        text.push_str(message.advice.trim());
    }
    if !message.items.is_empty() {
        text.push_str("\n\nMonitors:");
        for item in &message.items {
            let model = item
                .model
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default();
            let side = item
                .blame
                .map(|b| format!(", {} side", b.as_str()))
                .unwrap_or_default();
            text.push_str(&format!(
                "\n- {} ({}{model}): {}{side}, since {}. {}",
                item.monitor,
                item.provider_name,
                item.verdict.as_str(),
                crate::time::rfc3339(item.started_at),
                item.explanation,
            ));
        }
    }
    if let Some(url) = &message.url {
        text.push_str("\n\nStatus page: ");
        text.push_str(url);
    }
    text
}

fn tags(message: &AlertMessage, extra: &[String]) -> Vec<String> {
    let class = match message.event {
        AlertEvent::Test => "test",
        _ => message.kind.as_str(),
    };
    let mut tags: Vec<String> = Vec::new();
    let candidates = ["isdown", class]
        .into_iter()
        .chain(message.items.iter().map(|item| item.provider.as_str()))
        .chain(message.items.iter().map(|item| item.verdict.as_str()))
        .chain(extra.iter().map(String::as_str));
    for tag in candidates {
        let tag = super::truncate_owned(tag, MAX_TAG_CHARS);
        if tags.len() < MAX_TAGS && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

/// Opsgenie's details are a flat string → string map.
fn details(message: &AlertMessage) -> Value {
    let mut details = Map::new();
    let mut put = |key: &str, value: String| {
        details.insert(
            key.to_owned(),
            json!(super::truncate_owned(&value, MAX_DETAIL_CHARS)),
        );
    };
    put("event", message.event.as_str().to_owned());
    put("kind", message.kind.as_str().to_owned());
    put("started_at", crate::time::rfc3339(message.started_at));
    let verdicts = super::distinct(message.items.iter().map(|item| item.verdict.as_str()));
    if !verdicts.is_empty() {
        put("verdicts", verdicts.join(", "));
    }
    let blames = super::distinct(
        message
            .items
            .iter()
            .filter_map(|i| i.blame.map(|b| b.as_str())),
    );
    if !blames.is_empty() {
        put("blame", blames.join(", "));
    }
    let monitors = super::distinct(message.items.iter().map(|item| item.monitor.as_str()));
    if !monitors.is_empty() {
        put("monitors", monitors.join(", "));
    }
    if let Some(url) = &message.url {
        put("url", url.clone());
    }
    Value::Object(details)
}

fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "P1",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    }
}

/// The receiver's dedup key, within its length limit.
fn alias(message: &AlertMessage) -> String {
    message.receiver_key(MAX_ALIAS_CHARS)
}

// === text ===

/// "1h 12m": whole minutes once past a minute, since seconds are noise in an incident's length.
fn duration_text(secs: i64) -> String {
    let secs = u64::try_from(secs).unwrap_or(0);
    let secs = if secs >= 60 { secs - secs % 60 } else { secs };
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests;

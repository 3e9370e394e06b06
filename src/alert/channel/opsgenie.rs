//! `opsgenie` channel: the Opsgenie Alert API.
//!
//! Owns the alert format and nothing else. An opened incident, a follow-up (`update`), a reminder
//! or a test creates an alert (`POST {api_url}/v2/alerts`) whose `alias` is the message's dedup
//! key: while that alert is open Opsgenie only counts further creates, so a follow-up never pages
//! again and a resend after a crash is harmless. A
//! resolve closes it by alias (`POST {api_url}/v2/alerts/{alias}/close?identifierType=alias`).
//! A test gets an alias of its own so it never touches a real incident.
//!
//! The format is Opsgenie's Alert API, restated here: header
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

pub use super::http::Region;
use super::http::{Hosts, endpoint, judge_response, transport_error};
use super::{Deliver, Env, FieldError, secret_from_env};
use crate::alert::render::{blame_words, distinct, truncate_owned, utc};
use crate::alert::{AlertEvent, AlertMessage, DeliveryError, Severity};

/// The documented API hosts of the two Opsgenie instances.
const HOSTS: Hosts = Hosts {
    us: "https://api.opsgenie.com",
    eu: "https://api.eu.opsgenie.com",
};

// Documented field limits: Opsgenie rejects or cuts longer values.
const MAX_MESSAGE_CHARS: usize = 130;
const MAX_ALIAS_CHARS: usize = 512;
const MAX_DESCRIPTION_CHARS: usize = 15_000;
const MAX_ENTITY_CHARS: usize = 512;
const MAX_TAGS: usize = 20;
const MAX_TAG_CHARS: usize = 50;
/// `details` may hold 8000 characters in all; a few short values stay far below that.
const MAX_DETAIL_CHARS: usize = 500;

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

/// A checked `opsgenie` channel.
#[derive(Debug, Clone)]
pub struct Spec {
    api_key: SecretString,
    /// `{api_url}/v2/alerts`.
    alerts_url: reqwest::Url,
    tags: Vec<String>,
}

impl Config {
    pub fn resolve(self, env: Env<'_>) -> Result<Spec, FieldError> {
        let alerts_url = endpoint(
            &HOSTS,
            self.region,
            self.api_url.as_deref(),
            &["v2", "alerts"],
        )?;
        if let Some(tag) = self
            .tags
            .iter()
            .find(|tag| tag.trim().is_empty() || tag.chars().count() > MAX_TAG_CHARS)
        {
            return Err(FieldError::new(
                "tags",
                format!("tag `{tag}` must have 1 to {MAX_TAG_CHARS} characters"),
            ));
        }
        let api_key = secret_from_env("api_key_env", &self.api_key_env, env)?;
        Ok(Spec {
            api_key,
            alerts_url,
            tags: self.tags,
        })
    }
}

impl Spec {
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

/// Sends alerts as Opsgenie alerts.
#[derive(Debug)]
pub struct OpsgenieChannel {
    spec: Spec,
    client: reqwest::Client,
}

impl OpsgenieChannel {
    pub fn new(spec: Spec, client: reqwest::Client) -> Self {
        OpsgenieChannel { spec, client }
    }
}

#[async_trait]
impl Deliver for OpsgenieChannel {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let alias = alias(message);
        let (url, body) = match message.event {
            AlertEvent::Resolved => (self.spec.close_url(&alias), close_body(message)),
            _ => (
                self.spec.alerts_url.clone(),
                create_body(message, &alias, &self.spec.tags),
            ),
        };
        let key = self.spec.api_key.expose_secret();
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
        "message": truncate_owned(&message.title, MAX_MESSAGE_CHARS),
        "alias": alias,
        "description": truncate_owned(&description(message), MAX_DESCRIPTION_CHARS),
        "priority": priority(message.severity()),
        "source": "isdown",
        "tags": tags(message, extra_tags),
        "details": details(message),
    });
    let providers = distinct(message.items.iter().map(|item| item.provider.as_str()));
    if !providers.is_empty() {
        body["entity"] = json!(truncate_owned(&providers.join(", "), MAX_ENTITY_CHARS));
    }
    body
}

/// The note is the resolve's title, which already says what recovered and after how long.
fn close_body(message: &AlertMessage) -> Value {
    json!({ "source": "isdown", "note": message.title })
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
            text.push_str(&format!(
                "\n- {} ({}{model}): {}, {}, since {}. {}",
                item.monitor,
                item.provider_name,
                item.verdict.as_str(),
                blame_words(item.blame),
                utc(item.started_at),
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
        let tag = truncate_owned(tag, MAX_TAG_CHARS);
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
            json!(truncate_owned(&value, MAX_DETAIL_CHARS)),
        );
    };
    put("event", message.event.as_str().to_owned());
    put("kind", message.kind.as_str().to_owned());
    put("started_at", crate::time::rfc3339(message.started_at));
    let verdicts = distinct(message.items.iter().map(|item| item.verdict.as_str()));
    if !verdicts.is_empty() {
        put("verdicts", verdicts.join(", "));
    }
    let blames = distinct(
        message
            .items
            .iter()
            .filter_map(|i| i.blame.map(|b| b.as_str())),
    );
    if !blames.is_empty() {
        put("blame", blames.join(", "));
    }
    let monitors = distinct(message.items.iter().map(|item| item.monitor.as_str()));
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

#[cfg(test)]
mod tests;

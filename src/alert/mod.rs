//! Alerts: channels that deliver an [`AlertMessage`], the rules that decide what is sent and
//! when (`policy`, `plan`, `dispatch`), and the persisted outbox that makes sure it arrives
//! (`outbox`): written before it is sent, retried with backoff, marked when delivered.
//!
//! A channel knows one receiver's documented API (Slack, PagerDuty, SMTP, …) and nothing about
//! incidents or retries: it formats one message, sends it once, and says whether a failure is
//! worth retrying. How alerts read — durations, timestamps, whose side, the plain [`render::Digest`]
//! every chat channel marks up — is written once in `render`. Channel settings are checked and
//! their secrets (webhook URLs, tokens, passwords) resolved from environment variables once, when
//! the config loads (`spec`), and held in secret types; building a channel from them cannot fail.
//!
//! Nothing here reads the config file or imports `config`: `config` calls `spec` to read the
//! `[alerts.NAME]` tables and hands the result over.

pub mod channel;
pub mod dispatch;
pub mod outbox;
pub mod plan;
pub mod policy;
pub mod render;
#[cfg(test)]
mod snapshots;
pub mod spec;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::incident::IncidentKind;
use crate::time::Millis;
use crate::verdict::{Blame, Verdict};

/// Why the alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// An incident opened (or reopened).
    Opened,
    /// More incidents joined an announced group: the group's monitors that are down now,
    /// under the group's dedup key (receivers update the alert they opened, no new page).
    Update,
    /// Still open: a periodic reminder.
    Reminder,
    /// The incident ended; the message carries its duration.
    Resolved,
    /// `isdown alert test CHANNEL`.
    Test,
}

impl AlertEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Opened => "opened",
            AlertEvent::Update => "update",
            AlertEvent::Reminder => "reminder",
            AlertEvent::Resolved => "resolved",
            AlertEvent::Test => "test",
        }
    }
}

/// One monitor inside an alert. Several monitors confirmed together produce one
/// message listing them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertItem {
    pub monitor: String,
    pub provider: String,
    /// Display name, e.g. "Kimi".
    pub provider_name: String,
    pub model: Option<String>,
    pub verdict: Verdict,
    pub blame: Option<Blame>,
    /// One line, already redacted.
    pub explanation: String,
    pub started_at: Millis,
}

/// Everything a channel needs to render a message. Built by the alert rules; channels only
/// format it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMessage {
    pub event: AlertEvent,
    pub kind: IncidentKind,
    /// One line, e.g. "Kimi is DOWN (unavailable) since 14:03 UTC".
    pub title: String,
    /// A few sentences: what is down, since when, whose side it is.
    pub summary: String,
    /// What to do, e.g. "Fail over to DeepSeek; check status.moonshot.cn".
    pub advice: String,
    pub items: Vec<AlertItem>,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    /// Whole seconds, for `Resolved`.
    pub duration_s: Option<i64>,
    /// Link to isdown's status page when a public URL is configured.
    pub url: Option<String>,
    /// Stable for one incident (group) across open, reminders and resolve: PagerDuty and
    /// Opsgenie deduplicate on it, which makes a resend after a crash harmless.
    pub dedup_key: String,
}

impl AlertMessage {
    /// `critical` for provider outages and isdown's own network, `warning` for setup problems,
    /// `info` for resolves and tests: the three levels every receiver understands.
    pub fn severity(&self) -> Severity {
        match (self.event, self.kind) {
            (AlertEvent::Resolved | AlertEvent::Test, _) => Severity::Info,
            (_, IncidentKind::SetupProblem) => Severity::Warning,
            _ => Severity::Critical,
        }
    }
}

impl AlertMessage {
    /// The key a receiver deduplicates on, within its length limit: the incident's dedup key,
    /// or for a test alert one of its own (derived from its start, so a resent test is still
    /// deduplicated and never touches a real incident). Overlong keys become a SHA-256 digest,
    /// which keeps trigger and resolve matching.
    pub fn receiver_key(&self, max_chars: usize) -> String {
        use sha2::{Digest, Sha256};
        let key = match self.event {
            AlertEvent::Test => format!("{}:test:{}", self.dedup_key, self.started_at),
            _ => self.dedup_key.clone(),
        };
        if key.chars().count() <= max_chars {
            key
        } else {
            format!("isdown-{:x}", Sha256::digest(key.as_bytes()))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

/// A failed delivery, as the outbox needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// Worth retrying: network error, timeout, 429, 5xx.
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// Retrying cannot help: 4xx other than 408/429, bad config.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl DeliveryError {
    /// The same error with `secret` removed from its text: receivers may quote a key or token
    /// back in an error body, and this text ends up in logs.
    pub fn scrubbed(self, secret: &str) -> DeliveryError {
        // Registered when the channel was built; registering again is a no-op, and makes sure.
        crate::secret::register([secret]);
        match self {
            DeliveryError::Retryable(text) => DeliveryError::Retryable(crate::secret::scrub(&text)),
            DeliveryError::Permanent(text) => DeliveryError::Permanent(crate::secret::scrub(&text)),
        }
    }
}

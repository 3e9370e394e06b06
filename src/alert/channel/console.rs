//! `console` channel: one readable log line per message, for the demo and for trying rules
//! without a receiver.
//!
//! Opened and reminder messages are logged at `warn`, resolved and test messages at `info`,
//! through `tracing` like everything else isdown prints; the line says what is down, since when,
//! the verdicts and explanations, whose side it is, what to do and the status-page link. The
//! channel has no settings (its table holds only `kind = "console"`) and never fails.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Deliver, Env, FieldError};
use crate::alert::render::Digest;
use crate::alert::{AlertEvent, AlertMessage, DeliveryError};

#[cfg(test)]
mod tests;

/// The `[alerts.NAME]` table of a `kind = "console"` channel: nothing besides `kind`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// A checked `console` channel: nothing to check.
#[derive(Debug, Clone, Default)]
pub struct Spec;

impl Config {
    pub fn resolve(self, _env: Env<'_>) -> Result<Spec, FieldError> {
        Ok(Spec)
    }
}

/// Writes alerts to the log, tagged with the channel's name.
#[derive(Debug)]
pub struct ConsoleChannel {
    name: String,
}

impl ConsoleChannel {
    pub fn new(name: &str, _spec: Spec) -> Self {
        Self {
            name: name.to_owned(),
        }
    }
}

#[async_trait]
impl Deliver for ConsoleChannel {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let line = line(message);
        let channel = self.name.as_str();
        match message.event {
            AlertEvent::Opened | AlertEvent::Update | AlertEvent::Reminder => {
                tracing::warn!(channel, "{line}")
            }
            AlertEvent::Resolved | AlertEvent::Test => tracing::info!(channel, "{line}"),
        }
        Ok(())
    }
}

/// The message on one line: line breaks in provider text become spaces.
pub fn line(message: &AlertMessage) -> String {
    let digest = Digest::of(message);
    let mut line = format!(
        "{} [{}] {} — {} ({})",
        digest.icon, digest.event, digest.title, digest.summary, digest.timing
    );
    if !digest.advice.trim().is_empty() {
        line.push_str(&format!(" What to do: {}", digest.advice));
    }
    for item in &digest.items {
        line.push_str(&format!(
            " | {}: {}, {}, since {}: {}",
            item.subject, item.verdict, item.blame, item.since, item.explanation
        ));
    }
    if let Some(url) = digest.url {
        line.push_str(&format!(" | {url}"));
    }
    line.push_str(&format!(" | dedup key {}", digest.dedup_key));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

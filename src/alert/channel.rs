//! Alert channels: one module per receiver API, all behind [`Channel`].
//!
//! Each module owns its receiver's documented payload format and auth, a `Config` struct that
//! mirrors its `[alerts.NAME]` table (`deny_unknown_fields`; secrets only by environment-variable
//! name), and a constructor that validates the config and resolves the secrets. Sending is one
//! attempt; retries, backoff and persistence belong to the outbox.

pub mod console;
pub mod discord;
pub mod email;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod twilio;
pub mod webhook;

use async_trait::async_trait;
use thiserror::Error;

use super::{AlertMessage, DeliveryError};

/// One configured destination.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The `[alerts.NAME]` name.
    fn name(&self) -> &str;
    /// The receiver kind (`slack`, `pagerduty`, …).
    fn kind(&self) -> &'static str;
    /// Delivers one message, once.
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError>;
}

/// A channel's configuration cannot work. The message names the field and never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("alert channel `{channel}`: `{field}`: {message}")]
pub struct ChannelConfigError {
    pub channel: String,
    pub field: String,
    pub message: String,
}

/// Resolves a required secret from the environment variable named in the config.
pub fn secret_from_env(
    channel: &str,
    field: &str,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<secrecy::SecretString, ChannelConfigError> {
    let value = env(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ChannelConfigError {
            channel: channel.to_owned(),
            field: field.to_owned(),
            message: format!("environment variable {var} is not set"),
        })?;
    crate::secret::check_value(&value).map_err(|e| ChannelConfigError {
        channel: channel.to_owned(),
        field: field.to_owned(),
        message: format!("environment variable {var} {e}"),
    })?;
    crate::secret::register([value.as_str()]);
    Ok(secrecy::SecretString::from(value))
}

/// Maps an HTTP answer to the outbox's view: 2xx delivered; 408, 429 and 5xx worth retrying;
/// any other status permanent. The body excerpt is redacted and kept short.
pub async fn judge_response(response: reqwest::Response) -> Result<(), DeliveryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = crate::secret::scrub(body.trim())
        .chars()
        .take(200)
        .collect();
    let message = format!("HTTP {}: {excerpt}", status.as_u16());
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Err(DeliveryError::Retryable(message))
    } else {
        Err(DeliveryError::Permanent(message))
    }
}

/// A transport error (no HTTP answer) is always worth retrying. The text is redacted: webhook
/// URLs are secrets and reqwest errors quote the URL.
pub fn transport_error(err: &reqwest::Error) -> DeliveryError {
    let text = match err.url() {
        Some(url) => err.to_string().replace(url.as_str(), "<receiver>"),
        None => err.to_string(),
    };
    DeliveryError::Retryable(crate::secret::scrub(&text))
}

/// Cuts `text` to at most `max_chars` characters, the last being "…" when anything was cut.
pub fn truncate(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    if text.char_indices().nth(max_chars).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let cut = text
        .char_indices()
        .nth(max_chars.saturating_sub(1))
        .map_or(text.len(), |(at, _)| at);
    std::borrow::Cow::Owned(format!("{}…", &text[..cut]))
}

/// [`truncate`], owned.
pub fn truncate_owned(text: &str, max_chars: usize) -> String {
    truncate(text, max_chars).into_owned()
}

/// Distinct values in first-seen order (providers, verdicts of a grouped alert).
pub fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

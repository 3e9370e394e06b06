//! Alert channels: one module per receiver API, all behind [`Deliver`], and [`Channel`], one
//! configured destination (its `[alerts.NAME]` name and kind around a receiver).
//!
//! Each receiver module owns its receiver's documented payload format and auth and three types:
//! `Config`, the `[alerts.NAME]` table as written (`deny_unknown_fields`; secrets only by
//! environment-variable name); `Spec`, the same checked and with its secrets resolved into
//! secret types (`Config::resolve`, run once when the config loads, see `alert::spec`); and the
//! channel itself, built from a `Spec` without any way to fail. Sending is one attempt; retries,
//! backoff and persistence belong to the outbox. Wording shared by every channel lives in
//! `alert::render`, HTTP plumbing in [`http`].

pub mod console;
pub mod discord;
pub mod email;
pub mod http;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod twilio;
pub mod webhook;

#[cfg(test)]
pub(crate) mod support;

use async_trait::async_trait;
use secrecy::SecretString;
use thiserror::Error;

use super::{AlertMessage, DeliveryError};

/// Looks up an environment variable; tests pass a fixed table instead of the process's.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One receiver API: formats a message and delivers it, once.
#[async_trait]
pub trait Deliver: Send + Sync + 'static {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError>;
}

/// One configured destination: the `[alerts.NAME]` name, the receiver kind (`slack`,
/// `pagerduty`, …) and the receiver.
pub struct Channel {
    name: String,
    kind: &'static str,
    receiver: Box<dyn Deliver>,
}

impl Channel {
    pub fn new(name: &str, kind: &'static str, receiver: Box<dyn Deliver>) -> Channel {
        Channel {
            name: name.to_owned(),
            kind,
            receiver,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Delivers one message, once.
    pub async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        self.receiver.send(message).await
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A channel's field holds a value that cannot work. The message names what is wrong and never
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{field}`: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// Resolves a required secret from the environment variable named in the config.
pub fn secret_from_env(
    field: &'static str,
    var: &str,
    env: Env<'_>,
) -> Result<SecretString, FieldError> {
    let value = env(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| FieldError::new(field, format!("environment variable {var} is not set")))?;
    // A control character would reach the receiver as a broken header; the message names the
    // variable, never the value. Registered so that every output is scrubbed of it.
    crate::secret::check_value(&value)
        .map_err(|e| FieldError::new(field, format!("environment variable {var} {e}")))?;
    crate::secret::register([value.as_str()]);
    Ok(SecretString::from(value))
}

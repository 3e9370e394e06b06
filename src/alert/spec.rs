//! Alert channel settings: from an `[alerts.NAME]` table to a typed, checked [`ChannelSpec`]
//! with its secrets resolved, and from a spec to a [`Channel`].
//!
//! The table is read once, when the config loads (`config` calls [`ChannelSpec::from_table`]):
//! the `kind` key picks the receiver's `Config` through the tagged [`ChannelConfig`], the routing
//! keys (`on`, `monitors`) become a [`ChannelRoute`], and the receiver's `Config::resolve` reads
//! the environment variables it names — once; a reload loads a new config and reads them again.
//! Errors are typed ([`SpecError`]): which field, what is wrong. Field names come from serde's
//! typed callbacks (`missing_field`, `unknown_field`, `unknown_variant`) through the small
//! deserializer in `spec/table.rs`, never from an error's text. Building a [`Channel`] from a
//! spec cannot fail and does no I/O. Nothing here knows a receiver's message format.

mod table;

use serde::Deserialize;

use secrecy::SecretString;

use super::channel::http::{JsonPost, UrlEnvConfig};
use super::channel::{
    Channel, Deliver, Env, console, discord, email, opsgenie, pagerduty, slack, teams, telegram,
    twilio, webhook,
};
use super::policy::ChannelRoute;

/// An `[alerts.NAME]` table as written: `kind` picks the receiver's own table layout. Slack and
/// Teams take only `url_env`; Slack, Discord and Teams resolve to their webhook URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    Slack(UrlEnvConfig),
    Discord(discord::Config),
    Teams(UrlEnvConfig),
    Telegram(telegram::Config),
    Pagerduty(pagerduty::Config),
    Opsgenie(opsgenie::Config),
    Twilio(twilio::Config),
    Email(email::Config),
    Webhook(webhook::Config),
    Console(console::Config),
}

/// Every `kind` value, for error messages.
pub const KINDS: [&str; 10] = [
    "slack",
    "discord",
    "teams",
    "telegram",
    "pagerduty",
    "opsgenie",
    "twilio",
    "email",
    "webhook",
    "console",
];

/// The whole table: routing keys beside the receiver's own keys.
#[derive(Debug, Deserialize)]
struct RawChannel {
    #[serde(default)]
    on: Option<Vec<String>>,
    #[serde(default)]
    monitors: Option<Vec<String>>,
    #[serde(flatten)]
    receiver: ChannelConfig,
}

/// A receiver's checked settings, secrets resolved.
#[derive(Debug, Clone)]
pub enum ReceiverSpec {
    Slack(SecretString),
    Discord(SecretString),
    Teams(SecretString),
    Telegram(telegram::Spec),
    Pagerduty(pagerduty::Spec),
    Opsgenie(opsgenie::Spec),
    Twilio(twilio::Spec),
    Email(email::Spec),
    Webhook(webhook::Spec),
    Console(console::Spec),
}

/// One `[alerts.NAME]` table, validated: its name, where its alerts go, and its receiver.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    pub name: String,
    pub route: ChannelRoute,
    pub receiver: ReceiverSpec,
}

/// Why a channel's table cannot work. `field` is the key inside the table (empty when the
/// problem is the table as a whole); `message` never repeats a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl ChannelConfig {
    /// Checks the settings and resolves the secrets they name.
    pub fn resolve(self, env: Env<'_>) -> Result<ReceiverSpec, super::channel::FieldError> {
        Ok(match self {
            ChannelConfig::Slack(c) => ReceiverSpec::Slack(c.resolve(env)?),
            ChannelConfig::Discord(c) => ReceiverSpec::Discord(c.resolve(env)?),
            ChannelConfig::Teams(c) => ReceiverSpec::Teams(c.resolve(env)?),
            ChannelConfig::Telegram(c) => ReceiverSpec::Telegram(c.resolve(env)?),
            ChannelConfig::Pagerduty(c) => ReceiverSpec::Pagerduty(c.resolve(env)?),
            ChannelConfig::Opsgenie(c) => ReceiverSpec::Opsgenie(c.resolve(env)?),
            ChannelConfig::Twilio(c) => ReceiverSpec::Twilio(c.resolve(env)?),
            ChannelConfig::Email(c) => ReceiverSpec::Email(c.resolve(env)?),
            ChannelConfig::Webhook(c) => ReceiverSpec::Webhook(c.resolve(env)?),
            ChannelConfig::Console(c) => ReceiverSpec::Console(c.resolve(env)?),
        })
    }
}

impl ReceiverSpec {
    /// The `kind` value.
    pub fn kind(&self) -> &'static str {
        match self {
            ReceiverSpec::Slack(_) => "slack",
            ReceiverSpec::Discord(_) => "discord",
            ReceiverSpec::Teams(_) => "teams",
            ReceiverSpec::Telegram(_) => "telegram",
            ReceiverSpec::Pagerduty(_) => "pagerduty",
            ReceiverSpec::Opsgenie(_) => "opsgenie",
            ReceiverSpec::Twilio(_) => "twilio",
            ReceiverSpec::Email(_) => "email",
            ReceiverSpec::Webhook(_) => "webhook",
            ReceiverSpec::Console(_) => "console",
        }
    }

    /// The receiver of channel `name`, sharing `client` (HTTP channels) or opening its own
    /// transport (email).
    fn receiver(&self, name: &str, client: &reqwest::Client) -> Box<dyn Deliver> {
        let client = client.clone();
        match self.clone() {
            ReceiverSpec::Slack(s) => Box::new(JsonPost::new(s, client, slack::payload)),
            ReceiverSpec::Discord(s) => Box::new(JsonPost::new(s, client, discord::payload)),
            ReceiverSpec::Teams(s) => Box::new(JsonPost::new(s, client, teams::payload)),
            ReceiverSpec::Telegram(s) => Box::new(telegram::TelegramChannel::new(s, client)),
            ReceiverSpec::Pagerduty(s) => Box::new(pagerduty::PagerDutyChannel::new(s, client)),
            ReceiverSpec::Opsgenie(s) => Box::new(opsgenie::OpsgenieChannel::new(s, client)),
            ReceiverSpec::Twilio(s) => Box::new(twilio::TwilioChannel::new(s, client)),
            ReceiverSpec::Email(s) => Box::new(email::EmailChannel::new(s)),
            ReceiverSpec::Webhook(s) => Box::new(webhook::WebhookChannel::new(s, client)),
            ReceiverSpec::Console(s) => Box::new(console::ConsoleChannel::new(name, s)),
        }
    }
}

impl ChannelSpec {
    /// Reads the `[alerts.NAME]` table `name`: routing keys, receiver settings, secrets.
    pub fn from_table(
        name: &str,
        table: toml::Table,
        env: Env<'_>,
    ) -> Result<ChannelSpec, SpecError> {
        let raw: RawChannel = table::deserialize(table).map_err(|e| {
            let (field, message) = e.field_and_message("kind", &KINDS);
            SpecError { field, message }
        })?;
        let route = ChannelRoute::new(name, raw.on, raw.monitors).map_err(|(field, message)| {
            SpecError {
                field: field.to_owned(),
                message,
            }
        })?;
        let receiver = raw.receiver.resolve(env).map_err(|e| SpecError {
            field: e.field.to_owned(),
            message: e.message,
        })?;
        Ok(ChannelSpec {
            name: name.to_owned(),
            route,
            receiver,
        })
    }

    /// The channel, ready to send; `client` is shared by every HTTP channel of the config
    /// (`channel::http::client()`).
    pub fn build(&self, client: &reqwest::Client) -> Channel {
        Channel::new(
            &self.name,
            self.receiver.kind(),
            self.receiver.receiver(&self.name, client),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str, env: &[(&str, &str)]) -> Result<ChannelSpec, SpecError> {
        let env = crate::alert::channel::support::env(env);
        ChannelSpec::from_table("x", toml::from_str(text).unwrap(), &env)
    }

    #[test]
    fn every_kind_is_reachable_by_name_and_unknown_kinds_list_them() {
        let err = spec("kind = \"carrier-pigeon\"", &[]).unwrap_err();
        assert_eq!(err.field, "kind");
        for kind in KINDS {
            assert!(err.message.contains(kind), "{kind}: {}", err.message);
        }
        let err = spec("url_env = \"X\"", &[]).unwrap_err();
        assert_eq!(err.field, "kind");
    }

    #[test]
    fn a_console_channel_builds_from_its_table() {
        let spec = spec("kind = \"console\"", &[]).unwrap();
        let channel = spec.build(&crate::alert::channel::http::client());
        assert_eq!((channel.name(), channel.kind()), ("x", "console"));
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        assert_eq!(
            spec("kind = \"console\"\nshout = true", &[])
                .unwrap_err()
                .field,
            "shout"
        );
        let err = spec("kind = \"pagerduty\"", &[]).unwrap_err();
        assert_eq!(err.field, "routing_key_env");
        let err = spec("kind = \"pagerduty\"\nrouting_key_env = 5", &[]).unwrap_err();
        assert_eq!(err.field, "routing_key_env");
        let err = spec(
            "kind = \"pagerduty\"\nrouting_key_env = \"K\"\nregion = \"mars\"",
            &[],
        )
        .unwrap_err();
        assert_eq!(err.field, "region");
        assert!(err.message.contains("eu"), "{}", err.message);
    }

    #[test]
    fn a_missing_secret_variable_is_an_error_naming_the_field() {
        let err = spec("kind = \"slack\"\nurl_env = \"NOPE_NOT_SET\"", &[]).unwrap_err();
        assert_eq!(err.field, "url_env");
        assert!(err.message.contains("NOPE_NOT_SET"));
    }

    #[test]
    fn routing_keys_are_read_beside_the_receivers_keys() {
        let spec = spec(
            "kind = \"console\"\non = [\"setup_problem\"]\nmonitors = [\"deepseek\"]",
            &[],
        )
        .unwrap();
        assert_eq!(
            spec.route.kinds,
            vec![crate::incident::IncidentKind::SetupProblem]
        );
        let err = super::tests::spec("kind = \"console\"\non = [\"outages\"]", &[]).unwrap_err();
        assert_eq!(err.field, "on");
        for (text, key) in [
            ("on = \"outage\"", "on"),
            ("on = [\"outages\"]", "on"),
            ("monitors = [1]", "monitors"),
            ("monitors = []", "monitors"),
        ] {
            let err = super::tests::spec(&format!("kind = \"console\"\n{text}"), &[]).unwrap_err();
            assert_eq!(err.field, key, "{text}");
        }
    }
}

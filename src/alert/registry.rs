//! From `[alerts.NAME]` tables to channels: the one place that knows which `kind` names which
//! channel module. A data table, so adding a receiver is one row here plus its module.

use serde::de::DeserializeOwned;

use super::channel::{self, Channel, ChannelConfigError};

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;
type Build =
    fn(&str, toml::Table, Env<'_>, reqwest::Client) -> Result<Box<dyn Channel>, ChannelConfigError>;

/// Every channel kind, by its `kind` value.
const KINDS: &[(&str, Build)] = &[
    ("slack", |n, t, e, c| {
        Ok(Box::new(channel::slack::SlackChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("discord", |n, t, e, c| {
        Ok(Box::new(channel::discord::DiscordChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("teams", |n, t, e, c| {
        Ok(Box::new(channel::teams::TeamsChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("telegram", |n, t, e, c| {
        Ok(Box::new(channel::telegram::TelegramChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("pagerduty", |n, t, e, c| {
        Ok(Box::new(channel::pagerduty::PagerDutyChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("opsgenie", |n, t, e, c| {
        Ok(Box::new(channel::opsgenie::OpsgenieChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("twilio", |n, t, e, c| {
        Ok(Box::new(channel::twilio::TwilioChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("email", |n, t, e, _| {
        Ok(Box::new(channel::email::EmailChannel::new(
            n,
            parse(n, t)?,
            e,
        )?))
    }),
    ("webhook", |n, t, e, c| {
        Ok(Box::new(channel::webhook::WebhookChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
    ("console", |n, t, e, c| {
        Ok(Box::new(channel::console::ConsoleChannel::new(
            n,
            parse(n, t)?,
            e,
            c,
        )?))
    }),
];

/// The kinds, for error messages and docs.
pub fn kinds() -> Vec<&'static str> {
    KINDS.iter().map(|(k, _)| *k).collect()
}

/// Builds the channel named `name` from its table (which still holds `kind`).
pub fn build(
    name: &str,
    mut table: toml::Table,
    env: Env<'_>,
    client: reqwest::Client,
) -> Result<Box<dyn Channel>, ChannelConfigError> {
    let error = |field: &str, message: String| ChannelConfigError {
        channel: name.to_owned(),
        field: field.to_owned(),
        message,
    };
    let kind = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) => return Err(error("kind", "must be a string".into())),
        None => {
            return Err(error(
                "kind",
                format!("missing; one of {}", kinds().join(", ")),
            ));
        }
    };
    let Some((_, build)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        return Err(error(
            "kind",
            format!("unknown kind \"{kind}\"; one of {}", kinds().join(", ")),
        ));
    };
    build(name, table, env, client)
}

/// Deserializes a channel's `Config` from its table; serde's message names the field.
fn parse<C: DeserializeOwned>(name: &str, table: toml::Table) -> Result<C, ChannelConfigError> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let message = crate::secret::scrub(e.message().trim());
            let field = message
                .split('`')
                .nth(1)
                .filter(|_| {
                    message.starts_with("unknown field") || message.starts_with("missing field")
                })
                .unwrap_or("")
                .to_owned();
            ChannelConfigError {
                channel: name.to_owned(),
                field,
                message,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn every_kind_is_reachable_by_name_and_unknown_kinds_list_them() {
        assert_eq!(kinds().len(), 10);
        let err = build(
            "x",
            table("kind = \"carrier-pigeon\""),
            &|_| None,
            reqwest::Client::new(),
        )
        .err()
        .unwrap();
        assert_eq!(err.field, "kind");
        assert!(err.message.contains("slack") && err.message.contains("pagerduty"));
    }

    #[test]
    fn a_console_channel_builds_from_its_table() {
        let channel = build(
            "log",
            table("kind = \"console\""),
            &|_| None,
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!((channel.name(), channel.kind()), ("log", "console"));
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = build(
            "log",
            table("kind = \"console\"\nshout = true"),
            &|_| None,
            reqwest::Client::new(),
        )
        .err()
        .unwrap();
        assert_eq!(err.field, "shout");
    }

    #[test]
    fn a_missing_secret_variable_is_a_config_error_naming_the_field() {
        let err = build(
            "hook",
            table("kind = \"slack\"\nurl_env = \"NOPE_NOT_SET\""),
            &|_| None,
            reqwest::Client::new(),
        )
        .err()
        .unwrap();
        assert_eq!(err.field, "url_env");
    }
}

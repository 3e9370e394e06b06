//! `discord` channel: Discord webhooks ("Execute Webhook").
//!
//! A message is one POST of JSON to the webhook URL (`url_env`: the URL carries the webhook token)
//! with `?wait=true` added, so Discord answers 200 with the created message and a message it did
//! not save is an error we see, instead of a silent 204. The body has a short `content` line (what
//! notifications show), one embed (`title`, `description` with summary, advice and timing, `color`
//! by severity, one field per monitor, `timestamp` in ISO 8601, `url` to the status page when set,
//! `footer` with the dedup key) and `allowed_mentions: {"parse": []}`, so text quoted from a
//! provider can never ping `@everyone`, a role or a user.
//!
//! Embed limits are enforced here: title 256 characters, description 4,096, at most 25 fields
//! with name 256 and value 1,024, footer 2,048, and 6,000 for all of them together; monitors that
//! do not fit are counted in a last field. Discord answers 4xx for a bad payload or a deleted
//! webhook (permanent), 429 and 5xx when busy (retryable).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::http_url;
use super::{Env, FieldError, secret_from_env};
use crate::alert::Severity;
use crate::alert::render::{Digest, ItemDigest, truncate};
use crate::time::rfc3339;

#[cfg(test)]
mod tests;

/// Discord's embed limits, as Discord enforces them.
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4096;
const FIELDS_MAX: usize = 25;
const FIELD_NAME_MAX: usize = 256;
const FIELD_VALUE_MAX: usize = 1024;
const FOOTER_MAX: usize = 2048;
const EMBED_TOTAL_MAX: usize = 6000;

/// Our budgets under those limits: the description gets a third of the 6,000 total so several
/// monitors still fit as fields.
const SUMMARY_MAX: usize = 1200;
const ADVICE_MAX: usize = 600;
const DESCRIPTION_BUDGET: usize = 2000;
const FOOTER_BUDGET: usize = 200;
/// `content` is what notifications show: the title line, far under Discord's 2,000.
const CONTENT_BUDGET: usize = 300;
/// Room kept for the "…and N more" field.
const OVERFLOW_RESERVE: usize = 64;
/// A monitor's field is not squeezed below this; when even that does not fit, it is counted in
/// the overflow field instead.
const FIELD_VALUE_MIN: usize = 160;

const _: () = assert!(DESCRIPTION_BUDGET <= DESCRIPTION_MAX && FOOTER_BUDGET <= FOOTER_MAX);
const _: () = assert!(
    TITLE_MAX
        + DESCRIPTION_BUDGET
        + FOOTER_BUDGET
        + OVERFLOW_RESERVE
        + FIELD_NAME_MAX
        + FIELD_VALUE_MIN
        <= EMBED_TOTAL_MAX
);

/// The `[alerts.NAME]` table of a `kind = "discord"` channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Environment variable holding the webhook URL
    /// (`https://discord.com/api/webhooks/ID/TOKEN`).
    pub url_env: String,
}

impl Config {
    /// The webhook URL with `wait=true`.
    pub fn resolve(self, env: Env<'_>) -> Result<SecretString, FieldError> {
        let secret = secret_from_env("url_env", &self.url_env, env)?;
        let source = format!("environment variable {}", self.url_env);
        let mut url = http_url("url_env", secret.expose_secret(), &source)?;
        // Keep the URL's own query (`thread_id`, …) and make `wait` ours.
        let query: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, _)| key != "wait")
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(query)
            .append_pair("wait", "true");
        Ok(SecretString::from(String::from(url)))
    }
}

pub fn payload(digest: &Digest<'_>) -> Value {
    let content = format!("{} **{}**: {}", digest.icon, digest.event, digest.title);
    json!({
        "content": truncate(&content, CONTENT_BUDGET),
        "embeds": [embed(digest)],
        "allowed_mentions": { "parse": [] },
    })
}

fn embed(digest: &Digest<'_>) -> Value {
    let title = truncate(digest.title, TITLE_MAX).into_owned();
    let description = truncate(&description(digest), DESCRIPTION_BUDGET).into_owned();
    let footer = truncate(
        &format!("isdown · {} · dedup key {}", digest.event, digest.dedup_key),
        FOOTER_BUDGET,
    )
    .into_owned();
    let used = [&title, &description, &footer]
        .iter()
        .map(|text| text.chars().count())
        .sum::<usize>();
    let fields = fields(&digest.items, EMBED_TOTAL_MAX - used);

    let mut embed = Map::new();
    embed.insert("title".into(), title.into());
    embed.insert("description".into(), description.into());
    if let Some(url) = digest.url {
        embed.insert("url".into(), url.into());
    }
    embed.insert("color".into(), color(digest.severity).into());
    embed.insert("fields".into(), fields.into());
    embed.insert("timestamp".into(), rfc3339(digest.at).into());
    embed.insert("footer".into(), json!({ "text": footer }));
    Value::Object(embed)
}

fn description(digest: &Digest<'_>) -> String {
    let mut text = truncate(digest.summary, SUMMARY_MAX).into_owned();
    if !digest.advice.trim().is_empty() {
        text.push_str("\n\n**What to do:** ");
        text.push_str(&truncate(digest.advice, ADVICE_MAX));
    }
    text.push_str("\n*");
    text.push_str(&digest.timing);
    text.push('*');
    text
}

/// One field per monitor while they fit in `budget` characters and 25 fields; the rest are
/// counted in a last field. The budget is shared out evenly, so one long explanation cannot
/// crowd out the other monitors.
fn fields(items: &[ItemDigest<'_>], budget: usize) -> Vec<Value> {
    let mut left = budget.saturating_sub(OVERFLOW_RESERVE);
    let mut fields = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let remaining = items.len() - index;
        let last_slot = fields.len() == FIELDS_MAX - 1;
        if last_slot && remaining > 1 {
            break;
        }
        let name = truncate(&item.subject, FIELD_NAME_MAX).into_owned();
        let name_len = name.chars().count();
        let fair = (left / remaining)
            .saturating_sub(name_len)
            .clamp(FIELD_VALUE_MIN, FIELD_VALUE_MAX);
        let value = format!(
            "`{}` · {} · since {}\n{}",
            item.verdict, item.blame, item.since, item.explanation
        );
        let value = truncate(&value, fair).into_owned();
        let size = name_len + value.chars().count();
        if size > left {
            break;
        }
        left -= size;
        fields.push(json!({ "name": name, "value": value, "inline": false }));
    }
    let more = items.len() - fields.len();
    if more > 0 {
        fields.push(json!({
            "name": "More monitors",
            "value": format!("…and {more} more"),
            "inline": false,
        }));
    }
    fields
}

/// Sidebar colour: red, amber, green.
fn color(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 0xE0_1E_5A,
        Severity::Warning => 0xEC_B2_2E,
        Severity::Info => 0x2E_B6_7D,
    }
}

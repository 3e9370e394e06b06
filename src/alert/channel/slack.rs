//! `slack` channel: Slack incoming webhooks; and the plain reading of an alert ([`Digest`]) that
//! every chat channel (Discord, Teams, Telegram, console) renders in its own markup.
//!
//! A message is one POST of JSON to the webhook URL (`url_env`: the URL itself is the credential)
//! with `text`, the fallback shown in notifications, and `blocks` (Block Kit): a `header` with the
//! title, a `section` with summary, advice and timing, one `section` per monitor (text and
//! `fields`), and a `context` with the event, dedup key and status-page link. Block Kit limits are
//! enforced here (header 150 characters, section text 3,000, field 2,000, 50 blocks), so a long
//! provider message is cut rather than the whole message refused. Every interpolated value is
//! escaped (`&`, `<`, `>`), so a provider's error text cannot write `<!channel>` or a link. Webhooks
//! of Slack apps post to the channel picked at install time and ignore `channel`, `username` and
//! `icon_*`, so the config has no such keys. Slack answers 200 `ok`; 400/403/404/410 with an error
//! word (permanent); 5xx (retryable).
//!
//! The shared half (digest, escaping, truncation, time formats, [`post_json`]) lives here because
//! Slack needs all of it and the channel modules may not grow a shared file of their own. Nothing
//! here does I/O except `post_json`.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Channel, ChannelConfigError, judge_response, secret_from_env, transport_error};
use crate::alert::{AlertEvent, AlertItem, AlertMessage, DeliveryError, Severity};
use crate::time::Millis;
use crate::verdict::Blame;

#[cfg(test)]
pub(crate) mod support;
#[cfg(test)]
mod tests;

/// Block Kit: header text (plain_text) at most 150 characters.
const HEADER_MAX: usize = 150;
/// Block Kit: section `text` at most 3,000 characters.
const SECTION_MAX: usize = 3000;
/// Block Kit: at most 50 blocks in a message.
const BLOCKS_MAX: usize = 50;
/// Blocks every message has besides the monitors: header, overview and context.
const FIXED_BLOCKS: usize = 3;
/// Budgets inside the overview section: together with the markup they stay under
/// [`SECTION_MAX`], and each part keeps room when another is long.
const SUMMARY_MAX: usize = 1500;
const ADVICE_MAX: usize = 1200;
const TIMING_MAX: usize = 200;
/// Budgets inside a monitor's section (subject and explanation, under [`SECTION_MAX`]).
const SUBJECT_MAX: usize = 200;
const EXPLANATION_MAX: usize = 2500;
/// Markup around the budgeted parts of a section ("*What to do:* ", emphasis, line breaks).
const SECTION_MARKUP: usize = 32;
const _: () = assert!(SUMMARY_MAX + ADVICE_MAX + TIMING_MAX + SECTION_MARKUP <= SECTION_MAX);
const _: () = assert!(SUBJECT_MAX + EXPLANATION_MAX + SECTION_MARKUP <= SECTION_MAX);
/// The fallback `text`: notifications show a line or two; Slack's own cap is far higher.
const FALLBACK_TITLE_MAX: usize = 300;
const FALLBACK_SUMMARY_MAX: usize = 1500;
/// The dedup key is ours and short; the cap only guards the context block.
const KEY_MAX: usize = 200;

/// The `[alerts.NAME]` table of a `kind = "slack"` channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Environment variable holding the webhook URL (`https://hooks.slack.com/services/…`).
    pub url_env: String,
}

/// A Slack incoming webhook.
#[derive(Debug)]
pub struct SlackChannel {
    name: String,
    url: SecretString,
    client: reqwest::Client,
}

impl SlackChannel {
    pub fn new(
        name: &str,
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
        client: reqwest::Client,
    ) -> Result<Self, ChannelConfigError> {
        let url = webhook_url_from_env(name, "url_env", &config.url_env, env)?;
        Ok(Self {
            name: name.to_owned(),
            url,
            client,
        })
    }
}

#[async_trait]
impl Channel for SlackChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let body = payload(&Digest::of(message));
        post_json(&self.client, self.url.expose_secret(), &body).await
    }
}

/// The webhook body: `text` always (notifications, and clients that do not render blocks),
/// `blocks` for the message itself.
fn payload(digest: &Digest<'_>) -> Value {
    let room = BLOCKS_MAX - FIXED_BLOCKS;
    // One block goes to the "…and N more" note when the monitors do not all fit.
    let shown = if digest.items.len() <= room {
        digest.items.len()
    } else {
        room - 1
    };
    let mut blocks = Vec::with_capacity(FIXED_BLOCKS + shown + 1);
    blocks.push(header(digest));
    blocks.push(section(overview(digest)));
    blocks.extend(digest.items[..shown].iter().map(item_section));
    if shown < digest.items.len() {
        let more = digest.items.len() - shown;
        blocks.push(section(format!("…and {more} more monitors")));
    }
    blocks.push(context(digest));
    json!({ "text": fallback(digest), "blocks": blocks })
}

fn header(digest: &Digest<'_>) -> Value {
    let text = format!("{} {}", digest.icon, digest.title);
    json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&text, HEADER_MAX), "emoji": true },
    })
}

fn overview(digest: &Digest<'_>) -> String {
    let mut text = escape_markup(digest.summary, SUMMARY_MAX);
    if !digest.advice.trim().is_empty() {
        text.push_str("\n\n*What to do:* ");
        text.push_str(&escape_markup(digest.advice, ADVICE_MAX));
    }
    text.push_str("\n_");
    text.push_str(&escape_markup(&digest.timing, TIMING_MAX));
    text.push('_');
    text
}

fn item_section(item: &ItemDigest<'_>) -> Value {
    let text = format!(
        "*{}*\n{}",
        escape_markup(&item.subject, SUBJECT_MAX),
        escape_markup(item.explanation, EXPLANATION_MAX)
    );
    json!({
        "type": "section",
        "text": mrkdwn(text),
        "fields": [
            mrkdwn(format!("*Verdict*\n`{}`", item.verdict)),
            mrkdwn(format!("*Whose side*\n{}", item.blame)),
            mrkdwn(format!("*Since*\n{}", item.since)),
        ],
    })
}

fn context(digest: &Digest<'_>) -> Value {
    let mut elements = vec![mrkdwn(format!(
        "{} · dedup key `{}`",
        digest.event,
        escape_markup(digest.dedup_key, KEY_MAX)
    ))];
    if let Some(url) = digest.url {
        elements.push(mrkdwn(format!("<{}|Status page>", link_target(url))));
    }
    json!({ "type": "context", "elements": elements })
}

fn fallback(digest: &Digest<'_>) -> String {
    format!(
        "{} {}: {}",
        digest.icon,
        escape_markup(digest.title, FALLBACK_TITLE_MAX),
        escape_markup(digest.summary, FALLBACK_SUMMARY_MAX)
    )
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

/// A URL inside `<url|label>`: the markup characters escaped, and `|`, which would end the URL,
/// percent-encoded.
fn link_target(url: &str) -> String {
    escape_markup(url, usize::MAX).replace('|', "%7C")
}

// === Shared by the chat channels ===

/// 15 s: a chat webhook answers in well under a second; a hung receiver must not hold a delivery
/// slot for longer than one outbox round.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// An alert read as plain strings: what every chat message says, before any markup. Values from
/// the message are borrowed unescaped; each channel escapes and cuts them for its own format.
#[derive(Debug)]
pub(crate) struct Digest<'a> {
    /// "Opened", "Reminder", "Resolved", "Test".
    pub event: &'static str,
    pub severity: Severity,
    /// One emoji for the event and severity; plain Unicode, which every receiver renders.
    pub icon: &'static str,
    pub title: &'a str,
    pub summary: &'a str,
    pub advice: &'a str,
    /// Since when (UTC), or for a resolve, from when to when and how long.
    pub timing: String,
    pub items: Vec<ItemDigest<'a>>,
    pub url: Option<&'a str>,
    pub dedup_key: &'a str,
    /// The moment the message is about: the end for a resolve, else the start.
    pub at: Millis,
}

/// One monitor of an alert, as plain strings.
#[derive(Debug)]
pub(crate) struct ItemDigest<'a> {
    /// "Kimi · kimi-k2 (monitor kimi-chat)".
    pub subject: String,
    pub verdict: &'static str,
    /// Whose side the failure is on, in words.
    pub blame: &'static str,
    /// UTC, e.g. "2026-11-25 14:03:07 UTC".
    pub since: String,
    pub explanation: &'a str,
}

impl<'a> Digest<'a> {
    pub(crate) fn of(message: &'a AlertMessage) -> Digest<'a> {
        let severity = message.severity();
        Digest {
            event: event_name(message.event),
            severity,
            icon: icon(message.event, severity),
            title: &message.title,
            summary: &message.summary,
            advice: &message.advice,
            timing: timing(message),
            items: message.items.iter().map(ItemDigest::of).collect(),
            url: message.url.as_deref().filter(|url| !url.trim().is_empty()),
            dedup_key: &message.dedup_key,
            at: match message.event {
                AlertEvent::Resolved => message.ended_at.unwrap_or(message.started_at),
                _ => message.started_at,
            },
        }
    }
}

impl<'a> ItemDigest<'a> {
    fn of(item: &'a AlertItem) -> ItemDigest<'a> {
        let provider = match &item.model {
            Some(model) => format!("{} · {model}", item.provider_name),
            None => item.provider_name.clone(),
        };
        ItemDigest {
            subject: format!("{provider} (monitor {})", item.monitor),
            verdict: item.verdict.as_str(),
            blame: blame_words(item.blame),
            since: utc(item.started_at),
            explanation: &item.explanation,
        }
    }
}

// Exhaustive matches rather than lookup tables: a new event, severity or blame must fail to
// compile here instead of silently rendering a default.

fn event_name(event: AlertEvent) -> &'static str {
    match event {
        AlertEvent::Opened => "Opened",
        AlertEvent::Reminder => "Reminder",
        AlertEvent::Resolved => "Resolved",
        AlertEvent::Test => "Test",
    }
}

fn icon(event: AlertEvent, severity: Severity) -> &'static str {
    match (event, severity) {
        (AlertEvent::Resolved, _) => "✅",
        (AlertEvent::Test, _) => "🧪",
        (_, Severity::Critical) => "🔴",
        (_, Severity::Warning) => "⚠️",
        (_, Severity::Info) => "ℹ️",
    }
}

fn blame_words(blame: Option<Blame>) -> &'static str {
    match blame {
        Some(Blame::Provider) => "the provider's side",
        Some(Blame::Account) => "your account (key, quota or rate limit)",
        Some(Blame::Request) => "your request (model or parameters)",
        Some(Blame::Network) => "the network between isdown and the provider",
        None => "not determined",
    }
}

fn timing(message: &AlertMessage) -> String {
    let start = utc(message.started_at);
    match message.event {
        AlertEvent::Opened | AlertEvent::Test => format!("Since {start}"),
        AlertEvent::Reminder => format!("Still open, since {start}"),
        AlertEvent::Resolved => {
            let seconds = message.duration_s.or_else(|| {
                message
                    .ended_at
                    .map(|end| (end - message.started_at) / 1000)
            });
            let lasted = seconds.map_or_else(String::new, |s| format!(" after {}", duration(s)));
            match message.ended_at {
                Some(end) => format!("Resolved{lasted}: {start} → {}", utc(end)),
                None => format!("Resolved{lasted}; started {start}"),
            }
        }
    }
}

/// Whole seconds as "1h 2m 3s".
pub(crate) fn duration(seconds: i64) -> String {
    let seconds = u64::try_from(seconds).unwrap_or(0);
    humantime::format_duration(Duration::from_secs(seconds)).to_string()
}

pub(crate) use super::truncate;
pub(crate) use crate::time::rfc3339;

/// "2026-11-25 14:03:07 UTC", for people.
pub(crate) fn utc(at: Millis) -> String {
    rfc3339(at).replacen('T', " ", 1).replacen('Z', " UTC", 1)
}

/// Escapes `&`, `<` and `>` — the three characters both Slack mrkdwn and Telegram HTML treat as
/// markup — and cuts the result to at most `max_chars` characters ("…" included) without
/// splitting an entity.
pub(crate) fn escape_markup(text: &str, max_chars: usize) -> String {
    let escaped_len: usize = text.chars().map(escaped_char_len).sum();
    let budget = if escaped_len <= max_chars {
        escaped_len
    } else {
        max_chars.saturating_sub(1)
    };
    let mut out = String::with_capacity(budget.min(text.len() * 2));
    let mut used = 0;
    for ch in text.chars() {
        let len = escaped_char_len(ch);
        if used + len > budget {
            out.push('…');
            break;
        }
        match entity(ch) {
            Some(entity) => out.push_str(entity),
            None => out.push(ch),
        }
        used += len;
    }
    out
}

fn entity(ch: char) -> Option<&'static str> {
    match ch {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

fn escaped_char_len(ch: char) -> usize {
    entity(ch).map_or(1, str::len)
}

/// Resolves a webhook URL (a secret: whoever has it can post) from the environment variable
/// named by `field`, and checks it is an http(s) URL. Errors never quote the URL.
pub(crate) fn webhook_url_from_env(
    channel: &str,
    field: &str,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretString, ChannelConfigError> {
    let url = secret_from_env(channel, field, var, env)?;
    http_url(
        channel,
        field,
        url.expose_secret(),
        &format!("environment variable {var}"),
    )?;
    Ok(url)
}

/// Parses an absolute http(s) URL. `source` says where the text came from; the error names it
/// and never the text, which may be a secret.
pub(crate) fn http_url(
    channel: &str,
    field: &str,
    text: &str,
    source: &str,
) -> Result<reqwest::Url, ChannelConfigError> {
    let invalid = || ChannelConfigError {
        channel: channel.to_owned(),
        field: field.to_owned(),
        message: format!("{source} does not hold an http(s) URL"),
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

/// One POST of a JSON body, judged by status. Transport errors are redacted: the URL is usually
/// the secret.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<(), DeliveryError> {
    let response = client
        .post(url)
        .timeout(SEND_TIMEOUT)
        .json(body)
        .send()
        .await
        .map_err(|err| transport_error(&err))?;
    judge_response(response).await
}

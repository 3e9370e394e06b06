//! `telegram` channel: the Telegram Bot API's `sendMessage`.
//!
//! A message is one `POST {api_base}/bot<token>/sendMessage` with JSON `{"chat_id", "text",
//! "parse_mode": "HTML", "disable_web_page_preview": true}`. The text uses only the tags Telegram
//! documents for HTML mode (`<b>`, `<i>`, `<code>`, `<a href>`), and every interpolated value has
//! `<`, `>` and `&` (and `"` inside `href`) replaced by entities, so provider text can neither
//! break the markup nor be rejected by the parser. Text is limited to 4,096 characters after
//! entity parsing; the raw text is kept under that in UTF-16 units (how Telegram counts), which
//! bounds the parsed length, and monitors that do not fit are counted.
//!
//! The bot token (`token_env`) is in the URL path, so it is a secret twice over: the URL is held
//! as a secret, transport errors are redacted, and every error text is also scrubbed of the token
//! itself. `api_base` (default `https://api.telegram.org`) points tests or a local Bot API server
//! elsewhere. Telegram answers `{"ok": true, "result": …}` or `{"ok": false, "error_code",
//! "description", "parameters": {"retry_after"}}`: `ok: false` is a failure whatever the HTTP
//! status; 429 (flood control, with `retry_after` seconds), 408 and 5xx are retryable, other codes
//! (bad chat id, bot blocked, bad token) permanent.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{http_url, transport_error};
use super::{Deliver, Env, FieldError, secret_from_env};
use crate::alert::render::{Digest, escape_markup};
use crate::alert::{AlertMessage, DeliveryError};

#[cfg(test)]
mod tests;

const DEFAULT_API_BASE: &str = "https://api.telegram.org";
/// `sendMessage`: "1-4096 characters after entities parsing".
const TEXT_MAX: usize = 4096;
/// Per-value budgets (escaped characters). Worst case, every character two UTF-16 units, the head
/// and tail still leave room for the overflow line under [`TEXT_MAX`].
const TITLE_MAX: usize = 200;
const SUMMARY_MAX: usize = 800;
const ADVICE_MAX: usize = 500;
const SUBJECT_MAX: usize = 200;
const EXPLANATION_MAX: usize = 400;
const KEY_MAX: usize = 100;
/// Our own words; the cap only guards the sum below.
const TIMING_MAX: usize = 200;
/// A longer status-page URL (escaped, in UTF-16 units) is left out: a cut URL would lead nowhere.
const URL_MAX: usize = 500;
/// Room for "…and N more monitors".
const OVERFLOW_RESERVE: usize = 40;
/// Markup and fixed words around the head and the tail.
const MARKUP: usize = 120;
const _: () = assert!(
    2 * (TITLE_MAX + SUMMARY_MAX + ADVICE_MAX + KEY_MAX)
        + TIMING_MAX
        + URL_MAX
        + MARKUP
        + OVERFLOW_RESERVE
        <= TEXT_MAX
);
/// Longest Bot API answer quoted in an error.
const EXCERPT_MAX: usize = 200;

/// The `[alerts.NAME]` table of a `kind = "telegram"` channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Environment variable holding the bot token (`123456:ABC-…` from @BotFather).
    pub token_env: String,
    /// The chat: a numeric id (`-1001234567890`) or `@channelusername`.
    pub chat_id: ChatId,
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

/// `chat_id` as the config gave it; the Bot API takes either form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Name(String),
}

/// A Telegram bot posting to one chat.
#[derive(Debug)]
pub struct TelegramChannel {
    spec: Spec,
    client: reqwest::Client,
}

impl Config {
    pub fn resolve(self, env: Env<'_>) -> Result<Spec, FieldError> {
        let token = secret_from_env("token_env", &self.token_env, env)?;
        // The token becomes a path segment: anything but the documented characters would change
        // the URL (or be a pasted URL instead of a token).
        let well_formed = token.expose_secret().contains(':')
            && token
                .expose_secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
        if !well_formed {
            let var = &self.token_env;
            return Err(FieldError::new(
                "token_env",
                format!("environment variable {var} does not hold a bot token (digits:letters)"),
            ));
        }
        if let ChatId::Name(chat) = &self.chat_id
            && chat.trim().is_empty()
        {
            return Err(FieldError::new("chat_id", "must not be empty"));
        }
        let base = http_url("api_base", &self.api_base, "`api_base`")?;
        let endpoint = format!(
            "{}/bot{}/sendMessage",
            base.as_str().trim_end_matches('/'),
            token.expose_secret()
        );
        Ok(Spec {
            chat_id: self.chat_id,
            endpoint: SecretString::from(endpoint),
            token,
        })
    }
}

/// A checked `telegram` channel.
#[derive(Debug, Clone)]
pub struct Spec {
    chat_id: ChatId,
    /// `{api_base}/bot{token}/sendMessage`.
    endpoint: SecretString,
    /// Kept only to scrub it from error texts.
    token: SecretString,
}

impl TelegramChannel {
    pub fn new(spec: Spec, client: reqwest::Client) -> Self {
        Self { spec, client }
    }

    /// Removes the token from an error text, whatever produced it.
    fn scrub(&self, err: DeliveryError) -> DeliveryError {
        let token = self.spec.token.expose_secret();
        match err {
            DeliveryError::Retryable(text) => {
                DeliveryError::Retryable(text.replace(token, "<token>"))
            }
            DeliveryError::Permanent(text) => {
                DeliveryError::Permanent(text.replace(token, "<token>"))
            }
        }
    }
}

#[async_trait]
impl Deliver for TelegramChannel {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let body = json!({
            "chat_id": self.spec.chat_id,
            "text": text(&Digest::of(message)),
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        });
        let response = self
            .client
            .post(self.spec.endpoint.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|err| self.scrub(transport_error(&err)))?;
        judge(response).await.map_err(|err| self.scrub(err))
    }
}

/// The message in Telegram's HTML mode, under [`TEXT_MAX`].
fn text(digest: &Digest<'_>) -> String {
    let mut head = format!(
        "{} <b>{}</b>\n{}\n",
        digest.icon,
        escape_markup(digest.title, TITLE_MAX),
        escape_markup(digest.summary, SUMMARY_MAX)
    );
    if !digest.advice.trim().is_empty() {
        head.push_str("\n<b>What to do:</b> ");
        head.push_str(&escape_markup(digest.advice, ADVICE_MAX));
        head.push('\n');
    }
    head.push_str(&format!(
        "<i>{}</i>\n",
        escape_markup(&digest.timing, TIMING_MAX)
    ));

    let mut tail = String::from("\n");
    if let Some(url) = digest.url {
        let href = escape_markup(url, usize::MAX).replace('"', "&quot;");
        if units(&href) <= URL_MAX {
            tail.push_str(&format!("<a href=\"{href}\">Status page</a>\n"));
        }
    }
    let key = escape_markup(digest.dedup_key, KEY_MAX);
    tail.push_str(&format!("Dedup key: <code>{key}</code>"));

    let mut room = TEXT_MAX
        .saturating_sub(units(&head) + units(&tail))
        .saturating_sub(OVERFLOW_RESERVE);
    let mut items = String::new();
    let mut shown = 0;
    for item in &digest.items {
        let block = format!(
            "\n• <b>{}</b>: <code>{}</code>, {}, since {}\n{}\n",
            escape_markup(&item.subject, SUBJECT_MAX),
            item.verdict,
            item.blame,
            item.since,
            escape_markup(item.explanation, EXPLANATION_MAX)
        );
        let size = units(&block);
        if size > room {
            break;
        }
        room -= size;
        items.push_str(&block);
        shown += 1;
    }
    let more = digest.items.len() - shown;
    if more > 0 {
        items.push_str(&format!("\n…and {more} more monitors\n"));
    }
    head + &items + &tail
}

/// Length as Telegram counts it: UTF-16 code units.
fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// The Bot API answer envelope.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    description: Option<String>,
    error_code: Option<u16>,
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
}

/// Delivered only when the HTTP status is 2xx and the answer says `ok: true`.
async fn judge(response: reqwest::Response) -> Result<(), DeliveryError> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|err| transport_error(&err))?;
    let answer = serde_json::from_slice::<Answer>(&body).ok();
    if status.is_success() && answer.as_ref().is_some_and(|a| a.ok) {
        return Ok(());
    }
    let (code, mut text) = match answer {
        Some(answer) => {
            let code = answer.error_code.unwrap_or(status.as_u16());
            let mut text = answer.description.unwrap_or_default();
            if let Some(seconds) = answer.parameters.and_then(|p| p.retry_after) {
                text.push_str(&format!(" (retry after {seconds} s)"));
            }
            (code, text)
        }
        None => (
            status.as_u16(),
            format!(
                "not a Bot API answer: {}",
                String::from_utf8_lossy(&body).trim()
            ),
        ),
    };
    text = crate::secret::scrub(&text)
        .chars()
        .take(EXCERPT_MAX)
        .collect();
    let message = format!("Telegram {code}: {text}");
    if code == 408 || code == 429 || code >= 500 {
        Err(DeliveryError::Retryable(message))
    } else {
        Err(DeliveryError::Permanent(message))
    }
}

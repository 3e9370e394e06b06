//! `twilio` channel: SMS through Twilio's Programmable Messaging API.
//!
//! Owns the SMS text and the request format, and nothing about incidents. Each message is one
//! `POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json` per recipient, HTTP Basic
//! auth `AccountSid:AuthToken`, body `application/x-www-form-urlencoded` with `To`, `From` and/or
//! `MessagingServiceSid`, and `Body` — the fields of Twilio's Message resource.
//! Twilio answers 201 with the message resource; 400 (e.g. code 21211, invalid `To`) is
//! permanent, 429 and 5xx are worth retrying. The auth token is read from the environment
//! variable the config names, lives in a [`SecretString`], and error texts are scrubbed of it.
//!
//! Twilio has no idempotency key for creating messages, so a retry of the whole message would
//! text again everyone who already got it. The channel therefore remembers, in memory, who got
//! a message whose delivery failed retryably for someone else, and the outbox's retry of that
//! same message goes only to the rest. The memory is per process: a crash between the partial
//! delivery and the retry can still send an earlier recipient a second SMS.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::http::{Hosts, endpoint, judge_response, transport_error};
use super::{Deliver, Env, FieldError, secret_from_env};
use crate::alert::render::{blame_word, distinct};
use crate::alert::{AlertEvent, AlertMessage, DeliveryError};

/// Twilio has one documented API host for every account.
const HOSTS: Hosts = Hosts {
    us: "https://api.twilio.com",
    eu: "https://api.twilio.com",
};

/// Two GSM-7 segments: enough for what is down, whose side, what to do and a link, and still
/// cheap. Longer texts are cut before the link so the link survives.
const MAX_SMS_CHARS: usize = 320;

/// How long a partial delivery is remembered. Longer than any sensible outbox retry schedule;
/// the cost of remembering too long is that a byte-identical message sent again later (a
/// reminder after the outbox gave up) skips the recipients that already got the first.
const PARTIAL_TTL: Duration = Duration::from_secs(6 * 3600);
/// Bounds the memory when many messages fail at once.
const MAX_PARTIALS: usize = 64;

/// `[alerts.NAME]` with `kind = "twilio"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Account SID (`AC…`), or `account_sid_env` to read it from the environment.
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub account_sid_env: Option<String>,
    /// Environment variable holding the account's auth token.
    pub auth_token_env: String,
    /// Sender number in E.164 (`+15557654321`); or `messaging_service_sid`, or both.
    #[serde(default)]
    pub from: Option<String>,
    /// A Messaging Service (`MG…`) that picks the sender.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Recipients in E.164; each gets its own SMS.
    pub to: Vec<String>,
    /// Overrides the API base (tests, proxies). Default: `https://api.twilio.com`.
    #[serde(default)]
    pub api_url: Option<String>,
}

/// A checked `twilio` channel.
#[derive(Debug, Clone)]
pub struct Spec {
    account_sid: String,
    auth_token: SecretString,
    /// `{api_url}/2010-04-01/Accounts/{sid}/Messages.json`.
    messages_url: reqwest::Url,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    to: Vec<String>,
}

impl Config {
    pub fn resolve(self, env: Env<'_>) -> Result<Spec, FieldError> {
        let error = |field: &'static str, message: String| FieldError::new(field, message);
        let (account_sid, sid_field) = match (&self.account_sid, &self.account_sid_env) {
            (Some(sid), None) => (sid.trim().to_owned(), "account_sid"),
            (None, Some(var)) => {
                let sid = secret_from_env("account_sid_env", var, env)?;
                (sid.expose_secret().to_owned(), "account_sid_env")
            }
            _ => {
                return Err(error(
                    "account_sid",
                    "set exactly one of `account_sid` and `account_sid_env`".to_owned(),
                ));
            }
        };
        if !is_sid(&account_sid, "AC") {
            return Err(error(
                sid_field,
                format!("`{account_sid}` is not an Account SID (AC and 32 letters or digits)"),
            ));
        }
        if self.from.is_none() && self.messaging_service_sid.is_none() {
            return Err(error(
                "from",
                "set `from` (an E.164 number) or `messaging_service_sid`".to_owned(),
            ));
        }
        if let Some(from) = &self.from
            && !is_e164(from)
        {
            return Err(error("from", not_e164(from)));
        }
        if let Some(sid) = &self.messaging_service_sid
            && !is_sid(sid, "MG")
        {
            return Err(error(
                "messaging_service_sid",
                format!("`{sid}` is not a Messaging Service SID (MG and 32 letters or digits)"),
            ));
        }
        if self.to.is_empty() {
            return Err(error("to", "list at least one recipient".to_owned()));
        }
        for (i, number) in self.to.iter().enumerate() {
            if !is_e164(number) {
                return Err(error("to", not_e164(number)));
            }
            if self.to[..i].contains(number) {
                return Err(error("to", format!("`{number}` is listed twice")));
            }
        }
        let messages_url = endpoint(
            &HOSTS,
            None,
            self.api_url.as_deref(),
            &["2010-04-01", "Accounts", &account_sid, "Messages.json"],
        )?;
        let auth_token = secret_from_env("auth_token_env", &self.auth_token_env, env)?;
        Ok(Spec {
            account_sid,
            auth_token,
            messages_url,
            from: self.from,
            messaging_service_sid: self.messaging_service_sid,
            to: self.to,
        })
    }
}

/// Sends alerts as SMS.
#[derive(Debug)]
pub struct TwilioChannel {
    spec: Spec,
    client: reqwest::Client,
    partials: Mutex<Partials>,
}

impl TwilioChannel {
    pub fn new(spec: Spec, client: reqwest::Client) -> Self {
        TwilioChannel {
            spec,
            client,
            partials: Mutex::default(),
        }
    }

    /// Where messages are created.
    pub fn messages_url(&self) -> &reqwest::Url {
        &self.spec.messages_url
    }

    /// One SMS to one recipient.
    async fn send_one(&self, to: &str, text: &str) -> Result<(), DeliveryError> {
        let mut fields = vec![("To", to)];
        if let Some(from) = &self.spec.from {
            fields.push(("From", from));
        }
        if let Some(sid) = &self.spec.messaging_service_sid {
            fields.push(("MessagingServiceSid", sid));
        }
        fields.push(("Body", text));
        let token = self.spec.auth_token.expose_secret();
        let response = self
            .client
            .post(self.spec.messages_url.clone())
            .basic_auth(&self.spec.account_sid, Some(token))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_urlencoded(&fields))
            .send()
            .await
            .map_err(|e| transport_error(&e).scrubbed(token))?;
        judge_response(response)
            .await
            .map_err(|e| e.scrubbed(token))
    }

    fn partials(&self) -> std::sync::MutexGuard<'_, Partials> {
        // Every update is a single push or remove, so a panic while the lock was held cannot
        // leave the memory half-changed: a poisoned lock is still safe to use.
        self.partials.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Deliver for TwilioChannel {
    /// Texts every recipient not already reached by an earlier, partly failed attempt at this
    /// same message. Any retryable failure makes the result retryable (the outbox will try
    /// again, and only the rest will be texted); otherwise a failure is permanent.
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let text = sms_text(message);
        let fingerprint = fingerprint(message);
        let mut delivered = self.partials().take(fingerprint, Instant::now());
        let mut failures: Vec<(&str, DeliveryError)> = Vec::new();
        for to in &self.spec.to {
            if delivered.contains(to) {
                continue;
            }
            match self.send_one(to, &text).await {
                Ok(()) => delivered.push(to.clone()),
                Err(err) => failures.push((to, err)),
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let retryable = failures
            .iter()
            .any(|(_, err)| matches!(err, DeliveryError::Retryable(_)));
        if retryable && !delivered.is_empty() {
            self.partials()
                .remember(fingerprint, delivered, Instant::now());
        }
        let detail = failures
            .iter()
            .map(|(to, err)| {
                let (DeliveryError::Retryable(text) | DeliveryError::Permanent(text)) = err;
                format!("{to}: {text}")
            })
            .collect::<Vec<_>>()
            .join("; ");
        let summary = format!(
            "{} of {} recipients failed: {detail}",
            failures.len(),
            self.spec.to.len()
        );
        Err(if retryable {
            DeliveryError::Retryable(summary)
        } else {
            DeliveryError::Permanent(summary)
        })
    }
}

// === partial deliveries ===

/// Recipients already texted for messages whose delivery failed retryably for someone else,
/// keyed by the message's fingerprint. An entry is taken (removed) by the next attempt at the
/// same message, so a later identical message after a complete delivery goes to everyone.
#[derive(Debug, Default)]
struct Partials {
    entries: VecDeque<Partial>,
}

#[derive(Debug)]
struct Partial {
    fingerprint: u64,
    at: Instant,
    delivered: Vec<String>,
}

impl Partials {
    /// The recipients already reached by this message, forgetting them (and anything expired).
    fn take(&mut self, fingerprint: u64, now: Instant) -> Vec<String> {
        self.entries
            .retain(|entry| now.saturating_duration_since(entry.at) < PARTIAL_TTL);
        match self
            .entries
            .iter()
            .position(|e| e.fingerprint == fingerprint)
        {
            Some(i) => self
                .entries
                .remove(i)
                .map(|e| e.delivered)
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn remember(&mut self, fingerprint: u64, delivered: Vec<String>, now: Instant) {
        self.entries
            .retain(|entry| entry.fingerprint != fingerprint);
        if self.entries.len() == MAX_PARTIALS {
            self.entries.pop_front();
        }
        self.entries.push_back(Partial {
            fingerprint,
            at: now,
            delivered,
        });
    }
}

/// Identifies one message across the outbox's attempts: the outbox resends the very message it
/// stored, so its serialization is the same. (`DefaultHasher::new()` has fixed keys: stable
/// within the process, which is as long as the memory lives.)
fn fingerprint(message: &AlertMessage) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(message)
        .expect("an AlertMessage always serializes")
        .hash(&mut hasher);
    hasher.finish()
}

// === SMS text ===

/// "isdown: Kimi is DOWN (unavailable) since 14:03 UTC. Blame: provider. Fail over to
/// DeepSeek. https://…" — what is down since when (the title), whose side, what to do, the
/// link; a resolve says how long it lasted. At most [`MAX_SMS_CHARS`], in characters that keep
/// the SMS in the GSM-7 alphabet where the input allows.
fn sms_text(message: &AlertMessage) -> String {
    let prefix = match message.event {
        AlertEvent::Reminder => "isdown reminder: ",
        AlertEvent::Update => "isdown update: ",
        AlertEvent::Test => "isdown test: ",
        AlertEvent::Opened | AlertEvent::Resolved => "isdown: ",
    };
    // A resolve's title already says how long it lasted.
    let mut text = format!("{prefix}{}", sentence(&message.title));
    if message.event != AlertEvent::Resolved {
        let blames = distinct(message.items.iter().filter_map(|i| i.blame.map(blame_word)));
        if !blames.is_empty() {
            text.push_str(&format!(" Blame: {}.", blames.join(", ")));
        }
        if !message.advice.trim().is_empty() {
            text.push(' ');
            text.push_str(&sentence(&message.advice));
        }
    }
    let text = gsm_friendly(&text);
    let url = message.url.as_deref().map(gsm_friendly).unwrap_or_default();
    // Keep the link whole when there is room for it and a useful text.
    let room = MAX_SMS_CHARS.saturating_sub(url.chars().count() + 1);
    if url.is_empty() || room < 40 {
        return truncate_gsm(&text, MAX_SMS_CHARS);
    }
    format!("{} {url}", truncate_gsm(&text, room))
}

/// The text as one sentence: trimmed, with a full stop unless it already ends in punctuation.
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// Typographic punctuation turns a whole SMS into UCS-2 (70 characters a segment instead of
/// 160); the ASCII look-alikes keep it GSM-7.
fn gsm_friendly(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\u{2014}' | '\u{2013}' | '\u{2212}' => out.push('-'),
            '\u{2018}' | '\u{2019}' => out.push('\''),
            '\u{201C}' | '\u{201D}' => out.push('"'),
            '\u{2026}' => out.push_str("..."),
            '\u{00A0}' | '\u{202F}' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// At most `max` characters, ending in "..." when cut: the Unicode ellipsis would switch the
/// whole SMS to the costlier UCS-2 encoding.
fn truncate_gsm(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

// === form encoding ===

/// Serializes name/value pairs as `application/x-www-form-urlencoded`, per the WHATWG URL
/// standard's serializer: bytes of `*-._`, ASCII digits and letters stay, a space becomes `+`,
/// every other byte of the UTF-8 text becomes `%XX`. (reqwest's `form` feature is off here;
/// this is the whole of what it would do for us.)
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(name, &mut out);
        out.push('=');
        encode_component(value, &mut out);
    }
    out
}

fn encode_component(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'*' | b'-' | b'.' | b'_' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0F)]));
            }
        }
    }
}

// === validation ===

/// E.164: `+`, a country code not starting with 0, at most 15 digits in all. At least 7 digits,
/// which the shortest numbering plans in use reach, so "+1" and other stumps are caught here
/// and not by a failed SMS during an outage.
fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn not_e164(number: &str) -> String {
    format!("`{number}` is not an E.164 number (+, country code and number, digits only)")
}

/// Twilio SIDs: a two-letter prefix and 32 hex digits (accepted as letters or digits).
fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34
        && sid.starts_with(prefix)
        && sid[2..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests;

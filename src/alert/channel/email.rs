//! `email` channel: one SMTP message per alert, addressed to every configured recipient at once.
//!
//! This module owns the `[alerts.NAME]` table of `kind = "email"` ([`Config`]), the rendering of
//! an [`AlertMessage`] as a `multipart/alternative` mail (plain text and a simple HTML version in
//! which every interpolated value is escaped), the Message-ID scheme that threads reminders and
//! the resolve under their open, and the mapping of SMTP failures to [`DeliveryError`]. It makes
//! one attempt per call and never queues or retries: that is the outbox's job. Its input is an
//! `AlertMessage` built by the alert rules; the password comes from the environment variable
//! named by `password_env`, read once when the channel is built.
//!
//! Each send opens one SMTP connection and closes it again rather than going through lettre's
//! connection pool: alerts are rare, and the pool spawns Tokio tasks when it is created and when
//! it is dropped, which would tie building (and dropping) a channel to a running runtime.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::Address;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Channel, ChannelConfigError, secret_from_env};
use crate::alert::{AlertEvent, AlertItem, AlertMessage, DeliveryError};
use crate::incident::IncidentKind;
use crate::time::Millis;
use crate::verdict::Blame;

#[cfg(test)]
mod tests;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS before anything else is sent; a server that does
    /// not offer STARTTLS is refused (no silent downgrade). Default port 587.
    #[default]
    #[serde(rename = "starttls")]
    StartTls,
    /// TLS from the first byte ("SMTPS", implicit TLS). Default port 465.
    #[serde(rename = "tls")]
    Tls,
    /// No encryption at all: the alert (and everything in it) crosses the network in clear
    /// text. Only for a relay on the same host or a trusted network, e.g. a local Postfix.
    /// Credentials are refused with it. Default port 25.
    #[serde(rename = "none")]
    Plaintext,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::Plaintext => 25,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::Plaintext => "none",
        }
    }
}

/// `[alerts.NAME]` with `kind = "email"` (the `kind` key itself is consumed by the caller).
///
/// ```toml
/// [alerts.mail]
/// kind = "email"
/// host = "smtp.example.com"
/// # port = 587                      # default by security: 587 starttls, 465 tls, 25 none
/// # security = "starttls"           # "starttls" (default) | "tls" | "none" (clear text!)
/// username = "alerts@example.com"   # optional; needs password_env
/// password_env = "SMTP_PASSWORD"    # the password itself is never written in the file
/// from = "isdown <alerts@example.com>"
/// to = ["oncall@example.com", "Ops <ops@example.com>"]
/// # subject_prefix = "[isdown]"
/// # timeout = "20s"                 # whole delivery: connect, TLS, login, transfer
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

fn default_subject_prefix() -> String {
    "[isdown]".to_owned()
}

/// 20 s: a healthy submission server answers in well under a second; a slow one should not
/// hold an outbox worker for long, and a retry comes anyway.
fn default_timeout() -> String {
    "20s".to_owned()
}

/// A validated email channel: addresses parsed, password resolved, TLS roots loaded.
pub struct EmailChannel {
    name: String,
    host: String,
    port: u16,
    security: Security,
    /// `None` only with [`Security::Plaintext`].
    tls: Option<TlsParameters>,
    credentials: Option<(String, SecretString)>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_prefix: String,
    timeout: Duration,
    /// The EHLO name, looked up once (it costs a system call).
    hello: ClientId,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Validates `config` and resolves the password through `env`.
    pub fn new(
        name: &str,
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ChannelConfigError> {
        let invalid = |field: &str, message: String| ChannelConfigError {
            channel: name.to_owned(),
            field: field.to_owned(),
            message,
        };

        let host = config.host.trim();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "host",
                format!("\"{host}\" is not a host name or IP address"),
            ));
        }
        let port = config.port.unwrap_or(config.security.default_port());
        if port == 0 {
            return Err(invalid("port", "must be between 1 and 65535".to_owned()));
        }

        let from = parse_mailbox(&config.from).map_err(|e| invalid("from", e))?;
        if config.to.is_empty() {
            return Err(invalid("to", "needs at least one recipient".to_owned()));
        }
        let to = config
            .to
            .iter()
            .map(|text| parse_mailbox(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("to", e))?;

        if config.subject_prefix.contains(char::is_control) {
            return Err(invalid(
                "subject_prefix",
                "must be one line without control characters".to_owned(),
            ));
        }

        let timeout = humantime::parse_duration(&config.timeout).map_err(|e| {
            invalid(
                "timeout",
                format!(
                    "invalid duration \"{}\" ({e}); expected e.g. \"20s\"",
                    config.timeout
                ),
            )
        })?;
        if timeout.is_zero() {
            return Err(invalid(
                "timeout",
                "a duration of zero is not allowed".to_owned(),
            ));
        }

        let credentials = match (config.username, config.password_env) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "password_env",
                    "is required when `username` is set".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "username",
                    "is required when `password_env` is set".to_owned(),
                ));
            }
            (Some(username), Some(var)) => {
                if username.trim().is_empty() {
                    return Err(invalid("username", "must not be empty".to_owned()));
                }
                if config.security == Security::Plaintext {
                    return Err(invalid(
                        "username",
                        "with security = \"none\" the password would cross the network in \
                         clear text; use security = \"starttls\" or \"tls\""
                            .to_owned(),
                    ));
                }
                let password = secret_from_env(name, "password_env", &var, env)?;
                Some((username.trim().to_owned(), password))
            }
        };

        let tls = match config.security {
            Security::Plaintext => None,
            // Loads the system's root certificates once, here, rather than on every send.
            Security::StartTls | Security::Tls => {
                Some(TlsParameters::new(host.to_owned()).map_err(|e| {
                    invalid("security", format!("cannot set up TLS for {host}: {e}"))
                })?)
            }
        };

        Ok(EmailChannel {
            name: name.to_owned(),
            host: host.to_owned(),
            port,
            security: config.security,
            tls,
            credentials,
            from,
            to,
            subject_prefix: config.subject_prefix.trim().to_owned(),
            timeout,
            hello: ClientId::default(),
        })
    }

    /// Trusts `ca_pem` in addition to the system roots: lets tests talk TLS to a local server
    /// with a throwaway CA. Deliberately not reachable from the config.
    #[cfg(test)]
    fn trusting(mut self, ca_pem: &[u8]) -> Self {
        use lettre::transport::smtp::client::Certificate;
        let ca = Certificate::from_pem(ca_pem).expect("test CA is valid PEM");
        self.tls = Some(
            TlsParameters::builder(self.host.clone())
                .add_root_certificate(ca)
                .build()
                .expect("TLS parameters with a test CA"),
        );
        self
    }

    /// The mail for `message`, addressed to every recipient.
    fn compose(&self, message: &AlertMessage) -> Result<Message, lettre::error::Error> {
        let thread = Thread::of(message, &message_id_domain(&self.from.email));
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject(&self.subject_prefix, message))
            .message_id(Some(thread.message_id));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        if let Some(parent) = thread.parent {
            builder = builder.in_reply_to(parent.clone()).references(parent);
        }
        builder
            .raw_header(HeaderValue::new(
                DEDUP_KEY_HEADER,
                one_line(&message.dedup_key),
            ))
            .raw_header(HeaderValue::new(
                EVENT_HEADER,
                message.event.as_str().to_owned(),
            ))
            .raw_header(HeaderValue::new(
                SEVERITY_HEADER,
                severity_name(message).to_owned(),
            ))
            // RFC 3834: tells vacation responders and ticket systems not to answer.
            .raw_header(HeaderValue::new(
                AUTO_SUBMITTED_HEADER,
                "auto-generated".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                plain_body(message),
                html_body(message),
            ))
    }

    /// One SMTP session: connect (TLS from the start with `tls`), STARTTLS when configured,
    /// log in when configured, hand over the mail, say goodbye.
    async fn deliver(
        &self,
        mail: &Message,
        bytes: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let implicit_tls = match self.security {
            Security::Tls => self.tls.clone(),
            Security::StartTls | Security::Plaintext => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            implicit_tls,
            None,
        )
        .await?;
        if self.security == Security::StartTls {
            let tls = self
                .tls
                .clone()
                .expect("starttls channels are built with TLS parameters");
            // Fails when the server does not offer STARTTLS: nothing has been sent yet.
            conn.starttls(tls, &self.hello).await?;
        }
        if let Some((username, password)) = &self.credentials {
            let credentials =
                Credentials::new(username.clone(), password.expose_secret().to_owned());
            if let Err(e) = conn
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
            {
                conn.abort().await;
                return Err(e);
            }
        }
        conn.send(mail.envelope(), bytes).await?;
        // The server has accepted the mail; a failed goodbye changes nothing.
        let _ = conn.quit().await;
        Ok(())
    }

    /// SMTP 5xx and client-side refusals (no STARTTLS offered, no usable AUTH mechanism) cannot
    /// be fixed by trying again; 4xx, network, timeout and TLS failures can.
    fn judge(&self, err: &lettre::transport::smtp::Error) -> DeliveryError {
        let text = self.scrub(&format!("SMTP {}:{}: {err}", self.host, self.port));
        if err.is_permanent() || err.is_client() {
            DeliveryError::Permanent(text)
        } else {
            DeliveryError::Retryable(text)
        }
    }

    /// Error text leaves the process (logs, the outbox's table): never with the password in it.
    fn scrub(&self, text: &str) -> String {
        let text = match &self.credentials {
            Some((_, password)) if !password.expose_secret().is_empty() => {
                text.replace(password.expose_secret(), "[redacted]")
            }
            _ => text.to_owned(),
        };
        crate::secret::scrub(&text)
    }
}

#[async_trait]
impl Channel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "email"
    }

    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let mail = self
            .compose(message)
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the mail: {e}")))?;
        let bytes = mail.formatted();
        match tokio::time::timeout(self.timeout, self.deliver(&mail, &bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.judge(&e)),
            Err(_) => Err(DeliveryError::Retryable(format!(
                "SMTP {}:{} ({}): no delivery within {}",
                self.host,
                self.port,
                self.security.as_str(),
                humantime::format_duration(self.timeout)
            ))),
        }
    }
}

fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("\"{text}\" is not a mail address ({e})"))
}

// === Headers and threading ===

const DEDUP_KEY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Isdown-Dedup-Key");
const EVENT_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Isdown-Event");
const SEVERITY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Isdown-Severity");
const AUTO_SUBMITTED_HEADER: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// Message-ID of a mail, and the Message-ID of the open it answers.
///
/// Both are derived from the dedup key, so a resend after a crash carries the same id (mail
/// systems may drop it as a duplicate, which is what a resend should cause) and the resolve can
/// name its open as parent without any stored state. The open's id also covers `started_at`:
/// a reopened incident must come with a new dedup key or a new `started_at`, or mail systems
/// that drop repeated Message-IDs (Gmail does) would hide the reopen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Thread {
    message_id: String,
    parent: Option<String>,
}

impl Thread {
    fn of(message: &AlertMessage, domain: &str) -> Thread {
        let key = short_hash(message.dedup_key.as_bytes());
        let open = format!("<isdown.{key}.{}@{domain}>", message.started_at);
        // Reminders and tests repeat under one key: their own id covers their content.
        let own = || {
            let content = serde_json::to_vec(message).expect("an AlertMessage always serializes");
            format!(
                "<isdown.{key}.{}.{}.{}@{domain}>",
                message.started_at,
                message.event.as_str(),
                short_hash(&content)
            )
        };
        match message.event {
            AlertEvent::Opened => Thread {
                message_id: open,
                parent: None,
            },
            AlertEvent::Reminder | AlertEvent::Resolved => Thread {
                message_id: own(),
                parent: Some(open),
            },
            AlertEvent::Test => Thread {
                message_id: own(),
                parent: None,
            },
        }
    }
}

/// 128 bits of SHA-256 in hex: unique enough for ids, and safe in a Message-ID whatever
/// characters the dedup key has.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The right-hand side of our Message-IDs: the sender's domain, as RFC 5322 suggests, so that
/// every isdown instance with the same config produces the same ids.
fn message_id_domain(from: &Address) -> String {
    let domain = from.domain();
    if !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
    {
        domain.to_owned()
    } else {
        // An internationalized domain would be RFC 2047-encoded and break the id.
        "isdown.invalid".to_owned()
    }
}

fn severity_name(message: &AlertMessage) -> &'static str {
    match message.severity() {
        crate::alert::Severity::Critical => "critical",
        crate::alert::Severity::Warning => "warning",
        crate::alert::Severity::Info => "info",
    }
}

// === Subject ===

/// How many provider names a subject lists before "and N more".
const SUBJECT_NAMES: usize = 3;

/// `[isdown] DOWN: Kimi — unavailable since 14:03 UTC`, `[isdown] RESOLVED: Kimi
/// (unavailable) after 23 min`, `[isdown] SETUP PROBLEM: Kimi — auth_failed since 09:12 UTC`.
fn subject(prefix: &str, message: &AlertMessage) -> String {
    let network = message.kind == IncidentKind::Network;
    let label = match (message.event, message.kind) {
        (AlertEvent::Test, _) => "TEST",
        (AlertEvent::Resolved, _) => "RESOLVED",
        (AlertEvent::Opened, IncidentKind::Outage) => "DOWN",
        (AlertEvent::Reminder, IncidentKind::Outage) => "STILL DOWN",
        (AlertEvent::Opened, IncidentKind::SetupProblem) => "SETUP PROBLEM",
        (AlertEvent::Reminder, IncidentKind::SetupProblem) => "STILL A SETUP PROBLEM",
        (AlertEvent::Opened, IncidentKind::Network) => "NETWORK DOWN",
        (AlertEvent::Reminder, IncidentKind::Network) => "NETWORK STILL DOWN",
    };
    let since = utc_time(message.started_at);
    let detail = if message.event == AlertEvent::Test || message.items.is_empty() {
        message.title.clone()
    } else if message.event == AlertEvent::Resolved {
        let what = if network {
            "isdown's own network".to_owned()
        } else {
            format!(
                "{} ({})",
                provider_names(&message.items),
                verdicts(&message.items)
            )
        };
        match resolved_after(message) {
            Some(duration) => format!("{what} after {duration}"),
            None => what,
        }
    } else if network {
        format!("isdown cannot reach any provider since {since}")
    } else {
        format!(
            "{} — {} since {since}",
            provider_names(&message.items),
            verdicts(&message.items)
        )
    };
    let subject = if prefix.is_empty() {
        format!("{label}: {detail}")
    } else {
        format!("{prefix} {label}: {detail}")
    };
    one_line(&subject)
}

/// "Kimi", "Kimi, DeepSeek", "Kimi, DeepSeek, GLM and 2 more".
fn provider_names(items: &[AlertItem]) -> String {
    let names = super::distinct(items.iter().map(|i| i.provider_name.as_str()));
    let mut text = names
        .iter()
        .take(SUBJECT_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SUBJECT_NAMES {
        text.push_str(&format!(" and {} more", names.len() - SUBJECT_NAMES));
    }
    text
}

/// "unavailable", "unavailable, timeout".
fn verdicts(items: &[AlertItem]) -> String {
    super::distinct(items.iter().map(|i| i.verdict.as_str())).join(", ")
}

// === Bodies ===

/// The plain-text part: what, since when, whose side, what to do, where to look.
fn plain_body(message: &AlertMessage) -> String {
    let mut out = String::new();
    out.push_str(&message.title);
    out.push_str("\n\n");
    if !message.summary.is_empty() {
        out.push_str(&message.summary);
        out.push_str("\n\n");
    }
    if !message.items.is_empty() {
        out.push_str(items_heading(message));
        out.push_str(":\n");
        for item in &message.items {
            out.push_str(&format!(
                "- {}: {} since {}\n",
                item_name(item),
                item.verdict,
                utc_datetime(item.started_at)
            ));
            if let Some(blame) = item.blame {
                out.push_str(&format!("  Whose side: {}\n", blame_text(blame)));
            }
            if !item.explanation.is_empty() {
                out.push_str(&format!("  {}\n", item.explanation));
            }
        }
        out.push('\n');
    }
    if !message.advice.is_empty() {
        out.push_str(&format!("What to do: {}\n\n", message.advice));
    }
    out.push_str(&format!("Started: {}\n", utc_datetime(message.started_at)));
    if let Some(ended) = ended_line(message) {
        out.push_str(&format!("Ended: {ended}\n"));
    }
    if let Some(url) = &message.url {
        out.push_str(&format!("\nStatus page: {url}\n"));
    }
    out.push_str(&format!(
        "\n-- \nSent by isdown. Incident key: {}\n",
        message.dedup_key
    ));
    out
}

/// The HTML part: the same content, every interpolated value escaped.
fn html_body(message: &AlertMessage) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.4\">\n",
    );
    out.push_str(&format!("<h2>{}</h2>\n", escape(&message.title)));
    if !message.summary.is_empty() {
        out.push_str(&format!("<p>{}</p>\n", escape(&message.summary)));
    }
    if !message.items.is_empty() {
        out.push_str(&format!(
            "<h3>{}</h3>\n<table cellpadding=\"4\" style=\"border-collapse:collapse\">\n\
             <tr><th align=\"left\">What</th><th align=\"left\">Verdict</th>\
             <th align=\"left\">Since</th><th align=\"left\">Whose side</th>\
             <th align=\"left\">Explanation</th></tr>\n",
            items_heading(message)
        ));
        for item in &message.items {
            out.push_str(&format!(
                "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&item_name(item)),
                escape(item.verdict.as_str()),
                escape(&utc_datetime(item.started_at)),
                escape(item.blame.map(blame_text).unwrap_or("")),
                escape(&item.explanation)
            ));
        }
        out.push_str("</table>\n");
    }
    if !message.advice.is_empty() {
        out.push_str(&format!(
            "<p><strong>What to do:</strong> {}</p>\n",
            escape(&message.advice)
        ));
    }
    out.push_str(&format!(
        "<p>Started: {}",
        escape(&utc_datetime(message.started_at))
    ));
    if let Some(ended) = ended_line(message) {
        out.push_str(&format!("<br>\nEnded: {}", escape(&ended)));
    }
    out.push_str("</p>\n");
    if let Some(url) = &message.url {
        // Only web links become links: a `javascript:` URL stays inert text.
        if url.starts_with("https://") || url.starts_with("http://") {
            out.push_str(&format!(
                "<p>Status page: <a href=\"{0}\">{0}</a></p>\n",
                escape(url)
            ));
        } else {
            out.push_str(&format!("<p>Status page: {}</p>\n", escape(url)));
        }
    }
    out.push_str(&format!(
        "<p style=\"color:#666;font-size:small\">Sent by isdown. Incident key: <code>{}</code></p>\n\
         </body></html>\n",
        escape(&message.dedup_key)
    ));
    out
}

fn items_heading(message: &AlertMessage) -> &'static str {
    match message.event {
        AlertEvent::Resolved => "Was affected",
        _ => "Affected",
    }
}

/// "Kimi, model kimi-k2.6 (monitor kimi-chat)".
fn item_name(item: &AlertItem) -> String {
    match &item.model {
        Some(model) => format!(
            "{}, model {model} (monitor {})",
            item.provider_name, item.monitor
        ),
        None => format!("{} (monitor {})", item.provider_name, item.monitor),
    }
}

fn blame_text(blame: Blame) -> &'static str {
    match blame {
        Blame::Provider => "the provider's",
        Blame::Account => "your account (key, quota or plan)",
        Blame::Request => "your request (model name or parameters)",
        Blame::Network => "isdown's own network",
    }
}

/// "2026-05-01 14:26 UTC, after 23 min" for a resolve.
fn ended_line(message: &AlertMessage) -> Option<String> {
    let ended = message.ended_at.map(utc_datetime);
    match (ended, resolved_after(message)) {
        (Some(at), Some(after)) => Some(format!("{at}, after {after}")),
        (Some(at), None) => Some(at),
        (None, Some(after)) => Some(format!("after {after}")),
        (None, None) => None,
    }
}

fn resolved_after(message: &AlertMessage) -> Option<String> {
    if message.event != AlertEvent::Resolved {
        return None;
    }
    let seconds = message.duration_s.or_else(|| {
        message
            .ended_at
            .map(|ended| (ended - message.started_at) / 1000)
    })?;
    Some(human_duration(seconds))
}

/// "45 s", "23 min", "2 h 5 min", "3 d 4 h": what a person reads at a glance.
fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{m} min"),
        3600..86_400 if m == 0 => format!("{h} h"),
        3600..86_400 => format!("{h} h {m} min"),
        _ if h == 0 => format!("{d} d"),
        _ => format!("{d} d {h} h"),
    }
}

/// "2026-05-01 14:03 UTC".
fn utc_datetime(ms: Millis) -> String {
    let rfc3339 = crate::time::rfc3339(ms);
    format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..16])
}

/// "14:03 UTC".
fn utc_time(ms: Millis) -> String {
    format!("{} UTC", &crate::time::rfc3339(ms)[11..16])
}

/// Header values are one line: control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

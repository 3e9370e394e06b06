//! `email` channel: one SMTP message per alert, addressed to every configured recipient at once.
//!
//! This module owns the `[alerts.NAME]` table of `kind = "email"` ([`Config`]), the rendering of
//! an [`AlertMessage`] as a `multipart/alternative` mail (plain text and a simple HTML version in
//! which every interpolated value is escaped), the Message-ID scheme that threads follow-ups,
//! reminders and the resolve under their open, and the mapping of SMTP failures to [`DeliveryError`]. It makes
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

use super::{Deliver, Env, FieldError, secret_from_env};
use crate::alert::render::{self, blame_words, distinct, duration, one_line, utc, utc_time};
use crate::alert::{AlertEvent, AlertItem, AlertMessage, DeliveryError};
use crate::incident::IncidentKind;

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

/// A checked `email` channel: addresses parsed, password resolved, TLS roots loaded.
#[derive(Clone)]
pub struct Spec {
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
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("email::Spec")
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

impl Config {
    /// Validates the settings and resolves the password through `env`.
    pub fn resolve(self, env: Env<'_>) -> Result<Spec, FieldError> {
        let config = self;
        let invalid = |field: &'static str, message: String| FieldError::new(field, message);

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
                let password = secret_from_env("password_env", &var, env)?;
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

        Ok(Spec {
            host: host.to_owned(),
            port,
            security: config.security,
            tls,
            credentials,
            from,
            to,
            subject_prefix: config.subject_prefix.trim().to_owned(),
            timeout,
        })
    }
}

/// Sends alerts as mail, one SMTP session per message.
#[derive(Debug)]
pub struct EmailChannel {
    spec: Spec,
    /// The EHLO name, looked up once (it costs a system call).
    hello: ClientId,
}

impl EmailChannel {
    pub fn new(spec: Spec) -> Self {
        EmailChannel {
            spec,
            hello: ClientId::default(),
        }
    }

    /// Trusts `ca_pem` in addition to the system roots: lets tests talk TLS to a local server
    /// with a throwaway CA. Deliberately not reachable from the config.
    #[cfg(test)]
    fn trusting(mut self, ca_pem: &[u8]) -> Self {
        use lettre::transport::smtp::client::Certificate;
        let ca = Certificate::from_pem(ca_pem).expect("test CA is valid PEM");
        self.spec.tls = Some(
            TlsParameters::builder(self.spec.host.clone())
                .add_root_certificate(ca)
                .build()
                .expect("TLS parameters with a test CA"),
        );
        self
    }

    /// The mail for `message`, addressed to every recipient.
    fn compose(&self, message: &AlertMessage) -> Result<Message, DeliveryError> {
        let cannot = |e: &dyn std::fmt::Display| {
            DeliveryError::Permanent(format!("cannot build the mail: {e}"))
        };
        let html = html_body(message).map_err(|e| cannot(&e))?;
        let thread = Thread::of(message, &message_id_domain(&self.spec.from.email));
        let mut builder = Message::builder()
            .from(self.spec.from.clone())
            .subject(subject(&self.spec.subject_prefix, message))
            .message_id(Some(thread.message_id));
        for to in &self.spec.to {
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
                render::severity_name(message.severity()).to_owned(),
            ))
            // RFC 3834: tells vacation responders and ticket systems not to answer.
            .raw_header(HeaderValue::new(
                AUTO_SUBMITTED_HEADER,
                "auto-generated".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(plain_body(message), html))
            .map_err(|e| cannot(&e))
    }

    /// One SMTP session: connect (TLS from the start with `tls`), STARTTLS when configured,
    /// log in when configured, hand over the mail, say goodbye.
    async fn deliver(
        &self,
        mail: &Message,
        bytes: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let implicit_tls = match self.spec.security {
            Security::Tls => self.spec.tls.clone(),
            Security::StartTls | Security::Plaintext => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.spec.host.as_str(), self.spec.port),
            Some(self.spec.timeout),
            &self.hello,
            implicit_tls,
            None,
        )
        .await?;
        if self.spec.security == Security::StartTls {
            let tls = self
                .spec
                .tls
                .clone()
                .expect("starttls channels are built with TLS parameters");
            // Fails when the server does not offer STARTTLS: nothing has been sent yet.
            conn.starttls(tls, &self.hello).await?;
        }
        if let Some((username, password)) = &self.spec.credentials {
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
        let text = self.scrub(&format!(
            "SMTP {}:{}: {err}",
            self.spec.host, self.spec.port
        ));
        if err.is_permanent() || err.is_client() {
            DeliveryError::Permanent(text)
        } else {
            DeliveryError::Retryable(text)
        }
    }

    /// Error text leaves the process (logs, the outbox's table): never with the password in it.
    fn scrub(&self, text: &str) -> String {
        let text = match &self.spec.credentials {
            Some((_, password)) if !password.expose_secret().is_empty() => {
                text.replace(password.expose_secret(), "[redacted]")
            }
            _ => text.to_owned(),
        };
        crate::secret::scrub(&text)
    }
}

#[async_trait]
impl Deliver for EmailChannel {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let mail = self.compose(message)?;
        let bytes = mail.formatted();
        match tokio::time::timeout(self.spec.timeout, self.deliver(&mail, &bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.judge(&e)),
            Err(_) => Err(DeliveryError::Retryable(format!(
                "SMTP {}:{} ({}): no delivery within {}",
                self.spec.host,
                self.spec.port,
                self.spec.security.as_str(),
                humantime::format_duration(self.spec.timeout)
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
            AlertEvent::Update | AlertEvent::Reminder | AlertEvent::Resolved => Thread {
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

// === Subject ===

/// How many provider names a subject lists before "and N more".
const SUBJECT_NAMES: usize = 3;

/// `[isdown] DOWN: Kimi — unavailable since 14:03 UTC`, `[isdown] RESOLVED: Kimi
/// (unavailable) after 23 min`, `[isdown] SETUP PROBLEM: Kimi — auth_failed since 09:12 UTC`.
pub(in crate::alert) fn subject(prefix: &str, message: &AlertMessage) -> String {
    let network = message.kind == IncidentKind::Network;
    let label = match (message.event, message.kind) {
        (AlertEvent::Test, _) => "TEST",
        (AlertEvent::Resolved, _) => "RESOLVED",
        (AlertEvent::Opened, IncidentKind::Outage) => "DOWN",
        (AlertEvent::Update, IncidentKind::Outage) => "MORE DOWN",
        (AlertEvent::Update, IncidentKind::SetupProblem) => "MORE SETUP PROBLEMS",
        (AlertEvent::Update, IncidentKind::Network) => "NETWORK STILL DOWN",
        (AlertEvent::Reminder, IncidentKind::Outage) => "STILL DOWN",
        (AlertEvent::Opened, IncidentKind::SetupProblem) => "SETUP PROBLEM",
        (AlertEvent::Reminder, IncidentKind::SetupProblem) => "STILL A SETUP PROBLEM",
        (AlertEvent::Opened, IncidentKind::Network) => "NETWORK DOWN",
        (AlertEvent::Reminder, IncidentKind::Network) => "NETWORK STILL DOWN",
        (AlertEvent::Opened, IncidentKind::Regional) => "DOWN FROM SOME REGIONS",
        (AlertEvent::Update, IncidentKind::Regional) => "MORE DOWN FROM SOME REGIONS",
        (AlertEvent::Reminder, IncidentKind::Regional) => "STILL DOWN FROM SOME REGIONS",
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
    let names = distinct(items.iter().map(|i| i.provider_name.as_str()));
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
    distinct(items.iter().map(|i| i.verdict.as_str())).join(", ")
}

// === Bodies ===

/// The plain-text part: what, since when, whose side, what to do, where to look.
pub(in crate::alert) fn plain_body(message: &AlertMessage) -> String {
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
                utc(item.started_at)
            ));
            if item.blame.is_some() {
                out.push_str(&format!("  Whose side: {}\n", blame_words(item.blame)));
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
    out.push_str(&format!("Started: {}\n", utc(message.started_at)));
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

/// The HTML part (`templates/alert_email.html`): the same content; askama escapes every
/// interpolated value.
#[derive(askama::Template)]
#[template(path = "alert_email.html")]
struct HtmlBody<'a> {
    title: &'a str,
    summary: &'a str,
    items_heading: &'static str,
    items: Vec<HtmlItem<'a>>,
    advice: &'a str,
    started: String,
    ended: Option<String>,
    url: Option<&'a str>,
    /// Only web links become links: a `javascript:` URL stays inert text.
    link: bool,
    dedup_key: &'a str,
}

struct HtmlItem<'a> {
    name: String,
    verdict: &'static str,
    since: String,
    blame: &'static str,
    explanation: &'a str,
}

pub(in crate::alert) fn html_body(message: &AlertMessage) -> Result<String, askama::Error> {
    use askama::Template;
    let url = message.url.as_deref();
    HtmlBody {
        title: &message.title,
        summary: &message.summary,
        items_heading: items_heading(message),
        items: message
            .items
            .iter()
            .map(|item| HtmlItem {
                name: item_name(item),
                verdict: item.verdict.as_str(),
                since: utc(item.started_at),
                blame: item.blame.map_or("", |b| blame_words(Some(b))),
                explanation: &item.explanation,
            })
            .collect(),
        advice: &message.advice,
        started: utc(message.started_at),
        ended: ended_line(message),
        url,
        link: url.is_some_and(|u| u.starts_with("https://") || u.starts_with("http://")),
        dedup_key: &message.dedup_key,
    }
    .render()
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

/// "2026-05-01 14:26 UTC, after 23 min" for a resolve.
fn ended_line(message: &AlertMessage) -> Option<String> {
    let ended = message.ended_at.map(utc);
    match (ended, resolved_after(message)) {
        (Some(at), Some(after)) => Some(format!("{at}, after {after}")),
        (Some(at), None) => Some(at),
        (None, Some(after)) => Some(format!("after {after}")),
        (None, None) => None,
    }
}

fn resolved_after(message: &AlertMessage) -> Option<String> {
    render::lasted(message).map(duration)
}

//! Email channel specs: config validation and rendering without I/O, then delivery to a real
//! SMTP server (aiosmtpd, see `smtp`) on 127.0.0.1 in plain, STARTTLS and implicit-TLS modes.

mod smtp;

use std::time::Duration;

use smtp::{Encryption, Options, SmtpServer};

use super::*;
use crate::alert::Severity;
use crate::alert::render::severity_name;
use crate::time::Millis;
use crate::verdict::Blame;
use crate::verdict::Verdict;

/// 2026-05-01T14:03:00Z.
const T0: Millis = 1_777_644_180_000;
const MINUTE: Millis = 60_000;
const PASSWORD: &str = "hunter2-Zq8vW3xY";
const USER: &str = "alerts@example.com";

fn env(var: &str) -> Option<String> {
    (var == "SMTP_PASSWORD").then(|| PASSWORD.to_owned())
}

fn parse(toml_text: &str) -> Config {
    toml::from_str(toml_text).unwrap()
}

fn build(toml_text: &str) -> Result<EmailChannel, FieldError> {
    parse(toml_text).resolve(&env).map(EmailChannel::new)
}

/// A complete, valid table; `extra` lines are appended (a later duplicate key is a TOML
/// error, so tests only add keys that are not here).
fn table(extra: &str) -> String {
    format!(
        "host = \"smtp.example.com\"\nfrom = \"isdown <alerts@example.com>\"\n\
         to = [\"oncall@example.com\"]\n{extra}"
    )
}

fn kimi_outage() -> AlertMessage {
    AlertMessage {
        event: AlertEvent::Opened,
        kind: IncidentKind::Outage,
        title: "Kimi is DOWN (unavailable) since 14:03 UTC".into(),
        summary: "Kimi answers 503 to every probe since 14:03 UTC. It is on Moonshot's side: \
                  DeepSeek answers normally from here."
            .into(),
        advice: "Fail over to DeepSeek; check status.moonshot.cn".into(),
        items: vec![AlertItem {
            monitor: "kimi-chat".into(),
            provider: "kimi".into(),
            provider_name: "Kimi".into(),
            model: Some("kimi-k2.6".into()),
            verdict: Verdict::Unavailable,
            blame: Some(Blame::Provider),
            explanation: "503 from api.moonshot.ai: service unavailable".into(),
            started_at: T0,
        }],
        started_at: T0,
        ended_at: None,
        duration_s: None,
        url: Some("https://status.example.com/".into()),
        dedup_key: "outage:kimi:1777644180000".into(),
    }
}

fn resolved(open: &AlertMessage) -> AlertMessage {
    AlertMessage {
        event: AlertEvent::Resolved,
        title: "Kimi is back up after 23 min".into(),
        summary: "Kimi answers normally again.".into(),
        advice: "Nothing to do.".into(),
        ended_at: Some(T0 + 23 * MINUTE),
        duration_s: Some(23 * 60),
        ..open.clone()
    }
}

/// A channel to the local test server.
fn local_channel(server: &SmtpServer, security: &str, extra: &str) -> EmailChannel {
    let channel = build(&format!(
        "host = \"127.0.0.1\"\nport = {}\nsecurity = \"{security}\"\n\
         from = \"isdown <alerts@example.com>\"\n\
         to = [\"oncall@example.com\", \"Ops Team <ops@example.com>\"]\n\
         timeout = \"10s\"\n{extra}",
        server.port
    ))
    .unwrap();
    match &server.ca_pem {
        Some(ca) => channel.trusting(ca),
        None => channel,
    }
}

fn credentials() -> String {
    format!("username = \"{USER}\"\npassword_env = \"SMTP_PASSWORD\"\n")
}

fn assert_permanent(result: Result<(), DeliveryError>) -> String {
    match result {
        Err(DeliveryError::Permanent(text)) => text,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn assert_retryable(result: Result<(), DeliveryError>) -> String {
    match result {
        Err(DeliveryError::Retryable(text)) => text,
        other => panic!("expected a retryable failure, got {other:?}"),
    }
}

// === Config ===

#[test]
fn port_defaults_follow_security() {
    for (security, port) in [("starttls", 587), ("tls", 465), ("none", 25)] {
        let channel = build(&table(&format!("security = \"{security}\""))).unwrap();
        assert_eq!(channel.spec.port, port, "{security}");
    }
    let channel = build(&table("")).unwrap();
    assert_eq!(channel.spec.security, Security::StartTls);
    assert_eq!(channel.spec.port, 587);
    assert_eq!(channel.spec.subject_prefix, "[isdown]");
    assert_eq!(channel.spec.timeout, Duration::from_secs(20));
}

#[test]
fn explicit_port_and_timeout_are_kept() {
    let channel = build(&table("port = 2525\ntimeout = \"1m 30s\"")).unwrap();
    assert_eq!(channel.spec.port, 2525);
    assert_eq!(channel.spec.timeout, Duration::from_secs(90));
}

#[test]
fn bad_sender_mailbox_names_the_field() {
    let raw = "host = \"smtp.example.com\"\nfrom = \"isdown at example\"\nto = [\"a@example.com\"]";
    let err = build(raw).unwrap_err();
    assert_eq!(err.field, "from");
    assert!(err.message.contains("isdown at example"), "{err}");
}

#[test]
fn empty_recipient_list_is_refused() {
    let raw = "host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = []";
    let err = build(raw).unwrap_err();
    assert_eq!(err.field, "to");
    assert!(err.message.contains("at least one recipient"), "{err}");
}

#[test]
fn bad_recipient_names_the_address() {
    let raw = "host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\n\
               to = [\"ok@example.com\", \"not-an-address\"]";
    let err = build(raw).unwrap_err();
    assert_eq!(err.field, "to");
    assert!(err.message.contains("not-an-address"), "{err}");
}

#[test]
fn username_without_password_env_is_refused() {
    let err = build(&table("username = \"alerts@example.com\"")).unwrap_err();
    assert_eq!(err.field, "password_env");
}

#[test]
fn password_env_without_username_is_refused() {
    let err = build(&table("password_env = \"SMTP_PASSWORD\"")).unwrap_err();
    assert_eq!(err.field, "username");
}

#[test]
fn unset_password_variable_is_named() {
    let err = build(&table(
        "username = \"alerts@example.com\"\npassword_env = \"NOT_SET_ANYWHERE\"",
    ))
    .unwrap_err();
    assert_eq!(err.field, "password_env");
    assert!(err.message.contains("NOT_SET_ANYWHERE"), "{err}");
}

#[test]
fn credentials_over_clear_text_are_refused() {
    let err = build(&table(&format!("security = \"none\"\n{}", credentials()))).unwrap_err();
    assert_eq!(err.field, "username");
    assert!(err.message.contains("clear text"), "{err}");
}

#[test]
fn unknown_field_is_refused() {
    let err = toml::from_str::<Config>(&table("accept_invalid_certs = true")).unwrap_err();
    assert!(err.to_string().contains("accept_invalid_certs"), "{err}");
}

#[test]
fn unknown_security_is_refused() {
    let err = toml::from_str::<Config>(&table("security = \"ssl\"")).unwrap_err();
    assert!(err.to_string().contains("ssl"), "{err}");
}

#[test]
fn invalid_timeout_and_port_are_refused() {
    let err = build(&table("timeout = \"soon\"")).unwrap_err();
    assert_eq!(err.field, "timeout");
    let err = build(&table("timeout = \"0s\"")).unwrap_err();
    assert_eq!(err.field, "timeout");
    let err = build(&table("port = 0")).unwrap_err();
    assert_eq!(err.field, "port");
}

#[test]
fn debug_output_never_shows_the_password() {
    let channel = build(&table(&credentials())).unwrap();
    let debug = format!("{channel:?}");
    assert!(debug.contains(USER), "{debug}");
    assert!(!debug.contains(PASSWORD), "{debug}");
}

// === Rendering ===

#[test]
fn subjects_say_what_happened_in_one_line() {
    let open = kimi_outage();
    let setup = AlertMessage {
        kind: IncidentKind::SetupProblem,
        items: vec![AlertItem {
            verdict: Verdict::AuthFailed,
            blame: Some(Blame::Account),
            ..open.items[0].clone()
        }],
        ..open.clone()
    };
    let network = AlertMessage {
        kind: IncidentKind::Network,
        ..open.clone()
    };
    let reminder = AlertMessage {
        event: AlertEvent::Reminder,
        ..open.clone()
    };
    let test = AlertMessage {
        event: AlertEvent::Test,
        title: "Test alert from isdown".into(),
        ..open.clone()
    };
    let mut two = open.clone();
    two.items.push(AlertItem {
        provider_name: "DeepSeek".into(),
        verdict: Verdict::Timeout,
        ..open.items[0].clone()
    });
    let cases = [
        (&open, "[isdown] DOWN: Kimi — unavailable since 14:03 UTC"),
        (
            &resolved(&open),
            "[isdown] RESOLVED: Kimi (unavailable) after 23 min",
        ),
        (
            &setup,
            "[isdown] SETUP PROBLEM: Kimi — auth_failed since 14:03 UTC",
        ),
        (
            &reminder,
            "[isdown] STILL DOWN: Kimi — unavailable since 14:03 UTC",
        ),
        (
            &network,
            "[isdown] NETWORK DOWN: isdown cannot reach any provider since 14:03 UTC",
        ),
        (
            &resolved(&network),
            "[isdown] RESOLVED: isdown's own network after 23 min",
        ),
        (&test, "[isdown] TEST: Test alert from isdown"),
        (
            &two,
            "[isdown] DOWN: Kimi, DeepSeek — unavailable, timeout since 14:03 UTC",
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(subject("[isdown]", message), expected);
    }
    assert_eq!(
        subject("", &open),
        "DOWN: Kimi — unavailable since 14:03 UTC"
    );
}

#[test]
fn subject_lists_at_most_three_providers() {
    let mut message = kimi_outage();
    message.items = ["Kimi", "DeepSeek", "GLM", "Qwen", "MiniMax"]
        .into_iter()
        .map(|name| AlertItem {
            provider_name: name.into(),
            ..message.items[0].clone()
        })
        .collect();
    assert_eq!(
        subject("[isdown]", &message),
        "[isdown] DOWN: Kimi, DeepSeek, GLM and 2 more — unavailable since 14:03 UTC"
    );
}

#[test]
fn line_breaks_cannot_reach_the_subject() {
    let mut message = kimi_outage();
    message.event = AlertEvent::Test;
    message.title = "hi\r\nBcc: victim@example.com".into();
    let subject = subject("[isdown]", &message);
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
}

#[test]
fn durations_read_at_a_glance() {
    for (seconds, text) in [
        (0, "0 s"),
        (45, "45 s"),
        (60, "1 min"),
        (23 * 60 + 59, "23 min"),
        (3600, "1 h"),
        (2 * 3600 + 5 * 60, "2 h 5 min"),
        (86_400, "1 d"),
        (3 * 86_400 + 4 * 3600 + 59, "3 d 4 h"),
        (-5, "0 s"),
    ] {
        assert_eq!(duration(seconds * 1000), text, "{seconds}");
    }
}

#[test]
fn message_ids_are_stable_and_thread_under_the_open() {
    let open = kimi_outage();
    let resolve = resolved(&open);
    let open_ids = Thread::of(&open, "example.com");
    assert_eq!(
        open_ids,
        Thread::of(&open.clone(), "example.com"),
        "a resend keeps its id"
    );
    assert!(open_ids.message_id.starts_with("<isdown."));
    assert!(open_ids.message_id.ends_with("@example.com>"));
    assert_eq!(open_ids.parent, None);

    let resolve_ids = Thread::of(&resolve, "example.com");
    assert_eq!(resolve_ids.parent.as_ref(), Some(&open_ids.message_id));
    assert_ne!(resolve_ids.message_id, open_ids.message_id);

    let first = AlertMessage {
        event: AlertEvent::Reminder,
        summary: "Still down after 1 h.".into(),
        ..open.clone()
    };
    let second = AlertMessage {
        summary: "Still down after 2 h.".into(),
        ..first.clone()
    };
    let (a, b) = (
        Thread::of(&first, "example.com"),
        Thread::of(&second, "example.com"),
    );
    assert_ne!(a.message_id, b.message_id, "two reminders are two messages");
    assert_eq!(a.parent.as_ref(), Some(&open_ids.message_id));

    let test = AlertMessage {
        event: AlertEvent::Test,
        ..open.clone()
    };
    assert_eq!(Thread::of(&test, "example.com").parent, None);

    let other = AlertMessage {
        dedup_key: "outage:deepseek:1777644180000".into(),
        ..open
    };
    assert_ne!(
        Thread::of(&other, "example.com").message_id,
        open_ids.message_id
    );
}

#[test]
fn message_id_domain_falls_back_for_unusual_domains() {
    let plain: Address = "alerts@example.com".parse().unwrap();
    assert_eq!(message_id_domain(&plain), "example.com");
    let idn: Address = "alerts@bücher.example".parse().unwrap();
    assert_eq!(message_id_domain(&idn), "isdown.invalid");
}

#[test]
fn only_web_urls_become_links() {
    let mut message = kimi_outage();
    message.url = Some("javascript:alert(1)".into());
    let html = html_body(&message).unwrap();
    assert!(!html.contains("href=\"javascript"), "{html}");
    assert!(html.contains("Status page: javascript:alert(1)"), "{html}");
    message.url = Some("https://status.example.com/?a=1&b=<2>".into());
    let html = html_body(&message).unwrap();
    assert!(
        html.contains("<a href=\"https://status.example.com/?a=1&#38;b=&#60;2&#62;\">"),
        "{html}"
    );
}

#[test]
fn severity_header_follows_the_message() {
    let open = kimi_outage();
    assert_eq!(open.severity(), Severity::Critical);
    assert_eq!(severity_name(open.severity()), "critical");
    assert_eq!(severity_name(resolved(&open).severity()), "info");
}

// === Delivery to a real SMTP server ===

#[tokio::test]
async fn plain_delivery_sends_one_message_to_every_recipient() {
    let mut server = SmtpServer::start(Options::default()).await;
    let channel = local_channel(&server, "none", "");

    channel.send(&kimi_outage()).await.unwrap();

    let mail = server.next_mail().await;
    assert_eq!(mail.mail_from, "alerts@example.com");
    assert_eq!(mail.rcpt_tos, ["oncall@example.com", "ops@example.com"]);
    assert!(!mail.tls);
    assert_eq!(mail.login, None);
    assert_eq!(mail.header("From"), "isdown <alerts@example.com>");
    assert_eq!(
        mail.header("To"),
        "oncall@example.com, Ops Team <ops@example.com>"
    );
    assert_eq!(
        mail.header("Subject"),
        "[isdown] DOWN: Kimi — unavailable since 14:03 UTC"
    );
    assert!(
        mail.header("Content-Type")
            .starts_with("multipart/alternative"),
        "{}",
        mail.data
    );
    assert_eq!(
        mail.header("X-Isdown-Dedup-Key"),
        "outage:kimi:1777644180000"
    );
    assert_eq!(mail.header("X-Isdown-Event"), "opened");
    assert_eq!(mail.header("X-Isdown-Severity"), "critical");
    assert_eq!(mail.header("Auto-Submitted"), "auto-generated");
    let message_id = mail.header("Message-ID");
    assert!(
        message_id.starts_with("<isdown.") && message_id.ends_with("@example.com>"),
        "{message_id}"
    );
    assert_eq!(mail.try_header("In-Reply-To"), None);
    assert!(mail.try_header("Date").is_some());

    let text = mail.text();
    for expected in [
        "Kimi is DOWN (unavailable) since 14:03 UTC",
        "DeepSeek answers normally from here.",
        "- Kimi, model kimi-k2.6 (monitor kimi-chat): unavailable since 2026-05-01 14:03 UTC",
        "Whose side: the provider's",
        "503 from api.moonshot.ai: service unavailable",
        "What to do: Fail over to DeepSeek; check status.moonshot.cn",
        "Started: 2026-05-01 14:03 UTC",
        "Status page: https://status.example.com/",
        "Incident key: outage:kimi:1777644180000",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains("Ended:"), "{text}");

    let html = mail.html();
    for expected in [
        "<h2>Kimi is DOWN (unavailable) since 14:03 UTC</h2>",
        "<strong>unavailable</strong>",
        "the provider&#39;s",
        "503 from api.moonshot.ai: service unavailable",
        "Fail over to DeepSeek; check status.moonshot.cn",
        "<a href=\"https://status.example.com/\">",
        "<code>outage:kimi:1777644180000</code>",
    ] {
        assert!(
            html.contains(expected),
            "{expected:?} missing from:\n{html}"
        );
    }
}

#[tokio::test]
async fn resolve_threads_under_its_open_and_says_how_long() {
    let mut server = SmtpServer::start(Options::default()).await;
    let channel = local_channel(&server, "none", "");
    let open = kimi_outage();

    channel.send(&open).await.unwrap();
    channel.send(&resolved(&open)).await.unwrap();

    let first = server.next_mail().await;
    let second = server.next_mail().await;
    let open_id = first.header("Message-ID");
    assert_eq!(second.header("In-Reply-To"), open_id);
    assert_eq!(second.header("References"), open_id);
    assert_ne!(second.header("Message-ID"), open_id);
    assert_eq!(
        second.header("Subject"),
        "[isdown] RESOLVED: Kimi (unavailable) after 23 min"
    );
    assert_eq!(
        second.header("X-Isdown-Dedup-Key"),
        first.header("X-Isdown-Dedup-Key")
    );
    assert_eq!(second.header("X-Isdown-Event"), "resolved");
    assert_eq!(second.header("X-Isdown-Severity"), "info");
    let text = second.text();
    for expected in [
        "Kimi is back up after 23 min",
        "Was affected:",
        "Ended: 2026-05-01 14:26 UTC, after 23 min",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(
        second
            .html()
            .contains("Ended: 2026-05-01 14:26 UTC, after 23 min")
    );
}

#[tokio::test]
async fn html_part_escapes_markup_from_the_message() {
    let mut server = SmtpServer::start(Options::default()).await;
    let channel = local_channel(&server, "none", "");
    let mut message = kimi_outage();
    message.items[0].explanation = "<script>alert(1)</script> & \"quoted\"".into();
    message.advice = "Check <b>your</b> proxy".into();

    channel.send(&message).await.unwrap();

    let mail = server.next_mail().await;
    let html = mail.html();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>your</b>"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quoted&#34;"),
        "{html}"
    );
    assert!(
        html.contains("Check &#60;b&#62;your&#60;/b&#62; proxy"),
        "{html}"
    );
    // Plain text is not markup: it carries the explanation as it is.
    assert!(
        mail.text()
            .contains("<script>alert(1)</script> & \"quoted\"")
    );
}

#[tokio::test]
async fn starttls_then_login_delivers_encrypted() {
    let mut server = SmtpServer::start(Options {
        tls: Encryption::StartTls,
        auth: Some((USER, PASSWORD)),
        ..Options::default()
    })
    .await;
    let channel = local_channel(&server, "starttls", &credentials());

    channel.send(&kimi_outage()).await.unwrap();

    let mail = server.next_mail().await;
    assert!(mail.tls, "the message crossed an encrypted session");
    assert_eq!(mail.login.as_deref(), Some(USER));
    assert_eq!(mail.rcpt_tos, ["oncall@example.com", "ops@example.com"]);
}

#[tokio::test]
async fn implicit_tls_delivers_encrypted() {
    let mut server = SmtpServer::start(Options {
        tls: Encryption::Implicit,
        auth: Some((USER, PASSWORD)),
        ..Options::default()
    })
    .await;
    let channel = local_channel(&server, "tls", &credentials());

    channel.send(&kimi_outage()).await.unwrap();

    let mail = server.next_mail().await;
    assert!(mail.tls);
    assert_eq!(mail.login.as_deref(), Some(USER));
}

#[tokio::test]
async fn untrusted_certificate_is_retryable_and_sends_nothing() {
    let mut server = SmtpServer::start(Options {
        tls: Encryption::Implicit,
        auth: Some((USER, PASSWORD)),
        ..Options::default()
    })
    .await;
    // The system roots only: the test CA is not among them.
    let channel = build(&format!(
        "host = \"127.0.0.1\"\nport = {}\nsecurity = \"tls\"\nfrom = \"alerts@example.com\"\n\
         to = [\"oncall@example.com\"]\n{}",
        server.port,
        credentials()
    ))
    .unwrap();

    let text = assert_retryable(channel.send(&kimi_outage()).await);
    assert!(text.contains("certificate"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(server.unread_mail().await.is_empty());
}

#[tokio::test]
async fn server_without_starttls_is_refused_before_anything_is_sent() {
    let mut server = SmtpServer::start(Options::default()).await;
    let channel = local_channel(&server, "starttls", &credentials());

    let text = assert_permanent(channel.send(&kimi_outage()).await);
    assert!(text.contains("STARTTLS"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(server.unread_mail().await.is_empty());
}

#[tokio::test]
async fn wrong_password_is_permanent_and_never_echoed() {
    let mut server = SmtpServer::start(Options {
        tls: Encryption::StartTls,
        auth: Some((USER, "the-right-one")),
        ..Options::default()
    })
    .await;
    let channel = local_channel(&server, "starttls", &credentials());

    let text = assert_permanent(channel.send(&kimi_outage()).await);
    assert!(text.contains("535"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(server.unread_mail().await.is_empty());
}

#[tokio::test]
async fn connection_refused_is_retryable_and_never_echoes_the_password() {
    // Bound but not listening: the port stays ours and every connection is refused.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let channel = build(&format!(
        "host = \"127.0.0.1\"\nport = {port}\nfrom = \"alerts@example.com\"\n\
         to = [\"oncall@example.com\"]\n{}",
        credentials()
    ))
    .unwrap();

    let text = assert_retryable(channel.send(&kimi_outage()).await);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.to_lowercase().contains("connection"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

/// A recipient the server refuses (550) fails for good; one it defers (451) is retried. Either
/// way no mail is delivered to anyone, so a retry cannot duplicate it.
#[tokio::test]
async fn refused_recipients_are_permanent_and_deferred_ones_retryable() {
    for (reject, defer, code, retryable) in [
        (vec!["ops@example.com"], vec![], "550", false),
        (vec![], vec!["oncall@example.com"], "451", true),
    ] {
        let mut server = SmtpServer::start(Options {
            reject,
            defer,
            ..Options::default()
        })
        .await;
        let channel = local_channel(&server, "none", "");
        let result = channel.send(&kimi_outage()).await;
        let text = if retryable {
            assert_retryable(result)
        } else {
            assert_permanent(result)
        };
        assert!(text.contains(code), "{text}");
        assert!(server.unread_mail().await.is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn silent_server_times_out_as_retryable() {
    // Accepts the connection and never greets. In-process, so on paused time: the channel's
    // 300 ms timeout ends the wait, not the server's 30 s hold (tokio time, never the
    // machine's speed).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let channel = build(&format!(
        "host = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
         from = \"alerts@example.com\"\nto = [\"oncall@example.com\"]\ntimeout = \"300ms\""
    ))
    .unwrap();

    let started = tokio::time::Instant::now();
    assert_retryable(channel.send(&kimi_outage()).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    hold.abort();
}

//! The Twilio channel against a real receiver on a loopback port: one form-encoded request per
//! recipient with Basic auth, the SMS text, validation at construction, the status mapping, no
//! second SMS to a recipient when the outbox retries a partly failed message, and the auth token
//! kept out of every error and `Debug` output.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{Method, header};
use serde_json::json;

use super::*;
use crate::alert::channel::support::{
    Received, client, closed_base, message, paging_resolved as resolved, receiver,
};
use crate::incident::IncidentKind;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Letters only: `secret::redact` would not catch it, so the tests prove the exact scrub.
const TOKEN: &str = "twilioauthtokensecretvalue";
/// `printf 'AC0123456789abcdef0123456789abcdef:twilioauthtokensecretvalue' | base64`
const BASIC: &str =
    "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0d2lsaW9hdXRodG9rZW5zZWNyZXR2YWx1ZQ==";
const FROM: &str = "+15557654321";

fn created(request: &Received) -> (u16, String) {
    let to = form(request)
        .into_iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v);
    (
        201,
        json!({"sid": "SM0123456789abcdef0123456789abcdef", "to": to, "status": "queued"})
            .to_string(),
    )
}

/// The body as Twilio would read it, decoded by the `url` crate's form parser (not ours).
fn form(request: &Received) -> Vec<(String, String)> {
    let body = std::str::from_utf8(&request.body).unwrap();
    let url = reqwest::Url::parse(&format!("http://decode/?{body}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn to_of(request: &Received) -> String {
    form(request)
        .into_iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v)
        .unwrap()
}

fn env(var: &str) -> Option<String> {
    match var {
        "TWILIO_AUTH_TOKEN" => Some(TOKEN.to_owned()),
        "TWILIO_ACCOUNT_SID" => Some(SID.to_owned()),
        _ => None,
    }
}

fn config(api_url: Option<&str>, to: &[&str]) -> Config {
    Config {
        account_sid: Some(SID.to_owned()),
        account_sid_env: None,
        auth_token_env: "TWILIO_AUTH_TOKEN".to_owned(),
        from: Some(FROM.to_owned()),
        messaging_service_sid: None,
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        api_url: api_url.map(str::to_owned),
    }
}

fn channel(base: &str, to: &[&str]) -> TwilioChannel {
    TwilioChannel::new(config(Some(base), to).resolve(&env).unwrap(), client())
}

const EXPECTED_TEXT: &str = "isdown: Kimi is DOWN (unavailable) since 14:03 UTC. Blame: \
                             provider. Fail over to DeepSeek. https://status.example.com/";

// === requests ===

#[tokio::test]
async fn each_recipient_gets_one_form_encoded_request_with_basic_auth() {
    let rx = receiver(created).await;
    let channel = channel(&rx.base, &["+15551234567", "+447700900123"]);
    channel
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await
        .unwrap();
    let got = rx.finish().await;

    assert_eq!(got.len(), 2);
    for (request, to) in got.iter().zip(["+15551234567", "+447700900123"]) {
        assert_eq!(request.method, Method::POST);
        assert_eq!(
            request.uri.path(),
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert_eq!(request.headers[header::AUTHORIZATION], BASIC);
        assert_eq!(
            request.headers[header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        let expected = [("To", to), ("From", FROM), ("Body", EXPECTED_TEXT)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(form(request), expected);
    }
}

#[tokio::test]
async fn a_messaging_service_can_stand_in_for_the_sender() {
    let rx = receiver(created).await;
    let config = Config {
        from: None,
        messaging_service_sid: Some("MG0123456789abcdef0123456789abcdef".to_owned()),
        account_sid: None,
        account_sid_env: Some("TWILIO_ACCOUNT_SID".to_owned()),
        ..config(Some(&rx.base), &["+15551234567"])
    };
    let channel = TwilioChannel::new(config.resolve(&env).unwrap(), client());
    channel.send(&resolved()).await.unwrap();
    let got = rx.finish().await;
    let fields = form(&got[0]);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["To", "MessagingServiceSid", "Body"]);
    assert_eq!(fields[1].1, "MG0123456789abcdef0123456789abcdef");
    assert_eq!(got[0].headers[header::AUTHORIZATION], BASIC);
}

// === text ===

#[test]
fn the_text_says_what_since_when_whose_side_what_to_do_and_links() {
    let opened = message(AlertEvent::Opened, IncidentKind::Outage);
    assert_eq!(sms_text(&opened), EXPECTED_TEXT);
    assert_eq!(
        sms_text(&resolved()),
        "isdown: Kimi is back up. https://status.example.com/"
    );
    let reminder = message(AlertEvent::Reminder, IncidentKind::Outage);
    assert!(sms_text(&reminder).starts_with("isdown reminder: Kimi is DOWN"));
    let no_link = AlertMessage {
        url: None,
        ..opened
    };
    assert_eq!(
        sms_text(&no_link),
        "isdown: Kimi is DOWN (unavailable) since 14:03 UTC. Blame: provider. Fail over to \
         DeepSeek."
    );
}

#[test]
fn a_long_text_is_cut_before_the_link_and_stays_gsm_friendly() {
    let msg = AlertMessage {
        advice: format!("Fail over to DeepSeek — {}", "then check again ".repeat(40)),
        ..message(AlertEvent::Opened, IncidentKind::Outage)
    };
    let text = sms_text(&msg);
    assert!(text.chars().count() <= 320, "{}", text.chars().count());
    assert!(text.ends_with("... https://status.example.com/"), "{text}");
    assert!(text.contains("DeepSeek - then"), "{text}");
    assert!(text.is_ascii(), "{text}");
}

// === form encoding ===

#[test]
fn form_encoding_matches_the_url_standard_serializer() {
    let values = [
        "",
        "plain",
        "+15551234567",
        "a b&c=d%e+f",
        "isdown: Kimi DOWN (unavailable) since 14:03 UTC. https://x.example/?a=1&b=2#f",
        "*-._~!$'(),;/:@[]",
        "naïve — 中文 🚨",
        "line\nbreak\r\ttab",
    ];
    for value in values {
        let mut oracle = reqwest::Url::parse("http://oracle/").unwrap();
        oracle.query_pairs_mut().append_pair("Body", value);
        assert_eq!(
            form_urlencoded(&[("Body", value)]),
            oracle.query().unwrap(),
            "{value:?}"
        );
    }
    assert_eq!(
        form_urlencoded(&[("To", "+1 555"), ("Body", "a&b")]),
        "To=%2B1+555&Body=a%26b"
    );
}

// === partial failures ===

#[tokio::test]
async fn a_retry_after_a_partial_failure_texts_only_those_not_reached() {
    let attempts_b = Arc::new(AtomicUsize::new(0));
    let counter = attempts_b.clone();
    let rx = receiver(move |request| {
        if to_of(request) == "+15550000002" && counter.fetch_add(1, Ordering::SeqCst) == 0 {
            return (
                429,
                json!({"code": 20429, "message": "Too Many Requests"}).to_string(),
            );
        }
        created(request)
    })
    .await;
    let to = ["+15550000001", "+15550000002", "+15550000003"];
    let channel = channel(&rx.base, &to);
    let msg = message(AlertEvent::Opened, IncidentKind::Outage);

    let err = channel.send(&msg).await.unwrap_err();
    let DeliveryError::Retryable(text) = &err else {
        panic!("expected retryable: {err:?}");
    };
    assert!(
        text.starts_with("1 of 3 recipients failed: +15550000002: HTTP 429"),
        "{text}"
    );

    channel.send(&msg).await.unwrap(); // the outbox's retry
    channel.send(&msg).await.unwrap(); // a later, identical message: everyone again
    let got: Vec<String> = rx.finish().await.iter().map(to_of).collect();
    assert_eq!(
        got,
        [
            "+15550000001",
            "+15550000002",
            "+15550000003",
            "+15550000002",
            "+15550000001",
            "+15550000002",
            "+15550000003",
        ]
    );
}

#[tokio::test]
async fn a_retryable_failure_outranks_a_permanent_one() {
    let rx = receiver(|request| match to_of(request).as_str() {
        "+15550000001" => (
            400,
            json!({"code": 21211, "message": "The 'To' number is not a valid phone number.",
                   "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})
            .to_string(),
        ),
        "+15550000002" => (503, "{}".to_owned()),
        _ => created(request),
    })
    .await;
    let channel = channel(&rx.base, &["+15550000001", "+15550000002", "+15550000003"]);
    let err = channel
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await
        .unwrap_err();
    rx.finish().await;
    let DeliveryError::Retryable(text) = &err else {
        panic!("expected retryable: {err:?}");
    };
    assert!(text.starts_with("2 of 3 recipients failed"), "{text}");
    assert!(text.contains("+15550000001: HTTP 400"), "{text}");
    assert!(text.contains("21211"), "{text}");
    assert!(text.contains("+15550000002: HTTP 503"), "{text}");
}

#[tokio::test]
async fn only_permanent_failures_are_permanent_and_leave_nothing_remembered() {
    let rx = receiver(|request| match to_of(request).as_str() {
        "+15550000001" => (400, json!({"code": 21211}).to_string()),
        _ => created(request),
    })
    .await;
    let channel = channel(&rx.base, &["+15550000001", "+15550000002"]);
    let msg = message(AlertEvent::Opened, IncidentKind::Outage);
    for _ in 0..2 {
        let err = channel.send(&msg).await.unwrap_err();
        assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    }
    assert_eq!(
        rx.finish().await.len(),
        4,
        "both attempts reach both recipients"
    );
}

#[test]
fn partial_deliveries_expire_and_stay_bounded() {
    let start = Instant::now();
    let mut partials = Partials::default();
    partials.remember(1, vec!["+15550000001".to_owned()], start);
    assert_eq!(partials.take(1, start + PARTIAL_TTL), Vec::<String>::new());

    partials.remember(1, vec!["+15550000001".to_owned()], start);
    assert_eq!(partials.take(2, start), Vec::<String>::new());
    assert_eq!(partials.take(1, start), ["+15550000001"]);
    assert_eq!(partials.take(1, start), Vec::<String>::new(), "taken once");

    for fingerprint in 0..(MAX_PARTIALS as u64 + 5) {
        partials.remember(fingerprint, vec!["+15550000001".to_owned()], start);
    }
    assert_eq!(partials.entries.len(), MAX_PARTIALS);
    assert!(partials.take(0, start).is_empty(), "the oldest went first");
}

// === failures ===

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable_bad_numbers_permanent() {
    for (status, retryable) in [(500, true), (429, true), (400, false), (401, false)] {
        let rx =
            receiver(move |_| (status, json!({"code": 21211, "status": status}).to_string())).await;
        let err = channel(&rx.base, &["+15551234567"])
            .send(&message(AlertEvent::Opened, IncidentKind::Outage))
            .await
            .unwrap_err();
        rx.finish().await;
        assert_eq!(
            matches!(err, DeliveryError::Retryable(_)),
            retryable,
            "{status}: {err:?}"
        );
    }
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let err = channel(&closed_base().await, &["+15551234567"])
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Retryable(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_quoted_auth_token_is_scrubbed_from_errors() {
    let rx = receiver(|_| {
        (
            401,
            json!({"code": 20003, "message": format!("Authenticate: bad token {TOKEN}")})
                .to_string(),
        )
    })
    .await;
    let err = channel(&rx.base, &["+15551234567"])
        .send(&message(AlertEvent::Opened, IncidentKind::Outage))
        .await
        .unwrap_err();
    rx.finish().await;
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

#[test]
fn debug_output_never_shows_the_auth_token() {
    let debug = format!("{:?}", channel("http://127.0.0.1:9", &["+15551234567"]));
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(
        debug.contains("+15551234567") && debug.contains("REDACTED"),
        "{debug}"
    );
}

// === config ===

#[test]
fn config_reads_the_documented_table() {
    let config: Config = toml::from_str(
        "account_sid_env = \"TWILIO_ACCOUNT_SID\"\nauth_token_env = \"TWILIO_AUTH_TOKEN\"\n\
         from = \"+15557654321\"\nto = [\"+15551234567\"]\n",
    )
    .unwrap();
    let channel = TwilioChannel::new(config.resolve(&env).unwrap(), client());
    assert_eq!(
        channel.spec.messages_url.as_str(),
        "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/\
         Messages.json"
    );
}

#[test]
fn config_rejects_unknown_fields() {
    let err = toml::from_str::<Config>(
        "account_sid = \"AC\"\nauth_token_env = \"T\"\nauth_token = \"x\"\nto = []\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("auth_token"), "{err}");
}

#[test]
fn bad_numbers_are_rejected_at_construction() {
    let bad = [
        "15551234567",
        "+1 555 123 4567",
        "+1-555-123-4567",
        "+05551234567",
        "+1555",
        "+1234567890123456",
        "+1555123456a",
        "",
    ];
    for number in bad {
        let err = config(None, &[number]).resolve(&env).unwrap_err();
        assert_eq!(err.field, "to", "{number:?}");
        assert!(err.message.contains("E.164"), "{number:?}: {err}");

        let config = Config {
            from: Some(number.to_owned()),
            ..config(None, &["+15551234567"])
        };
        let err = config.resolve(&env).unwrap_err();
        assert_eq!(err.field, "from", "{number:?}");
    }
    for good in [
        "+15551234567",
        "+447700900123",
        "+8613800138000",
        "+6834002",
    ] {
        TwilioChannel::new(config(None, &[good]).resolve(&env).unwrap(), client());
    }
}

#[test]
fn invalid_settings_name_their_field() {
    let base = || config(None, &["+15551234567"]);
    let cases = [
        (config(None, &[]), "to"),
        (config(None, &["+15551234567", "+15551234567"]), "to"),
        (
            Config {
                from: None,
                ..base()
            },
            "from",
        ),
        (
            Config {
                messaging_service_sid: Some("MG123".to_owned()),
                ..base()
            },
            "messaging_service_sid",
        ),
        (
            Config {
                account_sid: Some("SK0123456789abcdef0123456789abcdef".to_owned()),
                ..base()
            },
            "account_sid",
        ),
        (
            Config {
                account_sid_env: Some("TWILIO_ACCOUNT_SID".to_owned()),
                ..base()
            },
            "account_sid",
        ),
        (
            Config {
                account_sid: None,
                account_sid_env: Some("UNSET".to_owned()),
                ..base()
            },
            "account_sid_env",
        ),
        (
            Config {
                auth_token_env: "UNSET".to_owned(),
                ..base()
            },
            "auth_token_env",
        ),
        (
            Config {
                api_url: Some("api.twilio.com".to_owned()),
                ..base()
            },
            "api_url",
        ),
    ];
    for (config, field) in cases {
        let err = config.resolve(&env).unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(!err.to_string().contains(TOKEN));
    }
}

#[test]
fn a_missing_auth_token_names_the_variable() {
    let err = config(None, &["+15551234567"])
        .resolve(&|_| None)
        .unwrap_err();
    assert_eq!(err.field, "auth_token_env");
    assert!(err.message.contains("TWILIO_AUTH_TOKEN"), "{err}");
}

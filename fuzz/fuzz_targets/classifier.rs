//! The classifier (`isdown::verdict`) on arbitrary answers: `classify_http` on the status,
//! headers and body, and `classify_stream` on the same body read as SSE items, for every
//! `Expect` and every way a stream can end.
//!
//! Input: an HTTP answer as text, the way it reads on the wire:
//!
//! ```text
//! 429
//! retry-after: 2
//! content-type: application/json
//!
//! {"error":{"message":"..."}}
//! ```
//!
//! The first line is the status (any `u16`; another first line makes the input uninteresting),
//! then `name: value` header lines (invalid names or values are skipped), an empty line, and the
//! body. Checks: no panic, and every diagnosis is well formed, as the classifier's own tests
//! require of any verdict: blame as the verdict's, a one-line explanation under 700 characters
//! with no HTML and no configured secret, non-empty advice, a finite non-negative wait.
#![no_main]

use std::sync::Once;

use http::{HeaderMap, HeaderName, HeaderValue};
use isdown::sse::parse_all;
use isdown::verdict::{
    Cause, Diagnosis, Expect, HttpAnswer, StreamEnd, StreamSummary, TransportFailure,
    chunk_has_content, classify_http, classify_stream, retry_after_from_headers,
};
use libfuzzer_sys::fuzz_target;

/// A configured secret of an unusual shape (no `sk-`, no pattern would catch it): only the
/// exact-value scrub keeps it out of explanations. Seeds quote it in error messages.
const SECRET: &str = "fuzzSecretKEYvalue";

const EXPECTS: [Expect; 4] = [
    Expect::Reachable { key_sent: true },
    Expect::Reachable { key_sent: false },
    Expect::Chat,
    Expect::ToolCall,
];

/// Markers of an HTML page: none may reach an explanation.
const HTML_MARKERS: [&str; 5] = ["<html", "<!doctype", "<body", "<head", "<title"];

fn split_answer(input: &[u8]) -> Option<(u16, HeaderMap, &[u8])> {
    let (head, body) = match input.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (input, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let status = std::str::from_utf8(lines.next()?)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    Some((status, headers, body))
}

fn check(diagnosis: &Diagnosis, context: &str) {
    if diagnosis.cause != Some(Cause::LocalResources) {
        assert_eq!(
            diagnosis.blame,
            diagnosis.verdict.default_blame(),
            "{context}: blame"
        );
    }
    let explanation = &diagnosis.explanation;
    assert!(!explanation.is_empty(), "{context}: empty explanation");
    assert!(!diagnosis.advice.is_empty(), "{context}: empty advice");
    assert!(
        explanation.chars().count() < 700,
        "{context}: long explanation: {explanation}"
    );
    assert!(
        !explanation.contains('\n'),
        "{context}: multi-line explanation: {explanation}"
    );
    let lower = explanation.to_lowercase();
    for marker in HTML_MARKERS {
        assert!(
            !lower.contains(marker),
            "{context}: HTML in explanation: {explanation}"
        );
    }
    for text in [explanation, &diagnosis.advice] {
        assert!(
            !text.contains(SECRET),
            "{context}: secret in diagnosis: {text}"
        );
    }
    if let Some(wait) = diagnosis.retry_after_s {
        assert!(
            wait.is_finite() && wait >= 0.0,
            "{context}: bad wait {wait}"
        );
    }
}

fuzz_target!(|input: &[u8]| {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| isdown::secret::register([SECRET]));

    let Some((status, headers, body)) = split_answer(input) else {
        return;
    };
    let _ = retry_after_from_headers(&headers);
    for expect in EXPECTS {
        let answer = HttpAnswer {
            status,
            headers: &headers,
            body,
            truncated: false,
        };
        check(&classify_http(&answer, expect), "http");
    }
    let cut = HttpAnswer {
        status,
        headers: &headers,
        body,
        truncated: true,
    };
    check(&classify_http(&cut, Expect::Chat), "http truncated");

    let Ok(items) = parse_all(body) else {
        return;
    };
    for item in &items {
        let _ = chunk_has_content(item);
    }
    let stream = |expect, end: &StreamEnd| {
        let summary = StreamSummary {
            status,
            headers: &headers,
            items: &items,
            end,
        };
        classify_stream(&summary, expect)
    };
    for expect in EXPECTS {
        check(&stream(expect, &StreamEnd::Eof), "stream");
    }
    let ends = [
        StreamEnd::FirstTokenTimeout,
        StreamEnd::IdleTimeout,
        StreamEnd::Transport(TransportFailure::Reset("connection reset by peer".into())),
    ];
    for end in &ends {
        check(&stream(Expect::Chat, end), "stream end");
    }
});

//! `retry_after_s`: how long the provider asked us to wait, read only from what it said.
//!
//! Sources, in the order of reference §2 "retry_after_s": `retry-after-ms`, then `Retry-After`
//! (delta-seconds or an HTTP-date), then — only when the matching `remaining` header is 0 — the
//! OpenAI `x-ratelimit-reset-*` durations or the Anthropic `anthropic-ratelimit-*-reset`
//! instants, and finally the wait written in an error message. It never invents a wait: a
//! reset time in the past, a `remaining` above zero or an unparseable value give `None`. Pure
//! apart from reading the clock for HTTP-dates and RFC 3339 instants (tests pass `now`).

use std::time::SystemTime;

use reqwest::header::HeaderMap;

/// OpenAI pairs: the reset applies only when its `remaining` header says 0 (trap 18: these
/// headers accompany healthy answers too).
const OPENAI_RESETS: [(&str, &str); 2] = [
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
];

/// Anthropic pairs, same rule; resets are RFC 3339 instants.
const ANTHROPIC_RESETS: [(&str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// Go `time.Duration` units as OpenAI prints them (`12ms`, `6m0s`, `1h2m3.5s`).
const GO_UNITS: [(&str, f64); 8] = [
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("μs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// Phrases after which providers write the wait: Moonshot "please try again after N seconds",
/// OpenAI "Please try again in 1.5s" / "in 20ms".
const WAIT_PHRASES: [&str; 4] = [
    "try again after ",
    "try again in ",
    "retry after ",
    "retry in ",
];

/// Unit words that may follow a number in a message ("after 3 seconds").
const WORD_UNITS: [(&str, f64); 9] = [
    ("milliseconds", 1e-3),
    ("millisecond", 1e-3),
    ("ms", 1e-3),
    ("seconds", 1.0),
    ("second", 1.0),
    ("secs", 1.0),
    ("sec", 1.0),
    ("minutes", 60.0),
    ("minute", 60.0),
];

/// Seconds to wait, from `retry-after-ms`, `Retry-After`, or exhausted rate-limit headers.
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<f64> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after_from_headers`] with the clock passed in.
pub(super) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<f64> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(non_negative) {
        return Some(ms / 1000.0);
    }
    if let Some(value) = header(headers, "retry-after") {
        if let Some(seconds) = non_negative(value) {
            return Some(seconds);
        }
        // A date in the past is not a wait; fall through to the rate-limit headers.
        if let Some(seconds) = httpdate::parse_http_date(value)
            .ok()
            .and_then(|at| seconds_until(at, now))
        {
            return Some(seconds);
        }
    }
    let openai = OPENAI_RESETS
        .iter()
        .filter(|(remaining, _)| is_exhausted(headers, remaining))
        .filter_map(|(_, reset)| header(headers, reset).and_then(parse_go_duration));
    let anthropic = ANTHROPIC_RESETS
        .iter()
        .filter(|(remaining, _)| is_exhausted(headers, remaining))
        .filter_map(|(_, reset)| {
            let at = humantime::parse_rfc3339_weak(header(headers, reset)?).ok()?;
            seconds_until(at, now)
        });
    // Several exhausted limits: the request can go only when all have reset.
    openai
        .chain(anthropic)
        .filter(|s| *s > 0.0)
        .reduce(f64::max)
}

/// The wait written in an error message, if any ("please try again after 3 seconds",
/// "Please try again in 1.5s", "in 20ms").
pub fn retry_after_from_message(message: &str) -> Option<f64> {
    let lower = message.to_lowercase();
    WAIT_PHRASES.iter().find_map(|phrase| {
        lower
            .match_indices(phrase)
            .find_map(|(at, _)| wait_at(&lower[at + phrase.len()..]))
    })
}

/// Parses the wait at the start of `text`: a Go duration (`1.5s`, `20ms`, `1m30s`) or a number
/// and a unit word (`3 seconds`).
fn wait_at(text: &str) -> Option<f64> {
    let token_len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == 'µ' || c == 'μ'))
        .unwrap_or(text.len());
    let token = text[..token_len].trim_end_matches('.');
    if let Some(seconds) = parse_go_duration(token) {
        return Some(seconds);
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..number_len].trim_end_matches('.').parse().ok()?;
    let unit_text = text[number_len..].trim_start();
    let (_, scale) = WORD_UNITS.iter().find(|(word, _)| {
        unit_text.starts_with(word)
            && !unit_text[word.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
    })?;
    finite_non_negative(number * scale)
}

/// A Go-style duration (`12ms`, `6s`, `6m0s`, `1h2m3.5s`, `0`) in seconds.
pub(super) fn parse_go_duration(text: &str) -> Option<f64> {
    let text = text.trim();
    if text == "0" {
        return Some(0.0);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (_, scale) = GO_UNITS
            .iter()
            .find(|(unit, _)| *unit == &rest[..unit_len])?;
        total += number * scale;
        rest = &rest[unit_len..];
    }
    finite_non_negative(total)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// True when the `remaining` header is present and says 0.
fn is_exhausted(headers: &HeaderMap, remaining: &str) -> bool {
    header(headers, remaining)
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(|v| v <= 0.0)
}

fn non_negative(text: &str) -> Option<f64> {
    // Only plain decimal numbers: f64's parser would also take "inf" and "NaN".
    if !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    finite_non_negative(text.parse().ok()?)
}

fn finite_non_negative(seconds: f64) -> Option<f64> {
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

fn seconds_until(at: SystemTime, now: SystemTime) -> Option<f64> {
    let seconds = at.duration_since(now).ok()?.as_secs_f64();
    (seconds > 0.0).then_some(seconds)
}

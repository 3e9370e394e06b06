//! The client's request as the gateway reads it, before any target is chosen: the
//! `x-isdown-timeout` budget from the headers, and the chat body (a JSON object with a string
//! `model`, and `stream`).
//!
//! Pure, no I/O: the handler reads the body (size-limited) and calls these; the fuzz target
//! `gateway_request` (fuzz/) calls the same functions, so what is fuzzed is what serves.
//! Authentication, routing and provider fixes are not here (`auth`, `route`, `fixes`).

use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::HEADER_TIMEOUT;
use super::error::ApiError;

/// A chat request, parsed once.
#[derive(Debug)]
pub struct ChatRequest {
    /// The body without `model` (each target gets its own model name).
    pub body: Map<String, Value>,
    pub model: String,
    pub stream: bool,
}

/// The request's overall budget: `total`, or less when the client asks with `x-isdown-timeout`
/// (seconds, e.g. `20` or `1.5`, or a duration, e.g. `20s` or `1500ms`).
pub fn budget(headers: &HeaderMap, total: Duration) -> Result<Duration, ApiError> {
    let Some(value) = headers.get(HEADER_TIMEOUT) else {
        return Ok(total);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_timeout_header(HEADER_TIMEOUT))?
        .trim();
    let asked = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs.min(1e9)),
        Ok(_) => Duration::ZERO,
        Err(_) => humantime::parse_duration(text).unwrap_or(Duration::ZERO),
    };
    // Zero, and a positive number too small to be a duration (`1e-12` rounds to 0 ns), would
    // be a deadline already passed: refused like `0`, not answered with a timeout.
    if asked.is_zero() {
        return Err(ApiError::bad_timeout_header(HEADER_TIMEOUT));
    }
    Ok(asked.min(total))
}

/// The body of `POST /v1/chat/completions`.
pub fn parse_chat(bytes: &[u8]) -> Result<ChatRequest, ApiError> {
    let mut body: Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_json(&e.to_string()))?;
    let Some(Value::String(model)) = body.remove("model") else {
        return Err(ApiError::missing_model());
    };
    let stream = body.get("stream") == Some(&Value::Bool(true));
    Ok(ChatRequest {
        body,
        model,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TOTAL: Duration = Duration::from_secs(300);

    fn asked(value: &str) -> Result<Duration, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_TIMEOUT, HeaderValue::from_str(value).unwrap());
        budget(&headers, TOTAL)
    }

    #[test]
    fn timeout_header_takes_seconds_or_durations_and_never_exceeds_total() {
        assert_eq!(budget(&HeaderMap::new(), TOTAL).unwrap(), TOTAL);
        assert_eq!(asked("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(asked(" 1500ms ").unwrap(), Duration::from_millis(1500));
        assert_eq!(asked("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(asked("1e300").unwrap(), TOTAL);
        assert_eq!(asked("500000000000y").unwrap(), TOTAL);
        for bad in [
            "0",
            "0s",
            "-1",
            "NaN",
            "inf",
            "soon",
            "",
            "99999999999999999999y",
        ] {
            assert_eq!(asked(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn timeout_too_small_to_be_a_duration_is_refused_like_zero() {
        // `1e-12` seconds rounds to a zero duration: it was accepted, and the request then
        // failed at once with "deadline passed after 0 attempts" instead of a 400.
        for bad in ["1e-12", "0.0000000001", "0ns"] {
            assert_eq!(asked(bad).unwrap_err().status, 400, "{bad:?}");
        }
        assert_eq!(asked("0.000000001").unwrap(), Duration::from_nanos(1));
    }

    #[test]
    fn chat_body_needs_an_object_with_a_string_model() {
        let request = parse_chat(br#"{"model":"fast","stream":true,"messages":[]}"#).unwrap();
        assert_eq!(request.model, "fast");
        assert!(request.stream);
        assert!(!request.body.contains_key("model"));
        assert!(
            !parse_chat(br#"{"model":"fast","stream":"yes"}"#)
                .unwrap()
                .stream
        );
        for bad in [&b"[]"[..], b"{\"model\":7}", b"{}", b"{\"model\":", b"\xff"] {
            assert_eq!(parse_chat(bad).unwrap_err().status, 400);
        }
    }
}

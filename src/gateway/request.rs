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
        Ok(_) => return Err(ApiError::bad_timeout_header(HEADER_TIMEOUT)),
        Err(_) => humantime::parse_duration(text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| ApiError::bad_timeout_header(HEADER_TIMEOUT))?,
    };
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

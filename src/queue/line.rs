//! One request line sent through the gateway's own router, in process: the same routes, fixes,
//! failover, breakers and decisions as a live request, with no second copy of them and no HTTP
//! hop. The request carries the gateway's in-process marker (`gateway::auth::InProcess`) in
//! place of a client key.
//!
//! What the answer means for the line is a table by status ([`ANSWERS`]); the answering provider
//! and model come from the gateway's `x-isdown-*` headers. Batch lines are answered whole:
//! `stream` and `stream_options` are taken out of the body.

use axum::Router;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::pacing::Answer;
use crate::gateway::auth::InProcess;
use crate::gateway::{HEADER_ATTEMPTS, HEADER_MODEL, HEADER_PROVIDER};
use crate::store::queue::LineResponse;

/// The only endpoint batches run.
pub const ENDPOINT: &str = "/v1/chat/completions";

/// Answers read whole at most: far above any chat completion, and a bound on what one line
/// holds in memory.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// What the gateway's answer status means for the line, first matching row wins: an answer
/// ends it in the output file, the request's own fault (`bad_request`, `content_filtered`,
/// `context_too_long` with no fitting target, no route) ends it in the error file once, and a
/// rate limit or no answer (every target failed) sends it back to wait.
pub const ANSWERS: [(u16, u16, Answer); 4] = [
    (200, 299, Answer::Served),
    (429, 429, Answer::RateLimited),
    (400, 499, Answer::Refused),
    (500, 599, Answer::Unavailable),
];

/// How an answer status counts; statuses outside the table (none expected) wait like a 5xx.
pub fn answer_for(status: u16) -> Answer {
    ANSWERS
        .iter()
        .find(|(low, high, _)| (*low..=*high).contains(&status))
        .map_or(Answer::Unavailable, |(_, _, answer)| *answer)
}

/// Sends one request line (as uploaded, already validated) and returns the gateway's answer.
pub async fn send(router: Router, request_line: &[u8]) -> LineResponse {
    let request_id = super::object::new_id("req_");
    let body = match request_body(request_line) {
        Ok(body) => body,
        // Validated at batch creation, so only a changed file could get here.
        Err(message) => {
            return own_answer(
                request_id,
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &message,
            );
        }
    };
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(ENDPOINT)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Body::from(body))
        .expect("a constant method, URI and header make a valid request");
    request.extensions_mut().insert(InProcess::new());
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let header = |name: &str| header_text(&parts.headers, name);
    let body = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => {
            return own_answer(
                request_id,
                StatusCode::BAD_GATEWAY,
                "server_error",
                &format!("the answer was larger than {MAX_ANSWER_BYTES} bytes or broke off"),
            );
        }
    };
    LineResponse {
        status_code: status,
        request_id,
        provider: header(HEADER_PROVIDER),
        model: header(HEADER_MODEL),
        attempts: header(HEADER_ATTEMPTS).and_then(|a| a.parse().ok()),
        body,
    }
}

/// The `body` of a request line, for the gateway: whole answers only.
fn request_body(line: &[u8]) -> Result<Vec<u8>, String> {
    let mut request: Value =
        serde_json::from_slice(line).map_err(|e| format!("the request line is not JSON: {e}"))?;
    let Some(Value::Object(body)) = request.get_mut("body").map(Value::take) else {
        return Err("the request line has no body object".into());
    };
    let mut body = body;
    body.remove("stream");
    body.remove("stream_options");
    serde_json::to_vec(&body).map_err(|e| e.to_string())
}

/// An answer isdown gives itself (no provider was asked), in the OpenAI error shape.
fn own_answer(request_id: String, status: StatusCode, kind: &str, message: &str) -> LineResponse {
    let body = json!({"error": {
        "message": message,
        "type": kind,
        "param": null,
        "code": null,
    }});
    LineResponse {
        status_code: status.as_u16(),
        request_id,
        provider: None,
        model: None,
        attempts: None,
        body: body.to_string().into_bytes(),
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_table() {
        let rows = [
            (200, Answer::Served),
            (201, Answer::Served),
            (400, Answer::Refused),
            (404, Answer::Refused),
            (413, Answer::Refused),
            (429, Answer::RateLimited),
            (500, Answer::Unavailable),
            (502, Answer::Unavailable),
            (503, Answer::Unavailable),
            (504, Answer::Unavailable),
            (302, Answer::Unavailable),
        ];
        for (status, answer) in rows {
            assert_eq!(answer_for(status), answer, "{status}");
        }
    }

    #[test]
    fn the_body_goes_to_the_gateway_without_streaming() {
        let line = br#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}}"#;
        let body: Value = serde_json::from_slice(&request_body(line).unwrap()).unwrap();
        assert_eq!(body, json!({"model": "m", "messages": []}));
        assert!(request_body(b"{\"body\": 3}").is_err());
    }
}

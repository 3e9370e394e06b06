//! The classifier: observed answer in, [`Diagnosis`] out. Pure, no I/O, never panics.
//!
//! It owns the order of evidence of reference §2: the body's kind (JSON, SSE-framed, HTML,
//! empty, garbage), the error object inside it whatever the envelope (OpenAI-style `error`,
//! Anthropic `{"type":"error"}`, Zhipu numeric-string codes, DashScope's top-level `code`,
//! OpenRouter's `error.metadata.raw` upstream body), then the table in `rules.toml` (codes and
//! types, then message patterns, then the status fallback), and for 2xx answers whether the
//! reply is what the probe expected. Streams are judged item by item (§10). Inputs come from
//! probes and the gateway, which read at most [`BODY_LIMIT`] bytes; outputs carry only short,
//! sanitised provider text — never HTML, whole bodies or keys.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Map, Value};

use super::retry_after::{retry_after_from_headers, retry_after_from_message};
use super::rules::{Case, ErrorFacts, Outcome, Slots, TABLE, render};
use super::{Blame, Cause, Diagnosis, Expect, TimeoutPhase, Verdict};
use crate::sse::{SseItem, looks_like_sse, parse_all};

/// 256 KiB: every real error body and probe answer fits; callers read at most this much.
pub const BODY_LIMIT: usize = 256 * 1024;

/// An HTTP answer as a probe or the gateway saw it.
#[derive(Debug, Clone, Copy)]
pub struct HttpAnswer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    /// At most [`BODY_LIMIT`] bytes of the body.
    pub body: &'a [u8],
    /// The body was longer than what is in `body`.
    pub truncated: bool,
}

/// How a transport failed before any HTTP answer (or while reading one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    Dns(String),
    Connect(String),
    Tls(String),
    /// Connection reset or closed before the status line, or while reading the body.
    Reset(String),
    /// The deadline of `phase` passed.
    Timeout {
        phase: TimeoutPhase,
    },
    /// This machine ran out of file descriptors: isdown's own resources failed, not the
    /// provider and not the network.
    LocalResources(String),
    Other(String),
}

/// How a stream ended, as the reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The connection ended normally (whether or not an end marker was seen).
    Eof,
    /// No content before the first-token deadline (keep-alives do not count).
    FirstTokenTimeout,
    /// Content had started, then silence longer than the idle deadline.
    IdleTimeout,
    /// The transport failed mid-stream.
    Transport(TransportFailure),
}

/// A streamed answer: the status and headers, then every SSE item read, then how it ended.
#[derive(Debug, Clone, Copy)]
pub struct StreamSummary<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub items: &'a [SseItem],
    pub end: &'a StreamEnd,
}

/// ~200 characters of the provider's message: enough to recognise it, short enough for one line.
const MESSAGE_CHARS: usize = 200;

/// How many `metadata.raw` layers to unwrap: a reseller in front of OpenRouter in front of a
/// provider is two; more than three is a loop or an attack, not an error report.
const MAX_WRAP_DEPTH: usize = 3;

/// Longest plain-text error body worth reading as a message; longer text is a page.
const MAX_TEXT_BODY: usize = 4096;

/// Keys of a body-level message when there is no `error` object (DashScope native, FastAPI
/// `detail`, assorted gateways).
const MESSAGE_KEYS: [&str; 4] = ["message", "msg", "error_msg", "detail"];

/// Top-level `code` values that mean success (Moonshot's balance answer says `"code": 0`).
const SUCCESS_CODES: [&str; 4] = ["0", "200", "success", "ok"];

/// Openings of an HTML or XML document anywhere in provider text. Only these: tag-like text that
/// is not a page stays readable (Moonshot's `org-abc<ak-def>`, DashScope's `<400>`).
const PAGE_MARKERS: [&str; 7] = [
    "<!doctype",
    "<html",
    "<head",
    "<body",
    "<title",
    "<script",
    "<?xml",
];

/// Anthropic stream deltas that are generated output.
const CONTENT_DELTAS: [&str; 3] = ["text_delta", "input_json_delta", "thinking_delta"];

// === public entry points ===

pub fn classify_http(answer: &HttpAnswer<'_>, expect: Expect) -> Diagnosis {
    let status = answer.status;
    let body = Body::read(answer);
    // Without a key, a well-formed 401/403 is exactly what a live API answers.
    if matches!(expect, Expect::Reachable { key_sent: false })
        && matches!(status, 401 | 403)
        && matches!(body, Body::Json(_))
    {
        return conclude(Finding::case(Case::UpReachableNoKey), Some(status), None);
    }
    if is_success(status) {
        success_answer(answer, body, expect)
    } else {
        failure_answer(status, answer.headers, &body, expect)
    }
}

pub fn classify_stream(summary: &StreamSummary<'_>, expect: Expect) -> Diagnosis {
    if is_success(summary.status) {
        evaluate_stream(summary, expect)
    } else {
        // An error status: the items are the error body (DashScope frames it as SSE).
        let error = summary.items.iter().find_map(|item| match item {
            SseItem::Event { data, .. } => serde_json::from_str::<Value>(data)
                .ok()
                .and_then(|v| ErrorObject::from_body(&v, true)),
            SseItem::Comment(_) => None,
        });
        decide_failure(
            summary.status,
            summary.headers,
            error,
            BodyNote::None,
            expect,
        )
    }
}

pub fn classify_transport(failure: &TransportFailure) -> Diagnosis {
    let (case, detail, cause) = match failure {
        TransportFailure::Dns(detail) => (Case::Dns, detail.as_str(), Cause::Dns),
        TransportFailure::Connect(detail) => (Case::Connect, detail.as_str(), Cause::Connect),
        TransportFailure::Tls(detail) => (Case::Tls, detail.as_str(), Cause::Tls),
        TransportFailure::Reset(detail) => (Case::Reset, detail.as_str(), Cause::Reset),
        TransportFailure::Other(detail) => (Case::TransportOther, detail.as_str(), Cause::Other),
        TransportFailure::LocalResources(detail) => {
            (Case::LocalResources, detail.as_str(), Cause::LocalResources)
        }
        TransportFailure::Timeout { phase } => (
            Case::for_timeout_phase(*phase),
            phase.as_str(),
            Cause::Timeout(*phase),
        ),
    };
    let mut diagnosis = conclude(Finding::detailed(case, sanitize(detail)), None, None);
    diagnosis.cause = Some(cause);
    if cause == Cause::LocalResources {
        // Decided here, not by correlation: it is this machine, whatever other providers do.
        diagnosis.blame = Some(Blame::Network);
    }
    diagnosis
}

/// True when an SSE item carries generated content (text, reasoning or a tool-call delta):
/// this is what stops the first-token clock. Comments, pings and role-only chunks do not.
///
/// Reasoning tokens (`reasoning_content`, `reasoning`, Anthropic `thinking_delta`) count: they
/// prove the model is generating, and reasoning models (DeepSeek, GLM-4.5+) can think for a
/// long time before the first visible word — that is a slow answer, not a dead provider.
pub fn chunk_has_content(item: &SseItem) -> bool {
    let SseItem::Event { data, .. } = item else {
        return false;
    };
    // Called on every chunk until the first content: skip the JSON parse for chunks that
    // cannot hold a delta (pings, message_start, usage-only chunks).
    if !data.contains("delta") && !data.contains("content_block_start") {
        return false;
    }
    serde_json::from_str::<Value>(data).is_ok_and(|value| value_has_content(&value))
}

/// Turns a healthy `up` into `degraded` when it took longer than the threshold.
pub fn degraded_if_slow(diagnosis: Diagnosis, latency: Duration, threshold: Duration) -> Diagnosis {
    if diagnosis.verdict != Verdict::Up || latency <= threshold {
        return diagnosis;
    }
    let detail = format!(
        "{} ms, above the {} ms threshold",
        latency.as_millis(),
        threshold.as_millis()
    );
    conclude(
        Finding::detailed(Case::Degraded, detail),
        diagnosis.status,
        None,
    )
}

// === body kinds ===

/// What a body turned out to be (reference §2 step 3).
#[derive(Debug)]
enum Body {
    Empty,
    /// A gateway/CDN page: never parsed, never shown.
    Html,
    Sse(Vec<SseItem>),
    Json(Value),
    /// Valid JSON as far as it was read, cut at the read limit.
    TruncatedJson,
    /// Short printable text (e.g. an Envoy "upstream connect error").
    Text(String),
    /// Binary, invalid or over-deep JSON, oversized text.
    Garbage,
}

impl Body {
    fn read(answer: &HttpAnswer<'_>) -> Body {
        let bytes = answer.body;
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return Body::Empty;
        }
        let content_type = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let json_like = trimmed.starts_with(b"{") || trimmed.starts_with(b"[");
        if trimmed.starts_with(b"<") || (content_type.contains("text/html") && !json_like) {
            return Body::Html;
        }
        if looks_like_sse(bytes) || (content_type.contains("text/event-stream") && !json_like) {
            return parse_all(bytes).map_or(Body::Garbage, Body::Sse);
        }
        // serde_json stops at depth 128 with an error, so hostile nesting cannot overflow the
        // stack; that error lands in `Garbage` like any other.
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => Body::Json(value),
            Err(e) if answer.truncated && e.is_eof() => Body::TruncatedJson,
            Err(_) => match std::str::from_utf8(trimmed) {
                Ok(text) if !json_like && !answer.truncated && is_plain_text(text) => {
                    Body::Text(text.to_owned())
                }
                _ => Body::Garbage,
            },
        }
    }

    fn note(&self) -> BodyNote {
        match self {
            Body::Empty => BodyNote::Empty,
            Body::Html => BodyNote::Html,
            Body::TruncatedJson | Body::Garbage => BodyNote::Unreadable,
            Body::Sse(_) | Body::Json(_) | Body::Text(_) => BodyNote::None,
        }
    }
}

/// What the explanation should say about a body that gave no error object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyNote {
    None,
    Empty,
    Html,
    Unreadable,
}

impl BodyNote {
    fn words(self) -> Option<&'static str> {
        match self {
            BodyNote::None => None,
            BodyNote::Empty => Some("empty body"),
            BodyNote::Html => Some("the body was an HTML page, not shown"),
            BodyNote::Unreadable => Some("the body was not readable JSON"),
        }
    }
}

fn is_plain_text(text: &str) -> bool {
    text.len() <= MAX_TEXT_BODY && !text.chars().any(|c| c.is_control() && !c.is_whitespace())
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

// === error objects ===

/// The fields of an error object that the table matches on, whatever the envelope.
#[derive(Debug, Default, Clone)]
struct ErrorObject {
    /// `error.code` as text: `"1113"` and `1113` are the same code.
    code: Option<String>,
    kind: Option<String>,
    message: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl ErrorObject {
    /// Finds the error object in a JSON body (reference §2 step 4). `lenient` (error statuses)
    /// also accepts a bare top-level `message`/`detail`; on 2xx only an `error` key or a
    /// non-success top-level `code` counts, so a normal reply is never mistaken for an error.
    fn from_body(value: &Value, lenient: bool) -> Option<ErrorObject> {
        let body = value.as_object()?;
        let top_code = body.get("code").and_then(scalar_text);
        let top_message = MESSAGE_KEYS
            .iter()
            .find_map(|key| body.get(*key).and_then(message_text));
        match body.get("error") {
            // OpenAI, Moonshot, DeepSeek, Zhipu, DashScope compatible-mode, OpenRouter, and
            // Anthropic's `{"type":"error","error":{...}}`.
            Some(Value::Object(error)) => Some(ErrorObject {
                code: error.get("code").and_then(scalar_text).or(top_code),
                kind: error.get("type").and_then(Value::as_str).map(str::to_owned),
                message: error.get("message").and_then(message_text).or(top_message),
                metadata: error.get("metadata").and_then(Value::as_object).cloned(),
            }),
            Some(Value::String(message)) => Some(ErrorObject {
                code: top_code,
                message: Some(message.clone()),
                ..ErrorObject::default()
            }),
            Some(Value::Bool(true)) => Some(ErrorObject {
                code: top_code,
                message: top_message,
                ..ErrorObject::default()
            }),
            // DashScope native / Z.ai `{"code":"1261","message":"…"}`, or a bare message.
            _ => {
                let code =
                    top_code.filter(|c| !SUCCESS_CODES.iter().any(|s| c.eq_ignore_ascii_case(s)));
                let is_error = code.is_some() || (lenient && top_message.is_some());
                is_error.then(|| ErrorObject {
                    code,
                    message: top_message,
                    ..ErrorObject::default()
                })
            }
        }
    }

    /// OpenRouter's numeric `error.code` mirrors an HTTP status; on a 2xx it is the only
    /// status the error has.
    fn status_code(&self) -> Option<u16> {
        self.code
            .as_deref()?
            .parse::<u16>()
            .ok()
            .filter(|code| (400..=599).contains(code))
    }

    fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }

    /// The upstream provider's error that an OpenRouter-shaped gateway put in
    /// `metadata.raw` (a JSON string, sometimes plain text or an object).
    fn upstream(&self) -> Option<ErrorObject> {
        let raw = self.metadata.as_ref()?.get("raw")?;
        match raw {
            Value::String(text) => {
                let trimmed = text.trim();
                if trimmed.is_empty() || looks_like_html(trimmed) {
                    return None;
                }
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(value) => ErrorObject::from_body(&value, true),
                    Err(_) => Some(ErrorObject {
                        message: Some(trimmed.to_owned()),
                        ..ErrorObject::default()
                    }),
                }
            }
            Value::Object(_) => ErrorObject::from_body(raw, true),
            _ => None,
        }
    }

    /// Said in the explanation when a gateway relayed the error with `is_byok: true`.
    fn byok_note(&self) -> Option<String> {
        let byok = self.metadata.as_ref()?.get("is_byok")?.as_bool()?;
        byok.then(|| {
            "is_byok: the upstream call used a bring-your-own key stored at the gateway, so the \
             affected account is that key's owner — with a reseller gateway, the gateway's \
             problem, not yours"
                .to_owned()
        })
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
        Value::Number(number) => Some(match number.as_f64() {
            Some(f) if number.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => number.to_string(),
        }),
        _ => None,
    }
}

fn message_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()).filter(|t| !t.trim().is_empty()),
        other => Some(other.to_string()),
    }
}

// === decisions ===

/// A decided verdict with what its texts need; [`conclude`] turns it into a [`Diagnosis`].
#[derive(Debug)]
struct Finding {
    outcome: Outcome<'static>,
    /// The provider's own message, unsanitised (for the wait); sanitised when rendered.
    message: Option<String>,
    code: Option<String>,
    detail: Option<String>,
    /// Status to show in the texts when it differs from the answer's (OpenRouter's numeric
    /// code inside a 200).
    text_status: Option<u16>,
    /// Words before the explanation ("upstream moonshotai, relayed by the gateway").
    prefix: Option<String>,
    /// Words after it, in parentheses.
    note: Option<String>,
}

impl Finding {
    fn new(outcome: Outcome<'static>) -> Finding {
        Finding {
            outcome,
            message: None,
            code: None,
            detail: None,
            text_status: None,
            prefix: None,
            note: None,
        }
    }

    fn case(case: Case) -> Finding {
        Finding::new(TABLE.case(case))
    }

    /// The case with its `{detail}` filled in.
    fn detailed(case: Case, detail: String) -> Finding {
        Finding {
            detail: Some(detail),
            ..Finding::case(case)
        }
    }

    fn about(outcome: Outcome<'static>, error: &ErrorObject) -> Finding {
        Finding {
            message: error.message.clone(),
            code: error.code.clone(),
            ..Finding::new(outcome)
        }
    }
}

/// Rules (a) and (b): the upstream body in `metadata.raw` first, then the error itself.
fn match_error(error: &ErrorObject, status: u16, depth: usize) -> Option<Finding> {
    if depth < MAX_WRAP_DEPTH
        && let Some(upstream) = error.upstream()
        && let Some(mut finding) = match_error(&upstream, status, depth + 1)
    {
        if finding.prefix.is_none() {
            let provider = error
                .metadata_str("provider_name")
                .map_or_else(|| "provider".to_owned(), sanitize);
            finding.prefix = Some(format!("upstream {provider} error relayed by the gateway"));
        }
        if finding.note.is_none() {
            finding.note = error.byok_note();
        }
        return Some(finding);
    }
    let message_lower = error.message.as_deref().unwrap_or_default().to_lowercase();
    let facts = ErrorFacts {
        code: error.code.as_deref(),
        kind: error.kind.as_deref(),
        message_lower: &message_lower,
        metadata: error.metadata.as_ref(),
        status,
    };
    let mut finding = Finding::about(TABLE.match_error(&facts)?, error);
    finding.note = error.byok_note();
    Some(finding)
}

/// An error status: rules first, then the status fallback.
fn decide_failure(
    status: u16,
    headers: &HeaderMap,
    error: Option<ErrorObject>,
    body_note: BodyNote,
    expect: Expect,
) -> Diagnosis {
    if let Some(finding) = error.as_ref().and_then(|e| match_error(e, status, 0)) {
        return conclude(finding, Some(status), Some(headers));
    }
    let html = body_note == BodyNote::Html;
    let (outcome, row_names_body) = TABLE.status_fallback(status, expect, html);
    let mut finding = match &error {
        Some(error) => Finding {
            note: error.byok_note(),
            ..Finding::about(outcome, error)
        },
        None => Finding::new(outcome),
    };
    // An HTML-only row describes the page itself; other rows get the body's note.
    if !row_names_body {
        finding.note = finding.note.or(body_note.words().map(str::to_owned));
    }
    conclude(finding, Some(status), Some(headers))
}

/// An error object inside a 2xx body or stream: rules, then OpenRouter's numeric code as a
/// status, else `malformed` with `unknown` (reference §2 step 6, trap 6).
fn decide_error_in_success(error: &ErrorObject, status: u16, unknown: Case) -> Finding {
    if let Some(mut finding) = match_error(error, status, 0) {
        finding
            .prefix
            .get_or_insert_with(|| format!("HTTP {status} carrying an error"));
        return finding;
    }
    if let Some(code) = error.status_code() {
        let (outcome, _) = TABLE.status_fallback(code, Expect::Chat, false);
        let mut finding = Finding::about(outcome, error);
        finding.text_status = Some(code);
        finding.prefix = Some(format!("HTTP {status} carrying error code {code}"));
        finding.note = error.byok_note();
        return finding;
    }
    Finding::about(TABLE.case(unknown), error)
}

fn failure_answer(status: u16, headers: &HeaderMap, body: &Body, expect: Expect) -> Diagnosis {
    let error = match body {
        Body::Json(value) => ErrorObject::from_body(value, true),
        Body::Sse(items) => items.iter().find_map(event_error),
        Body::Text(text) => Some(ErrorObject {
            message: Some(text.clone()),
            ..ErrorObject::default()
        }),
        Body::Empty | Body::Html | Body::TruncatedJson | Body::Garbage => None,
    };
    decide_failure(status, headers, error, body.note(), expect)
}

fn event_error(item: &SseItem) -> Option<ErrorObject> {
    let SseItem::Event { data, .. } = item else {
        return None;
    };
    let value = serde_json::from_str::<Value>(data).ok()?;
    ErrorObject::from_body(&value, false)
}

fn success_answer(answer: &HttpAnswer<'_>, body: Body, expect: Expect) -> Diagnosis {
    let status = answer.status;
    let finding = match body {
        Body::Json(value) => return success_json(status, &value, expect),
        // A stream body given to the non-stream classifier: judge it as the stream it is.
        Body::Sse(items) => {
            let summary = StreamSummary {
                status,
                headers: answer.headers,
                items: &items,
                end: &StreamEnd::Eof,
            };
            return evaluate_stream(&summary, expect);
        }
        Body::Empty => Finding::case(Case::BodyEmpty),
        Body::Html => Finding::case(Case::BodyHtml),
        Body::TruncatedJson => match expect {
            // A big `GET /models` list (OpenRouter's exceeds the read limit) that is valid
            // JSON as far as it goes proves the API answers.
            Expect::Reachable { .. } => Finding::case(Case::UpReachableTruncated),
            Expect::Chat | Expect::ToolCall => Finding::case(Case::BodyTruncated),
        },
        Body::Text(_) | Body::Garbage => Finding::case(Case::BodyNotJson),
    };
    conclude(finding, Some(status), None)
}

fn success_json(status: u16, value: &Value, expect: Expect) -> Diagnosis {
    let finding = if let Some(error) = ErrorObject::from_body(value, false) {
        decide_error_in_success(&error, status, Case::UnknownError2xx)
    } else if let Some(finding) = failed_finish(value) {
        finding
    } else {
        match expect {
            Expect::Reachable { .. } if value.is_object() || value.is_array() => {
                Finding::case(Case::UpReachable)
            }
            Expect::Reachable { .. } => not_a_reply("a bare JSON value"),
            Expect::Chat => check_chat(value),
            Expect::ToolCall => check_tool_call(value),
        }
    };
    conclude(finding, Some(status), None)
}

/// A non-stream reply that ended with a failure `finish_reason` / `stop_reason`.
fn failed_finish(value: &Value) -> Option<Finding> {
    let reason = value
        .pointer("/choices/0/finish_reason")
        .or_else(|| value.get("stop_reason"))
        .and_then(Value::as_str)?;
    finish_finding(reason)
}

fn finish_finding(reason: &str) -> Option<Finding> {
    let mut finding = Finding::new(TABLE.finish_reason(reason)?);
    finding.code = Some(reason.to_owned());
    Some(finding)
}

fn not_a_reply(detail: &str) -> Finding {
    Finding::detailed(Case::NotAReply, detail.to_owned())
}

/// Shape of a chat reply: OpenAI `choices[0].message` or Anthropic `content[]`.
enum Reply<'v> {
    OpenAi(&'v Map<String, Value>),
    Anthropic(&'v [Value]),
    Missing(Finding),
}

fn reply_of(value: &Value) -> Reply<'_> {
    if let Some(choices) = value.get("choices") {
        let Some(first) = choices.as_array().and_then(|c| c.first()) else {
            return Reply::Missing(Finding::case(Case::EmptyChoices));
        };
        return match first.get("message").and_then(Value::as_object) {
            Some(message) => Reply::OpenAi(message),
            None => Reply::Missing(not_a_reply("choices[0] has no message")),
        };
    }
    match value.get("content").and_then(Value::as_array) {
        Some(blocks) => Reply::Anthropic(blocks),
        None => Reply::Missing(not_a_reply("neither `choices` nor `content` is present")),
    }
}

fn check_chat(value: &Value) -> Finding {
    let has_reply = match reply_of(value) {
        Reply::OpenAi(message) => {
            non_empty_text(message.get("content"))
                || message
                    .get("content")
                    .and_then(Value::as_array)
                    .is_some_and(|parts| !parts.is_empty())
                || non_empty_text(message.get("reasoning_content"))
                || non_empty_text(message.get("reasoning"))
                || non_empty_array(message.get("tool_calls"))
                || message.get("function_call").is_some_and(Value::is_object)
        }
        Reply::Anthropic(blocks) => !blocks.is_empty(),
        Reply::Missing(finding) => return finding,
    };
    if has_reply {
        Finding::case(Case::UpChat)
    } else {
        Finding::case(Case::EmptyMessage)
    }
}

fn check_tool_call(value: &Value) -> Finding {
    let mut calls: Vec<ToolArguments> = Vec::new();
    match reply_of(value) {
        Reply::OpenAi(message) => {
            let tool_calls = message.get("tool_calls").and_then(Value::as_array);
            let functions = tool_calls
                .into_iter()
                .flatten()
                .filter_map(|call| call.get("function"))
                .chain(message.get("function_call"));
            calls.extend(functions.map(|function| ToolArguments::of(function.get("arguments"))));
        }
        Reply::Anthropic(blocks) => calls.extend(
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                .map(|b| ToolArguments::Parsed(b.get("input").cloned().unwrap_or(Value::Null))),
        ),
        Reply::Missing(finding) => return finding,
    }
    judge_tool_calls(&calls)
}

/// A tool call's arguments as they arrived: OpenAI sends a JSON string, Anthropic an object.
#[derive(Debug)]
enum ToolArguments {
    Text(String),
    Parsed(Value),
}

impl ToolArguments {
    fn of(arguments: Option<&Value>) -> ToolArguments {
        match arguments {
            Some(Value::String(text)) => ToolArguments::Text(text.clone()),
            Some(other) => ToolArguments::Parsed(other.clone()),
            None => ToolArguments::Parsed(Value::Null),
        }
    }

    fn is_object(&self) -> bool {
        match self {
            ToolArguments::Text(text) => {
                serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object())
            }
            ToolArguments::Parsed(value) => value.is_object(),
        }
    }

    fn shown(&self) -> String {
        match self {
            ToolArguments::Text(text) if text.trim().is_empty() => "empty arguments".to_owned(),
            ToolArguments::Text(text) => format!("`{}`", sanitize(text)),
            ToolArguments::Parsed(value) => format!("`{}`", sanitize(&value.to_string())),
        }
    }
}

fn judge_tool_calls(calls: &[ToolArguments]) -> Finding {
    if calls.is_empty() {
        return Finding::case(Case::NoToolCall);
    }
    // One well-formed call is enough for a probe: it proves the model can call tools.
    if calls.iter().any(ToolArguments::is_object) {
        return Finding::case(Case::UpToolCall);
    }
    let mut finding = Finding::case(Case::BadToolArguments);
    finding.detail = calls.first().map(ToolArguments::shown);
    finding
}

fn non_empty_text(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_str)
        .is_some_and(|text| !text.is_empty())
}

fn non_empty_array(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_array)
        .is_some_and(|items| !items.is_empty())
}

// === streams ===

/// What a 2xx stream showed so far (reference §10).
#[derive(Debug, Default)]
struct StreamState {
    /// `data:` events that parsed as JSON.
    chunks: usize,
    /// Comments and pings: liveness, not progress.
    keepalives: usize,
    content: bool,
    /// `data: [DONE]` or `message_stop` was seen.
    done: bool,
    anthropic: bool,
    /// Tool calls being assembled, keyed by (Anthropic?, index).
    tools: BTreeMap<(bool, u64), ToolParts>,
}

#[derive(Debug, Default)]
struct ToolParts {
    arguments: String,
    /// Anthropic's `content_block_start` carries an `input` (usually `{}`) before the deltas.
    start_input: Option<Value>,
}

fn evaluate_stream(summary: &StreamSummary<'_>, expect: Expect) -> Diagnosis {
    let status = summary.status;
    let mut state = StreamState::default();
    let mut failure = None;
    for item in summary.items {
        let (event, data) = match item {
            SseItem::Comment(_) => {
                state.keepalives += 1;
                continue;
            }
            SseItem::Event { event, data } => (event.as_deref(), data.trim()),
        };
        if data == "[DONE]" {
            state.done = true;
            continue;
        }
        if event == Some("ping") || data.is_empty() {
            state.keepalives += 1;
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            failure = Some(Finding::case(Case::StreamNotJson));
            break;
        };
        state.chunks += 1;
        // The first failure decides: a `[DONE]` after it does not undo it (trap 19).
        if let Some(finding) = state.read_event(event, &value, status) {
            failure = Some(finding);
            break;
        }
    }
    if let Some(finding) = failure {
        return conclude(finding, Some(status), None);
    }
    let finding = match summary.end {
        StreamEnd::FirstTokenTimeout if state.keepalives > 0 => {
            Finding::detailed(Case::StreamFirstTokenQueued, state.keepalives.to_string())
        }
        StreamEnd::FirstTokenTimeout => Finding::case(Case::StreamFirstToken),
        StreamEnd::IdleTimeout => Finding::detailed(Case::StreamIdle, state.chunks.to_string()),
        // A stream that ends before its end marker was cut: the provider broke the answer
        // (DESIGN: `malformed`). So is a connection dropped after the 200, whatever the socket
        // error says.
        StreamEnd::Eof
        | StreamEnd::Transport(TransportFailure::Reset(_) | TransportFailure::Other(_))
            if !state.done =>
        {
            let marker = if state.anthropic {
                "`event: message_stop`"
            } else {
                "`data: [DONE]`"
            };
            Finding::detailed(Case::StreamCut, marker.to_owned())
        }
        StreamEnd::Transport(transport) => {
            let mut diagnosis = classify_transport(transport);
            diagnosis.explanation = format!(
                "mid-stream, after {} chunk(s): {}",
                state.chunks, diagnosis.explanation
            );
            diagnosis.status = Some(status);
            return diagnosis;
        }
        StreamEnd::Eof => match expect {
            Expect::Reachable { .. } => Finding::case(Case::UpChat),
            Expect::Chat if state.content => Finding::case(Case::UpChat),
            Expect::Chat => Finding::case(Case::StreamNoContent),
            Expect::ToolCall => judge_tool_calls(&state.assembled_tools()),
        },
    };
    conclude(finding, Some(status), None)
}

impl StreamState {
    /// Reads one JSON event; returns the failure it signals, if any.
    fn read_event(&mut self, event: Option<&str>, value: &Value, status: u16) -> Option<Finding> {
        let kind = value.get("type").and_then(Value::as_str).or(event);
        // Errors first: Anthropic `event: error`, a top-level `error` (OpenAI, OpenRouter's
        // unified error, DashScope moderation). Classified like a non-stream error.
        // vLLM, SGLang and TGI's OpenAI servers send `{"object": "error", "message", "code"}`
        // with no `error` key, in a 200 stream as in a body.
        let has_error = value
            .get("error")
            .is_some_and(|e| !e.is_null() && *e != Value::Bool(false))
            || value.get("object").and_then(Value::as_str) == Some("error");
        if event == Some("error") || kind == Some("error") || has_error {
            let error = ErrorObject::from_body(value, true).unwrap_or_default();
            return Some(decide_error_in_success(
                &error,
                status,
                Case::StreamUnknownError,
            ));
        }
        if let Some(finding) = self.read_anthropic(kind, value) {
            return Some(finding);
        }
        if let Some(finding) = self.read_openai(value) {
            return Some(finding);
        }
        self.content |= value_has_content(value);
        None
    }

    fn read_anthropic(&mut self, kind: Option<&str>, value: &Value) -> Option<Finding> {
        let index = value
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        match kind? {
            "message_start" => self.anthropic = true,
            "content_block_start" => {
                self.anthropic = true;
                let block = value.get("content_block")?;
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    self.tools.entry((true, index)).or_default().start_input =
                        block.get("input").cloned();
                }
            }
            "content_block_delta" => {
                let delta = value.get("delta")?;
                if delta.get("type").and_then(Value::as_str) == Some("input_json_delta")
                    && let Some(piece) = delta.get("partial_json").and_then(Value::as_str)
                {
                    self.tools
                        .entry((true, index))
                        .or_default()
                        .arguments
                        .push_str(piece);
                }
            }
            "message_delta" => {
                let reason = value
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)?;
                return finish_finding(reason);
            }
            "message_stop" => {
                self.anthropic = true;
                self.done = true;
            }
            _ => {}
        }
        None
    }

    fn read_openai(&mut self, value: &Value) -> Option<Finding> {
        let choices = value.get("choices").and_then(Value::as_array)?;
        for choice in choices {
            let calls = choice
                .pointer("/delta/tool_calls")
                .and_then(Value::as_array);
            for (position, call) in calls.into_iter().flatten().enumerate() {
                // Arguments arrive in pieces; `index` says which call a piece belongs to.
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(position as u64);
                let parts = self.tools.entry((false, index)).or_default();
                match call.pointer("/function/arguments") {
                    Some(Value::String(piece)) => parts.arguments.push_str(piece),
                    Some(object @ Value::Object(_)) => parts.start_input = Some(object.clone()),
                    _ => {}
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str)
                && let Some(finding) = finish_finding(reason)
            {
                return Some(finding);
            }
        }
        None
    }

    fn assembled_tools(&self) -> Vec<ToolArguments> {
        self.tools
            .values()
            .map(
                |parts| match (&parts.start_input, parts.arguments.is_empty()) {
                    (Some(input), true) => ToolArguments::Parsed(input.clone()),
                    _ => ToolArguments::Text(parts.arguments.clone()),
                },
            )
            .collect()
    }
}

fn value_has_content(value: &Value) -> bool {
    match value.get("type").and_then(Value::as_str) {
        Some("content_block_delta") => value
            .pointer("/delta/type")
            .and_then(Value::as_str)
            .is_some_and(|kind| CONTENT_DELTAS.contains(&kind)),
        Some("content_block_start") => {
            value.pointer("/content_block/type").and_then(Value::as_str) == Some("tool_use")
        }
        _ => value
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|choices| {
                choices.iter().filter_map(|c| c.get("delta")).any(|delta| {
                    non_empty_text(delta.get("content"))
                        || non_empty_text(delta.get("reasoning_content"))
                        || non_empty_text(delta.get("reasoning"))
                        || non_empty_array(delta.get("tool_calls"))
                })
            }),
    }
}

// === the diagnosis ===

/// Fills the texts and the wait. The wait is read only for verdicts where waiting means
/// something (`wait = true` in the table) and never for rows marked `no_wait`.
fn conclude(finding: Finding, status: Option<u16>, headers: Option<&HeaderMap>) -> Diagnosis {
    let Finding {
        outcome,
        message,
        code,
        detail,
        text_status,
        prefix,
        note,
    } = finding;
    let verdict = outcome.verdict;
    let retry_after_s = if TABLE.reports_wait(verdict) && !outcome.no_wait {
        headers
            .and_then(retry_after_from_headers)
            .or_else(|| message.as_deref().and_then(retry_after_from_message))
    } else {
        None
    };
    let message = message.as_deref().map(sanitize);
    let code = code.as_deref().map(sanitize);
    let slots = Slots {
        message: message.as_deref(),
        code: code.as_deref(),
        status: text_status.or(status),
        wait: retry_after_s,
        detail: detail.as_deref(),
    };
    let mut explanation = render(outcome.explanation, &slots);
    if let Some(message) = &message
        && !outcome.explanation.contains("{message}")
    {
        explanation = format!("{explanation} — provider says: \"{message}\"");
    }
    if let Some(prefix) = prefix {
        explanation = format!("{prefix}: {explanation}");
    }
    if let Some(note) = note {
        explanation = format!("{explanation} ({note})");
    }
    Diagnosis {
        verdict,
        blame: verdict.default_blame(),
        status,
        retry_after_s,
        explanation,
        advice: render(outcome.advice, &slots),
        cause: None,
    }
}

/// Provider text made safe for one line: HTML never shown, whitespace collapsed, control
/// characters dropped, secrets masked, ~200 characters at most. Text that holds a page after
/// some words (a proxy's error page inside a JSON message) keeps the words.
fn sanitize(text: &str) -> String {
    let trimmed = text.trim();
    if looks_like_html(trimmed) {
        return "an HTML page (not shown)".to_owned();
    }
    let (trimmed, page) = match page_start(trimmed) {
        Some(at) => (trimmed[..at].trim_end(), true),
        None => (trimmed, false),
    };
    if page && trimmed.is_empty() {
        return "an HTML page (not shown)".to_owned();
    }
    let mut flat = String::with_capacity(trimmed.len().min(4 * MESSAGE_CHARS));
    let mut last_space = false;
    // Collapse first, on a bounded prefix: a 256 KiB message must not cost more than a line.
    for c in trimmed.chars().take(8 * MESSAGE_CHARS) {
        if c.is_whitespace() || c.is_control() {
            if !last_space {
                flat.push(' ');
            }
            last_space = true;
        } else {
            flat.push(c);
            last_space = false;
        }
    }
    let redacted = crate::secret::scrub(&flat);
    let mut chars = redacted.chars();
    let mut out: String = chars.by_ref().take(MESSAGE_CHARS).collect();
    if chars.next().is_some() || trimmed.chars().nth(8 * MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    if page {
        out.push_str(" (then an HTML page, not shown)");
    }
    out
}

/// Where an HTML or XML document starts inside `text`, at one of [`PAGE_MARKERS`] (any case).
fn page_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().find_map(|(at, b)| {
        let rest = &bytes[at..];
        let marked = *b == b'<'
            && PAGE_MARKERS.iter().any(|m| {
                rest.get(..m.len())
                    .is_some_and(|r| r.eq_ignore_ascii_case(m.as_bytes()))
            });
        marked.then_some(at)
    })
}

/// A tag opening (`<html`, `<!DOCTYPE`, `</`, `<?xml`), not DashScope's `<400> InternalError…`.
fn looks_like_html(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next() == Some('<')
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "!?/".contains(c))
}

//! The classifier: observed answer in, [`Diagnosis`] out. Pure, no I/O, never panics.
//! (STUB — being written; signatures are the contract.)

use reqwest::header::HeaderMap;

use super::Diagnosis;
use crate::sse::SseItem;

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

/// What a successful answer must contain to count as `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `GET /models`: any well-formed answer proves the API is there. When no key was sent, a
    /// 401/403 is the expected answer and also proves reachability.
    Reachable { key_sent: bool },
    /// A chat completion: OpenAI `choices[0].message` (content or tool calls) or Anthropic
    /// `content[]`.
    Chat,
    /// A chat completion whose reply holds at least one tool call with JSON-object arguments.
    ToolCall,
}

/// How a transport failed before any HTTP answer (or while reading one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    Dns(String),
    Connect(String),
    Tls(String),
    /// Connection reset or closed before the status line, or while reading the body.
    Reset(String),
    /// The deadline of `phase` passed ("connect", "first byte", "first token", "idle", "response").
    Timeout {
        phase: &'static str,
    },
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

pub fn classify_http(_answer: &HttpAnswer<'_>, _expect: Expect) -> Diagnosis {
    unimplemented!("classifier being written")
}

pub fn classify_stream(_summary: &StreamSummary<'_>, _expect: Expect) -> Diagnosis {
    unimplemented!("classifier being written")
}

pub fn classify_transport(_failure: &TransportFailure) -> Diagnosis {
    unimplemented!("classifier being written")
}

/// True when an SSE item carries generated content (text, reasoning or a tool-call delta):
/// this is what stops the first-token clock. Comments, pings and role-only chunks do not.
pub fn chunk_has_content(_item: &SseItem) -> bool {
    unimplemented!("classifier being written")
}

/// Turns a healthy `up` into `degraded` when it took longer than the threshold.
pub fn degraded_if_slow(
    diagnosis: Diagnosis,
    latency: std::time::Duration,
    threshold: std::time::Duration,
) -> Diagnosis {
    let _ = (latency, threshold);
    diagnosis
}

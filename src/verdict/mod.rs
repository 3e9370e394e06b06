//! Verdicts: the one vocabulary every part of isdown speaks.
//!
//! This module owns the [`Verdict`] and [`Blame`] names (a contract: they appear in JSON, metrics
//! labels and config), the [`Diagnosis`] that carries a verdict with its explanation and advice,
//! and the classifier that turns an API answer into a diagnosis. The classifier does no I/O and
//! never panics: probes and the gateway hand it what they observed (status, headers, a bounded
//! body, stream events, a transport failure) and get a diagnosis back.

use serde::{Deserialize, Serialize};

mod classify;
mod retry_after;
mod rules;
#[cfg(test)]
mod tests;

pub use classify::{
    BODY_LIMIT, HttpAnswer, StreamEnd, StreamSummary, TransportFailure, chunk_has_content,
    classify_http, classify_stream, classify_transport, degraded_if_slow,
};
pub use retry_after::retry_after_from_headers;

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

/// What an answer from an LLM API means. Names are a contract (README "Verdicts": JSON, metrics labels, config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Up,
    Degraded,
    RateLimited,
    QuotaExhausted,
    AuthFailed,
    ModelNotFound,
    ContextTooLong,
    ContentFiltered,
    BadRequest,
    Overloaded,
    ServerError,
    Unavailable,
    Timeout,
    Network,
    Malformed,
}

/// Whose side a failure is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    Provider,
    Account,
    Request,
    Network,
}

impl Verdict {
    pub const ALL: [Verdict; 15] = [
        Verdict::Up,
        Verdict::Degraded,
        Verdict::RateLimited,
        Verdict::QuotaExhausted,
        Verdict::AuthFailed,
        Verdict::ModelNotFound,
        Verdict::ContextTooLong,
        Verdict::ContentFiltered,
        Verdict::BadRequest,
        Verdict::Overloaded,
        Verdict::ServerError,
        Verdict::Unavailable,
        Verdict::Timeout,
        Verdict::Network,
        Verdict::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Degraded => "degraded",
            Verdict::RateLimited => "rate_limited",
            Verdict::QuotaExhausted => "quota_exhausted",
            Verdict::AuthFailed => "auth_failed",
            Verdict::ModelNotFound => "model_not_found",
            Verdict::ContextTooLong => "context_too_long",
            Verdict::ContentFiltered => "content_filtered",
            Verdict::BadRequest => "bad_request",
            Verdict::Overloaded => "overloaded",
            Verdict::ServerError => "server_error",
            Verdict::Unavailable => "unavailable",
            Verdict::Timeout => "timeout",
            Verdict::Network => "network",
            Verdict::Malformed => "malformed",
        }
    }

    pub fn parse(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// The blame a verdict carries before correlation. `timeout` and `network` start as
    /// provider-side; correlation with other targets may move them to the network.
    pub fn default_blame(self) -> Option<Blame> {
        match self {
            Verdict::Up => None,
            Verdict::RateLimited | Verdict::QuotaExhausted | Verdict::AuthFailed => {
                Some(Blame::Account)
            }
            Verdict::ModelNotFound
            | Verdict::ContextTooLong
            | Verdict::ContentFiltered
            | Verdict::BadRequest => Some(Blame::Request),
            Verdict::Degraded
            | Verdict::Overloaded
            | Verdict::ServerError
            | Verdict::Unavailable
            | Verdict::Timeout
            | Verdict::Network
            | Verdict::Malformed => Some(Blame::Provider),
        }
    }

    /// `up` and `degraded` both mean the API answered correctly.
    pub fn is_healthy(self) -> bool {
        matches!(self, Verdict::Up | Verdict::Degraded)
    }

    /// Failures where nothing useful came back over the wire: the ones correlation re-blames.
    pub fn is_transport_level(self) -> bool {
        matches!(self, Verdict::Timeout | Verdict::Network)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Blame {
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Provider => "provider",
            Blame::Account => "account",
            Blame::Request => "request",
            Blame::Network => "network",
        }
    }
}

impl std::fmt::Display for Blame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict with everything a person needs to act on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub blame: Option<Blame>,
    /// HTTP status of the answer, when there was one.
    pub status: Option<u16>,
    /// Seconds the provider asked us to wait; only ever filled from what the answer said.
    pub retry_after_s: Option<f64>,
    /// One line: what happened, in the provider's terms (never an echo of HTML or a secret).
    pub explanation: String,
    /// One line: what the user should do now.
    pub advice: String,
    /// For transport failures, what failed (for decisions that must not read the explanation).
    /// Internal: not part of any JSON contract.
    #[serde(skip)]
    pub cause: Option<Cause>,
}

/// What failed when no HTTP answer came (see [`TransportFailure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    Dns,
    Connect,
    Tls,
    Reset,
    Timeout(TimeoutPhase),
    /// isdown's machine ran out of file descriptors.
    LocalResources,
    Other,
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutPhase {
    Dns,
    Connect,
    Tls,
    /// Until the response's status line and headers.
    FirstByte,
    /// Streaming: until the first content chunk (keep-alives do not count).
    FirstToken,
    /// Streaming: the longest silence between chunks.
    Idle,
    /// Until the whole answer.
    Response,
}

impl TimeoutPhase {
    /// How the phase reads in an explanation ("the first token deadline passed").
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutPhase::Dns => "dns",
            TimeoutPhase::Connect => "connect",
            TimeoutPhase::Tls => "tls",
            TimeoutPhase::FirstByte => "first byte",
            TimeoutPhase::FirstToken => "first token",
            TimeoutPhase::Idle => "idle",
            TimeoutPhase::Response => "response",
        }
    }
}

impl Diagnosis {
    pub fn new(
        verdict: Verdict,
        explanation: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Diagnosis {
            verdict,
            blame: verdict.default_blame(),
            status: None,
            retry_after_s: None,
            explanation: explanation.into(),
            advice: advice.into(),
            cause: None,
        }
    }
}

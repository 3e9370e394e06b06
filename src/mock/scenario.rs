//! The scripted failure scenarios of the mock provider: their names (a contract used by tests and
//! the `mock-provider --scenario` flag), one-line descriptions, and which endpoints they touch.
//!
//! Everything about a scenario that is a fact rather than behaviour lives in [`SCENARIOS`], one
//! row per scenario; the server reads the row instead of matching on names. This module does no
//! I/O and knows nothing of provider styles (see `styles`).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// What the mock does with each API request. Names (`as_str`) are snake_case and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    Ok,
    Slow,
    Hang,
    HangChat,
    Reset,
    RateLimited,
    RateLimitedNoRetryAfter,
    QuotaExhausted,
    AuthFailed,
    ModelNotFound,
    ContextTooLong,
    ContentFiltered,
    BadRequest,
    Overloaded,
    ServerError,
    Unavailable,
    Html504,
    Malformed,
    EmptyChoices,
    ErrorIn200,
    NoToolCall,
    BadToolArgs,
    StreamCut,
    StreamStall,
    StreamError,
    KeepaliveOnly,
    KeepaliveThenOk,
    CompleteWithoutDone,
    Flapping,
    EchoKey,
    CutOnce,
    CutOnceThenOther,
    CutOnceRefusePrefill,
    StallOnce,
    // Request-side failures triggered by one part of the request (`check --request`).
    ToolSchemaRejected,
    ToolSchema500,
}

/// Facts about one scenario.
struct Info {
    scenario: Scenario,
    name: &'static str,
    description: &'static str,
    /// Whether `GET /models` is affected. A real outage hits every endpoint, so connection-level
    /// faults and account/provider error bodies apply; request-specific errors (a bad model id,
    /// an oversized prompt) and chat-only failures (tools, streams) leave the list healthy.
    on_models: bool,
}

/// One row per scenario, in the order `--help` lists them.
const SCENARIOS: [Info; 36] = [
    Info {
        scenario: Scenario::Ok,
        name: "ok",
        description: "healthy: answers every request correctly and at once",
        on_models: true,
    },
    Info {
        scenario: Scenario::Slow,
        name: "slow",
        description: "healthy, but response headers wait for the configured delay (default 2 s)",
        on_models: true,
    },
    Info {
        scenario: Scenario::Hang,
        name: "hang",
        description: "reads the request, never answers, keeps the connection open",
        on_models: true,
    },
    Info {
        scenario: Scenario::HangChat,
        name: "hang_chat",
        description: "generation requests hang as in `hang`; `GET /models` still answers",
        on_models: false,
    },
    Info {
        scenario: Scenario::Reset,
        name: "reset",
        description: "reads the request, then resets the connection (TCP RST) before any status line",
        on_models: true,
    },
    Info {
        scenario: Scenario::RateLimited,
        name: "rate_limited",
        description: "429 rate limit with `retry-after: 2`, in the style's own error shape",
        on_models: true,
    },
    Info {
        scenario: Scenario::RateLimitedNoRetryAfter,
        name: "rate_limited_no_retry_after",
        description: "429 rate limit that names no wait (no header, no wait in the text)",
        on_models: true,
    },
    Info {
        scenario: Scenario::QuotaExhausted,
        name: "quota_exhausted",
        description: "out of balance or quota (billing), with the style's real status and body",
        on_models: true,
    },
    Info {
        scenario: Scenario::AuthFailed,
        name: "auth_failed",
        description: "401 invalid API key, in the style's shape",
        on_models: true,
    },
    Info {
        scenario: Scenario::ModelNotFound,
        name: "model_not_found",
        description: "unknown or retired model id (request-specific: /models stays healthy)",
        on_models: false,
    },
    Info {
        scenario: Scenario::ContextTooLong,
        name: "context_too_long",
        description: "input exceeds the context window (request-specific: /models stays healthy)",
        on_models: false,
    },
    Info {
        scenario: Scenario::ContentFiltered,
        name: "content_filtered",
        description: "refused by content policy (request-specific: /models stays healthy)",
        on_models: false,
    },
    Info {
        scenario: Scenario::BadRequest,
        name: "bad_request",
        description: "any other invalid request (request-specific: /models stays healthy)",
        on_models: false,
    },
    Info {
        scenario: Scenario::Overloaded,
        name: "overloaded",
        description: "provider over capacity (Kimi 429 engine_overloaded_error, Anthropic 529, ...)",
        on_models: true,
    },
    Info {
        scenario: Scenario::ServerError,
        name: "server_error",
        description: "500 internal error, in the style's shape",
        on_models: true,
    },
    Info {
        scenario: Scenario::Unavailable,
        name: "unavailable",
        description: "503 service unavailable (JSON where the provider sends JSON)",
        on_models: true,
    },
    Info {
        scenario: Scenario::Html504,
        name: "html_504",
        description: "504 with a text/html gateway page",
        on_models: true,
    },
    Info {
        scenario: Scenario::Malformed,
        name: "malformed",
        description: "200 application/json whose body is invalid JSON (cut in the middle)",
        on_models: true,
    },
    Info {
        scenario: Scenario::EmptyChoices,
        name: "empty_choices",
        description: "200 with `choices: []` (Anthropic: `content: []`)",
        on_models: false,
    },
    Info {
        scenario: Scenario::ErrorIn200,
        name: "error_in_200",
        description: "200 whose body is an error object (OpenRouter relays upstream failures so)",
        on_models: true,
    },
    Info {
        scenario: Scenario::NoToolCall,
        name: "no_tool_call",
        description: "tools requested, plain text answered (the dropped tool call); else healthy",
        on_models: false,
    },
    Info {
        scenario: Scenario::BadToolArgs,
        name: "bad_tool_args",
        description: "tools requested, tool call arguments are not valid JSON; else healthy",
        on_models: false,
    },
    Info {
        scenario: Scenario::StreamCut,
        name: "stream_cut",
        description: "stream: 2 content chunks then the connection drops without an end marker",
        on_models: false,
    },
    Info {
        scenario: Scenario::StreamStall,
        name: "stream_stall",
        description: "stream: 1-2 content chunks then silence forever, connection open",
        on_models: false,
    },
    Info {
        scenario: Scenario::StreamError,
        name: "stream_error",
        description: "stream: a content chunk then the style's in-stream error event",
        on_models: false,
    },
    Info {
        scenario: Scenario::KeepaliveOnly,
        name: "keepalive_only",
        description: "200 then only keep-alive comments (non-stream: blank lines) every 500 ms",
        on_models: false,
    },
    Info {
        scenario: Scenario::KeepaliveThenOk,
        name: "keepalive_then_ok",
        description: "stream: two keep-alive comments, then a healthy answer (non-stream: healthy)",
        on_models: false,
    },
    Info {
        scenario: Scenario::CompleteWithoutDone,
        name: "complete_without_done",
        description: "stream: a complete answer (finish reason, usage) and a clean end, but no end marker",
        on_models: false,
    },
    Info {
        scenario: Scenario::Flapping,
        name: "flapping",
        description: "alternates per API request: ok, unavailable, ok, unavailable, ...",
        on_models: true,
    },
    Info {
        scenario: Scenario::EchoKey,
        name: "echo_key",
        description: "401 whose message quotes the key it received, as some self-hosted servers and \
                      proxies do (for testing that isdown never repeats it)",
        on_models: true,
    },
    Info {
        scenario: Scenario::CutOnce,
        name: "cut_once",
        description: "the first generation request is cut as in `stream_cut`; later ones answer \
                      healthy, and a prefilled one (trailing assistant message) only the rest",
        on_models: false,
    },
    Info {
        scenario: Scenario::CutOnceThenOther,
        name: "cut_once_then_other",
        description: "as `cut_once_refuse_prefill`, but later answers are another text (`pink`)",
        on_models: false,
    },
    Info {
        scenario: Scenario::CutOnceRefusePrefill,
        name: "cut_once_refuse_prefill",
        description: "as `cut_once`, but a prefilled request gets the style's 400 bad_request",
        on_models: false,
    },
    Info {
        scenario: Scenario::StallOnce,
        name: "stall_once",
        description: "as `cut_once`, but the first stream stalls as in `stream_stall` instead",
        on_models: false,
    },
    // --- request-side failures triggered by one part of the request (`check --request`) ---
    Info {
        scenario: Scenario::ToolSchemaRejected,
        name: "tool_schema_rejected",
        description: "the style's 400 for any request whose tools hold a schema this validator refuses \
                      (a name outside letters, digits, `_`, `.`, `-` or over 64 characters, or \
                      `anyOf`/`oneOf`/`allOf` anywhere in the parameters); healthy otherwise, the \
                      ping included",
        on_models: false,
    },
    Info {
        scenario: Scenario::ToolSchema500,
        name: "tool_schema_500",
        description: "as `tool_schema_rejected`, but the refusal is the style's 500 server error (as \
                      providers answer some malformed tool schemas)",
        on_models: false,
    },
];

/// Scenarios that refuse requests whose tools the mock's validator rejects, with the canned
/// answer they refuse them with; other requests are answered as under `ok`.
const TOOL_SCHEMA_REFUSALS: [(Scenario, Scenario); 2] = [
    (Scenario::ToolSchemaRejected, Scenario::BadRequest),
    (Scenario::ToolSchema500, Scenario::ServerError),
];

/// A name that is not a scenario. Its message lists the valid names.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown scenario `{name}`; valid scenarios: {}", Scenario::names().join(", "))]
pub struct UnknownScenario {
    pub name: String,
}

impl Scenario {
    /// Every scenario, in documentation order.
    pub const ALL: [Scenario; 36] = {
        let mut all = [Scenario::Ok; 36];
        let mut i = 0;
        while i < SCENARIOS.len() {
            all[i] = SCENARIOS[i].scenario;
            i += 1;
        }
        all
    };

    /// Every scenario, in documentation order.
    pub fn all() -> &'static [Scenario] {
        &Self::ALL
    }

    /// Every scenario name, in documentation order.
    pub fn names() -> Vec<&'static str> {
        SCENARIOS.iter().map(|info| info.name).collect()
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// One line for `--help` and docs.
    pub fn describe(self) -> &'static str {
        self.info().description
    }

    /// Whether `GET /models` answers according to this scenario (else it stays healthy).
    pub fn affects_models(self) -> bool {
        self.info().on_models
    }

    /// For the tool-schema scenarios, the canned failure a refused request gets.
    pub fn tool_schema_refusal(self) -> Option<Scenario> {
        TOOL_SCHEMA_REFUSALS
            .iter()
            .find(|(scenario, _)| *scenario == self)
            .map(|(_, refusal)| *refusal)
    }

    fn info(self) -> &'static Info {
        // `SCENARIOS` is in declaration order (checked by a test), so the discriminant indexes it.
        &SCENARIOS[self as usize]
    }
}

/// One-line description of a scenario, for `--help` and docs.
pub fn describe(scenario: Scenario) -> &'static str {
    scenario.describe()
}

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SCENARIOS
            .iter()
            .find(|info| info.name == name)
            .map(|info| info.scenario)
            .ok_or_else(|| UnknownScenario {
                name: name.to_owned(),
            })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

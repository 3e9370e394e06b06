//! The mock LLM provider: a real HTTP server that impersonates one provider (`--style`) and
//! fails on script (`--scenario`). Every integration test and the offline demo run against it.
//!
//! It owns the scripted behaviour only — it classifies nothing (that is `verdict`'s job) and
//! reads no configuration; its inputs are [`MockOptions`] and the admin endpoints.
//!
//! # Endpoints
//! - `GET /v1/models`, `GET /models` — OpenAI-style list (Anthropic style: Anthropic's
//!   `{"data":[{"type":"model",…}],"has_more":false}`).
//! - `POST /v1/chat/completions`, `POST /chat/completions` — OpenAI Chat Completions, whole or
//!   streamed (`stream_options.include_usage` honoured); with `tools`, a call of the first tool.
//! - `POST /v1/messages` — Anthropic Messages, whole or streamed, `tool_use` with tools.
//! - `GET|POST /_mock/scenario` — read or switch the scenario: `{"scenario":"NAME",
//!   "delay_ms"?:N, "style"?:"NAME"}`; an unknown name is a 400 listing the valid ones.
//! - `GET|DELETE /_mock/requests` — the API requests received (admin ones excluded):
//!   `{"requests":[{"method","path","headers":{name: value},"body": json | string | null}]}`
//!   (the newest 1,000). Any other path is a recorded OpenAI-style 404 `unknown_url`.
//!
//! # Scenarios
//! See [`Scenario`] and [`describe`]. Error scenarios answer with the chosen style's real status,
//! headers and body, from the embedded `styles.toml` (sources and tags in that file). Where a
//! provider has no such error the mock answers as follows:
//! - `rate_limited` always carries `retry-after: 2` (the scenario's contract), although
//!   DeepSeek, Zhipu and DashScope send no such header; `rate_limited_no_retry_after` is their
//!   real behaviour.
//! - `stream_error`, Kimi: Moonshot's mid-stream error is undocumented — OpenAI's
//!   `data: {"error":…}` then EOF (an OpenAI-shaped fallback).
//! - `overloaded`, DashScope: no documented overload error — OpenAI's 503
//!   `server_is_overloaded` (an OpenAI-shaped fallback).
//! - `overloaded`, OpenRouter: none of its own — an upstream Anthropic 529 relayed as a 502 with
//!   the body in `metadata.raw`, as OpenRouter relays upstream failures.
//! - `unavailable`, DeepSeek and Zhipu: no JSON 503 (DeepSeek's JSON 503 means overload) — the
//!   gateway's nginx HTML 503 page. Anthropic: the edge proxy's plain-text 503.
//! - `content_filtered`, OpenAI and Anthropic: no error status — a 200 with partial output ending
//!   in `finish_reason: "content_filter"` / `stop_reason: "refusal"`.
//! - `html_504`: the same nginx page for every style (it is the gateway's, not the provider's).
//! - `error_in_200`: OpenRouter's documented 200 relay; other styles send their own
//!   server-error object with status 200. Streaming requests get the same JSON body.
//! - `bad_tool_args`, Anthropic non-streaming: `input` must be an object there, so the broken
//!   arguments arrive as a JSON string.
//!
//! Bodies are in the style's shape on every endpoint (Kimi errors on `/v1/messages` too; use
//! `--style anthropic` to imitate an Anthropic-compatible endpoint). In-stream items (finish
//! reasons, stream error events, keep-alives) follow the wire of the endpoint: a style asked on
//! the other wire uses that wire's home style (OpenAI for chat, Anthropic for messages).
//!
//! `keepalive_then_ok` sends two of the style's keep-alives (`: keep-alive`, Anthropic's `ping`
//! event, `: OPENROUTER PROCESSING`) before a healthy stream; non-streaming requests get the
//! healthy answer.
//!
//! `hang_chat` is `hang` for generation requests only: the model list still answers, as the
//! healthy edge of an overloaded provider does (a reachability probe cannot see that hang).
//!
//! `complete_without_done` streams a complete answer — the chunk with `finish_reason` (and the
//! usage chunk when `stream_options.include_usage` asks for it) — then ends the body cleanly
//! without `data: [DONE]` (Anthropic wire: without `message_stop`), as some providers and
//! proxies do; non-streaming requests get the healthy answer.
//!
//! `cut_once`, `cut_once_then_other` and `cut_once_refuse_prefill` exercise the gateway's stream
//! recovery: the first generation request after the scenario is set is cut as in `stream_cut`
//! (two content chunks, `p` and `on`, then the connection drops); every later one answers
//! healthy. A later request whose last message is an assistant message (a prefill, with or
//! without Moonshot's `partial` / DeepSeek's `prefix` flag) is answered with only what follows
//! that text, as one content chunk (`g` after `pon`) — except under `cut_once_refuse_prefill`,
//! which answers it with the style's 400 `bad_request`, as a model without prefill support does.
//! `cut_once_then_other` refuses prefills the same way and answers `pink` instead of `pong`, so
//! a restart diverges after `p`;
//! `stall_once` stalls its first stream as `stream_stall` does instead of cutting it.
//!
//! `flapping` counts every API request, `/models` included, and restarts at `ok` whenever a
//! scenario is set. A generation request whose body is not JSON gets the style's `bad_request`
//! answer under any scenario that would otherwise answer it.
//!
//! Error-body scenarios apply to `GET /models` too (a real outage hits every endpoint), except
//! the request-specific `model_not_found`, `context_too_long`, `content_filtered` and
//! `bad_request`; the tool and stream scenarios and `empty_choices` leave it healthy.
//!
//! `tool_schema_rejected` and `tool_schema_500` imitate a provider whose tool-schema validator
//! refuses part of a request while the provider is up: a generation request with a tool named
//! outside letters, digits, `_`, `.`, `-` (or over 64 characters), or with `anyOf`, `oneOf` or
//! `allOf` anywhere in a tool's parameters, gets the style's `bad_request` (400) or
//! `server_error` (500) answer; every other request, the ping included, is answered as under
//! `ok`. The first trigger is one the request lint reads; the second is valid JSON Schema that
//! only sending reveals (`isdown check --request` narrows it down).
//!
//! All waiting uses `tokio::time`, so callers' tests may run on paused time.
//!
//! # Running one
//! [`run`] serves the mock on a bound listener until a shutdown future completes (the
//! `mock-provider` command). [`MockServer::start`] runs it in-process on a free loopback port
//! and hands back the one handle tests and the demo use: its URLs, [`MockServer::set_scenario`],
//! the received requests ([`MockServer::requests`], [`MockServer::received`] to wait for them)
//! and a graceful stop, on drop or by [`MockServer::stop`].

mod answer;
mod handle;
mod log;
mod request;
mod reset;
mod routes;
mod scenario;
mod server;
mod styles;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use handle::MockServer;
pub use log::RecordedRequest;
pub use scenario::{Scenario, UnknownScenario, describe};
pub use server::run;
pub use styles::{Style, UnknownStyle};

/// 2 s: long enough to trip a tight latency threshold (`degraded`), short enough for tests.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(2);

/// How a mock server starts; the scenario (and style, delay) can be switched at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockOptions {
    pub scenario: Scenario,
    pub style: Style,
    /// How long `slow` holds the response headers.
    pub delay: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            scenario: Scenario::Ok,
            style: Style::Openai,
            delay: DEFAULT_DELAY,
        }
    }
}

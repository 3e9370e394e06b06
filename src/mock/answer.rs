//! Successful answers in both wire formats — OpenAI Chat Completions and Anthropic Messages,
//! whole or streamed — and the response bodies that deliver them, including the broken ones the
//! stream scenarios need (cut, stalled, endless keep-alives).
//!
//! A streamed answer is built as [`Parts`]: `head` (role chunk / `message_start`), `content`
//! (one event per text or tool-argument piece) and `tail` (finish, usage, end marker). Scenarios
//! then cut it where they need to. This module knows nothing of scenarios or styles beyond the
//! few quirks passed in [`Ctx`]; it does no I/O except through the bodies it returns.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};

/// Per-answer facts echoed into payloads.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub id: String,
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    pub prompt_tokens: u64,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// Moonshot's quirk: stream usage inside `choices[0]` of the finishing chunk.
    pub usage_in_choice: bool,
}

/// What the assistant says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// Text, streamed as the given pieces, ending with this finish (OpenAI `finish_reason`
    /// values; Anthropic answers map `stop` → `end_turn`, others pass through).
    Text { pieces: Vec<String>, finish: String },
    /// A call of `name`; `arguments` is the JSON text, streamed as the given pieces (valid JSON
    /// or not — `bad_tool_args` sends a broken one).
    ToolCall {
        call_id: String,
        name: String,
        pieces: Vec<String>,
    },
    /// No choices at all (`choices: []`, Anthropic `content: []`).
    Empty,
}

/// The answer text of a healthy request, in the pieces a stream sends.
pub(crate) const PONG: [&str; 3] = ["p", "on", "g"];

/// The other answer text (`cut_once_then_other`): same first letter, then it diverges.
pub(crate) const PINK: [&str; 3] = ["p", "in", "k"];

/// The answer `pieces` spell, or only what follows `prefill` when they start with it (a
/// provider continuing a prefilled answer sends just the rest, as one piece here).
pub(crate) fn after_prefill(pieces: [&str; 3], prefill: Option<&str>) -> Reply {
    let text = pieces.concat();
    let pieces = match prefill.and_then(|p| text.strip_prefix(p)) {
        Some(rest) => vec![rest.to_owned()],
        None => pieces.iter().map(|piece| (*piece).to_owned()).collect(),
    };
    Reply::Text {
        pieces,
        finish: "stop".to_owned(),
    }
}

impl Reply {
    pub fn pong() -> Reply {
        Reply::Text {
            pieces: PONG.iter().map(|piece| (*piece).to_owned()).collect(),
            finish: "stop".to_owned(),
        }
    }

    fn text(&self) -> String {
        match self {
            Reply::Text { pieces, .. } | Reply::ToolCall { pieces, .. } => pieces.concat(),
            Reply::Empty => String::new(),
        }
    }

    fn completion_tokens(&self) -> u64 {
        (self.text().len() as u64 / 4).max(1)
    }
}

/// Splits tool arguments into at least two pieces (when they have two characters), the way
/// OpenAI streams them over several deltas.
pub(crate) fn split_arguments(arguments: &str) -> Vec<String> {
    let chars: Vec<char> = arguments.chars().collect();
    let size = chars.len().div_ceil(3).max(1);
    chars
        .chunks(size)
        .map(|chunk| chunk.iter().collect())
        .collect()
}

/// A streamed answer, split where scenarios cut it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parts {
    pub head: Vec<Bytes>,
    pub content: Vec<Bytes>,
    pub tail: Vec<Bytes>,
}

fn sse_data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn sse_event(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

// === OpenAI Chat Completions ===

fn chat_usage(ctx: &Ctx, reply: &Reply) -> Value {
    let completion = reply.completion_tokens();
    json!({
        "prompt_tokens": ctx.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": ctx.prompt_tokens + completion,
    })
}

/// A non-streaming `chat.completion`.
pub(crate) fn chat_json(ctx: &Ctx, reply: &Reply) -> Value {
    let choices = match reply {
        Reply::Empty => json!([]),
        Reply::Text { finish, .. } => json!([{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text()},
            "logprobs": null,
            "finish_reason": finish,
        }]),
        Reply::ToolCall { call_id, name, .. } => json!([{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": reply.text()},
                }],
            },
            "logprobs": null,
            "finish_reason": "tool_calls",
        }]),
    };
    json!({
        "id": ctx.id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": choices,
        "usage": chat_usage(ctx, reply),
        "system_fingerprint": "fp_mock",
    })
}

fn chunk(ctx: &Ctx, choices: Value) -> Value {
    let mut chunk = json!({
        "id": ctx.id,
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
        "system_fingerprint": "fp_mock",
        "choices": choices,
    });
    if ctx.include_usage {
        // OpenAI sends `usage: null` on every chunk but the final usage chunk.
        chunk["usage"] = Value::Null;
    }
    chunk
}

fn delta_choice(delta: Value, finish: Option<&str>) -> Value {
    json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
}

/// A streamed `chat.completion.chunk` sequence.
pub(crate) fn chat_stream(ctx: &Ctx, reply: &Reply) -> Parts {
    let mut parts = Parts::default();
    let finish = match reply {
        Reply::Empty => {
            parts.content.push(sse_data(&chunk(ctx, json!([]))));
            parts.tail.push(Bytes::from_static(DONE));
            return parts;
        }
        Reply::Text { pieces, finish } => {
            let role = json!({"role": "assistant", "content": ""});
            parts
                .head
                .push(sse_data(&chunk(ctx, delta_choice(role, None))));
            for piece in pieces {
                let delta = json!({"content": piece});
                parts
                    .content
                    .push(sse_data(&chunk(ctx, delta_choice(delta, None))));
            }
            finish.as_str()
        }
        Reply::ToolCall {
            call_id,
            name,
            pieces,
        } => {
            let opening = json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "index": 0,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }],
            });
            parts
                .head
                .push(sse_data(&chunk(ctx, delta_choice(opening, None))));
            for piece in pieces {
                let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
                parts
                    .content
                    .push(sse_data(&chunk(ctx, delta_choice(delta, None))));
            }
            "tool_calls"
        }
    };
    let mut last = chunk(ctx, delta_choice(json!({}), Some(finish)));
    if ctx.usage_in_choice {
        last["choices"][0]["usage"] = chat_usage(ctx, reply);
    }
    parts.tail.push(sse_data(&last));
    if ctx.include_usage {
        let mut usage = chunk(ctx, json!([]));
        usage["usage"] = chat_usage(ctx, reply);
        parts.tail.push(sse_data(&usage));
    }
    parts.tail.push(Bytes::from_static(DONE));
    parts
}

// === Anthropic Messages ===

fn stop_reason(finish: &str) -> &str {
    if finish == "stop" { "end_turn" } else { finish }
}

fn tool_input(reply: &Reply) -> Value {
    let text = reply.text();
    // A broken `bad_tool_args` input cannot be an object; send it as the string it is.
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// A non-streaming Messages API `message`.
pub(crate) fn message_json(ctx: &Ctx, reply: &Reply) -> Value {
    let (content, stop) = match reply {
        Reply::Empty => (json!([]), "end_turn"),
        Reply::Text { finish, .. } => (
            json!([{"type": "text", "text": reply.text()}]),
            stop_reason(finish),
        ),
        Reply::ToolCall { call_id, name, .. } => (
            json!([{"type": "tool_use", "id": call_id, "name": name, "input": tool_input(reply)}]),
            "tool_use",
        ),
    };
    json!({
        "id": ctx.id,
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": ctx.prompt_tokens, "output_tokens": reply.completion_tokens()},
    })
}

/// A streamed Messages API event sequence.
pub(crate) fn message_stream(ctx: &Ctx, reply: &Reply) -> Parts {
    let mut parts = Parts::default();
    let start = json!({
        "type": "message_start",
        "message": {
            "id": ctx.id,
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": ctx.prompt_tokens, "output_tokens": 1},
        },
    });
    parts.head.push(sse_event("message_start", &start));
    let stop = match reply {
        Reply::Empty => "end_turn",
        Reply::Text { pieces, finish } => {
            let block = json!({"type": "text", "text": ""});
            open_block(&mut parts, block);
            for piece in pieces {
                let delta = json!({"type": "text_delta", "text": piece});
                parts.content.push(block_delta(delta));
            }
            stop_reason(finish)
        }
        Reply::ToolCall {
            call_id,
            name,
            pieces,
        } => {
            let block = json!({"type": "tool_use", "id": call_id, "name": name, "input": {}});
            open_block(&mut parts, block);
            for piece in pieces {
                let delta = json!({"type": "input_json_delta", "partial_json": piece});
                parts.content.push(block_delta(delta));
            }
            "tool_use"
        }
    };
    if *reply != Reply::Empty {
        let block_stop = json!({"type": "content_block_stop", "index": 0});
        parts
            .tail
            .push(sse_event("content_block_stop", &block_stop));
    }
    let delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": reply.completion_tokens()},
    });
    parts.tail.push(sse_event("message_delta", &delta));
    let end = json!({"type": "message_stop"});
    parts.tail.push(sse_event("message_stop", &end));
    parts
}

fn open_block(parts: &mut Parts, block: Value) {
    let start = json!({"type": "content_block_start", "index": 0, "content_block": block});
    parts.head.push(sse_event("content_block_start", &start));
    parts.head.push(sse_event("ping", &json!({"type": "ping"})));
}

fn block_delta(delta: Value) -> Bytes {
    let event = json!({"type": "content_block_delta", "index": 0, "delta": delta});
    sse_event("content_block_delta", &event)
}

// === model lists ===

/// `GET /models` in OpenAI's list shape.
pub(crate) fn model_list(models: &[String], owned_by: &str, created: u64) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": owned_by}))
        .collect();
    json!({"object": "list", "data": data})
}

/// `GET /v1/models` in Anthropic's paginated shape.
pub(crate) fn anthropic_model_list(models: &[String]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|id| {
            json!({
                "type": "model",
                "id": id,
                "display_name": id,
                "created_at": "2025-09-29T00:00:00Z",
            })
        })
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": models.first(),
        "last_id": models.last(),
    })
}

// === bodies ===

/// What a body does after its scripted chunks.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Ends normally.
    Done,
    /// Fails, so hyper aborts the connection mid-body (no terminating chunk, or fewer bytes
    /// than Content-Length): the client sees a body error.
    Abort,
    /// Never ends and never sends another byte; the connection stays open.
    Stall,
    /// Sends `bytes` at once and then every `every`, forever.
    Repeat { bytes: Bytes, every: Duration },
}

/// A body that sends `chunks`, then behaves as `ending` says.
pub(crate) fn scripted_body(chunks: Vec<Bytes>, ending: Ending) -> Body {
    let head = stream::iter(chunks.into_iter().map(Ok::<Bytes, io::Error>));
    let tail: BoxStream<'static, Result<Bytes, io::Error>> = match ending {
        Ending::Done => stream::empty().boxed(),
        Ending::Abort => stream::once(async {
            // Let hyper flush what was sent before the failure, so the client really sees
            // content and then a broken connection rather than nothing at all.
            tokio::task::yield_now().await;
            Err(io::Error::other("mock: connection cut mid-body"))
        })
        .boxed(),
        Ending::Stall => stream::pending().boxed(),
        Ending::Repeat { bytes, every } => stream::unfold(false, move |started| {
            let bytes = bytes.clone();
            async move {
                if started {
                    tokio::time::sleep(every).await;
                }
                Some((Ok(bytes), true))
            }
        })
        .boxed(),
    };
    Body::from_stream(head.chain(tail))
}

/// The first half of `bytes` (at least one byte short of the whole).
pub(crate) fn first_half(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&bytes[..bytes.len() / 2])
}

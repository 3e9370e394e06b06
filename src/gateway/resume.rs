//! Verified stream recovery (`stream_recovery = "verified"`, opt-in per gateway or route): when
//! a stream breaks after content reached the client — a cut, a stall past `idle`, an error event
//! — the answer is continued only where the continuation is provably seamless:
//!
//! 1. **Prefix continuation** on a target whose provider supports assistant prefill (catalog
//!    data, `provider::Prefill`): the request is sent again with the text already streamed as a
//!    trailing assistant message, and what the provider answers follows that text by
//!    construction.
//! 2. **Verified restart** elsewhere (or when the prefill was refused with a 4xx): the original
//!    request is sent again, its answer is buffered until its text has passed the bytes already
//!    sent, and it is forwarded only if it begins with exactly those bytes.
//!
//! The broken target is tried first (a cut is often a blip) unless the break made it failing (a
//! stall ejects it), then the route's other healthy targets, at most [`TARGETS_TRIED`] in all,
//! within the request's deadline. A stream that
//! carried tool-call or reasoning deltas, or more than one choice, is never recovered: a JSON
//! argument cannot be spliced verifiably. When nothing recovers it, the relay ends the stream with
//! its usual in-band error, naming what was tried.
//!
//! This module decides and performs the recovery attempts (through `upstream`); the relay owns
//! the client-facing stream and what it says about a recovery.

use std::sync::Arc;

use axum::body::Body;
use serde_json::{Map, Value, json};
use tokio::time::{Instant, timeout_at};

use super::Inner;
use super::breaker::Admission;
use super::budget::Reservation;
use super::request::ChatRequest;
use super::stream;
use super::upstream::{Attempt, RESPONSE_LIMIT, ServedBody, Upstream};
use crate::sse::{SseItem, SseReader};

/// Targets a broken stream may be continued on, the broken one included: each try may cost a
/// whole answer, so recovery stays a rescue, not a search.
pub const TARGETS_TRIED: usize = 2;

/// How an answer was continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Prefix,
    Restart,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Prefix => "prefix",
            Strategy::Restart => "restart",
        }
    }
}

/// The text streamed to the client so far, and whether it can be continued at all.
#[derive(Debug, Default)]
pub struct Transcript {
    pub text: String,
    /// False once a tool call, reasoning or a second choice was streamed.
    pub spliceable: bool,
}

impl Transcript {
    pub fn new() -> Transcript {
        Transcript {
            text: String::new(),
            spliceable: true,
        }
    }

    /// Takes in one forwarded item.
    pub fn observe(&mut self, item: &SseItem) {
        let SseItem::Event { data, .. } = item else {
            return;
        };
        if !data.contains("choices") {
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let Some(choices) = value.get("choices").and_then(Value::as_array) else {
            return;
        };
        for choice in choices {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                self.spliceable = false;
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            let present = |key: &str| {
                delta
                    .get(key)
                    .is_some_and(|v| !v.is_null() && v != "" && v != &json!([]))
            };
            if present("tool_calls")
                || present("function_call")
                || present("reasoning_content")
                || present("reasoning")
            {
                self.spliceable = false;
            }
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                self.text.push_str(text);
            }
        }
    }
}

/// What the relay keeps of a request whose stream may be recovered.
pub struct Resume {
    pub route: usize,
    /// Route position of the target streaming now.
    pub position: usize,
    /// The caller's request.
    pub request: Arc<ChatRequest>,
    pub deadline: Instant,
    /// The request's share of the body budget: the request is kept, so is its memory.
    pub _reservation: Reservation,
    pub sent: Transcript,
    /// Set once the stream was continued.
    pub recovered: Option<Recovered>,
}

/// A continuation in progress, for the usage rewrite and the final comment.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub strategy: Strategy,
    pub provider: String,
    /// Bytes of answer text the client had when the stream broke.
    pub after_bytes: usize,
    /// Tokens billed for the broken attempt, estimated: the prompt, and the text it streamed.
    pub paid_prompt: u64,
    pub paid_completion: u64,
}

/// A continued stream, ready for the relay.
pub struct Continued {
    /// Items to forward now (the part the client does not have yet).
    pub items: Vec<SseItem>,
    /// The rest of the answer, or `None` when it was complete already.
    pub live: Option<reqwest::Response>,
    pub reader: SseReader,
    /// Route position of the target that continues.
    pub position: usize,
}

/// Why one recovery try did not continue the stream.
enum Miss {
    /// The target answered the prefill with a 4xx: it does not support it (here).
    Refused(String),
    /// The restarted answer did not begin with the text already sent.
    Diverged(String),
    Failed(String),
}

impl Resume {
    /// Tries to continue the stream; `Err` names every try, for the client's error.
    pub async fn recover(&mut self, inner: &Arc<Inner>) -> Result<Continued, String> {
        if !self.sent.spliceable {
            return Err("not recovered: a tool call or reasoning was already streamed".into());
        }
        let route = inner.routes.route(self.route);
        let now = Instant::now();
        let admitted = |i: usize| route.targets[i].state.breaker.peek(now) != Admission::Rejected;
        // The broken target first while its breaker still admits it (a cut is often a blip);
        // one that the break made failing (a stall ejects) comes after the healthy others.
        let mut order: Vec<usize> = Vec::with_capacity(route.targets.len());
        if admitted(self.position) {
            order.push(self.position);
        }
        order.extend((0..route.targets.len()).filter(|&i| i != self.position && admitted(i)));
        if !admitted(self.position) {
            order.push(self.position);
        }
        let mut notes = Vec::new();
        for position in order.into_iter().take(TARGETS_TRIED) {
            let target = &route.targets[position];
            let up = &inner.upstreams[target.upstream];
            if up.prefill.is_some() {
                match self.prefix(inner, position).await {
                    Ok(continued) => return Ok(self.done(inner, continued, Strategy::Prefix)),
                    Err(miss) => {
                        let refused = matches!(miss, Miss::Refused(_));
                        notes.push(self.note(inner, position, Strategy::Prefix, miss));
                        if !refused {
                            continue;
                        }
                    }
                }
            }
            match self.restart(inner, position).await {
                Ok(continued) => return Ok(self.done(inner, continued, Strategy::Restart)),
                Err(miss) => notes.push(self.note(inner, position, Strategy::Restart, miss)),
            }
            if Instant::now() >= self.deadline {
                notes.push("the request's deadline passed".into());
                break;
            }
        }
        Err(format!("recovery failed: {}", notes.join("; ")))
    }

    fn done(&mut self, inner: &Inner, continued: Continued, strategy: Strategy) -> Continued {
        let target = &inner.routes.route(self.route).targets[continued.position];
        let provider = inner.upstreams[target.upstream].id.clone();
        inner
            .recoveries
            .count(&provider, strategy.as_str(), "recovered");
        tracing::info!(
            %provider,
            strategy = strategy.as_str(),
            after_bytes = self.sent.text.len(),
            "gateway: a broken stream was continued"
        );
        self.recovered = Some(Recovered {
            strategy,
            provider,
            after_bytes: self.sent.text.len(),
            paid_prompt: self.request.estimate_tokens(),
            paid_completion: (self.sent.text.len() as u64).div_ceil(4).max(1),
        });
        self.position = continued.position;
        continued
    }

    fn note(&self, inner: &Inner, position: usize, strategy: Strategy, miss: Miss) -> String {
        let target = &inner.routes.route(self.route).targets[position];
        let provider = &inner.upstreams[target.upstream].id;
        let (result, why) = match miss {
            Miss::Refused(why) => ("refused", why),
            Miss::Diverged(why) => ("diverged", why),
            Miss::Failed(why) => ("failed", why),
        };
        inner.recoveries.count(provider, strategy.as_str(), result);
        tracing::info!(%provider, strategy = strategy.as_str(), result, "gateway: stream recovery try: {why}");
        format!("{provider} ({}): {why}", strategy.as_str())
    }

    /// The request again, with the streamed text as the assistant's prefill.
    async fn prefix(&mut self, inner: &Arc<Inner>, position: usize) -> Result<Continued, Miss> {
        let target = &inner.routes.route(self.route).targets[position];
        let up = &inner.upstreams[target.upstream];
        let Some(prefill) = &up.prefill else {
            return Err(Miss::Refused("no prefill support".into()));
        };
        let mut request = self.request.tree().clone();
        let mut message = json!({"role": "assistant", "content": self.sent.text});
        if let Some(flag) = &prefill.flag {
            message[flag.as_str()] = Value::Bool(true);
        }
        match request.get_mut("messages") {
            Some(Value::Array(messages)) => messages.push(message),
            _ => return Err(Miss::Refused("the request has no messages".into())),
        }
        let body = up.body(
            &mut request,
            target.model_for(&self.request.model),
            &target.params,
        );
        let (items, live, reader) = match self.send(inner, position, up, body, true).await {
            Ok(answer) => answer,
            Err(miss) => return Err(miss),
        };
        let items = items.into_iter().filter(|item| !role_only(item)).collect();
        Ok(Continued {
            items,
            live,
            reader,
            position,
        })
    }

    /// The request again; forwarded only if its answer begins with the text already sent.
    async fn restart(&mut self, inner: &Arc<Inner>, position: usize) -> Result<Continued, Miss> {
        let target = &inner.routes.route(self.route).targets[position];
        let up = &inner.upstreams[target.upstream];
        let body = up.body_of(
            &self.request,
            target.model_for(&self.request.model),
            &target.params,
        );
        let (mut items, mut live, mut reader) = self.send(inner, position, up, body, false).await?;
        let sent = &self.sent.text;
        let mut got = Transcript::new();
        let mut seen = 0;
        loop {
            for item in &items[seen..] {
                got.observe(item);
            }
            seen = items.len();
            if !got.spliceable {
                return Err(Miss::Diverged("the new answer streams a tool call".into()));
            }
            if got.text.len() >= sent.len() {
                break;
            }
            let Some(response) = live.as_mut() else {
                break;
            };
            let until = self.deadline.min(Instant::now() + inner.timeouts.idle);
            match timeout_at(until, response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    if reader.push(&chunk, &mut items).is_err() {
                        return Err(Miss::Failed("the new answer's stream broke".into()));
                    }
                }
                Ok(Ok(None)) => {
                    let _ = reader.finish(&mut items);
                    live = None;
                }
                Ok(Err(_)) => return Err(Miss::Failed("the new answer's stream was cut".into())),
                Err(_) => return Err(Miss::Failed("the new answer went silent".into())),
            }
        }
        if !got.text.starts_with(sent.as_str()) {
            let same = common_prefix(&got.text, sent);
            return Err(Miss::Diverged(format!(
                "the new answer diverged after {same} of the {} bytes already sent",
                sent.len()
            )));
        }
        Ok(Continued {
            items: trim_sent(items, sent.len()),
            live,
            reader,
            position,
        })
    }

    /// One streaming attempt on `up` (to its prefill URL when `prefill`), until its first
    /// content: the items so far, the live rest (if any) and the reader.
    async fn send(
        &self,
        inner: &Arc<Inner>,
        position: usize,
        up: &Upstream,
        body: bytes::Bytes,
        prefill: bool,
    ) -> Result<(Vec<SseItem>, Option<reqwest::Response>, SseReader), Miss> {
        let target = &inner.routes.route(self.route).targets[position];
        let now = Instant::now();
        if target.state.breaker.peek(now) == Admission::Rejected && position != self.position {
            return Err(Miss::Failed("the target is failing".into()));
        }
        let attempt = up
            .attempt_to(
                &inner.client,
                prefill,
                body,
                true,
                &inner.timeouts,
                now,
                self.deadline,
            )
            .await;
        match attempt {
            Attempt::Served(served) => match served.body {
                ServedBody::Stream(held) => Ok((held.items, Some(held.response), held.reader)),
                ServedBody::Whole(response) => {
                    let bytes =
                        axum::body::to_bytes(Body::new(response.into_body()), RESPONSE_LIMIT)
                            .await
                            .map_err(|_| Miss::Failed("the new answer could not be read".into()))?;
                    let mut reader = SseReader::new();
                    let mut items = Vec::new();
                    let parsed = reader
                        .push(&bytes, &mut items)
                        .and_then(|()| reader.finish(&mut items));
                    if parsed.is_err() {
                        return Err(Miss::Failed("the new answer's stream broke".into()));
                    }
                    Ok((items, None, reader))
                }
            },
            Attempt::Failed(failure) => {
                inner.observe(target, &failure, now, 0);
                let status = failure.diagnosis.status.unwrap_or(0);
                let why = format!(
                    "{} ({})",
                    failure.diagnosis.verdict, failure.diagnosis.explanation
                );
                let client_error = (400..500).contains(&status) && status != 408 && status != 429;
                Err(if prefill && client_error {
                    Miss::Refused(format!("the prefill was refused: {why}"))
                } else {
                    Miss::Failed(why)
                })
            }
        }
    }

    /// Adds what the broken attempt was billed (estimated) to a usage object in `item`.
    pub fn adjust_usage(&self, item: &mut SseItem) {
        let Some(recovered) = &self.recovered else {
            return;
        };
        let SseItem::Event { data, .. } = item else {
            return;
        };
        if !data.contains("\"usage\"") {
            return;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let Some(usage) = value.get_mut("usage").and_then(Value::as_object_mut) else {
            return;
        };
        let add = |usage: &mut Map<String, Value>, key: &str, n: u64| {
            if let Some(v) = usage.get(key).and_then(Value::as_u64) {
                usage.insert(key.to_owned(), json!(v + n));
            }
        };
        add(usage, "prompt_tokens", recovered.paid_prompt);
        add(usage, "completion_tokens", recovered.paid_completion);
        add(
            usage,
            "total_tokens",
            recovered.paid_prompt + recovered.paid_completion,
        );
        *data = value.to_string();
    }

    /// The SSE comment that ends a recovered stream.
    pub fn comment(&self) -> Option<String> {
        self.recovered.as_ref().map(|r| {
            format!(
                "x-isdown-recovered: {} on {} after {} bytes; usage includes an estimate of \
                 the broken attempt ({} prompt + {} completion tokens)",
                r.strategy.as_str(),
                r.provider,
                r.after_bytes,
                r.paid_prompt,
                r.paid_completion
            )
        })
    }
}

/// A chunk that only opens the assistant's message (`delta: {role, content: ""}`): the client
/// has it already.
fn role_only(item: &SseItem) -> bool {
    let SseItem::Event { data, .. } = item else {
        return false;
    };
    if !data.contains("\"role\"") {
        return false;
    }
    let choices = stream::choices(data);
    !choices.is_empty()
        && choices.iter().all(|c| {
            c.get("finish_reason").is_none_or(Value::is_null)
                && c.get("delta").and_then(Value::as_object).is_some_and(|d| {
                    d.iter()
                        .all(|(k, v)| k == "role" || v.is_null() || v == "" || v == &json!([]))
                })
        })
}

/// Items of a restarted answer without the first `sent` bytes of its text (the client has
/// them): chunks wholly inside are dropped, the one that straddles the boundary keeps its rest.
fn trim_sent(items: Vec<SseItem>, sent: usize) -> Vec<SseItem> {
    let mut skipped = 0;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if role_only(&item) {
            continue;
        }
        if skipped >= sent {
            out.push(item);
            continue;
        }
        let SseItem::Event { event, data } = &item else {
            out.push(item);
            continue;
        };
        let Ok(mut value) = serde_json::from_str::<Value>(data) else {
            out.push(item);
            continue;
        };
        let Some(delta) = value.pointer_mut("/choices/0/delta") else {
            out.push(item);
            continue;
        };
        let Some(text) = delta.get("content").and_then(Value::as_str) else {
            out.push(item);
            continue;
        };
        let left = sent - skipped;
        if text.len() <= left {
            skipped += text.len();
            // Nothing new in it, unless it also finishes the answer.
            let finishes = value
                .pointer("/choices/0/finish_reason")
                .is_some_and(|f| !f.is_null());
            if !finishes {
                continue;
            }
            value["choices"][0]["delta"]["content"] = json!("");
        } else {
            // `sent` ends on a character boundary of the new text: it begins with those bytes.
            let rest = text.get(left..).unwrap_or_default().to_owned();
            skipped = sent;
            value["choices"][0]["delta"]["content"] = json!(rest);
        }
        if let Some(delta) = value
            .pointer_mut("/choices/0/delta")
            .and_then(Value::as_object_mut)
        {
            delta.remove("role");
        }
        out.push(SseItem::Event {
            event: event.clone(),
            data: value.to_string(),
        });
    }
    out
}

/// Bytes two texts share from the start (on a character boundary).
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::event;

    fn chunk(delta: Value, finish: Value) -> SseItem {
        event(
            &json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                .to_string(),
        )
    }

    fn text_of(items: &[SseItem]) -> String {
        let mut t = Transcript::new();
        for item in items {
            t.observe(item);
        }
        t.text
    }

    #[test]
    fn a_transcript_keeps_the_text_and_refuses_tool_calls_and_reasoning() {
        let mut t = Transcript::new();
        t.observe(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ));
        t.observe(&chunk(json!({"content": "pon"}), Value::Null));
        assert_eq!((t.text.as_str(), t.spliceable), ("pon", true));
        t.observe(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a"}}]}),
            Value::Null,
        ));
        assert!(!t.spliceable);
        let mut r = Transcript::new();
        r.observe(&chunk(json!({"reasoning_content": "hmm"}), Value::Null));
        assert!(!r.spliceable);
    }

    #[test]
    fn trimming_drops_what_was_sent_and_keeps_the_rest_of_a_straddling_chunk() {
        let items = vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "p"}), Value::Null),
            chunk(json!({"content": "ong"}), Value::Null),
            chunk(json!({"content": "!"}), Value::Null),
            chunk(json!({}), json!("stop")),
        ];
        let trimmed = trim_sent(items, 3);
        assert_eq!(text_of(&trimmed), "g!");
        assert_eq!(trimmed.len(), 3, "{trimmed:?}");
    }

    #[test]
    fn role_only_chunks_are_recognised() {
        assert!(role_only(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null
        )));
        assert!(!role_only(&chunk(
            json!({"role": "assistant", "content": "g"}),
            Value::Null
        )));
        assert!(!role_only(&chunk(json!({}), json!("stop"))));
    }

    #[test]
    fn common_prefix_counts_bytes_on_character_boundaries() {
        assert_eq!(common_prefix("pink", "pon"), 1);
        assert_eq!(common_prefix("pong", "pon"), 3);
        assert_eq!(common_prefix("été", "étx"), 3);
    }
}

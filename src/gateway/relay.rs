//! The streaming relay: sends a stream on to the client once its first content chunk has
//! arrived, chunk by chunk, and turns every way it can fail from then on into an OpenAI-style
//! in-band error event.
//!
//! The contract (README, "Streaming"): after the first content chunk the gateway never switches
//! target silently. A cut (a reset, or an EOF before the answer finished), a stall longer than the idle
//! timeout, the request's deadline or the provider's own in-stream error ends the stream with
//! `data: {"error":{...}}` and no `[DONE]`, so SDKs raise instead of returning truncated text.
//! A stream that ended cleanly (EOF) after a chunk with a `finish_reason` is complete even
//! without `[DONE]` (some providers and proxies never send it): it is forwarded as it is, and
//! the relay adds the `data: [DONE]` the client expects. Keep-alive comments and usage chunks
//! pass through. Items are judged and re-framed by `stream` from the one SSE reader's output
//! (never split mid-event); nothing is collected. When the stream ends, its verdict goes to the
//! breaker, metrics and passive health like any attempt's.
//!
//! With `stream_recovery = "verified"` (the route's [`Resume`]), a break after content is
//! reported as above and then handed to `resume`, which may continue the answer on the same or
//! another target; the relay then forwards the continuation (usage rewritten, a final
//! `: x-isdown-recovered` comment before `[DONE]`), or ends with the usual error, naming what
//! recovery tried. Without it, nothing here changes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use reqwest::header::HeaderMap;
use tokio::time::{Instant, timeout_at};

use super::Inner;
use super::resume::Resume;
use super::stream::{
    DONE, Held, drain, error_event, failure_in, finishes, is_done, serialize, write_item,
};
use crate::sse::{SseItem, SseReader};
use crate::verdict::{
    Expect, StreamEnd, StreamSummary, TransportFailure, Verdict, classify_stream,
};

/// Who to tell when the stream ends.
pub struct Finish {
    /// The table the request started on.
    pub inner: std::sync::Arc<Inner>,
    pub upstream: usize,
    pub state: std::sync::Arc<super::target::TargetState>,
    pub started: Instant,
}

struct Relay {
    /// `None` once handed to [`drain`] after a clean end.
    live: Option<reqwest::Response>,
    reader: SseReader,
    items: Vec<SseItem>,
    idle: Duration,
    deadline: Instant,
    /// `None` once the stream's verdict was reported (and the stream ended).
    finish: Option<Finish>,
    /// A chunk with a (non-failure) `finish_reason` has passed: the answer is complete.
    finished: bool,
    /// The table the request started on (recovery reads its routes).
    inner: Arc<Inner>,
    /// Set when the route recovers broken streams (`stream_recovery = "verified"`).
    resume: Option<Box<Resume>>,
}

/// What ended the upstream stream early.
enum Cause {
    /// A cut, a stall, the deadline, or bytes that are not SSE.
    End {
        end: StreamEnd,
        code: &'static str,
        message: &'static str,
        budget_cut: bool,
    },
    /// The provider's own error event or failure `finish_reason`.
    Item {
        item: SseItem,
        has_error_object: bool,
    },
}

/// Where forwarding a batch of items left the stream.
/// What one read from the provider gives the client.
enum Step {
    Send(Bytes),
    /// Nothing to send yet: read again.
    Again,
    /// The stream broke after `out` (see [`Relay::broke`]).
    Broke(BytesMut, Cause),
}

enum Forwarded {
    More,
    Done(Bytes),
    Broke(Cause),
}

/// The client's response: the held items at once, then the rest as it comes. With `resume`,
/// a stream that breaks after content may be continued (see `resume`).
pub fn response(
    held: Held,
    finish: Finish,
    idle: Duration,
    deadline: Instant,
    mut resume: Option<Box<Resume>>,
) -> Response {
    if let Some(resume) = resume.as_mut() {
        for item in &held.items {
            resume.sent.observe(item);
        }
    }
    let first = serialize(&held.items);
    let relay = Relay {
        live: Some(held.response),
        reader: held.reader,
        items: Vec::new(),
        idle,
        deadline,
        finished: held.items.iter().any(finishes),
        inner: finish.inner.clone(),
        finish: Some(finish),
        resume,
    };
    let rest = stream::unfold(relay, |mut relay| async move {
        let bytes = relay.next().await?;
        Some((Ok::<Bytes, Infallible>(bytes), relay))
    });
    let body = stream::once(async move { Ok::<Bytes, Infallible>(first) }).chain(rest);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

impl Relay {
    /// The next bytes for the client, or `None` once the stream has ended.
    async fn next(&mut self) -> Option<Bytes> {
        self.finish.as_ref()?;
        loop {
            match self.read().await? {
                Step::Send(bytes) => return Some(bytes),
                Step::Again => {}
                // `None`: continued on a recovery; read on.
                Step::Broke(out, cause) => {
                    if let Some(bytes) = self.broke(out, cause).await {
                        return Some(bytes);
                    }
                }
            }
        }
    }

    /// One read from the provider and what it means for the client; `None` once the stream
    /// has ended.
    async fn read(&mut self) -> Option<Step> {
        let until = self.deadline.min(Instant::now() + self.idle);
        let live = self.live.as_mut()?;
        let mut out = BytesMut::new();
        let chunk = match timeout_at(until, live.chunk()).await {
            Err(_) => {
                let budget_cut = Instant::now() >= self.deadline;
                let (code, message) = if budget_cut {
                    (
                        "deadline_exceeded",
                        "the request's deadline passed mid-stream",
                    )
                } else {
                    ("stream_stalled", "the provider went silent mid-stream")
                };
                let cause = Cause::End {
                    end: StreamEnd::IdleTimeout,
                    code,
                    message,
                    budget_cut,
                };
                return Some(Step::Broke(out, cause));
            }
            Ok(Err(e)) => {
                let end = StreamEnd::Transport(crate::transport::failure(
                    &e,
                    crate::verdict::TimeoutPhase::Idle,
                ));
                return Some(Step::Broke(out, cut(end)));
            }
            Ok(Ok(None)) => {
                let mut items = std::mem::take(&mut self.items);
                if self.reader.finish(&mut items).is_err() {
                    items.clear();
                }
                match self.forward(items, &mut out) {
                    Forwarded::Done(bytes) => return Some(Step::Send(bytes)),
                    Forwarded::Broke(cause) => return Some(Step::Broke(out, cause)),
                    Forwarded::More => {}
                }
                if self.finished {
                    // Complete, but the provider sent no `[DONE]`: the client still expects
                    // one (SDKs stop on it).
                    self.end_comment(&mut out);
                    out.put_slice(DONE);
                    self.report(Verdict::Up, None, false);
                    self.live = None;
                    return Some(Step::Send(out.freeze()));
                }
                return Some(Step::Broke(out, cut(StreamEnd::Eof)));
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        let mut items = std::mem::take(&mut self.items);
        if let Err(e) = self.reader.push(&chunk, &mut items) {
            let end = StreamEnd::Transport(TransportFailure::Other(e.to_string()));
            return Some(Step::Broke(out, cut(end)));
        }
        match self.forward(items, &mut out) {
            Forwarded::Done(bytes) => return Some(Step::Send(bytes)),
            Forwarded::Broke(cause) => return Some(Step::Broke(out, cause)),
            Forwarded::More => {}
        }
        if out.is_empty() {
            Some(Step::Again)
        } else {
            Some(Step::Send(out.freeze()))
        }
    }

    /// Writes `items` to `out` until one of them ends the stream.
    fn forward(&mut self, mut items: Vec<SseItem>, out: &mut BytesMut) -> Forwarded {
        let mut drained = items.drain(..);
        while let Some(mut item) = drained.next() {
            if let Some(has_error_object) = failure_in(&item) {
                drop(drained);
                return Forwarded::Broke(Cause::Item {
                    item,
                    has_error_object,
                });
            }
            if is_done(&item) {
                self.end_comment(out);
                write_item(out, &item);
                self.report(Verdict::Up, None, false);
                if let Some(live) = self.live.take() {
                    drain(live);
                }
                return Forwarded::Done(std::mem::take(out).freeze());
            }
            if let Some(resume) = self.resume.as_mut() {
                resume.adjust_usage(&mut item);
                resume.sent.observe(&item);
            }
            write_item(out, &item);
            self.finished |= finishes(&item);
        }
        drop(drained);
        // Keep the allocation for the next chunk.
        self.items = items;
        Forwarded::More
    }

    /// The upstream stream broke: reports it, then continues it on a recovery (returning
    /// `None` to read on, after writing what the continuation has so far into the next chunk)
    /// or ends the client's stream with the in-band error.
    async fn broke(&mut self, mut out: BytesMut, cause: Cause) -> Option<Bytes> {
        let (diagnosis, budget_cut) = match &cause {
            Cause::End {
                end, budget_cut, ..
            } => (
                classify_stream(
                    &StreamSummary {
                        status: 200,
                        headers: &HeaderMap::new(),
                        items: &[],
                        end,
                    },
                    Expect::Chat,
                ),
                *budget_cut,
            ),
            Cause::Item { item, .. } => (
                classify_stream(
                    &StreamSummary {
                        status: 200,
                        headers: &HeaderMap::new(),
                        items: std::slice::from_ref(item),
                        end: &StreamEnd::Eof,
                    },
                    Expect::Chat,
                ),
                false,
            ),
        };
        self.report(diagnosis.verdict, diagnosis.blame, budget_cut);
        let mut notes = None;
        let recoverable = !budget_cut && Instant::now() < self.deadline;
        if let Some(resume) = self
            .resume
            .as_mut()
            .filter(|r| recoverable && r.recovered.is_none())
        {
            // The broken response is dropped (cancelled) before anything else is sent.
            self.live = None;
            match resume.recover(&self.inner).await {
                Ok(continued) => {
                    let route = self.inner.routes.route(resume.route);
                    let target = &route.targets[continued.position];
                    self.finish = Some(Finish {
                        inner: self.inner.clone(),
                        upstream: target.upstream,
                        state: target.state.clone(),
                        started: Instant::now(),
                    });
                    self.live = continued.live;
                    self.reader = continued.reader;
                    self.finished = false;
                    return match self.forward(continued.items, &mut out) {
                        Forwarded::Done(bytes) => Some(bytes),
                        Forwarded::Broke(cause) => Box::pin(self.broke(out, cause)).await,
                        Forwarded::More if self.live.is_none() => {
                            // The continuation was complete at once.
                            if self.finished {
                                self.end_comment(&mut out);
                                out.put_slice(DONE);
                                self.report(Verdict::Up, None, false);
                                Some(out.freeze())
                            } else {
                                Box::pin(self.broke(out, cut(StreamEnd::Eof))).await
                            }
                        }
                        Forwarded::More if out.is_empty() => None,
                        Forwarded::More => Some(out.freeze()),
                    };
                }
                Err(why) => {
                    tracing::info!("gateway: a broken stream was not recovered: {why}");
                    notes = Some(why);
                }
            }
        }
        let with_notes = |message: &str| match &notes {
            Some(why) => format!("{message} ({why})"),
            None => message.to_owned(),
        };
        match cause {
            Cause::End { code, message, .. } => {
                out.put_slice(&error_event(&with_notes(message), code));
            }
            Cause::Item {
                item,
                has_error_object,
            } => {
                write_item(&mut out, &item);
                if !has_error_object {
                    out.put_slice(&error_event(
                        &with_notes(&diagnosis.explanation),
                        diagnosis.verdict.as_str(),
                    ));
                }
            }
        }
        // Nothing more: the client's stream ends here.
        self.finish = None;
        self.live = None;
        Some(out.freeze())
    }

    /// The final comment of a recovered stream.
    fn end_comment(&self, out: &mut BytesMut) {
        if let Some(comment) = self.resume.as_ref().and_then(|r| r.comment()) {
            write_item(out, &SseItem::Comment(comment));
        }
    }

    fn report(&mut self, verdict: Verdict, blame: Option<crate::verdict::Blame>, budget_cut: bool) {
        let Some(finish) = self.finish.take() else {
            return;
        };
        let inner = &finish.inner;
        let up = &inner.upstreams[finish.upstream];
        let latency = finish.started.elapsed();
        inner.record(up, &finish.state, verdict, blame, latency, budget_cut);
        if verdict.is_healthy() {
            tracing::debug!(provider = %up.id, "gateway stream finished");
        } else {
            tracing::info!(provider = %up.id, %verdict, "gateway stream failed after its first chunk");
        }
    }
}

/// A cut stream (connection, EOF or framing): the same code and message whatever the end.
fn cut(end: StreamEnd) -> Cause {
    Cause::End {
        end,
        code: "stream_interrupted",
        message: CUT,
        budget_cut: false,
    }
}

const CUT: &str = "the provider's stream ended before it was complete; the answer is truncated";

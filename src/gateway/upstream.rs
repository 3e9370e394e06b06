//! One upstream target and one attempt on it: build the body (model rename, per-target
//! parameters, request fixes), send it with the attempt's deadlines, and hand what came back to
//! the classifier.
//!
//! Non-streaming answers are read whole (they must be, to tell a correct answer from an error in
//! a 200) up to [`RESPONSE_LIMIT`]. Streams are read only until the first content chunk — the
//! point after which the gateway may no longer switch targets — and then handed to `relay` with
//! the reader's state. Both wires are OpenAI Chat Completions: providers of `anthropic` style
//! are reached through Anthropic's OpenAI-compatible endpoint (`{base}/v1/chat/completions`).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use reqwest::{Client, Url};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tokio::time::{Instant, timeout_at};

use super::error::ApiError;
use super::fixes::{Fix, fixed};
use super::request::ChatRequest;
use super::settings::GatewayTimeouts;
use super::stream::{self, Held};
use super::telemetry::TargetStats;
use crate::provider::{Provider, WireStyle};
use crate::sse::{SseItem, SseReader};
use crate::verdict::{
    BODY_LIMIT, Diagnosis, Expect, HttpAnswer, StreamEnd, StreamSummary, TimeoutPhase,
    TransportFailure, chunk_has_content, classify_http, classify_stream, classify_transport,
};

/// 64 MiB: far above any chat completion (a 1M-token context answers with at most a few hundred
/// KB), small enough that a broken upstream cannot exhaust memory.
pub const RESPONSE_LIMIT: usize = 64 * 1024 * 1024;

/// A provider as the gateway sends to it.
pub struct Upstream {
    pub id: String,
    pub id_header: HeaderValue,
    url: Url,
    auth: Option<HeaderValue>,
    headers: Vec<(HeaderName, HeaderValue)>,
    pub context_window: Option<u64>,
    /// Assistant prefill support (stream recovery), and where such requests go when not to
    /// `url`. Boxed: few providers have it, and inline the two were ~200 bytes in every
    /// upstream.
    pub prefill: Option<Box<crate::provider::Prefill>>,
    prefill_url: Option<Box<Url>>,
    fixes: Arc<[Fix]>,
    pub stats: TargetStats,
    /// When a setup problem was last logged, to log it once per cool-down, not per request.
    setup_warned: Mutex<Option<Instant>>,
}

/// What one attempt produced.
pub enum Attempt {
    Served(Served),
    Failed(Failure),
}

pub struct Served {
    pub diagnosis: Diagnosis,
    pub body: ServedBody,
}

pub enum ServedBody {
    /// A whole answer, ready to send.
    Whole(Response),
    /// A stream whose first content chunk has arrived; `relay` sends the rest.
    Stream(Held),
}

pub struct Failure {
    pub diagnosis: Diagnosis,
    /// No status line arrived: a retry cannot duplicate work.
    pub before_any_byte: bool,
    /// The request's overall deadline (shortened by the client, or nearly spent) was shorter
    /// than the attempt's own: a timeout then says less about the target.
    pub budget_cut: bool,
    /// The provider's answer, for passing a caller's error back unchanged.
    answer: Option<Answer>,
}

struct Answer {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

const EVENT_STREAM: &str = "text/event-stream";

impl Answer {
    /// A whole answer, judged: served as it came when healthy (with `default_type` when it named
    /// none), otherwise kept as the failure's answer — nothing of it has reached the client.
    fn judged(self, diagnosis: Diagnosis, default_type: &'static str) -> Attempt {
        if !diagnosis.verdict.is_healthy() {
            return Attempt::Failed(Failure {
                diagnosis,
                before_any_byte: false,
                budget_cut: false,
                answer: Some(self),
            });
        }
        let mut answer = Response::new(Body::from(self.body));
        *answer.status_mut() = self.status;
        let content_type = self
            .content_type
            .unwrap_or_else(|| HeaderValue::from_static(default_type));
        answer.headers_mut().insert(CONTENT_TYPE, content_type);
        Attempt::Served(Served {
            diagnosis,
            body: ServedBody::Whole(answer),
        })
    }
}

impl Upstream {
    pub fn new(provider: &Provider, fixes: Arc<[Fix]>, stats: TargetStats) -> Upstream {
        let url = chat_completions_url(provider);
        let prefill_url = provider
            .prefill
            .as_ref()
            .and_then(|p| p.base_url.clone())
            .map(|base_url| {
                Box::new(chat_completions_url(&Provider {
                    base_url,
                    ..provider.clone()
                }))
            });
        let auth = provider.api_key.as_ref().and_then(|key| {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).ok()?;
            value.set_sensitive(true);
            Some(value)
        });
        Upstream {
            id: provider.id.clone(),
            id_header: HeaderValue::from_str(&provider.id)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            url,
            auth,
            headers: provider.headers.clone(),
            context_window: provider.context_window,
            prefill: provider.prefill.clone().map(Box::new),
            prefill_url,
            fixes,
            stats,
            setup_warned: Mutex::new(None),
        }
    }

    /// The request body for this target: `model` set, fixes and per-target parameters applied.
    /// The caller's request is copied only when a fix or a parameter changes it.
    pub fn body(
        &self,
        request: &mut Map<String, Value>,
        model: &str,
        params: &Map<String, Value>,
    ) -> Bytes {
        request.insert("model".to_owned(), Value::String(model.to_owned()));
        let fixed = fixed(&self.fixes, request);
        let bytes = if params.is_empty() {
            serde_json::to_vec(&*fixed)
        } else {
            let mut copy = fixed.into_owned();
            for (key, value) in params {
                copy.insert(key.clone(), value.clone());
            }
            serde_json::to_vec(&copy)
        };
        // Serialising a map of JSON values cannot fail (string keys, no custom types).
        Bytes::from(bytes.unwrap_or_default())
    }

    /// The body of `request` for this target (see `request::ChatRequest::body_for`).
    pub fn body_of(
        &self,
        request: &ChatRequest,
        model: &str,
        params: &Map<String, Value>,
    ) -> Bytes {
        request.body_for(model, &self.fixes, params)
    }

    /// The fixes applied to requests bound for this target (the gateway's lint reads the body
    /// each target would get).
    pub fn fixes(&self) -> &[Fix] {
        &self.fixes
    }

    /// True at most once per `every`.
    pub fn setup_warning_due(&self, now: Instant, every: std::time::Duration) -> bool {
        let Ok(mut last) = self.setup_warned.try_lock() else {
            return false;
        };
        if last.is_some_and(|at| now.saturating_duration_since(at) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn request(&self, client: &Client, prefill: bool, body: Bytes) -> reqwest::RequestBuilder {
        let url = match (prefill, &self.prefill_url) {
            (true, Some(elsewhere)) => elsewhere,
            _ => &self.url,
        };
        let mut builder = client
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        builder.body(body)
    }

    /// One attempt, within the attempt's deadlines and the request's `deadline`.
    pub async fn attempt(
        &self,
        client: &Client,
        body: Bytes,
        stream: bool,
        timeouts: &GatewayTimeouts,
        now: Instant,
        deadline: Instant,
    ) -> Attempt {
        self.attempt_to(client, false, body, stream, timeouts, now, deadline)
            .await
    }

    /// As [`Upstream::attempt`]; `prefill`: to the provider's prefill URL.
    #[allow(clippy::too_many_arguments)]
    pub async fn attempt_to(
        &self,
        client: &Client,
        prefill: bool,
        body: Bytes,
        stream: bool,
        timeouts: &GatewayTimeouts,
        now: Instant,
        deadline: Instant,
    ) -> Attempt {
        let limit = if stream {
            timeouts.first_token
        } else {
            timeouts.request
        };
        let mut attempt = self
            .attempt_until(client, prefill, body, stream, deadline.min(now + limit))
            .await;
        if let Attempt::Failed(failure) = &mut attempt {
            failure.budget_cut = deadline < now + limit;
        }
        attempt
    }

    async fn attempt_until(
        &self,
        client: &Client,
        prefill: bool,
        body: Bytes,
        stream: bool,
        until: Instant,
    ) -> Attempt {
        let phase = if stream {
            TimeoutPhase::FirstToken
        } else {
            TimeoutPhase::Response
        };
        let mut response = match timeout_at(until, self.request(client, prefill, body).send()).await
        {
            Err(_) => return transport(TransportFailure::Timeout { phase }, true),
            Ok(Err(e)) => {
                let phase = if e.is_connect() {
                    TimeoutPhase::Connect
                } else {
                    phase
                };
                return transport(crate::transport::failure(&e, phase), true);
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        if stream && status.is_success() {
            return first_content(response, headers, until).await;
        }
        let limit = if status.is_success() {
            RESPONSE_LIMIT
        } else {
            BODY_LIMIT
        };
        let (body, truncated) = match read_all(&mut response, until, limit).await {
            Ok(read) => read,
            Err(failure) => return transport(failure, false),
        };
        let diagnosis = classify_http(
            &HttpAnswer {
                status: status.as_u16(),
                headers: &headers,
                body: &body,
                truncated,
            },
            Expect::Chat,
        );
        let answer = Answer {
            status,
            content_type: headers.get(CONTENT_TYPE).cloned(),
            body,
        };
        answer.judged(diagnosis, "application/json")
    }
}

/// `POST` target of a provider's chat completions.
fn chat_completions_url(provider: &Provider) -> Url {
    match provider.style {
        WireStyle::Openai => crate::provider::request::chat_url(provider),
        // Anthropic's OpenAI SDK compatibility endpoint: same wire as every other target, so
        // streams, tools and errors need no translation.
        WireStyle::Anthropic => {
            let mut url = provider.base_url.clone();
            let path = format!(
                "{}/v1/chat/completions",
                provider.base_url.path().trim_end_matches('/')
            );
            url.set_path(&path);
            url
        }
    }
}

impl Failure {
    /// The provider's answer, unchanged but for any configured secret quoted in it.
    pub fn passthrough(self) -> Response {
        let Some(answer) = self.answer else {
            let error = ApiError::upstream_failed(
                StatusCode::BAD_GATEWAY,
                self.diagnosis.verdict.as_str(),
                self.diagnosis.explanation,
            );
            return error.into_response();
        };
        // Every configured secret, not only this target's key: a relay may quote another.
        let body = match std::str::from_utf8(&answer.body) {
            Ok(text) => match crate::secret::scrub_registered(text) {
                std::borrow::Cow::Owned(clean) => Bytes::from(clean),
                std::borrow::Cow::Borrowed(_) => answer.body,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(&answer.body);
                Bytes::from(crate::secret::scrub_registered(&text).into_owned())
            }
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = answer.status;
        if let Some(content_type) = answer.content_type {
            response.headers_mut().insert(CONTENT_TYPE, content_type);
        }
        response
    }
}

fn transport(failure: TransportFailure, before_any_byte: bool) -> Attempt {
    Attempt::Failed(Failure {
        diagnosis: classify_transport(&failure),
        before_any_byte,
        budget_cut: false,
        answer: None,
    })
}

/// Reads a whole body up to `limit` bytes before `until`.
async fn read_all(
    response: &mut reqwest::Response,
    until: Instant,
    limit: usize,
) -> Result<(Bytes, bool), TransportFailure> {
    // The common case, a body in one chunk, is passed on without a copy.
    let mut first: Option<Bytes> = None;
    let mut body = BytesMut::new();
    loop {
        let chunk = match timeout_at(until, response.chunk()).await {
            Err(_) => {
                return Err(TransportFailure::Timeout {
                    phase: TimeoutPhase::Response,
                });
            }
            Ok(Err(e)) => return Err(crate::transport::failure(&e, TimeoutPhase::Response)),
            Ok(Ok(None)) if body.is_empty() => return Ok((first.unwrap_or_default(), false)),
            Ok(Ok(None)) => return Ok((body.freeze(), false)),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if first.is_none() && body.is_empty() && chunk.len() <= limit {
            first = Some(chunk);
            continue;
        }
        if let Some(first) = first.take() {
            body.extend_from_slice(&first);
        }
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body.freeze(), true));
        }
        body.extend_from_slice(&chunk);
    }
}

/// Reads a 2xx stream until its first content chunk (then it is served), or until it fails
/// before one (then it is classified and the gateway may try elsewhere).
async fn first_content(
    mut response: reqwest::Response,
    headers: HeaderMap,
    until: Instant,
) -> Attempt {
    let mut reader = SseReader::new();
    let mut held: Vec<SseItem> = Vec::new();
    let mut fresh: Vec<SseItem> = Vec::new();
    let end = loop {
        let chunk = match timeout_at(until, response.chunk()).await {
            Err(_) => {
                return transport(
                    TransportFailure::Timeout {
                        phase: TimeoutPhase::FirstToken,
                    },
                    false,
                );
            }
            Ok(Err(e)) => {
                break StreamEnd::Transport(crate::transport::failure(&e, TimeoutPhase::Idle));
            }
            Ok(Ok(None)) => {
                if let Err(e) = reader.finish(&mut fresh) {
                    break StreamEnd::Transport(TransportFailure::Other(e.to_string()));
                }
                held.append(&mut fresh);
                break StreamEnd::Eof;
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        if let Err(e) = reader.push(&chunk, &mut fresh) {
            break StreamEnd::Transport(TransportFailure::Other(e.to_string()));
        }
        let mut content = false;
        let mut stop = false;
        for item in fresh.drain(..) {
            content |= chunk_has_content(&item);
            stop |= stream::is_done(&item) || stream::failure_in(&item).is_some();
            held.push(item);
        }
        if content && !stop {
            return Attempt::Served(Served {
                diagnosis: Diagnosis::new(crate::verdict::Verdict::Up, "first content", ""),
                body: ServedBody::Stream(Held {
                    items: held,
                    reader,
                    response,
                }),
            });
        }
        if stop {
            break StreamEnd::Eof;
        }
    };
    let diagnosis = classify_stream(
        &StreamSummary {
            status: 200,
            headers: &headers,
            items: &held,
            end: &end,
        },
        Expect::Chat,
    );
    // A complete answer (with its end marker) before or with its first content chunk is served
    // whole.
    if diagnosis.verdict.is_healthy() && held.last().is_some_and(stream::is_done) {
        stream::drain(response);
    }
    let answer = Answer {
        status: StatusCode::OK,
        content_type: Some(HeaderValue::from_static(EVENT_STREAM)),
        body: stream::serialize(&held),
    };
    answer.judged(diagnosis, EVENT_STREAM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::telemetry::GatewayMetrics;
    use crate::provider::Prefill;

    fn upstream(prefill: Option<Prefill>) -> Upstream {
        let provider = Provider {
            prefill,
            ..Provider::for_test("deepseek")
        };
        let metrics = GatewayMetrics::register(&crate::metrics::Metrics::new());
        Upstream::new(&provider, Arc::from([]), metrics.target("deepseek"))
    }

    fn url_of(up: &Upstream, prefill: bool) -> String {
        let request = up
            .request(&Client::new(), prefill, Bytes::new())
            .build()
            .expect("a request");
        request.url().to_string()
    }

    /// A prefill request goes to the provider's other base URL when it has one (DeepSeek's
    /// `/beta`), else where every request goes.
    #[test]
    fn prefill_requests_go_to_the_prefill_base_url_when_there_is_one() {
        let beta = upstream(Some(Prefill {
            flag: Some("prefix".to_owned()),
            base_url: Some(Url::parse("http://127.0.0.1:9/beta").expect("a URL")),
        }));
        assert_eq!(
            url_of(&beta, false),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        assert_eq!(
            url_of(&beta, true),
            "http://127.0.0.1:9/beta/chat/completions"
        );

        let same = upstream(Some(Prefill {
            flag: Some("partial".to_owned()),
            base_url: None,
        }));
        assert_eq!(
            url_of(&same, true),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        assert_eq!(
            url_of(&upstream(None), true),
            "http://127.0.0.1:9/v1/chat/completions"
        );
    }
}

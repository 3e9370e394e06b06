//! Probes: one measured question to a provider, answered by a [`Diagnosis`].
//!
//! Four kinds: `reachability` (GET models; needs no key), `chat` (a one-token completion),
//! `stream` (SSE, time to first token, cut and stalled streams) and `tools` (one tool; the reply
//! must hold a well-formed call). Each records DNS, connect, TLS, first-byte and total time under
//! one per-probe deadline. Probes own the I/O; every judgement is the classifier's. The same
//! exchange also sends a caller's own request body unchanged ([`Prober::send`], for
//! `isdown check --request`), so a user's request is read and judged exactly like a probe.

pub mod phases;
pub mod read;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio_rustls::rustls::ClientConfig;

use crate::provider::Provider;
use crate::provider::request::{self, ChatPayload};
use crate::verdict::{
    Diagnosis, Expect, HttpAnswer, StreamSummary, Verdict, classify_http, classify_stream,
    classify_transport, degraded_if_slow,
};
pub use phases::Phases;
use read::{read_body, read_stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Reachability,
    Chat,
    Stream,
    Tools,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 4] = [
        ProbeKind::Reachability,
        ProbeKind::Chat,
        ProbeKind::Stream,
        ProbeKind::Tools,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Reachability => "reachability",
            ProbeKind::Chat => "chat",
            ProbeKind::Stream => "stream",
            ProbeKind::Tools => "tools",
        }
    }

    /// Only reachability works without a key.
    pub fn needs_key(self) -> bool {
        self != ProbeKind::Reachability
    }
}

/// Timings of one probe, in milliseconds; `None` for phases that did not run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    #[serde(flatten)]
    pub phases: Phases,
    pub first_byte_ms: Option<f64>,
    pub total_ms: Option<f64>,
}

/// The outcome of one probe.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub provider: String,
    pub url: String,
    /// The model asked for; `None` for reachability.
    pub model: Option<String>,
    pub kind: ProbeKind,
    pub diagnosis: Diagnosis,
    /// Whole exchange, request to last byte; `None` when no answer came.
    pub latency: Option<Duration>,
    /// Stream probes: request to first content chunk.
    pub ttft: Option<Duration>,
    pub timings: Timings,
}

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Runs probes; one per process is enough (it pools connections and holds the TLS config).
#[derive(Clone)]
pub struct Prober {
    client: reqwest::Client,
    tls: Arc<ClientConfig>,
}

impl Prober {
    pub fn new() -> Result<Prober, ProbeError> {
        let client = crate::transport::client_builder()
            // Our own deadlines govern; reqwest's would report a less precise phase.
            .connect_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Prober {
            client,
            tls: phases::tls_config()?,
        })
    }

    /// Times the connection phases of a provider once, for all its probes of this run.
    pub async fn phases(
        &self,
        provider: &Provider,
        deadline: Duration,
    ) -> Result<Phases, phases::PhaseFailure> {
        if phases::proxied(&provider.base_url) {
            return Ok(Phases::default());
        }
        phases::measure(&provider.base_url, &self.tls, deadline).await
    }

    /// Runs one probe of `kind` against `provider` within `timeout`.
    pub async fn run(
        &self,
        provider: &Provider,
        kind: ProbeKind,
        timeout: Duration,
    ) -> ProbeResult {
        let (url, model) = match kind {
            ProbeKind::Reachability => (request::models_url(provider), None),
            _ => (
                request::chat_url(provider),
                Some(provider.probe_model.clone()),
            ),
        };
        let builder = match kind {
            ProbeKind::Reachability => request::models_request(&self.client, provider),
            ProbeKind::Chat => self.chat(provider, ChatPayload::Plain),
            ProbeKind::Stream => self.chat(provider, ChatPayload::Stream),
            ProbeKind::Tools => self.chat(provider, ChatPayload::Tools),
        };
        let expect = match kind {
            ProbeKind::Reachability => Expect::Reachable {
                key_sent: provider.has_key(),
            },
            ProbeKind::Tools => Expect::ToolCall,
            ProbeKind::Chat | ProbeKind::Stream => Expect::Chat,
        };
        let exchange = Exchange {
            kind,
            url: url.to_string(),
            model,
            expect,
        };
        self.exchange(provider, builder, exchange, timeout).await
    }

    /// Sends a caller's own chat request body, unchanged, to the provider's chat endpoint
    /// (`isdown check --request`): the same client, deadlines, reading and classification as a
    /// probe. A body with `"stream": true` is read and judged as a stream.
    pub async fn send(&self, provider: &Provider, body: &Value, timeout: Duration) -> ProbeResult {
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        let exchange = Exchange {
            kind: if stream {
                ProbeKind::Stream
            } else {
                ProbeKind::Chat
            },
            url: request::chat_url(provider).to_string(),
            model: body.get("model").and_then(Value::as_str).map(str::to_owned),
            expect: Expect::Chat,
        };
        let builder = request::body_request(&self.client, provider, body);
        self.exchange(provider, builder, exchange, timeout).await
    }

    async fn exchange(
        &self,
        provider: &Provider,
        builder: reqwest::RequestBuilder,
        exchange: Exchange,
        timeout: Duration,
    ) -> ProbeResult {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let Exchange {
            kind,
            url,
            model,
            expect,
        } = exchange;
        let mut result = ProbeResult {
            provider: provider.id.clone(),
            url,
            model,
            kind,
            diagnosis: Diagnosis::new(Verdict::Up, "", ""),
            latency: None,
            ttft: None,
            timings: Timings::default(),
        };
        let sent = tokio::time::timeout_at(deadline, builder.send()).await;
        let mut response = match sent {
            Err(_) => {
                result.diagnosis = classify_transport(&crate::verdict::TransportFailure::Timeout {
                    phase: crate::verdict::TimeoutPhase::FirstByte,
                });
                return result;
            }
            Ok(Err(e)) => {
                result.diagnosis = classify_transport(&crate::transport::failure(
                    &e,
                    crate::verdict::TimeoutPhase::Connect,
                ));
                return result;
            }
            Ok(Ok(response)) => response,
        };
        result.timings.first_byte_ms = Some(ms(started.elapsed()));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let is_stream = kind == ProbeKind::Stream
            && response.status().is_success()
            && headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let diagnosis = if is_stream {
            let read = read_stream(&mut response, started, deadline).await;
            result.ttft = read.first_content;
            classify_stream(
                &StreamSummary {
                    status,
                    headers: &headers,
                    items: &read.items,
                    end: &read.end,
                },
                expect,
            )
        } else {
            match read_body(&mut response, deadline).await {
                Ok(body) => classify_http(
                    &HttpAnswer {
                        status,
                        headers: &headers,
                        body: &body.bytes,
                        truncated: body.truncated,
                    },
                    expect,
                ),
                Err(failure) if (200..300).contains(&status) => {
                    // Headers said success, then the body never completed.
                    let mut d = classify_transport(&failure);
                    d.status = Some(status);
                    d
                }
                Err(_) => {
                    // An error status whose body was cut: the status still speaks.
                    classify_http(
                        &HttpAnswer {
                            status,
                            headers: &headers,
                            body: b"",
                            truncated: true,
                        },
                        expect,
                    )
                }
            }
        };
        let total = started.elapsed();
        result.timings.total_ms = Some(ms(total));
        result.latency = Some(total);
        // Streams are judged by time to first token; everything else by the whole exchange.
        let judged = result.ttft.filter(|_| is_stream).unwrap_or(total);
        result.diagnosis = degraded_if_slow(diagnosis, judged, provider.degraded_after);
        result
    }

    fn chat(&self, provider: &Provider, payload: ChatPayload) -> reqwest::RequestBuilder {
        request::chat_request(&self.client, provider, &provider.probe_model, payload)
    }
}

/// What one exchange is, for its result.
struct Exchange {
    kind: ProbeKind,
    url: String,
    model: Option<String>,
    expect: Expect,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

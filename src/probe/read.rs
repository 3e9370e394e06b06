//! Reading answers within a deadline: bounded bodies and SSE streams, shared by every probe kind
//! and the gateway (transport failures are mapped by `crate::transport`).

use std::time::{Duration, Instant};

use reqwest::Response;
use tokio::time::timeout_at;

use crate::sse::{SseItem, SseReader};
use crate::verdict::{BODY_LIMIT, StreamEnd, TimeoutPhase, TransportFailure, chunk_has_content};

/// At most this many SSE items are kept for classification; a probe's answer has a dozen.
const MAX_ITEMS: usize = 4_096;

/// A body read up to [`BODY_LIMIT`].
#[derive(Debug)]
pub struct BoundedBody {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Reads at most [`BODY_LIMIT`] bytes before `deadline`. A transport failure while reading is
/// returned with what had arrived (the classifier decides what a cut body means).
pub async fn read_body(
    response: &mut Response,
    deadline: tokio::time::Instant,
) -> Result<BoundedBody, TransportFailure> {
    let mut bytes = Vec::new();
    loop {
        match timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                return Err(TransportFailure::Timeout {
                    phase: TimeoutPhase::Response,
                });
            }
            Ok(Err(e)) => return Err(crate::transport::failure(&e, TimeoutPhase::Response)),
            Ok(Ok(None)) => {
                return Ok(BoundedBody {
                    bytes,
                    truncated: false,
                });
            }
            Ok(Ok(Some(chunk))) => {
                let room = BODY_LIMIT - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    return Ok(BoundedBody {
                        bytes,
                        truncated: true,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
        }
    }
}

/// What a stream reader saw.
#[derive(Debug)]
pub struct StreamRead {
    pub items: Vec<SseItem>,
    pub end: StreamEnd,
    /// From the start of reading to the first content chunk.
    pub first_content: Option<Duration>,
}

/// Reads SSE items until an end marker, EOF, a failure or the deadline. Keep-alive comments
/// never move the deadline: a queued request that only sends `: keep-alive` times out.
pub async fn read_stream(
    response: &mut Response,
    started: Instant,
    deadline: tokio::time::Instant,
) -> StreamRead {
    let mut reader = SseReader::new();
    let mut items = Vec::new();
    let mut fresh = Vec::new();
    let mut first_content = None;
    let end = loop {
        let chunk = match timeout_at(deadline, response.chunk()).await {
            Err(_) if first_content.is_some() => break StreamEnd::IdleTimeout,
            Err(_) => break StreamEnd::FirstTokenTimeout,
            Ok(Err(e)) => {
                break StreamEnd::Transport(crate::transport::failure(&e, TimeoutPhase::Idle));
            }
            Ok(Ok(None)) => {
                if let Err(e) = reader.finish(&mut fresh) {
                    break StreamEnd::Transport(TransportFailure::Other(e.to_string()));
                }
                items.append(&mut fresh);
                break StreamEnd::Eof;
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        if let Err(e) = reader.push(&chunk, &mut fresh) {
            break StreamEnd::Transport(TransportFailure::Other(e.to_string()));
        }
        let mut finished = false;
        for item in fresh.drain(..) {
            if first_content.is_none() && chunk_has_content(&item) {
                first_content = Some(started.elapsed());
            }
            finished |= is_end_marker(&item);
            if items.len() < MAX_ITEMS {
                items.push(item);
            }
        }
        if finished {
            break StreamEnd::Eof;
        }
    };
    StreamRead {
        items,
        end,
        first_content,
    }
}

/// `data: [DONE]` (OpenAI style) or `event: message_stop` (Anthropic). Nothing useful follows
/// either, so the reader stops there instead of waiting for the server to close.
fn is_end_marker(item: &SseItem) -> bool {
    match item {
        SseItem::Event { event, data } => {
            data.trim() == "[DONE]" || event.as_deref() == Some("message_stop")
        }
        SseItem::Comment(_) => false,
    }
}

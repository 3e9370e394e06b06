//! The items of a chat completion stream as the gateway reads and writes them: what an item
//! means (content has finished, the end marker, a provider's in-band failure), how items are
//! framed again as SSE bytes, the OpenAI-style in-band error event, and a stream held until its
//! first content chunk ([`Held`]).
//!
//! The vocabulary under `upstream` (which holds a stream until its first content chunk),
//! `relay` (which forwards the rest) and `resume`; it decides nothing about targets and sends
//! nothing, beyond draining a finished response for its connection ([`drain`]). Items come from
//! the one SSE reader (`crate::sse`) and are never split mid-event.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use crate::sse::{SseItem, SseReader};

/// Finish reasons that mean the stream failed (reference §10: OpenRouter `error`, Zhipu
/// `network_error`, DeepSeek `insufficient_system_resource`) even when `[DONE]` follows.
const FAILED_FINISH: [&str; 3] = ["error", "network_error", "insufficient_system_resource"];

/// A stream whose first content chunk has arrived, with everything read so far.
pub struct Held {
    pub items: Vec<SseItem>,
    pub reader: SseReader,
    pub response: reqwest::Response,
}

/// How long a finished stream's connection may take to deliver its last bytes (the chunked
/// terminator after `[DONE]`) so that it can go back to the pool.
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// Reads what is left of a response that has said all it will (`[DONE]`) in the background, so
/// its connection is reused instead of closed — for TLS upstreams that saves a handshake per
/// request. Never delays the client.
pub fn drain(mut response: reqwest::Response) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(DRAIN_FOR, async {
            while let Ok(Some(_)) = response.chunk().await {}
        })
        .await;
    });
}

/// The end marker OpenAI clients wait for.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// True for a chunk whose choice carries a `finish_reason` (failure reasons are caught before,
/// by [`failure_in`]). Cheap for ordinary chunks: only a chunk that names a finish reason other
/// than `null` is parsed.
pub fn finishes(item: &SseItem) -> bool {
    let SseItem::Event { data, .. } = item else {
        return false;
    };
    let Some(at) = data.find("\"finish_reason\"") else {
        return false;
    };
    let after = data[at + "\"finish_reason\"".len()..].trim_start_matches([':', ' ']);
    if after.starts_with("null") {
        return false;
    }
    choices(data)
        .iter()
        .any(|c| c.get("finish_reason").is_some_and(Value::is_string))
}

/// The `choices` of a chunk's JSON; none when the data is not a JSON object that has them.
pub fn choices(data: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(mut chunk)) => match chunk.remove("choices") {
            Some(Value::Array(choices)) => choices,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `data: [DONE]`.
pub fn is_done(item: &SseItem) -> bool {
    matches!(item, SseItem::Event { data, .. } if data.trim() == "[DONE]")
}

/// `Some(true)` for an item carrying an `error` object, `Some(false)` for a failure
/// `finish_reason`, `None` for anything else. Cheap for ordinary chunks (a substring test).
pub fn failure_in(item: &SseItem) -> Option<bool> {
    let SseItem::Event { data, .. } = item else {
        return None;
    };
    if !data.contains("error") && !data.contains("insufficient_system_resource") {
        return None;
    }
    let value: Value = serde_json::from_str(data).ok()?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Some(true);
    }
    let finish = value
        .get("choices")?
        .get(0)?
        .get("finish_reason")?
        .as_str()?;
    FAILED_FINISH.contains(&finish).then_some(false)
}

/// The OpenAI-style in-band error event.
pub fn error_event(message: &str, code: &str) -> Bytes {
    let value = json!({
        "error": {"message": message, "type": "upstream_error", "param": null, "code": code}
    });
    Bytes::from(format!("data: {value}\n\n"))
}

pub fn write_item(out: &mut BytesMut, item: &SseItem) {
    match item {
        SseItem::Comment(text) => {
            out.put_slice(b": ");
            out.put_slice(text.as_bytes());
            out.put_slice(b"\n\n");
        }
        SseItem::Event { event, data } => {
            if let Some(name) = event {
                out.put_slice(b"event: ");
                out.put_slice(name.as_bytes());
                out.put_slice(b"\n");
            }
            for line in data.split('\n') {
                out.put_slice(b"data: ");
                out.put_slice(line.as_bytes());
                out.put_slice(b"\n");
            }
            out.put_slice(b"\n");
        }
    }
}

/// Items re-framed as SSE bytes.
pub fn serialize(items: &[SseItem]) -> Bytes {
    let mut out = BytesMut::new();
    for item in items {
        write_item(&mut out, item);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sse::event;

    #[test]
    fn failures_in_stream_items_table() {
        let rows = [
            (r#"{"choices":[{"delta":{"content":"hi"}}]}"#, None),
            (
                r#"{"error":{"message":"boom","type":"server_error"}}"#,
                Some(true),
            ),
            (
                r#"{"error":null,"choices":[{"delta":{"content":"error"}}]}"#,
                None,
            ),
            (
                r#"{"choices":[{"delta":{},"finish_reason":"network_error"}]}"#,
                Some(false),
            ),
            (
                r#"{"choices":[{"delta":{},"finish_reason":"error"}],"error":{"code":502}}"#,
                Some(true),
            ),
            (
                r#"{"choices":[{"delta":{},"finish_reason":"insufficient_system_resource"}]}"#,
                Some(false),
            ),
            (r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#, None),
            ("[DONE]", None),
        ];
        for (data, want) in rows {
            assert_eq!(failure_in(&event(data)), want, "{data}");
        }
        assert_eq!(failure_in(&SseItem::Comment("error".into())), None);
    }

    #[test]
    fn finishing_chunks_table() {
        let rows = [
            (
                r#"{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}"#,
                false,
            ),
            (r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#, true),
            (
                r#"{"choices":[{"delta":{}, "finish_reason": "tool_calls"}]}"#,
                true,
            ),
            (
                r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"total_tokens":3}}"#,
                true,
            ),
            (r#"{"choices":[],"usage":{"total_tokens":3}}"#, false),
            (
                r#"{"choices":[{"delta":{"content":"finish_reason"}}]}"#,
                false,
            ),
            ("[DONE]", false),
        ];
        for (data, want) in rows {
            assert_eq!(finishes(&event(data)), want, "{data}");
        }
        assert!(!finishes(&SseItem::Comment("finish_reason".into())));
    }

    #[test]
    fn items_are_reframed_as_the_reader_parses_them() {
        let items = vec![
            SseItem::Comment("keep-alive".into()),
            SseItem::Event {
                event: Some("x".into()),
                data: "a\nb".into(),
            },
            event("[DONE]"),
        ];
        let bytes = serialize(&items);
        assert_eq!(
            &bytes[..],
            b": keep-alive\n\nevent: x\ndata: a\ndata: b\n\ndata: [DONE]\n\n"
        );
        assert_eq!(crate::sse::parse_all(&bytes).unwrap(), items);
    }

    #[test]
    fn the_error_event_is_openai_shaped() {
        let bytes = error_event("cut", "stream_interrupted");
        let text = std::str::from_utf8(&bytes).unwrap();
        let json: Value =
            serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(json["error"]["code"], "stream_interrupted");
        assert_eq!(json["error"]["type"], "upstream_error");
        assert!(json["error"]["param"].is_null());
    }
}

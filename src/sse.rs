//! One server-sent-events reader, shared by probes, the gateway and the mock provider.
//!
//! It owns the framing only: bytes in, [`SseItem`]s out. It knows nothing of OpenAI chunks or
//! Anthropic events (the classifier and the relay read those). Hand-written rather than taken
//! from a crate because it sits on the gateway's hot path, must surface comment lines (they
//! prove liveness but are not progress) and must be lenient in the ways real providers need
//! (Moonshot's continuation lines, `\r\n` and bare `\r` line ends, a missing final blank line).
//! It never allocates beyond [`MAX_EVENT_BYTES`] for one event: a peer that streams an endless
//! line gets an error, not our memory.

use thiserror::Error;

/// 4 MiB: far above any real chunk (tool-call arguments included), far below a memory problem.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// One unit of an SSE stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A `:` line, e.g. `: keep-alive` or `: OPENROUTER PROCESSING`. Liveness, not progress.
    Comment(String),
    /// A dispatched event: `event:` name (if any) and the `data:` lines joined by `\n`.
    Event { event: Option<String>, data: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SseError {
    #[error("an SSE event exceeded {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
}

/// Incremental SSE parser: feed it bytes as they arrive with [`SseReader::push`], then call
/// [`SseReader::finish`] at end of stream to flush an event that lacked its final blank line.
#[derive(Debug, Default)]
pub struct SseReader {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a `\n` starting the next chunk belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and appends every item they complete to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseItem>) -> Result<(), SseError> {
        // An empty read (an empty HTTP/2 DATA frame, say) must not drop the pending `\r`: the
        // `\n` of the same line end may still come.
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(pos) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (head, tail) = bytes.split_at(pos);
            self.append_line_bytes(head)?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
            self.line = line;
            self.line.clear();
            bytes = &tail[1..];
            if tail[0] == b'\r' {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    None => self.after_cr = true,
                    _ => {}
                }
            }
        }
        self.append_line_bytes(bytes)
    }

    /// Ends the stream: a trailing line without newline and an event without its blank line
    /// are still delivered (several providers end that way).
    pub fn finish(&mut self, out: &mut Vec<SseItem>) -> Result<(), SseError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn append_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() + self.data.len() > MAX_EVENT_BYTES {
            return Err(SseError::EventTooLarge);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseItem>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = String::from_utf8_lossy(line);
        if let Some(comment) = line.strip_prefix(':') {
            out.push(SseItem::Comment(comment.trim_start().to_owned()));
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => self.push_data(value)?,
            "event" => self.event = Some(value.to_owned()),
            "id" | "retry" => {}
            // Moonshot's sample parser accepts continuation lines without a `data:` prefix;
            // anything else unknown is ignored, as the SSE spec says.
            _ if self.has_data => self.push_data(&line)?,
            _ => {}
        }
        Ok(())
    }

    fn push_data(&mut self, value: &str) -> Result<(), SseError> {
        if self.data.len() + value.len() + 1 > MAX_EVENT_BYTES {
            return Err(SseError::EventTooLarge);
        }
        if self.has_data {
            self.data.push('\n');
        }
        self.data.push_str(value);
        self.has_data = true;
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        if self.has_data {
            out.push(SseItem::Event {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.data.clear();
        self.has_data = false;
    }
}

/// Parses a complete body (e.g. DashScope's SSE-framed error on an HTTP 400).
pub fn parse_all(body: &[u8]) -> Result<Vec<SseItem>, SseError> {
    let mut reader = SseReader::new();
    let mut out = Vec::new();
    reader.push(body, &mut out)?;
    reader.finish(&mut out)?;
    Ok(out)
}

/// True when a body looks SSE-framed whatever its content type says.
pub fn looks_like_sse(body: &[u8]) -> bool {
    let trimmed = body.trim_ascii_start();
    trimmed.starts_with(b"data:") || trimmed.starts_with(b"event:") || trimmed.starts_with(b":")
}

/// An unnamed event carrying `data`, as OpenAI-style streams send them: what tests build.
#[cfg(test)]
pub(crate) fn event(data: &str) -> SseItem {
    SseItem::Event {
        event: None,
        data: data.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_stream_yields_events_and_done() {
        let body = b"data: {\"a\":1}\n\ndata: [DONE]\n\n";
        assert_eq!(
            parse_all(body).unwrap(),
            vec![event("{\"a\":1}"), event("[DONE]")]
        );
    }

    #[test]
    fn comments_are_surfaced_as_liveness() {
        let body = b": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n";
        assert_eq!(
            parse_all(body).unwrap(),
            vec![
                SseItem::Comment("keep-alive".into()),
                SseItem::Comment("OPENROUTER PROCESSING".into()),
                event("x")
            ]
        );
    }

    #[test]
    fn anthropic_named_events_keep_their_name() {
        let body = b"event: error\ndata: {\"type\":\"error\"}\n\n";
        assert_eq!(
            parse_all(body).unwrap(),
            vec![SseItem::Event {
                event: Some("error".into()),
                data: "{\"type\":\"error\"}".into()
            }]
        );
    }

    #[test]
    fn crlf_and_cr_line_ends_and_split_chunks_parse_identically() {
        let whole = b"data: one\r\n\r\ndata: two\r\rdata: three\n\n".to_vec();
        let expected = vec![event("one"), event("two"), event("three")];
        assert_eq!(parse_all(&whole).unwrap(), expected);
        // Every possible split point, including between \r and \n.
        for split in 0..whole.len() {
            let mut reader = SseReader::new();
            let mut out = Vec::new();
            reader.push(&whole[..split], &mut out).unwrap();
            reader.push(&whole[split..], &mut out).unwrap();
            reader.finish(&mut out).unwrap();
            assert_eq!(out, expected, "split at {split}");
        }
    }

    #[test]
    fn empty_chunk_between_cr_and_lf_keeps_one_line_end() {
        // Found by the `sse_reader` fuzz target: the empty push used to forget the `\r`, so the
        // `\n` after it ended a second, empty line and dispatched the event early.
        let chunks: [&[u8]; 4] = [b"\r\ndata\r", b"", b"", b"\ndata"];
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk, &mut out).unwrap();
        }
        reader.finish(&mut out).unwrap();
        assert_eq!(out, vec![event("\n")]);
        assert_eq!(out, parse_all(&chunks.concat()).unwrap());
    }

    #[test]
    fn byte_by_byte_feeding_matches_whole_body() {
        let body = b"event: message_start\ndata: {\"x\":\n data2\n\n: ping\ndata: [DONE]";
        let whole = parse_all(body).unwrap();
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        for b in body {
            reader.push(std::slice::from_ref(b), &mut out).unwrap();
        }
        reader.finish(&mut out).unwrap();
        assert_eq!(out, whole);
    }

    #[test]
    fn multi_line_data_and_moonshot_continuation_lines_are_joined() {
        let body = b"data: {\"a\":\ndata: 1}\n\ndata: {\"b\":\n2}\n\n";
        assert_eq!(
            parse_all(body).unwrap(),
            vec![event("{\"a\":\n1}"), event("{\"b\":\n2}")]
        );
    }

    #[test]
    fn final_event_without_blank_line_is_delivered() {
        assert_eq!(parse_all(b"data: last").unwrap(), vec![event("last")]);
    }

    #[test]
    fn endless_line_is_an_error_not_unbounded_memory() {
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        let chunk = vec![b'a'; 64 * 1024];
        let mut result = Ok(());
        for _ in 0..100 {
            result = reader.push(&chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic fuzz: pseudo-random bytes drawn from the SSE alphabet.
        let alphabet = b"data:event: \r\n:{}[]DONE\xff\x00";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2_000 {
            let mut reader = SseReader::new();
            let mut out = Vec::new();
            let len = (state % 97) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let mid = bytes.len() / 2;
            reader.push(&bytes[..mid], &mut out).unwrap();
            reader.push(&bytes[mid..], &mut out).unwrap();
            reader.finish(&mut out).unwrap();
            assert_eq!(out, parse_all(&bytes).unwrap());
        }
    }

    #[test]
    fn sse_framing_is_recognised_on_error_bodies() {
        assert!(looks_like_sse(b"data: {\"error\":{}}"));
        assert!(looks_like_sse(b"\n: comment"));
        assert!(!looks_like_sse(b"{\"error\":{}}"));
        assert!(!looks_like_sse(b"<html>"));
    }
}

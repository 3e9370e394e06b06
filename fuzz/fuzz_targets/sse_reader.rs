//! The SSE reader (`isdown::sse`) on arbitrary bytes, fed in arbitrary chunks.
//!
//! Input: one byte `n` (the low 3 bits: how many chunk lengths follow, 0–7), then those lengths
//! (one byte each, 0 allowed: an empty read), then the stream. Chunks are cut from the stream
//! with those lengths and the rest is the last chunk.
//!
//! Checks: no panic; feeding in chunks gives exactly what `parse_all` gives on the whole body
//! (a reader must not depend on where the network cut the bytes); no event is larger than
//! `MAX_EVENT_BYTES`.
#![no_main]

use isdown::sse::{MAX_EVENT_BYTES, SseItem, SseReader, looks_like_sse, parse_all};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let count = usize::from(n & 7).min(rest.len());
    let (lengths, mut stream) = rest.split_at(count);
    let whole = parse_all(stream);

    let mut reader = SseReader::new();
    let mut items = Vec::new();
    let mut chunked = Ok(());
    for &length in lengths {
        let (chunk, tail) = stream.split_at(usize::from(length).min(stream.len()));
        stream = tail;
        chunked = chunked.and_then(|()| reader.push(chunk, &mut items));
    }
    chunked = chunked
        .and_then(|()| reader.push(stream, &mut items))
        .and_then(|()| reader.finish(&mut items));
    let chunked = chunked.map(|()| items);
    assert_eq!(chunked, whole, "chunked feeding differs from parse_all");

    for item in whole.iter().flatten() {
        if let SseItem::Event { data, .. } = item {
            assert!(data.len() <= MAX_EVENT_BYTES);
        }
    }
    let _ = looks_like_sse(input);
});

//! The durable queue's Batch input reader (`isdown::queue`): an uploaded JSONL file cut into
//! lines as its bytes arrive (`split::Splitter`, what `POST /v1/files` calls), fed in arbitrary
//! chunks, then each line checked as a request of a `/v1/chat/completions` batch
//! (`validate::Validator`, what the dispatcher calls, asked no further once it `wants_more` no
//! more) with routes that serve some models and not others.
//!
//! Input: one byte `n` (the low 3 bits: how many chunk lengths follow, 0–7; bits 3–4: the
//! longest line accepted, from [`MAX_LINES`]), then those lengths (one byte each, 0 allowed: an
//! empty read), then the file. Chunks are cut from the file with those lengths and the rest is
//! the last chunk.
//!
//! Checks: no panic; feeding in chunks gives exactly the lines and the outcome that pushing the
//! file whole gives (an upload must not depend on where the network cut the bytes); every line
//! is at most the longest accepted, not blank, without its line end, numbered within the file's
//! line count in increasing order. Validation (of files the splitter accepted, as only those are
//! stored): at most `MAX_ERRORS` errors, each a bounded message naming a line of the file (or no
//! line, for the whole file), at most `MAX_BATCH_LINES` requests accepted, each with a served
//! model and a `custom_id` no other accepted line has; a file passes exactly when no error was
//! recorded, with the number of requests accepted.
#![no_main]

use std::collections::HashSet;

use isdown::queue::settings::MAX_BATCH_LINES;
use isdown::queue::split::{SplitError, Splitter};
use isdown::queue::validate::{MAX_ERRORS, Validator};
use isdown::store::queue::{FileLine, NewLine};
use libfuzzer_sys::fuzz_target;

/// The longest line accepted, chosen by the input: tiny (most lines too long), small, the size
/// of a real request, and large enough for anything the fuzzer builds.
const MAX_LINES: [usize; 4] = [16, 256, 4096, 1 << 20];
/// The batch's endpoint, as `POST /v1/batches` stores it.
const ENDPOINT: &str = "/v1/chat/completions";
/// Models a route serves; so does any `kimi/…` (a provider's models by their full name).
const SERVED: [&str; 4] = ["kimi-k2.6", "deepseek-chat", "glm-4.6", "qwen-plus"];
/// An error message longer than this would be quoting more than a short excerpt of the line (the
/// longest, `model_not_found`, is about 100 bytes of text and 80 characters of the model).
const MAX_MESSAGE: usize = 500;

fn serves(model: &str) -> bool {
    SERVED.contains(&model) || model.starts_with("kimi/")
}

/// The lines `chunks` split into, and the file's line count or the error that refused it.
fn split<'a>(
    max: usize,
    chunks: impl Iterator<Item = &'a [u8]>,
) -> (Vec<FileLine>, Result<u32, SplitError>) {
    let mut splitter = Splitter::new(max);
    let mut lines = Vec::new();
    let mut emit = |line: FileLine| lines.push(line);
    for chunk in chunks {
        if let Err(e) = splitter.push(chunk, &mut emit) {
            return (lines, Err(e));
        }
    }
    let total = splitter.finish(&mut emit);
    (lines, total)
}

fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let max = MAX_LINES[usize::from((n >> 3) & 3)];
    let count = usize::from(n & 7).min(rest.len());
    let (lengths, file) = rest.split_at(count);

    let (lines, total) = split(max, std::iter::once(file));
    let mut stream = file;
    let mut chunks = Vec::new();
    for &length in lengths {
        let (chunk, tail) = stream.split_at(usize::from(length).min(stream.len()));
        chunks.push(chunk);
        stream = tail;
    }
    chunks.push(stream);
    let (chunked_lines, chunked_total) = split(max, chunks.into_iter());
    assert_eq!(chunked_total, total, "chunked feeding ends differently");
    assert_eq!(
        chunked_lines.len(),
        lines.len(),
        "chunked feeding gives another number of lines"
    );
    for (a, b) in chunked_lines.iter().zip(&lines) {
        assert_eq!((a.line, &a.content), (b.line, &b.content), "lines differ");
    }

    let mut previous = 0;
    for line in &lines {
        assert!(
            line.content.len() <= max,
            "a line of {} bytes",
            line.content.len()
        );
        assert!(!line.content.contains(&b'\n'));
        assert!(!line.content.iter().all(u8::is_ascii_whitespace));
        assert!(line.line > previous, "line numbers out of order");
        previous = line.line;
    }
    let Ok(total) = total else {
        return;
    };
    assert!(previous <= total, "line {previous} of a {total}-line file");

    let serves: &(dyn Fn(&str) -> bool + Sync) = &serves;
    let mut validator = Validator::new(ENDPOINT, serves);
    let mut accepted: Vec<NewLine> = Vec::new();
    for line in &lines {
        if !validator.wants_more() {
            break;
        }
        accepted.extend(validator.check(line));
    }
    assert!(accepted.len() <= MAX_BATCH_LINES as usize);
    let mut ids = HashSet::new();
    for request in &accepted {
        assert!(serves(&request.model), "{:?} is not served", request.model);
        assert!(ids.insert(&request.custom_id), "a duplicate custom_id");
        assert!(lines.iter().any(|l| l.line == request.line));
    }
    match validator.finish() {
        Ok(requests) => assert_eq!(requests as usize, accepted.len()),
        Err(errors) => {
            assert!(!errors.is_empty(), "a failure without an error");
            assert!(errors.len() <= MAX_ERRORS, "{} errors", errors.len());
            for error in &errors {
                assert!(
                    error.message.len() <= MAX_MESSAGE,
                    "{}: a message of {} bytes",
                    error.code,
                    error.message.len()
                );
                if let Some(line) = error.line {
                    assert!((1..=total).contains(&line), "line {line} of {total}");
                }
            }
        }
    }
});

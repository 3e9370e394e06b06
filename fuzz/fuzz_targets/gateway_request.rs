//! The gateway's reading of a client request (`isdown::gateway::request`): the
//! `x-isdown-timeout` budget from the headers and the chat body, then what the handler does
//! with a parsed body before sending it — the raw-text token estimate, route matching on the
//! client's `model`, and each catalog provider's body (request fixes, the target's model).
//!
//! Input: the request's headers and body as text, the way they read on the wire:
//!
//! ```text
//! x-isdown-timeout: 1500ms
//!
//! {"model":"fast","messages":[{"role":"user","content":"hi"}],"stream":true}
//! ```
//!
//! `name: value` lines (invalid names or values are skipped), an empty line, the body; input
//! without an empty line is a body alone. Checks: no panic; a budget is positive and never
//! above the configured total; a fixed body serialises and reads back as an object.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use isdown::config::Config;
use isdown::gateway::fixes::{Fix, FixTable};
use isdown::gateway::request::{budget, parse_request};
use isdown::gateway::route::glob_match;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The default `[gateway.timeouts] total`.
const TOTAL: Duration = Duration::from_secs(300);

/// Route patterns of the shapes a config holds: an alias, prefix and suffix globs, a catch-all.
const PATTERNS: [&str; 5] = ["fast", "kimi-*", "*-mini", "gpt-*-turbo*", "*"];

/// The request fixes of every catalog provider, as the gateway builds them at start-up.
static FIXES: LazyLock<Vec<Arc<[Fix]>>> = LazyLock::new(|| {
    let table = FixTable::embedded().expect("the embedded fixes table is valid");
    let config = Config::from_toml("", "<built-in defaults>", &|_| None)
        .expect("the built-in catalog is valid");
    config
        .providers
        .iter()
        .map(|p| table.for_provider(&p.id))
        .collect()
});

fn split_request(input: &[u8]) -> (HeaderMap, &[u8]) {
    let Some(at) = input.windows(2).position(|w| w == b"\n\n") else {
        return (HeaderMap::new(), input);
    };
    let mut headers = HeaderMap::new();
    for line in input[..at].split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    (headers, &input[at + 2..])
}

fuzz_target!(|input: &[u8]| {
    let (headers, body) = split_request(input);
    if let Ok(budget) = budget(&headers, TOTAL) {
        assert!(!budget.is_zero() && budget <= TOTAL, "budget {budget:?}");
    }
    let Ok(request) = parse_request(Bytes::copy_from_slice(body)) else {
        return;
    };
    let _ = request.estimate_tokens();
    for pattern in PATTERNS {
        let _ = glob_match(pattern, &request.model);
    }
    let params = Map::new();
    for fixes in FIXES.iter() {
        let sent = request.body_for("target-model", fixes, &params);
        let back: Map<String, Value> =
            serde_json::from_slice(&sent).expect("what is sent reads back as an object");
        assert_eq!(back.get("model"), Some(&Value::from("target-model")));
    }
});

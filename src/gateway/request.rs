//! The caller's chat request as the gateway reads it: a borrowed "peek" of its top-level fields
//! (each kept as the byte range of its raw JSON in the received body), the model and the stream
//! flag — never a tree of the messages and tools, which can be megabytes.
//!
//! The body sent to a target is the original bytes of every field, with `model` replaced and the
//! target's `params` set; only when a request fix (`fixes`) may apply is the request parsed
//! into a tree and re-serialised (a fix has to look inside messages). Token estimates read the
//! raw text too (`estimate`). [`parse_request`] is the one entry point from bytes and
//! [`budget`] the one from the `x-isdown-timeout` header, so that the fuzz target
//! `gateway_request` (fuzz/) calls what serves. No I/O.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::HEADER_TIMEOUT;
use super::error::ApiError;
use super::fixes::{FieldPath, Fix, fixed};

/// A parsed request. Cheap to move; the body bytes are shared.
#[derive(Debug)]
pub struct ChatRequest {
    raw: Bytes,
    /// Top-level fields other than `model`, in their order (the last of duplicated keys wins,
    /// as in every JSON parser the providers use).
    fields: Vec<(String, Range<usize>)>,
    pub model: String,
    pub stream: bool,
    /// The whole request as a tree (without `model`), parsed on first use.
    tree: OnceLock<Map<String, Value>>,
}

/// The request's overall budget: `total`, or less when the client asks with `x-isdown-timeout`
/// (seconds, e.g. `20` or `1.5`, or a duration, e.g. `20s` or `1500ms`).
pub fn budget(headers: &HeaderMap, total: Duration) -> Result<Duration, ApiError> {
    let Some(value) = headers.get(HEADER_TIMEOUT) else {
        return Ok(total);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_timeout_header(HEADER_TIMEOUT))?
        .trim();
    let asked = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs.min(1e9)),
        Ok(_) => Duration::ZERO,
        Err(_) => humantime::parse_duration(text).unwrap_or(Duration::ZERO),
    };
    // Zero, and a positive number too small to be a duration (`1e-12` rounds to 0 ns), would
    // be a deadline already passed: refused like `0`, not answered with a timeout (found by
    // fuzzing).
    if asked.is_zero() {
        return Err(ApiError::bad_timeout_header(HEADER_TIMEOUT));
    }
    Ok(asked.min(total))
}

/// Reads a request body: a JSON object with a string `model`.
pub fn parse_request(raw: Bytes) -> Result<ChatRequest, ApiError> {
    let base = raw.as_ptr() as usize;
    let TopLevel(pairs) = serde_json::from_slice::<TopLevel<'_>>(&raw)
        .map_err(|e| ApiError::invalid_json(&e.to_string()))?;
    check_strict(&raw).map_err(ApiError::invalid_json)?;
    let mut model = None;
    let mut stream = false;
    let mut fields: Vec<(String, Range<usize>)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let text = value.get();
        let start = text.as_ptr() as usize - base;
        let range = start..start + text.len();
        match &*key {
            "model" => model = Some(value),
            "stream" => {
                stream = text == "true";
                push_field(&mut fields, key, range);
            }
            _ => push_field(&mut fields, key, range),
        }
    }
    let model = model
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        .ok_or_else(ApiError::missing_model)?;
    Ok(ChatRequest {
        raw,
        fields,
        model,
        stream,
        tree: OnceLock::new(),
    })
}

/// Nesting serde_json's full parse accepts (its recursion limit is 128 levels, counted from
/// the top-level object).
const MAX_DEPTH: usize = 127;

/// Refuses what the peek lets through but serde_json's full parse refuses: a `\u` escape that is
/// half of a UTF-16 surrogate pair on its own (`"\udf0c"`), a number beyond `f64`'s range
/// (`1e400`), nesting deeper than [`MAX_DEPTH`].
///
/// The peek keeps values as raw text and skips over them, checking their syntax only. Without
/// this check such a body passed here and then broke where a field is parsed — a fix, the lint
/// or a stream rescue read the field as `null` and could send that upstream. Found by the
/// `gateway_request` fuzz target. One pass after the peek accepted the document (so its syntax
/// is sound): strings are crossed with `memchr2` from quote or backslash to the next, so the
/// cost is small beside the peek's own; hand-written because it runs on every request.
fn check_strict(raw: &[u8]) -> Result<(), &'static str> {
    let mut at = 0;
    let mut depth = 0usize;
    while let Some(&byte) = raw.get(at) {
        match byte {
            b'"' => at = after_string(raw, at + 1)?,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err("arrays and objects are nested more than 127 deep");
                }
                at += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let len = raw[at..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .unwrap_or(raw.len() - at);
                check_number(&raw[at..at + len])?;
                at += len;
            }
            _ => at += 1,
        }
    }
    Ok(())
}

/// Where the string starting at `at` (after its opening quote) ends, its escapes checked.
fn after_string(raw: &[u8], mut at: usize) -> Result<usize, &'static str> {
    const LONE: &str = "a \\u escape names half of a UTF-16 surrogate pair without the other half";
    let unit = |at: usize| -> Option<u16> {
        let hex = raw.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    loop {
        let Some(found) = raw
            .get(at..)
            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
        else {
            return Ok(raw.len());
        };
        let at_mark = at + found;
        if raw[at_mark] == b'"' {
            return Ok(at_mark + 1);
        }
        if raw.get(at_mark + 1) != Some(&b'u') {
            at = at_mark + 2;
            continue;
        }
        at = match unit(at_mark + 2) {
            Some(0xD800..=0xDBFF) => {
                let low = raw.get(at_mark + 6..at_mark + 8) == Some(b"\\u".as_slice())
                    && matches!(unit(at_mark + 8), Some(0xDC00..=0xDFFF));
                if !low {
                    return Err(LONE);
                }
                at_mark + 12
            }
            Some(0xDC00..=0xDFFF) => return Err(LONE),
            _ => at_mark + 6,
        };
    }
}

/// A number as serde_json reads it: an integer that fits 64 bits, or else a finite `f64`.
fn check_number(text: &[u8]) -> Result<(), &'static str> {
    let text = std::str::from_utf8(text).unwrap_or_default();
    let integral = !text.contains(['.', 'e', 'E']);
    if integral && (text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()) {
        return Ok(());
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(()),
        _ => Err("a number is beyond the range of a 64-bit float"),
    }
}

fn push_field(fields: &mut Vec<(String, Range<usize>)>, key: Cow<'_, str>, range: Range<usize>) {
    if let Some(at) = fields.iter().position(|(k, _)| *k == *key) {
        fields.remove(at);
    }
    fields.push((key.into_owned(), range));
}

impl ChatRequest {
    /// As [`crate::estimate::estimate_request_tokens`], from the raw JSON text (no tree is
    /// built): the text of the counted fields, keys and punctuation included (they cost about
    /// what the per-field token of the tree walk does), each inline `data:` URL as one image.
    pub fn estimate_tokens(&self) -> u64 {
        crate::estimate::COUNTED_FIELDS
            .iter()
            .filter_map(|key| self.field(key))
            .map(crate::estimate::estimate_json_text)
            .sum()
    }

    /// The whole request as a JSON object (built only on demand: the request lint reads it).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_slice(&self.raw).unwrap_or_default()
    }

    /// The raw JSON of a top-level field.
    pub fn field(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, range)| &self.raw[range.clone()])
    }

    /// The request as a tree, without `model`.
    pub fn tree(&self) -> &Map<String, Value> {
        self.tree.get_or_init(|| {
            let mut map = Map::new();
            for (key, range) in &self.fields {
                // Each range is a value serde_json itself delimited, and `check_strict` passed
                // the whole body: it parses again.
                let value = serde_json::from_slice(&self.raw[range.clone()]).unwrap_or(Value::Null);
                map.insert(key.clone(), value);
            }
            map
        })
    }

    /// Whether `fix` might change this request (then the tree decides).
    fn may_need(&self, fix: &Fix) -> bool {
        match &fix.path {
            FieldPath::TopLevel(name) => self.field(name).is_some(),
            FieldPath::Message { name, .. } => self.field("messages").is_some_and(|messages| {
                let quoted = format!("\"{name}\"");
                memchr::memmem::find(messages, quoted.as_bytes()).is_some()
            }),
        }
    }

    /// The body for a target: `model` set, `fixes` applied, `params` set. The original bytes of
    /// every field are copied as they are unless a fix may apply.
    pub fn body_for(&self, model: &str, fixes: &[Fix], params: &Map<String, Value>) -> Bytes {
        if fixes.iter().any(|fix| self.may_need(fix)) {
            let mut map = fixed(fixes, self.tree()).into_owned();
            map.insert("model".to_owned(), Value::String(model.to_owned()));
            for (key, value) in params {
                map.insert(key.clone(), value.clone());
            }
            // Serialising a map of JSON values cannot fail (string keys, no custom types).
            return Bytes::from(serde_json::to_vec(&map).unwrap_or_default());
        }
        let mut out = Vec::with_capacity(self.raw.len() + model.len() + 64);
        out.extend_from_slice(b"{\"model\":");
        write_json(&mut out, &Value::String(model.to_owned()));
        for (key, range) in &self.fields {
            if params.contains_key(key) {
                continue;
            }
            out.push(b',');
            write_json(&mut out, &Value::String(key.clone()));
            out.push(b':');
            out.extend_from_slice(&self.raw[range.clone()]);
        }
        for (key, value) in params {
            out.push(b',');
            write_json(&mut out, &Value::String(key.clone()));
            out.push(b':');
            write_json(&mut out, value);
        }
        out.push(b'}');
        Bytes::from(out)
    }
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    // Writing a JSON value into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// The top-level object as (key, raw value) pairs, borrowed from the body.
struct TopLevel<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel<'de>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    pairs.push((key, value));
                }
                Ok(TopLevel(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOTAL: Duration = Duration::from_secs(300);

    fn asked(value: &str) -> Result<Duration, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER_TIMEOUT,
            axum::http::HeaderValue::from_str(value).unwrap(),
        );
        budget(&headers, TOTAL)
    }

    #[test]
    fn timeout_header_takes_seconds_or_durations_and_never_exceeds_total() {
        assert_eq!(budget(&HeaderMap::new(), TOTAL).unwrap(), TOTAL);
        assert_eq!(asked("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(asked(" 1500ms ").unwrap(), Duration::from_millis(1500));
        assert_eq!(asked("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(asked("1e300").unwrap(), TOTAL);
        assert_eq!(asked("500000000000y").unwrap(), TOTAL);
        for bad in [
            "0",
            "0s",
            "-1",
            "NaN",
            "inf",
            "soon",
            "",
            "99999999999999999999y",
        ] {
            assert_eq!(asked(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn timeout_too_small_to_be_a_duration_is_refused_like_zero() {
        // `1e-12` seconds rounds to a zero duration: it was accepted, and the request then
        // failed at once with "deadline passed after 0 attempts" instead of a 400.
        for bad in ["1e-12", "0.0000000001", "0ns"] {
            assert_eq!(asked(bad).unwrap_err().status, 400, "{bad:?}");
        }
        assert_eq!(asked("0.000000001").unwrap(), Duration::from_nanos(1));
    }
    use serde_json::json;

    #[test]
    fn the_raw_text_estimate_is_close_to_the_tree_walk_and_counts_images_once() {
        let image = format!("data:image/png;base64,{}", "A".repeat(1_000_000));
        let request = json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "You are a coding agent. ".repeat(200)},
                {"role": "user", "content": [
                    {"type": "text", "text": "你好".repeat(100)},
                    {"type": "image_url", "image_url": {"url": image}},
                ]},
            ],
            "tools": [{"type": "function", "function": {"name": "read", "parameters": {}}}],
        });
        let tree = match &request {
            Value::Object(map) => crate::estimate::estimate_request_tokens(map),
            _ => unreachable!(),
        };
        let parsed = parse_request(bytes::Bytes::from(request.to_string())).unwrap();
        let raw = parsed.estimate_tokens();
        let (low, high) = (tree * 95 / 100, tree * 110 / 100);
        assert!((low..=high).contains(&raw), "raw {raw} vs tree {tree}");
        assert!(raw < 5_000, "the image's bytes were counted as text: {raw}");
    }

    fn parse(value: Value) -> ChatRequest {
        parse_request(Bytes::from(value.to_string())).unwrap()
    }

    fn sent(body: &Bytes) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn a_body_without_fixes_is_the_original_fields_with_model_and_params_set() {
        let request = parse(json!({
            "model": "agent", "stream": true, "temperature": 0.2,
            "messages": [{"role": "user", "content": "héllo \"quoted\" \u{1F600}"}],
        }));
        assert_eq!(request.model, "agent");
        assert!(request.stream);
        let params = json!({"temperature": 1, "top_k": 5});
        let Value::Object(params) = params else {
            panic!()
        };
        let body = request.body_for("kimi-k2", &[], &params);
        assert_eq!(
            sent(&body),
            json!({
                "model": "kimi-k2", "stream": true, "temperature": 1, "top_k": 5,
                "messages": [{"role": "user", "content": "héllo \"quoted\" \u{1F600}"}],
            })
        );
    }

    #[test]
    fn bad_bodies_are_client_errors_never_panics() {
        let rows: [(&[u8], &str); 6] = [
            (b"", "invalid_json"),
            (b"[1,2]", "invalid_json"),
            (b"{\"model\":", "invalid_json"),
            (b"{\"messages\":[]}", "missing_model"),
            (b"{\"model\":5}", "missing_model"),
            (b"\xff\xfe", "invalid_json"),
        ];
        for (body, code) in rows {
            let error = parse_request(Bytes::copy_from_slice(body)).unwrap_err();
            let got = error.code.clone().unwrap_or_default();
            assert!(
                got.contains(code) || error.message.contains("model"),
                "{body:?}: {error:?}"
            );
        }
    }

    #[test]
    fn lone_surrogate_escapes_are_refused_and_pairs_kept() {
        // Found by the `gateway_request` fuzz target (corpus/gateway_request/crash-00789b11…):
        // a lone surrogate passed the peek and then failed the full parse of what is sent.
        for body in [
            r#"{"model":"m","messages":[{"role":"user","x":"\u4f60\udf0c"}]}"#,
            r#"{"model":"m","messages":[{"content":"\ud83d"}]}"#,
            r#"{"model":"m","messages":[{"content":"\ud83d\u0041"}]}"#,
            r#"{"model":"m","messages":[{"content":"\uDC00 then text"}]}"#,
        ] {
            let error = parse_request(Bytes::from(body)).unwrap_err();
            assert_eq!(error.code.as_deref(), Some("invalid_json"), "{body}");
            assert!(error.message.contains("surrogate"), "{}", error.message);
            assert!(serde_json::from_str::<Value>(body).is_err());
        }
        // A pair (an emoji as Python's json.dumps escapes it), escaped backslashes before a `u`,
        // and other escapes pass, and what is sent reads back.
        let body = r#"{"model":"m","messages":[{"content":"\ud83d\ude00 \\udf0c \n \" \u00e9"}]}"#;
        let request = parse_request(Bytes::from(body)).unwrap();
        let sent = request.body_for("t", &[], &Map::new());
        let back: Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(
            back["messages"][0]["content"],
            "\u{1F600} \\udf0c \n \" \u{e9}"
        );
    }

    #[test]
    fn what_the_full_parse_refuses_is_refused_at_the_door() {
        // Found by the `gateway_request` fuzz target (corpus/gateway_request/crash-b40675c8…):
        // the peek only checks syntax, so these passed and a parsed field became `null`.
        let nested = |depth: usize| {
            format!(
                r#"{{"model":"m","x":{}1{}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        let rows: [(String, bool); 9] = [
            (r#"{"model":"m","t":444448448E44487}"#.into(), false),
            (r#"{"model":"m","t":-1e400}"#.into(), false),
            (format!(r#"{{"model":"m","t":{}}}"#, "9".repeat(400)), false),
            (
                r#"{"model":"m","t":1e-400,"u":18446744073709551615}"#.into(),
                true,
            ),
            (
                r#"{"model":"m","t":-9223372036854775808,"u":1.5E+3,"v":0.7}"#.into(),
                true,
            ),
            (
                r#"{"model":"m","text":"1e999 [[[[ \" not a number"}"#.into(),
                true,
            ),
            (nested(127), true),
            (nested(128), false),
            (nested(300), false),
        ];
        for (body, accepted) in rows {
            let full = serde_json::from_str::<Value>(&body).is_ok();
            assert_eq!(full, accepted, "serde_json on {body:.80}");
            match parse_request(Bytes::from(body.clone())) {
                Ok(request) => {
                    assert!(accepted, "accepted {body:.80}");
                    // Every field parses again, none read as null.
                    assert!(request.tree().values().all(|v| !v.is_null()), "{body:.80}");
                }
                Err(error) => {
                    assert!(!accepted, "refused {body:.80}: {error:?}");
                    assert_eq!(error.code.as_deref(), Some("invalid_json"));
                }
            }
        }
    }

    #[test]
    fn duplicate_keys_keep_the_last_and_escaped_keys_are_read() {
        let raw = br#"{"model":"a","top_p":1,"top_p":0.5,"mo\u0064el":"b","x\"y":2}"#;
        let request = parse_request(Bytes::from_static(raw)).unwrap();
        assert_eq!(request.model, "b");
        let body = request.body_for("m", &[], &Map::new());
        assert_eq!(sent(&body), json!({"model": "m", "top_p": 0.5, "x\"y": 2}));
    }

    #[test]
    fn a_fix_that_may_apply_goes_through_the_tree() {
        let table = super::super::fixes::FixTable::embedded().unwrap();
        // OpenAI refuses replayed reasoning; Kimi, GLM and DeepSeek keep it.
        let fixes = table.for_provider("openai");
        let request = parse(json!({
            "model": "agent",
            "messages": [
                {"role": "assistant", "content": "a", "reasoning_content": "r"},
                {"role": "user", "content": "b"},
            ],
        }));
        let body = sent(&request.body_for("gpt-5", &fixes, &Map::new()));
        assert!(
            body["messages"][0].get("reasoning_content").is_none(),
            "{body}"
        );
        assert_eq!(body["model"], "gpt-5");
        let kimi = table.for_provider("kimi");
        let kept = sent(&request.body_for("k", &kimi, &Map::new()));
        assert_eq!(kept["messages"][0]["reasoning_content"], "r");
    }
}

//! The caller's chat request as the gateway reads it: a borrowed "peek" of its top-level fields
//! (each kept as the byte range of its raw JSON in the received body), the model and the stream
//! flag — never a tree of the messages and tools, which can be megabytes.
//!
//! The body sent to a target is the original bytes of every field, with `model` replaced and the
//! target's `params` set; only when a request fix (`fixes`) may apply is the request parsed
//! into a tree and re-serialised (a fix has to look inside messages). Token estimates read the
//! raw text too (`estimate`). [`parse_request`] is the one entry point from bytes, so that it
//! can be fuzzed. No I/O.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

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

/// Reads a request body: a JSON object with a string `model`.
pub fn parse_request(raw: Bytes) -> Result<ChatRequest, ApiError> {
    let base = raw.as_ptr() as usize;
    let TopLevel(pairs) = serde_json::from_slice::<TopLevel<'_>>(&raw)
        .map_err(|e| ApiError::invalid_json(&e.to_string()))?;
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
                // Each range is a value serde_json itself delimited: it parses again.
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

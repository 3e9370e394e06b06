//! Token estimates: a rough count of a request's tokens, made before sending. The gateway skips
//! targets whose context window is known to be too small without a request; the request lint
//! (`lint`) names requests that cannot fit the model's window. One implementation for both, so
//! that the gateway and `isdown check --request` never disagree about a request's size.
//!
//! No tokenizer: providers use different ones and most publish none, and the estimate only has
//! to be right to within tens of percent ([`ESTIMATE_LOW_PERCENT`] says how far). Pure
//! functions, no I/O; a leaf module that knows nothing of providers.

use serde_json::{Map, Value};

/// Tokens an inline image is counted as: providers charge roughly 1–2k per image whatever its
/// size in bytes, so its base64 text must not be counted as text.
const IMAGE_TOKENS: u64 = 1_500;

/// The least share of the estimate, in percent, that the true count can be: the estimate errs
/// high by up to ~40% on CJK text (one token per character, where tokenizers fit 1–1.5 per
/// token), so a request is certainly over a limit only when 70% of its estimate is. On Latin
/// text, code and JSON it errs low (3–4 bytes per token, not 4), which this bound covers too.
pub const ESTIMATE_LOW_PERCENT: u64 = 70;

/// The lower bound of the true count of a request estimated at `estimate` tokens.
pub fn certain_tokens(estimate: u64) -> u64 {
    estimate / 100 * ESTIMATE_LOW_PERCENT + estimate % 100 * ESTIMATE_LOW_PERCENT / 100
}

/// A rough token count of a request (its messages and tool definitions), to skip targets whose
/// context window is known to be too small before sending. Text counts ~4 bytes per token for
/// ASCII (the usual English/code rate) and one token per non-ASCII character (CJK runs ~1–1.5
/// characters per token, so this errs high); inline `data:` URLs count as one image. An estimate
/// that is too high only skips a target that was within a few percent of its limit.
pub fn estimate_request_tokens(request: &Map<String, Value>) -> u64 {
    COUNTED_FIELDS
        .iter()
        .filter_map(|key| request.get(*key))
        .map(estimate_value)
        .sum()
}

/// The request fields whose text counts toward its size.
pub const COUNTED_FIELDS: [&str; 3] = ["messages", "tools", "functions"];

/// Tokens of raw JSON text, a `"data:…"` string counting as one image.
pub fn estimate_json_text(text: &[u8]) -> u64 {
    let finder = memchr::memmem::Finder::new(b"\"data:");
    let mut total = 0;
    let mut rest = text;
    while let Some(at) = finder.find(rest) {
        total += estimate_tokens(&rest[..at]) + IMAGE_TOKENS;
        let url = &rest[at + 1..];
        // A data URL holds no quote: the next one closes it.
        let end = memchr::memchr(b'"', url).map_or(url.len(), |e| e + 1);
        rest = &url[end..];
    }
    total + estimate_tokens(rest)
}

fn estimate_value(value: &Value) -> u64 {
    match value {
        Value::String(text) if text.starts_with("data:") => IMAGE_TOKENS,
        Value::String(text) => estimate_tokens(text.as_bytes()),
        Value::Array(items) => items.iter().map(estimate_value).sum(),
        // Keys and punctuation: about one token per field.
        Value::Object(map) => map.values().map(|v| 1 + estimate_value(v)).sum(),
        Value::Number(_) | Value::Bool(_) | Value::Null => 1,
    }
}

/// Tokens of a text: ~4 ASCII bytes per token, one per non-ASCII character.
pub fn estimate_tokens(text: &[u8]) -> u64 {
    // Two branch-free counts: the compiler vectorises them (a 1 MB prompt in well under 1 ms).
    let ascii = text.iter().filter(|&&b| b < 0x80).count() as u64;
    let leading = text.iter().filter(|&&b| b >= 0xC0).count() as u64;
    ascii / 4 + leading
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_estimate_counts_text_and_tools_but_not_image_bytes() {
        let image = format!("data:image/png;base64,{}", "A".repeat(1_000_000));
        let request = json!({
            "model": "m",
            "temperature": 0.5,
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "abcd".repeat(100)},
                    {"type": "image_url", "image_url": {"url": image}},
                ]},
            ],
        });
        let Value::Object(map) = request else {
            panic!()
        };
        let estimate = estimate_request_tokens(&map);
        // 100 text tokens + one image + a few for the structure.
        assert!((1_600..1_650).contains(&estimate), "{estimate}");
    }

    #[test]
    fn token_estimate_table() {
        let rows: [(&str, u64); 4] = [("", 0), ("abcdabcdabcd", 3), ("你好世界", 4), ("ab你好", 2)];
        for (text, want) in rows {
            assert_eq!(estimate_tokens(text.as_bytes()), want, "{text}");
        }
    }
}

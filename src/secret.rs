//! Keeping secrets out of everything isdown writes: logs, errors, pages, JSON, alerts, the
//! database and panic messages.
//!
//! Two lines of defence. Keys live in [`secrecy::SecretString`] from the moment they are read
//! from the environment; `Debug` prints `[REDACTED]` and only request building calls
//! `expose_secret`. And every text that came from elsewhere — provider error messages, receiver
//! answers, transport errors — passes [`scrub`] before it is stored or shown: the exact value of
//! every configured secret (in its raw, URL-encoded and base64 forms) is replaced, whatever it
//! looks like, and then key-shaped tokens are masked by pattern ([`redact`]), for keys isdown was
//! never told about.
//!
//! The configured values sit in one process-wide registry ([`register`]), filled when a config is
//! loaded (every key, client key, admin token and channel secret) and never emptied: text written
//! under an old config may still hold an old key. A registry rather than a parameter because the
//! log writer and the panic hook must scrub too, and they cannot be handed the config.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

/// What a configured secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Shorter values cannot be told apart from ordinary words, so they are refused as secrets at
/// config load ([`check_value`]) rather than registered.
pub const MIN_REGISTERED_LEN: usize = 4;

/// The registered secrets, in every form they are looked for, and their matcher.
#[derive(Default)]
struct Registry {
    forms: Vec<String>,
    matcher: Option<AhoCorasick>,
}

static REGISTRY: LazyLock<RwLock<Arc<Registry>>> = LazyLock::new(Default::default);

/// Adds secret values to the registry (their raw, URL-encoded and base64 forms). Values shorter
/// than [`MIN_REGISTERED_LEN`] are ignored; registering a value twice changes nothing.
pub fn register<'a>(values: impl IntoIterator<Item = &'a str>) {
    let current = registry();
    let mut forms = current.forms.clone();
    let before = forms.len();
    for value in values {
        if value.len() < MIN_REGISTERED_LEN {
            continue;
        }
        for form in forms_of(value) {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    if forms.len() == before {
        return;
    }
    // Leftmost-longest: a key that contains another registered key is replaced whole.
    let matcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&forms)
        .ok();
    let fresh = Arc::new(Registry { forms, matcher });
    *REGISTRY
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
}

fn registry() -> Arc<Registry> {
    REGISTRY
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The forms a secret may take in text: as is, percent-encoded (a key in a URL or a form body)
/// and base64-encoded (a key in a Basic header or a token echoed encoded).
fn forms_of(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    let encoded = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let engines = [
        base64::engine::general_purpose::STANDARD.encode(value),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(value),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
    ];
    for form in std::iter::once(encoded).chain(engines) {
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

/// Whether a value read from the environment can serve as a secret: no control characters (a
/// stray `\x01` or line break from a copy-paste would reach the wire as a broken header and look
/// like a network failure) and long enough to be recognised in text. The error never repeats
/// the value.
pub fn check_value(value: &str) -> Result<(), SecretValueError> {
    if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(SecretValueError::ControlCharacter {
            position: value[..at].chars().count() + 1,
            code: u32::from(c),
        });
    }
    if value.len() < MIN_REGISTERED_LEN {
        return Err(SecretValueError::TooShort);
    }
    Ok(())
}

/// Why a value cannot be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretValueError {
    #[error(
        "contains a control character (U+{code:04X} at character {position}); \
         copy the value again without line breaks or invisible characters"
    )]
    ControlCharacter { position: usize, code: u32 },
    #[error("is shorter than {MIN_REGISTERED_LEN} characters, too short to be a key")]
    TooShort,
}

/// Everything isdown shows or stores passes here: every registered secret (exact value, in each
/// form) becomes `[redacted]`, then key-shaped tokens are masked ([`redact`]).
pub fn scrub(text: &str) -> String {
    let exact = scrub_registered(text);
    redact(&exact)
}

/// Replaces the registered secrets only (no pattern masking): for bytes whose shape must not
/// change beyond the secret itself, such as a provider's error body passed through.
///
/// A secret found inside a longer run of key characters takes the whole run with it: the run
/// may be another key that merely starts with a short registered one (`sk-abc` inside
/// `sk-abcdef0123…`), and replacing only the registered part would leave the rest of that key
/// in a shape the pattern masking no longer recognises.
pub fn scrub_registered(text: &str) -> Cow<'_, str> {
    let registry = registry();
    let Some(matcher) = &registry.matcher else {
        return Cow::Borrowed(text);
    };
    let bytes = text.as_bytes();
    let is_key_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut out = String::new();
    let mut copied = 0;
    for found in matcher.find_iter(text) {
        let mut start = found.start();
        let mut end = found.end();
        if start < copied {
            // Inside the run an earlier match already took.
            continue;
        }
        while start > copied && is_key_byte(bytes[start - 1]) {
            start -= 1;
        }
        while end < bytes.len() && is_key_byte(bytes[end]) {
            end += 1;
        }
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    if copied == 0 && out.is_empty() {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// [`scrub`] applied to every string inside a JSON document (keys and structure stay as they
/// are): for stored snapshots and payloads, where a replacement must not break the JSON.
pub fn scrub_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            let clean = scrub(text);
            if clean != *text {
                *text = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(scrub_json),
        _ => {}
    }
}

/// A JSON document's text, scrubbed string by string; text that is not JSON is scrubbed whole.
pub fn scrub_json_text(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) => {
            scrub_json(&mut value);
            serde_json::to_string(&value).unwrap_or_else(|_| scrub(text))
        }
        Err(_) => scrub(text),
    }
}

/// Masks secrets in free text: first whatever follows a secret marker (`sk-…`, `Bearer …`,
/// `key=…`: the marker stays, so "sk-***" still says which kind of key it was), then any long
/// run of key characters mixing letters and digits (Zhipu keys carry no marker).
pub fn redact(text: &str) -> String {
    redact_long_tokens(&redact_after_markers(text))
}

/// Markers after which a secret follows (matched case-insensitively). Redaction keeps the
/// marker, so "sk-***" still tells the reader which kind of key it was, and masks the token.
const SECRET_MARKERS: [&str; 6] = ["sk-", "sk_", "bearer ", "key=", "token=", "x-api-key: "];

/// Shortest token treated as a secret: masks real keys, keeps "sk-..." placeholders readable.
const MIN_SECRET_LEN: usize = 8;

/// Masks what follows a secret marker (`sk-…`, `Bearer …`, `key=…`) when it is long enough to
/// be a real secret.
fn redact_after_markers(text: &str) -> String {
    // One pass over the text for all markers: searching for each marker again from every match
    // made a long text of many markers (a 16 MiB "model name" of `sk- sk- …`) take minutes.
    static MARKERS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(SECRET_MARKERS)
            .ok()
    });
    let Some(markers) = MARKERS.as_ref() else {
        // Six fixed ASCII patterns always build; were they not to, the long-token masking that
        // follows in `redact` still runs.
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    for found in markers.find_iter(text) {
        let start = found.start();
        if start < at {
            // Inside a token already read.
            continue;
        }
        let token_start = found.end();
        let token_len = text[token_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_*~+/".contains(c)))
            .unwrap_or(text.len() - token_start);
        let boundary = !text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if boundary && token_len >= MIN_SECRET_LEN {
            out.push_str(&text[copied..token_start]);
            out.push_str("***");
            copied = token_start + token_len;
        }
        at = next_char_boundary(text, token_start + token_len.max(1));
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

fn next_char_boundary(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at.min(text.len())
}

fn redact_long_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for ch in text.chars() {
        if is_key_char(ch) {
            token.push(ch);
        } else {
            flush(&mut token, &mut out);
            out.push(ch);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn is_key_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.'
}

fn flush(token: &mut String, out: &mut String) {
    // A sentence's full stop after a key is punctuation, not part of the key.
    let trimmed = token.trim_end_matches('.');
    let trailing = &token[trimmed.len()..];
    if looks_like_key(trimmed) {
        let keep: String = trimmed.chars().take(4).collect();
        out.push_str(&keep);
        out.push_str("…[redacted]");
        out.push_str(trailing);
    } else {
        out.push_str(token);
    }
    token.clear();
}

fn looks_like_key(token: &str) -> bool {
    let has_digit = token.chars().any(|c| c.is_ascii_digit());
    let has_alpha = token.chars().any(|c| c.is_ascii_alphabetic());
    // "sk-" prefixed tokens are keys at OpenAI, Moonshot, DeepSeek, DashScope, OpenRouter and
    // Anthropic; 12 characters already carry enough of a real key to matter.
    let prefixed = token.starts_with("sk-") && token.len() >= 12 && !token.ends_with("***");
    // Zhipu keys are `<32 hex>.<16 alnum>`; long mixed runs of key characters are keys or ids,
    // and an id lost from an error message costs less than a leaked key.
    let long_mixed = token.len() >= 32 && has_digit && has_alpha && !token.contains("..");
    (prefixed || long_mixed) && !token.starts_with("http")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_in_messages_are_redacted() {
        let msg = "Incorrect API key provided: sk-proj-abcdef1234567890. You can find your key";
        let out = redact(msg);
        assert!(!out.contains("abcdef1234567890"), "{out}");
        assert!(
            out.starts_with("Incorrect API key provided: sk-***. You can"),
            "{out}"
        );
        let out = redact("Header was Bearer Zz93kdLq0PzWm27XcVb8");
        assert_eq!(out, "Header was Bearer ***");
    }

    #[test]
    fn zhipu_style_keys_are_redacted() {
        let out = redact("key 0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp rejected");
        assert!(!out.contains("AbCdEfGhIjKlMnOp"), "{out}");
    }

    #[test]
    fn ordinary_text_urls_and_model_ids_survive() {
        let text = "Model kimi-k2.6 at https://api.moonshot.ai/v1 answered 503 in 310 ms";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn registered_values_are_removed_whatever_their_shape() {
        register(["hunter2x", "vllm", "Tok/en+with=odd"]);
        assert_eq!(scrub("got hunter2x back"), "got [redacted] back");
        assert_eq!(scrub("bad key vllm."), "bad key [redacted].");
        assert_eq!(scrub("q=Tok%2Fen%2Bwith%3Dodd&x=1"), "q=[redacted]&x=1");
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2x");
        assert_eq!(scrub(&format!("Basic {b64}")), "Basic [redacted]");
    }

    #[test]
    fn a_registered_value_inside_a_longer_token_takes_the_token() {
        // Found by a test run where a short key (`sk-abc`) was registered: a longer key starting
        // with it lost only its head, and its tail no longer looked like a key.
        register(["zq-Short1"]);
        assert_eq!(
            scrub("key zq-Short1def0123456789abcdef0123456789 refused"),
            "key [redacted] refused"
        );
        assert_eq!(
            scrub_registered("a xzq-Short1, b zq-Short1"),
            "a [redacted], b [redacted]"
        );
        assert_eq!(scrub_registered("(zq-Short1)"), "([redacted])");
        assert_eq!(scrub_registered("nothing here"), "nothing here");
    }

    #[test]
    fn json_scrubbing_keeps_the_structure() {
        register(["probe-secret-value"]);
        let text = r#"{"probe-secret-value":"key probe-secret-value rejected","n":1}"#;
        let clean: serde_json::Value = serde_json::from_str(&scrub_json_text(text)).unwrap();
        assert_eq!(clean["probe-secret-value"], "key [redacted] rejected");
        assert_eq!(clean["n"], 1);
    }

    #[test]
    fn control_characters_and_tiny_values_are_not_secrets() {
        assert_eq!(
            check_value("abc\u{1}def"),
            Err(SecretValueError::ControlCharacter {
                position: 4,
                code: 1
            })
        );
        assert!(check_value("sk-abc\n").is_err());
        assert_eq!(check_value("abc"), Err(SecretValueError::TooShort));
        assert!(check_value("token-1").is_ok());
        let message = check_value("secret\u{7}value").unwrap_err().to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}

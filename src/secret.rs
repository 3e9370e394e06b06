//! Keeping keys out of everything isdown prints.
//!
//! Keys live in [`secrecy::SecretString`] from the moment they are read from the environment;
//! `Debug` prints `[REDACTED]` and only request building calls `expose_secret`. This module adds
//! the second line of defence for text that came from elsewhere — provider error messages,
//! config parse errors — which may quote a key-like token back at us.

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
    // ASCII lower-casing keeps every byte offset, so positions found in it index `text`.
    let haystack = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        let found = SECRET_MARKERS
            .iter()
            .filter_map(|marker| haystack[at..].find(marker).map(|i| (at + i, marker.len())))
            .min();
        let Some((start, marker_len)) = found else {
            break;
        };
        let token_start = start + marker_len;
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
        at = token_start + token_len.max(1);
        at = next_char_boundary(text, at);
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

/// Removes every occurrence of the given secret values from `text` (exact match), then applies
/// [`redact`]. Used on whole outputs as a last check before they leave the process.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    redact(&text)
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
    fn scrub_removes_exact_secret_values_even_when_short_and_unprefixed() {
        assert_eq!(
            scrub("got hunter2x back", &["hunter2x"]),
            "got [redacted] back"
        );
    }
}

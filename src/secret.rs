//! Keeping keys out of everything isdown prints.
//!
//! Keys live in [`secrecy::SecretString`] from the moment they are read from the environment;
//! `Debug` prints `[REDACTED]` and only request building calls `expose_secret`. This module adds
//! the second line of defence for text that came from elsewhere — provider error messages,
//! config parse errors — which may quote a key-like token back at us.

/// Replaces key-like tokens (`sk-…`, `sk-or-…`, `sk-ant-…`, and any unbroken run of 32+ key
/// characters) with a marker. Keeps 4 leading characters so people can tell keys apart.
pub fn redact(text: &str) -> String {
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
    if looks_like_key(token) {
        let keep: String = token.chars().take(4).collect();
        out.push_str(&keep);
        out.push_str("…[redacted]");
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
    let prefixed = token.starts_with("sk-") && token.len() >= 12;
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
        assert!(out.starts_with("Incorrect API key provided: sk-p…[redacted]. You can"));
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

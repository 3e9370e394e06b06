//! How isdown quotes text it did not write — a status page's word, a feed's element name, a
//! client's model name — inside its own messages: an excerpt of a few dozen characters, never the
//! whole, so that hostile or broken input cannot fill a status page, a stored error or a log line
//! with itself.
//!
//! Pure. [`excerpt`] does not redact; [`scrubbed_excerpt`] is for text that may hold a key.

/// Characters past an excerpt that are scrubbed with it: a key that starts inside the excerpt
/// is whole in them unless it is longer than this, so the redaction still recognises it.
const SCRUB_SLACK: usize = 1024;

/// `text` cut to `max_chars` characters (`…` added when cut), control characters replaced by
/// U+FFFD so that a quote stays on one line.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// [`excerpt`] of `text` after `secret::scrub`. Only the head of `text` is scrubbed, never the
/// whole: the scrub's cost grows with the text (faster than linearly for some shapes), the text
/// may be a 16 MiB request line, and only the head is shown. Scrubbing before cutting, because a
/// cut could leave part of a key that the patterns no longer recognise.
pub fn scrubbed_excerpt(text: &str, max_chars: usize) -> String {
    let head_end = text
        .char_indices()
        .nth(max_chars.saturating_add(SCRUB_SLACK))
        .map_or(text.len(), |(at, _)| at);
    let mut out = excerpt(&crate::secret::scrub(&text[..head_end]), max_chars);
    if head_end < text.len() && !out.ends_with('…') {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_cut_at_its_length_and_keeps_one_line() {
        assert_eq!(excerpt("kimi-k2.6", 9), "kimi-k2.6");
        assert_eq!(excerpt("kimi-k2.6", 4), "kimi…");
        assert_eq!(excerpt("一二三四", 2), "一二…");
        assert_eq!(excerpt("a\nb\u{1b}c", 10), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(excerpt("", 3), "");
    }

    #[test]
    fn a_scrubbed_excerpt_hides_keys_and_reads_only_the_head_of_a_long_text() {
        let key = "sk-abcdef0123456789abcdef0123456789";
        let quoted = scrubbed_excerpt(&format!("model {key} please"), 80);
        assert!(!quoted.contains("0123456789"), "{quoted}");
        // A key cut by the excerpt is still redacted whole.
        assert!(!scrubbed_excerpt(&format!("m {key}"), 10).contains("abc"));
        // The pattern scrub is slow on this shape when given all of it (many markers, each
        // searched for to the end of the text); the head alone is quick.
        let long = "sk- ".repeat(250_000);
        assert_eq!(scrubbed_excerpt(&long, 6), "sk- sk…");
        // Cut after the scrubbed head: still marked as cut.
        let keys = format!("{key}{}", "0a".repeat(5_000));
        assert!(scrubbed_excerpt(&keys, 80).ends_with('…'));
    }
}

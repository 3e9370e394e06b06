//! How alerts read: the one vocabulary every channel, the email template and the status page's
//! text share — durations, timestamps for people, whose side a failure is on, event names and
//! icons, and the [`Digest`] (an alert read as plain strings, before any receiver's markup).
//!
//! Pure functions over [`AlertMessage`]; no I/O, no receiver formats (Block Kit, embeds, HTML
//! tables belong to the channels). Each phrase is written once here, so a change of wording is
//! one edit and the snapshot tests of every channel show its effect. Machine-readable fields that
//! receivers parse (RFC 3339 timestamps, verdict and blame ids) are not phrases and stay as the
//! shared vocabulary in `crate::time` and `crate::verdict` defines them.

use std::borrow::Cow;

use super::{AlertEvent, AlertItem, AlertMessage, Severity};
use crate::incident::IncidentKind;
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis, rfc3339};
use crate::verdict::Blame;

// === durations and timestamps ===

/// "45 s", "23 min", "2 h 5 min", "3 d 4 h": two units at most, rounded down. The one duration
/// format of every alert and page.
pub fn duration(ms: Millis) -> String {
    let ms = ms.max(0);
    if ms < MINUTE_MS {
        return format!("{} s", ms / 1000);
    }
    if ms < HOUR_MS {
        return format!("{} min", ms / MINUTE_MS);
    }
    let (big, unit, small, small_unit) = if ms < DAY_MS {
        (ms / HOUR_MS, "h", (ms % HOUR_MS) / MINUTE_MS, "min")
    } else {
        (ms / DAY_MS, "d", (ms % DAY_MS) / HOUR_MS, "h")
    };
    if small == 0 {
        format!("{big} {unit}")
    } else {
        format!("{big} {unit} {small} {small_unit}")
    }
}

/// How long a resolved incident lasted: its duration, else end minus start; `None` for any other
/// event.
pub fn lasted(message: &AlertMessage) -> Option<Millis> {
    if message.event != AlertEvent::Resolved {
        return None;
    }
    message.duration_s.map(|s| s * 1000).or_else(|| {
        message
            .ended_at
            .map(|end| (end - message.started_at).max(0))
    })
}

/// "2026-11-25 14:03 UTC": an instant for people (receivers that parse time get RFC 3339).
pub fn utc(at: Millis) -> String {
    let text = rfc3339(at);
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// "14:03 UTC": an instant inside a one-line subject.
pub fn utc_time(at: Millis) -> String {
    format!("{} UTC", &rfc3339(at)[11..16])
}

// === words ===

/// Whose side a failure is on, as a phrase: "the provider's side", "your account (key, quota or
/// plan)", …
pub fn blame_words(blame: Option<Blame>) -> &'static str {
    match blame {
        Some(Blame::Provider) => "the provider's side",
        Some(Blame::Account) => "your account (key, quota or plan)",
        Some(Blame::Request) => "your request (model or parameters)",
        Some(Blame::Network) => "isdown's own network",
        None => "not determined",
    }
}

/// The same, in one word where space is short (SMS): "provider", "account", "request",
/// "network".
pub fn blame_word(blame: Blame) -> &'static str {
    match blame {
        Blame::Provider => "provider",
        Blame::Account => "account",
        Blame::Request => "request",
        Blame::Network => "network",
    }
}

// Exhaustive matches rather than lookup tables: a new event, severity or blame must fail to
// compile here instead of silently rendering a default.

/// "Opened", "Update", "Reminder", "Resolved", "Test".
pub fn event_name(event: AlertEvent) -> &'static str {
    match event {
        AlertEvent::Opened => "Opened",
        AlertEvent::Update => "Update",
        AlertEvent::Reminder => "Reminder",
        AlertEvent::Resolved => "Resolved",
        AlertEvent::Test => "Test",
    }
}

/// One emoji for the event and severity; plain Unicode, which every receiver renders.
pub fn icon(event: AlertEvent, severity: Severity) -> &'static str {
    match (event, severity) {
        (AlertEvent::Resolved, _) => "✅",
        (AlertEvent::Test, _) => "🧪",
        (_, Severity::Critical) => "🔴",
        (_, Severity::Warning) => "⚠️",
        (_, Severity::Info) => "ℹ️",
    }
}

/// "critical", "warning", "info": the three levels every receiver understands.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// "Kimi · kimi-k2 (monitor kimi-chat)".
pub fn subject(item: &AlertItem) -> String {
    match &item.model {
        Some(model) => format!(
            "{} · {model} (monitor {})",
            item.provider_name, item.monitor
        ),
        None => format!("{} (monitor {})", item.provider_name, item.monitor),
    }
}

/// Since when, or for a resolve, from when to when: "Since 2026-11-25 14:03 UTC",
/// "2026-11-25 14:03 UTC → 2026-11-25 15:15 UTC". How long, and that it is a reminder or a
/// resolve, the title and the channel's event label already say.
pub fn timing(message: &AlertMessage) -> String {
    let start = utc(message.started_at);
    match (message.event, message.ended_at) {
        (AlertEvent::Resolved, Some(end)) => format!("{start} → {}", utc(end)),
        (AlertEvent::Resolved, None) => format!("Started {start}"),
        (AlertEvent::Opened | AlertEvent::Update | AlertEvent::Reminder | AlertEvent::Test, _) => {
            format!("Since {start}")
        }
    }
}

// === the official page ===

/// What an incident's page says when the provider's own page never posted it.
pub const NOT_ACKNOWLEDGED: &str = "not acknowledged officially";

/// "detected 12 min before the official page", "the official page was 5 min ahead", or "detected
/// when the official page posted it": a lead time (the official acknowledgement minus isdown's
/// start) in words, the same on pages and in alerts.
pub fn lead_words(lead: Millis) -> String {
    if lead > 0 {
        format!("detected {} before the official page", duration(lead))
    } else if lead < 0 {
        format!("the official page was {} ahead", duration(-lead))
    } else {
        "detected when the official page posted it".to_owned()
    }
}

/// The sentence an alert adds once the provider's page acknowledged the incident:
/// "The provider's status page acknowledged it at 14:15 UTC (detected 12 min before the
/// official page): "Elevated error rates" — https://stspg.io/abc."
pub fn official_sentence(
    title: &str,
    url: Option<&str>,
    acknowledged_at: Millis,
    lead: Millis,
) -> String {
    let link = url.map(|u| format!(" — {u}")).unwrap_or_default();
    format!(
        "The provider's status page acknowledged it at {} ({}): \"{title}\"{link}.",
        utc_time(acknowledged_at),
        lead_words(lead)
    )
}

// === the test message ===

/// What `isdown alert test CHANNEL` sends: says it is a test and that nothing is down.
pub fn test_message(channel: &str, now: Millis) -> AlertMessage {
    AlertMessage {
        event: AlertEvent::Test,
        kind: IncidentKind::Outage,
        title: "isdown test alert".into(),
        summary: format!(
            "This is a test of the `{channel}` channel, sent by `isdown alert test`. Nothing is down."
        ),
        advice: "No action needed: if you can read this, alerts reach you.".into(),
        items: Vec::new(),
        started_at: now,
        ended_at: None,
        duration_s: None,
        url: None,
        dedup_key: format!("isdown-test-{channel}"),
    }
}

// === the digest ===

/// An alert read as plain strings: what every chat message says, before any markup. Values from
/// the message are borrowed unescaped; each channel escapes and cuts them for its own format.
#[derive(Debug)]
pub struct Digest<'a> {
    /// [`event_name`].
    pub event: &'static str,
    pub severity: Severity,
    /// [`icon`].
    pub icon: &'static str,
    pub title: &'a str,
    pub summary: &'a str,
    pub advice: &'a str,
    /// [`timing`].
    pub timing: String,
    pub items: Vec<ItemDigest<'a>>,
    pub url: Option<&'a str>,
    pub dedup_key: &'a str,
    /// The moment the message is about: the end for a resolve, else the start.
    pub at: Millis,
}

/// One monitor of an alert, as plain strings.
#[derive(Debug)]
pub struct ItemDigest<'a> {
    /// [`subject`].
    pub subject: String,
    pub verdict: &'static str,
    /// [`blame_words`].
    pub blame: &'static str,
    /// [`utc`].
    pub since: String,
    pub explanation: &'a str,
}

impl<'a> Digest<'a> {
    pub fn of(message: &'a AlertMessage) -> Digest<'a> {
        let severity = message.severity();
        Digest {
            event: event_name(message.event),
            severity,
            icon: icon(message.event, severity),
            title: &message.title,
            summary: &message.summary,
            advice: &message.advice,
            timing: timing(message),
            items: message.items.iter().map(ItemDigest::of).collect(),
            url: message.url.as_deref().filter(|url| !url.trim().is_empty()),
            dedup_key: &message.dedup_key,
            at: match message.event {
                AlertEvent::Resolved => message.ended_at.unwrap_or(message.started_at),
                _ => message.started_at,
            },
        }
    }
}

impl<'a> ItemDigest<'a> {
    pub fn of(item: &'a AlertItem) -> ItemDigest<'a> {
        ItemDigest {
            subject: subject(item),
            verdict: item.verdict.as_str(),
            blame: blame_words(item.blame),
            since: utc(item.started_at),
            explanation: &item.explanation,
        }
    }
}

// === cutting and escaping ===

/// Cuts `text` to at most `max_chars` characters, the last being "…" when anything was cut.
pub fn truncate(text: &str, max_chars: usize) -> Cow<'_, str> {
    if text.char_indices().nth(max_chars).is_none() {
        return Cow::Borrowed(text);
    }
    let cut = text
        .char_indices()
        .nth(max_chars.saturating_sub(1))
        .map_or(text.len(), |(at, _)| at);
    Cow::Owned(format!("{}…", &text[..cut]))
}

/// [`truncate`], owned.
pub fn truncate_owned(text: &str, max_chars: usize) -> String {
    truncate(text, max_chars).into_owned()
}

/// Distinct values in first-seen order (providers, verdicts of a grouped alert).
pub fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for value in values {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

/// Escapes `&`, `<` and `>` — the three characters both Slack mrkdwn and Telegram HTML treat as
/// markup — and cuts the result to at most `max_chars` characters ("…" included) without
/// splitting an entity.
pub fn escape_markup(text: &str, max_chars: usize) -> String {
    let escaped_len: usize = text.chars().map(escaped_char_len).sum();
    let budget = if escaped_len <= max_chars {
        escaped_len
    } else {
        max_chars.saturating_sub(1)
    };
    let mut out = String::with_capacity(budget.min(text.len() * 2));
    let mut used = 0;
    for ch in text.chars() {
        let len = escaped_char_len(ch);
        if used + len > budget {
            out.push('…');
            break;
        }
        match entity(ch) {
            Some(entity) => out.push_str(entity),
            None => out.push(ch),
        }
        used += len;
    }
    out
}

fn entity(ch: char) -> Option<&'static str> {
    match ch {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

fn escaped_char_len(ch: char) -> usize {
    entity(ch).map_or(1, str::len)
}

/// Header values and SMS are one line: control characters become spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_two_units_at_most_rounded_down() {
        for (ms, text) in [
            (-5, "0 s"),
            (45_000, "45 s"),
            (23 * MINUTE_MS + 59_000, "23 min"),
            (HOUR_MS, "1 h"),
            (2 * HOUR_MS + 5 * MINUTE_MS + 59_000, "2 h 5 min"),
            (DAY_MS, "1 d"),
            (3 * DAY_MS + 4 * HOUR_MS + 59 * MINUTE_MS, "3 d 4 h"),
        ] {
            assert_eq!(duration(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn instants_for_people_are_utc_to_the_minute() {
        let at = 1_795_615_387_000; // 2026-11-25T14:03:07Z
        assert_eq!(utc(at), "2026-11-25 14:03 UTC");
        assert_eq!(utc_time(at), "14:03 UTC");
    }

    #[test]
    fn lead_times_read_the_same_everywhere() {
        assert_eq!(
            lead_words(12 * MINUTE_MS),
            "detected 12 min before the official page"
        );
        assert_eq!(
            lead_words(-5 * MINUTE_MS),
            "the official page was 5 min ahead"
        );
        assert_eq!(lead_words(0), "detected when the official page posted it");
        let at = 1_795_615_387_000; // 2026-11-25T14:03:07Z
        assert_eq!(
            official_sentence(
                "Elevated errors",
                Some("https://stspg.io/a"),
                at,
                12 * MINUTE_MS
            ),
            "The provider's status page acknowledged it at 14:03 UTC (detected 12 min before the \
             official page): \"Elevated errors\" — https://stspg.io/a."
        );
    }

    #[test]
    fn escaping_never_splits_an_entity_and_marks_the_cut() {
        assert_eq!(escape_markup("a<b>&c", 100), "a&lt;b&gt;&amp;c");
        assert_eq!(escape_markup("ab<cd", 4), "ab…");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}

//! How values read on the public pages: durations, latencies, percentages, dates, and the
//! words for states, verdicts and blame.
//!
//! Pure functions over the existing vocabulary (monitor states, incident kinds, verdicts,
//! blame): the pages add wording, never a second set of names. Times are shown in UTC, the
//! same instants the JSON API gives in RFC 3339.

use crate::incident::IncidentKind;
use crate::monitor::machine::MonitorState;
use crate::time::{Millis, rfc3339};
use crate::verdict::{Blame, Verdict};

/// "45 s", "23 min", "2 h 5 min", "3 d 4 h": the alerts' duration format, so a page and an
/// alert about the same incident say the same thing.
pub use crate::alert::render::duration;

/// "312 ms", "1.5 s", "12 s".
pub fn latency(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".to_owned();
    }
    if ms < 1_000.0 {
        format!("{} ms", ms.round() as i64)
    } else if ms < 10_000.0 {
        format!("{:.1} s", ms / 1_000.0)
    } else {
        format!("{} s", (ms / 1_000.0).round() as i64)
    }
}

/// "99.95%", rounded down so that a day with one failure never reads "100.00%"; "100%" only
/// when nothing failed; "no data" when nothing was measured.
pub fn percent(fraction: Option<f64>) -> String {
    match fraction {
        None => "no data".to_owned(),
        Some(f) if f >= 1.0 => "100%".to_owned(),
        Some(f) => format!("{:.2}%", (f.max(0.0) * 10_000.0).floor() / 100.0),
    }
}

/// "2026-11-25".
pub fn date(at: Millis) -> String {
    rfc3339(at)[..10].to_owned()
}

/// "2026-11-25 14:03 UTC".
pub use crate::alert::render::utc as datetime;

/// "2026-11-25 14:03:07 UTC": probes come seconds apart, so their list needs the seconds.
pub fn datetime_seconds(at: Millis) -> String {
    let stamp = rfc3339(at);
    format!("{} {} UTC", &stamp[..10], &stamp[11..19])
}

/// "14:03".
pub fn clock(at: Millis) -> String {
    rfc3339(at)[11..16].to_owned()
}

/// "11-25".
pub fn month_day(at: Millis) -> String {
    rfc3339(at)[5..10].to_owned()
}

/// The CSS class of a state (`state-up`, …): colour is never the only signal, every use also
/// prints [`state_label`].
/// The durable queue's lines waiting for a provider: "1 batch line waits for it" — said on
/// the status page so that people see their work is held, not lost.
pub fn queue_waiting(lines: u64) -> String {
    match lines {
        1 => "1 queued batch line waits for it to recover".to_owned(),
        n => format!("{n} queued batch lines wait for it to recover"),
    }
}

pub fn state_class(state: MonitorState) -> &'static str {
    match state {
        MonitorState::Unknown => "state-unknown",
        MonitorState::Up => "state-up",
        MonitorState::Degraded => "state-degraded",
        MonitorState::Down => "state-down",
        MonitorState::SetupProblem => "state-setup",
        MonitorState::Regional => "state-degraded",
    }
}

pub fn state_label(state: MonitorState) -> &'static str {
    match state {
        MonitorState::Unknown => "Not checked yet",
        MonitorState::Up => "Operational",
        MonitorState::Degraded => "Degraded performance",
        MonitorState::Down => "Major outage",
        MonitorState::SetupProblem => "Setup problem",
        MonitorState::Regional => "Failing in some regions",
    }
}

/// "rate limited": the contract name with spaces, so people and scripts see the same word.
pub fn verdict_words(verdict: Verdict) -> String {
    verdict_name_words(verdict.as_str())
}

/// [`verdict_words`] of a verdict known by its contract name (as stored for another region).
pub fn verdict_name_words(name: &str) -> String {
    name.replace('_', " ")
}

pub fn kind_label(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Outage => "Outage",
        IncidentKind::SetupProblem => "Setup problem",
        IncidentKind::Network => "Network",
        IncidentKind::Regional => "Regional outage",
    }
}

/// "outage (unavailable)", "setup problem (auth failed)"; a network incident's verdict adds
/// nothing to its kind, so it reads "network outage on isdown's side".
pub fn incident_title(kind: IncidentKind, verdict: Verdict) -> String {
    match kind {
        IncidentKind::Network => "network outage on isdown's side".to_owned(),
        _ => format!(
            "{} ({})",
            kind_label(kind).to_lowercase(),
            verdict_words(verdict)
        ),
    }
}

/// Whose side an incident was on, from its kind and (for setup problems) its verdict's blame.
pub fn incident_side(kind: IncidentKind, verdict: Verdict) -> &'static str {
    match kind {
        IncidentKind::Outage => "provider",
        IncidentKind::Regional => "provider, from some regions",
        IncidentKind::Network => "isdown's network",
        IncidentKind::SetupProblem => match verdict.default_blame() {
            Some(Blame::Request) => "request (config)",
            _ => "account",
        },
    }
}

/// Whose side one result's failure is on.
pub fn blame_label(blame: Option<Blame>) -> &'static str {
    blame.map_or("–", crate::alert::render::blame_word)
}

/// What a setup problem means in a banner: "Setup problem: DeepSeek key rejected".
pub fn setup_phrase(verdict: Option<Verdict>) -> &'static str {
    match verdict {
        Some(Verdict::AuthFailed) => "key rejected",
        Some(Verdict::QuotaExhausted) => "out of quota",
        Some(Verdict::RateLimited) => "rate limited",
        Some(Verdict::ModelNotFound) => "model not found",
        Some(Verdict::ContextTooLong) => "prompt too long",
        Some(Verdict::ContentFiltered) => "request filtered",
        Some(Verdict::BadRequest) => "request rejected",
        _ => "needs attention",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{HOUR_MS, MINUTE_MS};

    #[test]
    fn percentages_round_down_and_say_when_nothing_was_measured() {
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(Some(0.99999)), "99.99%");
        assert_eq!(percent(Some(0.5)), "50.00%");
        assert_eq!(percent(None), "no data");
    }

    #[test]
    fn latencies_and_dates_read_naturally() {
        assert_eq!(latency(312.4), "312 ms");
        assert_eq!(latency(1_500.0), "1.5 s");
        assert_eq!(latency(12_400.0), "12 s");
        // 2026-01-01T14:03:07Z
        let at = 1_767_225_600_000 + 14 * HOUR_MS + 3 * MINUTE_MS + 7_000;
        assert_eq!(datetime(at), "2026-01-01 14:03 UTC");
        assert_eq!(datetime_seconds(at), "2026-01-01 14:03:07 UTC");
        assert_eq!(date(at), "2026-01-01");
        assert_eq!(clock(at), "14:03");
        assert_eq!(month_day(at), "01-01");
    }

    #[test]
    fn setup_problems_say_whose_side() {
        assert_eq!(
            incident_side(IncidentKind::SetupProblem, Verdict::AuthFailed),
            "account"
        );
        assert_eq!(
            incident_side(IncidentKind::SetupProblem, Verdict::ModelNotFound),
            "request (config)"
        );
        assert_eq!(
            incident_side(IncidentKind::Outage, Verdict::Unavailable),
            "provider"
        );
        assert_eq!(setup_phrase(Some(Verdict::AuthFailed)), "key rejected");
    }
}

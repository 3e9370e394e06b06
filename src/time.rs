//! Time as isdown records it: Unix milliseconds ([`Millis`]), their units, the one way an instant
//! is printed for machines ([`rfc3339`]), and the [`Clock`] that derives wall time from tokio's
//! clock so paused-time tests move both at once.
//!
//! A leaf module: it imports nothing of isdown's, so every other module may use it. It does no
//! I/O beyond reading the system clock once per [`Clock::system`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds (UTC). Stored, compared and serialised as a plain integer; the
/// name carries the unit.
pub type Millis = i64;

pub const SECOND_MS: Millis = 1_000;
pub const MINUTE_MS: Millis = 60 * SECOND_MS;
pub const HOUR_MS: Millis = 60 * MINUTE_MS;
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// The last instant RFC 3339 can print with a four-digit year (9999-12-31T23:59:59Z).
const LAST_PRINTABLE_MS: Millis = 253_402_300_799_000;

/// "2026-11-25T14:03:07Z": the one way isdown writes an instant for machines (JSON API,
/// receivers' timestamps, feeds). Out-of-range values are clamped, never a panic.
pub fn rfc3339(at: Millis) -> String {
    let ms = u64::try_from(at.clamp(0, LAST_PRINTABLE_MS)).unwrap_or(0);
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A duration in whole milliseconds, saturating (a `Duration` of centuries does not wrap).
pub fn millis_of(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// The shortest duration isdown accepts anywhere: below a millisecond nothing it waits for is
/// measurable, and "1ns" is a typo, not a setting.
pub const MIN_DURATION: Duration = Duration::from_millis(1);
/// The longest duration isdown accepts anywhere (about a century, covering retention windows):
/// far enough for any real setting, near enough that adding it to a clock cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// "30s", "5m", "1h 30m", "250ms", within `min..=max`: the one parser of human durations for
/// config files, flags and headers. The message says what was wrong and shows an example.
pub fn parse_duration(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "invalid duration \"{}\" ({e}); expected e.g. \"30s\"",
            text.trim()
        )
    })?;
    if duration.is_zero() {
        return Err("a duration of zero is not allowed".into());
    }
    if duration < min {
        return Err(format!(
            "{} is too short: at least {} is needed",
            humantime::format_duration(duration),
            humantime::format_duration(min)
        ));
    }
    if duration > max {
        return Err(format!(
            "\"{}\" is too long: at most {} is allowed",
            text.trim(),
            humantime::format_duration(max)
        ));
    }
    Ok(duration)
}

/// Wall-clock time (Unix milliseconds) derived from tokio's clock.
///
/// Incidents and results carry wall times, but every wait uses tokio time. Taking the wall time
/// as "start + tokio time elapsed" keeps the two consistent and lets paused-time tests move both
/// at once.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Millis,
    start: tokio::time::Instant,
}

impl Clock {
    /// Starts at the system's current time.
    pub fn system() -> Clock {
        let base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, millis_of);
        Clock::starting_at(base)
    }

    /// Starts at a chosen wall time (tests).
    pub fn starting_at(base: Millis) -> Clock {
        Clock {
            base,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Millis {
        self.at(tokio::time::Instant::now())
    }

    /// The wall time of a tokio instant.
    pub fn at(&self, instant: tokio::time::Instant) -> Millis {
        let elapsed = millis_of(instant.saturating_duration_since(self.start));
        self.base.saturating_add(elapsed)
    }

    /// The tokio instant of a wall time (now, for times already past; far-future times are
    /// capped a century ahead rather than overflowing the instant).
    pub fn instant_of(&self, at: Millis) -> tokio::time::Instant {
        /// A century: later than any wait isdown schedules, early enough never to overflow.
        const FAR_AHEAD: Duration = Duration::from_secs(100 * 365 * 86_400);
        let now = tokio::time::Instant::now();
        let ahead = at.saturating_sub(self.at(now));
        let ahead = Duration::from_millis(u64::try_from(ahead).unwrap_or(0)).min(FAR_AHEAD);
        now.checked_add(ahead).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_clamps_instants_it_cannot_print() {
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(Millis::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(1_764_079_387_000), "2025-11-25T14:03:07Z");
    }

    #[test]
    fn durations_outside_their_bounds_are_refused_with_a_reason() {
        let parse = |t| parse_duration(t, MIN_DURATION, MAX_DURATION);
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert!(parse("0s").unwrap_err().contains("zero"));
        assert!(parse("1ns").unwrap_err().contains("too short"));
        assert!(parse("500000000000y").is_err());
        assert!(parse("101y").unwrap_err().contains("too long"));
        assert!(parse("soon").unwrap_err().contains("expected e.g."));
        assert!(
            parse_duration("500ms", Duration::from_secs(1), MAX_DURATION)
                .unwrap_err()
                .contains("at least 1s")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_tokio_time_and_never_overflows() {
        let clock = Clock::starting_at(1_000);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(clock.now(), 3_000);
        let far = clock.instant_of(Millis::MAX);
        assert!(far > tokio::time::Instant::now());
        assert_eq!(clock.instant_of(0), tokio::time::Instant::now());
        assert_eq!(millis_of(Duration::MAX), Millis::MAX);
    }
}

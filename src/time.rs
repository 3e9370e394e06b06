//! Time as isdown records it: Unix milliseconds ([`Millis`]), their units, the one way an instant
//! is printed for machines ([`rfc3339`]), the two ways other services write one that isdown reads
//! ([`parse_rfc3339`] with any offset, [`parse_rfc2822`] of RSS dates), and the [`Clock`] that
//! derives wall time from tokio's clock so paused-time tests move both at once.
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

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`);
/// `None` for a month or day out of range.
fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// A calendar date and time of day, checked, as Unix milliseconds before any offset.
fn civil_millis(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<Millis> {
    // A leap second (":60") is read as the last second of its minute.
    if h > 23 || m > 59 || s > 60 || !(1..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let seconds = days * 86_400 + i64::from(h * 3_600 + m * 60 + s.min(59));
    seconds.checked_mul(1_000)
}

/// Reads exactly `n` ASCII digits.
fn digits(text: &str, n: usize) -> Option<u32> {
    let part = text.get(..n)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

/// "+08:00", "-0700", "Z", "UTC", "GMT" as minutes east of UTC.
fn offset_minutes(text: &str) -> Option<i64> {
    match text {
        "Z" | "z" | "UTC" | "GMT" | "UT" => return Some(0),
        _ => {}
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &text[1..];
    let (h, m) = match rest.len() {
        5 if rest.as_bytes()[2] == b':' => (digits(rest, 2)?, digits(&rest[3..], 2)?),
        4 => (digits(rest, 2)?, digits(&rest[2..], 2)?),
        _ => return None,
    };
    (h <= 23 && m <= 59).then(|| sign * i64::from(h * 60 + m))
}

/// "2026-06-19T04:50:00.123-07:00", "2026-06-19T11:50:00Z": an RFC 3339 instant with any
/// offset (Statuspage writes the page's own time zone), as Unix milliseconds; `None` when the
/// text is not one. Fractions finer than a millisecond are dropped.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let text = text.trim();
    if text.len() < 20 || !text.is_ascii() {
        return None;
    }
    let b = text.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i64::from(digits(text, 4)?);
    let at = civil_millis(
        year,
        digits(&text[5..], 2)?,
        digits(&text[8..], 2)?,
        digits(&text[11..], 2)?,
        digits(&text[14..], 2)?,
        digits(&text[17..], 2)?,
    )?;
    let mut rest = &text[19..];
    let mut fraction_ms = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let n = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &after_dot[..n.min(3)]);
        fraction_ms = i64::from(first3.parse::<u32>().ok()?);
        rest = &after_dot[n..];
    }
    let offset = offset_minutes(rest)?;
    Some(at + fraction_ms - offset * MINUTE_MS)
}

/// "Mon, 06 Nov 2026 08:49:37 +0000", "6 Nov 2026 08:49 GMT": an RFC 2822 date as RSS feeds
/// write them (day name optional, seconds optional, numeric or UT/GMT/Z zones), as Unix
/// milliseconds; `None` when the text is not one.
pub fn parse_rfc2822(text: &str) -> Option<Millis> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let text = text.trim();
    let text = match text.split_once(',') {
        Some((_day_name, rest)) => rest,
        None => text,
    };
    let mut parts = text.split_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| month_name.starts_with(m))? + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    // Two-digit years (RFC 822): 00–49 are 20xx, 50–99 are 19xx.
    let year = match year {
        0..=49 => year + 2000,
        50..=99 => year + 1900,
        _ => year,
    };
    let mut clock = parts.next()?.split(':');
    let h = digits(clock.next()?, 2)?;
    let m = digits(clock.next()?, 2)?;
    let s = match clock.next() {
        Some(s) => digits(s, 2)?,
        None => 0,
    };
    let offset = offset_minutes(parts.next().unwrap_or("GMT"))?;
    let at = civil_millis(year, u32::try_from(month).ok()?, day, h, m, s)?;
    Some(at - offset * MINUTE_MS)
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

    #[test]
    fn rfc3339_is_read_with_any_offset_and_fraction() {
        let utc = 1_781_844_600_000; // 2026-06-19T04:50:00Z
        for text in [
            "2026-06-19T04:50:00Z",
            "2026-06-19T12:50:00+08:00",
            "2026-06-18T21:50:00.000-07:00",
            "2026-06-19 04:50:00z",
        ] {
            assert_eq!(parse_rfc3339(text), Some(utc), "{text}");
        }
        assert_eq!(parse_rfc3339("2026-06-19T04:50:00.1234Z"), Some(utc + 123));
        assert_eq!(rfc3339(utc), "2026-06-19T04:50:00Z");
        for bad in [
            "",
            "2026-06-19",
            "2026-02-30T00:00:00Z",
            "2026-06-19T24:00:00Z",
            "2026-06-19T04:50:00",
            "2026-06-19T04:50:00.Z",
            "2026-06-19T04:50:00+0800x",
            "２０２６-06-19T04:50:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rss_dates_are_read_with_or_without_day_names_and_seconds() {
        let utc = 1_781_844_600_000; // 2026-06-19T04:50:00Z
        for text in [
            "Fri, 19 Jun 2026 04:50:00 +0000",
            "19 Jun 2026 12:50:00 +0800",
            "Fri, 19 June 2026 04:50 GMT",
            "Thu, 18 Jun 2026 21:50:00 -0700",
            "Fri, 19 Jun 26 04:50:00 Z",
        ] {
            assert_eq!(parse_rfc2822(text), Some(utc), "{text}");
        }
        for bad in [
            "",
            "yesterday",
            "Fri, 31 Jun 2026 04:50:00 +0000",
            "19 Jun 2026",
        ] {
            assert_eq!(parse_rfc2822(bad), None, "{bad}");
        }
    }
}

//! The on-disk encoding of a result's fields: verdict and blame as small integer codes,
//! latencies as whole microseconds.
//!
//! These codes are written into every results row of both back ends (SQLite and PostgreSQL), so
//! they are a file format: a code, once released, never changes meaning (add new verdicts at the
//! end). Decoding never panics: an
//! unknown code is reported as `None` and turned into `StoreError::Corrupt` by the caller.

use crate::verdict::{Blame, Verdict};

/// Verdict codes, index = code, each naming its verdict by the contract name
/// (`Verdict::as_str`). Written out as names rather than taken from `Verdict::ALL`, so that
/// reordering that list can never silently change the file format, and names stay what the
/// JSON API and the incidents table already promise never to change.
const VERDICTS: [&str; 15] = [
    "up",
    "degraded",
    "rate_limited",
    "quota_exhausted",
    "auth_failed",
    "model_not_found",
    "context_too_long",
    "content_filtered",
    "bad_request",
    "overloaded",
    "server_error",
    "unavailable",
    "timeout",
    "network",
    "malformed",
];

/// Blame codes, index = code; no blame is stored as NULL.
const BLAMES: [Blame; 4] = [
    Blame::Provider,
    Blame::Account,
    Blame::Request,
    Blame::Network,
];

pub fn verdict_code(verdict: Verdict) -> i64 {
    let index = VERDICTS
        .iter()
        .position(|name| *name == verdict.as_str())
        .expect("VERDICTS lists every Verdict (checked by a unit test)");
    index as i64
}

pub fn verdict_from_code(code: i64) -> Option<Verdict> {
    usize::try_from(code)
        .ok()
        .and_then(|i| VERDICTS.get(i))
        .and_then(|name| Verdict::parse(name))
}

pub fn blame_code(blame: Blame) -> i64 {
    let index = BLAMES
        .iter()
        .position(|b| *b == blame)
        .expect("BLAMES lists every Blame");
    index as i64
}

pub fn blame_from_code(code: i64) -> Option<Blame> {
    usize::try_from(code)
        .ok()
        .and_then(|i| BLAMES.get(i).copied())
}

/// Milliseconds to whole microseconds. Microseconds are far finer than any network latency,
/// and the round trip is exact for every value that is a whole number of microseconds.
/// A NaN or infinite latency is not a measurement and is stored as NULL.
pub fn ms_to_us(ms: Option<f64>) -> Option<i64> {
    // `as` saturates, so an absurdly large latency cannot wrap around.
    ms.filter(|v| v.is_finite())
        .map(|v| (v * 1_000.0).round() as i64)
}

pub fn us_to_ms(us: Option<i64>) -> Option<f64> {
    us.map(|v| v as f64 / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_has_a_code_that_decodes_back() {
        for verdict in Verdict::ALL {
            assert_eq!(verdict_from_code(verdict_code(verdict)), Some(verdict));
        }
        assert_eq!(VERDICTS.len(), Verdict::ALL.len());
    }

    #[test]
    fn released_codes_keep_their_meaning() {
        assert_eq!(verdict_code(Verdict::Up), 0);
        assert_eq!(verdict_code(Verdict::Degraded), 1);
        assert_eq!(verdict_code(Verdict::Malformed), 14);
        assert_eq!(blame_code(Blame::Provider), 0);
        assert_eq!(blame_code(Blame::Network), 3);
    }

    #[test]
    fn unknown_codes_decode_to_none() {
        assert_eq!(verdict_from_code(15), None);
        assert_eq!(verdict_from_code(-1), None);
        assert_eq!(blame_from_code(4), None);
    }

    #[test]
    fn latency_round_trips_at_microsecond_precision() {
        for ms in [0.0, 0.001, 0.1, 312.456, 59_999.999, 1e9] {
            assert_eq!(us_to_ms(ms_to_us(Some(ms))), Some(ms));
        }
        assert_eq!(ms_to_us(Some(f64::NAN)), None);
        assert_eq!(ms_to_us(None), None);
    }
}

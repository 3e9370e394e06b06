//! Retry pacing for deliveries: exponential, capped, with jitter.
//!
//! Hand-written because it is a few lines and must be deterministic under test: the jitter is a
//! hash of (entry id, attempt), not a random draw, which still spreads the retries of different
//! messages apart (the point of jitter: a receiver coming back is not hit by every queued message
//! at the same instant) while a test can compute the exact schedule.

use std::time::Duration;

/// Exponential backoff with "equal jitter": the n-th retry waits between half and all of
/// `initial * 2^(n-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// `initial` of zero is raised to 1 ms and `max` to at least `initial`, so every delay is
    /// positive and the sequence never shrinks.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// The wait before retry number `attempt` (1 after the first failure) of entry `seed`.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let half = full / 2;
        let spread = u64::try_from(full.saturating_sub(half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            splitmix64(seed ^ (u64::from(attempt) << 32)) % (spread + 1)
        };
        half + Duration::from_micros(jitter)
    }
}

/// SplitMix64: a tiny, well-distributed mixing function (Steele et al., 2014).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_jitter_band_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(600));
        for seed in 0..200u64 {
            let mut full = Duration::from_secs(5);
            for attempt in 1..=12 {
                let d = backoff.delay(attempt, seed);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
                full = (full * 2).min(Duration::from_secs(600));
            }
        }
    }

    #[test]
    fn jitter_spreads_entries_but_is_repeatable() {
        let backoff = Backoff::new(Duration::from_secs(8), Duration::from_secs(600));
        let delays: std::collections::HashSet<Duration> =
            (0..50u64).map(|seed| backoff.delay(3, seed)).collect();
        assert!(
            delays.len() > 40,
            "different entries retry at different times"
        );
        assert_eq!(backoff.delay(3, 7), backoff.delay(3, 7));
    }

    #[test]
    fn huge_attempt_counts_stay_at_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(60));
        let d = backoff.delay(u32::MAX, 1);
        assert!(d >= Duration::from_secs(30) && d <= Duration::from_secs(60));
        let zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(zero.delay(1, 1) <= Duration::from_millis(1));
    }
}

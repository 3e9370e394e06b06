//! Jittered exponential backoff, shared by the gateway (retrying the same target) and the alert
//! outbox (retrying a receiver).
//!
//! Hand-written because it is three lines of arithmetic and both callers need it deterministic
//! under test: the random part comes in as a number in `[0, 1)` chosen by the caller, so the
//! function itself is pure (tables and properties below).

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum BackoffError {
    #[error("backoff base must be positive and at most max ({base:?} > {max:?})")]
    Range { base: Duration, max: Duration },
    #[error("backoff jitter must be in [0, 1), got {0}")]
    Jitter(f64),
}

/// `base · 2^attempt`, capped at `max`, then spread by ±`jitter` so that many clients that
/// failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    pub fn try_new(base: Duration, max: Duration, jitter: f64) -> Result<Backoff, BackoffError> {
        if base.is_zero() || base > max {
            return Err(BackoffError::Range { base, max });
        }
        if !(0.0..1.0).contains(&jitter) {
            return Err(BackoffError::Jitter(jitter));
        }
        Ok(Backoff { base, max, jitter })
    }

    /// The wait before retry number `attempt` (0 for the first retry); `unit` is a random
    /// number in `[0, 1)` (values outside are clamped).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let nominal = self.base.saturating_mul(factor).min(self.max);
        let spread = 1.0 - self.jitter + 2.0 * self.jitter * unit.clamp(0.0, 1.0);
        nominal.mul_f64(spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rate_limit_backoff_without_jitter_doubles_from_half_a_second() {
        let b = Backoff::try_new(ms(500), ms(8_000), 0.0).unwrap();
        let table = [
            (0, 500),
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (4, 8_000),
            (9, 8_000),
        ];
        for (attempt, want) in table {
            assert_eq!(b.delay(attempt, 0.5), ms(want), "attempt {attempt}");
        }
    }

    #[test]
    fn jitter_stays_within_its_fraction_of_the_nominal_delay() {
        let b = Backoff::try_new(ms(250), ms(1_000), 0.2).unwrap();
        for attempt in 0..40 {
            for step in 0..=100 {
                let unit = f64::from(step) / 100.0;
                let d = b.delay(attempt, unit);
                let nominal = ms(250).saturating_mul(2u32.saturating_pow(attempt.min(31)));
                let nominal = nominal.min(ms(1_000));
                assert!(
                    d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                    "{d:?}"
                );
            }
        }
    }

    #[test]
    fn delays_never_decrease_with_the_attempt_for_a_fixed_draw() {
        let b = Backoff::try_new(ms(1), Duration::from_secs(60), 0.3).unwrap();
        for unit in [0.0, 0.25, 0.99] {
            let mut last = Duration::ZERO;
            for attempt in 0..64 {
                let d = b.delay(attempt, unit);
                assert!(d >= last);
                last = d;
            }
        }
    }

    #[test]
    fn invalid_settings_are_refused_at_construction() {
        assert!(Backoff::try_new(Duration::ZERO, ms(1), 0.1).is_err());
        assert!(Backoff::try_new(ms(2), ms(1), 0.1).is_err());
        assert!(Backoff::try_new(ms(1), ms(2), 1.0).is_err());
        assert!(Backoff::try_new(ms(1), ms(2), -0.1).is_err());
    }
}

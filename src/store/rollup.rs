//! Rollup arithmetic: which buckets a result falls into, what it adds to their counters, and how
//! percentiles are read back out of a latency histogram.
//!
//! Pure functions and plain data, no I/O and no SQL: both back ends fold a batch of results into
//! [`Counts`] here and then upsert them, and read percentiles back with [`quantile`], so SQLite
//! and PostgreSQL answer with the same numbers.

use crate::store::{LATENCY_BUCKETS_MS, ResultRecord, Retention};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis};
use crate::verdict::{Blame, Verdict};

/// One histogram slot per bound of [`LATENCY_BUCKETS_MS`], plus one for everything above.
pub const HISTOGRAM_SLOTS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// The bucket widths rollups are kept at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    pub fn width(self) -> Millis {
        match self {
            Resolution::Minute => MINUTE_MS,
            Resolution::Hour => HOUR_MS,
            Resolution::Day => DAY_MS,
        }
    }

    /// The code stored in `rollups.resolution` (a file format: never changes).
    pub fn code(self) -> i64 {
        match self {
            Resolution::Minute => 0,
            Resolution::Hour => 1,
            Resolution::Day => 2,
        }
    }

    /// The resolution a stored code stands for; `None` for a code no release wrote.
    pub fn from_code(code: i64) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Start of the bucket holding `at`. Euclidean division keeps times before 1970 in the
    /// bucket that starts before them, not after.
    pub fn bucket_start(self, at: Millis) -> Millis {
        at.div_euclid(self.width()) * self.width()
    }

    /// The start of the newest bucket a prune at `now` removes: a bucket goes once all of it
    /// is older than its resolution's retention (it holds nothing newer than the cutoff).
    pub fn last_start_to_prune(self, now: Millis, retention: &Retention) -> Millis {
        let keep = match self {
            Resolution::Minute => retention.minute,
            Resolution::Hour => retention.hour,
            Resolution::Day => retention.day,
        };
        now.saturating_sub(keep).saturating_sub(self.width())
    }
}

/// The counters of one rollup row. `i64` because that is what SQLite stores and sqlx binds
/// (PostgreSQL keeps them as `INTEGER`: see its `0001_init.sql`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    /// `up` + `degraded`.
    pub healthy: i64,
    pub degraded: i64,
    /// Failures blamed on the provider: the only ones that count as downtime.
    pub provider_failed: i64,
    /// Failures blamed on the account, the request or the network.
    pub other_failed: i64,
    /// Healthy results by latency; see [`histogram_slot`].
    pub histogram: [i64; HISTOGRAM_SLOTS],
}

impl Counts {
    /// Adds one result. A failure recorded without a blame takes its verdict's default blame,
    /// so it still lands on one side of the uptime fraction.
    pub fn add(&mut self, result: &ResultRecord) {
        self.total += 1;
        if result.verdict.is_healthy() {
            self.healthy += 1;
            if result.verdict == Verdict::Degraded {
                self.degraded += 1;
            }
            if let Some(latency) = result.latency_ms.filter(|v| v.is_finite()) {
                self.histogram[histogram_slot(latency)] += 1;
            }
        } else if result.blame.or(result.verdict.default_blame()) == Some(Blame::Provider) {
            self.provider_failed += 1;
        } else {
            self.other_failed += 1;
        }
    }
}

/// The histogram slot of a latency: the first bound it does not exceed (bounds are inclusive,
/// as Prometheus `le`), or the overflow slot above the last bound.
pub fn histogram_slot(latency_ms: f64) -> usize {
    LATENCY_BUCKETS_MS
        .iter()
        .position(|bound| latency_ms <= *bound)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

/// The `q` quantile (0.0–1.0) of a histogram, `None` when it is empty.
///
/// Method (the one Prometheus' `histogram_quantile` uses): find the slot holding the sample
/// of rank `q × n`, and assume its samples are spread evenly between the slot's lower bound
/// (the previous bound, or 0 for the first slot) and its upper bound; interpolate linearly.
/// The overflow slot has no upper bound, so a quantile that falls in it reports the top bound
/// (60 s): "at least this slow".
pub fn quantile(histogram: &[i64; HISTOGRAM_SLOTS], q: f64) -> Option<f64> {
    let n: i64 = histogram.iter().map(|c| (*c).max(0)).sum();
    if n == 0 {
        return None;
    }
    let top = LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1];
    let rank = q.clamp(0.0, 1.0) * n as f64;
    let mut below = 0i64;
    for (slot, &count) in histogram.iter().enumerate() {
        if count <= 0 {
            continue;
        }
        if (below + count) as f64 >= rank {
            let Some(&upper) = LATENCY_BUCKETS_MS.get(slot) else {
                return Some(top);
            };
            let lower = if slot == 0 {
                0.0
            } else {
                LATENCY_BUCKETS_MS[slot - 1]
            };
            return Some(lower + (upper - lower) * (rank - below as f64) / count as f64);
        }
        below += count;
    }
    // Only reachable through float rounding at q = 1: the highest non-empty slot's top.
    Some(top)
}

/// The counter columns of a rollup row, in [`Counts`] order (both schemas name them so).
pub const COUNTER_COLUMNS: [&str; 5] = [
    "total",
    "healthy",
    "degraded",
    "provider_failed",
    "other_failed",
];

/// The histogram columns, named after [`LATENCY_BUCKETS_MS`] as both schemas name them.
/// Deriving them keeps the two in step: change a bound without a migration and every rollup
/// write fails loudly in the tests.
pub fn histogram_columns() -> impl Iterator<Item = String> {
    LATENCY_BUCKETS_MS
        .iter()
        .map(|bound| format!("le_{}", *bound as u64))
        .chain(std::iter::once("le_inf".to_owned()))
}

/// p50, p95 and the sample count of a bucket's histogram; `None` when it holds no sample.
pub fn percentiles(histogram: &[i64; HISTOGRAM_SLOTS]) -> Option<(f64, f64, u64)> {
    let p50 = quantile(histogram, 0.50)?;
    let p95 = quantile(histogram, 0.95)?;
    let samples = histogram
        .iter()
        .map(|c| u64::try_from(*c).unwrap_or(0))
        .sum();
    Some((p50, p95, samples))
}

/// Healthy share of the results that say something about the provider.
pub fn fraction(healthy: i64, provider_failed: i64) -> Option<f64> {
    let measured = healthy + provider_failed;
    (measured > 0).then(|| healthy as f64 / measured as f64)
}

/// The first bucket that starts inside the `span` before `now`: the current bucket counts, and
/// the oldest one that started before the window does not.
pub fn first_bucket_within(resolution: Resolution, now: Millis, span: Millis) -> Millis {
    resolution
        .bucket_start(now.saturating_sub(span))
        .saturating_add(resolution.width())
}

/// The first bucket of `width` that starts inside the `count` buckets up to `now`.
pub fn first_of_last(width: Millis, now: Millis, count: u32) -> Millis {
    let current = now.div_euclid(width) * width;
    current.saturating_sub(i64::from(count.saturating_sub(1)).saturating_mul(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(verdict: Verdict, blame: Option<Blame>, latency_ms: Option<f64>) -> ResultRecord {
        ResultRecord {
            monitor_id: "m".into(),
            at: 0,
            verdict,
            blame,
            status: None,
            latency_ms,
            ttft_ms: None,
            explanation: None,
            region: None,
        }
    }

    #[test]
    fn bucket_boundaries_are_exact() {
        let one_am = HOUR_MS;
        assert_eq!(Resolution::Hour.bucket_start(one_am - 1), 0);
        assert_eq!(Resolution::Hour.bucket_start(one_am), one_am);
        assert_eq!(Resolution::Day.bucket_start(DAY_MS + 5), DAY_MS);
        assert_eq!(Resolution::Minute.bucket_start(-1), -MINUTE_MS);
    }

    #[test]
    fn latency_slots_use_inclusive_upper_bounds() {
        assert_eq!(histogram_slot(0.0), 0);
        assert_eq!(histogram_slot(50.0), 0);
        assert_eq!(histogram_slot(50.001), 1);
        assert_eq!(histogram_slot(60_000.0), LATENCY_BUCKETS_MS.len() - 1);
        assert_eq!(histogram_slot(60_000.5), LATENCY_BUCKETS_MS.len());
    }

    #[test]
    fn counts_split_failures_by_blame() {
        let mut counts = Counts::default();
        counts.add(&result(Verdict::Up, None, Some(120.0)));
        counts.add(&result(
            Verdict::Degraded,
            Some(Blame::Provider),
            Some(9_000.0),
        ));
        counts.add(&result(Verdict::Unavailable, Some(Blame::Provider), None));
        counts.add(&result(Verdict::Timeout, Some(Blame::Network), None));
        counts.add(&result(Verdict::AuthFailed, Some(Blame::Account), None));
        // No blame recorded: the verdict's default (provider for server_error) decides.
        counts.add(&result(Verdict::ServerError, None, None));
        assert_eq!(counts.total, 6);
        assert_eq!(counts.healthy, 2);
        assert_eq!(counts.degraded, 1);
        assert_eq!(counts.provider_failed, 2);
        assert_eq!(counts.other_failed, 2);
        assert_eq!(counts.histogram.iter().sum::<i64>(), 2);
        assert_eq!(counts.histogram[histogram_slot(120.0)], 1);
    }

    #[test]
    fn quantiles_interpolate_inside_the_slot() {
        let mut histogram = [0; HISTOGRAM_SLOTS];
        histogram[histogram_slot(250.0)] = 100; // (200, 300]
        assert_eq!(quantile(&histogram, 0.5), Some(250.0));
        assert_eq!(quantile(&histogram, 0.95), Some(295.0));

        let mut histogram = [0; HISTOGRAM_SLOTS];
        histogram[0] = 90; // (0, 50]
        histogram[histogram_slot(1_200.0)] = 10; // (1000, 1500]
        let p50 = quantile(&histogram, 0.5).unwrap();
        assert!((p50 - 50.0 * 50.0 / 90.0).abs() < 1e-9);
        assert_eq!(quantile(&histogram, 0.95), Some(1_250.0));
    }

    #[test]
    fn quantile_in_the_overflow_slot_reports_the_top_bound() {
        let mut histogram = [0; HISTOGRAM_SLOTS];
        histogram[HISTOGRAM_SLOTS - 1] = 3;
        assert_eq!(quantile(&histogram, 0.5), Some(60_000.0));
        assert_eq!(quantile(&[0; HISTOGRAM_SLOTS], 0.5), None);
    }
}

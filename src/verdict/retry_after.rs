//! `retry_after_s` extraction (STUB — being written).
use reqwest::header::HeaderMap;

/// Seconds to wait, from `retry-after-ms`, `Retry-After`, or exhausted rate-limit headers.
pub fn retry_after_from_headers(_headers: &HeaderMap) -> Option<f64> {
    None
}

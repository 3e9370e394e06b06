//! Community reports: how many posts of a feed match the keywords in the trailing window, and
//! whether that is unusual for this feed ("14 reports in 30 min, usually 0–1").
//!
//! The usual count is learnt from the feed itself: the same-sized windows before the current
//! one, back to the configured baseline or to the oldest post the feed covers, whichever is
//! nearer. One post is never a signal: a spike needs at least `min_reports` and more than
//! twice the usual high. Pure: items and the clock in, a count out.

use std::time::Duration;

use super::CommunityFeed;
use super::feed::FeedItem;
use crate::time::{MINUTE_MS, Millis, millis_of};

/// Posts dated up to this far in the future still count as now (the feed's clock may run
/// ahead of ours).
const CLOCK_SKEW: Millis = 5 * MINUTE_MS;

/// Reports in one window, against the feed's usual count.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedCount {
    /// Matching posts in the trailing window.
    pub reports: u32,
    pub window: Duration,
    /// (median, 90th percentile) of matching posts per earlier window; `None` when the feed
    /// covers no earlier window.
    pub usual: Option<(u32, u32)>,
    /// Unusually many reports.
    pub spike: bool,
    /// The newest matching post in the window: (title, link).
    pub newest: Option<(String, Option<String>)>,
}

/// Whether a post is a report: its title or text holds one of the (lower-case) keywords.
pub fn is_report(item: &FeedItem, keywords: &[String]) -> bool {
    let title = item.title.to_lowercase();
    let text = item.text.to_lowercase();
    keywords
        .iter()
        .any(|k| title.contains(k.as_str()) || text.contains(k.as_str()))
}

/// The count for `feed` at `now`. `covered_from` is how far back the reader knows the feed:
/// the oldest post it has seen, or when it started reading it, whichever is earlier.
pub fn count(
    items: &[FeedItem],
    feed: &CommunityFeed,
    covered_from: Option<Millis>,
    now: Millis,
) -> FeedCount {
    let window = millis_of(feed.window).max(1);
    let mut reports: Vec<(Millis, &FeedItem)> = items
        .iter()
        .filter(|i| is_report(i, &feed.keywords))
        .filter_map(|i| i.at.map(|at| (at, i)))
        .filter(|(at, _)| *at <= now + CLOCK_SKEW)
        .map(|(at, i)| (at.min(now), i))
        .collect();
    reports.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let in_window = |end: Millis| {
        let from = end - window;
        reports
            .iter()
            .filter(|(at, _)| *at > from && *at <= end)
            .count()
    };
    let current = u32::try_from(in_window(now)).unwrap_or(u32::MAX);
    let newest = reports
        .iter()
        .find(|(at, _)| *at > now - window)
        .map(|(_, i)| (i.title.clone(), i.link.clone()));

    let oldest_post = items.iter().filter_map(|i| i.at).min();
    let covered = match (covered_from, oldest_post) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let earlier = covered.map_or(0, |from| {
        let by_baseline = millis_of(feed.baseline) / window;
        let by_coverage = (now - window - from).max(0) / window;
        by_baseline.min(by_coverage)
    });
    let mut counts: Vec<u32> = (1..=earlier)
        .map(|k| u32::try_from(in_window(now - k * window)).unwrap_or(u32::MAX))
        .collect();
    counts.sort_unstable();
    let usual = (!counts.is_empty()).then(|| (rank(&counts, 0.5), rank(&counts, 0.9)));
    let threshold = usual.map_or(0, |(_, high)| 2 * high.max(1));
    let spike = current >= feed.min_reports && current > threshold;
    FeedCount {
        reports: current,
        window: feed.window,
        usual,
        spike,
        newest,
    }
}

/// Nearest-rank percentile of sorted values.
fn rank(sorted: &[u32], p: f64) -> u32 {
    let n = sorted.len();
    let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted[index]
}

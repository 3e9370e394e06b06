//! How what the sources say reads for people: one line per source, written once for every
//! output that shows them (`check`'s "What others see", the status page). Pure text from typed
//! readings; links are the caller's to add in its own markup.

use std::time::Duration;

use super::aggregator::AggregatorReading;
use super::community::FeedCount;
use super::statuspage::{OfficialReading, OpenIncident};
use super::{AGGREGATOR_NAME, CommunityFeed, Reading};
use crate::alert::render::{duration, utc};
use crate::time::millis_of;

/// "status.moonshot.cn" out of a page URL.
pub fn host(url: &str) -> &str {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/')
}

/// "Official page (status.moonshot.cn): major outage — Open API: major outage", or why it is
/// unavailable. `page` names the page when there is no reading to name it.
pub fn official(r: &Reading<OfficialReading>, page: &str) -> String {
    match r {
        Reading::Ok(o) => {
            let head = format!("Official page ({}): {}", host(&o.page), o.indicator.words());
            if o.description.eq_ignore_ascii_case(o.indicator.words()) {
                head
            } else {
                format!("{head} — {}", o.description)
            }
        }
        Reading::Unavailable(reason) => {
            format!("Official page ({}): unavailable — {reason}", host(page))
        }
    }
}

/// "Open incident: "Elevated API error rates" (major impact, investigating) since 2026-06-19
/// 04:40 UTC".
pub fn open_incident(i: &OpenIncident) -> String {
    format!(
        "Open incident: \"{}\" ({} impact, {}) since {}",
        i.name,
        i.impact.as_str(),
        i.status,
        utc(i.started_at)
    )
}

fn percent(value: Option<f64>) -> String {
    value.map_or("no data".to_owned(), |v| format!("{v:.0}%"))
}

/// "OpenRouter (moonshotai/kimi-k2.6): Moonshot AI endpoint degraded — 62% uptime over 30 min;
/// 1 of 2 endpoints operational", or why it is unavailable.
pub fn aggregator(r: &Reading<AggregatorReading>, model: &str) -> String {
    match r {
        Reading::Ok(a) => {
            let others = format!("{} of {} endpoints operational", a.operational, a.endpoints);
            match &a.endpoint {
                Some(e) => format!(
                    "{AGGREGATOR_NAME} ({}): {} endpoint {} — {} uptime over 30 min; {others}",
                    a.model,
                    e.provider_name,
                    a.view.as_str(),
                    percent(e.uptime_last_30m)
                ),
                None => format!(
                    "{AGGREGATOR_NAME} ({}): {} — {others}",
                    a.model,
                    a.view.as_str()
                ),
            }
        }
        Reading::Unavailable(reason) => {
            format!("{AGGREGATOR_NAME} ({model}): unavailable — {reason}")
        }
    }
}

fn window(window: Duration) -> String {
    duration(millis_of(window))
}

/// "Community (r/LocalLLaMA): 14 reports in 30 min, usually 0–1 — a spike", or why it is
/// unavailable.
pub fn community(feed: &CommunityFeed, r: &Reading<FeedCount>) -> String {
    match r {
        Reading::Ok(c) => {
            let usual = match c.usual {
                Some((low, high)) if low == high => format!(", usually {low}"),
                Some((low, high)) => format!(", usually {low}–{high}"),
                None => ", no baseline yet".to_owned(),
            };
            let spike = if c.spike { " — a spike" } else { "" };
            let reports = if c.reports == 1 { "report" } else { "reports" };
            format!(
                "Community ({}): {} {reports} in {}{usual}{spike}",
                feed.name,
                c.reports,
                window(c.window)
            )
        }
        Reading::Unavailable(reason) => {
            format!("Community ({}): unavailable — {reason}", feed.name)
        }
    }
}

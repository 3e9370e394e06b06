//! The overview of an installation with more monitors than a page can show: above
//! [`OVERVIEW_ROWS_MAX`] monitors, `/` stops drawing a row (90-day bar, latency sparkline) for
//! every monitor and shows instead what a person opening it needs — how many monitors are in
//! each state, one line per provider with its counts (providers in trouble first), and the full
//! row only of the monitors that are failing, each linking to its own page
//! (`/monitors/{id}`, drawn per request as always). At or below the threshold the overview is
//! the one of `page.rs`, unchanged.
//!
//! Why: at 50,000 monitors the full overview is tens of megabytes of HTML that no one reads,
//! and it was the largest single cost per monitor (BENCHMARKS.md "Memory per monitor"). Every
//! list here is bounded by the threshold, so the page's size follows what is wrong, not how
//! much is monitored; what is cut says how much more there is, and where to find it (the JSON
//! API lists every monitor).
//!
//! Pure, like the rest of the page drawing: inputs in, template out; no I/O.

use std::collections::HashMap;

use askama::Template;

use super::chart;
use super::page::{
    Banner, Chrome, IncidentRow, OthersRow, OverviewInput, Row, is_failing, overview_frame, row,
};
use super::text;
use crate::monitor::machine::MonitorState;

/// 500 monitors: a page of 500 full rows is already one to search rather than read (~2 MB of
/// HTML, ~150 KiB gzipped); beyond it the full list only grows the page. Also the most rows of
/// any list on the summary (failing monitors, providers).
pub const OVERVIEW_ROWS_MAX: usize = 500;
/// Banner lines beyond the headline: the rest are counted, and listed below it.
const BANNER_LINES_MAX: usize = 10;
/// Newest incidents listed; the history pages have every one.
const INCIDENTS_MAX: usize = 50;

/// States worst first: the order of the counts, of the providers' lines and of the rows.
const WORST_FIRST: [MonitorState; 6] = [
    MonitorState::Down,
    MonitorState::SetupProblem,
    MonitorState::Degraded,
    MonitorState::Regional,
    MonitorState::Unknown,
    MonitorState::Up,
];

fn rank(state: MonitorState) -> usize {
    WORST_FIRST
        .iter()
        .position(|s| *s == state)
        .expect("every state is ranked")
}

/// How many monitors are in one state.
pub struct Count {
    pub class: &'static str,
    pub label: &'static str,
    pub monitors: usize,
}

/// Counts of the states that occur, worst first.
fn counts_of(tally: &[usize; WORST_FIRST.len()]) -> Vec<Count> {
    WORST_FIRST
        .iter()
        .zip(tally)
        .filter(|(_, n)| **n > 0)
        .map(|(state, n)| Count {
            class: text::state_class(*state),
            label: text::state_label(*state),
            monitors: *n,
        })
        .collect()
}

/// One provider's line.
pub struct Group {
    pub name: String,
    pub monitors: usize,
    pub counts: Vec<Count>,
}

#[derive(Template)]
#[template(path = "overview_summary.html")]
pub struct SummaryPage {
    pub chrome: Chrome,
    pub banner: Banner,
    /// Banner lines not shown.
    pub banner_more: usize,
    pub day_words: String,
    pub total: usize,
    pub counts: Vec<Count>,
    pub groups: Vec<Group>,
    /// Providers (and their monitors) not listed: all of their monitors are up or not checked
    /// yet, or the list reached [`OVERVIEW_ROWS_MAX`].
    pub groups_more: usize,
    pub groups_more_monitors: usize,
    /// The failing monitors, worst first, in the overview's own row.
    pub rows: Vec<Row>,
    pub rows_more: usize,
    pub incidents: Vec<IncidentRow>,
    pub incidents_more: usize,
    pub others: Vec<OthersRow>,
}

/// The summary of `input`'s monitors, whatever their number (`views.rs` picks it above the
/// threshold).
pub fn summary_page(input: &OverviewInput) -> SummaryPage {
    let site = input.site;
    let monitors = &input.health.monitors;
    let mut tally = [0; WORST_FIRST.len()];
    // Per provider, in the order first seen: its monitors' tally.
    let mut by_provider: Vec<(&str, [usize; WORST_FIRST.len()])> = Vec::new();
    let mut place: HashMap<&str, usize> = HashMap::new();
    for m in monitors {
        tally[rank(m.state)] += 1;
        let n = *place.entry(m.provider.as_str()).or_insert_with(|| {
            by_provider.push((m.provider.as_str(), [0; WORST_FIRST.len()]));
            by_provider.len() - 1
        });
        by_provider[n].1[rank(m.state)] += 1;
    }
    // Worst first: by the worst state a provider has, then by how many monitors are in it.
    let worst = |t: &[usize; WORST_FIRST.len()]| {
        let r = t.iter().position(|n| *n > 0).unwrap_or(WORST_FIRST.len());
        (r, std::cmp::Reverse(t.get(r).copied().unwrap_or(0)))
    };
    by_provider.sort_by_key(|(_, t)| worst(t));
    let in_trouble = |t: &[usize; WORST_FIRST.len()]| {
        t.iter()
            .zip(WORST_FIRST)
            .any(|(n, s)| *n > 0 && is_failing(s))
    };
    // Every provider while they fit; beyond, only those in trouble.
    let everyone = by_provider.len() <= OVERVIEW_ROWS_MAX;
    let listed = by_provider
        .iter()
        .filter(|(_, t)| everyone || in_trouble(t))
        .take(OVERVIEW_ROWS_MAX)
        .count();
    let groups = by_provider[..listed]
        .iter()
        .map(|(provider, t)| Group {
            name: site.name(provider).to_owned(),
            monitors: t.iter().sum(),
            counts: counts_of(t),
        })
        .collect();
    let groups_more_monitors = by_provider[listed..]
        .iter()
        .map(|(_, t)| t.iter().sum::<usize>())
        .sum();

    let mut failing: Vec<usize> = (0..monitors.len())
        .filter(|n| is_failing(monitors[*n].state))
        .collect();
    failing.sort_by_key(|n| rank(monitors[*n].state));
    let rows_more = failing.len().saturating_sub(OVERVIEW_ROWS_MAX);
    failing.truncate(OVERVIEW_ROWS_MAX);
    let rows = failing
        .iter()
        .map(|n| row(site, &monitors[*n], &input.histories[*n], input))
        .collect();

    let mut frame = overview_frame(input, INCIDENTS_MAX);
    let banner_more = frame
        .banner
        .lines
        .len()
        .saturating_sub(1 + BANNER_LINES_MAX);
    frame.banner.lines.truncate(1 + BANNER_LINES_MAX);
    SummaryPage {
        chrome: frame.chrome,
        banner: frame.banner,
        banner_more,
        day_words: chart::day_legend(),
        total: monitors.len(),
        counts: counts_of(&tally),
        groups,
        groups_more: by_provider.len() - listed,
        groups_more_monitors,
        rows,
        rows_more,
        incidents: frame.incidents,
        incidents_more: frame.incidents_more,
        others: frame.others,
    }
}

//! The status page: overview (`/`), one page per monitor (`/monitors/{id}`) and the incident
//! history (`/incidents`), rendered on the server from compiled askama templates
//! (`templates/`), with the CSS inlined and one small script (`/assets/live.js`: it re-fetches
//! the page every few seconds and swaps in `<main>`, and reads the uptime bars' days out on
//! hover and to the keyboard).
//!
//! Read-only and public: it shows what the health view and the store already hold, through
//! [`SiteInfo`] (display names, upstream URLs hidden when `hide_urls` is on), and never a key
//! (keys are redacted before anything is stored, and the site info carries none).
//!
//! Each page is built in two steps: its inputs (health snapshot, store reads, the clock) are
//! gathered into a plain struct, and a pure function turns that into the template — so the
//! snapshot tests feed fixed inputs and compare the exact HTML. The overview and the first page
//! of the history are gathered and drawn by the renderer (`renderer.rs`) when they change and
//! served from memory (`views.rs`); a monitor's page and older history pages are drawn per
//! request from the store, a few at a time (`PublicViews::store_read`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::chart::{self, DayMark, DaySegment, DayStrip};
use super::freshness::Freshness;
use super::rendered::{self, Rendered};
use super::site::SiteInfo;
use super::text;
use crate::alert::render::{NOT_ACKNOWLEDGED, lead_words};
use crate::corroborate::view::{ProviderView, SourcesView};
use crate::corroborate::words;
use crate::incident::IncidentKind;
use crate::monitor::health::{HealthSnapshot, MonitorHealth};
use crate::monitor::machine::MonitorState;
use crate::store::{
    DayCounts, Incident, IncidentFilter, LatencyPoint, ResultRecord, SeriesStep, StoreError, Uptime,
};
use crate::time::{DAY_MS, HOUR_MS, Millis, rfc3339};

use std::sync::{Arc, LazyLock};

const CSS: &str = include_str!("assets/style.css");
const LIVE_JS: &str = include_str!("assets/live.js");

/// 5 s: an outage shows within one poll of the monitor noticing it, and a poll costs the
/// server almost nothing (the page is in memory; an unchanged one is a 304).
pub const POLL_MS: u32 = 5_000;
/// Days in the uptime bar.
pub const BAR_DAYS: u32 = 90;
/// Incidents in the overview's "last 7 days" list.
const RECENT_INCIDENT_DAYS: Millis = 7 * DAY_MS;
/// Incidents per history page.
pub const HISTORY_PER_PAGE: u32 = 50;
/// Probe results on a monitor page.
const RECENT_RESULTS: u32 = 50;
/// Incidents on a monitor page.
const MONITOR_INCIDENTS: u32 = 20;

/// The incident history: its first page is one of the views rendered on change (`views.rs`),
/// the later ones are drawn here from the store.
pub const HISTORY: &str = "/incidents";

/// `/` is served by `views.rs`; `/incidents` here, because its later pages read the store.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/monitors/{id}", get(monitor))
        .route(HISTORY, get(incidents))
        .route("/assets/live.js", get(live_js))
}

// === shared pieces ===

/// Parts every page has.
pub struct Chrome {
    pub title: String,
    pub css: &'static str,
    pub poll_ms: u32,
    pub nav: &'static str,
    /// When the monitor last updated the data (its newest probe result), in words and RFC 3339.
    pub updated: Option<(String, String)>,
    /// The monitor loop has stalled: the page says the data may be out of date.
    pub stale: bool,
}

impl Chrome {
    fn new(title: String, nav: &'static str, freshness: Freshness) -> Chrome {
        Chrome {
            title,
            css: CSS,
            poll_ms: POLL_MS,
            nav,
            updated: freshness
                .updated_at
                .map(|at| (text::datetime_seconds(at), rfc3339(at))),
            stale: freshness.stale,
        }
    }
}

/// One incident as the tables show it.
pub struct IncidentRow {
    pub id: i64,
    pub provider: String,
    /// The probe of the monitor it concerns (`None` for a network incident).
    pub monitor: Option<String>,
    pub kind: &'static str,
    /// `outage`, `setup_problem` or `network`: the row's CSS class.
    pub kind_class: &'static str,
    pub started: String,
    pub started_iso: String,
    pub duration: String,
    pub ongoing: bool,
    pub verdict: String,
    pub cause: Option<String>,
    pub side: &'static str,
    pub failed_probes: u32,
    /// What the provider's own page made of it; `None` where that means nothing (not an
    /// outage, or no official page is read for the provider).
    pub official: Option<OfficialCell>,
}

/// An incident's official acknowledgement, as its row shows it.
pub struct OfficialCell {
    /// "detected 12 min before the official page", or "not acknowledged officially".
    pub words: String,
    /// The official incident's title and page, once acknowledged.
    pub title: Option<String>,
    pub url: Option<String>,
}

fn official_cell(site: &SiteInfo, incident: &Incident) -> Option<OfficialCell> {
    if incident.kind != IncidentKind::Outage {
        return None;
    }
    match (&incident.official, incident.lead()) {
        (Some(ack), Some(lead)) => Some(OfficialCell {
            words: lead_words(lead),
            title: Some(site.public_text(&ack.title)),
            url: ack.url.clone(),
        }),
        _ => site
            .providers
            .get(&incident.provider)
            .filter(|p| p.official_read)
            .map(|_| OfficialCell {
                words: NOT_ACKNOWLEDGED.to_owned(),
                title: None,
                url: None,
            }),
    }
}

fn incident_row(site: &SiteInfo, incident: &Incident, now: Millis) -> IncidentRow {
    let network = incident.kind == IncidentKind::Network;
    IncidentRow {
        id: incident.id,
        provider: if network {
            "All providers".to_owned()
        } else {
            site.name(&incident.provider).to_owned()
        },
        monitor: (!network).then(|| incident.monitor.clone()),
        kind: text::kind_label(incident.kind),
        kind_class: incident.kind.as_str(),
        started: text::datetime(incident.started_at),
        started_iso: rfc3339(incident.started_at),
        duration: text::duration(incident.ended_at.unwrap_or(now) - incident.started_at),
        ongoing: incident.ended_at.is_none(),
        verdict: text::verdict_words(incident.verdict),
        cause: incident
            .last_error
            .as_deref()
            .or(incident.first_error.as_deref())
            .map(|e| site.public_text(e)),
        side: text::incident_side(incident.kind, incident.verdict),
        failed_probes: incident.failed_probes,
        official: official_cell(site, incident),
    }
}

/// "99.91% uptime" under a bar, or that there is nothing to count yet.
/// Up and unknown are the states with nothing to explain.
pub(super) fn is_failing(state: MonitorState) -> bool {
    !matches!(state, MonitorState::Up | MonitorState::Unknown)
}

/// How long the monitor has been in its state; nothing while the state is unknown.
fn since_words(m: &MonitorHealth, now: Millis) -> Option<String> {
    m.since
        .filter(|_| m.state != MonitorState::Unknown)
        .map(|since| text::duration(now - since))
}

/// A monitor's explanation or advice, shown only while it fails and in the site's public words.
fn while_failing(site: &SiteInfo, words: Option<&str>, failing: bool) -> Option<String> {
    words.filter(|_| failing).map(|w| site.public_text(w))
}

fn uptime_words(uptime: Option<f64>) -> String {
    match uptime {
        Some(_) => format!("{} uptime", text::percent(uptime)),
        None => "no uptime data yet".to_owned(),
    }
}

/// Start of the UTC day holding `at`.
fn day_start(at: Millis) -> Millis {
    at.div_euclid(DAY_MS) * DAY_MS
}

// === overview ===

/// The banner: its class (the worst state) and its lines, the first one being the headline.
pub struct Banner {
    pub class: &'static str,
    pub lines: Vec<String>,
}

/// "All systems operational", "Kimi — major outage for 23 min", "Setup problem: DeepSeek key
/// rejected": one line per provider in trouble, worst first.
pub fn banner(site: &SiteInfo, health: &HealthSnapshot, now: Millis) -> Banner {
    let mut lines: Vec<String> = Vec::new();
    let mut push = |line: String| {
        if !lines.contains(&line) {
            lines.push(line);
        }
    };
    let in_state = |state: MonitorState| health.monitors.iter().filter(move |m| m.state == state);
    if health.network_incident.is_some() {
        push("isdown's own network is down: providers cannot be checked".to_owned());
    }
    for m in in_state(MonitorState::Down) {
        let name = site.name(&m.provider);
        push(match m.since {
            Some(since) => format!("{name} — major outage for {}", text::duration(now - since)),
            None => format!("{name} — major outage"),
        });
    }
    for m in in_state(MonitorState::SetupProblem) {
        push(format!(
            "Setup problem: {} {}",
            site.name(&m.provider),
            text::setup_phrase(m.verdict)
        ));
    }
    for m in in_state(MonitorState::Degraded) {
        push(format!("{} — degraded performance", site.name(&m.provider)));
    }
    let any = |state: MonitorState| health.monitors.iter().any(|m| m.state == state);
    let class = if any(MonitorState::Down) {
        "state-down"
    } else if health.network_incident.is_some() || any(MonitorState::SetupProblem) {
        "state-setup"
    } else if any(MonitorState::Degraded) {
        "state-degraded"
    } else if !health.monitors.is_empty()
        && health
            .monitors
            .iter()
            .all(|m| m.state == MonitorState::Unknown)
    {
        "state-unknown"
    } else {
        "state-up"
    };
    if lines.is_empty() {
        lines.push(match class {
            "state-unknown" => "Waiting for the first probes".to_owned(),
            _ => "All systems operational".to_owned(),
        });
    }
    Banner { class, lines }
}

/// The banner of a page whose monitor has stalled: it says so first, and no longer claims that
/// all is well; the troubles it knew of stay listed, as the last known state.
fn stale_banner(mut banner: Banner, freshness: Freshness) -> Banner {
    if matches!(banner.class, "state-up" | "state-unknown") {
        banner.lines.clear();
    }
    let since = match freshness.updated_at {
        Some(at) => format!(
            "The newest probe result is from {}; what is shown may be out of date.",
            text::datetime_seconds(at)
        ),
        None => "No probe result has arrived.".to_owned(),
    };
    banner.lines.splice(
        0..0,
        [
            "Status unknown: isdown's monitor has stopped".to_owned(),
            since,
        ],
    );
    Banner {
        class: "state-stale",
        lines: banner.lines,
    }
}

/// What the overview reads from the store for one monitor.
#[derive(Debug, Clone, Default)]
pub struct MonitorHistory {
    pub uptime: Uptime,
    /// Day rollups of the last [`BAR_DAYS`] days.
    pub days: Vec<DayCounts>,
    /// Hourly latency of the last 24 hours.
    pub latency_24h: Vec<LatencyPoint>,
}

/// Everything the overview shows, gathered by the renderer (or built by a test).
pub struct OverviewInput<'a> {
    pub site: &'a SiteInfo,
    pub health: &'a HealthSnapshot,
    pub now: Millis,
    pub freshness: Freshness,
    /// One per `health.monitors` entry, same order.
    pub histories: &'a [Arc<MonitorHistory>],
    /// Incidents open at some time in the last [`BAR_DAYS`] days, newest first.
    pub incidents: &'a [Incident],
    /// What the providers' own pages, the aggregator and the community say (the poller's
    /// latest view).
    pub others: &'a SourcesView,
}

/// One provider in "What others see".
pub struct OthersRow {
    pub name: String,
    /// One line per source.
    pub lines: Vec<String>,
    /// Open official incidents: (words, link).
    pub incidents: Vec<(String, Option<String>)>,
    /// How the official page compared with isdown over the kept history.
    pub lead: Option<String>,
    /// Official incidents isdown's probes did not see, newest first.
    pub unseen: Vec<UnseenRow>,
    /// How many more of them there are.
    pub unseen_more: usize,
}

pub struct UnseenRow {
    pub title: String,
    pub url: Option<String>,
    pub started: String,
    pub started_iso: String,
    pub duration: String,
}

/// "Median lead over the kept history: detected 12 min before the official page (3 of 4
/// outages acknowledged officially)."
fn lead_line(p: &ProviderView) -> Option<String> {
    if !p.has_official {
        return None;
    }
    let lead = p.lead;
    Some(match lead.median_lead {
        Some(median) => format!(
            "Median lead over the kept history: {} ({} of {} {} acknowledged officially).",
            lead_words(median),
            lead.acknowledged,
            lead.outages,
            if lead.outages == 1 {
                "outage"
            } else {
                "outages"
            }
        ),
        None if lead.outages > 0 => format!(
            "None of isdown's {} {} was acknowledged officially.",
            lead.outages,
            if lead.outages == 1 {
                "outage"
            } else {
                "outages"
            }
        ),
        None => "No outage recorded yet to compare with the official page.".to_owned(),
    })
}

fn others_row(site: &SiteInfo, p: &ProviderView, now: Millis) -> OthersRow {
    let c = &p.now;
    let mut lines = Vec::new();
    let mut incidents = Vec::new();
    if let Some(r) = &c.official {
        lines.push(words::official(r, p.page.as_deref().unwrap_or_default()));
        for i in r.ok().map(|o| o.incidents.as_slice()).unwrap_or_default() {
            incidents.push((words::open_incident(i), i.url.clone()));
        }
    }
    if let Some(r) = &c.aggregator {
        lines.push(words::aggregator(r, p.model.as_deref().unwrap_or_default()));
    }
    for (feed, r) in &c.community {
        lines.push(words::community(feed, r));
    }
    OthersRow {
        name: site.name(&p.provider).to_owned(),
        lines: lines.iter().map(|l| site.public_text(l)).collect(),
        incidents,
        lead: lead_line(p),
        unseen: p
            .unseen
            .iter()
            .map(|o| {
                let i = &o.incident;
                let start = i.started_at.min(i.acknowledged_at);
                UnseenRow {
                    title: site.public_text(&i.title),
                    url: i.url.clone(),
                    started: text::datetime(start),
                    started_iso: rfc3339(start),
                    duration: text::duration(i.resolved_at.unwrap_or(now) - start),
                }
            })
            .collect(),
        unseen_more: p.unseen_total.saturating_sub(p.unseen.len()),
    }
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub probe: String,
    pub model: Option<String>,
    pub state_class: &'static str,
    pub state_label: &'static str,
    pub since: Option<String>,
    pub explanation: Option<String>,
    /// Lines of the durable queue waiting for this provider, in words.
    pub queued: Option<String>,
    pub bar: String,
    pub strip: DayStrip,
    pub uptime_90: String,
    pub spark: String,
    pub latest_latency: Option<String>,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    pub banner: Banner,
    /// The words of the bars' day letters (`chart::day_legend`), once for the page.
    pub day_words: String,
    pub rows: Vec<Row>,
    pub incidents: Vec<IncidentRow>,
    pub others: Vec<OthersRow>,
}

/// The 90 days of one monitor's bar, oldest first, ending today.
pub fn day_segments(
    monitor: &str,
    days: &[DayCounts],
    incidents: &[Incident],
    now: Millis,
) -> Vec<DaySegment> {
    let today = day_start(now);
    let counts: HashMap<Millis, &DayCounts> = days.iter().map(|d| (d.day, d)).collect();
    let mine: Vec<&Incident> = incidents.iter().filter(|i| i.monitor == monitor).collect();
    (0..i64::from(BAR_DAYS))
        .rev()
        .map(|back| {
            let day = today - back * DAY_MS;
            let end = day + DAY_MS;
            let touching: Vec<&&Incident> = mine
                .iter()
                .filter(|i| i.started_at < end && i.ended_at.is_none_or(|e| e >= day))
                .collect();
            let from_counts = match counts.get(&day) {
                None => DayMark::NoData,
                Some(c) if c.total == 0 => DayMark::NoData,
                Some(c) if c.provider_failed > 0 || c.degraded > 0 => DayMark::Degraded,
                Some(_) => DayMark::Up,
            };
            let from_incidents = touching
                .iter()
                .map(|i| match i.kind {
                    IncidentKind::Outage => DayMark::Down,
                    IncidentKind::Regional => DayMark::Degraded,
                    IncidentKind::SetupProblem => DayMark::SetupProblem,
                    // Not the provider's doing: the bar is about the provider.
                    IncidentKind::Network => DayMark::NoData,
                })
                .max()
                .unwrap_or(DayMark::NoData);
            DaySegment {
                day,
                mark: from_counts.max(from_incidents),
                uptime: counts.get(&day).and_then(|c| c.uptime()),
                incidents: touching.len(),
            }
        })
        .collect()
}

pub(super) fn row(
    site: &SiteInfo,
    m: &MonitorHealth,
    history: &MonitorHistory,
    input: &OverviewInput,
) -> Row {
    let now = input.now;
    let segments = day_segments(&m.id, &history.days, input.incidents, now);
    let bad_days = segments.iter().filter(|s| s.incidents > 0).count();
    let bar_label = format!(
        "{}: 90-day uptime {}, {bad_days} of {BAR_DAYS} days with incidents",
        site.name(&m.provider),
        text::percent(history.uptime.d90)
    );
    let hour_now = now.div_euclid(HOUR_MS) * HOUR_MS;
    let failing = is_failing(m.state);
    Row {
        id: m.id.clone(),
        name: site.name(&m.provider).to_owned(),
        probe: m.probe.clone(),
        model: m.model.clone(),
        state_class: text::state_class(m.state),
        state_label: text::state_label(m.state),
        since: since_words(m, now),
        explanation: while_failing(site, m.explanation.as_deref(), failing),
        queued: input
            .health
            .queue_waiting
            .get(&m.provider)
            .map(|lines| text::queue_waiting(*lines)),
        bar: chart::uptime_bar(&segments, &bar_label),
        strip: chart::day_strip(&segments),
        uptime_90: uptime_words(history.uptime.d90),
        spark: chart::sparkline(
            &history.latency_24h,
            hour_now - 23 * HOUR_MS,
            hour_now + HOUR_MS,
            HOUR_MS,
        ),
        latest_latency: m.last_latency_ms.filter(|_| !failing).map(text::latency),
    }
}

pub fn overview_page(input: &OverviewInput) -> OverviewPage {
    let site = input.site;
    let rows = input
        .health
        .monitors
        .iter()
        .zip(input.histories)
        .map(|(m, history)| row(site, m, history, input))
        .collect();
    let frame = overview_frame(input, usize::MAX);
    OverviewPage {
        chrome: frame.chrome,
        banner: frame.banner,
        day_words: chart::day_legend(),
        rows,
        incidents: frame.incidents,
        others: frame.others,
    }
}

/// What the overview shows around its monitors' rows (`summary.rs` shows the same).
pub(super) struct OverviewFrame {
    pub chrome: Chrome,
    pub banner: Banner,
    /// The incidents of the last 7 days, newest first, at most the number asked for.
    pub incidents: Vec<IncidentRow>,
    /// How many more there are.
    pub incidents_more: usize,
    pub others: Vec<OthersRow>,
}

pub(super) fn overview_frame(input: &OverviewInput, incidents_max: usize) -> OverviewFrame {
    let site = input.site;
    let recent_from = input.now - RECENT_INCIDENT_DAYS;
    let recent = input
        .incidents
        .iter()
        .filter(|i| i.ended_at.is_none_or(|e| e >= recent_from));
    let incidents = recent
        .clone()
        .take(incidents_max)
        .map(|i| incident_row(site, i, input.now))
        .collect::<Vec<_>>();
    let incidents_more = recent.count() - incidents.len();
    let mut banner = banner(site, input.health, input.now);
    if input.freshness.stale {
        banner = stale_banner(banner, input.freshness);
    }
    let title = format!("{} — isdown status", banner.lines[0]);
    OverviewFrame {
        chrome: Chrome::new(title, "overview", input.freshness),
        banner,
        incidents,
        incidents_more,
        others: input
            .others
            .providers
            .iter()
            .filter(|p| p.now.any())
            .map(|p| others_row(site, p, input.now))
            .collect(),
    }
}

// === monitor page ===

/// The latency chart's ranges: name, bucket width, number of buckets.
pub const RANGES: [(&str, SeriesStep, u32); 3] = [
    ("24h", SeriesStep::Hour, 24),
    ("7d", SeriesStep::Hour, 7 * 24),
    ("30d", SeriesStep::Day, 30),
];

pub struct MonitorInput<'a> {
    pub site: &'a SiteInfo,
    pub monitor: &'a MonitorHealth,
    pub now: Millis,
    pub freshness: Freshness,
    pub uptime: Uptime,
    /// Day rollups of the last [`BAR_DAYS`] days.
    pub days: Vec<DayCounts>,
    /// Incidents open at some time in those days (any monitor's: the page picks its own).
    pub window: Vec<Incident>,
    /// Index into [`RANGES`].
    pub range: usize,
    pub latency: Vec<LatencyPoint>,
    pub results: Vec<ResultRecord>,
    pub incidents: Vec<Incident>,
}

pub struct ResultRow {
    pub at: String,
    pub at_iso: String,
    pub healthy: bool,
    pub verdict: String,
    pub blame: &'static str,
    pub status: String,
    pub latency: String,
    pub explanation: String,
}

/// One region's view on the monitor page (instances in several regions).
pub struct RegionRow {
    pub name: String,
    pub class: &'static str,
    pub label: &'static str,
    pub verdict: Option<String>,
    pub since: Option<String>,
}

/// One day of the monitor page's day-by-day table.
pub struct DayRow {
    pub date: String,
    pub class: &'static str,
    pub state: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "monitor.html")]
pub struct MonitorPage {
    pub chrome: Chrome,
    pub id: String,
    pub bar: String,
    pub strip: DayStrip,
    pub day_words: String,
    pub uptime_90: String,
    /// The bar's days in a table, newest first.
    pub days: Vec<DayRow>,
    pub name: String,
    pub probe: String,
    pub model: Option<String>,
    pub state_class: &'static str,
    pub state_label: &'static str,
    pub since: Option<String>,
    pub verdict: Option<String>,
    pub explanation: Option<String>,
    pub advice: Option<String>,
    pub uptime: Vec<(&'static str, String)>,
    pub upstream: Option<String>,
    pub status_page: Option<String>,
    /// (range name, is the current one)
    pub ranges: Vec<(&'static str, bool)>,
    pub chart: String,
    /// (from, p50, p95, samples) for the chart's data table.
    pub points: Vec<(String, String, String, u64)>,
    pub results: Vec<ResultRow>,
    pub incidents: Vec<IncidentRow>,
    /// Each region's view, when instances in several regions probe it (else empty).
    pub regions: Vec<RegionRow>,
}

/// The monitor page's region rows: none unless several regions report.
fn region_rows(m: &MonitorHealth, now: Millis) -> Vec<RegionRow> {
    if m.regions.len() < 2 {
        return Vec::new();
    }
    m.regions
        .iter()
        .map(|(name, view)| {
            let state = view.monitor_state();
            RegionRow {
                name: name.clone(),
                class: text::state_class(state),
                label: text::state_label(state),
                verdict: view
                    .verdict
                    .as_ref()
                    .filter(|_| is_failing(state))
                    .map(|v| text::verdict_name_words(v)),
                since: view
                    .since
                    .filter(|_| state != MonitorState::Unknown)
                    .map(|since| text::duration(now - since)),
            }
        })
        .collect()
}

pub fn monitor_page(input: &MonitorInput) -> MonitorPage {
    let (site, m, now) = (input.site, input.monitor, input.now);
    let (range_name, step, buckets) = RANGES[input.range.min(RANGES.len() - 1)];
    let width = step.width();
    let current = now.div_euclid(width) * width;
    let from = current - i64::from(buckets - 1) * width;
    let title = match step {
        SeriesStep::Hour => format!(
            "{} latency, last {range_name}, hourly",
            site.name(&m.provider)
        ),
        SeriesStep::Day => format!(
            "{} latency, last {range_name}, daily",
            site.name(&m.provider)
        ),
    };
    let failing = is_failing(m.state);
    let name = site.name(&m.provider).to_owned();
    let segments = day_segments(&m.id, &input.days, &input.window, now);
    let bar_label = format!(
        "{name}: 90-day uptime {}, {} of {BAR_DAYS} days with incidents",
        text::percent(input.uptime.d90),
        segments.iter().filter(|s| s.incidents > 0).count()
    );
    MonitorPage {
        chrome: Chrome::new(
            format!("{name} ({}) — isdown status", m.probe),
            "monitor",
            input.freshness,
        ),
        id: m.id.clone(),
        bar: chart::uptime_bar(&segments, &bar_label),
        strip: chart::day_strip(&segments),
        day_words: chart::day_legend(),
        uptime_90: uptime_words(input.uptime.d90),
        days: segments
            .iter()
            .rev()
            .map(|day| DayRow {
                date: text::date(day.day),
                class: day.mark.class(),
                state: day.mark.label(),
                detail: chart::day_detail(day),
            })
            .collect(),
        probe: m.probe.clone(),
        model: m.model.clone(),
        state_class: text::state_class(m.state),
        state_label: text::state_label(m.state),
        since: since_words(m, now),
        regions: region_rows(m, now),
        verdict: m.verdict.map(text::verdict_words),
        explanation: while_failing(site, m.explanation.as_deref(), failing),
        advice: while_failing(site, m.advice.as_deref(), failing),
        uptime: vec![
            ("24 h", text::percent(input.uptime.h24)),
            ("7 d", text::percent(input.uptime.d7)),
            ("30 d", text::percent(input.uptime.d30)),
            ("90 d", text::percent(input.uptime.d90)),
        ],
        upstream: site.upstream(&m.provider).map(str::to_owned),
        status_page: site
            .providers
            .get(&m.provider)
            .and_then(|p| p.status_page.clone()),
        ranges: RANGES
            .iter()
            .map(|(r, _, _)| (*r, *r == range_name))
            .collect(),
        chart: chart::latency_chart(&input.latency, from, current + width, width, &title),
        points: input
            .latency
            .iter()
            .map(|p| {
                (
                    text::datetime(p.start),
                    text::latency(p.p50_ms),
                    text::latency(p.p95_ms),
                    p.samples,
                )
            })
            .collect(),
        results: input
            .results
            .iter()
            .map(|r| ResultRow {
                at: text::datetime_seconds(r.at),
                at_iso: rfc3339(r.at),
                healthy: r.verdict.is_healthy(),
                verdict: text::verdict_words(r.verdict),
                blame: text::blame_label(r.blame),
                status: r.status.map_or("–".to_owned(), |s| s.to_string()),
                latency: r.latency_ms.map_or("–".to_owned(), text::latency),
                explanation: r
                    .explanation
                    .as_deref()
                    .map_or(String::new(), |e| site.public_text(e)),
            })
            .collect(),
        incidents: input
            .incidents
            .iter()
            .map(|i| incident_row(site, i, now))
            .collect(),
        name,
    }
}

// === incident history ===

#[derive(Template)]
#[template(path = "incidents.html")]
pub struct IncidentsPage {
    pub chrome: Chrome,
    pub incidents: Vec<IncidentRow>,
    pub prev: Option<u32>,
    pub next: Option<u32>,
}

/// `incidents` is one page (at most [`HISTORY_PER_PAGE`]) plus, when there are more, one extra
/// row that only says so.
pub fn incidents_page(
    site: &SiteInfo,
    incidents: &[Incident],
    page: u32,
    now: Millis,
    freshness: Freshness,
) -> IncidentsPage {
    let more = incidents.len() > HISTORY_PER_PAGE as usize;
    IncidentsPage {
        chrome: Chrome::new(
            "Incident history — isdown status".to_owned(),
            "incidents",
            freshness,
        ),
        incidents: incidents
            .iter()
            .take(HISTORY_PER_PAGE as usize)
            .map(|i| incident_row(site, i, now))
            .collect(),
        prev: (page > 1).then(|| page - 1),
        next: more.then(|| page + 1),
    }
}

// === handlers ===

/// A page drawn per request (it read the store).
fn html(page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => rendered::once(StatusCode::OK, rendered::HTML_ONCE, body),
        Err(e) => {
            tracing::error!(error = %e, "status page template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

fn unavailable(e: StoreError) -> Response {
    tracing::error!(error = %e, "status page: store query failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        Html(
            "<!doctype html><title>isdown status</title><p>The status database is unavailable; \
              this page will work again once it is back.</p>",
        ),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct MonitorQuery {
    range: Option<String>,
}

async fn monitor(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<MonitorQuery>,
) -> Response {
    let health = app.health.snapshot();
    let Some(m) = health.monitors.iter().find(|m| m.id == id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<!doctype html><title>Not found</title><p>No such monitor. <a href=\"/\">Back to the overview</a>.</p>"),
        )
            .into_response();
    };
    let range = q
        .range
        .as_deref()
        .and_then(|r| RANGES.iter().position(|(name, _, _)| *name == r))
        .unwrap_or(0);
    let (_, step, buckets) = RANGES[range];
    let _turn = match app.views.store_read().await {
        Ok(permit) => permit,
        Err(busy) => return busy,
    };
    let now = app.clock.now();
    let store = &app.store;
    let filter = IncidentFilter {
        state: None,
        monitor: Some(id.clone()),
        limit: MONITOR_INCIDENTS,
        offset: 0,
    };
    let from = day_start(now) - i64::from(BAR_DAYS - 1) * DAY_MS;
    let read = tokio::try_join!(
        store.uptime(&id, now),
        store.latency_series(&id, step, now, buckets),
        store.recent_results(&id, RECENT_RESULTS),
        store.incidents(&filter),
        store.daily_counts(&id, now, BAR_DAYS),
        store.incidents_between(from, now),
    );
    let (uptime, latency, results, incidents, days, window) = match read {
        Ok(all) => all,
        Err(e) => return unavailable(e),
    };
    let site = app.site.get();
    html(&monitor_page(&MonitorInput {
        site: &site,
        monitor: m,
        now,
        freshness: Freshness::of(&health, now),
        uptime,
        days,
        window,
        range,
        latency,
        results,
        incidents,
    }))
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    page: Option<u32>,
}

/// The first page is rendered on change and served from memory; older pages read the store.
async fn incidents(
    State(app): State<AppState>,
    Query(q): Query<HistoryQuery>,
    headers: HeaderMap,
) -> Response {
    let page = q.page.unwrap_or(1).max(1);
    if page == 1 {
        return app.views.respond(HISTORY, &headers).await;
    }
    let _turn = match app.views.store_read().await {
        Ok(permit) => permit,
        Err(busy) => return busy,
    };
    let filter = IncidentFilter {
        state: None,
        monitor: None,
        // One more than a page: it tells whether an "Older" link is needed.
        limit: HISTORY_PER_PAGE + 1,
        offset: (page - 1).saturating_mul(HISTORY_PER_PAGE),
    };
    match app.store.incidents(&filter).await {
        Ok(list) => {
            let now = app.clock.now();
            let freshness = Freshness::of(&app.health.snapshot(), now);
            html(&incidents_page(
                &app.site.get(),
                &list,
                page,
                now,
                freshness,
            ))
        }
        Err(e) => unavailable(e),
    }
}

/// The script, compressed once, with an ETag like every other view. It changes only with the
/// binary, so it was last modified when this process first served it.
static LIVE: LazyLock<Arc<Rendered>> = LazyLock::new(|| {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| Millis::try_from(d.as_millis()).unwrap_or(0));
    Rendered::publish(None, rendered::SCRIPT, LIVE_JS.to_owned(), started)
});

async fn live_js(headers: HeaderMap) -> Response {
    LIVE.respond(&headers)
}

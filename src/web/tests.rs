//! Tests of the public views with fixed inputs: snapshot tests of every template and chart
//! (the exact bytes, compared with files in `src/web/snapshots/`), the Statuspage JSON checked
//! against the documented shapes, and the safety rules (hidden upstream URLs).
//!
//! Updating snapshots after an intended change: `ISDOWN_UPDATE_SNAPSHOTS=1 cargo test --lib web`
//! rewrites the files; review them with `git diff src/web/snapshots` and commit them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use askama::Template;
use serde_json::Value;

use super::badge;
use super::chart;
use super::feed;
use super::freshness::Freshness;
use super::page::{self, MonitorHistory, MonitorInput, OverviewInput};
use super::site::SiteInfo;
use super::site::WebSettings;
use super::site::tests::face;
use super::statuspage;
use crate::incident::IncidentKind;
use crate::monitor::health::{HealthSnapshot, MonitorHealth};
use crate::monitor::machine::MonitorState;
use crate::monitor::regions::RegionView;
use crate::store::{DayCounts, Incident, LatencyPoint, ResultRecord, Uptime};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Millis};
use crate::verdict::{Blame, Verdict};

/// 2026-11-25T14:03:00Z.
pub(super) const NOW: Millis = 1_795_615_380_000;

/// The monitor's newest result was 10 s ago and its loop is running.
const FRESH: Freshness = Freshness {
    updated_at: Some(NOW - 10_000),
    stale: false,
};

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/web/snapshots")
        .join(name)
}

/// A page with its inlined stylesheet left out: every page inlines the same `style.css`
/// (`pages_inline_the_stylesheet_whole` checks that once), so the page snapshots hold what is
/// particular to each page.
fn without_stylesheet(html: &str) -> String {
    match (html.find("<style>"), html.find("</style>")) {
        (Some(start), Some(end)) if start < end => format!(
            "{}<style>/* src/web/assets/style.css */{}",
            &html[..start],
            &html[end..]
        ),
        _ => html.to_owned(),
    }
}

/// The latency section of a monitor page (range links, chart, chart data): what the range
/// changes.
fn latency_section(html: &str) -> &str {
    let start = html
        .find("<section aria-labelledby=\"latency-title\">")
        .expect("a latency section");
    let end = start
        + html[start..]
            .find("</section>")
            .expect("the latency section ends");
    &html[start..end + "</section>".len()]
}

/// Compares `actual` with the committed snapshot `name`, or rewrites it when
/// `ISDOWN_UPDATE_SNAPSHOTS` is set.
fn assert_snapshot(name: &str, actual: &str) {
    let path = snapshot_path(name);
    if std::env::var_os("ISDOWN_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot {} ({e}); create it with ISDOWN_UPDATE_SNAPSHOTS=1 cargo test --lib web",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let (line, (want, got)) = expected
        .lines()
        .chain(std::iter::repeat(""))
        .zip(actual.lines().chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .expect("texts differ, so some line does");
    panic!(
        "{name} differs from its snapshot at line {}:\n  snapshot: {want}\n  now:      {got}\n\
         If the change is intended: ISDOWN_UPDATE_SNAPSHOTS=1 cargo test --lib web, then review \
         git diff src/web/snapshots",
        line + 1
    );
}

fn site(hide_urls: bool) -> SiteInfo {
    let mut kimi = face("Kimi", "https://api.moonshot.ai/v1");
    kimi.status_page = Some("https://status.moonshot.cn".to_owned());
    kimi.official_read = true;
    SiteInfo::new(
        WebSettings {
            public_url: Some("https://status.example.com".to_owned()),
            hide_urls,
        },
        BTreeMap::from([
            ("kimi".to_owned(), kimi),
            (
                "deepseek".to_owned(),
                face("DeepSeek", "https://api.deepseek.com"),
            ),
            (
                "openai".to_owned(),
                face("OpenAI", "https://api.openai.com/v1"),
            ),
        ]),
    )
}

pub(super) fn monitor(provider: &str, state: MonitorState) -> MonitorHealth {
    MonitorHealth {
        id: format!("{provider}-chat"),
        provider: provider.to_owned(),
        model: Some(format!("{provider}-model")),
        probe: "chat".to_owned(),
        state,
        since: None,
        verdict: None,
        last_at: Some(NOW - 10_000),
        last_latency_ms: None,
        explanation: None,
        advice: None,
        open_incident: None,
        regions: Default::default(),
    }
}

/// Kimi down for 23 minutes, DeepSeek's key rejected, OpenAI fine.
fn health() -> HealthSnapshot {
    let mut kimi = monitor("kimi", MonitorState::Down);
    kimi.since = Some(NOW - 23 * MINUTE_MS);
    kimi.verdict = Some(Verdict::Unavailable);
    kimi.explanation =
        Some("503 Service Unavailable from api.moonshot.ai <html> & friends".to_owned());
    kimi.advice = Some("Fail over to another provider.".to_owned());
    let mut deepseek = monitor("deepseek", MonitorState::SetupProblem);
    deepseek.since = Some(NOW - 2 * HOUR_MS);
    deepseek.verdict = Some(Verdict::AuthFailed);
    deepseek.explanation = Some("401 invalid key".to_owned());
    let mut openai = monitor("openai", MonitorState::Up);
    openai.since = Some(NOW - 3 * DAY_MS);
    openai.verdict = Some(Verdict::Up);
    openai.last_latency_ms = Some(312.0);
    healthy_snapshot(vec![kimi, deepseek, openai])
}

/// A snapshot of `monitors` with a fresh heartbeat and nothing else going on.
pub(super) fn healthy_snapshot(monitors: Vec<MonitorHealth>) -> HealthSnapshot {
    HealthSnapshot {
        monitors,
        network_incident: None,
        passive: BTreeMap::new(),
        quarantined: BTreeMap::new(),
        heartbeat_at: Some(NOW - 500),
        stored_through: Some(NOW - 1_000),
        queue_waiting: BTreeMap::new(),
        region: "default".into(),
        store: Default::default(),
    }
}

fn incident(
    id: i64,
    provider: &str,
    kind: IncidentKind,
    verdict: Verdict,
    started_at: Millis,
    ended_at: Option<Millis>,
) -> Incident {
    Incident {
        id,
        monitor: if kind == IncidentKind::Network {
            "*".to_owned()
        } else {
            format!("{provider}-chat")
        },
        provider: provider.to_owned(),
        kind,
        verdict,
        started_at,
        ended_at,
        failed_probes: 4,
        first_error: Some(format!(
            "{verdict} from https://api.moonshot.ai/v1/chat/completions"
        )),
        last_error: None,
        official: None,
        opened_by: None,
    }
}

/// Newest first, as the store returns them.
fn incidents() -> Vec<Incident> {
    vec![
        incident(
            7,
            "kimi",
            IncidentKind::Outage,
            Verdict::Unavailable,
            NOW - 23 * MINUTE_MS,
            None,
        ),
        incident(
            6,
            "deepseek",
            IncidentKind::SetupProblem,
            Verdict::AuthFailed,
            NOW - 2 * HOUR_MS,
            None,
        ),
        incident(
            5,
            "*",
            IncidentKind::Network,
            Verdict::Network,
            NOW - 2 * DAY_MS,
            Some(NOW - 2 * DAY_MS + 4 * MINUTE_MS),
        ),
        Incident {
            official: Some(crate::store::OfficialAck {
                official_id: 1,
                title: "Elevated errors on the Open API".to_owned(),
                url: Some("https://stspg.io/k2a9".to_owned()),
                acknowledged_at: NOW - 3 * DAY_MS - 5 * HOUR_MS + 14 * MINUTE_MS,
                resolved_at: Some(NOW - 3 * DAY_MS - 4 * HOUR_MS + 20 * MINUTE_MS),
            }),
            ..incident(
                4,
                "kimi",
                IncidentKind::Outage,
                Verdict::Overloaded,
                NOW - 3 * DAY_MS - 5 * HOUR_MS,
                Some(NOW - 3 * DAY_MS - 4 * HOUR_MS + 10 * MINUTE_MS),
            )
        },
    ]
}

fn today() -> Millis {
    NOW.div_euclid(DAY_MS) * DAY_MS
}

fn counts(day: Millis, healthy: u64, degraded: u64, provider_failed: u64) -> DayCounts {
    DayCounts {
        day,
        total: healthy + provider_failed,
        healthy,
        degraded,
        provider_failed,
        other_failed: 0,
    }
}

fn latency(hours_ago: i64, p50_ms: f64) -> LatencyPoint {
    let hour = NOW.div_euclid(HOUR_MS) * HOUR_MS;
    LatencyPoint {
        start: hour - hours_ago * HOUR_MS,
        p50_ms,
        p95_ms: p50_ms * 2.5,
        samples: 120,
    }
}

fn kimi_history() -> MonitorHistory {
    MonitorHistory {
        uptime: Uptime {
            h24: Some(0.98),
            d7: Some(0.991),
            d30: Some(0.9975),
            d90: Some(0.9991),
        },
        days: vec![
            counts(today() - 10 * DAY_MS, 2880, 0, 0),
            counts(today() - 4 * DAY_MS, 2870, 30, 0),
            counts(today() - 3 * DAY_MS, 2800, 0, 80),
            counts(today() - DAY_MS, 2880, 0, 0),
            counts(today(), 1600, 0, 46),
        ],
        latency_24h: vec![
            latency(23, 420.0),
            latency(22, 455.0),
            latency(21, 610.0),
            latency(18, 380.0),
            latency(17, 395.0),
            latency(1, 520.0),
        ],
    }
}

/// One history per monitor of [`health`]: Kimi's, none for DeepSeek, a short one for OpenAI.
fn histories() -> Vec<Arc<MonitorHistory>> {
    vec![
        Arc::new(kimi_history()),
        Arc::default(),
        Arc::new(MonitorHistory {
            uptime: Uptime {
                h24: Some(1.0),
                d7: Some(1.0),
                d30: Some(1.0),
                d90: Some(1.0),
            },
            days: vec![counts(today(), 1700, 0, 0)],
            latency_24h: vec![latency(2, 300.0), latency(1, 310.0), latency(0, 312.0)],
        }),
    ]
}

fn overview_input<'a>(
    site: &'a SiteInfo,
    health: &'a HealthSnapshot,
    histories: &'a [Arc<MonitorHistory>],
    incidents: &'a [Incident],
) -> OverviewInput<'a> {
    OverviewInput {
        site,
        health,
        now: NOW,
        freshness: FRESH,
        histories,
        incidents,
        others: &NO_OTHERS,
    }
}

/// No source beside the probes (the fixtures' providers have none).
static NO_OTHERS: std::sync::LazyLock<crate::corroborate::view::SourcesView> =
    std::sync::LazyLock::new(Default::default);

/// The overview of [`health`] with every fixture, rendered.
fn overview_html(site: &SiteInfo, health: &HealthSnapshot, freshness: Freshness) -> String {
    let (histories, incidents) = (histories(), incidents());
    let mut input = overview_input(site, health, &histories, &incidents);
    input.freshness = freshness;
    page::overview_page(&input).render().unwrap()
}

fn results() -> Vec<ResultRecord> {
    let failure = |at: Millis| ResultRecord {
        monitor_id: "kimi-chat".to_owned(),
        at,
        verdict: Verdict::Unavailable,
        blame: Some(Blame::Provider),
        status: Some(503),
        latency_ms: Some(41.0),
        ttft_ms: None,
        explanation: Some("503 from api.moonshot.ai".to_owned()),
        region: None,
    };
    vec![
        failure(NOW - 20_000),
        failure(NOW - 50_000),
        ResultRecord {
            monitor_id: "kimi-chat".to_owned(),
            at: NOW - 24 * MINUTE_MS,
            verdict: Verdict::Up,
            blame: None,
            status: Some(200),
            latency_ms: Some(1_480.0),
            ttft_ms: None,
            explanation: None,
            region: None,
        },
    ]
}

fn monitor_input<'a>(
    site: &'a SiteInfo,
    health: &'a HealthSnapshot,
    range: usize,
) -> MonitorInput<'a> {
    let history = kimi_history();
    // Points as the store would give them for the range: hourly for 24 h and 7 d, daily for
    // 30 d, with a gap in each.
    let (_, step, buckets) = page::RANGES[range];
    let width = step.width();
    let current = NOW.div_euclid(width) * width;
    let latency = (0..i64::from(buckets))
        .filter(|back| *back != 3)
        .rev()
        .map(|back| LatencyPoint {
            start: current - back * width,
            p50_ms: 350.0 + (back * 37 % 250) as f64,
            p95_ms: 900.0 + (back * 53 % 1_300) as f64,
            samples: 100,
        })
        .collect();
    MonitorInput {
        site,
        monitor: &health.monitors[0],
        now: NOW,
        freshness: FRESH,
        uptime: history.uptime,
        days: history.days,
        window: incidents(),
        range,
        latency,
        results: results(),
        incidents: vec![incidents()[0].clone(), incidents()[3].clone()],
    }
}

// === snapshots ===

#[test]
fn overview_page_snapshot() {
    let (site, health) = (site(false), health());
    assert_snapshot(
        "overview.html",
        &without_stylesheet(&overview_html(&site, &health, FRESH)),
    );
}

#[test]
fn the_overview_says_how_many_queued_lines_wait_for_a_provider() {
    let site = site(false);
    let mut health = health();
    assert!(!overview_html(&site, &health, FRESH).contains("queued batch line"));
    health.queue_waiting.insert("kimi".to_owned(), 37);
    let html = overview_html(&site, &health, FRESH);
    assert!(
        html.contains(
            "<p class=\"explanation queued\">37 queued batch lines wait for it to recover</p>"
        ),
        "{html}"
    );
}

#[test]
fn monitor_page_snapshots_for_each_range() {
    let (site, health) = (site(false), health());
    // The whole page once, at the default range; for the others only what the range changes.
    for (index, (range, _, _)) in page::RANGES.iter().enumerate() {
        let html = page::monitor_page(&monitor_input(&site, &health, index))
            .render()
            .unwrap();
        if *range == "7d" {
            assert_snapshot("monitor-7d.html", &without_stylesheet(&html));
        } else {
            assert_snapshot(
                &format!("monitor-latency-{range}.html"),
                latency_section(&html),
            );
        }
    }
}

#[test]
fn a_monitor_failing_from_one_region_shows_each_regions_view_on_its_page() {
    let site = site(false);
    let mut health = health();
    let view = |state: MonitorState, verdict: Option<&str>, since: Millis| RegionView {
        state: state.as_str().to_owned(),
        verdict: verdict.map(str::to_owned),
        since: Some(since),
    };
    health.monitors[0].state = MonitorState::Regional;
    health.monitors[0].regions = BTreeMap::from([
        (
            "eu-west".to_owned(),
            view(MonitorState::Down, Some("unavailable"), NOW - 120_000),
        ),
        (
            "us-east".to_owned(),
            view(MonitorState::Up, None, NOW - 3_600_000),
        ),
    ]);
    let html = page::monitor_page(&monitor_input(&site, &health, 0))
        .render()
        .unwrap();
    assert!(html.contains("Failing in some regions"), "{html}");
    let rows = html
        .split("<caption>From each region</caption>")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("a table of regions");
    assert!(
        rows.contains(
            "<th scope=\"row\">eu-west</th><td><span class=\"state state-down\"><span class=\"dot\" aria-hidden=\"true\"></span>Major outage — <span class=\"verdict\">unavailable</span></span></td><td>2 min</td>"
        ),
        "{rows}"
    );
    assert!(
        rows.contains("<th scope=\"row\">us-east</th><td><span class=\"state state-up\">"),
        "{rows}"
    );
    // One region alone shows no table: its view is the page's.
    health.monitors[0].regions.remove("us-east");
    let html = page::monitor_page(&monitor_input(&site, &health, 0))
        .render()
        .unwrap();
    assert!(!html.contains("From each region"));
}

#[test]
fn pages_inline_the_stylesheet_whole() {
    let (site, health) = (site(false), health());
    let html = overview_html(&site, &health, FRESH);
    let css = include_str!("assets/style.css");
    assert!(html.contains(&format!("<style>{css}</style>")));
}

#[test]
fn incident_history_snapshot() {
    let html = page::incidents_page(&site(false), &incidents(), 1, NOW, FRESH)
        .render()
        .unwrap();
    assert_snapshot("incidents.html", &without_stylesheet(&html));
}

#[test]
fn feed_snapshot() {
    let atom = feed::feed_of(&site(false), &incidents(), NOW)
        .render()
        .unwrap();
    assert_snapshot("feed.atom", &atom);
}

#[test]
fn badge_snapshots() {
    assert_snapshot(
        "badge-status-down.svg",
        &badge::status_face("Kimi", MonitorState::Down, false).draw(),
    );
    assert_snapshot(
        "badge-status-setup.svg",
        &badge::status_face("DeepSeek", MonitorState::SetupProblem, false).draw(),
    );
    assert_snapshot(
        "badge-uptime-30d.svg",
        &badge::uptime_face(Some(0.9975)).draw(),
    );
    assert_snapshot("badge-uptime-none.svg", &badge::uptime_face(None).draw());
}

#[test]
fn chart_snapshots() {
    let history = kimi_history();
    let segments = page::day_segments("kimi-chat", &history.days, &incidents(), NOW);
    assert_snapshot(
        "uptime-bar.svg",
        &chart::uptime_bar(&segments, "Kimi: 90-day uptime 99.91%"),
    );
    let hour = NOW.div_euclid(HOUR_MS) * HOUR_MS;
    assert_snapshot(
        "sparkline.svg",
        &chart::sparkline(
            &history.latency_24h,
            hour - 23 * HOUR_MS,
            hour + HOUR_MS,
            HOUR_MS,
        ),
    );
    let days: Vec<LatencyPoint> = (0..30)
        .map(|d| LatencyPoint {
            start: today() - (29 - d) * DAY_MS,
            p50_ms: 300.0 + (d * 37 % 200) as f64,
            p95_ms: 900.0 + (d * 53 % 1_400) as f64,
            samples: 2_880,
        })
        .filter(|p| p.start != today() - 12 * DAY_MS)
        .collect();
    assert_snapshot(
        "latency-30d.svg",
        &chart::latency_chart(
            &days,
            today() - 29 * DAY_MS,
            today() + DAY_MS,
            DAY_MS,
            "Kimi latency, last 30d, daily",
        ),
    );
    assert_snapshot(
        "latency-empty.svg",
        &chart::latency_chart(&[], hour - 23 * HOUR_MS, hour + HOUR_MS, HOUR_MS, "No data"),
    );
}

#[test]
fn statuspage_summary_snapshot() {
    let (site, health) = (site(false), health());
    let open: Vec<Incident> = incidents()
        .into_iter()
        .filter(|i| i.ended_at.is_none())
        .collect();
    let summary = statuspage::summary_json(&site, &health, &open, NOW);
    assert_snapshot(
        "statuspage-summary.json",
        &serde_json::to_string_pretty(&summary).unwrap(),
    );
}

// === behaviour ===

#[test]
fn uptime_bar_days_take_the_worst_state_of_the_day() {
    let history = kimi_history();
    let segments = page::day_segments("kimi-chat", &history.days, &incidents(), NOW);
    assert_eq!(segments.len(), 90);
    assert_eq!(segments[89].day, today());
    let mark = |days_ago: usize| segments[89 - days_ago].mark;
    // Today: an open outage beats the failures counted.
    assert_eq!(mark(0), chart::DayMark::Down);
    assert_eq!(segments[89].incidents, 1);
    // Two days ago: only isdown's own network failed, which says nothing about Kimi.
    assert_eq!(mark(2), chart::DayMark::NoData);
    // Three days ago: the overloaded outage.
    assert_eq!(mark(3), chart::DayMark::Down);
    // Four days ago: slow answers, no incident.
    assert_eq!(mark(4), chart::DayMark::Degraded);
    assert_eq!(mark(10), chart::DayMark::Up);
    assert_eq!(mark(11), chart::DayMark::NoData);
    assert_eq!(segments[89 - 3].uptime, Some(2800.0 / 2880.0));
}

#[test]
fn banner_names_the_outage_then_the_setup_problem() {
    let banner = page::banner(&site(false), &health(), NOW);
    assert_eq!(banner.class, "state-down");
    assert_eq!(
        banner.lines,
        vec![
            "Kimi — major outage for 23 min".to_owned(),
            "Setup problem: DeepSeek key rejected".to_owned(),
        ]
    );
}

#[test]
fn banner_says_all_operational_or_waiting() {
    let mut health = health();
    for m in &mut health.monitors {
        m.state = MonitorState::Up;
    }
    let banner = page::banner(&site(false), &health, NOW);
    assert_eq!(
        (banner.class, banner.lines),
        ("state-up", vec!["All systems operational".to_owned()])
    );
    for m in &mut health.monitors {
        m.state = MonitorState::Unknown;
    }
    let banner = page::banner(&site(false), &health, NOW);
    assert_eq!(
        (banner.class, banner.lines),
        (
            "state-unknown",
            vec!["Waiting for the first probes".to_owned()]
        )
    );
    health.monitors[1].state = MonitorState::SetupProblem;
    health.monitors[1].verdict = Some(Verdict::QuotaExhausted);
    let banner = page::banner(&site(false), &health, NOW);
    assert_eq!(
        (banner.class, banner.lines),
        (
            "state-setup",
            vec!["Setup problem: DeepSeek out of quota".to_owned()]
        )
    );
}

#[test]
fn hide_urls_keeps_upstream_addresses_off_every_public_view() {
    let health = health();
    let open: Vec<Incident> = incidents();
    let views = |site: &SiteInfo| -> Vec<(&'static str, String)> {
        vec![
            ("overview", overview_html(site, &health, FRESH)),
            (
                "monitor",
                page::monitor_page(&monitor_input(site, &health, 0))
                    .render()
                    .unwrap(),
            ),
            (
                "incidents",
                page::incidents_page(site, &open, 1, NOW, FRESH)
                    .render()
                    .unwrap(),
            ),
            ("feed", feed::feed_of(site, &open, NOW).render().unwrap()),
            (
                "summary.json",
                serde_json::to_string(&statuspage::summary_json(site, &health, &open, NOW))
                    .unwrap(),
            ),
            (
                "incidents.json",
                statuspage::incidents_json(site, &health, &open, NOW).to_string(),
            ),
        ]
    };
    for (name, text) in views(&site(true)) {
        for upstream in ["api.moonshot.ai", "api.deepseek.com", "api.openai.com"] {
            assert!(!text.contains(upstream), "{name} shows {upstream}");
        }
    }
    // The same views without the setting do show them (so the check above means something).
    let shown = views(&site(false));
    assert!(shown[1].1.contains("https://api.moonshot.ai/v1"));
    assert!(shown[0].1.contains("api.moonshot.ai"));
}

#[test]
fn error_text_is_escaped_on_the_page() {
    let (site, health) = (site(false), health());
    let html = overview_html(&site, &health, FRESH);
    assert!(
        !html.contains("<html> & friends"),
        "raw markup from an error"
    );
    assert!(
        html.contains("&#60;html&#62; &#38; friends")
            || html.contains("&lt;html&gt; &amp; friends")
    );
}

// === Statuspage shapes ===

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn one_of(value: &Value, allowed: &[&str]) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(allowed.contains(&text), "{text} is not one of {allowed:?}");
}

fn is_time(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    assert!(
        humantime::parse_rfc3339(text).is_ok(),
        "{text} is not RFC 3339"
    );
}

const PAGE_KEYS: [&str; 5] = ["id", "name", "url", "time_zone", "updated_at"];
const COMPONENT_KEYS: [&str; 13] = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
];
/// The documented incident fields, plus the three optional ones (`postmortem_body`,
/// `impact_override`, `backfilled`) Statuspage's incidents also carry.
const INCIDENT_KEYS: [&str; 17] = [
    "id",
    "name",
    "status",
    "impact",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "started_at",
    "shortlink",
    "page_id",
    "incident_updates",
    "components",
    "reminder_intervals",
    "postmortem_body",
    "impact_override",
    "backfilled",
];
const UPDATE_KEYS: [&str; 11] = [
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
];
const COMPONENT_STATUSES: [&str; 5] = [
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];
const INCIDENT_STATUSES: [&str; 5] = [
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "postmortem",
];

fn check_incident(incident: &Value) {
    assert_eq!(keys(incident), set(&INCIDENT_KEYS), "{incident:#}");
    one_of(&incident["status"], &INCIDENT_STATUSES);
    one_of(&incident["impact"], &["none", "minor", "major", "critical"]);
    for field in ["created_at", "updated_at", "started_at"] {
        is_time(&incident[field]);
    }
    assert!(incident["id"].is_string() && incident["shortlink"].is_string());
    assert_eq!(
        incident["resolved_at"].is_null(),
        incident["status"] != "resolved"
    );
    let updates = incident["incident_updates"].as_array().unwrap();
    assert!(!updates.is_empty());
    for update in updates {
        assert_eq!(keys(update), set(&UPDATE_KEYS), "{update:#}");
        one_of(&update["status"], &INCIDENT_STATUSES);
        assert_eq!(update["incident_id"], incident["id"]);
        for affected in update["affected_components"].as_array().unwrap() {
            assert_eq!(
                keys(affected),
                set(&["code", "name", "old_status", "new_status"])
            );
            one_of(&affected["old_status"], &COMPONENT_STATUSES);
            one_of(&affected["new_status"], &COMPONENT_STATUSES);
        }
    }
    for component in incident["components"].as_array().unwrap() {
        assert_eq!(keys(component), set(&["id", "name", "status"]));
        one_of(&component["status"], &COMPONENT_STATUSES);
    }
}

#[test]
fn statuspage_json_has_the_documented_shapes() {
    let (site, health) = (site(false), health());
    let all = incidents();
    let open: Vec<Incident> = all
        .iter()
        .filter(|i| i.ended_at.is_none())
        .cloned()
        .collect();

    let status = statuspage::status_json(&site, &health, NOW);
    assert_eq!(keys(&status), set(&["page", "status"]));
    assert_eq!(keys(&status["page"]), set(&PAGE_KEYS));
    is_time(&status["page"]["updated_at"]);
    assert_eq!(keys(&status["status"]), set(&["indicator", "description"]));
    // One of three monitors down: a partial outage, not a total one.
    assert_eq!(status["status"]["indicator"], "major");
    assert_eq!(status["status"]["description"], "Partial System Outage");

    let summary =
        serde_json::to_value(statuspage::summary_json(&site, &health, &open, NOW)).unwrap();
    assert_eq!(
        keys(&summary),
        set(&[
            "page",
            "status",
            "components",
            "incidents",
            "scheduled_maintenances"
        ])
    );
    let components = summary["components"].as_array().unwrap();
    assert_eq!(components.len(), 3);
    for component in components {
        assert_eq!(keys(component), set(&COMPONENT_KEYS), "{component:#}");
        one_of(&component["status"], &COMPONENT_STATUSES);
    }
    let statuses: Vec<&str> = components
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    // A rejected key says nothing about DeepSeek itself.
    assert_eq!(statuses, ["major_outage", "operational", "operational"]);
    assert_eq!(
        components[1]["description"],
        "isdown cannot check this provider: key rejected"
    );
    let listed = summary["incidents"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "summary lists unresolved incidents only");
    listed.iter().for_each(check_incident);
    assert_eq!(summary["scheduled_maintenances"], serde_json::json!([]));

    let history = statuspage::incidents_json(&site, &health, &all, NOW);
    assert_eq!(keys(&history), set(&["page", "incidents"]));
    let listed = history["incidents"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "resolved incidents included");
    listed.iter().for_each(check_incident);
    let resolved = &listed[3];
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["impact"], "major");
    assert_eq!(resolved["incident_updates"][0]["status"], "resolved");
    assert_eq!(resolved["incident_updates"][1]["status"], "investigating");
}

#[test]
fn statuspage_indicator_is_critical_only_when_everything_is_down() {
    let mut health = health();
    for m in &mut health.monitors {
        m.state = MonitorState::Down;
    }
    assert_eq!(statuspage::indicator(&health)["indicator"], "critical");
    for m in &mut health.monitors {
        m.state = MonitorState::Degraded;
    }
    assert_eq!(statuspage::indicator(&health)["indicator"], "minor");
    for m in &mut health.monitors {
        m.state = MonitorState::SetupProblem;
    }
    assert_eq!(statuspage::indicator(&health)["indicator"], "none");
}

// === cached views ===

/// A deterministic pseudo-random sequence (64-bit LCG), so the synthetic history is the same on
/// every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` monitors with 90 days of history like a real bad day: most days up, some with failures,
/// a few outages (each an incident), younger monitors with days of no data, hourly latency
/// wandering around a per-monitor base; one monitor in ten down now, with an open incident.
fn large_inputs(n: usize) -> super::views::Inputs {
    let mut rng = Lcg(21);
    let mut monitors = Vec::new();
    let mut histories = Vec::new();
    let mut window = Vec::new();
    let mut providers = BTreeMap::new();
    for i in 0..n {
        let provider = format!("p{i:03}");
        providers.insert(
            provider.clone(),
            face(
                &format!("Provider {i:03}"),
                &format!("https://api{i}.example.com/v1"),
            ),
        );
        let mut m = monitor(&provider, MonitorState::Up);
        m.last_latency_ms = Some(200.0 + rng.below(300) as f64);
        m.since = Some(NOW - rng.below(30) as i64 * DAY_MS);
        let first_day = if i % 5 == 0 { rng.below(60) as i64 } else { 89 };
        let mut days = Vec::new();
        for back in (0..=first_day).rev() {
            let day = today() - back * DAY_MS;
            let roll = rng.below(100);
            let failed = match roll {
                0..2 => {
                    let start = day + rng.below(20) as i64 * HOUR_MS;
                    window.push(incident(
                        window.len() as i64 + 1,
                        &provider,
                        IncidentKind::Outage,
                        Verdict::Unavailable,
                        start,
                        Some(start + (20 + rng.below(160) as i64) * MINUTE_MS),
                    ));
                    window.last_mut().unwrap().monitor = m.id.clone();
                    40 + rng.below(300)
                }
                2..10 => 1 + rng.below(6),
                _ => 0,
            };
            days.push(counts(day, 2880 - failed, 0, failed));
        }
        if i % 10 == 0 {
            m.state = MonitorState::Down;
            m.verdict = Some(Verdict::Unavailable);
            m.since = Some(NOW - 20 * MINUTE_MS);
            m.explanation = Some("503 Service Unavailable from the provider".to_owned());
            let mut open = incident(
                window.len() as i64 + 1,
                &provider,
                IncidentKind::Outage,
                Verdict::Unavailable,
                NOW - 20 * MINUTE_MS,
                None,
            );
            open.monitor = m.id.clone();
            window.push(open);
        }
        let base = 150.0 + rng.below(500) as f64;
        let latency_24h = (0..24)
            .map(|h| latency(h, base + rng.below(120) as f64))
            .collect();
        histories.push(Arc::new(MonitorHistory {
            uptime: Uptime {
                h24: Some(1.0 - rng.below(50) as f64 / 10_000.0),
                d7: Some(1.0 - rng.below(80) as f64 / 10_000.0),
                d30: Some(1.0 - rng.below(120) as f64 / 10_000.0),
                d90: Some(1.0 - rng.below(200) as f64 / 10_000.0),
            },
            days,
            latency_24h,
        }));
        monitors.push(m);
    }
    window.sort_by_key(|i| std::cmp::Reverse(i.started_at));
    let latest = window.iter().take(51).cloned().collect();
    super::views::Inputs {
        site: Arc::new(SiteInfo::new(WebSettings::default(), providers)),
        health: healthy_snapshot(monitors),
        now: NOW,
        freshness: FRESH,
        histories,
        window,
        latest,
        others: Arc::default(),
    }
}

#[test]
fn overview_of_200_monitors_fits_in_64_kib_gzipped_and_in_few_nodes() {
    let views = super::views::Views::build(&large_inputs(200), None);
    let overview = views.get("/").unwrap();
    let gzip = overview.encoded(super::rendered::Encoding::Gzip).unwrap();
    let brotli = overview.encoded(super::rendered::Encoding::Brotli).unwrap();
    let html = std::str::from_utf8(overview.identity()).unwrap();
    eprintln!(
        "overview of 200 monitors: {} B, gzip {} B, br {} B",
        html.len(),
        gzip.len(),
        brotli.len()
    );
    assert!(gzip.len() <= 64 * 1024, "gzip {} B", gzip.len());
    // Five paths at most per bar, where there were 90 rectangles with 90 titles.
    assert!(html.matches("<path").count() <= 200 * 6, "too many paths");
    assert_eq!(html.matches("<rect").count(), 0);
    assert_eq!(html.matches("class=\"days\"").count(), 200);
}

#[test]
fn unchanged_views_keep_their_version_and_a_change_moves_only_what_shows_it() {
    let inputs = large_inputs(20);
    let first = super::views::Views::build(&inputs, None);
    let again = super::views::Views::build(&inputs, Some(&first));
    for view in super::views::VIEWS.iter() {
        assert!(
            Arc::ptr_eq(first.get(view.path).unwrap(), again.get(view.path).unwrap()),
            "{} was re-rendered although nothing changed",
            view.path
        );
    }
    let mut changed = large_inputs(20);
    changed.health.monitors[3].state = MonitorState::Down;
    let next = super::views::Views::build(&changed, Some(&again));
    assert_ne!(
        next.get("/").unwrap().etag(),
        again.get("/").unwrap().etag()
    );
    assert_ne!(
        next.get("/api/v1/status").unwrap().etag(),
        again.get("/api/v1/status").unwrap().etag()
    );
    // A badge is drawn per request; its version is what its validators say.
    use axum::http::{HeaderMap, header};
    let status = |v: &super::views::Views, key: &str| {
        let response = v.badge(key, 0).unwrap().respond(&HeaderMap::new());
        [header::ETAG, header::LAST_MODIFIED].map(|h| response.headers()[h].clone())
    };
    assert_ne!(status(&next, "p003-chat"), status(&again, "p003-chat"));
    assert_eq!(status(&next, "p004-chat"), status(&again, "p004-chat"));
    // A provider id names its first monitor's badge.
    assert_eq!(status(&next, "p003"), status(&next, "p003-chat"));
    assert!(next.badge("nobody", 0).is_none());
}

#[test]
fn uptime_bar_draws_one_path_per_kind_of_day() {
    let segments = page::day_segments("kimi-chat", &kimi_history().days, &incidents(), NOW);
    let bar = chart::uptime_bar(&segments, "Kimi");
    assert_eq!(bar.matches("<path").count(), 4, "{bar}");
    assert_eq!(bar.matches("class=\"day-down\"").count(), 1);
    // Today (the last day, x = 89 × 5 + 2) and three days ago are the two outage stripes.
    assert!(
        bar.contains("<path class=\"day-down\" d=\"M432 0v28m15-28v28\"/>"),
        "{bar}"
    );
}

#[test]
fn day_strip_notes_only_days_out_of_the_ordinary() {
    let segments = page::day_segments("kimi-chat", &kimi_history().days, &incidents(), NOW);
    let strip = chart::day_strip(&segments);
    assert_eq!(strip.first, "2026-08-28");
    assert_eq!(strip.marks.len(), 90);
    assert!(strip.marks.ends_with("unnnnndxnux"), "{}", strip.marks);
    assert_eq!(
        strip.notes,
        "86:97.22% uptime, 1 incident;89:97.20% uptime, 1 incident"
    );
    // Every letter has its words, and a usual day's words are those of its letter.
    let legend = chart::day_legend();
    for code in [
        "n:No data:no data, no incidents",
        "u:Operational:100% uptime, no incidents",
        "x:Outage:",
    ] {
        assert!(legend.contains(code), "{legend}");
    }
    assert_eq!(
        chart::day_detail(&segments[85]),
        "100% uptime, no incidents"
    );
}

#[test]
fn a_stale_overview_says_so_and_stops_claiming_all_is_well() {
    let stale = Freshness {
        updated_at: Some(NOW - 5 * MINUTE_MS),
        stale: true,
    };
    let mut all_up = health();
    for m in &mut all_up.monitors {
        m.state = MonitorState::Up;
    }
    let html = overview_html(&site(false), &all_up, stale);
    assert!(
        html.contains("<section class=\"banner state-stale\""),
        "{html}"
    );
    assert!(html.contains("Status unknown: isdown&#39;s monitor has stopped"));
    assert!(html.contains("The newest probe result is from 2026-11-25 13:58:00 UTC"));
    assert!(!html.contains("All systems operational"));
    assert!(html.contains("<ul class=\"rows stale\""));
    assert!(html.contains("<strong>Out of date:</strong>"));
    // Troubles it knew of stay listed, after the warning.
    let html = overview_html(&site(false), &health(), stale);
    assert!(html.contains("Kimi — major outage for 23 min"));
    assert!(html.find("Status unknown").unwrap() < html.find("Kimi — major outage").unwrap());
    // Fresh: no warning.
    assert!(!overview_html(&site(false), &health(), FRESH).contains("Status unknown"));
}

#[test]
fn status_json_carries_when_the_data_was_updated_and_whether_it_is_stale() {
    let health = health();
    let histories = histories();
    let json = serde_json::to_value(super::api::status_json(&health, &histories, FRESH)).unwrap();
    assert_eq!(json["updated_at"], "2026-11-25T14:02:50Z");
    assert_eq!(json["stale"], false);
    assert_eq!(json["monitors"][0]["uptime"]["90d"], 0.9991);
    let stale = Freshness {
        updated_at: None,
        stale: true,
    };
    let json = serde_json::to_value(super::api::status_json(&health, &histories, stale)).unwrap();
    assert_eq!(
        (json["updated_at"].clone(), json["stale"].clone()),
        (Value::Null, Value::Bool(true))
    );
    // Statuspage's page time is the data's time, not the time of writing.
    let summary = serde_json::to_value(statuspage::summary_json(
        &site(false),
        &health,
        &[],
        NOW - 10_000,
    ))
    .unwrap();
    assert_eq!(summary["page"]["updated_at"], "2026-11-25T14:02:50Z");
    assert!(
        badge::status_face("Kimi", MonitorState::Up, true)
            .draw()
            .contains("Kimi: stale")
    );
}

#[test]
fn hide_urls_keeps_upstream_addresses_out_of_incident_and_result_json() {
    let incident = incident(
        9,
        "kimi",
        IncidentKind::Outage,
        Verdict::Network,
        NOW - HOUR_MS,
        None,
    );
    let result = ResultRecord {
        explanation: Some(
            "could not connect to https://api.moonshot.ai/v1/chat/completions".into(),
        ),
        ..results()[0].clone()
    };
    for (hide, shown) in [(true, false), (false, true)] {
        let site = site(hide);
        let text = format!(
            "{} {}",
            super::api::incident_json(&site, &incident, NOW),
            super::api::result_json(&site, &result)
        );
        assert_eq!(
            text.contains("api.moonshot.ai"),
            shown,
            "hide_urls = {hide}: {text}"
        );
    }
}

// === what others see ===

#[test]
fn incident_rows_say_how_far_ahead_of_the_official_page_isdown_was() {
    let html = page::incidents_page(&site(false), &incidents(), 1, NOW, FRESH)
        .render()
        .unwrap();
    let row = |id: i64| {
        let start = html.find(&format!("id=\"incident-{id}\"")).unwrap();
        let end = html[start..].find("</tr>").unwrap() + start;
        html[start..end].to_owned()
    };
    assert!(
        row(4).contains(
            "<a href=\"https://stspg.io/k2a9\" rel=\"noopener\">detected 14 min before the \
             official page</a> <span class=\"official\">“Elevated errors on the Open API”</span>"
        ),
        "{}",
        row(4)
    );
    assert!(row(7).contains("not acknowledged officially"), "{}", row(7));
    // A setup problem and a network incident are nobody's page's business.
    assert!(
        row(6).contains("<td data-label=\"Official page\">–</td>"),
        "{}",
        row(6)
    );
    assert!(
        row(5).contains("<td data-label=\"Official page\">–</td>"),
        "{}",
        row(5)
    );
}

#[test]
fn incident_json_carries_the_official_acknowledgement_or_null() {
    let all = incidents();
    let site = site(false);
    let acknowledged = super::api::incident_json(&site, &all[3], NOW);
    assert_eq!(
        acknowledged["official"],
        serde_json::json!({
            "title": "Elevated errors on the Open API",
            "url": "https://stspg.io/k2a9",
            "acknowledged_at": crate::time::rfc3339(NOW - 3 * DAY_MS - 5 * HOUR_MS + 14 * MINUTE_MS),
            "resolved_at": crate::time::rfc3339(NOW - 3 * DAY_MS - 4 * HOUR_MS + 20 * MINUTE_MS),
            "lead_s": 14 * 60,
        })
    );
    assert_eq!(
        super::api::incident_json(&site, &all[0], NOW)["official"],
        Value::Null
    );
}

#[test]
fn the_overview_shows_what_others_see_with_the_median_lead_and_unseen_incidents() {
    use crate::corroborate::lead::LeadStats;
    use crate::corroborate::statuspage::{Indicator, OfficialReading, OpenIncident};
    use crate::corroborate::view::{ProviderView, SourcesView};
    use crate::corroborate::{Corroboration, Reading};
    use crate::store::{OfficialIncident, StoredOfficialIncident};

    let kimi = ProviderView {
        provider: "kimi".into(),
        name: "Kimi".into(),
        now: Corroboration {
            provider: "kimi".into(),
            official: Some(Reading::Ok(OfficialReading {
                page: "https://status.moonshot.cn".into(),
                indicator: Indicator::Major,
                description: "Open API: partial outage".into(),
                components: vec![("Open API".into(), "partial outage")],
                incidents: vec![OpenIncident {
                    name: "Elevated API errors".into(),
                    impact: Indicator::Major,
                    started_at: NOW - 10 * MINUTE_MS,
                    url: Some("https://stspg.io/x1".into()),
                    status: "investigating".into(),
                }],
            })),
            aggregator: Some(Reading::Unavailable("HTTP 503".into())),
            community: Vec::new(),
        },
        has_official: true,
        page: Some("https://status.moonshot.cn".into()),
        model: Some("moonshotai/kimi-k2.6".into()),
        lead: LeadStats {
            outages: 4,
            acknowledged: 3,
            median_lead: Some(18 * MINUTE_MS),
        },
        unseen: vec![StoredOfficialIncident {
            id: 9,
            provider: "kimi".into(),
            first_seen_at: NOW - 5 * DAY_MS,
            incident: OfficialIncident {
                source_id: "sp9".into(),
                title: "Website login issues".into(),
                url: Some("https://stspg.io/sp9".into()),
                impact: "minor".into(),
                started_at: NOW - 5 * DAY_MS,
                acknowledged_at: NOW - 5 * DAY_MS,
                resolved_at: Some(NOW - 5 * DAY_MS + 40 * MINUTE_MS),
            },
        }],
        unseen_total: 3,
    };
    let others = SourcesView {
        providers: vec![kimi],
    };
    let (site, health) = (site(false), health());
    let (histories, incidents) = (histories(), incidents());
    let mut input = overview_input(&site, &health, &histories, &incidents);
    input.others = &others;
    let html = page::overview_page(&input).render().unwrap();
    for expected in [
        "<h2 id=\"others-title\">What others see</h2>",
        "<li>Official page (status.moonshot.cn): major outage — Open API: partial outage</li>",
        "<a href=\"https://stspg.io/x1\" rel=\"noopener\">Open incident: &#34;Elevated API errors&#34; \
         (major impact, investigating) since 2026-11-25 13:53 UTC</a>",
        "<li>OpenRouter (moonshotai/kimi-k2.6): unavailable — HTTP 503</li>",
        "Median lead over the kept history: detected 18 min before the official page (3 of 4 \
         outages acknowledged officially).",
        "<a href=\"https://stspg.io/sp9\" rel=\"noopener\">Website login issues</a>",
        "and 2 more.",
    ] {
        assert!(html.contains(expected), "missing {expected}");
    }
    // Without sources, no section.
    assert!(!overview_html(&site, &health, FRESH).contains("What others see"));
}

#[test]
fn above_the_threshold_the_overview_counts_and_lists_only_failing_monitors() {
    let n = super::summary::OVERVIEW_ROWS_MAX + 1;
    let views = super::views::Views::build(&large_inputs(n), None);
    let html = std::str::from_utf8(views.get("/").unwrap().identity()).unwrap();
    // One monitor in ten is down (p000, p010, …, p500): 51 down, 450 up.
    assert!(html.contains(&format!("<h1 id=\"summary-title\">{n} monitors</h1>")));
    assert!(html.contains("</span>51 Major outage</li>"), "{html}");
    assert!(html.contains("</span>450 Operational</li>"));
    assert_eq!(html.matches("<li class=\"row\"").count(), 51);
    for down in ["p000", "p010", "p500"] {
        assert!(
            html.contains(&format!("id=\"monitor-{down}-chat\"")),
            "{down}"
        );
        assert!(
            html.contains(&format!("href=\"/monitors/{down}-chat\"")),
            "{down}"
        );
    }
    for up in ["p001", "p499"] {
        assert!(
            !html.contains(&format!("monitor-{up}-chat")),
            "{up} is up but listed"
        );
    }
    // A provider per monitor, more than fit: only the providers in trouble get a line.
    assert!(html.contains("<td data-label=\"Provider\">Provider 010</td>"));
    assert!(!html.contains("<td data-label=\"Provider\">Provider 011</td>"));
    assert!(html.contains("… and 450 more providers (450 monitors) with none failing."));
}

#[test]
fn at_the_threshold_the_overview_still_has_every_monitor_s_row() {
    let n = super::summary::OVERVIEW_ROWS_MAX;
    let views = super::views::Views::build(&large_inputs(n), None);
    let html = std::str::from_utf8(views.get("/").unwrap().identity()).unwrap();
    assert_eq!(html.matches("<li class=\"row\"").count(), n);
    assert!(!html.contains("summary-title"));
}

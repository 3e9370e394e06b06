//! Charts drawn on the server as inline SVG: the 90-day uptime bar, the 24-hour latency
//! sparkline and the p50/p95 latency chart.
//!
//! Pure functions from numbers to markup: no I/O, no clock (every time range is given), so the
//! same inputs always draw the same bytes (the snapshot tests rely on it). Colours come from the
//! page's CSS classes, so the charts follow the light and dark themes; every chart carries a
//! text alternative (`role="img"` with a label).
//!
//! The uptime bar is drawn for pages with hundreds of them: one path per kind of day (at most
//! five nodes, not 90 rectangles with 90 tooltips), and each day's words — its state, uptime and
//! incidents — travel once, compactly, in a [`DayStrip`] that the page's script reads out on
//! hover and to the keyboard, and that the monitor page prints as a table.

use std::fmt::Write as _;

use super::text;
use crate::store::LatencyPoint;
use crate::time::{DAY_MS, HOUR_MS, Millis};

/// The worst thing that happened to a monitor on one day, as the uptime bar colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DayMark {
    NoData,
    Up,
    /// Slow answers or provider-side failures that did not add up to an incident.
    Degraded,
    SetupProblem,
    Down,
}

/// Each mark's CSS class, its one-letter code in a [`DayStrip`], and its words.
const MARKS: [(DayMark, &str, char, &str); 5] = [
    (DayMark::NoData, "day-none", 'n', "No data"),
    (DayMark::Up, "day-up", 'u', "Operational"),
    (
        DayMark::Degraded,
        "day-degraded",
        'd',
        "Failures or slow answers",
    ),
    (DayMark::SetupProblem, "day-setup", 's', "Setup problem"),
    (DayMark::Down, "day-down", 'x', "Outage"),
];

impl DayMark {
    fn row(self) -> &'static (DayMark, &'static str, char, &'static str) {
        MARKS
            .iter()
            .find(|row| row.0 == self)
            .expect("every mark has a row")
    }

    pub fn class(self) -> &'static str {
        self.row().1
    }

    fn code(self) -> char {
        self.row().2
    }

    pub fn label(self) -> &'static str {
        self.row().3
    }
}

/// One day of the uptime bar.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySegment {
    /// Start of the UTC day.
    pub day: Millis,
    pub mark: DayMark,
    pub uptime: Option<f64>,
    pub incidents: usize,
}

/// Text for attributes and SVG text: the five characters XML gives meaning to.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Width of one day in the bar's coordinates, and the gap between days.
const DAY_W: usize = 4;
const DAY_GAP: usize = 1;
const BAR_H: usize = 28;

/// The uptime bar: one stripe per day, oldest on the left, coloured by its mark. Drawn as one
/// path per mark, each day a vertical stroke [`DAY_W`] wide (`m5-28v28` repeats and compresses
/// to almost nothing). `label` is the bar's text alternative; the days' own words are in the
/// [`DayStrip`].
pub fn uptime_bar(days: &[DaySegment], label: &str) -> String {
    let width = (days.len() * (DAY_W + DAY_GAP))
        .saturating_sub(DAY_GAP)
        .max(1);
    let mut svg = format!(
        "<svg class=\"bar\" viewBox=\"0 0 {width} {BAR_H}\" preserveAspectRatio=\"none\" \
         role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    for (mark, class, _, _) in MARKS {
        let mut d = String::new();
        let mut last_x = None;
        for (i, _) in days.iter().enumerate().filter(|(_, day)| day.mark == mark) {
            let x = i * (DAY_W + DAY_GAP) + DAY_W / 2;
            let _ = match last_x {
                None => write!(d, "M{x} 0v{BAR_H}"),
                Some(prev) => write!(d, "m{}-{BAR_H}v{BAR_H}", x - prev),
            };
            last_x = Some(x);
        }
        if !d.is_empty() {
            let _ = write!(svg, "<path class=\"{class}\" d=\"{d}\"/>");
        }
    }
    svg.push_str("</svg>");
    svg
}

/// "97.22% uptime, 1 incident": one day's numbers in words.
pub fn day_detail(day: &DaySegment) -> String {
    let uptime = match day.uptime {
        Some(_) => format!("{} uptime", text::percent(day.uptime)),
        None => "no data".to_owned(),
    };
    let incidents = match day.incidents {
        0 => "no incidents".to_owned(),
        1 => "1 incident".to_owned(),
        n => format!("{n} incidents"),
    };
    format!("{uptime}, {incidents}")
}

/// What a day of `mark` says when nothing is noted for it: measured days without failures are
/// whole, days without data have none, and neither had an incident.
fn usual_detail(mark: DayMark) -> String {
    day_detail(&DaySegment {
        day: 0,
        mark,
        uptime: (mark != DayMark::NoData).then_some(1.0),
        incidents: 0,
    })
}

/// A bar's days in compact words, for the page's script: the first day (`2026-08-28`), one
/// letter per day for its mark, and notes (`86:97.22% uptime, 1 incident;…`) for the few days
/// whose detail differs from the usual one for their mark ([`day_legend`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStrip {
    pub first: String,
    pub marks: String,
    pub notes: String,
}

pub fn day_strip(days: &[DaySegment]) -> DayStrip {
    let mut notes = String::new();
    for (i, day) in days.iter().enumerate() {
        let detail = day_detail(day);
        if detail != usual_detail(day.mark) {
            if !notes.is_empty() {
                notes.push(';');
            }
            let _ = write!(notes, "{i}:{detail}");
        }
    }
    DayStrip {
        first: days.first().map_or_else(String::new, |d| text::date(d.day)),
        marks: days.iter().map(|d| d.mark.code()).collect(),
        notes,
    }
}

/// The words of every mark letter, once per page: `n:No data:no data, no incidents;u:…`
/// (letter, state, the usual detail).
pub fn day_legend() -> String {
    MARKS
        .iter()
        .map(|(mark, _, code, label)| format!("{code}:{label}:{}", usual_detail(*mark)))
        .collect::<Vec<_>>()
        .join(";")
}

const SPARK_W: f64 = 120.0;
const SPARK_H: f64 = 28.0;

/// A small line of p50 latency over `[from, to)`, one point per bucket of `step`.
pub fn sparkline(points: &[LatencyPoint], from: Millis, to: Millis, step: Millis) -> String {
    let Some(max) = points.iter().map(|p| p.p50_ms).reduce(f64::max) else {
        return format!(
            "<svg class=\"spark\" viewBox=\"0 0 {SPARK_W} {SPARK_H}\" role=\"img\" \
             aria-label=\"No latency measured in the last 24 hours\"></svg>"
        );
    };
    let min = points
        .iter()
        .map(|p| p.p50_ms)
        .fold(f64::INFINITY, f64::min);
    let last = points.last().map_or(0.0, |p| p.p50_ms);
    let label = format!(
        "Median latency, last 24 hours: {} to {}, latest {}",
        text::latency(min),
        text::latency(max),
        text::latency(last)
    );
    // Zoomed to the range of the values, with a margin: a sparkline shows the shape of the day,
    // the chart on the monitor page gives the absolute scale. A flat day sits in the middle.
    let margin = ((max - min) * 0.15).max(max * 0.1).max(1.0);
    let plot = Plot {
        from,
        to,
        left: 1.0,
        width: SPARK_W - 2.0,
        top: 2.0,
        height: SPARK_H - 4.0,
        y_min: (min - margin).max(0.0),
        y_max: max + margin,
        decimals: 0,
    };
    let values: Vec<(Millis, f64)> = points.iter().map(|p| (p.start, p.p50_ms)).collect();
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {SPARK_W} {SPARK_H}\" preserveAspectRatio=\"none\" \
         role=\"img\" aria-label=\"{}\">{}</svg>",
        escape(&label),
        plot.line(&values, step, "line p50")
    )
}

/// Where a time/latency plot sits inside its SVG.
struct Plot {
    from: Millis,
    to: Millis,
    left: f64,
    width: f64,
    top: f64,
    height: f64,
    /// The latency at the bottom edge (0 for charts with an axis; sparklines zoom in).
    y_min: f64,
    y_max: f64,
    /// Decimals of the coordinates: a 180 px sparkline needs none, and every digit is bytes on
    /// a page with hundreds of them.
    decimals: usize,
}

impl Plot {
    fn x(&self, at: Millis) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        self.left + self.width * ((at - self.from) as f64 / span).clamp(0.0, 1.0)
    }

    fn y(&self, ms: f64) -> f64 {
        let span = (self.y_max - self.y_min).max(f64::EPSILON);
        self.top + self.height * (1.0 - ((ms - self.y_min) / span).clamp(0.0, 1.0))
    }

    /// A path through the bucket midpoints, broken where buckets are missing (no samples is
    /// not zero latency); isolated points get a dot so they stay visible.
    fn line(&self, values: &[(Millis, f64)], step: Millis, class: &str) -> String {
        let mut d = String::new();
        let mut dots = String::new();
        let p = self.decimals;
        for (i, &(start, ms)) in values.iter().enumerate() {
            let (x, y) = (self.x(start + step / 2), self.y(ms));
            let joined_before = i > 0 && start - values[i - 1].0 <= step;
            let joined_after = values.get(i + 1).is_some_and(|n| n.0 - start <= step);
            let _ = write!(
                d,
                "{}{x:.p$} {y:.p$}",
                if joined_before { " L" } else { " M" }
            );
            if !joined_before && !joined_after {
                let _ = write!(
                    dots,
                    "<circle class=\"{class}\" cx=\"{x:.p$}\" cy=\"{y:.p$}\" r=\"2\"/>"
                );
            }
        }
        format!("<path class=\"{class}\" d=\"{}\"/>{dots}", d.trim_start())
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `ms`: a round gridline spacing.
fn nice_step(ms: f64) -> f64 {
    let ms = ms.max(1.0);
    let magnitude = 10f64.powf(ms.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * magnitude)
        .find(|v| *v >= ms)
        .unwrap_or(10.0 * magnitude)
}

/// Gridlines for values up to `peak`: (spacing, count) with at most five lines above zero
/// and 10 % headroom over the peak; 5 × 20 ms when there is nothing to show.
fn y_grid(peak: f64) -> (f64, u32) {
    let top = (peak * 1.1).max(100.0);
    let step = nice_step(top / 5.0);
    (step, (top / step).ceil() as u32)
}

const CHART_W: f64 = 720.0;
const CHART_H: f64 = 240.0;
const MARGIN_LEFT: f64 = 76.0;
const MARGIN_RIGHT: f64 = 12.0;
const MARGIN_TOP: f64 = 10.0;
const MARGIN_BOTTOM: f64 = 30.0;

/// Time-axis tick spacings, tried in order until at most eight ticks fit.
const TICK_STEPS: [Millis; 7] = [
    HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
];

/// The p50/p95 latency chart over `[from, to)`, one point per bucket of `step`. `title` names
/// the range ("Latency, last 24 hours").
pub fn latency_chart(
    points: &[LatencyPoint],
    from: Millis,
    to: Millis,
    step: Millis,
    title: &str,
) -> String {
    let peak = points
        .iter()
        .map(|p| p.p95_ms.max(p.p50_ms))
        .reduce(f64::max);
    let (grid_step, grid_lines) = y_grid(peak.unwrap_or(0.0));
    let y_max = grid_step * f64::from(grid_lines);
    let plot = Plot {
        from,
        to,
        left: MARGIN_LEFT,
        width: CHART_W - MARGIN_LEFT - MARGIN_RIGHT,
        top: MARGIN_TOP,
        height: CHART_H - MARGIN_TOP - MARGIN_BOTTOM,
        y_min: 0.0,
        y_max,
        decimals: 1,
    };
    let desc = match peak {
        None => "No latency was measured in this range.".to_owned(),
        Some(_) => {
            let p50_min = points
                .iter()
                .map(|p| p.p50_ms)
                .fold(f64::INFINITY, f64::min);
            let p50_max = points.iter().map(|p| p.p50_ms).fold(0.0, f64::max);
            let p95_max = points.iter().map(|p| p.p95_ms).fold(0.0, f64::max);
            format!(
                "Median (p50) between {} and {}; 95th percentile (p95) at most {}.",
                text::latency(p50_min),
                text::latency(p50_max),
                text::latency(p95_max)
            )
        }
    };
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" \
         aria-labelledby=\"chart-title chart-desc\"><title id=\"chart-title\">{}</title>\
         <desc id=\"chart-desc\">{}</desc><g class=\"grid\">",
        escape(title),
        escape(&desc)
    );
    let right = CHART_W - MARGIN_RIGHT;
    for i in 0..=grid_lines {
        let ms = grid_step * f64::from(i);
        let y = plot.y(ms);
        let _ = write!(
            svg,
            "<line x1=\"{MARGIN_LEFT}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            MARGIN_LEFT - 6.0,
            y + 4.0,
            escape(&text::latency(ms))
        );
    }
    let span = to - from;
    let tick = TICK_STEPS
        .into_iter()
        .find(|t| span / t <= 8)
        .unwrap_or(7 * DAY_MS);
    let mut at = (from / tick + 1) * tick;
    let baseline = CHART_H - MARGIN_BOTTOM;
    while at < to {
        let x = plot.x(at);
        let label = if tick < DAY_MS {
            text::clock(at)
        } else {
            text::month_day(at)
        };
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{baseline}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            baseline + 4.0,
            baseline + 18.0,
        );
        at += tick;
    }
    svg.push_str("</g>");
    let p95: Vec<(Millis, f64)> = points.iter().map(|p| (p.start, p.p95_ms)).collect();
    let p50: Vec<(Millis, f64)> = points.iter().map(|p| (p.start, p.p50_ms)).collect();
    svg.push_str(&plot.line(&p95, step, "line p95"));
    svg.push_str(&plot.line(&p50, step, "line p50"));
    if peak.is_none() {
        let _ = write!(
            svg,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data</text>",
            MARGIN_LEFT + plot.width / 2.0,
            MARGIN_TOP + plot.height / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gridlines_are_round_and_leave_headroom() {
        assert_eq!(y_grid(0.0), (20.0, 5));
        assert_eq!(y_grid(610.0), (200.0, 4));
        assert_eq!(y_grid(2_100.0), (500.0, 5));
        assert_eq!(y_grid(9_000.0), (2_000.0, 5));
        assert_eq!(nice_step(130.0), 200.0);
    }

    #[test]
    fn lines_break_over_missing_buckets_and_dot_lonely_points() {
        let plot = Plot {
            from: 0,
            to: 10 * HOUR_MS,
            left: 0.0,
            width: 100.0,
            top: 0.0,
            height: 100.0,
            y_min: 0.0,
            y_max: 100.0,
            decimals: 1,
        };
        let values = [(0, 50.0), (HOUR_MS, 100.0), (5 * HOUR_MS, 0.0)];
        assert_eq!(
            plot.line(&values, HOUR_MS, "p50"),
            "<path class=\"p50\" d=\"M5.0 50.0 L15.0 0.0 M55.0 100.0\"/>\
             <circle class=\"p50\" cx=\"55.0\" cy=\"100.0\" r=\"2\"/>"
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&#39;");
        let bar = uptime_bar(&[], "<x>");
        assert!(bar.contains("aria-label=\"&lt;x&gt;\""), "{bar}");
    }
}

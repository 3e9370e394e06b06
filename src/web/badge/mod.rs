//! SVG badges for READMEs and dashboards: `/badge/{monitor}/status.svg` (the monitor's state)
//! and `/badge/{monitor}/uptime-30d.svg` (its 30-day uptime).
//!
//! `{monitor}` is a monitor id (`kimi-chat`) or a provider id (`kimi`, its first monitor). The
//! drawing is pure (shields.io's flat style, text widths estimated from a small table, so no
//! font file is needed) and takes microseconds, so a badge is drawn when it is asked for: each
//! render keeps only what every monitor's badges say (`table.rs`, a [`Face`] is worked out from a
//! few bytes per monitor), never the SVG itself.

pub mod table;

use std::borrow::Cow;

use super::chart::escape;
use super::text;
use crate::monitor::machine::MonitorState;

const GREEN: &str = "#2e7d32";
const YELLOW_GREEN: &str = "#7c8a12";
const YELLOW: &str = "#a36b00";
const RED: &str = "#c62828";
const PURPLE: &str = "#6a3fb5";
const GREY: &str = "#5f6368";

/// Approximate width in pixels of `text` in 11 px Verdana (the badge font), by character class.
/// Close enough that the text never overflows its box; exactness would need the font file.
fn text_width(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '!' | '|' | '\'' | 'I' => 4,
            ' ' | 'f' | 'r' | 't' | '(' | ')' | '-' | '1' => 5,
            'm' | 'w' | 'M' | 'W' | '%' => 11,
            c if c.is_ascii_uppercase() => 8,
            _ => 7,
        })
        .sum()
}

/// What a badge says, which decides every byte of it: two badges with equal faces are drawn the
/// same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Face<'a> {
    pub label: Cow<'a, str>,
    pub message: Cow<'a, str>,
    pub colour: &'static str,
}

impl Face<'_> {
    pub fn draw(&self) -> String {
        badge(&self.label, &self.message, self.colour)
    }
}

/// A flat badge: grey `label` on the left, `message` on a `colour` background on the right.
pub fn badge(label: &str, message: &str, colour: &str) -> String {
    let (lw, mw) = (text_width(label) + 10, text_width(message) + 10);
    let total = lw + mw;
    let (label, message) = (escape(label), escape(message));
    // Text is drawn at 10× scale and shrunk, as shields.io does, for crisp sub-pixel placement.
    let (lx, mx) = (lw * 5, lw * 10 + mw * 5);
    let (ltl, mtl) = ((lw - 10) * 10, (mw - 10) * 10);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" \
         role=\"img\" aria-label=\"{label}: {message}\"><title>{label}: {message}</title>\
         <linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" \
         stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
         <clipPath id=\"r\"><rect width=\"{total}\" height=\"20\" rx=\"3\" fill=\"#fff\"/>\
         </clipPath><g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/>\
         <rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{colour}\"/>\
         <rect width=\"{total}\" height=\"20\" fill=\"url(#s)\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,\
         sans-serif\" font-size=\"110\">\
         <text aria-hidden=\"true\" x=\"{lx}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" \
         transform=\"scale(.1)\" textLength=\"{ltl}\">{label}</text>\
         <text x=\"{lx}\" y=\"140\" transform=\"scale(.1)\" textLength=\"{ltl}\">{label}</text>\
         <text aria-hidden=\"true\" x=\"{mx}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" \
         transform=\"scale(.1)\" textLength=\"{mtl}\">{message}</text>\
         <text x=\"{mx}\" y=\"140\" transform=\"scale(.1)\" textLength=\"{mtl}\">{message}</text>\
         </g></svg>"
    )
}

/// What the state badge says: `Kimi | up`; `Kimi | stale` (grey) while the monitor loop has
/// stalled, since the last state it knew may no longer hold.
pub fn status_face(name: &str, state: MonitorState, stale: bool) -> Face<'_> {
    let (message, colour) = if stale {
        ("stale", GREY)
    } else {
        match state {
            MonitorState::Unknown => ("unknown", GREY),
            MonitorState::Up => ("up", GREEN),
            MonitorState::Degraded => ("degraded", YELLOW),
            MonitorState::Down => ("down", RED),
            MonitorState::SetupProblem => ("setup problem", PURPLE),
            MonitorState::Regional => ("regional", YELLOW),
        }
    };
    Face {
        label: Cow::Borrowed(name),
        message: Cow::Borrowed(message),
        colour,
    }
}

/// What the uptime badge says: `uptime 30d | 99.95%`, coloured by how good that is.
pub fn uptime_face(uptime: Option<f64>) -> Face<'static> {
    let colour = match uptime {
        None => GREY,
        Some(u) if u >= 0.999 => GREEN,
        Some(u) if u >= 0.99 => YELLOW_GREEN,
        Some(u) if u >= 0.95 => YELLOW,
        Some(_) => RED,
    };
    Face {
        label: Cow::Borrowed("uptime 30d"),
        message: Cow::Owned(text::percent(uptime)),
        colour,
    }
}

/// The badge for a monitor that does not exist.
pub fn missing_badge() -> String {
    badge("isdown", "no such monitor", GREY)
}

//! The official status page: Atlassian Statuspage v2 JSON (`summary.json`, `incidents.json`),
//! which incident.io pages serve in a compatible shape, read by pure functions over bytes.
//!
//! Parsing keeps the page's own words (statuses, impacts) as text and only the fields isdown
//! uses; [`official_reading`] then narrows the page to the configured components and maps the
//! documented enumerations. A value outside them, for a component or incident that matters, is
//! a changed format ([`ParseError::Unknown`]), never a guess. No I/O here.

use serde::Deserialize;

use super::{OfficialSource, ParseError, json_error};
use crate::time::{Millis, parse_rfc3339};

// === the page's enumerations ===

/// `status.indicator`, and the same scale for impacts and derived component states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Indicator {
    None,
    Maintenance,
    Minor,
    Major,
    Critical,
}

/// (indicator, JSON name, words for people).
const INDICATORS: [(Indicator, &str, &str); 5] = [
    (Indicator::None, "none", "operational"),
    (Indicator::Maintenance, "maintenance", "under maintenance"),
    (Indicator::Minor, "minor", "minor outage"),
    (Indicator::Major, "major", "major outage"),
    (Indicator::Critical, "critical", "critical outage"),
];

impl Indicator {
    pub fn parse(text: &str) -> Option<Indicator> {
        INDICATORS
            .iter()
            .find(|(_, name, _)| *name == text)
            .map(|(i, _, _)| *i)
    }

    /// `none`, `minor`, `major`, `critical`, `maintenance`: Statuspage's own names.
    pub fn as_str(self) -> &'static str {
        INDICATORS
            .iter()
            .find(|(i, _, _)| *i == self)
            .map_or("none", |(_, name, _)| name)
    }

    /// "operational", "major outage", …
    pub fn words(self) -> &'static str {
        INDICATORS
            .iter()
            .find(|(i, _, _)| *i == self)
            .map_or("operational", |(_, _, words)| words)
    }

    /// Anything but `none` and `maintenance`: the page admits a problem.
    pub fn is_trouble(self) -> bool {
        self >= Indicator::Minor
    }
}

/// `components[].status`: (name, words, what it means on the indicator scale).
const COMPONENT_STATUSES: [(&str, &str, Indicator); 5] = [
    ("operational", "operational", Indicator::None),
    (
        "degraded_performance",
        "degraded performance",
        Indicator::Minor,
    ),
    ("partial_outage", "partial outage", Indicator::Major),
    ("major_outage", "major outage", Indicator::Critical),
    (
        "under_maintenance",
        "under maintenance",
        Indicator::Maintenance,
    ),
];

/// `incidents[].status` values that mean the incident is over.
const OVER: [&str; 2] = ["resolved", "postmortem"];

// === parsed documents ===

/// `summary.json`, as far as isdown reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// `status.indicator`, as written.
    pub indicator: String,
    /// `status.description`, e.g. "Partial System Outage".
    pub description: String,
    pub components: Vec<Component>,
    /// Unresolved incidents.
    pub incidents: Vec<PageIncident>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: String,
    pub name: String,
    /// As written, e.g. `partial_outage`.
    pub status: String,
}

/// One incident as the page publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PageIncident {
    pub id: String,
    pub name: String,
    /// `investigating`, `identified`, `monitoring`, `resolved`, `postmortem`, as written.
    pub status: String,
    /// `none`, `minor`, `major`, `critical`, `maintenance`, as written.
    pub impact: String,
    /// When the page posted it: the moment it acknowledged the problem.
    pub created_at: Millis,
    /// When the page says it began (may be set back to before it was posted).
    pub started_at: Millis,
    pub resolved_at: Option<Millis>,
    /// The incident's own page (`shortlink`).
    pub url: Option<String>,
    /// (id, name) of the components it affects; empty when the page does not say.
    pub components: Vec<(String, String)>,
}

impl PageIncident {
    /// Over on the page: resolved, or written up.
    pub fn is_over(&self) -> bool {
        self.resolved_at.is_some() || OVER.contains(&self.status.as_str())
    }
}

#[derive(Deserialize)]
struct RawSummary {
    status: RawStatus,
    #[serde(default)]
    components: Vec<RawComponent>,
    #[serde(default)]
    incidents: Vec<RawIncident>,
}

#[derive(Deserialize)]
struct RawIncidents {
    incidents: Vec<RawIncident>,
}

#[derive(Deserialize)]
struct RawStatus {
    indicator: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct RawComponent {
    id: String,
    name: String,
    status: String,
}

#[derive(Deserialize)]
struct RawIncident {
    id: String,
    name: String,
    status: String,
    impact: String,
    created_at: String,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    resolved_at: Option<String>,
    #[serde(default)]
    shortlink: Option<String>,
    #[serde(default)]
    components: Vec<RawIncidentComponent>,
}

#[derive(Deserialize)]
struct RawIncidentComponent {
    id: String,
    name: String,
}

const SUMMARY: &str = "Statuspage summary JSON";
const INCIDENTS: &str = "Statuspage incidents JSON";

/// Reads `/api/v2/summary.json`.
pub fn parse_statuspage_summary(bytes: &[u8]) -> Result<Summary, ParseError> {
    let raw: RawSummary =
        serde_json::from_slice(bytes).map_err(|e| json_error(bytes, SUMMARY, &e))?;
    Ok(Summary {
        indicator: raw.status.indicator,
        description: raw.status.description.unwrap_or_default(),
        components: raw
            .components
            .into_iter()
            .map(|c| Component {
                id: c.id,
                name: c.name,
                status: c.status,
            })
            .collect(),
        incidents: raw
            .incidents
            .into_iter()
            .map(incident)
            .collect::<Result<_, _>>()?,
    })
}

/// Reads `/api/v2/incidents.json`: the newest incidents, resolved ones included.
pub fn parse_statuspage_incidents(bytes: &[u8]) -> Result<Vec<PageIncident>, ParseError> {
    let raw: RawIncidents =
        serde_json::from_slice(bytes).map_err(|e| json_error(bytes, INCIDENTS, &e))?;
    raw.incidents.into_iter().map(incident).collect()
}

fn instant(field: &'static str, text: &str) -> Result<Millis, ParseError> {
    parse_rfc3339(text).ok_or_else(|| ParseError::Unknown {
        field,
        value: text.chars().take(40).collect(),
    })
}

fn incident(raw: RawIncident) -> Result<PageIncident, ParseError> {
    let created_at = instant("incident created_at", &raw.created_at)?;
    let started_at = match raw.started_at.as_deref() {
        Some(text) => instant("incident started_at", text)?,
        None => created_at,
    };
    let resolved_at = raw
        .resolved_at
        .as_deref()
        .map(|t| instant("incident resolved_at", t))
        .transpose()?;
    Ok(PageIncident {
        id: raw.id,
        name: raw.name,
        status: raw.status,
        impact: raw.impact,
        created_at,
        started_at,
        resolved_at,
        url: raw
            .shortlink
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        components: raw.components.into_iter().map(|c| (c.id, c.name)).collect(),
    })
}

// === the reading ===

/// What the official page says about the parts that matter.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficialReading {
    /// The page people open, e.g. `https://status.moonshot.cn`.
    pub page: String,
    /// Worst of the configured components and their open incidents; the page's own indicator
    /// when not narrowed.
    pub indicator: Indicator,
    /// "major outage", "Open API: partial outage", or the page's own description.
    pub description: String,
    /// The configured components found on the page, with their state in words.
    pub components: Vec<(String, &'static str)>,
    /// Unresolved incidents that concern the configured components, oldest first.
    pub incidents: Vec<OpenIncident>,
}

/// An unresolved official incident, as outputs show it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIncident {
    pub name: String,
    pub impact: Indicator,
    pub started_at: Millis,
    pub url: Option<String>,
    /// `investigating`, `identified`, `monitoring`.
    pub status: String,
}

/// Whether `wanted` (a configured name or id) names this component or incident component.
fn names(wanted: &str, id: &str, name: &str) -> bool {
    wanted.eq_ignore_ascii_case(id) || wanted.trim().eq_ignore_ascii_case(name.trim())
}

/// Whether an incident concerns the configured components: it names one of them, or names no
/// component at all (the page did not say, so it may).
pub fn concerns(incident: &PageIncident, source: &OfficialSource) -> bool {
    source.components.is_empty()
        || incident.components.is_empty()
        || incident.components.iter().any(|(id, name)| {
            source
                .components
                .iter()
                .any(|wanted| names(wanted, id, name))
        })
}

/// An incident's impact on the indicator scale; an unknown word is a changed format.
pub fn impact(incident: &PageIncident) -> Result<Indicator, ParseError> {
    Indicator::parse(&incident.impact).ok_or_else(|| ParseError::Unknown {
        field: "incident impact",
        value: incident.impact.chars().take(40).collect(),
    })
}

/// Narrows the page to `source`'s components. A configured component the page does not list
/// at all is an error naming what it lists, so a renamed component shows instead of passing
/// silently as "operational".
pub fn official_reading(
    summary: &Summary,
    source: &OfficialSource,
) -> Result<OfficialReading, ParseError> {
    let mut incidents = Vec::new();
    for i in summary
        .incidents
        .iter()
        .filter(|i| !i.is_over() && concerns(i, source))
    {
        incidents.push(OpenIncident {
            name: i.name.clone(),
            impact: impact(i)?,
            started_at: i.started_at,
            url: i.url.clone(),
            status: i.status.clone(),
        });
    }
    incidents.sort_by_key(|i| i.started_at);
    let worst_incident = incidents.iter().map(|i| i.impact).max();

    let page = source.root.as_str().trim_end_matches('/').to_owned();
    if source.components.is_empty() {
        let indicator =
            Indicator::parse(&summary.indicator).ok_or_else(|| ParseError::Unknown {
                field: "status indicator",
                value: summary.indicator.chars().take(40).collect(),
            })?;
        let description = if summary.description.trim().is_empty() {
            indicator.words().to_owned()
        } else {
            summary.description.trim().to_owned()
        };
        return Ok(OfficialReading {
            page,
            indicator,
            description,
            components: Vec::new(),
            incidents,
        });
    }

    let mut components = Vec::new();
    let mut worst = Indicator::None;
    for c in summary.components.iter().filter(|c| {
        source
            .components
            .iter()
            .any(|wanted| names(wanted, &c.id, &c.name))
    }) {
        let (_, words, level) = COMPONENT_STATUSES
            .iter()
            .find(|(name, _, _)| *name == c.status)
            .ok_or_else(|| ParseError::Unknown {
                field: "component status",
                value: c.status.chars().take(40).collect(),
            })?;
        worst = worst.max(*level);
        components.push((c.name.clone(), *words));
    }
    if components.is_empty() {
        let listed: Vec<&str> = summary
            .components
            .iter()
            .take(12)
            .map(|c| c.name.as_str())
            .collect();
        return Err(ParseError::Malformed {
            expected: "a page with the configured components",
            detail: format!(
                "none of {} is listed; the page lists {}",
                source.components.join(", "),
                if listed.is_empty() {
                    "no components".to_owned()
                } else {
                    listed.join(", ")
                }
            ),
        });
    }
    let indicator = worst.max(worst_incident.unwrap_or(Indicator::None));
    let troubled: Vec<String> = components
        .iter()
        .filter(|(_, words)| *words != "operational")
        .map(|(name, words)| format!("{name}: {words}"))
        .collect();
    let description = if troubled.is_empty() && indicator == Indicator::None {
        "operational".to_owned()
    } else if troubled.is_empty() {
        format!("{} (open incident)", indicator.words())
    } else {
        troubled.join("; ")
    };
    Ok(OfficialReading {
        page,
        indicator,
        description,
        components,
        incidents,
    })
}

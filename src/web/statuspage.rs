//! Atlassian Statuspage-compatible JSON (`/api/v2/status.json`, `summary.json`,
//! `components.json`, `incidents.json`, `incidents/unresolved.json`), so widgets and scripts
//! written for Statuspage pages can read isdown as they read status.openai.com.
//!
//! Shapes follow the Statuspage v2 public API field for field. The mapping from isdown's
//! vocabulary: each monitor is a component (`up` → `operational`, `degraded` →
//! `degraded_performance`, `down` → `major_outage`; a setup problem says nothing about the
//! provider, so its component stays `operational` and its `description` says what is wrong on
//! isdown's side); each incident is an incident (`open` → `investigating`, closed →
//! `resolved`; impact `major` for outages, `minor` for isdown's own network, `none` for setup
//! problems). The page `indicator` is `critical` when every monitor is down, `major` when
//! some are, `minor` when some are degraded, else `none`. `page.updated_at` is when the monitor
//! last updated the data, not when the JSON was written. Pure functions: `views.rs` renders them
//! on change and serves them from memory.

use std::collections::HashMap;

use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::{Value, json};

use super::site::SiteInfo;
use super::text;
use crate::incident::IncidentKind;
use crate::monitor::health::{HealthSnapshot, MonitorHealth};
use crate::monitor::machine::MonitorState;
use crate::store::Incident;
use crate::time::{Millis, rfc3339};

/// The page id every object refers to (one isdown instance is one page).
const PAGE_ID: &str = "isdown";
/// Statuspage's `incidents.json` lists the 50 most recent.
pub const INCIDENTS_LISTED: u32 = 50;

/// The page object; `updated_at` is when the monitor last updated the data.
pub fn page(site: &SiteInfo, updated_at: Millis) -> Value {
    json!({
        "id": PAGE_ID,
        "name": "isdown",
        "url": site.base(),
        "time_zone": "Etc/UTC",
        "updated_at": rfc3339(updated_at),
    })
}

/// `{"indicator", "description"}` of the whole page.
pub fn indicator(health: &HealthSnapshot) -> Value {
    let count = |s: MonitorState| health.monitors.iter().filter(|m| m.state == s).count();
    let down = count(MonitorState::Down);
    let (indicator, description) = if down > 0 && down == health.monitors.len() {
        ("critical", "Major System Outage")
    } else if down > 0 {
        ("major", "Partial System Outage")
    } else if count(MonitorState::Degraded) > 0 {
        ("minor", "Minor Service Outage")
    } else {
        ("none", "All Systems Operational")
    };
    json!({ "indicator": indicator, "description": description })
}

fn component_status(state: MonitorState) -> &'static str {
    match state {
        MonitorState::Degraded => "degraded_performance",
        MonitorState::Regional => "partial_outage",
        MonitorState::Down => "major_outage",
        MonitorState::Unknown | MonitorState::Up | MonitorState::SetupProblem => "operational",
    }
}

/// How many monitors `provider` has.
fn monitors_of(health: &HealthSnapshot, provider: &str) -> usize {
    health
        .monitors
        .iter()
        .filter(|o| o.provider == provider)
        .count()
}

/// "Kimi", or "Kimi (chat)" when the provider has several monitors (`siblings`, it included).
fn component_name(site: &SiteInfo, m: &MonitorHealth, siblings: usize) -> String {
    let name = site.name(&m.provider);
    if siblings > 1 {
        format!("{name} ({})", m.probe)
    } else {
        name.to_owned()
    }
}

/// Every monitor as a Statuspage component, serialized as the list is written: a JSON tree held
/// a B-tree node and a string per key for every monitor during every render (BENCHMARKS.md
/// "Memory per monitor"). Fields in alphabetical order, the order a `serde_json::Value` printed
/// them in before, so the bytes did not change.
pub struct Components<'a> {
    site: &'a SiteInfo,
    health: &'a HealthSnapshot,
    now: Millis,
}

pub fn components_of<'a>(
    site: &'a SiteInfo,
    health: &'a HealthSnapshot,
    now: Millis,
) -> Components<'a> {
    Components { site, health, now }
}

#[derive(Serialize)]
struct Component<'a> {
    created_at: &'a str,
    description: Option<String>,
    group: bool,
    group_id: Option<()>,
    id: &'a str,
    name: String,
    only_show_if_degraded: bool,
    page_id: &'static str,
    position: usize,
    showcase: bool,
    start_date: Option<()>,
    status: &'static str,
    updated_at: &'a str,
}

impl Serialize for Components<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Counted once: counting per component was quadratic (2.5 billion comparisons per
        // render at 50,000 monitors).
        let mut siblings: HashMap<&str, usize> = HashMap::new();
        for m in &self.health.monitors {
            *siblings.entry(m.provider.as_str()).or_default() += 1;
        }
        let mut seq = s.serialize_seq(Some(self.health.monitors.len()))?;
        for (i, m) in self.health.monitors.iter().enumerate() {
            let changed = rfc3339(m.since.unwrap_or(self.now));
            let description = (m.state == MonitorState::SetupProblem).then(|| {
                format!(
                    "isdown cannot check this provider: {}",
                    text::setup_phrase(m.verdict)
                )
            });
            let siblings = siblings.get(m.provider.as_str()).copied().unwrap_or(1);
            seq.serialize_element(&Component {
                created_at: &changed,
                description,
                group: false,
                group_id: None,
                id: &m.id,
                name: component_name(self.site, m, siblings),
                only_show_if_degraded: false,
                page_id: PAGE_ID,
                position: i + 1,
                showcase: false,
                start_date: None,
                status: component_status(m.state),
                updated_at: &changed,
            })?;
        }
        seq.end()
    }
}

fn impact(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Outage => "major",
        IncidentKind::Network | IncidentKind::Regional => "minor",
        IncidentKind::SetupProblem => "none",
    }
}

/// What the affected component showed while the incident was open.
fn status_during(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Outage => "major_outage",
        IncidentKind::Regional => "partial_outage",
        IncidentKind::Network | IncidentKind::SetupProblem => "operational",
    }
}

pub fn incident_of(site: &SiteInfo, health: &HealthSnapshot, i: &Incident) -> Value {
    let id = i.id.to_string();
    let network = i.kind == IncidentKind::Network;
    let name = if network {
        "All providers".to_owned()
    } else {
        site.name(&i.provider).to_owned()
    };
    let monitor = health.monitors.iter().find(|m| m.id == i.monitor);
    let component_name = monitor.map_or(name.clone(), |m| {
        component_name(site, m, monitors_of(health, &m.provider))
    });
    let current = monitor.map_or("operational", |m| component_status(m.state));
    let affected = |old: &str, new: &str| -> Value {
        if network {
            json!([])
        } else {
            json!([{ "code": i.monitor, "name": component_name, "old_status": old, "new_status": new }])
        }
    };
    let started = rfc3339(i.started_at);
    let cause = i
        .last_error
        .as_deref()
        .or(i.first_error.as_deref())
        .map(|e| format!(" {}", site.public_text(e)))
        .unwrap_or_default();
    let mut updates = Vec::new();
    if let Some(ended) = i.ended_at {
        let at = rfc3339(ended);
        updates.push(json!({
            "id": format!("{id}-resolved"),
            "status": "resolved",
            "body": format!("Resolved after {}.", text::duration(ended - i.started_at)),
            "incident_id": id,
            "created_at": at,
            "updated_at": at,
            "display_at": at,
            "affected_components": affected(status_during(i.kind), "operational"),
            "deliver_notifications": true,
            "custom_tweet": null,
            "tweet_id": null,
        }));
    }
    updates.push(json!({
        "id": format!("{id}-investigating"),
        "status": "investigating",
        "body": format!(
            "{} ({}), whose side: {}.{cause}",
            text::kind_label(i.kind),
            text::verdict_words(i.verdict),
            text::incident_side(i.kind, i.verdict),
        ),
        "incident_id": id,
        "created_at": started,
        "updated_at": started,
        "display_at": started,
        "affected_components": affected("operational", status_during(i.kind)),
        "deliver_notifications": true,
        "custom_tweet": null,
        "tweet_id": null,
    }));
    let updated = rfc3339(i.ended_at.unwrap_or(i.started_at).max(i.started_at));
    json!({
        "id": id,
        "name": format!("{name}: {}", text::incident_title(i.kind, i.verdict)),
        "status": if i.ended_at.is_some() { "resolved" } else { "investigating" },
        "impact": impact(i.kind),
        "created_at": started,
        "updated_at": updated,
        "monitoring_at": null,
        "resolved_at": i.ended_at.map(rfc3339),
        "started_at": started,
        "shortlink": format!("{}/incidents#incident-{id}", site.base()),
        "page_id": PAGE_ID,
        "incident_updates": updates,
        "components": if network {
            json!([])
        } else {
            json!([{ "id": i.monitor, "name": component_name, "status": current }])
        },
        "reminder_intervals": null,
        "postmortem_body": null,
        "impact_override": null,
        "backfilled": false,
    })
}

/// `status.json`.
pub fn status_json(site: &SiteInfo, health: &HealthSnapshot, now: Millis) -> Value {
    json!({ "page": page(site, now), "status": indicator(health) })
}

/// `summary.json`: `open` are the unresolved incidents (fields in alphabetical order, as
/// [`Components`]).
pub fn summary_json<'a>(
    site: &'a SiteInfo,
    health: &'a HealthSnapshot,
    open: &[Incident],
    now: Millis,
) -> impl Serialize + 'a {
    #[derive(Serialize)]
    struct Summary<'a> {
        components: Components<'a>,
        incidents: Vec<Value>,
        page: Value,
        scheduled_maintenances: [(); 0],
        status: Value,
    }
    Summary {
        components: components_of(site, health, now),
        incidents: open.iter().map(|i| incident_of(site, health, i)).collect(),
        page: page(site, now),
        scheduled_maintenances: [],
        status: indicator(health),
    }
}

/// `components.json`.
pub fn components_json<'a>(
    site: &'a SiteInfo,
    health: &'a HealthSnapshot,
    now: Millis,
) -> impl Serialize + 'a {
    #[derive(Serialize)]
    struct ComponentsJson<'a> {
        components: Components<'a>,
        page: Value,
    }
    ComponentsJson {
        components: components_of(site, health, now),
        page: page(site, now),
    }
}

/// `incidents.json` and `incidents/unresolved.json`.
pub fn incidents_json(
    site: &SiteInfo,
    health: &HealthSnapshot,
    list: &[Incident],
    now: Millis,
) -> Value {
    json!({
        "page": page(site, now),
        "incidents": list.iter().map(|i| incident_of(site, health, i)).collect::<Vec<_>>(),
    })
}

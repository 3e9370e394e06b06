//! Official acknowledgements, as pure functions: which official incident acknowledged which of
//! isdown's incidents (same provider, overlapping in time), how far ahead isdown was (the lead
//! time), the median lead over a window, and the official incidents isdown's probes did not see.
//!
//! Rules (README "Corroboration"):
//! - Only outages are matched: a setup problem is the user's own and a network incident isdown's
//!   own; no provider page acknowledges those.
//! - An official incident matches one of ours of the same provider when their times overlap,
//!   allowing the page to post up to [`LATE_BY`] after ours ended (pages lag, and often post
//!   short incidents after the fact) and to have resolved up to [`EARLY_BY`] before ours began
//!   (isdown confirms after a few failed probes).
//! - Of several matches, the one the page posted first acknowledged it.
//! - Lead time = the official incident's `acknowledged_at` (when the page posted it) − our
//!   incident's `started_at`; positive when isdown was first.
//! - An official incident is "not seen by isdown" when no outage of ours overlaps it, it had an
//!   impact (not `none` or `maintenance`), and isdown read the page while it was going on (or
//!   within [`LIVE_SLACK`] of its end) — incidents from before isdown watched the page are not
//!   held against the probes.

use std::collections::HashMap;

use crate::incident::IncidentKind;
use crate::store::{Incident, OfficialAck, StoredOfficialIncident};
use crate::time::{HOUR_MS, MINUTE_MS, Millis};

/// How long after one of our incidents ended the page may still post it: status pages lag by
/// 10–30 minutes, and an hour covers the slow ones without pairing unrelated incidents.
pub const LATE_BY: Millis = HOUR_MS;
/// How long before one of ours began an official incident may have resolved: isdown opens an
/// incident after a few failed probes, so the page can see a short blip end first.
pub const EARLY_BY: Millis = 10 * MINUTE_MS;
/// An official incident isdown first read within this of its end still counts as seen live.
pub const LIVE_SLACK: Millis = 10 * MINUTE_MS;

/// Impacts that are not a problem isdown's probes could have seen.
const NO_PROBLEM: [&str; 2] = ["none", "maintenance"];

/// The span an official incident covers: from the earlier of its start and its posting, to its
/// resolution (or `now`).
fn span(o: &StoredOfficialIncident, now: Millis) -> (Millis, Millis) {
    let i = &o.incident;
    (
        i.started_at.min(i.acknowledged_at),
        i.resolved_at.unwrap_or(now).max(i.acknowledged_at),
    )
}

/// Whether `official` may have acknowledged `ours`.
pub fn overlaps(ours: &Incident, official: &StoredOfficialIncident, now: Millis) -> bool {
    if ours.kind != IncidentKind::Outage || ours.provider != official.provider {
        return false;
    }
    let (from, to) = span(official, now);
    let end = ours.ended_at.unwrap_or(now);
    from <= end.saturating_add(LATE_BY) && to >= ours.started_at.saturating_sub(EARLY_BY)
}

/// The official incident that acknowledged `ours`: of those that overlap it, the one posted
/// first (the lower id on a tie).
pub fn acknowledged_by<'a>(
    ours: &Incident,
    official: &'a [StoredOfficialIncident],
    now: Millis,
) -> Option<&'a StoredOfficialIncident> {
    official
        .iter()
        .filter(|o| overlaps(ours, o, now))
        .min_by_key(|o| (o.incident.acknowledged_at, o.id))
}

/// `(incident id, official id)` for every outage of ours not yet acknowledged that an official
/// incident now matches.
pub fn acknowledgements(
    ours: &[Incident],
    official: &[StoredOfficialIncident],
    now: Millis,
) -> Vec<(i64, i64)> {
    ours.iter()
        .filter(|i| i.official.is_none())
        .filter_map(|i| acknowledged_by(i, official, now).map(|o| (i.id, o.id)))
        .collect()
}

/// `ours` with `links` applied, as the store will read them back.
pub fn apply(ours: &mut [Incident], links: &[(i64, i64)], official: &[StoredOfficialIncident]) {
    let by_id: HashMap<i64, &StoredOfficialIncident> = official.iter().map(|o| (o.id, o)).collect();
    for incident in ours.iter_mut().filter(|i| i.official.is_none()) {
        let Some(o) = links
            .iter()
            .find(|(id, _)| *id == incident.id)
            .and_then(|(_, official)| by_id.get(official))
        else {
            continue;
        };
        incident.official = Some(OfficialAck {
            official_id: o.id,
            title: o.incident.title.clone(),
            url: o.incident.url.clone(),
            acknowledged_at: o.incident.acknowledged_at,
            resolved_at: o.incident.resolved_at,
        });
    }
}

/// How a provider's official page compared with isdown over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeadStats {
    /// isdown's outages of the provider in the window.
    pub outages: usize,
    /// Of those, the ones the page acknowledged.
    pub acknowledged: usize,
    /// Median lead time of the acknowledged ones.
    pub median_lead: Option<Millis>,
}

/// Lead statistics of `provider` over `ours` (incidents of the window, links applied).
pub fn stats(provider: &str, ours: &[Incident]) -> LeadStats {
    let outages: Vec<&Incident> = ours
        .iter()
        .filter(|i| i.provider == provider && i.kind == IncidentKind::Outage)
        .collect();
    let leads: Vec<Millis> = outages.iter().filter_map(|i| i.lead()).collect();
    LeadStats {
        outages: outages.len(),
        acknowledged: leads.len(),
        median_lead: median(leads),
    }
}

/// The median; the mean of the middle two for an even count.
pub fn median(mut values: Vec<Millis>) -> Option<Millis> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        values[mid - 1] + (values[mid] - values[mid - 1]) / 2
    })
}

/// `provider`'s official incidents that no outage of ours overlaps, newest first.
pub fn unseen<'a>(
    provider: &str,
    official: &'a [StoredOfficialIncident],
    ours: &[Incident],
    now: Millis,
) -> Vec<&'a StoredOfficialIncident> {
    official
        .iter()
        .filter(|o| o.provider == provider)
        .filter(|o| !NO_PROBLEM.contains(&o.incident.impact.as_str()))
        .filter(|o| o.first_seen_at <= span(o, now).1.saturating_add(LIVE_SLACK))
        .filter(|o| !ours.iter().any(|i| overlaps(i, o, now)))
        .collect()
}

//! The alert rules as one pure function: from the incidents that are open, the alert groups
//! already announced and the clock, decide which messages to queue now.
//!
//! Everything that must survive a restart is an input read from the store (open incidents,
//! unresolved groups) or the monitor's health view, so running the rules again after a crash
//! decides the same thing and never repeats what was committed. The only memory kept between
//! passes is when each unannounced incident was first seen, which starts its grouping window;
//! losing it on a restart delays an alert by at most one window. No I/O here: the dispatcher
//! reads, calls [`plan`] and commits the result in one transaction.
//!
//! Rules:
//! - An incident is announced as soon as it is confirmed (opened), unless other monitors are
//!   failing at that moment without an incident of their own (their confirmation probe, or the
//!   network correlation of a timeout, is under way, so the wait is about `confirm_after`):
//!   then the rules wait for exactly those and send one message naming every monitor
//!   confirmed by then. `group_window` bounds that wait; it is not a fixed delay.
//! - An incident that opens while an announced group of its kind is still open joins that
//!   group: a follow-up (`update`) under the group's dedup key lists every monitor down, at
//!   most one per `group_window`, so twenty monitors failing one after another are never
//!   twenty pages (PagerDuty and Opsgenie update the alert they opened).
//! - A group is resolved (one message with durations) when all its incidents have ended;
//!   while any is open, a reminder goes out every `reminder`.
//! - Monitors in a maintenance window are not announced while it lasts; if their incident is
//!   still open when it ends, it is announced then.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::policy::{AlertPolicy, ChannelRoute};
use super::render::{duration, official_sentence, utc_time};
use super::{AlertEvent, AlertItem, AlertMessage};
use crate::incident::IncidentKind;
use crate::monitor::health::HealthSnapshot;
use crate::monitor::machine::MonitorState;
use crate::store::{AlertCommit, AlertGroup, Incident, NewAlertGroup, NewOutboxEntry};
use crate::time::Millis;
use crate::verdict::{Blame, Verdict};

/// What the rules know about a monitor besides its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    pub provider: String,
    /// Display name, e.g. "Kimi".
    pub provider_name: String,
    pub model: Option<String>,
}

/// One pass's inputs.
pub struct PlanInput<'a> {
    pub now: Millis,
    pub policy: &'a AlertPolicy,
    pub routes: &'a [ChannelRoute],
    pub monitors: &'a HashMap<String, MonitorInfo>,
    /// Every open incident, plus the members of `groups` (open or not).
    pub incidents: &'a [Incident],
    pub groups: &'a [AlertGroup],
    pub health: &'a HealthSnapshot,
    pub public_url: Option<&'a str>,
}

/// One pass's decision.
#[derive(Debug, Default)]
pub struct Plan {
    pub commit: AlertCommit,
    /// The messages queued, as (channel, message), in the order of `commit.entries`.
    pub messages: Vec<(String, AlertMessage)>,
    /// When the rules next have something to decide without a new event (a grouping window
    /// closing, a reminder, a maintenance window ending).
    pub next_due: Option<Millis>,
}

/// Runs the rules once. `first_seen` remembers unannounced incidents between passes.
pub fn plan(input: &PlanInput<'_>, first_seen: &mut HashMap<i64, Millis>) -> Plan {
    let now = input.now;
    let mut out = Plan::default();
    let by_id: HashMap<i64, &Incident> = input.incidents.iter().map(|i| (i.id, i)).collect();
    let announced: HashSet<i64> = input
        .groups
        .iter()
        .flat_map(|g| g.incidents.iter().map(|(id, _)| *id))
        .collect();
    let due = |at: Millis, out: &mut Plan| {
        out.next_due = Some(out.next_due.map_or(at, |d| d.min(at)));
    };

    // === Opening: unannounced open incidents, grouped by kind ===
    let mut waiting: BTreeMap<IncidentKind, Vec<&Incident>> = BTreeMap::new();
    let open_ids: HashSet<i64> = input
        .incidents
        .iter()
        .filter(|i| i.ended_at.is_none())
        .map(|i| i.id)
        .collect();
    first_seen.retain(|id, _| open_ids.contains(id) && !announced.contains(id));
    for incident in input.incidents.iter().filter(|i| i.ended_at.is_none()) {
        if announced.contains(&incident.id) {
            continue;
        }
        let provider = provider_of(input, incident);
        if input
            .policy
            .silenced(&incident.monitor, &provider, now)
            .is_some()
        {
            first_seen.remove(&incident.id);
            continue;
        }
        first_seen.entry(incident.id).or_insert(now);
        waiting.entry(incident.kind).or_default().push(incident);
    }
    let window = millis(input.policy.group_window);
    let unconfirmed = unconfirmed_kinds(input.health);
    for (kind, mut members) in waiting {
        let first = members
            .iter()
            .map(|i| first_seen[&i.id])
            .min()
            .expect("a kind is only listed with members");
        // Wait only while another monitor's failure of this kind may still be confirmed (its
        // confirmation probe is already scheduled), and never past the window.
        if unconfirmed.contains(&kind) && now < first + window {
            due((now + HOLD_POLL).min(first + window), &mut out);
            continue;
        }
        members.sort_by_key(|i| (i.started_at, i.id));
        if let Some(group) = open_group(input, kind, &by_id) {
            // Opened after the group's message went out: a follow-up under the group's key, at
            // most one per window, listing every monitor still down.
            let next = group.last_sent_at + window;
            if now < next {
                due(next, &mut out);
                continue;
            }
            let mut all: Vec<&Incident> = group
                .incidents
                .iter()
                .filter_map(|(id, _)| by_id.get(id).copied())
                .filter(|i| i.ended_at.is_none())
                .collect();
            all.extend(members.iter().copied());
            let items: Vec<AlertItem> = all.iter().map(|i| item(input, i)).collect();
            queue(
                input,
                &mut out,
                AlertEvent::Update,
                kind,
                &group.dedup_key,
                &items,
                &all,
            );
            out.commit.joined.push((
                group.dedup_key.clone(),
                members.iter().map(|i| i.id).collect(),
            ));
            out.commit.reminded.push((group.dedup_key.clone(), now));
        } else {
            let key = format!(
                "isdown-{}-{}-{now}",
                kind.as_str().replace('_', "-"),
                members[0].id
            );
            let items: Vec<AlertItem> = members.iter().map(|i| item(input, i)).collect();
            queue(
                input,
                &mut out,
                AlertEvent::Opened,
                kind,
                &key,
                &items,
                &members,
            );
            out.commit.new_groups.push(NewAlertGroup {
                dedup_key: key,
                kind,
                opened_at: now,
                incidents: members.iter().map(|i| i.id).collect(),
            });
        }
        for member in &members {
            first_seen.remove(&member.id);
        }
    }

    // === Announced groups: resolve or remind ===
    for group in input.groups {
        let members: Vec<&Incident> = group
            .incidents
            .iter()
            .filter_map(|(id, _)| by_id.get(id).copied())
            .collect();
        let all_ended = group.incidents.iter().all(|(_, ended)| ended.is_some());
        if all_ended {
            let items: Vec<AlertItem> = members.iter().map(|i| item(input, i)).collect();
            queue(
                input,
                &mut out,
                AlertEvent::Resolved,
                group.kind,
                &group.dedup_key,
                &items,
                &members,
            );
            out.commit.resolved.push((group.dedup_key.clone(), now));
            continue;
        }
        let Some(every) = input.policy.reminder.map(millis) else {
            continue;
        };
        let next = group.last_sent_at + every;
        if next > now {
            due(next, &mut out);
            continue;
        }
        let still_open: Vec<&Incident> = members
            .iter()
            .copied()
            .filter(|i| i.ended_at.is_none())
            .filter(|i| {
                let provider = provider_of(input, i);
                input.policy.silenced(&i.monitor, &provider, now).is_none()
            })
            .collect();
        if !still_open.is_empty() {
            let items: Vec<AlertItem> = still_open.iter().map(|i| item(input, i)).collect();
            queue(
                input,
                &mut out,
                AlertEvent::Reminder,
                group.kind,
                &group.dedup_key,
                &items,
                &members,
            );
        }
        // A fully silenced group skips this reminder but keeps its rhythm.
        out.commit.reminded.push((group.dedup_key.clone(), now));
        due(now + every, &mut out);
    }

    if let Some(boundary) = input.policy.next_boundary(now) {
        due(boundary, &mut out);
    }
    out
}

/// 500 ms: how often a held message looks again whether the failures it waits for were
/// confirmed or dismissed (a dismissal raises no event). Only while something is held.
const HOLD_POLL: Millis = 500;

/// The incident kinds that monitors failing right now without an incident may still open:
/// their confirmation probe (or the network correlation of a timeout) is under way. A failure
/// explained by an open `network` incident opens nothing more.
fn unconfirmed_kinds(health: &HealthSnapshot) -> HashSet<IncidentKind> {
    let mut kinds = HashSet::new();
    for monitor in &health.monitors {
        let Some(verdict) = monitor.verdict.filter(|v| !v.is_healthy()) else {
            continue;
        };
        if monitor.open_incident.is_some()
            || (verdict.is_transport_level() && health.network_incident.is_some())
        {
            continue;
        }
        let may_open: &[IncidentKind] = match verdict.default_blame() {
            _ if verdict.is_transport_level() => &[IncidentKind::Outage, IncidentKind::Network],
            Some(Blame::Provider) => &[IncidentKind::Outage],
            Some(Blame::Account | Blame::Request) => &[IncidentKind::SetupProblem],
            Some(Blame::Network) | None => &[
                IncidentKind::Outage,
                IncidentKind::SetupProblem,
                IncidentKind::Network,
            ],
        };
        kinds.extend(may_open.iter().copied());
    }
    kinds
}

/// The announced, unresolved group of `kind` with an incident still open, if any: a new
/// incident of that kind joins it instead of paging again.
fn open_group<'a>(
    input: &'a PlanInput<'_>,
    kind: IncidentKind,
    by_id: &HashMap<i64, &Incident>,
) -> Option<&'a AlertGroup> {
    input
        .groups
        .iter()
        .filter(|g| g.kind == kind && g.resolved_at.is_none())
        .filter(|g| {
            g.incidents.iter().any(|(id, ended)| {
                ended.is_none() && by_id.get(id).is_some_and(|i| i.ended_at.is_none())
            })
        })
        .max_by_key(|g| g.opened_at)
}

fn millis(d: std::time::Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

fn provider_of(input: &PlanInput<'_>, incident: &Incident) -> String {
    input
        .monitors
        .get(&incident.monitor)
        .map_or_else(|| incident.provider.clone(), |m| m.provider.clone())
}

fn item(input: &PlanInput<'_>, incident: &Incident) -> AlertItem {
    let info = input.monitors.get(&incident.monitor);
    let health = input
        .health
        .monitors
        .iter()
        .find(|m| m.id == incident.monitor);
    let blame = match incident.kind {
        IncidentKind::Outage | IncidentKind::Regional => Some(Blame::Provider),
        IncidentKind::Network => Some(Blame::Network),
        IncidentKind::SetupProblem => incident.verdict.default_blame(),
    };
    let explanation = incident
        .last_error
        .clone()
        .or_else(|| incident.first_error.clone())
        .or_else(|| health.and_then(|h| h.explanation.clone()))
        .unwrap_or_else(|| format!("{} (no sample kept)", incident.verdict));
    let (provider, provider_name) = match (incident.kind, info) {
        (IncidentKind::Network, _) => match crate::incident::network_region(&incident.monitor) {
            None => ("*".to_owned(), "every provider".to_owned()),
            Some(region) => ("*".to_owned(), format!("every provider from {region}")),
        },
        (_, Some(info)) => (info.provider.clone(), info.provider_name.clone()),
        (_, None) => (incident.provider.clone(), incident.provider.clone()),
    };
    AlertItem {
        monitor: incident.monitor.clone(),
        provider,
        provider_name,
        model: info.and_then(|i| i.model.clone()),
        verdict: incident.verdict,
        blame,
        explanation: crate::secret::scrub(&explanation),
        started_at: incident.started_at,
    }
}

/// Queues one message per channel that takes at least one of `items`, listing only those.
fn queue(
    input: &PlanInput<'_>,
    out: &mut Plan,
    event: AlertEvent,
    kind: IncidentKind,
    key: &str,
    items: &[AlertItem],
    members: &[&Incident],
) {
    for route in input.routes {
        let mine: Vec<AlertItem> = items
            .iter()
            .filter(|i| route.takes(kind, &i.monitor, &i.provider))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let message = compose(input, event, kind, key, mine, members);
        let payload = serde_json::to_string(&message).expect("an AlertMessage always serializes");
        out.commit.entries.push(NewOutboxEntry {
            channel: route.channel.clone(),
            dedup_key: key.to_owned(),
            event: event.as_str().to_owned(),
            payload,
            created_at: input.now,
        });
        out.messages.push((route.channel.clone(), message));
    }
}

// === Message text ===

fn names(items: &[AlertItem]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item.provider_name.as_str()) {
            seen.push(&item.provider_name);
        }
    }
    match seen.len() {
        0 => "nothing".to_owned(),
        1..=4 => seen.join(", "),
        n => format!("{} and {} more", seen[..3].join(", "), n - 3),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A provider that is answering normally and is not among the failing ones: where to fail over.
fn fallback(input: &PlanInput<'_>, failing: &[AlertItem]) -> Option<String> {
    let mut healthy: Vec<&str> = Vec::new();
    let mut unhealthy: HashSet<&str> = failing.iter().map(|i| i.provider.as_str()).collect();
    for m in &input.health.monitors {
        if !matches!(m.state, MonitorState::Up | MonitorState::Degraded) {
            unhealthy.insert(&m.provider);
        }
    }
    for m in &input.health.monitors {
        if m.state == MonitorState::Up
            && !unhealthy.contains(m.provider.as_str())
            && !healthy.contains(&m.provider.as_str())
        {
            healthy.push(&m.provider);
        }
    }
    let provider = healthy.first()?;
    Some(
        input
            .monitors
            .values()
            .find(|m| m.provider == *provider)
            .map_or_else(|| (*provider).to_owned(), |m| m.provider_name.clone()),
    )
}

/// The regions that see the items' monitors down and those that do not, as the health view has
/// them ("eu-west", "eu-west, us-east"), named as [`names`] names providers; "some regions"
/// when it has none.
fn regions_of(health: &HealthSnapshot, items: &[AlertItem]) -> (String, String) {
    let mut failing = BTreeSet::new();
    let mut fine = BTreeSet::new();
    for monitor in health
        .monitors
        .iter()
        .filter(|m| items.iter().any(|i| i.monitor == m.id))
    {
        for (region, view) in &monitor.regions {
            if view.monitor_state() == MonitorState::Down {
                failing.insert(region.as_str());
            } else {
                fine.insert(region.as_str());
            }
        }
    }
    fine.retain(|r| !failing.contains(r));
    let listed = |set: BTreeSet<&str>| set.into_iter().collect::<Vec<_>>().join(", ");
    let failing = match listed(failing) {
        none if none.is_empty() => "some regions".to_owned(),
        some => some,
    };
    (failing, listed(fine))
}

fn compose(
    input: &PlanInput<'_>,
    event: AlertEvent,
    kind: IncidentKind,
    key: &str,
    items: Vec<AlertItem>,
    members: &[&Incident],
) -> AlertMessage {
    let now = input.now;
    let who = names(&items);
    let started_at = items.iter().map(|i| i.started_at).min().unwrap_or(now);
    let ended_at = (event == AlertEvent::Resolved).then(|| {
        members
            .iter()
            .filter_map(|i| i.ended_at)
            .max()
            .unwrap_or(now)
    });
    let lasted = ended_at.unwrap_or(now) - started_at;
    let verdicts = {
        let mut v: Vec<Verdict> = items.iter().map(|i| i.verdict).collect();
        v.sort();
        v.dedup();
        v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
    };
    let health_advice = items.iter().find_map(|i| {
        input
            .health
            .monitors
            .iter()
            .find(|m| m.id == i.monitor)
            .and_then(|m| m.advice.clone())
    });
    let n = items.len();
    // "Kimi is", "Kimi, GLM are": by providers named, as `who` names them.
    let is = if who.contains(", ") || who.contains(" and ") {
        "are"
    } else {
        "is"
    };
    // When it started rather than how long: a message sent at confirmation would say "for 1 s".
    let since = utc_time(started_at);
    let (title, summary, advice) = match (event, kind) {
        (AlertEvent::Resolved, _) => {
            // The channels say "resolved" in their own way (an icon, a label, a subject prefix): the
            // title only says what is back and after how long, so no message says it twice.
            let title = format!("{who} {is} back up after {}", duration(lasted));
            let each: Vec<String> = members
                .iter()
                .filter(|m| items.iter().any(|i| i.monitor == m.monitor))
                .map(|m| {
                    format!(
                        "{} {}",
                        m.monitor,
                        duration(m.ended_at.unwrap_or(now) - m.started_at)
                    )
                })
                .collect();
            let summary = format!(
                "{} recovered: {}. The incident lasted {}.",
                plural(n, "monitor", "monitors"),
                each.join(", "),
                duration(lasted)
            );
            (title, summary, "No action needed.".to_owned())
        }
        (_, IncidentKind::Network) => {
            // With several regions, each region's network is its own incident.
            let region = members
                .iter()
                .find_map(|i| crate::incident::network_region(&i.monitor));
            let (title, whose) = match region {
                None => (
                    "isdown's own network is down: no provider is reachable".to_owned(),
                    "isdown".to_owned(),
                ),
                Some(region) => (
                    format!(
                        "isdown's own network is down in region {region}: no provider is \
                         reachable from there"
                    ),
                    format!("isdown's instances in {region}"),
                ),
            };
            (
                title,
                format!(
                    "Every provider failed at the network level at the same time ({verdicts}), \
                     so the problem is between {whose} and the internet, not at the \
                     providers. Down since {since}."
                ),
                "Check this host's network: DNS, proxy, firewall and uplink. The providers \
                 themselves are probably fine."
                    .to_owned(),
            )
        }
        (_, IncidentKind::Outage) => {
            let title = if n == 1 {
                format!("{who} is DOWN ({verdicts})")
            } else {
                format!("{} DOWN: {who}", plural(n, "monitor", "monitors"))
            };
            let summary = format!(
                "{who} {is} failing on the provider's side ({verdicts}) since {since}; your \
                 account and network are not the cause."
            );
            let advice = match fallback(input, &items) {
                Some(other) => format!(
                    "Fail over to {other}, which is answering normally. {}",
                    health_advice.unwrap_or_default()
                ),
                None => health_advice.unwrap_or_else(|| {
                    "Fail over to another provider and watch the provider's status page.".into()
                }),
            };
            (title, summary, advice.trim().to_owned())
        }
        (_, IncidentKind::Regional) => {
            let (failing, fine) = regions_of(input.health, &items);
            let title = format!("{who} {is} down from {failing} only ({verdicts})");
            let elsewhere = if fine.is_empty() {
                String::new()
            } else {
                format!(" and answering from {fine}")
            };
            (
                title,
                format!(
                    "{who} {is} failing ({verdicts}) from {failing} since {since}{elsewhere}: \
                     fewer regions than an outage needs, so the provider is up and the path \
                     from {failing} to it is not."
                ),
                "Send the work of the failing regions through another region or provider; \
                 where your agents run only there, treat it as an outage."
                    .to_owned(),
            )
        }
        (_, IncidentKind::SetupProblem) => (
            format!("Setup problem: {who} ({verdicts})"),
            format!(
                "Requests to {who} fail because of your account, key or request ({verdicts}) \
                 since {since}; the provider itself is not down."
            ),
            health_advice.unwrap_or_else(|| {
                "Check the API key, balance and model id configured for this provider.".into()
            }),
        ),
    };
    let title = match event {
        AlertEvent::Reminder => format!("Still open after {}: {title}", duration(lasted)),
        _ => title,
    };
    // Once the provider's own page acknowledged one of them, the message says so (a reminder or
    // the resolve carries it; the opening alert is usually first).
    let mut summary = summary;
    let mut acknowledged: Vec<&crate::store::OfficialAck> = Vec::new();
    for m in members
        .iter()
        .filter(|m| items.iter().any(|i| i.monitor == m.monitor))
    {
        if let (Some(ack), Some(lead)) = (&m.official, m.lead())
            && !acknowledged
                .iter()
                .any(|a| a.official_id == ack.official_id)
        {
            acknowledged.push(ack);
            summary.push(' ');
            summary.push_str(&official_sentence(
                &ack.title,
                ack.url.as_deref(),
                ack.acknowledged_at,
                lead,
            ));
        }
    }
    AlertMessage {
        event,
        kind,
        title,
        summary,
        advice,
        items,
        started_at,
        ended_at,
        duration_s: ended_at.map(|end| (end - started_at) / 1000),
        url: input.public_url.map(|u| format!("{u}/")),
        dedup_key: key.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests;

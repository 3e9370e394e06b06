use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::alert::policy::{Maintenance, MonitorSet};
use crate::monitor::health::MonitorHealth;
use crate::monitor::regions::RegionView;
use crate::time::{MINUTE_MS, SECOND_MS};

const T0: Millis = 1_767_225_600_000;
const WINDOW: Millis = 20 * SECOND_MS;

fn incident(id: i64, monitor: &str, kind: IncidentKind, verdict: Verdict, at: Millis) -> Incident {
    Incident {
        id,
        monitor: monitor.to_owned(),
        provider: monitor.split('-').next().unwrap().to_owned(),
        kind,
        verdict,
        started_at: at,
        ended_at: None,
        failed_probes: 2,
        first_error: Some(format!("{verdict} from {monitor}")),
        last_error: None,
        official: None,
        opened_by: None,
    }
}

fn outage(id: i64, monitor: &str, at: Millis) -> Incident {
    incident(id, monitor, IncidentKind::Outage, Verdict::Unavailable, at)
}

fn route(channel: &str, table: &str) -> ChannelRoute {
    #[derive(serde::Deserialize)]
    struct Keys {
        on: Option<Vec<String>>,
        monitors: Option<Vec<String>>,
    }
    let keys: Keys = toml::from_str(table).unwrap();
    ChannelRoute::new(channel, keys.on, keys.monitors).unwrap()
}

fn health(states: &[(&str, MonitorState)]) -> HealthSnapshot {
    HealthSnapshot {
        monitors: states
            .iter()
            .map(|(id, state)| MonitorHealth {
                id: (*id).to_owned(),
                provider: id.split('-').next().unwrap().to_owned(),
                model: None,
                probe: "chat".into(),
                state: *state,
                since: None,
                verdict: None,
                last_at: None,
                last_latency_ms: None,
                explanation: None,
                advice: None,
                open_incident: None,
                regions: Default::default(),
            })
            .collect(),
        ..HealthSnapshot::default()
    }
}

struct World {
    policy: AlertPolicy,
    routes: Vec<ChannelRoute>,
    monitors: HashMap<String, MonitorInfo>,
    incidents: Vec<Incident>,
    groups: Vec<AlertGroup>,
    health: HealthSnapshot,
    first_seen: HashMap<i64, Millis>,
}

impl World {
    fn new() -> World {
        let mut monitors = HashMap::new();
        for (provider, name) in [("kimi", "Kimi"), ("deepseek", "DeepSeek"), ("glm", "GLM")] {
            for probe in ["chat", "stream"] {
                monitors.insert(
                    format!("{provider}-{probe}"),
                    MonitorInfo {
                        provider: provider.into(),
                        provider_name: name.into(),
                        model: Some(format!("{provider}-model")),
                    },
                );
            }
        }
        World {
            policy: AlertPolicy::default(),
            routes: vec![route("log", "")],
            monitors,
            incidents: Vec::new(),
            groups: Vec::new(),
            health: HealthSnapshot::default(),
            first_seen: HashMap::new(),
        }
    }

    /// Runs the rules at `now` and applies the commit the way the store would.
    fn pass(&mut self, now: Millis) -> Plan {
        let plan = plan(
            &PlanInput {
                now,
                policy: &self.policy,
                routes: &self.routes,
                monitors: &self.monitors,
                incidents: &self.incidents,
                groups: &self.groups,
                health: &self.health,
                public_url: Some("https://status.example.com"),
            },
            &mut self.first_seen,
        );
        for g in &plan.commit.new_groups {
            self.groups.push(AlertGroup {
                dedup_key: g.dedup_key.clone(),
                kind: g.kind,
                opened_at: g.opened_at,
                last_sent_at: g.opened_at,
                resolved_at: None,
                incidents: g.incidents.iter().map(|id| (*id, None)).collect(),
            });
        }
        for (key, incidents) in &plan.commit.joined {
            let group = self
                .groups
                .iter_mut()
                .find(|g| &g.dedup_key == key)
                .unwrap();
            group
                .incidents
                .extend(incidents.iter().map(|id| (*id, None)));
        }
        for (key, at) in &plan.commit.reminded {
            self.groups
                .iter_mut()
                .find(|g| &g.dedup_key == key)
                .unwrap()
                .last_sent_at = *at;
        }
        let resolved: Vec<&String> = plan.commit.resolved.iter().map(|(k, _)| k).collect();
        self.groups.retain(|g| !resolved.contains(&&g.dedup_key));
        plan
    }

    fn close(&mut self, id: i64, at: Millis) {
        self.incidents
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap()
            .ended_at = Some(at);
        for g in &mut self.groups {
            for (member, ended) in &mut g.incidents {
                if *member == id {
                    *ended = Some(at);
                }
            }
        }
    }
}

fn events(plan: &Plan) -> Vec<(&str, AlertEvent, usize)> {
    plan.messages
        .iter()
        .map(|(c, m)| (c.as_str(), m.event, m.items.len()))
        .collect()
}

/// Marks `monitor` as failing with `verdict` and no incident yet: its confirmation probe is
/// under way.
fn failing(w: &mut World, monitor: &str, verdict: Verdict) {
    let mut row = health(&[(monitor, MonitorState::Up)]).monitors.remove(0);
    row.verdict = Some(verdict);
    w.health.monitors.retain(|m| m.id != monitor);
    w.health.monitors.push(row);
}

/// The confirmation of `monitor` came: its incident `id` is open and its row says so.
fn confirmed(w: &mut World, id: i64, monitor: &str, at: Millis) {
    w.health.monitors.retain(|m| m.id != monitor);
    w.incidents.push(outage(id, monitor, at));
}

#[test]
fn a_lone_incident_is_announced_at_once() {
    let mut w = World::new();
    w.incidents
        .push(outage(1, "kimi-chat", T0 - 10 * SECOND_MS));
    let opened = w.pass(T0);
    assert_eq!(events(&opened), vec![("log", AlertEvent::Opened, 1)]);
    let message = &opened.messages[0].1;
    assert_eq!(message.title, "Kimi is DOWN (unavailable)");
    assert_eq!(message.url.as_deref(), Some("https://status.example.com/"));
    assert_eq!(message.items[0].blame, Some(Blame::Provider));
    assert_eq!(message.items[0].explanation, "unavailable from kimi-chat");
    assert_eq!(opened.commit.new_groups.len(), 1);
    assert_eq!(opened.commit.entries[0].dedup_key, message.dedup_key);

    let again = w.pass(T0 + 1);
    assert!(
        again.messages.is_empty(),
        "an announced incident is not announced again"
    );
}

#[test]
fn an_incident_waits_only_for_failures_still_being_confirmed() {
    let mut w = World::new();
    failing(&mut w, "glm-chat", Verdict::ServerError);
    failing(&mut w, "deepseek-chat", Verdict::Unavailable);
    w.incidents.push(outage(1, "kimi-chat", T0));
    let held = w.pass(T0);
    assert!(held.messages.is_empty());
    assert_eq!(held.next_due, Some(T0 + HOLD_POLL), "looks again soon");
    // GLM is confirmed; DeepSeek's confirmation passes (a blip): nothing left to wait for.
    confirmed(&mut w, 2, "glm-chat", T0 + 2 * SECOND_MS);
    w.health.monitors.retain(|m| m.id != "deepseek-chat");
    let plan = w.pass(T0 + 2 * SECOND_MS);
    assert_eq!(events(&plan), vec![("log", AlertEvent::Opened, 2)]);
    assert_eq!(plan.messages[0].1.title, "2 monitors DOWN: Kimi, GLM");
}

#[test]
fn the_group_window_bounds_the_wait() {
    let mut w = World::new();
    failing(&mut w, "glm-chat", Verdict::Unavailable);
    w.incidents.push(outage(1, "kimi-chat", T0));
    assert!(w.pass(T0).messages.is_empty());
    assert!(w.pass(T0 + WINDOW - 1).messages.is_empty());
    let plan = w.pass(T0 + WINDOW);
    assert_eq!(events(&plan), vec![("log", AlertEvent::Opened, 1)]);
}

#[test]
fn failures_of_another_kind_or_explained_by_the_network_do_not_hold_an_outage() {
    let mut w = World::new();
    failing(&mut w, "glm-chat", Verdict::AuthFailed);
    w.incidents.push(outage(1, "kimi-chat", T0));
    assert_eq!(events(&w.pass(T0)), vec![("log", AlertEvent::Opened, 1)]);

    let mut w = World::new();
    w.health.network_incident = Some(9);
    failing(&mut w, "glm-chat", Verdict::Timeout);
    w.incidents.push(outage(1, "kimi-chat", T0));
    assert_eq!(events(&w.pass(T0)), vec![("log", AlertEvent::Opened, 1)]);
}

#[test]
fn an_incident_opening_after_the_message_is_a_follow_up_under_the_same_key() {
    let mut w = World::new();
    w.routes = vec![route("log", ""), route("pager", "on = [\"outage\"]")];
    w.incidents.push(outage(1, "kimi-chat", T0));
    let first = w.pass(T0);
    let key = first.messages[0].1.dedup_key.clone();
    confirmed(&mut w, 2, "glm-chat", T0 + 5 * SECOND_MS);
    confirmed(&mut w, 3, "deepseek-chat", T0 + 6 * SECOND_MS);
    let early = w.pass(T0 + 6 * SECOND_MS);
    assert!(
        early.messages.is_empty(),
        "at most one follow-up per window"
    );
    assert_eq!(early.next_due, Some(T0 + WINDOW));
    let follow_up = w.pass(T0 + WINDOW);
    assert_eq!(
        events(&follow_up),
        vec![
            ("log", AlertEvent::Update, 3),
            ("pager", AlertEvent::Update, 3)
        ]
    );
    assert!(follow_up.commit.new_groups.is_empty(), "no new page");
    assert_eq!(follow_up.commit.joined, vec![(key.clone(), vec![2, 3])]);
    assert!(follow_up.messages.iter().all(|(_, m)| m.dedup_key == key));
    assert_eq!(
        follow_up.messages[0].1.title,
        "3 monitors DOWN: Kimi, GLM, DeepSeek"
    );
    assert!(w.pass(T0 + WINDOW + 1).messages.is_empty());
}

#[test]
fn twenty_monitors_failing_together_make_one_message_per_channel() {
    let mut w = World::new();
    w.routes = vec![route("log", ""), route("pager", "on = [\"outage\"]")];
    let monitors: Vec<String> = (0..20).map(|n| format!("p{n}-chat")).collect();
    for (n, monitor) in monitors.iter().enumerate() {
        w.monitors.insert(
            monitor.clone(),
            MonitorInfo {
                provider: format!("p{n}"),
                provider_name: format!("P{n}"),
                model: None,
            },
        );
        failing(&mut w, monitor, Verdict::Unavailable);
    }
    // Confirmations trickle in over a few seconds; each pass waits for the rest.
    for (n, monitor) in monitors.iter().enumerate() {
        let at = T0 + n as Millis * 200;
        confirmed(&mut w, n as i64 + 1, monitor, at);
        let plan = w.pass(at);
        if n + 1 < monitors.len() {
            assert!(plan.messages.is_empty(), "held at {n}");
        } else {
            assert_eq!(
                events(&plan),
                vec![
                    ("log", AlertEvent::Opened, 20),
                    ("pager", AlertEvent::Opened, 20)
                ]
            );
            assert_eq!(
                plan.messages[0].1.title,
                "20 monitors DOWN: P0, P1, P2 and 17 more"
            );
            assert_eq!(plan.commit.new_groups.len(), 1);
            assert_eq!(plan.commit.new_groups[0].incidents.len(), 20);
        }
    }
}

#[test]
fn outages_and_setup_problems_are_separate_groups_routed_by_kind_and_monitor() {
    let mut w = World::new();
    w.routes = vec![
        route("oncall", "on = [\"outage\"]\nmonitors = [\"kimi\"]"),
        route("mail", "on = [\"setup_problem\"]"),
    ];
    w.incidents.push(outage(1, "kimi-chat", T0));
    w.incidents.push(outage(2, "glm-chat", T0));
    w.incidents.push(incident(
        3,
        "deepseek-chat",
        IncidentKind::SetupProblem,
        Verdict::AuthFailed,
        T0,
    ));
    let plan = w.pass(T0);
    assert_eq!(
        events(&plan),
        vec![
            ("oncall", AlertEvent::Opened, 1),
            ("mail", AlertEvent::Opened, 1)
        ]
    );
    let (_, pager) = &plan.messages[0];
    assert_eq!(
        pager.items[0].monitor, "kimi-chat",
        "only the routed monitor"
    );
    let (_, mail) = &plan.messages[1];
    assert_eq!(mail.title, "Setup problem: DeepSeek (auth_failed)");
    assert_eq!(mail.items[0].blame, Some(Blame::Account));
    assert_eq!(plan.commit.new_groups.len(), 2);
}

#[test]
fn a_group_resolves_when_its_last_incident_ends_with_the_duration() {
    let mut w = World::new();
    w.incidents.push(outage(1, "kimi-chat", T0));
    w.incidents.push(outage(2, "kimi-stream", T0 + SECOND_MS));
    w.pass(T0 + SECOND_MS);
    w.close(1, T0 + 10 * MINUTE_MS);
    assert!(w.pass(T0 + 10 * MINUTE_MS).messages.is_empty());
    w.close(2, T0 + 23 * MINUTE_MS);
    let plan = w.pass(T0 + 23 * MINUTE_MS + SECOND_MS);
    assert_eq!(events(&plan), vec![("log", AlertEvent::Resolved, 2)]);
    let message = &plan.messages[0].1;
    assert_eq!(message.duration_s, Some(23 * 60));
    assert_eq!(message.ended_at, Some(T0 + 23 * MINUTE_MS));
    assert_eq!(message.title, "Kimi is back up after 23 min");
    assert!(
        message.summary.contains("kimi-chat 10 min"),
        "{}",
        message.summary
    );
    assert_eq!(plan.commit.resolved.len(), 1);
    assert!(w.pass(T0 + HOUR).messages.is_empty(), "resolved once");
}

const HOUR: Millis = 60 * MINUTE_MS;

#[test]
fn once_the_official_page_acknowledged_it_the_reminder_and_resolve_say_so_once() {
    let mut w = World::new();
    w.incidents.push(outage(1, "kimi-chat", T0));
    w.incidents.push(outage(2, "kimi-stream", T0));
    let opened = w.pass(T0);
    assert!(!opened.messages[0].1.summary.contains("status page"));
    // The page posts it 12 minutes in; both monitors' incidents link to it.
    for incident in &mut w.incidents {
        incident.official = Some(crate::store::OfficialAck {
            official_id: 7,
            title: "Elevated API errors".into(),
            url: Some("https://stspg.io/7".into()),
            acknowledged_at: T0 + 12 * MINUTE_MS,
            resolved_at: None,
        });
    }
    let reminder = w.pass(T0 + 30 * MINUTE_MS);
    let summary = &reminder.messages[0].1.summary;
    assert_eq!(
        summary.matches("status page acknowledged").count(),
        1,
        "{summary}"
    );
    assert!(
        summary.ends_with(
            "The provider's status page acknowledged it at 00:12 UTC (detected 12 min before the \
             official page): \"Elevated API errors\" — https://stspg.io/7."
        ),
        "{summary}"
    );
    w.close(1, T0 + 40 * MINUTE_MS);
    w.close(2, T0 + 40 * MINUTE_MS);
    let resolved = w.pass(T0 + 41 * MINUTE_MS);
    assert!(
        resolved.messages[0]
            .1
            .summary
            .contains("https://stspg.io/7")
    );
}

#[test]
fn reminders_repeat_while_open_and_list_only_open_monitors() {
    let mut w = World::new();
    w.incidents.push(outage(1, "kimi-chat", T0));
    w.incidents.push(outage(2, "glm-chat", T0));
    let opened_at = T0;
    w.pass(opened_at);
    w.close(2, T0 + 5 * MINUTE_MS);
    let quiet = w.pass(opened_at + 29 * MINUTE_MS);
    assert!(quiet.messages.is_empty());
    assert_eq!(quiet.next_due, Some(opened_at + 30 * MINUTE_MS));
    let first = w.pass(opened_at + 30 * MINUTE_MS);
    assert_eq!(events(&first), vec![("log", AlertEvent::Reminder, 1)]);
    assert!(
        first.messages[0]
            .1
            .title
            .starts_with("Still open after 30 min: Kimi")
    );
    assert!(w.pass(opened_at + 45 * MINUTE_MS).messages.is_empty());
    let second = w.pass(opened_at + 60 * MINUTE_MS);
    assert_eq!(events(&second), vec![("log", AlertEvent::Reminder, 1)]);

    w.policy.reminder = None;
    assert!(w.pass(opened_at + 200 * MINUTE_MS).messages.is_empty());
}

#[test]
fn maintenance_silences_until_it_ends_then_a_still_open_incident_is_announced() {
    let mut w = World::new();
    w.policy.reminder = None;
    w.policy.maintenance = vec![Maintenance {
        monitors: MonitorSet::new(vec!["kimi".into()]).unwrap(),
        start: T0 - HOUR,
        end: T0 + HOUR,
        reason: None,
    }];
    w.incidents.push(outage(1, "kimi-chat", T0));
    w.incidents.push(outage(2, "glm-chat", T0));
    let plan = w.pass(T0);
    assert_eq!(events(&plan), vec![("log", AlertEvent::Opened, 1)]);
    assert_eq!(plan.messages[0].1.items[0].monitor, "glm-chat");
    assert_eq!(
        plan.next_due,
        Some(T0 + HOUR),
        "wakes when maintenance ends"
    );

    assert!(w.pass(T0 + HOUR - 1).messages.is_empty());
    // GLM's group is still open: Kimi joins it, announced as a follow-up.
    let after = w.pass(T0 + HOUR);
    assert_eq!(events(&after), vec![("log", AlertEvent::Update, 2)]);
    assert!(
        after.messages[0]
            .1
            .items
            .iter()
            .any(|i| i.monitor == "kimi-chat")
    );
}

#[test]
fn an_incident_that_ends_inside_maintenance_is_never_announced() {
    let mut w = World::new();
    w.policy.maintenance = vec![Maintenance {
        monitors: MonitorSet::all(),
        start: T0,
        end: T0 + HOUR,
        reason: None,
    }];
    w.incidents.push(outage(1, "kimi-chat", T0));
    w.pass(T0);
    w.close(1, T0 + 10 * MINUTE_MS);
    assert!(w.pass(T0 + 2 * HOUR).messages.is_empty());
}

#[test]
fn isdowns_own_network_failing_is_one_message() {
    let mut w = World::new();
    w.incidents.push(incident(
        9,
        "*",
        IncidentKind::Network,
        Verdict::Network,
        T0,
    ));
    w.routes = vec![
        route("log", ""),
        route("kimi-only", "monitors = [\"kimi\"]"),
    ];
    // Every provider failing at the network level, already explained by the network incident.
    for monitor in ["kimi-chat", "glm-chat", "deepseek-chat"] {
        failing(&mut w, monitor, Verdict::Network);
    }
    w.health.network_incident = Some(9);
    let plan = w.pass(T0);
    assert_eq!(
        events(&plan),
        vec![
            ("log", AlertEvent::Opened, 1),
            ("kimi-only", AlertEvent::Opened, 1)
        ]
    );
    let message = &plan.messages[0].1;
    assert_eq!(
        message.title,
        "isdown's own network is down: no provider is reachable"
    );
    assert_eq!(message.items[0].blame, Some(Blame::Network));
    assert!(message.advice.contains("DNS"));
}

#[test]
fn outage_advice_names_a_provider_that_is_answering() {
    let mut w = World::new();
    w.health = health(&[
        ("kimi-chat", MonitorState::Down),
        ("glm-chat", MonitorState::SetupProblem),
        ("deepseek-chat", MonitorState::Up),
    ]);
    w.incidents.push(outage(1, "kimi-chat", T0));
    let plan = w.pass(T0);
    let advice = &plan.messages[0].1.advice;
    assert!(advice.starts_with("Fail over to DeepSeek"), "{advice}");
}

#[test]
fn a_reopened_incident_after_its_resolve_gets_a_new_group_key() {
    let mut w = World::new();
    w.incidents.push(outage(1, "kimi-chat", T0));
    let first = w.pass(T0).messages[0].1.dedup_key.clone();
    w.close(1, T0 + MINUTE_MS);
    w.pass(T0 + MINUTE_MS);
    w.incidents[0].ended_at = None;
    let again = w.pass(T0 + 5 * MINUTE_MS);
    assert_eq!(events(&again), vec![("log", AlertEvent::Opened, 1)]);
    assert_ne!(again.messages[0].1.dedup_key, first);
}

#[test]
fn grouping_window_is_the_configured_one() {
    let mut w = World::new();
    w.policy.group_window = Duration::from_secs(2);
    failing(&mut w, "glm-chat", Verdict::Unavailable);
    w.incidents.push(outage(1, "kimi-chat", T0));
    assert!(w.pass(T0).messages.is_empty());
    assert!(w.pass(T0 + 2 * SECOND_MS - 1).messages.is_empty());
    assert_eq!(w.pass(T0 + 2 * SECOND_MS).messages.len(), 1);
}

/// One outage as the rules announce it — Kimi opened, GLM joining it (a follow-up), reminded
/// once, resolved after 1 h 12 min — with DeepSeek answering and a status-page URL: the sequence every channel's
/// snapshot test renders, so the rules' wording and each channel's are pinned together.
pub(crate) fn lifecycle() -> Vec<AlertMessage> {
    let mut w = World::new();
    w.health = health(&[
        ("kimi-chat", MonitorState::Down),
        ("deepseek-chat", MonitorState::Up),
    ]);
    w.incidents.push(outage(1, "kimi-chat", T0));
    let mut messages = Vec::new();
    let mut take = |plan: Plan| messages.extend(plan.messages.into_iter().map(|(_, m)| m));
    take(w.pass(T0));
    // GLM goes down after the message: a follow-up, not a new page.
    confirmed(&mut w, 2, "glm-chat", T0 + 3 * MINUTE_MS);
    take(w.pass(T0 + 3 * MINUTE_MS));
    take(w.pass(T0 + 33 * MINUTE_MS));
    w.close(2, T0 + 40 * MINUTE_MS);
    w.close(1, T0 + 72 * MINUTE_MS);
    take(w.pass(T0 + 72 * MINUTE_MS + SECOND_MS));
    let events: Vec<AlertEvent> = messages.iter().map(|m| m.event).collect();
    assert_eq!(
        events,
        [
            AlertEvent::Opened,
            AlertEvent::Update,
            AlertEvent::Reminder,
            AlertEvent::Resolved
        ]
    );
    messages
}

#[test]
fn a_regional_incident_names_the_failing_regions_and_routes_by_its_kind() {
    let mut w = World::new();
    w.incidents.push(incident(
        4,
        "kimi-chat",
        IncidentKind::Regional,
        Verdict::Unavailable,
        T0,
    ));
    w.routes = vec![
        route("log", ""),
        route("outages-only", "on = [\"outage\"]"),
        route("regional", "on = [\"regional\"]"),
    ];
    let mut row = health(&[("kimi-chat", MonitorState::Regional)])
        .monitors
        .remove(0);
    for (region, state) in [
        ("eu-west", MonitorState::Down),
        ("us-east", MonitorState::Up),
        ("ap-south", MonitorState::Down),
    ] {
        row.regions.insert(
            region.to_owned(),
            RegionView {
                state: state.as_str().to_owned(),
                verdict: None,
                since: None,
            },
        );
    }
    w.health.monitors.push(row);
    let plan = w.pass(T0);
    // Every kind by default, regional included; a channel limited to outages does not get it.
    assert_eq!(
        events(&plan),
        vec![
            ("log", AlertEvent::Opened, 1),
            ("regional", AlertEvent::Opened, 1)
        ]
    );
    let message = &plan.messages[0].1;
    assert_eq!(
        message.title,
        "Kimi is down from ap-south, eu-west only (unavailable)"
    );
    assert!(
        message.summary.contains("answering from us-east"),
        "{}",
        message.summary
    );
    assert_eq!(message.items[0].blame, Some(Blame::Provider));
}

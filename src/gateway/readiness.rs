//! Readiness: whether a route could serve a request now, read for work that can wait (the
//! durable queue paces batch lines by it).
//!
//! A read of state the gateway keeps anyway — each target's circuit breaker (`breaker`, synced
//! with the monitor's open outage incidents first) and those incidents in the health view — and
//! nothing else: it decides nothing, changes nothing and sends nothing. A target is **ready**
//! when the gateway would send a live request to it now (`Admission::Closed`), **on trial**
//! when it would send exactly one (a recovering target's trial), and **waiting** otherwise —
//! and always while the monitor has an outage incident open for its provider, even when a
//! passed recovery test let live traffic back in: work that can wait, waits for the monitor to
//! see the provider well.
//! For a waiting target it says when that is known to end: a cool-down (a long `Retry-After`,
//! a bad key) or a recovering target's next trial. A failing target waits for a recovery test
//! or the monitor, whose time is not known in advance (`None`).
//!
//! The breakers learn the monitor's incidents from the gateway's periodic read (at most once a
//! second); [`Gateway::sync_incidents_now`] reads them at once, for a closed incident.
//!
//! The breaker has no clock of its own: it answers for any instant it is asked about, so the
//! end of a wait is found by asking it about later instants (a binary search), never by
//! reading its internals.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Gateway;
use super::breaker::{Admission, Breaker};
use crate::incident::IncidentKind;

/// How far ahead the end of a wait is looked for: the gateway caps a `Retry-After` at a day.
const HORIZON: Duration = Duration::from_secs(86_400);

/// The end of a wait is found to this precision.
const PRECISION: Duration = Duration::from_millis(1);

/// Whether one target of a route would take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Closed breaker: requests go to it.
    Ready,
    /// Recovering: the next request to it is its trial; one at a time until it closes.
    Trial,
    /// Failing or cooling down: requests pass it over.
    Waiting,
}

/// One target of a route, as the gateway sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetReadiness {
    pub provider: Arc<str>,
    pub state: TargetState,
    /// For a waiting target, when its wait is known to end (a cool-down, the next trial).
    pub next_check_at: Option<Instant>,
    /// The monitor has an outage incident open for the provider.
    pub incident: bool,
}

/// A route's targets in route order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub targets: Vec<TargetReadiness>,
}

impl Readiness {
    /// Targets ready now or on trial.
    pub fn ready_targets(&self) -> usize {
        self.targets
            .iter()
            .filter(|t| t.state != TargetState::Waiting)
            .count()
    }

    /// The target a request sent now would go to first (route order, waiting ones passed
    /// over), if any.
    pub fn first_ready(&self) -> Option<&TargetReadiness> {
        self.targets
            .iter()
            .find(|t| t.state != TargetState::Waiting)
    }

    /// The earliest known end of a wait, when no target is ready.
    pub fn next_check_at(&self) -> Option<Instant> {
        self.targets.iter().filter_map(|t| t.next_check_at).min()
    }
}

impl Gateway {
    /// Reads the monitor's open incidents into the breakers now, instead of at the request
    /// path's next periodic read (at most once a second): the queue calls it when the monitor
    /// closes an incident, so that the lines waiting for it start at once.
    pub fn sync_incidents_now(&self) {
        self.table().read_incidents(Instant::now());
    }

    /// How the route that `model` resolves to stands now; `None` when no route matches.
    pub fn readiness(&self, model: &str) -> Option<Readiness> {
        let inner = self.table();
        let now = Instant::now();
        inner.sync_incidents(now);
        let route = inner.routes.resolve(model)?;
        let outages: Vec<String> = inner.health.read(|view| {
            view.monitors
                .iter()
                .filter(|m| matches!(m.open_incident, Some((IncidentKind::Outage, _))))
                .map(|m| m.provider.clone())
                .collect()
        });
        let targets = route
            .targets
            .iter()
            .map(|target| {
                let breaker = &target.state.breaker;
                let provider = target.state.provider.clone();
                let incident = outages.iter().any(|p| **p == *provider);
                let state = match breaker.peek(now) {
                    _ if incident => TargetState::Waiting,
                    Admission::Closed => TargetState::Ready,
                    Admission::Trial => TargetState::Trial,
                    Admission::Rejected => TargetState::Waiting,
                };
                TargetReadiness {
                    incident,
                    provider,
                    state,
                    // During an incident the monitor says when: nothing is known in advance.
                    next_check_at: (state == TargetState::Waiting && !incident)
                        .then(|| admits_from(breaker, now))
                        .flatten(),
                }
            })
            .collect();
        Some(Readiness { targets })
    }
}

/// The first instant after `now` at which `breaker` would admit a request, as things stand,
/// within [`HORIZON`]; `None` when it would not (it waits for a test or the monitor). Admission
/// only turns from rejected to admitted as time passes (a cool-down ends, a trial comes due),
/// so a binary search finds it.
fn admits_from(breaker: &Breaker, now: Instant) -> Option<Instant> {
    let admits = |at: Instant| breaker.peek(at) != Admission::Rejected;
    let mut low = now;
    let mut high = now + HORIZON;
    if !admits(high) {
        return None;
    }
    while high.saturating_duration_since(low) > PRECISION {
        let middle = low + high.saturating_duration_since(low) / 2;
        if admits(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::GatewayDeps;
    use crate::gateway::breaker::{BreakerPolicy, OpenIncident, Outcome};
    use crate::gateway::settings::{GatewaySettings, RouteSpec};
    use crate::metrics::Metrics;
    use crate::monitor::MonitorSpec;
    use crate::monitor::health::{Health, PassiveReporter};
    use crate::monitor::service::initial_health;
    use crate::probe::ProbeKind;
    use crate::provider::Provider;

    /// A gateway over providers `ids`, each with a chat monitor in `health`, and one route `r`
    /// to all of them in order.
    fn gateway(ids: &[&str]) -> (Gateway, Health) {
        let providers: Vec<Arc<Provider>> = ids
            .iter()
            .map(|id| Arc::new(Provider::for_test(id)))
            .collect();
        let monitors: Vec<MonitorSpec> = providers
            .iter()
            .map(|p| {
                let interval = Duration::from_secs(30);
                MonitorSpec::new(p.clone(), ProbeKind::Chat, interval, interval)
            })
            .collect();
        let targets: Vec<(&str, Option<&str>)> = ids.iter().map(|id| (*id, None)).collect();
        let settings = GatewaySettings {
            providers,
            routes: vec![RouteSpec::for_test("r", &targets)],
            ..GatewaySettings::default()
        };
        let health = initial_health(&monitors);
        let (reporter, _reports) = PassiveReporter::channel(16);
        let deps = GatewayDeps {
            health: health.clone(),
            reporter,
            metrics: Metrics::new(),
        };
        let gateway = Gateway::new(&settings, deps, "127.0.0.1:0".parse().unwrap()).unwrap();
        (gateway, health)
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_in_an_outage_incident_waits_and_recovers_on_trial_when_it_closes() {
        let (gateway, health) = gateway(&["p1", "p2"]);
        assert_eq!(gateway.readiness("nothing-routes-this"), None);
        let states = |r: &Readiness| r.targets.iter().map(|t| t.state).collect::<Vec<_>>();
        let all_ready = gateway.readiness("r").unwrap();
        assert_eq!(states(&all_ready), [TargetState::Ready, TargetState::Ready]);

        let p1 = health
            .snapshot()
            .monitors
            .iter()
            .position(|m| m.provider == "p1")
            .unwrap();
        health.update(|view| {
            view.monitors[p1].open_incident = Some((IncidentKind::Outage, Some(1)));
        });
        tokio::time::advance(Duration::from_secs(1)).await;
        let outage = gateway.readiness("r").unwrap();
        assert_eq!(states(&outage), [TargetState::Waiting, TargetState::Ready]);
        assert!(outage.targets[0].incident);
        assert_eq!(
            outage.targets[0].next_check_at, None,
            "the monitor says when"
        );
        assert_eq!(&*outage.first_ready().unwrap().provider, "p2");

        health.update(|view| view.monitors[p1].open_incident = None);
        tokio::time::advance(Duration::from_secs(1)).await;
        let recovering = gateway.readiness("r").unwrap();
        assert_eq!(
            states(&recovering),
            [TargetState::Trial, TargetState::Ready]
        );
        assert_eq!(&*recovering.first_ready().unwrap().provider, "p1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_incident_read_at_once_makes_its_target_recover_without_waiting_a_second() {
        let (gateway, health) = gateway(&["p1"]);
        health.update(|view| {
            view.monitors[0].open_incident = Some((IncidentKind::Outage, Some(1)));
        });
        tokio::time::advance(Duration::from_secs(1)).await;
        let state = |g: &Gateway| g.readiness("r").unwrap().targets[0].state;
        assert_eq!(state(&gateway), TargetState::Waiting);

        // Closed within the same second: the periodic read has not seen it yet.
        health.update(|view| view.monitors[0].open_incident = None);
        assert_eq!(state(&gateway), TargetState::Waiting, "not read yet");
        gateway.sync_incidents_now();
        assert_eq!(state(&gateway), TargetState::Trial);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_a_cool_down_or_a_trial_wait_is_found_and_a_failing_target_has_none() {
        let now = Instant::now();
        let breaker = Breaker::new(BreakerPolicy::default());
        breaker.cool_down(now + Duration::from_secs(30));
        let end = admits_from(&breaker, now).unwrap();
        assert!(end >= now + Duration::from_secs(30));
        assert!(end <= now + Duration::from_secs(30) + PRECISION);

        let failing = Breaker::new(BreakerPolicy::default());
        failing.record(now, Outcome::TimedOut);
        assert_eq!(failing.peek(now), Admission::Rejected);
        assert_eq!(
            admits_from(&failing, now),
            None,
            "waits for a recovery test"
        );

        // The monitor closes its incident: recovering, with the next trial due at once.
        let monitored = Breaker::new(BreakerPolicy::default());
        monitored.sync_incident(now, Some(OpenIncident { id: 7, hung: false }));
        assert_eq!(admits_from(&monitored, now), None);
        monitored.sync_incident(now, None);
        assert_eq!(monitored.peek(now), Admission::Trial);
    }
}

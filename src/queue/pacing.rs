//! Pacing: how many lines of a route may start now, and until when the others wait.
//!
//! The rules, in order, for a route with pending lines:
//! - A route whose answers just failed on the provider's side while a target looked ready (a
//!   5xx before the breakers noticed) waits a backoff (1 s doubling to 30 s), reset by an answer.
//! - Lines go to the first target the gateway would use now ([`Readiness::first_ready`]): its
//!   provider's concurrency and requests-per-minute limits apply, and a provider paused by a
//!   rate limit takes nothing until the pause ends (1 s doubling to 60 s, reset by an answer).
//!   A `Retry-After` longer than the gateway's `max_retry_wait` cools the target down in the
//!   gateway itself, which readiness reports: the pause then lasts exactly as long.
//! - A recovering target (its breaker on trial) takes one line at a time until it answers.
//! - When no target is ready the lines wait — for the end of a known wait (a cool-down, the next
//!   trial), for the monitor when a provider of the route has an open outage incident (its
//!   provider then gets no line at all), and otherwise (breakers opened by live failures alone,
//!   which only a request can close) one line is sent as the route's trial, then another after
//!   2 s doubling to 60 s while they fail.
//!
//! Lines start in groups while others are in flight (a quarter of the provider's concurrency),
//! so that claiming them from the store costs one transaction per group, not per line.
//!
//! Pure: no clock (callers pass tokio `Instant`s, so tests run on paused time), no I/O, and
//! randomness (for jitter) passed in. `queue::dispatch` asks [`Pacing::plan`], claims what it
//! allows, and reports each line's end with [`Pacing::ended`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::settings::QueueSettings;
use crate::backoff::Backoff;
use crate::gateway::readiness::{Readiness, TargetState};

/// Lines claimed at once at most: one store transaction per claim, so larger claims cost less
/// per line, and 64 keeps the lines held in memory few.
pub const MAX_CLAIM: u32 = 64;

/// What a line's answer says about pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answered (in the output file).
    Served,
    /// The request's own fault (in the error file): says nothing about the provider.
    Refused,
    /// Every target that was tried is rate limited: the line waits.
    RateLimited,
    /// No target answered (a 5xx from the gateway): the line waits.
    Unavailable,
}

/// What may happen to a route's pending lines now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start up to `count` lines now, counted against `provider`.
    Start { provider: Arc<str>, count: u32 },
    /// Nothing may start; look again at `until`, or when woken (a line ended, an incident
    /// closed, new lines arrived). The caller also looks at least once per tick.
    Wait { until: Option<Instant> },
}

#[derive(Debug)]
struct ProviderPace {
    in_flight: u32,
    tokens: f64,
    refilled_at: Instant,
    paused_until: Option<Instant>,
    /// Rate-limit pauses in a row: the backoff step.
    pauses: u32,
}

#[derive(Debug, Default)]
struct RoutePace {
    in_flight: u32,
    paused_until: Option<Instant>,
    /// Provider-side failures in a row while a target looked ready.
    failures: u32,
    /// Trials sent in a row while every target waited with no incident.
    trials: u32,
    trial_due: Option<Instant>,
}

/// The pacing state of every provider and route.
#[derive(Debug)]
pub struct Pacing {
    settings: QueueSettings,
    providers: HashMap<Arc<str>, ProviderPace>,
    routes: HashMap<String, RoutePace>,
    rate_limit_backoff: Backoff,
    failure_backoff: Backoff,
    trial_backoff: Backoff,
}

impl Pacing {
    pub fn new(settings: QueueSettings) -> Pacing {
        let backoff = |base, max| {
            Backoff::try_new(Duration::from_secs(base), Duration::from_secs(max), 0.2)
                .expect("constant backoff settings are valid")
        };
        Pacing {
            settings,
            providers: HashMap::new(),
            routes: HashMap::new(),
            rate_limit_backoff: backoff(1, 60),
            failure_backoff: backoff(1, 30),
            trial_backoff: backoff(2, 60),
        }
    }

    /// Lines in flight to `provider` (as counted when they started).
    pub fn in_flight(&self, provider: &str) -> u32 {
        self.providers.get(provider).map_or(0, |p| p.in_flight)
    }

    /// What `pending` lines of `route` (the model their requests name) may do now.
    pub fn plan(&mut self, route: &str, readiness: &Readiness, pending: u64, now: Instant) -> Plan {
        if pending == 0 {
            return Plan::Wait { until: None };
        }
        let Some(target) = readiness.first_ready() else {
            return self.while_none_is_ready(route, readiness, now);
        };
        let pace = self.routes.entry(route.to_owned()).or_default();
        if let Some(until) = pace.paused_until.filter(|u| *u > now) {
            return Plan::Wait { until: Some(until) };
        }
        let route_in_flight = pace.in_flight;
        let limits = self.settings.limits(&target.provider);
        let provider = self.provider(&target.provider, now);
        if let Some(until) = provider.paused_until.filter(|u| *u > now) {
            return Plan::Wait { until: Some(until) };
        }
        let mut free = limits.concurrency.saturating_sub(provider.in_flight);
        if target.state == TargetState::Trial {
            free = free.min(u32::from(route_in_flight == 0));
        }
        let mut token_wait = None;
        if let Some(rpm) = limits.requests_per_minute {
            refill(provider, rpm, now);
            let whole = provider.tokens.floor() as u32;
            if whole == 0 {
                let per_second = f64::from(rpm.max(1)) / 60.0;
                let missing = (1.0 - provider.tokens).max(0.0);
                token_wait = Some(now + Duration::from_secs_f64(missing / per_second));
            }
            free = free.min(whole);
        }
        let count = u64::from(free.min(MAX_CLAIM)).min(pending) as u32;
        if count == 0 {
            return Plan::Wait { until: token_wait };
        }
        // While lines are in flight to the provider, start them in groups of at least a quarter
        // of its concurrency: a claim is a store transaction, and one per line would cost more
        // than the line. A rate limit of our own spreads starts instead, so it takes them singly.
        let group = (limits.concurrency / 4).max(1);
        if target.state == TargetState::Ready
            && limits.requests_per_minute.is_none()
            && provider.in_flight > 0
            && u64::from(count) < u64::from(group).min(pending)
        {
            return Plan::Wait { until: None };
        }
        Plan::Start {
            provider: target.provider.clone(),
            count,
        }
    }

    /// `count` lines of `route` started, counted against `provider`.
    pub fn started(&mut self, route: &str, provider: &Arc<str>, count: u32, now: Instant) {
        let limits = self.settings.limits(provider);
        let pace = self.provider(provider, now);
        pace.in_flight += count;
        if limits.requests_per_minute.is_some() {
            pace.tokens = (pace.tokens - f64::from(count)).max(0.0);
        }
        self.routes.entry(route.to_owned()).or_default().in_flight += count;
    }

    /// A line of `route` counted against `provider` ended with `answer`; `unit` is a random
    /// draw in `[0, 1)` for jitter. A pause already running is not stepped up again: lines in
    /// flight together failed together.
    pub fn ended(
        &mut self,
        route: &str,
        provider: &Arc<str>,
        answer: Answer,
        now: Instant,
        unit: f64,
    ) {
        let rate_limit_backoff = self.rate_limit_backoff;
        let failure_backoff = self.failure_backoff;
        let pace = self.provider(provider, now);
        pace.in_flight = pace.in_flight.saturating_sub(1);
        match answer {
            Answer::Served => pace.pauses = 0,
            Answer::RateLimited if pace.paused_until.is_none_or(|u| u <= now) => {
                pace.paused_until = Some(now + rate_limit_backoff.delay(pace.pauses, unit));
                pace.pauses = pace.pauses.saturating_add(1);
            }
            _ => {}
        }
        let route = self.routes.entry(route.to_owned()).or_default();
        route.in_flight = route.in_flight.saturating_sub(1);
        match answer {
            Answer::Served => {
                route.failures = 0;
                route.trials = 0;
                route.trial_due = None;
                route.paused_until = None;
            }
            Answer::Unavailable if route.paused_until.is_none_or(|u| u <= now) => {
                route.paused_until = Some(now + failure_backoff.delay(route.failures, unit));
                route.failures = route.failures.saturating_add(1);
            }
            _ => {}
        }
    }

    fn provider(&mut self, id: &Arc<str>, now: Instant) -> &mut ProviderPace {
        let limits = self.settings.limits(id);
        self.providers
            .entry(id.clone())
            .or_insert_with(|| ProviderPace {
                in_flight: 0,
                tokens: limits.requests_per_minute.map_or(0.0, capacity),
                refilled_at: now,
                paused_until: None,
                pauses: 0,
            })
    }

    /// Every target waits.
    fn while_none_is_ready(&mut self, route: &str, readiness: &Readiness, now: Instant) -> Plan {
        // The monitor watches a provider in an outage: it says when it is back, and no line
        // goes to any target of the route before that (a trial could pick that provider).
        if readiness.targets.iter().any(|t| t.incident) {
            return Plan::Wait {
                until: readiness.next_check_at(),
            };
        }
        if let Some(until) = readiness.next_check_at() {
            return Plan::Wait { until: Some(until) };
        }
        let trial_backoff = self.trial_backoff;
        let pace = self.routes.entry(route.to_owned()).or_default();
        if pace.in_flight > 0 {
            return Plan::Wait { until: None };
        }
        if let Some(due) = pace.trial_due.filter(|d| *d > now) {
            return Plan::Wait { until: Some(due) };
        }
        let Some(first) = readiness.targets.first() else {
            return Plan::Wait { until: None };
        };
        // Jitter is not needed here: one route's trials are one request at a time.
        pace.trial_due = Some(now + trial_backoff.delay(pace.trials, 0.5));
        pace.trials = pace.trials.saturating_add(1);
        Plan::Start {
            provider: first.provider.clone(),
            count: 1,
        }
    }
}

/// A bucket of one second's worth of requests (at least one).
fn capacity(rpm: u32) -> f64 {
    (f64::from(rpm) / 60.0).max(1.0)
}

fn refill(pace: &mut ProviderPace, rpm: u32, now: Instant) {
    let elapsed = now
        .saturating_duration_since(pace.refilled_at)
        .as_secs_f64();
    pace.tokens = (pace.tokens + elapsed * f64::from(rpm) / 60.0).min(capacity(rpm));
    pace.refilled_at = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::readiness::TargetReadiness;
    use crate::queue::settings::ProviderLimits;

    fn target(provider: &str, state: TargetState) -> TargetReadiness {
        TargetReadiness {
            provider: Arc::from(provider),
            state,
            next_check_at: None,
            incident: false,
        }
    }

    fn ready(provider: &str) -> Readiness {
        Readiness {
            targets: vec![target(provider, TargetState::Ready)],
        }
    }

    fn pacing(concurrency: u32, rpm: Option<u32>) -> Pacing {
        Pacing::new(QueueSettings {
            defaults: ProviderLimits {
                concurrency,
                requests_per_minute: rpm,
            },
            ..QueueSettings::default()
        })
    }

    fn start(plan: Plan) -> (String, u32) {
        match plan {
            Plan::Start { provider, count } => (provider.to_string(), count),
            Plan::Wait { until } => panic!("expected a start, got a wait until {until:?}"),
        }
    }

    fn wait(plan: Plan) -> Option<Instant> {
        match plan {
            Plan::Wait { until } => until,
            Plan::Start { provider, count } => panic!("expected a wait, got {count} to {provider}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_per_provider_bounds_lines_in_flight_across_routes() {
        let now = Instant::now();
        let mut p = pacing(4, None);
        let kimi: Arc<str> = Arc::from("kimi");
        assert_eq!(
            start(p.plan("a", &ready("kimi"), 100, now)),
            ("kimi".into(), 4)
        );
        p.started("a", &kimi, 3, now);
        assert_eq!(
            start(p.plan("b", &ready("kimi"), 100, now)),
            ("kimi".into(), 1)
        );
        p.started("b", &kimi, 1, now);
        assert_eq!(wait(p.plan("a", &ready("kimi"), 100, now)), None);
        p.ended("a", &kimi, Answer::Served, now, 0.5);
        assert_eq!(start(p.plan("a", &ready("kimi"), 100, now)).1, 1);
        // Fewer pending lines than free slots: only those.
        assert_eq!(start(p.plan("c", &ready("other"), 2, now)).1, 2);
        assert_eq!(wait(p.plan("c", &ready("other"), 0, now)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn lines_start_in_groups_while_others_are_in_flight() {
        let now = Instant::now();
        let mut p = pacing(16, None);
        let kimi: Arc<str> = Arc::from("kimi");
        assert_eq!(start(p.plan("r", &ready("kimi"), 100, now)).1, 16);
        p.started("r", &kimi, 16, now);
        for _ in 0..3 {
            p.ended("r", &kimi, Answer::Served, now, 0.5);
        }
        assert_eq!(
            wait(p.plan("r", &ready("kimi"), 100, now)),
            None,
            "3 free, groups of 4"
        );
        p.ended("r", &kimi, Answer::Served, now, 0.5);
        assert_eq!(start(p.plan("r", &ready("kimi"), 100, now)).1, 4);
        // The last few pending lines do not wait for a group.
        assert_eq!(start(p.plan("r", &ready("kimi"), 2, now)).1, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_spread_starts_over_the_minute() {
        let start_at = Instant::now();
        let mut p = pacing(100, Some(120));
        let kimi: Arc<str> = Arc::from("kimi");
        // Two a second: a burst of two, then one every half second.
        assert_eq!(start(p.plan("r", &ready("kimi"), 100, start_at)).1, 2);
        p.started("r", &kimi, 2, start_at);
        let next = wait(p.plan("r", &ready("kimi"), 100, start_at)).unwrap();
        assert_eq!(next - start_at, Duration::from_millis(500));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(start(p.plan("r", &ready("kimi"), 100, Instant::now())).1, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_provider_pauses_every_line_and_backs_off_until_an_answer() {
        let now = Instant::now();
        let mut p = pacing(8, None);
        let kimi: Arc<str> = Arc::from("kimi");
        p.started("r", &kimi, 3, now);
        p.ended("r", &kimi, Answer::RateLimited, now, 0.5);
        // The other two lines of the same burst do not step the pause up.
        p.ended("r", &kimi, Answer::RateLimited, now, 0.5);
        let until = wait(p.plan("r", &ready("kimi"), 10, now)).unwrap();
        assert_eq!(until - now, Duration::from_secs(1));
        // Every route to that provider waits, not only the one that was answered 429.
        assert_eq!(wait(p.plan("other", &ready("kimi"), 10, now)), Some(until));
        assert_eq!(
            start(p.plan("other", &ready("deepseek"), 10, now)).0,
            "deepseek"
        );

        tokio::time::advance(Duration::from_secs(1)).await;
        let later = Instant::now();
        p.started("r", &kimi, 1, later);
        p.ended("r", &kimi, Answer::RateLimited, later, 0.5);
        assert_eq!(
            wait(p.plan("r", &ready("kimi"), 10, later)).unwrap() - later,
            Duration::from_secs(2),
            "doubled"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let after = Instant::now();
        p.started("r", &kimi, 1, after);
        p.ended("r", &kimi, Answer::Served, after, 0.5);
        p.started("r", &kimi, 1, after);
        p.ended("r", &kimi, Answer::RateLimited, after, 0.5);
        assert_eq!(
            wait(p.plan("r", &ready("kimi"), 10, after)).unwrap() - after,
            Duration::from_secs(1),
            "an answer resets the backoff"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_whose_targets_all_wait_sends_nothing_and_says_until_when() {
        let now = Instant::now();
        let mut p = pacing(8, None);
        let cooled = now + Duration::from_secs(30);
        let waiting = Readiness {
            targets: vec![TargetReadiness {
                next_check_at: Some(cooled),
                ..target("kimi", TargetState::Waiting)
            }],
        };
        assert_eq!(wait(p.plan("r", &waiting, 10, now)), Some(cooled));

        // A provider in an outage incident: wait for the monitor, however long, with no trial.
        let outage = Readiness {
            targets: vec![
                TargetReadiness {
                    incident: true,
                    ..target("kimi", TargetState::Waiting)
                },
                target("deepseek", TargetState::Waiting),
            ],
        };
        for _ in 0..5 {
            assert_eq!(wait(p.plan("r", &outage, 10, now)), None);
            tokio::time::advance(Duration::from_secs(60)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn breakers_open_without_an_incident_get_one_trial_line_at_a_time_backing_off() {
        let now = Instant::now();
        let mut p = pacing(8, None);
        let failing = Readiness {
            targets: vec![
                target("kimi", TargetState::Waiting),
                target("deepseek", TargetState::Waiting),
            ],
        };
        let kimi: Arc<str> = Arc::from("kimi");
        assert_eq!(start(p.plan("r", &failing, 10, now)), ("kimi".into(), 1));
        p.started("r", &kimi, 1, now);
        assert_eq!(
            wait(p.plan("r", &failing, 10, now)),
            None,
            "one trial at a time"
        );
        p.ended("r", &kimi, Answer::Unavailable, now, 0.5);
        let due = wait(p.plan("r", &failing, 10, now)).unwrap();
        assert_eq!(due - now, Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(2)).await;
        let second = Instant::now();
        assert_eq!(start(p.plan("r", &failing, 10, second)).1, 1);
        p.started("r", &kimi, 1, second);
        p.ended("r", &kimi, Answer::Unavailable, second, 0.5);
        // The trial backoff doubles; the route's failure backoff is for ready routes only.
        let next = wait(p.plan("r", &failing, 10, second + Duration::from_secs(1))).unwrap();
        assert_eq!(next - second, Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_recovering_target_takes_one_line_until_it_answers() {
        let now = Instant::now();
        let mut p = pacing(8, None);
        let trial = Readiness {
            targets: vec![target("kimi", TargetState::Trial)],
        };
        let kimi: Arc<str> = Arc::from("kimi");
        assert_eq!(start(p.plan("r", &trial, 10, now)).1, 1);
        p.started("r", &kimi, 1, now);
        assert_eq!(wait(p.plan("r", &trial, 10, now)), None);
        p.ended("r", &kimi, Answer::Served, now, 0.5);
        assert_eq!(start(p.plan("r", &ready("kimi"), 10, now)).1, 8);
    }

    #[tokio::test(start_paused = true)]
    async fn provider_side_failures_on_a_ready_route_back_off_the_route() {
        let now = Instant::now();
        let mut p = pacing(8, None);
        let kimi: Arc<str> = Arc::from("kimi");
        p.started("r", &kimi, 2, now);
        p.ended("r", &kimi, Answer::Unavailable, now, 0.5);
        p.ended("r", &kimi, Answer::Unavailable, now, 0.5);
        assert_eq!(
            wait(p.plan("r", &ready("kimi"), 10, now)).unwrap() - now,
            Duration::from_secs(1)
        );
        // The provider is not paused for the route's sake: other routes to it go on.
        assert_eq!(start(p.plan("s", &ready("kimi"), 10, now)).1, 8);
        // A refusal (the request's fault) changes nothing.
        p.started("s", &kimi, 1, now);
        p.ended("s", &kimi, Answer::Refused, now, 0.5);
        assert_eq!(start(p.plan("s", &ready("kimi"), 10, now)).1, 8);
    }
}

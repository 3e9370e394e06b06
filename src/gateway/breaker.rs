//! The per-target circuit breaker: whether the gateway should send a live request to a target
//! now, and when its recovery should be tested. A target is a provider and the model sent to it;
//! route targets that forward the requested model share one breaker per provider (see `route`).
//!
//! Hand-written (a few dozen lines of rules) so that they are exactly the README's:
//! - A target starts **failing** when at least half of its last [`BreakerPolicy::window`]
//!   attempts failed on the provider's side (once [`BreakerPolicy::min_requests`] were seen), at
//!   once when one attempt **timed out** on its own deadline (a silent target costs a whole
//!   timeout per request, so one is evidence enough; a single fast 5xx is not), or when the
//!   monitor has an open outage incident for the provider.
//! - A failing target gets **no live request** (unless no target of the route is healthy, see
//!   [`Standing`]). Its recovery is tested off the request path: [`Breaker::claim_test`] says when
//!   a test is due (first after [`BreakerPolicy::trial_every`], then backing off to
//!   [`BreakerPolicy::test_every_max`]), the gateway runs it, and only [`Breaker::test_passed`]
//!   (or the monitor closing its incident) moves the target on.
//! - A target whose test passed is **recovering** (half-open): one live request every
//!   `trial_every` is its trial; a successful one closes the breaker, a failed one makes the
//!   target failing again (and the next test waits longer).
//! - A rate-limit or setup cool-down keeps the target out until it ends, tests included: the
//!   provider said when to come back.
//!
//! It owns no clock and does no I/O: callers pass `now` (tokio's `Instant`, so tests run on
//! paused time) and a random draw for jitter. The state sits behind a `std` mutex held for a few
//! instructions, never across an `.await`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;

/// When a breaker opens and how recovery is tested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Recent attempts considered (at most 64).
    pub window: u32,
    /// Fewer attempts than this never open the breaker on the ratio: two failures in two
    /// requests are noise.
    pub min_requests: u32,
    /// Share of failures in the window that opens it.
    pub failure_ratio: f64,
    /// The first recovery test is due this long after a target starts failing; while it is
    /// recovering, one live trial is let through this often.
    pub trial_every: Duration,
    /// Recovery tests that keep failing back off (doubling, jittered) up to this.
    pub test_every_max: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            // 20 attempts: enough for a ratio to mean something, short enough to react to an
            // outage within a second at a few dozen requests per second.
            window: 20,
            min_requests: 5,
            failure_ratio: 0.5,
            // 2 s: recovery is noticed within seconds of the first test.
            trial_every: Duration::from_secs(2),
            // 15 s: a hung target's test holds one connection for a whole first-token timeout,
            // so tests of a target that stays down end up about one timeout apart; a recovered
            // one is seen within ~15 s plus one test.
            test_every_max: Duration::from_secs(15),
        }
    }
}

/// What the breaker says about sending a live request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: send.
    Closed,
    /// Recovering (a recovery test passed): this request is the trial; its outcome decides.
    Trial,
    /// Failing, recovering with its trial taken, or cooling down: skip this target unless no
    /// target of the route is healthy.
    Rejected,
}

/// How good a target looks, best first: when no target of a route is healthy, live requests
/// try them in this order (route order among equals). A hung target comes last because trying
/// it costs a whole timeout; a fast-failing one costs milliseconds and may have recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Healthy,
    /// A recovery test passed; live trials decide.
    Recovering,
    /// Failing fast (failure ratio, or a monitor incident that is not a hang).
    Failing,
    /// A rate limit named a long wait, or the key or balance failed.
    CoolingDown,
    /// Timed out on its own deadline, or the monitor confirmed a hang (`timeout` incident).
    Hung,
}

/// How an attempt counts toward the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A correct answer: closes the breaker.
    Success,
    /// A fast provider-side failure (overloaded, unavailable, server error, malformed, network).
    Failure,
    /// The attempt's own deadline (connect, first token, whole answer) passed without an
    /// answer: the target is failing at once.
    TimedOut,
    /// Says nothing about the provider's health (rate limits, the caller's bad request, account
    /// problems, a deadline the client shortened).
    Neutral,
}

/// The monitor's open outage incident for a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenIncident {
    /// Store id (0 while not yet stored).
    pub id: i64,
    /// Its verdict is `timeout`: a confirmed hang.
    pub hung: bool,
}

/// Why a target is failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Failures,
    TimedOut,
    Incident(OpenIncident),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Closed,
    Failing {
        why: Why,
        next_test: Instant,
        /// A recovery test is in flight.
        testing: bool,
    },
    Recovering {
        next_trial: Instant,
    },
}

#[derive(Debug)]
struct State {
    /// Outcomes of recent attempts, newest in bit 0; a set bit is a failure.
    bits: u64,
    len: u32,
    mode: Mode,
    /// Failed recovery tests and relapses since the breaker was last closed: the backoff step.
    setbacks: u32,
    cool_until: Option<Instant>,
    /// The monitor's open incident, as last synced.
    incident: Option<i64>,
    /// An incident a passed test or a live success has overruled: it does not reopen the
    /// breaker.
    overruled: Option<i64>,
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    tests: Backoff,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(mut policy: BreakerPolicy) -> Breaker {
        policy.window = policy.window.clamp(1, 64);
        policy.trial_every = policy.trial_every.max(Duration::from_millis(1));
        policy.test_every_max = policy.test_every_max.max(policy.trial_every);
        Breaker {
            tests: Backoff::try_new(policy.trial_every, policy.test_every_max, 0.2)
                .expect("base is positive and at most max, jitter is constant"),
            policy,
            state: Mutex::new(State {
                bits: 0,
                len: 0,
                mode: Mode::Closed,
                setbacks: 0,
                cool_until: None,
                incident: None,
                overruled: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few assignments: a panic cannot leave it half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a live request may go to this target now. Admitting a trial uses it up.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.state();
        let admission = admission(&state, now);
        if admission == Admission::Trial {
            state.mode = Mode::Recovering {
                next_trial: now + self.policy.trial_every,
            };
        }
        admission
    }

    /// What [`Breaker::admit`] would answer now, without using up a trial.
    pub fn peek(&self, now: Instant) -> Admission {
        admission(&self.state(), now)
    }

    /// How good the target looks now (for ordering targets when none is healthy).
    pub fn standing(&self, now: Instant) -> Standing {
        let state = self.state();
        let by_mode = match state.mode {
            Mode::Closed => Standing::Healthy,
            Mode::Recovering { .. } => Standing::Recovering,
            Mode::Failing {
                why: Why::TimedOut | Why::Incident(OpenIncident { hung: true, .. }),
                ..
            } => Standing::Hung,
            Mode::Failing { .. } => Standing::Failing,
        };
        if cooling(&state, now) {
            by_mode.max(Standing::CoolingDown)
        } else {
            by_mode
        }
    }

    /// True unless closed (whatever the trial and test timing).
    pub fn is_open(&self) -> bool {
        self.state().mode != Mode::Closed
    }

    /// Records a live attempt's outcome.
    pub fn record(&self, now: Instant, outcome: Outcome) {
        let mut state = self.state();
        match outcome {
            Outcome::Neutral => {}
            Outcome::Success => {
                if state.mode != Mode::Closed {
                    state.overruled = state.incident;
                    state.bits = 0;
                    state.len = 0;
                    state.setbacks = 0;
                }
                state.mode = Mode::Closed;
                self.push(&mut state, false);
            }
            Outcome::Failure => {
                self.push(&mut state, true);
                match state.mode {
                    Mode::Closed if self.ratio_exceeded(&state) => {
                        self.fail(&mut state, now, Why::Failures);
                    }
                    Mode::Recovering { .. } => {
                        state.setbacks += 1;
                        self.fail(&mut state, now, Why::Failures);
                    }
                    // Failing: a live request only reaches it when no target was healthy.
                    _ => {}
                }
            }
            Outcome::TimedOut => {
                self.push(&mut state, true);
                match state.mode {
                    Mode::Closed => self.fail(&mut state, now, Why::TimedOut),
                    Mode::Recovering { .. } => {
                        state.setbacks += 1;
                        self.fail(&mut state, now, Why::TimedOut);
                    }
                    Mode::Failing {
                        why,
                        next_test,
                        testing,
                    } => {
                        state.mode = Mode::Failing {
                            why: hung(why),
                            next_test,
                            testing,
                        };
                    }
                }
            }
        }
    }

    /// True when a recovery test is due now; the caller must then run one and report it with
    /// [`Breaker::test_passed`] or [`Breaker::test_failed`]. At most one test is in flight.
    pub fn claim_test(&self, now: Instant) -> bool {
        let mut state = self.state();
        if cooling(&state, now) {
            return false;
        }
        match &mut state.mode {
            Mode::Failing {
                next_test, testing, ..
            } if !*testing && now >= *next_test => {
                *testing = true;
                true
            }
            _ => false,
        }
    }

    /// A recovery test answered in time: the target is recovering (live trials decide).
    pub fn test_passed(&self, now: Instant) {
        let mut state = self.state();
        if matches!(state.mode, Mode::Failing { .. }) {
            state.overruled = state.incident;
            state.mode = Mode::Recovering { next_trial: now };
        }
    }

    /// A recovery test failed (`timed_out`: it got no first token in time): the next one waits
    /// longer. `unit` is a random draw in `[0, 1)` for jitter.
    pub fn test_failed(&self, now: Instant, timed_out: bool, unit: f64) {
        let mut state = self.state();
        state.setbacks += 1;
        let wait = self.tests.delay(state.setbacks, unit);
        if let Mode::Failing {
            why,
            next_test,
            testing,
        } = &mut state.mode
        {
            *testing = false;
            *next_test = now + wait;
            if timed_out {
                *why = hung(*why);
            }
        }
    }

    /// Keeps the target out until `until` (a rate limit that named a long wait, a bad key).
    pub fn cool_down(&self, until: Instant) {
        let mut state = self.state();
        state.cool_until = Some(state.cool_until.map_or(until, |u| u.max(until)));
    }

    /// Follows the monitor: an open outage incident makes the target failing (first test after
    /// `trial_every`), unless a passed test or a live success already overruled it; the monitor
    /// closing an incident that made the target failing is a passed test (its probes answered),
    /// so the target is recovering.
    pub fn sync_incident(&self, now: Instant, incident: Option<OpenIncident>) {
        let mut state = self.state();
        state.incident = incident.map(|i| i.id);
        match incident {
            Some(open) if state.overruled != Some(open.id) => match &mut state.mode {
                Mode::Closed | Mode::Recovering { .. } => {
                    self.fail(&mut state, now, Why::Incident(open));
                }
                // A timeout seen live says more than the monitor's view: keep it.
                Mode::Failing { why, .. } if *why != Why::TimedOut => *why = Why::Incident(open),
                Mode::Failing { .. } => {}
            },
            Some(_) => {}
            None => {
                state.overruled = None;
                if let Mode::Failing {
                    why: Why::Incident(_),
                    ..
                } = state.mode
                {
                    state.mode = Mode::Recovering { next_trial: now };
                }
            }
        }
    }

    fn fail(&self, state: &mut State, now: Instant, why: Why) {
        // A relapse backs off like a failed test; a fresh failure is tested after `trial_every`.
        let wait = if state.setbacks == 0 {
            self.policy.trial_every
        } else {
            self.tests.delay(state.setbacks, 0.5)
        };
        state.mode = Mode::Failing {
            why,
            next_test: now + wait,
            testing: false,
        };
        // A fresh window after recovery: old failures must not reopen it.
        state.bits = 0;
        state.len = 0;
    }

    fn push(&self, state: &mut State, failed: bool) {
        state.bits = (state.bits << 1) | u64::from(failed);
        state.len = (state.len + 1).min(self.policy.window);
    }

    fn ratio_exceeded(&self, state: &State) -> bool {
        if state.len < self.policy.min_requests {
            return false;
        }
        let mask = if state.len >= 64 {
            u64::MAX
        } else {
            (1u64 << state.len) - 1
        };
        let failures = (state.bits & mask).count_ones();
        f64::from(failures) >= self.policy.failure_ratio * f64::from(state.len)
    }
}

fn cooling(state: &State, now: Instant) -> bool {
    state.cool_until.is_some_and(|until| now < until)
}

fn admission(state: &State, now: Instant) -> Admission {
    if cooling(state, now) {
        return Admission::Rejected;
    }
    match state.mode {
        Mode::Closed => Admission::Closed,
        Mode::Recovering { next_trial } if now >= next_trial => Admission::Trial,
        Mode::Recovering { .. } | Mode::Failing { .. } => Admission::Rejected,
    }
}

/// The same reason, now known to be a hang.
fn hung(why: Why) -> Why {
    match why {
        Why::Incident(open) => Why::Incident(OpenIncident { hung: true, ..open }),
        Why::Failures | Why::TimedOut => Why::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Admission::*;
    use Outcome::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerPolicy::default())
    }

    fn now() -> Instant {
        Instant::now()
    }

    async fn advance(secs: f64) {
        tokio::time::advance(Duration::from_secs_f64(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn failures_below_the_minimum_count_never_open_it() {
        let b = breaker();
        for _ in 0..4 {
            b.record(now(), Failure);
        }
        assert_eq!(b.admit(now()), Closed);
        b.record(now(), Failure);
        assert_eq!(b.admit(now()), Rejected);
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_table_decides_when_it_opens() {
        // (pattern of outcomes, open afterwards?) with min 5, ratio 0.5, window 20.
        let rows: [(&str, bool); 9] = [
            ("FFFFF", true),
            ("SSSSFFF", false),
            ("SSSSFFFF", true),
            ("SFSFSF", true),
            ("SSSSSSSSSSSSSSSSSSSF", false),
            ("NNNNNNNNFFFF", false),
            // The window slides: old successes stop diluting new failures.
            ("SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSFFFFFFFFF", false),
            ("SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSFFFFFFFFFF", true),
            // One timeout weighs what it costs: it is enough on its own.
            ("SSSSSSSSSST", true),
        ];
        for (pattern, open) in rows {
            let b = breaker();
            for c in pattern.chars() {
                let outcome = match c {
                    'F' => Failure,
                    'T' => TimedOut,
                    'S' => Success,
                    _ => Neutral,
                };
                b.record(now(), outcome);
            }
            assert_eq!(b.is_open(), open, "{pattern}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_fast_failure_does_not_eject_a_target_but_a_single_timeout_does() {
        let b = breaker();
        b.record(now(), Failure);
        assert_eq!(b.admit(now()), Closed);
        assert_eq!(b.standing(now()), Standing::Healthy);
        b.record(now(), TimedOut);
        assert_eq!(b.admit(now()), Rejected);
        assert_eq!(b.standing(now()), Standing::Hung);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_target_gets_no_live_trial_only_a_recovery_test_when_due() {
        let b = breaker();
        b.record(now(), TimedOut);
        assert!(!b.claim_test(now()), "not due yet");
        advance(1.999).await;
        assert!(!b.claim_test(now()));
        advance(0.001).await;
        // Live requests are never the trial, however long it has been failing.
        assert_eq!(b.peek(now()), Rejected);
        assert_eq!(b.admit(now()), Rejected);
        assert!(b.claim_test(now()));
        // One test at a time.
        assert!(!b.claim_test(now()));
        advance(60.0).await;
        assert!(!b.claim_test(now()), "the first test is still in flight");
        assert_eq!(b.admit(now()), Rejected);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_tests_back_off_up_to_the_maximum() {
        let b = breaker();
        b.record(now(), TimedOut);
        advance(2.0).await;
        // No jitter at unit 0.5: 4 s, 8 s, then the 15 s cap.
        for wait in [4.0, 8.0, 15.0, 15.0] {
            assert!(b.claim_test(now()));
            b.test_failed(now(), true, 0.5);
            advance(wait - 0.001).await;
            assert!(!b.claim_test(now()), "{wait}");
            advance(0.001).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_test_admits_one_live_trial_at_a_time_and_a_live_success_closes_it() {
        let b = breaker();
        b.record(now(), TimedOut);
        advance(2.0).await;
        assert!(b.claim_test(now()));
        b.test_passed(now());
        assert_eq!(b.standing(now()), Standing::Recovering);
        assert_eq!(b.peek(now()), Trial);
        assert_eq!(b.admit(now()), Trial);
        // Gradually: the next trial only after `trial_every`.
        assert_eq!(b.admit(now()), Rejected);
        advance(2.0).await;
        assert_eq!(b.admit(now()), Trial);
        b.record(now(), Success);
        assert_eq!(b.admit(now()), Closed);
        // The old failures are gone: one fast failure does not reopen it.
        b.record(now(), Failure);
        assert_eq!(b.admit(now()), Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_live_trial_makes_it_failing_again_and_the_next_test_waits_longer() {
        let b = breaker();
        b.record(now(), TimedOut);
        advance(2.0).await;
        assert!(b.claim_test(now()));
        b.test_passed(now());
        assert_eq!(b.admit(now()), Trial);
        b.record(now(), Failure);
        assert_eq!(b.admit(now()), Rejected);
        assert_eq!(b.standing(now()), Standing::Failing);
        advance(2.0).await;
        assert!(!b.claim_test(now()), "a relapse backs off");
        advance(2.0).await;
        assert!(b.claim_test(now()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_outage_incident_makes_it_failing_and_a_passed_test_overrules_the_incident() {
        let b = breaker();
        let incident = |id| Some(OpenIncident { id, hung: false });
        b.sync_incident(now(), incident(7));
        assert_eq!(b.admit(now()), Rejected);
        advance(2.0).await;
        assert_eq!(b.admit(now()), Rejected, "no live trial");
        assert!(b.claim_test(now()));
        b.test_passed(now());
        assert_eq!(b.admit(now()), Trial);
        b.record(now(), Success);
        // The monitor still reports incident 7, but the gateway has proved recovery.
        b.sync_incident(now(), incident(7));
        assert_eq!(b.admit(now()), Closed);
        // A new incident makes it failing again; a hang ranks last.
        b.sync_incident(now(), Some(OpenIncident { id: 8, hung: true }));
        assert_eq!(b.admit(now()), Rejected);
        assert_eq!(b.standing(now()), Standing::Hung);
        // The monitor closes its incident: its probes passed, so the target is recovering.
        b.sync_incident(now(), None);
        assert_eq!(b.admit(now()), Trial);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cool_down_rejects_live_requests_and_tests_until_it_ends() {
        let b = breaker();
        b.cool_down(now() + Duration::from_secs(30));
        assert_eq!(b.admit(now()), Rejected);
        assert_eq!(b.standing(now()), Standing::CoolingDown);
        advance(29.0).await;
        assert_eq!(b.admit(now()), Rejected);
        advance(1.0).await;
        assert_eq!(b.admit(now()), Closed);

        b.record(now(), TimedOut);
        b.cool_down(now() + Duration::from_secs(30));
        advance(2.0).await;
        assert!(!b.claim_test(now()), "no test while cooling down");
        assert_eq!(b.standing(now()), Standing::Hung, "the worse of the two");
    }

    #[test]
    fn standings_order_from_best_to_worst() {
        let mut all = [
            Standing::Hung,
            Standing::Failing,
            Standing::Healthy,
            Standing::CoolingDown,
            Standing::Recovering,
        ];
        all.sort();
        assert_eq!(
            all,
            [
                Standing::Healthy,
                Standing::Recovering,
                Standing::Failing,
                Standing::CoolingDown,
                Standing::Hung
            ]
        );
    }

    /// Property: whatever the sequence of live outcomes, fast failures open the breaker only
    /// after at least `min_requests` counted outcomes, a timeout always leaves it open, and a
    /// success always leaves it closed.
    #[tokio::test(start_paused = true)]
    async fn property_success_closes_timeout_opens_and_minimum_holds_for_any_sequence() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let b = breaker();
            let mut counted = 0u32;
            let mut timed_out = false;
            for _ in 0..40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let outcome = [Success, Failure, Neutral, TimedOut][(seed % 4) as usize];
                b.record(now(), outcome);
                match outcome {
                    Success => {
                        counted += 1;
                        timed_out = false;
                        assert!(!b.is_open());
                    }
                    Failure => counted += 1,
                    TimedOut => {
                        timed_out = true;
                        assert!(b.is_open());
                    }
                    Neutral => {}
                }
                if b.is_open() && !timed_out {
                    assert!(counted >= 5);
                }
            }
        }
    }
}

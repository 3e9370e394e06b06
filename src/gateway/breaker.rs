//! The per-target circuit breaker: whether the gateway should send a request to a target now.
//! A target is a provider and the model sent to it; route targets that forward the requested
//! model share one breaker per provider (see `route`).
//!
//! Hand-written (a few dozen lines) so that its rules are exactly DESIGN.md's:
//! - it opens on a failure ratio over the last [`BreakerPolicy::window`] attempts, once at least
//!   [`BreakerPolicy::min_requests`] attempts were seen, or when the monitor has an open outage
//!   incident for the provider;
//! - while open it admits one trial request every [`BreakerPolicy::trial_every`], so recovery is
//!   seen within seconds, and one successful live request closes it at once;
//! - a rate-limit cool-down (a long `Retry-After`) keeps the target out until it ends, trials
//!   included: the provider said when to come back.
//!
//! It owns no clock and does no I/O: callers pass `now` (tokio's `Instant`, so tests run on
//! paused time). The state sits behind a `std` mutex held for a few instructions, never across
//! an `.await`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When a breaker opens and how it probes for recovery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Recent attempts considered (at most 64).
    pub window: u32,
    /// Fewer attempts than this never open the breaker: two failures in two requests are noise.
    pub min_requests: u32,
    /// Share of failures in the window that opens it.
    pub failure_ratio: f64,
    /// While open, one trial request is let through this often.
    pub trial_every: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            // 20 attempts: enough for a ratio to mean something, short enough to react to an
            // outage within a second at a few dozen requests per second.
            window: 20,
            min_requests: 5,
            failure_ratio: 0.5,
            // 2 s: recovery is noticed "within seconds", while a dead target costs at most one
            // slow attempt every two seconds.
            trial_every: Duration::from_secs(2),
        }
    }
}

/// What the breaker says about sending a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: send.
    Closed,
    /// Open, but this request is the trial: send, and its outcome decides.
    Trial,
    /// Open (or cooling down): skip this target unless every target says so.
    Rejected,
}

/// How an attempt counts toward the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A correct answer: closes an open breaker.
    Success,
    /// A provider-side failure (overloaded, unavailable, server error, malformed, timeout,
    /// network).
    Failure,
    /// Says nothing about the provider's health (rate limits, the caller's bad request, account
    /// problems).
    Neutral,
}

/// Why a breaker is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    Failures,
    /// The monitor's open outage incident (its id; 0 while not yet stored).
    Incident(i64),
}

#[derive(Debug, Clone, Copy)]
struct Open {
    why: Opened,
    next_trial: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Outcomes of recent attempts, newest in bit 0; a set bit is a failure.
    bits: u64,
    len: u32,
    open: Option<Open>,
    cool_until: Option<Instant>,
    /// An incident a live success has overruled: it does not reopen the breaker.
    overruled: Option<i64>,
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(mut policy: BreakerPolicy) -> Breaker {
        policy.window = policy.window.clamp(1, 64);
        Breaker {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few assignments: a panic cannot leave it half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request may go to this target now. Admitting a trial uses it up.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.state();
        if state.cool_until.is_some_and(|until| now < until) {
            return Admission::Rejected;
        }
        match &mut state.open {
            None => Admission::Closed,
            Some(open) if now >= open.next_trial => {
                open.next_trial = now + self.policy.trial_every;
                Admission::Trial
            }
            Some(_) => Admission::Rejected,
        }
    }

    /// What [`Breaker::admit`] would answer now, without using up a trial.
    pub fn peek(&self, now: Instant) -> Admission {
        let state = self.state();
        if state.cool_until.is_some_and(|until| now < until) {
            return Admission::Rejected;
        }
        match &state.open {
            None => Admission::Closed,
            Some(open) if now >= open.next_trial => Admission::Trial,
            Some(_) => Admission::Rejected,
        }
    }

    /// True when the breaker is open (whatever the trial timing).
    pub fn is_open(&self) -> bool {
        self.state().open.is_some()
    }

    /// Records an attempt's outcome.
    pub fn record(&self, now: Instant, outcome: Outcome) {
        let mut state = self.state();
        match outcome {
            Outcome::Neutral => {}
            Outcome::Success => {
                if let Some(Open {
                    why: Opened::Incident(id),
                    ..
                }) = state.open
                {
                    state.overruled = Some(id);
                }
                state.open = None;
                state.bits <<= 1;
                state.len = (state.len + 1).min(self.policy.window);
            }
            Outcome::Failure => {
                state.bits = (state.bits << 1) | 1;
                state.len = (state.len + 1).min(self.policy.window);
                let trial_every = self.policy.trial_every;
                let exceeded = self.ratio_exceeded(&state);
                match &mut state.open {
                    // A failed trial: wait for the next one.
                    Some(open) => open.next_trial = now + trial_every,
                    None if exceeded => {
                        state.open = Some(Open {
                            why: Opened::Failures,
                            next_trial: now + trial_every,
                        });
                        // A fresh window after recovery: old failures must not reopen it.
                        state.bits = 0;
                        state.len = 0;
                    }
                    None => {}
                }
            }
        }
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

    /// Keeps the target out until `until` (a rate limit that named a long wait).
    pub fn cool_down(&self, until: Instant) {
        let mut state = self.state();
        state.cool_until = Some(state.cool_until.map_or(until, |u| u.max(until)));
    }

    /// Follows the monitor: an open outage incident opens the breaker (first trial after
    /// `trial_every`), unless a live success already overruled that incident; a closed one
    /// closes a breaker it had opened.
    pub fn sync_incident(&self, now: Instant, incident: Option<i64>) {
        let mut state = self.state();
        match incident {
            Some(id) if state.overruled != Some(id) => {
                if state.open.is_none() {
                    state.open = Some(Open {
                        why: Opened::Incident(id),
                        next_trial: now + self.policy.trial_every,
                    });
                }
            }
            Some(_) => {}
            None => {
                state.overruled = None;
                if matches!(
                    state.open,
                    Some(Open {
                        why: Opened::Incident(_),
                        ..
                    })
                ) {
                    state.open = None;
                }
            }
        }
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

    #[tokio::test(start_paused = true)]
    async fn failures_below_the_minimum_count_never_open_it() {
        let b = breaker();
        for _ in 0..4 {
            b.record(Instant::now(), Failure);
        }
        assert_eq!(b.admit(Instant::now()), Closed);
        b.record(Instant::now(), Failure);
        assert_eq!(b.admit(Instant::now()), Rejected);
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_table_decides_when_it_opens() {
        // (pattern of outcomes, open afterwards?) with min 5, ratio 0.5, window 20.
        let rows: [(&str, bool); 8] = [
            ("FFFFF", true),
            ("SSSSFFF", false),
            ("SSSSFFFF", true),
            ("SFSFSF", true),
            ("SSSSSSSSSSSSSSSSSSSF", false),
            ("NNNNNNNNFFFF", false),
            // The window slides: old successes stop diluting new failures.
            ("SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSFFFFFFFFF", false),
            ("SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSFFFFFFFFFF", true),
        ];
        for (pattern, open) in rows {
            let b = breaker();
            for c in pattern.chars() {
                let outcome = match c {
                    'F' => Failure,
                    'S' => Success,
                    _ => Neutral,
                };
                b.record(Instant::now(), outcome);
            }
            assert_eq!(b.is_open(), open, "{pattern}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_breaker_admits_one_trial_every_few_seconds() {
        let b = breaker();
        for _ in 0..5 {
            b.record(Instant::now(), Failure);
        }
        assert_eq!(b.admit(Instant::now()), Rejected);
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert_eq!(b.admit(Instant::now()), Rejected);
        tokio::time::advance(Duration::from_millis(1)).await;
        // Peeking does not use the trial up.
        assert_eq!(b.peek(Instant::now()), Trial);
        assert_eq!(b.admit(Instant::now()), Trial);
        // Only one trial per period, even while the first is in flight.
        assert_eq!(b.admit(Instant::now()), Rejected);
        b.record(Instant::now(), Failure);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(b.admit(Instant::now()), Trial);
    }

    #[tokio::test(start_paused = true)]
    async fn one_successful_request_closes_it_at_once() {
        let b = breaker();
        for _ in 0..5 {
            b.record(Instant::now(), Failure);
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(b.admit(Instant::now()), Trial);
        b.record(Instant::now(), Success);
        assert_eq!(b.admit(Instant::now()), Closed);
        // The old failures are gone: one more failure does not reopen it.
        b.record(Instant::now(), Failure);
        assert_eq!(b.admit(Instant::now()), Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_outage_incident_opens_it_and_a_live_success_overrules_the_incident() {
        let b = breaker();
        b.sync_incident(Instant::now(), Some(7));
        assert_eq!(b.admit(Instant::now()), Rejected);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(b.admit(Instant::now()), Trial);
        b.record(Instant::now(), Success);
        // The monitor still reports incident 7, but live traffic has proved recovery.
        b.sync_incident(Instant::now(), Some(7));
        assert_eq!(b.admit(Instant::now()), Closed);
        // A new incident opens it again.
        b.sync_incident(Instant::now(), Some(8));
        assert_eq!(b.admit(Instant::now()), Rejected);
        // The monitor closes its incident: the breaker it opened closes too.
        b.sync_incident(Instant::now(), None);
        assert_eq!(b.admit(Instant::now()), Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cool_down_rejects_even_trials_until_it_ends() {
        let b = breaker();
        b.cool_down(Instant::now() + Duration::from_secs(30));
        assert_eq!(b.admit(Instant::now()), Rejected);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(b.admit(Instant::now()), Rejected);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.admit(Instant::now()), Closed);
    }

    /// Property: whatever the sequence, the breaker is open only after at least
    /// `min_requests` counted outcomes, and a success always leaves it closed.
    #[tokio::test(start_paused = true)]
    async fn property_success_closes_and_minimum_holds_for_any_sequence() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let b = breaker();
            let mut counted = 0u32;
            for _ in 0..40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let outcome = [Success, Failure, Neutral][(seed % 3) as usize];
                b.record(Instant::now(), outcome);
                if outcome != Neutral {
                    counted += 1;
                }
                if outcome == Success {
                    assert!(!b.is_open());
                }
                if b.is_open() {
                    assert!(counted >= 5);
                }
            }
        }
    }
}

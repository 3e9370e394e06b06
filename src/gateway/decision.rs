//! The gateway decision table (the README's "How it decides" table): what to do after a failed
//! attempt, given its verdict.
//!
//! One pure function, [`decide`], and its table test. It does no I/O and keeps no state: the
//! caller says how often the same target was already retried, how much of the request's budget
//! is left and which random draw to use for jitter. Staying on the requested provider matters to
//! agents, so a short announced wait beats a switch; a long or silent one never does.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::verdict::Verdict;

/// Retries on the same target after a rate limit (with or without `Retry-After`) before the
/// next target is tried (the README's decision table: "two retries").
pub const MAX_RATE_LIMIT_RETRIES: u32 = 2;

/// A failed attempt as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failed {
    pub verdict: Verdict,
    /// What the provider asked us to wait (`Retry-After` and relatives), if anything.
    pub retry_after: Option<Duration>,
    /// Nothing of an answer arrived (no status line): a retry cannot duplicate work.
    pub before_any_byte: bool,
    /// The route's request lint flags this request: a 500 is then more likely the request's
    /// fault than the provider's, so it is not retried on the same target.
    pub request_flagged: bool,
}

/// Where the request stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Retries already made on this target for this request.
    pub same_target_retries: u32,
    /// Time left before the request's overall deadline.
    pub remaining: Duration,
}

/// The gateway's knobs for decisions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Longest announced wait worth spending on the same target.
    pub max_retry_wait: Duration,
    /// Rate limit without `Retry-After`: ≈0.5 s, 1 s.
    pub rate_limit_backoff: Backoff,
    /// Server error, or network failure before any byte: ≈250 ms.
    pub quick_retry: Backoff,
}

impl Policy {
    pub fn new(max_retry_wait: Duration) -> Policy {
        Policy {
            max_retry_wait,
            rate_limit_backoff: Backoff::try_new(
                Duration::from_millis(500),
                Duration::from_secs(8),
                0.2,
            )
            .expect("constant backoff settings are valid"),
            quick_retry: Backoff::try_new(
                Duration::from_millis(250),
                Duration::from_millis(250),
                0.2,
            )
            .expect("constant backoff settings are valid"),
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Wait, then try the same target again.
    RetrySame { wait: Duration },
    /// Try the next target now. `cool_down`: keep this one out that long (a long Retry-After).
    /// `setup_problem`: the failure is the account's or the config's (worth an alert).
    Next {
        cool_down: Option<Duration>,
        setup_problem: bool,
    },
    /// Try the next target whose context window is larger than this one's.
    NextLargerWindow,
    /// Return the provider's answer to the caller unchanged: the caller's request is at fault.
    ReturnToCaller,
}

const NEXT: Action = Action::Next {
    cool_down: None,
    setup_problem: false,
};

/// The decision table. `unit` is a random draw in `[0, 1)` for jitter.
pub fn decide(failed: Failed, progress: Progress, policy: &Policy, unit: f64) -> Action {
    let retries = progress.same_target_retries;
    // A wait is only worth it when the retry still has time to answer after it.
    let fits = |wait: Duration| wait < progress.remaining;
    match failed.verdict {
        Verdict::RateLimited => match failed.retry_after {
            Some(wait) if wait > policy.max_retry_wait => Action::Next {
                cool_down: Some(wait),
                setup_problem: false,
            },
            Some(wait) if retries < MAX_RATE_LIMIT_RETRIES && fits(wait) => {
                Action::RetrySame { wait }
            }
            Some(_) => NEXT,
            None if retries < MAX_RATE_LIMIT_RETRIES => {
                let wait = policy.rate_limit_backoff.delay(retries, unit);
                if fits(wait) {
                    Action::RetrySame { wait }
                } else {
                    NEXT
                }
            }
            None => NEXT,
        },
        // A 500 to a request the lint flags would come again: another provider may take it.
        Verdict::ServerError if failed.request_flagged => NEXT,
        // A 500 is a complete answer (nothing was generated); a network failure is only safe
        // to repeat when no answer had started.
        Verdict::ServerError | Verdict::Network
            if retries == 0 && (failed.verdict == Verdict::ServerError || failed.before_any_byte) =>
        {
            let wait = policy.quick_retry.delay(0, unit);
            if fits(wait) {
                Action::RetrySame { wait }
            } else {
                NEXT
            }
        }
        Verdict::ServerError
        | Verdict::Network
        | Verdict::Overloaded
        | Verdict::Unavailable
        | Verdict::Malformed
        // A silent target is never retried for the same request.
        | Verdict::Timeout => NEXT,
        Verdict::ContextTooLong => Action::NextLargerWindow,
        Verdict::AuthFailed | Verdict::QuotaExhausted | Verdict::ModelNotFound => Action::Next {
            cool_down: None,
            setup_problem: true,
        },
        Verdict::BadRequest | Verdict::ContentFiltered => Action::ReturnToCaller,
        // Healthy answers are served, never decided on; returning them is the only sane reading.
        Verdict::Up | Verdict::Degraded => Action::ReturnToCaller,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn failed(verdict: Verdict, retry_after: Option<f64>, before_any_byte: bool) -> Failed {
        Failed {
            verdict,
            retry_after: retry_after.map(s),
            before_any_byte,
            request_flagged: false,
        }
    }

    fn flagged(verdict: Verdict) -> Failed {
        Failed {
            request_flagged: true,
            ..failed(verdict, None, false)
        }
    }

    fn progress(retries: u32, remaining: f64) -> Progress {
        Progress {
            same_target_retries: retries,
            remaining: s(remaining),
        }
    }

    /// One row per line of the README's decision table (and its edges). Jitter draw 0.5 = no spread.
    #[test]
    fn decision_table() {
        use Verdict::*;
        let policy = Policy::new(s(10.0));
        let next = NEXT;
        let setup = Action::Next {
            cool_down: None,
            setup_problem: true,
        };
        let wait = |secs: f64| Action::RetrySame { wait: s(secs) };
        let rows: Vec<(Failed, Progress, Action)> = vec![
            // rate_limited with a short Retry-After: wait and retry the same target.
            (
                failed(RateLimited, Some(2.0), false),
                progress(0, 300.0),
                wait(2.0),
            ),
            (
                failed(RateLimited, Some(2.0), false),
                progress(1, 300.0),
                wait(2.0),
            ),
            (
                failed(RateLimited, Some(10.0), false),
                progress(0, 300.0),
                wait(10.0),
            ),
            // ... but not a third time, and not past the budget.
            (
                failed(RateLimited, Some(2.0), false),
                progress(2, 300.0),
                next,
            ),
            (
                failed(RateLimited, Some(2.0), false),
                progress(0, 1.5),
                next,
            ),
            // A longer Retry-After: next target now, and cool this one down that long.
            (
                failed(RateLimited, Some(30.0), false),
                progress(0, 300.0),
                Action::Next {
                    cool_down: Some(s(30.0)),
                    setup_problem: false,
                },
            ),
            // No Retry-After: ≈0.5 s, then ≈1 s, then the next target.
            (
                failed(RateLimited, None, false),
                progress(0, 300.0),
                wait(0.5),
            ),
            (
                failed(RateLimited, None, false),
                progress(1, 300.0),
                wait(1.0),
            ),
            (failed(RateLimited, None, false), progress(2, 300.0), next),
            // server_error / network before any byte: one quick retry, then next.
            (
                failed(ServerError, None, true),
                progress(0, 300.0),
                wait(0.25),
            ),
            (
                failed(ServerError, None, false),
                progress(0, 300.0),
                wait(0.25),
            ),
            (failed(ServerError, None, true), progress(1, 300.0), next),
            (failed(Network, None, true), progress(0, 300.0), wait(0.25)),
            (failed(Network, None, false), progress(0, 300.0), next),
            (failed(ServerError, None, true), progress(0, 0.2), next),
            // A 500 to a request the route's lint flags: no retry here, another target may take it.
            (flagged(ServerError), progress(0, 300.0), next),
            // The flag changes nothing else: a flagged request's rate limit still waits.
            (
                Failed {
                    retry_after: Some(s(2.0)),
                    ..flagged(RateLimited)
                },
                progress(0, 300.0),
                wait(2.0),
            ),
            // overloaded, unavailable, malformed: next at once.
            (
                failed(Overloaded, Some(1.0), false),
                progress(0, 300.0),
                next,
            ),
            (failed(Unavailable, None, false), progress(0, 300.0), next),
            (failed(Malformed, None, false), progress(0, 300.0), next),
            // timeout: never retry a silent target.
            (failed(Timeout, None, true), progress(0, 300.0), next),
            // context_too_long: a target with a larger window.
            (
                failed(ContextTooLong, None, false),
                progress(0, 300.0),
                Action::NextLargerWindow,
            ),
            // account and config problems: next target, and say it is a setup problem.
            (failed(AuthFailed, None, false), progress(0, 300.0), setup),
            (
                failed(QuotaExhausted, None, false),
                progress(0, 300.0),
                setup,
            ),
            (
                failed(ModelNotFound, None, false),
                progress(0, 300.0),
                setup,
            ),
            // the caller's own bad request: back to the caller, unchanged.
            (
                failed(BadRequest, None, false),
                progress(0, 300.0),
                Action::ReturnToCaller,
            ),
            (
                failed(ContentFiltered, None, false),
                progress(0, 300.0),
                Action::ReturnToCaller,
            ),
        ];
        for (failed, progress, want) in rows {
            assert_eq!(
                decide(failed, progress, &policy, 0.5),
                want,
                "{failed:?} {progress:?}"
            );
        }
    }

    #[test]
    fn jittered_waits_stay_near_their_nominal_value() {
        let policy = Policy::new(s(10.0));
        for unit in [0.0, 0.3, 0.999] {
            let Action::RetrySame { wait } = decide(
                failed(Verdict::ServerError, None, true),
                progress(0, 300.0),
                &policy,
                unit,
            ) else {
                panic!("expected a retry");
            };
            assert!(wait >= s(0.2) && wait <= s(0.3), "{wait:?}");
        }
    }
}

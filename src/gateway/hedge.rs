//! Opt-in hedging of non-streaming requests (`[[routes]] hedge_after`): when a target has not
//! answered after the hedge delay — its recent p95 time to answer plus a margin, or a fixed
//! delay — the same request also goes to the next healthy target of the route; the first
//! complete answer is served and the other attempt is cancelled (its connection dropped).
//!
//! The cost is the point of the opt-in: a hedged request may be paid twice, since a provider
//! usually bills what it generated before the cancel. Streams are never hedged (the first-token
//! timeout already bounds what a hang costs them), nor are same-target retries.
//!
//! A hedged-away attempt counts neither as a success nor as a failure of its target; a hedge
//! attempt that fails is recorded like any attempt. No I/O of its own: it races two
//! `upstream` attempts.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::breaker::Admission;
use super::settings::HedgeAfter;
use super::upstream::{Attempt, Served};
use super::{Inner, Run, Started, Tried};

/// When and where to hedge one attempt.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// Route position of the target that gets the copy.
    partner: usize,
    delay: Duration,
}

/// How a hedged attempt ended.
pub(super) enum Raced {
    /// The first target's own attempt, to be handled as usual (the hedge was not sent, was
    /// cancelled, or failed — then it is recorded).
    Primary(Attempt),
    /// The hedge answered first.
    HedgeWon {
        partner: (usize, Started),
        served: Served,
    },
}

impl Inner {
    /// The hedge of the first attempt on the target at `position`, if the route asks for one
    /// and it can happen before the deadline.
    pub(super) fn hedge_plan(&self, run: &Run<'_>, position: usize, now: Instant) -> Option<Plan> {
        if run.stream {
            return None;
        }
        let targets = &run.route.targets;
        let delay = match run.route.hedge_after? {
            HedgeAfter::Fixed(delay) => delay,
            HedgeAfter::P95Plus(margin) => {
                targets[position].state.answers.p95()?.checked_add(margin)?
            }
        };
        // Checked: a delay past any representable instant is no hedge, never a panic.
        if now.checked_add(delay)? >= run.deadline {
            return None;
        }
        let partner = (position + 1..targets.len().min(64)).find(|&i| {
            let target = &targets[i];
            !run.is_done(i)
                && run.window_fits(&self.upstreams[target.upstream])
                && target.state.breaker.peek(now) != Admission::Rejected
        })?;
        Some(Plan { partner, delay })
    }

    /// The attempt on the target at `position`, hedged as `plan` says.
    pub(super) async fn race(
        &self,
        run: &mut Run<'_>,
        position: usize,
        body: Bytes,
        plan: Plan,
        now: Instant,
    ) -> Raced {
        let route = run.route;
        let up = &self.upstreams[route.targets[position].upstream];
        let primary = up.attempt(&self.client, body, false, &self.timeouts, now, run.deadline);
        tokio::pin!(primary);
        tokio::select! {
            attempt = &mut primary => return Raced::Primary(attempt),
            () = tokio::time::sleep(plan.delay) => {}
        }
        let partner = &route.targets[plan.partner];
        if partner.state.breaker.admit(Instant::now()) == Admission::Rejected {
            return Raced::Primary(primary.await);
        }
        route.targets[position].state.hedged();
        let partner_up = &self.upstreams[partner.upstream];
        let partner_body = partner_up.body_of(
            &run.request,
            partner.model_for(&run.request.model),
            &partner.params,
        );
        run.attempts += 1;
        run.mark_done(plan.partner);
        let started = Started {
            at: Instant::now(),
            attempts: run.attempts,
        };
        tracing::debug!(
            provider = %up.id,
            hedge = %partner_up.id,
            delay = ?plan.delay,
            "gateway: no answer yet, hedging to the next target"
        );
        let hedge = partner_up.attempt(
            &self.client,
            partner_body,
            false,
            &self.timeouts,
            started.at,
            run.deadline,
        );
        tokio::pin!(hedge);
        let hedge_failed = |run: &mut Run<'_>, attempt: Attempt| {
            if let Attempt::Failed(failure) = attempt {
                self.observe(partner, &failure, started.at, started.attempts);
                run.tried.push(Tried {
                    upstream: partner.upstream,
                    diagnosis: failure.diagnosis,
                });
            }
        };
        // Dropping the losing future cancels its request.
        tokio::select! {
            attempt = &mut primary => match attempt {
                Attempt::Failed(failure) => match hedge.await {
                    Attempt::Served(served) => {
                        self.observe(&route.targets[position], &failure, now, run.attempts);
                        run.tried.push(Tried {
                            upstream: route.targets[position].upstream,
                            diagnosis: failure.diagnosis,
                        });
                        Raced::HedgeWon { partner: (plan.partner, started), served }
                    }
                    lost => {
                        hedge_failed(run, lost);
                        Raced::Primary(Attempt::Failed(failure))
                    }
                },
                served => Raced::Primary(served),
            },
            attempt = &mut hedge => match attempt {
                Attempt::Served(served) => Raced::HedgeWon { partner: (plan.partner, started), served },
                lost => {
                    hedge_failed(run, lost);
                    Raced::Primary(primary.await)
                }
            },
        }
    }
}

//! Delivery from the persisted outbox: one worker per channel sends that channel's queued
//! messages in order, retries with backoff when the receiver fails, and marks each delivered.
//!
//! A message is in the store before any attempt (the rules commit it), and is marked delivered
//! only after the receiver took it, so a crash at any point resends at most the one message in
//! flight — which receivers deduplicate (PagerDuty and Opsgenie by dedup key, mail by
//! Message-ID). Workers never wait on each other: a channel that keeps failing backs off on its
//! own and shows up in [`AlertHealth`] (read by `/healthz`) and the metrics, while the others
//! deliver. Within a channel, order is kept: a resolve never overtakes its open.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};

use super::channel::Channel;
use super::policy::AlertPolicy;
use super::{AlertMessage, DeliveryError};
use crate::backoff::Backoff;
use crate::metrics::Metrics;
use crate::peers::{self, Duty, Held};
use crate::store::{AttemptFailure, OutboxEntry, Store, StoreError};
use crate::time::{Clock, Millis};

/// Entries read per round: enough to drain a burst quickly, small enough to stay responsive.
const BATCH: u32 = 32;
/// 60 s: a single attempt that takes longer is treated as a failed, retryable one.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// 5 s: how long a worker waits before reading the store again after a store error.
const STORE_RETRY: Duration = Duration::from_secs(5);
/// A channel is reported failing after this many failed attempts in a row.
const FAILING_AFTER: u32 = 3;

/// How one channel is doing, for `/healthz`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelStatus {
    pub kind: String,
    /// `ok`, `failing`, or `idle` (nothing sent yet).
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<Millis>,
    pub given_up: u64,
}

/// Every channel's status, shared with the web layer.
#[derive(Debug, Clone, Default)]
pub struct AlertHealth(Arc<RwLock<BTreeMap<String, ChannelStatus>>>);

impl AlertHealth {
    pub fn snapshot(&self) -> BTreeMap<String, ChannelStatus> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts over with `channels` (on start and on reload).
    pub fn reset(&self, channels: &[(String, &'static str)]) {
        let mut map = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.clear();
        for (name, kind) in channels {
            map.insert(
                name.clone(),
                ChannelStatus {
                    kind: (*kind).to_owned(),
                    state: "idle",
                    ..ChannelStatus::default()
                },
            );
        }
    }

    fn update(&self, channel: &str, f: impl FnOnce(&mut ChannelStatus)) {
        let mut map = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(channel.to_owned()).or_default());
    }

    /// Channels reported failing.
    pub fn failing(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter(|(_, s)| s.state == "failing")
            .map(|(name, _)| name)
            .collect()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub channel: String,
    /// `delivered`, `retry`, `given_up`.
    pub outcome: String,
}

/// The alert families in the process registry. Create once per process (registration is
/// permanent); reloads reuse them.
#[derive(Clone, Debug)]
pub struct AlertMetrics {
    pub attempts: Family<OutcomeLabels, Counter>,
    pub failing: Family<ChannelLabels, Gauge>,
    pub pending: Family<ChannelLabels, Gauge>,
}

impl AlertMetrics {
    pub fn register(metrics: &Metrics) -> AlertMetrics {
        let m = AlertMetrics {
            attempts: Family::default(),
            failing: Family::default(),
            pending: Family::default(),
        };
        metrics.register(
            "alert_attempts",
            "Alert delivery attempts, by channel and outcome",
            m.attempts.clone(),
        );
        metrics.register(
            "alert_channel_failing",
            "1 while a channel's last attempts failed",
            m.failing.clone(),
        );
        metrics.register(
            "alert_outbox_pending",
            "Alerts queued and not yet delivered, by channel",
            m.pending.clone(),
        );
        m
    }
}

/// One channel's worker.
pub struct Delivery {
    pub store: Arc<dyn Store>,
    pub channel: Arc<Channel>,
    pub policy: AlertPolicy,
    pub clock: Clock,
    pub health: AlertHealth,
    pub metrics: AlertMetrics,
    /// Signalled when new entries are committed.
    pub wake: Arc<Notify>,
    /// Told of every message a receiver accepted (the demo narrates them; nobody has to listen).
    pub delivered: broadcast::Sender<Delivered>,
    /// Deliveries run only while this instance holds the alerts lease.
    pub held: watch::Receiver<Held>,
}

/// A message its channel's receiver accepted.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub channel: String,
    pub message: AlertMessage,
}

enum Attempt {
    Delivered(Box<AlertMessage>),
    Retry(Duration, String),
    GiveUp(String),
}

impl Delivery {
    /// Delivers until `shutdown` turns true. Store errors are logged and retried: the outbox
    /// keeps every entry, so waiting loses nothing.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.channel.name().to_owned();
        let backoff = retry_backoff(self.policy.retry_initial, self.policy.retry_max);
        let mut held = self.held.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if !held.borrow().does(Duty::Alerts) {
                // Another instance delivers; this one waits to take over.
                tokio::select! {
                    _ = peers::until_doing(&mut held, Duty::Alerts) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let wait = match self.round(&backoff, &mut shutdown).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(channel = %name, error = %e, "alert outbox unavailable");
                    Some(self.clock.now() + STORE_RETRY.as_millis() as Millis)
                }
            };
            // A stop during an attempt ends the round having seen the change: waiting below for
            // another change would wait for ever.
            if *shutdown.borrow() {
                return;
            }
            let wake = self.wake.notified();
            tokio::pin!(wake);
            // Register interest before checking for work again, or a wake in between is lost.
            wake.as_mut().enable();
            if matches!(wait, Some(at) if at <= self.clock.now()) {
                continue;
            }
            let until = wait.map(|at| self.clock.instant_of(at));
            tokio::select! {
                _ = &mut wake => {}
                _ = sleep_until(until) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Sends what is due. Returns when the head of the queue must wait (its retry time), or
    /// `None` when the queue is empty.
    async fn round(
        &self,
        backoff: &Backoff,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<Millis>, StoreError> {
        let name = self.channel.name();
        loop {
            let entries = self.store.pending_alerts(name, BATCH).await?;
            self.report_pending(name).await;
            if entries.is_empty() {
                return Ok(None);
            }
            for entry in entries {
                let now = self.clock.now();
                if entry.next_attempt_at > now {
                    return Ok(Some(entry.next_attempt_at));
                }
                let outcome = tokio::select! {
                    outcome = self.attempt(&entry, backoff, now) => outcome,
                    // Unmarked: the next start sends it again (at least once, deduplicated).
                    _ = shutdown.changed() => return Ok(None),
                };
                self.record(&entry, outcome).await?;
            }
        }
    }

    async fn attempt(&self, entry: &OutboxEntry, backoff: &Backoff, now: Millis) -> Attempt {
        let give_up_at = entry
            .created_at
            .saturating_add(self.policy.give_up_after.as_millis() as Millis);
        let message: AlertMessage = match serde_json::from_str(&entry.payload) {
            Ok(message) => message,
            Err(e) => return Attempt::GiveUp(format!("stored message is unreadable: {e}")),
        };
        let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, self.channel.send(&message)).await
        {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::Retryable(format!(
                "no answer within {} s",
                ATTEMPT_TIMEOUT.as_secs()
            ))),
        };
        match result {
            Ok(()) => Attempt::Delivered(Box::new(message)),
            Err(DeliveryError::Permanent(e)) => Attempt::GiveUp(e),
            Err(DeliveryError::Retryable(e)) => {
                let delay = retry_delay(backoff, entry.attempts + 1, entry.id as u64);
                if now + delay.as_millis() as Millis > give_up_at {
                    Attempt::GiveUp(format!(
                        "{e} (still failing after {})",
                        humantime::format_duration(self.policy.give_up_after)
                    ))
                } else {
                    Attempt::Retry(delay, e)
                }
            }
        }
    }

    async fn record(&self, entry: &OutboxEntry, outcome: Attempt) -> Result<(), StoreError> {
        let name = self.channel.name();
        let now = self.clock.now();
        let outcome_label = match &outcome {
            Attempt::Delivered(_) => "delivered",
            Attempt::Retry(..) => "retry",
            Attempt::GiveUp(_) => "given_up",
        };
        self.metrics
            .attempts
            .get_or_create(&OutcomeLabels {
                channel: name.to_owned(),
                outcome: outcome_label.to_owned(),
            })
            .inc();
        match outcome {
            Attempt::Delivered(message) => {
                self.store.alert_delivered(entry.id, now).await?;
                // No subscriber is the usual case, not an error.
                let _ = self.delivered.send(Delivered {
                    channel: name.to_owned(),
                    message: *message,
                });
                tracing::info!(
                    channel = name,
                    event = %entry.event,
                    key = %entry.dedup_key,
                    attempts = entry.attempts + 1,
                    "alert delivered"
                );
                self.health.update(name, |s| {
                    s.state = "ok";
                    s.consecutive_failures = 0;
                    s.last_delivered_at = Some(now);
                });
            }
            Attempt::Retry(delay, error) => {
                tracing::warn!(
                    channel = name,
                    event = %entry.event,
                    attempt = entry.attempts + 1,
                    retry_in = %humantime::format_duration(round_ms(delay)),
                    "alert not delivered: {error}"
                );
                let next = now + delay.as_millis() as Millis;
                self.failed(entry, error, now, Some(next)).await?;
            }
            Attempt::GiveUp(error) => {
                tracing::error!(
                    channel = name,
                    event = %entry.event,
                    attempts = entry.attempts + 1,
                    "alert given up: {error}"
                );
                self.failed(entry, error, now, None).await?;
            }
        }
        Ok(())
    }

    /// Records a failed attempt: in the store (to try again at `next`, or given up without
    /// one), then in the channel's health and metrics.
    async fn failed(
        &self,
        entry: &OutboxEntry,
        error: String,
        now: Millis,
        next: Option<Millis>,
    ) -> Result<(), StoreError> {
        let given_up = next.is_none();
        let failure = AttemptFailure {
            at: now,
            error: error.clone(),
            next_attempt_at: next.unwrap_or(now),
            give_up: given_up,
        };
        self.store.alert_attempt_failed(entry.id, &failure).await?;
        let name = self.channel.name();
        let mut failing = false;
        self.health.update(name, |s| {
            s.consecutive_failures += 1;
            s.last_error = Some(error);
            if given_up {
                s.given_up += 1;
            }
            // A permanent error fails the channel at once: it will not fix itself.
            if given_up || s.consecutive_failures >= FAILING_AFTER {
                s.state = "failing";
            }
            failing = s.state == "failing";
        });
        self.metrics
            .failing
            .get_or_create(&ChannelLabels {
                channel: name.to_owned(),
            })
            .set(i64::from(failing));
        Ok(())
    }

    async fn report_pending(&self, name: &str) {
        if let Ok(backlog) = self.store.outbox_backlog().await {
            let pending = backlog
                .iter()
                .find(|b| b.channel == name)
                .map_or(0, |b| b.pending);
            self.metrics
                .pending
                .get_or_create(&ChannelLabels {
                    channel: name.to_owned(),
                })
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        if self
            .health
            .snapshot()
            .get(name)
            .is_some_and(|s| s.state == "failing")
        {
            return;
        }
        self.metrics
            .failing
            .get_or_create(&ChannelLabels {
                channel: name.to_owned(),
            })
            .set(0);
    }
}

/// The outbox's pacing: the n-th retry waits between half and all of `initial · 2^(n-1)`,
/// capped at `max` ("equal jitter": never sooner than half the nominal wait, so a receiver that
/// is down is not hammered). Expressed in the shared [`Backoff`] as a nominal of ¾ of that with
/// ±⅓ jitter, which spans exactly [½, 1] of it.
fn retry_backoff(initial: Duration, max: Duration) -> Backoff {
    let initial = initial.max(Duration::from_millis(1));
    let max = max.max(initial);
    Backoff::try_new(initial * 3 / 4, max * 3 / 4, 1.0 / 3.0)
        .expect("¾ of a positive initial is positive and no larger than ¾ of max")
}

/// The wait before retry number `attempt` (1 after the first failure) of entry `seed`. The
/// jitter is a hash of (entry, attempt), not a random draw: it still spreads different
/// entries' retries apart (the point of jitter) while a test can compute the schedule.
fn retry_delay(backoff: &Backoff, attempt: u32, seed: u64) -> Duration {
    let unit = (splitmix64(seed ^ (u64::from(attempt) << 32)) >> 11) as f64 / (1u64 << 53) as f64;
    backoff.delay(attempt.saturating_sub(1), unit)
}

/// SplitMix64: a tiny, well-distributed mixing function (Steele et al., 2014).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_jitter_band_up_to_the_cap() {
        let backoff = retry_backoff(Duration::from_secs(5), Duration::from_secs(600));
        for seed in 0..200u64 {
            let mut full = Duration::from_secs(5);
            for attempt in 1..=12 {
                let d = retry_delay(&backoff, attempt, seed);
                // A microsecond of slack for the float arithmetic of the shared backoff.
                let slack = Duration::from_micros(1);
                assert!(
                    d + slack >= full / 2 && d <= full + slack,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
                full = (full * 2).min(Duration::from_secs(600));
            }
        }
    }

    #[test]
    fn jitter_spreads_entries_but_is_repeatable() {
        let backoff = retry_backoff(Duration::from_secs(8), Duration::from_secs(600));
        let delays: std::collections::HashSet<Duration> = (0..50u64)
            .map(|seed| retry_delay(&backoff, 3, seed))
            .collect();
        assert!(
            delays.len() > 40,
            "different entries retry at different times"
        );
        assert_eq!(retry_delay(&backoff, 3, 7), retry_delay(&backoff, 3, 7));
    }

    #[test]
    fn huge_attempt_counts_stay_at_the_cap() {
        let backoff = retry_backoff(Duration::from_millis(100), Duration::from_secs(60));
        let d = retry_delay(&backoff, u32::MAX, 1);
        assert!(d >= Duration::from_secs(30) && d <= Duration::from_secs(60));
        let zero = retry_backoff(Duration::ZERO, Duration::ZERO);
        assert!(retry_delay(&zero, 1, 1) <= Duration::from_millis(1));
    }
}

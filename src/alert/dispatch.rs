//! The alert dispatcher: runs the rules ([`super::plan`]) whenever the monitor opens or closes
//! an incident, when a held message, a follow-up or a reminder falls due, and at start-up;
//! commits what they decide to the outbox in one transaction; and wakes the delivery workers.
//!
//! It reads its whole input from the store each pass (open incidents, unresolved groups), so a
//! missed or lagged event, a reload or a crash changes nothing about what is sent: the next pass
//! sees the same state. [`start`] builds the channels from their checked specs and spawns the dispatcher
//! and one delivery worker per channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinSet;

use super::channel::Channel;
use super::outbox::{AlertHealth, AlertMetrics, Delivered, Delivery};
use super::plan::{MonitorInfo, Plan, PlanInput, plan};
use super::policy::{AlertPolicy, ChannelRoute};
use super::spec::ChannelSpec;
use crate::monitor::MonitorSpec;
use crate::monitor::health::Health;
use crate::monitor::service::MonitorEvent;
use crate::peers::{self, Duty, Held};
use crate::store::{IncidentFilter, IncidentState, Store, StoreError};
use crate::time::{Clock, Millis};

/// 60 s: the longest the dispatcher sleeps without an event, so a store hiccup or a clock jump
/// is caught up within a minute.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// 5 s: wait after a store error before trying the pass again.
const STORE_RETRY: Duration = Duration::from_secs(5);
/// Open incidents read per pass; more than any deployment has monitors.
const OPEN_LIMIT: u32 = 100_000;
/// 30 days: delivered and given-up messages are kept this long (for `/healthz` counts and
/// investigating a missed page), then pruned hourly.
const OUTBOX_KEEP_MS: Millis = 30 * crate::time::DAY_MS;

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub policy: AlertPolicy,
    pub routes: Vec<ChannelRoute>,
    pub monitors: HashMap<String, MonitorInfo>,
    pub health: Health,
    pub clock: Clock,
    pub public_url: Option<String>,
    /// Woken after each commit that queued messages.
    pub wake: Vec<Arc<Notify>>,
    /// Rules run only while this instance holds the alerts lease (always, alone on its store).
    pub held: watch::Receiver<Held>,
}

impl Dispatcher {
    /// Runs passes until `shutdown` turns true.
    pub async fn run(
        mut self,
        mut events: broadcast::Receiver<MonitorEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut first_seen = HashMap::new();
        let mut pruned_at: Option<Millis> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if !self.held.borrow().does(Duty::Alerts) {
                // Another instance sends the alerts; this one waits to take over.
                tokio::select! {
                    _ = peers::until_doing(&mut self.held, Duty::Alerts) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let now = self.clock.now();
            if pruned_at.is_none_or(|at| now - at >= crate::time::HOUR_MS) {
                pruned_at = Some(now);
                if let Err(e) = self.store.prune_alerts(now - OUTBOX_KEEP_MS).await {
                    tracing::warn!(error = %e, "could not prune old alerts");
                }
            }
            let next_due = match self.pass(&mut first_seen).await {
                Ok(plan) => plan.next_due,
                Err(e) => {
                    tracing::error!(error = %e, "alert rules could not run; retrying");
                    Some(self.clock.now() + STORE_RETRY.as_millis() as Millis)
                }
            };
            let idle_until = self.clock.now() + MAX_IDLE.as_millis() as Millis;
            let until = self
                .clock
                .instant_of(next_due.map_or(idle_until, |d| d.min(idle_until)));
            tokio::select! {
                event = events.recv() => {
                    // A lagged receiver only means several events at once: the pass reads the
                    // store, not the events.
                    if let Err(broadcast::error::RecvError::Closed) = event {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(until) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One pass: read, decide, commit, wake the workers.
    pub async fn pass(&self, first_seen: &mut HashMap<i64, Millis>) -> Result<Plan, StoreError> {
        let mut incidents = self
            .store
            .incidents(&IncidentFilter {
                state: Some(IncidentState::Open),
                monitor: None,
                limit: OPEN_LIMIT,
                offset: 0,
            })
            .await?;
        let groups = self.store.unresolved_alert_groups().await?;
        for (id, _) in groups.iter().flat_map(|g| &g.incidents) {
            if !incidents.iter().any(|i| i.id == *id)
                && let Some(incident) = self.store.incident(*id).await?
            {
                incidents.push(incident);
            }
        }
        let health = self.health.snapshot();
        let plan = plan(
            &PlanInput {
                now: self.clock.now(),
                policy: &self.policy,
                routes: &self.routes,
                monitors: &self.monitors,
                incidents: &incidents,
                groups: &groups,
                health: &health,
                public_url: self.public_url.as_deref(),
            },
            first_seen,
        );
        let commit = &plan.commit;
        if commit.new_groups.is_empty()
            && commit.joined.is_empty()
            && commit.reminded.is_empty()
            && commit.resolved.is_empty()
        {
            return Ok(plan);
        }
        self.store.commit_alerts(commit).await?;
        for (channel, message) in &plan.messages {
            tracing::info!(
                channel = %channel,
                event = message.event.as_str(),
                "alert queued: {}",
                message.title
            );
        }
        for wake in &self.wake {
            wake.notify_one();
        }
        Ok(plan)
    }
}

/// What [`start`] needs from the rest of `serve`.
pub struct AlertContext {
    pub store: Arc<dyn Store>,
    pub health: Health,
    pub clock: Clock,
    pub alert_health: AlertHealth,
    pub metrics: AlertMetrics,
    /// Where delivered alerts are announced.
    pub delivered: broadcast::Sender<Delivered>,
    /// Whether this instance sends alerts (the alerts lease).
    pub held: watch::Receiver<Held>,
}

/// Builds the channels of `specs` (checked, secrets resolved, when the config loaded) and spawns
/// the dispatcher and one delivery worker per channel into `tasks`. Channels of a removed table
/// leave their queued messages in the outbox until a channel of that name returns.
#[allow(clippy::too_many_arguments)]
pub fn start(
    tasks: &mut JoinSet<()>,
    context: &AlertContext,
    specs: &[ChannelSpec],
    policy: &AlertPolicy,
    monitors: &[MonitorSpec],
    public_url: Option<String>,
    events: broadcast::Receiver<MonitorEvent>,
    shutdown: watch::Receiver<bool>,
) {
    let client = super::channel::http::client();
    let channels: Vec<Arc<Channel>> = specs
        .iter()
        .map(|spec| Arc::new(spec.build(&client)))
        .collect();
    let routes = specs.iter().map(|spec| spec.route.clone()).collect();
    context.alert_health.reset(
        &channels
            .iter()
            .map(|c| (c.name().to_owned(), c.kind()))
            .collect::<Vec<_>>(),
    );
    let mut wakes = Vec::new();
    for channel in channels {
        let wake = Arc::new(Notify::new());
        wakes.push(wake.clone());
        let worker = Delivery {
            store: context.store.clone(),
            channel,
            policy: policy.clone(),
            clock: context.clock,
            health: context.alert_health.clone(),
            metrics: context.metrics.clone(),
            wake,
            delivered: context.delivered.clone(),
            held: context.held.clone(),
        };
        tasks.spawn(worker.run(shutdown.clone()));
    }
    let dispatcher = Dispatcher {
        store: context.store.clone(),
        policy: policy.clone(),
        routes,
        monitors: monitor_infos(monitors),
        health: context.health.clone(),
        clock: context.clock,
        public_url,
        wake: wakes,
        held: context.held.clone(),
    };
    tasks.spawn(dispatcher.run(events, shutdown));
}

fn monitor_infos(monitors: &[MonitorSpec]) -> HashMap<String, MonitorInfo> {
    monitors
        .iter()
        .map(|m| {
            (
                m.id.clone(),
                MonitorInfo {
                    provider: m.provider.id.clone(),
                    provider_name: m.provider.name.clone(),
                    model: m.model().map(str::to_owned),
                },
            )
        })
        .collect()
}

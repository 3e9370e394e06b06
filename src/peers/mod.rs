//! Several `isdown serve` instances on one database, each a full peer: who this instance is
//! (its id and region), and what it holds alone — probing a monitor from its region, and the
//! duties one instance does for all ([`Duty`]: sending alerts, running the durable queue) —
//! decided by leases in the database.
//!
//! Every lease round (a third of the lease time) the instance records itself as alive, reads
//! the members seen within the lease time, works out which leases it should want
//! ([`assign::wanted`]: rendezvous hashing, so all members agree without talking) and takes
//! those it does not hold yet ([`Cluster::hold`]). The heartbeat itself renews every lease the
//! instance holds, so a round writes one row plus whatever changes hands. A lease of a live
//! member is never taken; one whose holder died (kill -9) lapses after the lease time and
//! goes to the member the hash picks among the survivors. So a monitor is probed once per interval per region, and a dead
//! instance's monitors resume within the lease time plus a round plus one interval.
//!
//! A store that only one instance uses (SQLite) has no cluster: the instance holds everything
//! ([`Peers::solo`]). When the database does not answer, the instance keeps what it held (it
//! cannot learn otherwise; the store's own rules — one open incident per monitor — still hold
//! when writes return) and logs each failed round.
//!
//! Owns: the identity and the lease round. Must not: decide anything about monitors, alerts or
//! batches (the monitor, the alert dispatcher and the queue's dispatcher ask [`Held`] before
//! they act).

pub mod assign;

pub use assign::Duty;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{Member, Store};

/// The region of an instance that names none.
pub const DEFAULT_REGION: &str = "default";

/// 15 s: how long a lease lasts unless renewed, and how long a member that stopped beating
/// still counts as alive. A dead instance's monitors resume within this plus a round plus one
/// interval; shorter costs more database writes per second.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// Who this instance is, how long its leases last, and how many regions make an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSettings {
    pub me: Member,
    pub lease: Duration,
    /// Regions that must see an outage for its incident to open; `None`: a majority of the
    /// regions that have a live instance.
    pub quorum: Option<u32>,
}

impl PeerSettings {
    /// An instance of `region` with a fresh id: the host name, the process id and a random
    /// suffix, so a restarted process is a new member (its predecessor's leases expire, or
    /// were given up at a clean stop).
    pub fn new(region: &str, instance: Option<String>, lease: Duration) -> PeerSettings {
        let instance = instance.unwrap_or_else(default_instance);
        PeerSettings {
            me: Member {
                instance,
                region: region.to_owned(),
            },
            lease,
            quorum: None,
        }
    }
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings::new(DEFAULT_REGION, None, DEFAULT_LEASE)
    }
}

fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "isdown".to_owned());
    format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..))
}

/// What this instance holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Everything: the only instance of its store.
    All,
    /// The monitors (by id) it probes in its region, and the duties it does.
    Leases {
        monitors: Arc<HashSet<String>>,
        duties: Vec<Duty>,
    },
}

impl Held {
    pub fn monitor(&self, id: &str) -> bool {
        match self {
            Held::All => true,
            Held::Leases { monitors, .. } => monitors.contains(id),
        }
    }

    pub fn does(&self, duty: Duty) -> bool {
        match self {
            Held::All => true,
            Held::Leases { duties, .. } => duties.contains(&duty),
        }
    }

    /// The duties it does.
    fn duties(&self) -> Vec<Duty> {
        Duty::ALL.into_iter().filter(|d| self.does(*d)).collect()
    }

    /// True when other instances share the work (the monitors it does not hold are theirs).
    pub fn shared(&self) -> bool {
        matches!(self, Held::Leases { .. })
    }

    fn from_names(region: &str, names: &[String]) -> Held {
        let prefix = assign::monitor_lease(region, "");
        Held::Leases {
            monitors: Arc::new(
                names
                    .iter()
                    .filter_map(|name| name.strip_prefix(&prefix).map(str::to_owned))
                    .collect(),
            ),
            duties: Duty::ALL
                .into_iter()
                .filter(|duty| names.iter().any(|name| name == duty.name()))
                .collect(),
        }
    }
}

/// The handle the monitor, the alert dispatcher, the API and `/metrics` share.
#[derive(Clone)]
pub struct Peers {
    me: Arc<Member>,
    quorum: Option<u32>,
    shared: Arc<Shared>,
}

/// What the lease round publishes and the rest of the instance reads. The senders live as long
/// as any handle, so a receiver never sees the channel closed while the server runs.
struct Shared {
    held: watch::Sender<Held>,
    members: watch::Sender<Vec<Member>>,
    /// The monitors this instance's config has (the monitor sets them at each start).
    monitors: watch::Sender<Arc<[String]>>,
    gauges: Gauges,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    lease: &'static str,
}

/// `isdown_instance_info{instance, region}` (always 1) and `isdown_leases_held{lease}`: which
/// instance this is, how many monitors it probes, and 1 for each duty it does.
#[derive(Default)]
struct Gauges {
    info: Family<InstanceLabels, Gauge>,
    held: Family<LeaseLabels, Gauge>,
}

impl Gauges {
    fn register(&self, metrics: &Metrics, me: &Member) {
        self.info
            .get_or_create(&InstanceLabels {
                instance: me.instance.clone(),
                region: me.region.clone(),
            })
            .set(1);
        metrics.register(
            "instance_info",
            "This instance's id and region (several instances may share one database)",
            self.info.clone(),
        );
        metrics.register(
            "leases_held",
            "What this instance does alone: monitors it probes for its region, 1 per duty (alerts, queue)",
            self.held.clone(),
        );
    }

    fn show(&self, monitors: usize, held: &Held) {
        let set = |lease, n: usize| {
            self.held
                .get_or_create(&LeaseLabels { lease })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set("monitors", monitors);
        for duty in Duty::ALL {
            set(duty.name(), usize::from(held.does(duty)));
        }
    }
}

impl Peers {
    /// The only instance of its store: holds everything, always.
    pub fn solo(me: Member) -> Peers {
        Peers::with(me, None, Held::All)
    }

    fn with(me: Member, quorum: Option<u32>, held: Held) -> Peers {
        let members = vec![me.clone()];
        Peers {
            me: Arc::new(me),
            quorum,
            shared: Arc::new(Shared {
                held: watch::channel(held).0,
                members: watch::channel(members).0,
                monitors: watch::channel(Arc::from([])).0,
                gauges: Gauges::default(),
            }),
        }
    }

    /// Puts this instance's id, region and leases on `/metrics`.
    pub fn register(&self, metrics: &Metrics) {
        self.shared.gauges.register(metrics, &self.me);
    }

    /// Joins the store's cluster, or is [`Peers::solo`] when the store has none. The lease
    /// round runs until `shutdown` turns true, then gives every lease up.
    pub fn start(
        settings: &PeerSettings,
        store: Arc<dyn Store>,
        shutdown: watch::Receiver<bool>,
    ) -> (Peers, Option<JoinHandle<()>>) {
        if store.cluster().is_none() {
            return (Peers::solo(settings.me.clone()), None);
        }
        // Nothing is held until the first round has answered: two instances starting together
        // must not both probe everything meanwhile.
        let peers = Peers::with(
            settings.me.clone(),
            settings.quorum,
            Held::from_names(&settings.me.region, &[]),
        );
        let round = Round {
            settings: settings.clone(),
            store,
            shared: peers.shared.clone(),
            monitors: peers.shared.monitors.subscribe(),
        };
        let task = tokio::spawn(round.run(shutdown));
        (peers, Some(task))
    }

    pub fn me(&self) -> &Member {
        &self.me
    }

    /// What this instance holds now, and a way to wait for it to change.
    pub fn held(&self) -> watch::Receiver<Held> {
        self.shared.held.subscribe()
    }

    /// The members seen alive at the last round (this instance alone when solo).
    pub fn members(&self) -> Vec<Member> {
        self.shared.members.borrow().clone()
    }

    /// The regions that have a live instance (this instance's always).
    pub fn live_regions(&self) -> BTreeSet<String> {
        let mut regions: BTreeSet<String> = self
            .shared
            .members
            .borrow()
            .iter()
            .map(|m| m.region.clone())
            .collect();
        regions.insert(self.me.region.clone());
        regions
    }

    /// True when live members span more than this instance's region. Asked for every probe
    /// result, so it reads the members in place instead of collecting them.
    pub fn several_regions(&self) -> bool {
        let region = &self.me.region;
        self.shared
            .members
            .borrow()
            .iter()
            .any(|m| m.region != *region)
    }

    /// Regions that must see an outage for it to open (`None`: a majority).
    pub fn quorum(&self) -> Option<u32> {
        self.quorum
    }

    /// The monitors this instance's config has: the lease round wants leases for these.
    pub fn set_monitors(&self, ids: Vec<String>) {
        if *self.shared.held.borrow() == Held::All {
            self.shared.gauges.show(ids.len(), &Held::All);
        }
        self.shared.monitors.send_replace(Arc::from(ids));
    }

    /// The monitors (of `ids`) this instance probes now.
    pub fn held_monitors<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let held = self.shared.held.borrow();
        ids.into_iter().filter(|id| held.monitor(id)).collect()
    }
}

/// Returns once `held` says this instance does `duty` (at once when it already does). Never
/// returns when every handle is gone without it: the caller selects it against its own
/// shutdown.
pub async fn until_doing(held: &mut watch::Receiver<Held>, duty: Duty) {
    if held.wait_for(|h| h.does(duty)).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Round {
    settings: PeerSettings,
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    monitors: watch::Receiver<Arc<[String]>>,
}

impl Round {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let every = (self.settings.lease / 3).max(Duration::from_millis(100));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // New monitors (a reload) are claimed at once, not a round later.
                Ok(()) = self.monitors.changed() => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.once().await {
                tracing::warn!(error = %e, "lease round failed; keeping what this instance held");
            }
        }
        if let Some(cluster) = self.store.cluster()
            && let Err(e) = cluster.leave(&self.settings.me.instance).await
        {
            tracing::warn!(error = %e, "could not give up leases at stop; they expire on their own");
        }
    }

    async fn once(&mut self) -> Result<(), crate::store::StoreError> {
        let Some(cluster) = self.store.cluster() else {
            return Ok(());
        };
        let me = &self.settings.me;
        let members = cluster.heartbeat(me, self.settings.lease).await?;
        let monitors = self.monitors.borrow_and_update().clone();
        let doing = self.shared.held.borrow().duties();
        let names = assign::wanted(me, &members, monitors.iter().map(String::as_str), &doing);
        let held = cluster
            .hold(&me.instance, &names, self.settings.lease)
            .await?;
        let held = Held::from_names(&me.region, &held);
        if let Held::Leases { monitors, .. } = &held {
            self.shared.gauges.show(monitors.len(), &held);
        }
        self.shared.held.send_if_modified(|now| {
            let changed = *now != held;
            *now = held;
            changed
        });
        self.shared.members.send_if_modified(|now| {
            let changed = *now != members;
            *now = members;
            changed
        });
        Ok(())
    }
}

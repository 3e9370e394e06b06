//! What several isdown instances on one database know of each other: who is alive, in which
//! region (the members), and who holds which lease.
//!
//! The store keeps the rows and lets the database's clock judge expiry, so hosts whose clocks
//! disagree still agree on who holds what. Which leases an instance should want, and what it
//! may do while it holds one, is `peers`' decision, never the store's. Only a store that
//! several instances can share has a cluster (PostgreSQL); a SQLite file serves one instance,
//! which holds everything itself.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::time::Millis;

/// One monitor's state as one region's instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionReport {
    pub monitor: String,
    pub region: String,
    /// A monitor state's name (`up`, `down`, …).
    pub state: String,
    /// The verdict's name, when one explains the state.
    pub verdict: Option<String>,
    pub since: Option<Millis>,
    /// When the database took the report (its clock), for readers of what changed.
    pub changed_at: Millis,
}

/// One running instance: its id (unique among the instances of one database) and its region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    pub instance: String,
    pub region: String,
}

#[async_trait]
pub trait Cluster: Send + Sync {
    /// Records that `me` is alive now; answers every member seen within `ttl` (`me` included),
    /// ordered by region, then instance.
    async fn heartbeat(&self, me: &Member, ttl: Duration) -> Result<Vec<Member>, StoreError>;

    /// Takes the lease on each of `names` that is free or lapsed, keeps those already
    /// `holder`'s, and gives up every other lease `holder` has: one transaction. A lease
    /// lapses `ttl` after it was taken unless its holder is a live member ([`heartbeat`]
    /// within `ttl`): the heartbeat renews every lease of its member at once. Answers the
    /// names of `names` that `holder` holds afterwards, in their order (a lease another live
    /// member holds stays with it).
    ///
    /// [`heartbeat`]: Cluster::heartbeat
    async fn hold(
        &self,
        holder: &str,
        names: &[String],
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError>;

    /// Gives up every lease of `instance` and removes it from the members (a clean stop: its
    /// peers take over at once instead of after the lease time).
    async fn leave(&self, instance: &str) -> Result<(), StoreError>;

    /// Records one region's view of one monitor (`changed_at` is set by the database).
    async fn report_region(&self, report: &RegionReport) -> Result<(), StoreError>;

    /// Every region's view of `monitor`.
    async fn regions_of(&self, monitor: &str) -> Result<Vec<RegionReport>, StoreError>;

    /// Every report that changed after `after` (the `changed_at` of the last one read),
    /// oldest first.
    async fn regions_changed(&self, after: Millis) -> Result<Vec<RegionReport>, StoreError>;
}

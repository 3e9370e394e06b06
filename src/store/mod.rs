//! Persistence: probe results, rollups, incidents and monitor state, behind one [`Store`] trait.
//!
//! The trait speaks the monitor's language (results, incidents, uptime), never SQL. Two back ends
//! implement it and pass the same tests (`store::tests`): SQLite (`sqlite`, the embedded default:
//! one file, no server) and PostgreSQL (`postgres`). One setting selects between them
//! ([`DatabaseUrl`], `location`), and [`open`] opens either behind the trait. `copy` moves an
//! installation's history from SQLite to PostgreSQL (`isdown db copy`).
//! Raw results are kept for a bounded time and rolled up per minute, hour and day as they are
//! written, so uptime and daily latency percentiles come from small rollup rows and the database
//! stays small for years of 30-second checks. Times are Unix milliseconds (UTC) throughout.
//!
//! It also keeps the durable queue's files, batches and lines (`queue`): the records of the
//! OpenAI Files and Batch API served by `crate::queue`, with each request line's state and its
//! one result.
//!
//! # One store, two dialects
//!
//! Each thing the store does is said once. [`Store`] and [`QueueStore`] are implemented once,
//! in `sql`, for every back end: generic functions over sqlx's `Database`, running SQL that both
//! dialects accept (numbered `$1` parameters, which SQLite binds by number too). sqlx's generic
//! bounds (`Encode`/`Type` per bound value, the executor bound of a connection) would have to
//! be repeated on every generic function; `sql::Dialect` states them once, as supertraits and
//! methods that callers do see, so generic code says `B: Backend` and nothing more. A back end
//! is its connections and locking (`sql::Backend`) plus the few operations whose SQL or
//! concurrency is its own, each in the file of its concern: how a batch of results and its
//! rollups are written and where one monitor's buckets sit (`sql::results::Results`), how
//! groups of queue lines move (`sql::queue::QueueLines`), how an incident is opened against
//! concurrent openers, how history is pruned and the database sized. Shared with them: rows
//! decode in `rows` (and decode errors become [`StoreError::Corrupt`] there, once), values are
//! encoded in `codes` and scrubbed of secrets in `scrub` on the way in, rollup arithmetic is
//! `rollup`, the monitor-key cache `keys`, and the numbered migrations (`migrations`, SQL at the
//! crate root in `migrations/sqlite/` and `migrations/postgres/`) are one list for both.
//!
//! Weighed and left: sqlx's `Any` driver (runtime dispatch, no arrays, so no `UNNEST` and no
//! `FOR UPDATE SKIP LOCKED` batches), one `macro_rules!` body instantiated per back end (code
//! that rustfmt does not format and compilers report inside the macro), and SQL constants shared
//! alone (the Rust around each statement would still be written twice).

pub mod cluster;
mod codes;
pub mod copy;
mod keys;
mod location;
mod migrations;
pub mod postgres;
pub mod queue;
mod rollup;
mod rows;
mod scrub;
mod sql;
pub mod sqlite;
#[cfg(test)]
mod tests;
pub mod transfer;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::SqlSafeStr;
use thiserror::Error;

use crate::incident::IncidentKind;
use crate::time::{DAY_MS, HOUR_MS, Millis};
use crate::verdict::{Blame, Verdict};
pub use location::{DatabaseUrl, DatabaseUrlError, PoolSettings, PostgresUrl};

/// The SQLite file inside the data directory: the store when no URL selects another.
pub const DB_FILE: &str = "isdown.db";

/// Opens the store `url` selects, applying the migrations it has not seen yet. `pool` shapes a
/// PostgreSQL store's connection pool; SQLite keeps its own.
pub async fn open(url: &DatabaseUrl, pool: &PoolSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        DatabaseUrl::Postgres(url) => Arc::new(postgres::PostgresStore::open(url, pool).await?),
    })
}

/// A read error: a value that does not decode as its column's type is corrupt data, anything
/// else is the database failing.
fn read_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(error.to_string())
        }
        other => StoreError::Db(other),
    }
}

/// SQL assembled at run time. Only ever built from constants, hence safe to assert; an `Arc`
/// so each use is a cheap clone and sqlx's statement cache sees the same text.
fn dynamic_sql(text: String) -> sqlx::SqlStr {
    sqlx::AssertSqlSafe(Arc::<str>::from(text)).into_sql_str()
}
pub use cluster::{Cluster, Member, RegionReport};
pub use queue::QueueStore;

#[derive(Debug, Error)]
pub enum StoreError {
    /// `location` is the file, or the PostgreSQL URL without its password.
    #[error("cannot open the database at {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A caller's own bound on a call ran out (the store may still be working on it).
    #[error("the database did not answer within {0:?}")]
    NoAnswer(std::time::Duration),
}

/// A monitor as stored: one provider probed one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRecord {
    pub id: String,
    pub provider: String,
    pub model: Option<String>,
    pub probe: String,
}

/// One probe result (or one live request's verdict reported through the passive-health hook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub monitor_id: String,
    pub at: Millis,
    pub verdict: Verdict,
    pub blame: Option<Blame>,
    pub status: Option<u16>,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    /// Kept for failures only (a healthy result needs no words), already redacted.
    pub explanation: Option<String>,
    /// The region it was probed from; `None` for the `default` region (and for results stored
    /// before version 8). Shared by every result of an instance.
    #[serde(default)]
    pub region: Option<Arc<str>>,
}

/// Which instance, in which region, did something (opened an incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub instance: String,
    pub region: String,
}

/// What opening an incident needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    /// Monitor id; for a `network` incident, `"*"` (it concerns every monitor), or `"*/REGION"`
    /// for an instance in a named region (`incident::network_key`).
    pub monitor: String,
    pub provider: String,
    pub kind: IncidentKind,
    pub verdict: Verdict,
    pub started_at: Millis,
    /// How many failed probes led to it (the threshold, usually).
    pub failed_probes: u32,
    /// First error sample, redacted.
    pub first_error: Option<String>,
    /// The instance opening it (`None` only in tests and for incidents stored before version 8).
    pub opened_by: Option<Origin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    pub monitor: String,
    pub provider: String,
    pub kind: IncidentKind,
    pub verdict: Verdict,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    pub failed_probes: u32,
    pub first_error: Option<String>,
    pub last_error: Option<String>,
    /// The instance that opened it; `None` for incidents stored before version 8.
    #[serde(default)]
    pub opened_by: Option<Origin>,
    /// The provider's official acknowledgement, once its status page published a matching
    /// incident; `None` until then.
    #[serde(default)]
    pub official: Option<OfficialAck>,
}

/// An incident as a provider's official status page published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialIncident {
    /// The page's own id for it (unique per provider).
    pub source_id: String,
    pub title: String,
    /// The incident's page.
    pub url: Option<String>,
    /// `none`, `minor`, `major`, `critical` or `maintenance`, as the page says.
    pub impact: String,
    /// When the page says it began.
    pub started_at: Millis,
    /// When the page posted it.
    pub acknowledged_at: Millis,
    pub resolved_at: Option<Millis>,
}

/// An official incident as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOfficialIncident {
    pub id: i64,
    pub provider: String,
    /// When isdown first read it on the page.
    pub first_seen_at: Millis,
    pub incident: OfficialIncident,
}

/// What acknowledged one of isdown's incidents: the official incident, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialAck {
    /// The stored official incident's id.
    pub official_id: i64,
    pub title: String,
    pub url: Option<String>,
    pub acknowledged_at: Millis,
    pub resolved_at: Option<Millis>,
}

impl Incident {
    /// How long before the official page isdown detected it (`acknowledged_at - started_at`;
    /// negative when the page was first); `None` until acknowledged.
    pub fn lead(&self) -> Option<Millis> {
        self.official
            .as_ref()
            .map(|o| o.acknowledged_at - self.started_at)
    }
}

/// A monitor's snapshot as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedState {
    /// JSON text, as saved.
    Snapshot(String),
    /// Not JSON text (damaged, or written by something else); why, without the content.
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentState {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub monitor: Option<String>,
    /// Newest first; `limit` rows after skipping `offset`.
    pub limit: u32,
    pub offset: u32,
}

impl IncidentFilter {
    /// Every incident open now, of every monitor.
    pub fn all_open() -> IncidentFilter {
        IncidentFilter {
            state: Some(IncidentState::Open),
            monitor: None,
            limit: u32::MAX,
            offset: 0,
        }
    }
}

/// Uptime fractions (0.0–1.0) over trailing windows; `None` when nothing was measured. Only
/// provider-blamed failures count as downtime: a bad key or a down local network says nothing
/// about the provider, so those results are left out of the fraction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Uptime {
    #[serde(rename = "24h")]
    pub h24: Option<f64>,
    #[serde(rename = "7d")]
    pub d7: Option<f64>,
    #[serde(rename = "30d")]
    pub d30: Option<f64>,
    #[serde(rename = "90d")]
    pub d90: Option<f64>,
}

/// Latency percentiles of one UTC day, from the day rollup's histogram (healthy results only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DailyLatency {
    /// Start of the UTC day.
    pub day: Millis,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub samples: u64,
}

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw: Millis,
    pub minute: Millis,
    pub hour: Millis,
    pub day: Millis,
}

impl Default for Retention {
    /// Raw 14 days (enough to investigate last week's incident); minute rollups 30 days (at 1,440
    /// rows per monitor per day they would dominate the file); hour and day rollups 400 days
    /// (a year-on-year comparison with a month to spare).
    fn default() -> Self {
        Retention {
            raw: 14 * DAY_MS,
            minute: 30 * DAY_MS,
            hour: 400 * DAY_MS,
            day: 400 * DAY_MS,
        }
    }
}

/// Rows removed by one prune.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub results: u64,
    pub rollups: u64,
    pub incidents: u64,
    /// Official incidents no longer referenced and older than incidents are kept.
    pub official: u64,
}

// === alert outbox types ===

/// An alert group as stored: incidents announced together, and where their messages stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertGroup {
    /// The group's identity, also what receivers deduplicate on.
    pub dedup_key: String,
    pub kind: IncidentKind,
    pub opened_at: Millis,
    /// When the last open or reminder message was queued.
    pub last_sent_at: Millis,
    pub resolved_at: Option<Millis>,
    /// Member incidents with their end (`None` while open). An incident pruned from the store
    /// counts as ended at the group's `last_sent_at`.
    pub incidents: Vec<(i64, Option<Millis>)>,
}

/// A new group, created with its first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlertGroup {
    pub dedup_key: String,
    pub kind: IncidentKind,
    pub opened_at: Millis,
    pub incidents: Vec<i64>,
}

/// One message for one channel, to be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxEntry {
    pub channel: String,
    pub dedup_key: String,
    /// `opened`, `reminder`, `resolved`.
    pub event: String,
    /// The message, serialized by the alert module; opaque here.
    pub payload: String,
    pub created_at: Millis,
}

/// A queued message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub channel: String,
    pub dedup_key: String,
    pub event: String,
    pub payload: String,
    pub created_at: Millis,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    pub delivered_at: Option<Millis>,
    pub failed_at: Option<Millis>,
    pub last_error: Option<String>,
}

/// Everything one pass of the alert rules decided, committed in one transaction so that a crash
/// leaves either all of it or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertCommit {
    pub new_groups: Vec<NewAlertGroup>,
    /// (dedup key, incidents) joining an announced group: incidents opened after its message
    /// went out, announced by a follow-up under the group's key.
    pub joined: Vec<(String, Vec<i64>)>,
    /// (dedup key, when) of groups that got a reminder or a follow-up.
    pub reminded: Vec<(String, Millis)>,
    /// (dedup key, when) of groups whose resolve message is queued.
    pub resolved: Vec<(String, Millis)>,
    pub entries: Vec<NewOutboxEntry>,
}

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFailure {
    pub at: Millis,
    pub error: String,
    /// When to try again (ignored when giving up).
    pub next_attempt_at: Millis,
    /// Retrying cannot help (a permanent error) or it is too late: the entry is given up.
    pub give_up: bool,
}

/// Per channel: what waits in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBacklog {
    pub channel: String,
    pub pending: u64,
    pub oldest_pending_at: Option<Millis>,
    pub failed: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts or updates the monitors' descriptions (ids are stable across restarts).
    async fn register_monitors(&self, monitors: &[MonitorRecord]) -> Result<(), StoreError>;

    /// Appends results and folds them into the minute, hour and day rollups, atomically.
    async fn record_results(&self, results: &[ResultRecord]) -> Result<(), StoreError>;

    /// The newest `limit` results of a monitor, newest first.
    async fn recent_results(
        &self,
        monitor: &str,
        limit: u32,
    ) -> Result<Vec<ResultRecord>, StoreError>;

    /// Opens an incident and returns its id. At most one incident per monitor is open at a
    /// time: opening a second one for the same monitor returns the open one's id instead.
    async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError>;

    /// Records another failed probe of an open incident (and its latest error sample).
    async fn note_incident_failure(
        &self,
        id: i64,
        verdict: Verdict,
        last_error: Option<&str>,
    ) -> Result<(), StoreError>;

    async fn close_incident(&self, id: i64, ended_at: Millis) -> Result<(), StoreError>;

    /// Reopens a recently closed incident (flap rule) instead of opening a new one.
    async fn reopen_incident(&self, id: i64) -> Result<(), StoreError>;

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError>;

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError>;

    /// Saves a monitor's state-machine snapshot (opaque JSON) so a restart continues it.
    async fn save_monitor_state(&self, monitor: &str, snapshot: &str) -> Result<(), StoreError>;

    /// Saves many monitors' snapshots (`(monitor, snapshot)`) in few transactions: a stop
    /// saves every machine an instance drives, and one commit each cost PostgreSQL a WAL flush
    /// per monitor (minutes at 25,000 monitors).
    async fn save_monitor_states(&self, states: &[(String, String)]) -> Result<(), StoreError>;

    async fn load_monitor_states(&self) -> Result<Vec<(String, SavedState)>, StoreError>;

    /// Moves a monitor's snapshot aside (kept as found, with `reason`), so the monitor starts
    /// afresh; no snapshot left for it afterwards.
    async fn quarantine_monitor_state(
        &self,
        monitor: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), StoreError>;

    /// Uptime over the 24 h, 7 d, 30 d and 90 d before `now`, from rollups.
    async fn uptime(&self, monitor: &str, now: Millis) -> Result<Uptime, StoreError>;

    /// Latency p50/p95 per UTC day for the `days` days up to `now`, oldest first.
    async fn daily_latency(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DailyLatency>, StoreError>;

    // === alert outbox ===

    /// Alert groups whose resolve has not been queued, oldest first, with their incidents.
    async fn unresolved_alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError>;

    /// Applies one pass of the alert rules: creates groups, marks reminders and resolves, and
    /// queues the messages, all or nothing. Creating a group whose key exists is an error.
    async fn commit_alerts(&self, commit: &AlertCommit) -> Result<(), StoreError>;

    /// Entries of `channel` neither delivered nor given up, oldest first.
    async fn pending_alerts(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    async fn alert_delivered(&self, id: i64, at: Millis) -> Result<(), StoreError>;

    /// Counts a failed attempt, and either schedules the next one or gives the entry up.
    async fn alert_attempt_failed(
        &self,
        id: i64,
        failure: &AttemptFailure,
    ) -> Result<(), StoreError>;

    /// Every entry, newest first (for tests and the admin view).
    async fn outbox_entries(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Pending and given-up counts per channel that has any entries.
    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, StoreError>;

    /// Deletes delivered and given-up entries created before `before`, and resolved groups
    /// resolved before it.
    async fn prune_alerts(&self, before: Millis) -> Result<u64, StoreError>;

    /// Deletes what is older than the retention allows. Closed incidents are kept as long as
    /// day rollups, and so are official incidents (by their end, or their acknowledgement while
    /// unresolved) unless an incident still refers to them.
    async fn prune(&self, now: Millis, retention: &Retention) -> Result<Pruned, StoreError>;

    /// Bytes the database occupies (for benchmarks and `/metrics`).
    async fn size_bytes(&self) -> Result<u64, StoreError>;

    // === status page reads ===

    /// Rollup counters per UTC day for the `days` days up to `now` (today's partial day
    /// included), oldest first; days without any result are absent. Feeds the 90-day bars.
    async fn daily_counts(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DayCounts>, StoreError>;

    /// Latency p50/p95 of healthy results per `step` bucket, for the `buckets` buckets up to
    /// `now` (the current partial one included), oldest first; buckets without a latency
    /// sample are absent. Feeds the latency charts and sparklines.
    async fn latency_series(
        &self,
        monitor: &str,
        step: SeriesStep,
        now: Millis,
        buckets: u32,
    ) -> Result<Vec<LatencyPoint>, StoreError>;

    /// Every incident (all monitors, `network` ones included) that was open at some instant
    /// of `[from, to]`: started at or before `to` and not ended before `from`. Newest first.
    async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError>;

    // === official status pages ===

    /// Records what `provider`'s status page lists: an official incident not seen before is
    /// inserted (first seen at `seen_at`); a known one (same provider and source id) takes the
    /// page's current title, link, impact and times, and keeps its first sighting.
    async fn record_official_incidents(
        &self,
        provider: &str,
        incidents: &[OfficialIncident],
        seen_at: Millis,
    ) -> Result<(), StoreError>;

    /// Official incidents of every provider that were open at some instant of `[from, to]`:
    /// begun (or posted) at or before `to`, and not resolved before `from`. Newest first.
    async fn official_incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredOfficialIncident>, StoreError>;

    /// Links each `(incident id, official incident id)`: the incident was acknowledged by that
    /// official incident. An incident already linked keeps its first link; a pair naming an
    /// incident or official incident that no longer exists (pruned meanwhile) is skipped.
    async fn acknowledge_incidents(&self, links: &[(i64, i64)]) -> Result<(), StoreError>;

    // === the durable queue ===

    /// The durable queue's part of the store (files, batches, lines).
    fn queue(&self) -> &dyn QueueStore;

    // === several instances ===

    /// Members and leases of the instances sharing this database; `None` when the store serves
    /// one instance (SQLite), which then holds every lease itself.
    fn cluster(&self) -> Option<&dyn Cluster> {
        None
    }
}

/// Latency histogram bucket upper bounds in milliseconds, shared by rollups and `/metrics`.
/// Spaced for LLM APIs: 50 ms (a cached reachability answer) to 60 s (a queued completion).
pub const LATENCY_BUCKETS_MS: [f64; 17] = [
    50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1_000.0, 1_500.0, 2_000.0, 3_000.0, 5_000.0, 7_500.0,
    10_000.0, 15_000.0, 20_000.0, 30_000.0, 60_000.0,
];

// === status page reads: types ===

/// One UTC day of a monitor's day rollup: how many results, and how they split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// Start of the UTC day.
    pub day: Millis,
    pub total: u64,
    /// `up` + `degraded`.
    pub healthy: u64,
    pub degraded: u64,
    /// Failures blamed on the provider: the only ones that count as downtime.
    pub provider_failed: u64,
    /// Failures blamed on the account, the request or the network.
    pub other_failed: u64,
}

impl DayCounts {
    /// The day's uptime by the same rule as [`Uptime`]: `None` without provider evidence.
    pub fn uptime(&self) -> Option<f64> {
        let measured = self.healthy + self.provider_failed;
        (measured > 0).then(|| self.healthy as f64 / measured as f64)
    }
}

/// The bucket width of a latency series: the rollups it is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStep {
    Hour,
    Day,
}

impl SeriesStep {
    pub fn width(self) -> Millis {
        match self {
            SeriesStep::Hour => HOUR_MS,
            SeriesStep::Day => DAY_MS,
        }
    }
}

/// Latency percentiles of one rollup bucket (healthy results only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyPoint {
    /// Start of the bucket.
    pub start: Millis,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub samples: u64,
}

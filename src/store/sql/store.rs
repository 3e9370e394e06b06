//! The one implementation of [`Store`]: for every back end, each operation scrubs what it writes
//! (`store::scrub`) and runs the shared SQL of its concern, or its back end's own where the
//! back end has its own.

use async_trait::async_trait;

use super::queue::QueueLines;
use super::results::{self, Results};
use super::{Backend, incidents, official, outbox};
use crate::store::cluster::Cluster;
use crate::store::{
    AlertCommit, AlertGroup, AttemptFailure, DailyLatency, DayCounts, Incident, IncidentFilter,
    LatencyPoint, MonitorRecord, NewIncident, OfficialIncident, OutboxBacklog, OutboxEntry, Pruned,
    QueueStore, ResultRecord, Retention, SavedState, SeriesStep, Store, StoreError,
    StoredOfficialIncident, Uptime, scrub,
};
use crate::time::Millis;
use crate::verdict::Verdict;

#[async_trait]
impl<B: Results + QueueLines> Store for B {
    async fn register_monitors(&self, monitors: &[MonitorRecord]) -> Result<(), StoreError> {
        results::register_monitors(self, monitors).await
    }

    /// A healthy result's explanation is not stored (see the back ends' `write_results`).
    async fn record_results(&self, results: &[ResultRecord]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        self.write_results(&scrub::results(results)).await
    }

    async fn recent_results(
        &self,
        monitor: &str,
        limit: u32,
    ) -> Result<Vec<ResultRecord>, StoreError> {
        results::recent_results(self, monitor, limit).await
    }

    async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError> {
        Backend::open_incident(self, &scrub::incident(incident)).await
    }

    async fn note_incident_failure(
        &self,
        id: i64,
        verdict: Verdict,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let last_error = scrub::error_sample(last_error);
        incidents::note_failure(self, id, verdict, last_error.as_deref()).await
    }

    async fn close_incident(&self, id: i64, ended_at: Millis) -> Result<(), StoreError> {
        incidents::close(self, id, ended_at).await
    }

    async fn reopen_incident(&self, id: i64) -> Result<(), StoreError> {
        incidents::reopen(self, id).await
    }

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        incidents::incident(self, id).await
    }

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        incidents::list(self, filter).await
    }

    async fn save_monitor_state(&self, monitor: &str, snapshot: &str) -> Result<(), StoreError> {
        incidents::save_state(self, monitor, &scrub::snapshot(snapshot)).await
    }

    async fn save_monitor_states(&self, states: &[(String, String)]) -> Result<(), StoreError> {
        let scrubbed: Vec<_> = states
            .iter()
            .map(|(monitor, snapshot)| (monitor.as_str(), scrub::snapshot(snapshot)))
            .collect();
        incidents::save_states(self, &scrubbed).await
    }

    async fn load_monitor_states(&self) -> Result<Vec<(String, SavedState)>, StoreError> {
        incidents::load_states(self).await
    }

    async fn quarantine_monitor_state(
        &self,
        monitor: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        incidents::quarantine_state(self, monitor, &scrub::text(reason), at).await
    }

    async fn uptime(&self, monitor: &str, now: Millis) -> Result<Uptime, StoreError> {
        results::uptime(self, monitor, now).await
    }

    async fn daily_latency(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DailyLatency>, StoreError> {
        results::daily_latency(self, monitor, now, days).await
    }

    async fn unresolved_alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        outbox::unresolved_groups(self).await
    }

    async fn commit_alerts(&self, commit: &AlertCommit) -> Result<(), StoreError> {
        outbox::commit(self, &scrub::alert_commit(commit)).await
    }

    async fn pending_alerts(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        outbox::pending(self, channel, limit).await
    }

    async fn alert_delivered(&self, id: i64, at: Millis) -> Result<(), StoreError> {
        outbox::delivered(self, id, at).await
    }

    async fn alert_attempt_failed(
        &self,
        id: i64,
        failure: &AttemptFailure,
    ) -> Result<(), StoreError> {
        outbox::attempt_failed(self, id, &scrub::attempt_failure(failure)).await
    }

    async fn outbox_entries(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        outbox::entries(self, limit).await
    }

    async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, StoreError> {
        outbox::backlog(self).await
    }

    async fn prune_alerts(&self, before: Millis) -> Result<u64, StoreError> {
        outbox::prune(self, before).await
    }

    /// Raw results go when older than `retention.raw`; a rollup row goes once its whole bucket
    /// is older than its resolution's retention (it holds nothing newer than the cutoff); both
    /// in short transactions, so writers are never held up for long. Closed incidents go when
    /// they ended before `now - retention.day`; open ones stay. Freed space is reused by later
    /// writes; the database's files do not shrink.
    async fn prune(&self, now: Millis, retention: &Retention) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        let monitors = results::monitor_keys(self).await?;
        self.prune_history(&monitors, now, retention, &mut pruned)
            .await?;
        let cutoff = now.saturating_sub(retention.day);
        pruned.incidents = incidents::prune(self, cutoff).await?;
        pruned.official = official::delete_old(self, cutoff).await?;
        Ok(pruned)
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        Backend::size_bytes(self).await
    }

    async fn daily_counts(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DayCounts>, StoreError> {
        results::daily_counts(self, monitor, now, days).await
    }

    async fn latency_series(
        &self,
        monitor: &str,
        step: SeriesStep,
        now: Millis,
        buckets: u32,
    ) -> Result<Vec<LatencyPoint>, StoreError> {
        results::latency_series(self, monitor, step, now, buckets).await
    }

    async fn incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Incident>, StoreError> {
        incidents::between(self, from, to).await
    }

    async fn record_official_incidents(
        &self,
        provider: &str,
        incidents: &[OfficialIncident],
        seen_at: Millis,
    ) -> Result<(), StoreError> {
        official::upsert(self, provider, incidents, seen_at).await
    }

    async fn official_incidents_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredOfficialIncident>, StoreError> {
        official::between(self, from, to).await
    }

    async fn acknowledge_incidents(&self, links: &[(i64, i64)]) -> Result<(), StoreError> {
        official::link(self, links).await
    }

    fn queue(&self) -> &dyn QueueStore {
        self
    }

    fn cluster(&self) -> Option<&dyn Cluster> {
        Backend::cluster(self)
    }
}

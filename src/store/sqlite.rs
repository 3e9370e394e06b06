//! SQLite implementation of [`super::Store`] (TEMPORARY STUB until the real one lands).
use std::path::Path;
use async_trait::async_trait;
use super::*;
use crate::verdict::Verdict;
pub struct SqliteStore;
impl SqliteStore { pub async fn open(_path: &Path) -> Result<SqliteStore, StoreError> { unimplemented!() } }
#[async_trait]
impl Store for SqliteStore {
    async fn register_monitors(&self, monitors: &[MonitorRecord]) -> Result<(), StoreError> { unimplemented!() }
    async fn record_results(&self, results: &[ResultRecord]) -> Result<(), StoreError> { unimplemented!() }
    async fn recent_results(
        &self,
        monitor: &str,
        limit: u32,
    ) -> Result<Vec<ResultRecord>, StoreError> { unimplemented!() }
    async fn open_incident(&self, incident: &NewIncident) -> Result<i64, StoreError> { unimplemented!() }
    async fn note_incident_failure(
        &self,
        id: i64,
        verdict: Verdict,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> { unimplemented!() }
    async fn close_incident(&self, id: i64, ended_at: Millis) -> Result<(), StoreError> { unimplemented!() }
    async fn reopen_incident(&self, id: i64) -> Result<(), StoreError> { unimplemented!() }
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> { unimplemented!() }
    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> { unimplemented!() }
    async fn save_monitor_state(&self, monitor: &str, snapshot: &str) -> Result<(), StoreError> { unimplemented!() }
    async fn load_monitor_states(&self) -> Result<Vec<(String, String)>, StoreError> { unimplemented!() }
    async fn uptime(&self, monitor: &str, now: Millis) -> Result<Uptime, StoreError> { unimplemented!() }
    async fn daily_latency(
        &self,
        monitor: &str,
        now: Millis,
        days: u32,
    ) -> Result<Vec<DailyLatency>, StoreError> { unimplemented!() }
    async fn prune(&self, now: Millis, retention: &Retention) -> Result<Pruned, StoreError> { unimplemented!() }
    async fn size_bytes(&self) -> Result<u64, StoreError> { unimplemented!() }
}

//! `isdown db copy`: moves an installation's history from its SQLite file into a PostgreSQL
//! database — monitors, raw results, rollups, incidents, official incidents and their links,
//! monitor state snapshots (and those set aside), alert groups and the outbox — without loss,
//! and idempotently: a rerun writes nothing twice, and picks up what the file gained meanwhile.
//!
//! The durable queue (batches, their lines and files) is not copied: it is work in progress,
//! owned by the `serve` that runs it, not history. The report counts what the file still holds
//! so that the operator can finish or cancel batches, and download result files, before
//! switching (README, "Moving to PostgreSQL").
//!
//! The copy is table by table, large tables a page at a time (each page its own PostgreSQL
//! transaction), in an order that keeps references whole: official incidents before the
//! incidents that link to them. How each table is keyed on the way in is the importer's
//! (`postgres::import`); this module only orders the work, pages through the source and counts.
//! A row that would overwrite another row with the same id stops the copy with
//! [`CopyError::Conflict`]: the destination holds another installation's history.

use std::path::PathBuf;

use thiserror::Error;

use super::postgres::PostgresStore;
use super::postgres::import::Imported;
use super::sqlite::SqliteStore;
use super::transfer::{QueueLeft, StateRow};
use super::{DatabaseUrl, PoolSettings, StoreError};

/// Rows read and written per page: a few MiB of results in memory, and PostgreSQL transactions
/// short enough to leave room for other writers.
const PAGE: u32 = 5_000;

#[derive(Debug, Error)]
pub enum CopyError {
    #[error(
        "db copy goes from a SQLite file to a PostgreSQL database: \
         --from sqlite:PATH --to postgres://USER@HOST/DATABASE"
    )]
    Direction,
    #[error("there is no SQLite database at {0}")]
    NoSource(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the destination already holds a different {table} row with id {id}: it has another \
         installation's history; copy into an empty database (or one an earlier copy of this \
         same file filled)"
    )]
    Conflict { table: &'static str, id: i64 },
}

/// Rows copied, per table. A rerun counts again every row it looked at: results already there
/// are counted as `results_present`, everything else as brought up to date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub monitors: u64,
    pub results: u64,
    /// Results the destination held already (an earlier copy): not written again.
    pub results_present: u64,
    pub rollups: u64,
    pub official_incidents: u64,
    pub incidents: u64,
    pub monitor_states: u64,
    /// Snapshots set aside, including those that were not readable JSON in the source.
    pub quarantined_states: u64,
    pub alert_groups: u64,
    pub outbox_entries: u64,
    /// The durable queue's batches and files the source holds: not copied.
    pub queue_left: QueueLeft,
}

/// What the copy is doing, for a progress display: the table, and rows done so far in it.
pub type Progress<'a> = &'a mut (dyn FnMut(&'static str, u64) + Send);

impl CopyError {
    /// True when the command line is at fault (exit code 2), not the databases.
    pub fn is_usage(&self) -> bool {
        matches!(self, CopyError::Direction | CopyError::NoSource(_))
    }
}

/// Opens both ends (applying each one's pending migrations, as `serve` would; the SQLite file
/// must exist, and the PostgreSQL database too) and copies everything from `from` into `to`.
pub async fn copy(
    from: &DatabaseUrl,
    to: &DatabaseUrl,
    pool: &PoolSettings,
    progress: Progress<'_>,
) -> Result<CopyReport, CopyError> {
    let (DatabaseUrl::Sqlite(path), DatabaseUrl::Postgres(url)) = (from, to) else {
        return Err(CopyError::Direction);
    };
    if !path.is_file() {
        return Err(CopyError::NoSource(path.clone()));
    }
    let source = SqliteStore::open(path).await?;
    let destination = PostgresStore::open(url, pool).await?;
    let copied = copy_history(&source, &destination, progress).await;
    source.close().await;
    destination.close().await;
    copied
}

/// Copies everything `from` holds into `to`.
pub async fn copy_history(
    from: &SqliteStore,
    to: &PostgresStore,
    progress: Progress<'_>,
) -> Result<CopyReport, CopyError> {
    let mut report = CopyReport::default();

    let monitors = from.export_monitors().await?;
    to.import_monitors(&monitors).await?;
    report.monitors = monitors.len() as u64;
    progress("monitors", report.monitors);

    let mut after = None;
    loop {
        let (rows, next) = from.export_results(after, PAGE).await?;
        let written = to.import_results(&rows).await?;
        report.results += written;
        report.results_present += rows.len() as u64 - written;
        progress("results", report.results + report.results_present);
        match next {
            Some(cursor) if rows.len() == PAGE as usize => after = Some(cursor),
            _ => break,
        }
    }

    let mut after = None;
    loop {
        let (rows, next) = from.export_rollups(after, PAGE).await?;
        report.rollups += to.import_rollups(&rows).await?;
        progress("rollups", report.rollups);
        match next {
            Some(cursor) if rows.len() == PAGE as usize => after = Some(cursor),
            _ => break,
        }
    }

    let official = from.export_official().await?;
    report.official_incidents = checked("official incident", to.import_official(&official).await?)?;
    progress("official incidents", report.official_incidents);

    let mut after = 0;
    loop {
        let rows = from.export_incidents(after, PAGE).await?;
        report.incidents += checked("incident", to.import_incidents(&rows).await?)?;
        progress("incidents", report.incidents);
        match rows.last() {
            Some(last) if rows.len() == PAGE as usize => after = last.id,
            _ => break,
        }
    }

    let (states, unreadable) = split_states(from.export_states().await?);
    report.monitor_states = to.import_states(&states).await?;
    progress("monitor states", report.monitor_states);
    let quarantined = from.export_quarantined().await?;
    report.quarantined_states = checked(
        "quarantined state",
        to.import_quarantined(&quarantined).await?,
    )?;
    // The copied ids first, so the rows set aside now take ids after them.
    to.advance_identities().await?;
    let now = crate::time::Clock::system().now();
    report.quarantined_states += to
        .import_unreadable_states(&unreadable, UNREADABLE_REASON, now)
        .await?;
    progress("quarantined states", report.quarantined_states);

    let groups = from.export_alert_groups().await?;
    report.alert_groups = checked("alert group", to.import_alert_groups(&groups).await?)?;
    progress("alert groups", report.alert_groups);

    let mut after = 0;
    loop {
        let rows = from.export_outbox(after, PAGE).await?;
        report.outbox_entries += checked("outbox", to.import_outbox(&rows).await?)?;
        progress("outbox entries", report.outbox_entries);
        match rows.last() {
            Some(last) if rows.len() == PAGE as usize => after = last.id,
            _ => break,
        }
    }

    to.advance_identities().await?;
    report.queue_left = from.export_queue_left().await?;
    Ok(report)
}

fn checked(table: &'static str, imported: Imported) -> Result<u64, CopyError> {
    match imported.refused.first() {
        Some(&id) => Err(CopyError::Conflict { table, id }),
        None => Ok(imported.written),
    }
}

/// Why a snapshot copied aside was set aside.
const UNREADABLE_REASON: &str = "the snapshot was not readable JSON when copied";

/// Snapshots that are JSON text go across as they are; any other (a damaged row, which `serve`
/// would set aside at its next start) is set aside in the destination, as found, with the
/// reason — so nothing is lost, and the monitor starts afresh on either store.
fn split_states(rows: Vec<StateRow>) -> (Vec<(String, String)>, Vec<StateRow>) {
    let mut states = Vec::new();
    let mut unreadable = Vec::new();
    for row in rows {
        let json = std::str::from_utf8(&row.snapshot)
            .ok()
            .filter(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
        match json {
            Some(text) => states.push((row.monitor, text.to_owned())),
            None => unreadable.push(row),
        }
    }
    (states, unreadable)
}

//! Reading the store's rows back into its types, once for both back ends.
//!
//! Both schemas hold the same columns under the same names; integers are read as `i64`
//! (PostgreSQL's narrower columns widened as they are read), text as `String`, binary strings as
//! bytes. [`StoredRow`] is that common ground for `SqliteRow` and `PgRow`, and every decoder here is
//! written against it. Nothing is trusted: a value that does not decode or means nothing (an
//! unknown verdict, a negative count) is [`StoreError::Corrupt`], never a panic. No I/O.

use std::sync::Arc;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, TypeInfo, ValueRef};

use super::queue::{
    BatchRecord, BatchStatus, BatchTimes, ClaimedLine, FilePurpose, FileRecord, LineError,
    LineResponse, RequestCounts, ResultKind, ResultOf, StoredResult,
};
use super::rollup::HISTOGRAM_SLOTS;
use super::{
    AlertGroup, Incident, OfficialAck, OfficialIncident, Origin, OutboxEntry, ResultRecord,
    SavedState, StoreError, StoredOfficialIncident, codes, read_error,
};
use crate::incident::IncidentKind;
use crate::time::Millis;
use crate::verdict::Verdict;

/// A column, by position or by name.
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    Index(usize),
    Name(&'a str),
}

impl From<usize> for At<'_> {
    fn from(index: usize) -> Self {
        At::Index(index)
    }
}

impl<'a> From<&'a str> for At<'a> {
    fn from(name: &'a str) -> Self {
        At::Name(name)
    }
}

/// A row of either back end, read as the store's four value shapes. Every decode error is
/// mapped here, once: a value that does not decode as its column's type is corrupt data.
pub trait StoredRow: Row + Sized {
    fn int<'a>(&self, at: impl Into<At<'a>>) -> Result<i64, StoreError>;
    fn int_or_null<'a>(&self, at: impl Into<At<'a>>) -> Result<Option<i64>, StoreError>;
    fn text<'a>(&self, at: impl Into<At<'a>>) -> Result<String, StoreError>;
    fn text_or_null<'a>(&self, at: impl Into<At<'a>>) -> Result<Option<String>, StoreError>;
    fn bytes<'a>(&self, at: impl Into<At<'a>>) -> Result<Vec<u8>, StoreError>;
    fn bytes_or_null<'a>(&self, at: impl Into<At<'a>>) -> Result<Option<Vec<u8>>, StoreError>;
}

/// `row.try_get(at)` for either kind of [`At`].
macro_rules! get {
    ($row:expr, $at:expr) => {
        match $at.into() {
            At::Index(index) => $row.try_get(index),
            At::Name(name) => $row.try_get(name),
        }
        .map_err(read_error)
    };
}

/// The methods that read as they are on both back ends; `int` and `int_or_null` are each row's
/// own.
macro_rules! stored_row {
    ($row:ty, $int_or_null:expr) => {
        impl StoredRow for $row {
            fn int<'a>(&self, at: impl Into<At<'a>>) -> Result<i64, StoreError> {
                let at = at.into();
                self.int_or_null(at)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("NULL where a number belongs ({at:?})"))
                })
            }
            fn int_or_null<'a>(&self, at: impl Into<At<'a>>) -> Result<Option<i64>, StoreError> {
                $int_or_null(self, at.into())
            }
            fn text<'a>(&self, at: impl Into<At<'a>>) -> Result<String, StoreError> {
                get!(self, at)
            }
            fn text_or_null<'a>(
                &self,
                at: impl Into<At<'a>>,
            ) -> Result<Option<String>, StoreError> {
                get!(self, at)
            }
            fn bytes<'a>(&self, at: impl Into<At<'a>>) -> Result<Vec<u8>, StoreError> {
                get!(self, at)
            }
            fn bytes_or_null<'a>(
                &self,
                at: impl Into<At<'a>>,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                get!(self, at)
            }
        }
    };
}

stored_row!(SqliteRow, |row: &SqliteRow, at: At| get!(row, at));

// PostgreSQL's integer columns come in three widths (SMALLINT codes, INTEGER counters, BIGINT
// times and keys); the store reads every one as `i64`, so the SQL needs no casts.
stored_row!(PgRow, |row: &PgRow, at: At| {
    let raw = match at {
        At::Index(index) => row.try_get_raw(index),
        At::Name(name) => row.try_get_raw(name),
    }
    .map_err(read_error)?;
    match raw.type_info().name() {
        "INT2" => get!(row, at).map(|v: Option<i16>| v.map(i64::from)),
        "INT4" => get!(row, at).map(|v: Option<i32>| v.map(i64::from)),
        _ => get!(row, at),
    }
});

/// A result; columns 0–6: at, verdict, blame, status, latency_us, ttft_us, explanation; and
/// one named `region`.
pub fn result<R: StoredRow>(monitor: &str, row: &R) -> Result<ResultRecord, StoreError> {
    let at: Millis = row.int(0)?;
    let verdict_code = row.int(1)?;
    let corrupt =
        |what: String| StoreError::Corrupt(format!("result of {monitor} at {at}: {what}"));
    let verdict = codes::verdict_from_code(verdict_code)
        .ok_or_else(|| corrupt(format!("unknown verdict code {verdict_code}")))?;
    let blame = row
        .int_or_null(2)?
        .map(|code| {
            codes::blame_from_code(code)
                .ok_or_else(|| corrupt(format!("unknown blame code {code}")))
        })
        .transpose()?;
    let status = row
        .int_or_null(3)?
        .map(|s| u16::try_from(s).map_err(|_| corrupt(format!("status {s}"))))
        .transpose()?;
    Ok(ResultRecord {
        monitor_id: monitor.to_owned(),
        at,
        verdict,
        blame,
        status,
        latency_ms: codes::us_to_ms(row.int_or_null(4)?),
        ttft_ms: codes::us_to_ms(row.int_or_null(5)?),
        explanation: row.text_or_null(6)?,
        region: row.text_or_null("region")?.map(Arc::from),
    })
}

/// An incident, with the joined official columns (`official_id`, `official_title`, …).
pub fn incident<R: StoredRow>(row: &R) -> Result<Incident, StoreError> {
    let id = row.int("id")?;
    let corrupt = |what: String| StoreError::Corrupt(format!("incident {id}: {what}"));
    let kind = row.text("kind")?;
    let verdict = row.text("verdict")?;
    let failed_probes = row.int("failed_probes")?;
    Ok(Incident {
        id,
        monitor: row.text("monitor")?,
        provider: row.text("provider")?,
        kind: IncidentKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?,
        verdict: Verdict::parse(&verdict)
            .ok_or_else(|| corrupt(format!("unknown verdict {verdict:?}")))?,
        started_at: row.int("started_at")?,
        ended_at: row.int_or_null("ended_at")?,
        failed_probes: u32::try_from(failed_probes)
            .map_err(|_| corrupt(format!("failed_probes {failed_probes}")))?,
        first_error: row.text_or_null("first_error")?,
        last_error: row.text_or_null("last_error")?,
        opened_by: match (
            row.text_or_null("opened_by")?,
            row.text_or_null("opened_in")?,
        ) {
            (Some(instance), Some(region)) => Some(Origin { instance, region }),
            _ => None,
        },
        official: official_ack(row)?,
    })
}

/// The joined official columns; the foreign key keeps a linked row from going away, so a link
/// without its row reads as no acknowledgement rather than failing the whole read.
fn official_ack<R: StoredRow>(row: &R) -> Result<Option<OfficialAck>, StoreError> {
    let (Some(official_id), Some(title), Some(acknowledged_at)) = (
        row.int_or_null("official_id")?,
        row.text_or_null("official_title")?,
        row.int_or_null("official_acknowledged_at")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(OfficialAck {
        official_id,
        title,
        url: row.text_or_null("official_url")?,
        acknowledged_at,
        resolved_at: row.int_or_null("official_resolved_at")?,
    }))
}

pub fn official<R: StoredRow>(row: &R) -> Result<StoredOfficialIncident, StoreError> {
    Ok(StoredOfficialIncident {
        id: row.int("id")?,
        provider: row.text("provider")?,
        first_seen_at: row.int("first_seen_at")?,
        incident: OfficialIncident {
            source_id: row.text("source_id")?,
            title: row.text("title")?,
            url: row.text_or_null("url")?,
            impact: row.text("impact")?,
            started_at: row.int("started_at")?,
            acknowledged_at: row.int("acknowledged_at")?,
            resolved_at: row.int_or_null("resolved_at")?,
        },
    })
}

pub fn outbox_entry<R: StoredRow>(row: &R) -> Result<OutboxEntry, StoreError> {
    let attempts = row.int("attempts")?;
    Ok(OutboxEntry {
        id: row.int("id")?,
        channel: row.text("channel")?,
        dedup_key: row.text("dedup_key")?,
        event: row.text("event")?,
        payload: row.text("payload")?,
        created_at: row.int("created_at")?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("outbox attempts {attempts}")))?,
        next_attempt_at: row.int("next_attempt_at")?,
        delivered_at: row.int_or_null("delivered_at")?,
        failed_at: row.int_or_null("failed_at")?,
        last_error: row.text_or_null("last_error")?,
    })
}

/// Alert groups from rows of (group columns, `incident_id`, `present`, `ended_at`), ordered by
/// group and incident: one group per run of rows. An incident pruned from the store (`present`
/// NULL) counts as ended at the group's `last_sent_at`.
pub fn alert_groups<R: StoredRow>(rows: &[R]) -> Result<Vec<AlertGroup>, StoreError> {
    let mut groups: Vec<(i64, AlertGroup)> = Vec::new();
    for row in rows {
        let id = row.int("id")?;
        if groups.last().is_none_or(|(last, _)| *last != id) {
            let kind = row.text("kind")?;
            groups.push((
                id,
                AlertGroup {
                    dedup_key: row.text("dedup_key")?,
                    kind: IncidentKind::parse(&kind).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown alert group kind {kind:?}"))
                    })?,
                    opened_at: row.int("opened_at")?,
                    last_sent_at: row.int("last_sent_at")?,
                    resolved_at: row.int_or_null("resolved_at")?,
                    incidents: Vec::new(),
                },
            ));
        }
        let Some(incident) = row.int_or_null("incident_id")? else {
            continue;
        };
        let (_, group) = groups.last_mut().expect("pushed above");
        let ended_at = match row.int_or_null("present")? {
            Some(_) => row.int_or_null("ended_at")?,
            None => Some(group.last_sent_at),
        };
        group.incidents.push((incident, ended_at));
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

/// Snapshots are opaque to the store but must be JSON, checked on the way in and on the way
/// out (a damaged row, or one written by something else).
pub fn check_snapshot(monitor: &str, snapshot: &str) -> Result<(), StoreError> {
    serde_json::from_str::<serde::de::IgnoredAny>(snapshot)
        .map(|_| ())
        .map_err(|e| StoreError::Corrupt(format!("snapshot of monitor {monitor} is not JSON: {e}")))
}

/// A (monitor, snapshot) row: one damaged row is that monitor's problem, never the loader's.
pub fn saved_state<R: StoredRow>(row: &R) -> Result<(String, SavedState), StoreError> {
    let monitor = row.text(0)?;
    let saved = match row.text(1) {
        Err(_) => SavedState::Unreadable("the snapshot is not text".into()),
        Ok(snapshot) => match check_snapshot(&monitor, &snapshot) {
            Ok(()) => SavedState::Snapshot(snapshot),
            Err(e) => SavedState::Unreadable(e.to_string()),
        },
    };
    Ok((monitor, saved))
}

/// A rollup counter, never negative.
pub fn count<R: StoredRow>(row: &R, index: usize) -> Result<u64, StoreError> {
    let value = row.int(index)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative rollup count {value}")))
}

/// The histogram of a row whose columns `first…` are the `le_*` counters in order.
pub fn histogram<R: StoredRow>(
    row: &R,
    first: usize,
) -> Result<[i64; HISTOGRAM_SLOTS], StoreError> {
    let mut histogram = [0i64; HISTOGRAM_SLOTS];
    for (slot, count) in histogram.iter_mut().enumerate() {
        *count = row.int(first + slot)?;
    }
    Ok(histogram)
}

// === the durable queue ===

/// A count column (sizes, lines, request counts), never negative.
pub fn queue_count<R: StoredRow>(row: &R, column: &str) -> Result<u64, StoreError> {
    let value = row.int(column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {column}: {value}")))
}

/// A line number (1-based, as uploaded).
pub fn line_number<R: StoredRow>(row: &R, column: &str) -> Result<u32, StoreError> {
    let value = row.int(column)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range: {value}")))
}

/// A line just claimed, with its request (`content`). `uncounted` is 1 when the row was read
/// before the claim counted this dispatch, 0 when after.
pub fn claimed_line<R: StoredRow>(row: &R, uncounted: i64) -> Result<ClaimedLine, StoreError> {
    let dispatches = row.int("dispatches")?.saturating_add(uncounted);
    Ok(ClaimedLine {
        batch_key: row.int("batch_key")?,
        line: line_number(row, "line")?,
        custom_id: row.text("custom_id")?,
        request: row.bytes("content")?,
        dispatches: u32::try_from(dispatches).unwrap_or(u32::MAX),
    })
}

/// A file row with its result file's batch id (`batch_id`).
pub fn queue_file<R: StoredRow>(row: &R) -> Result<FileRecord, StoreError> {
    let purpose = row.text("purpose")?;
    let result_of = match (
        row.int_or_null("batch_key")?,
        row.text_or_null("batch_id")?,
        row.text_or_null("result_kind")?,
    ) {
        (Some(batch_key), Some(batch_id), Some(kind)) => Some(ResultOf {
            batch_key,
            batch_id,
            kind: ResultKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown result kind {kind:?}")))?,
        }),
        (None, None, None) => None,
        _ => return Err(StoreError::Corrupt("half a result file reference".into())),
    };
    Ok(FileRecord {
        key: row.int("key")?,
        id: row.text("id")?,
        owner: row.text("owner")?,
        filename: row.text("filename")?,
        purpose: FilePurpose::parse(&purpose)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown file purpose {purpose:?}")))?,
        bytes: queue_count(row, "bytes")?,
        lines: queue_count(row, "lines")?,
        created_at: row.int("created_at")?,
        result_of,
    })
}

pub fn queue_batch<R: StoredRow>(row: &R) -> Result<BatchRecord, StoreError> {
    let status = row.text("status")?;
    Ok(BatchRecord {
        key: row.int("key")?,
        id: row.text("id")?,
        owner: row.text("owner")?,
        input_file_key: row.int("input_file_key")?,
        input_file_id: row.text("input_file_id")?,
        endpoint: row.text("endpoint")?,
        completion_window: row.text("completion_window")?,
        metadata: row.text_or_null("metadata")?,
        status: BatchStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown batch status {status:?}")))?,
        errors: row.text_or_null("errors")?,
        times: BatchTimes {
            created_at: row.int("created_at")?,
            in_progress_at: row.int_or_null("in_progress_at")?,
            expires_at: row.int("expires_at")?,
            finalizing_at: row.int_or_null("finalizing_at")?,
            completed_at: row.int_or_null("completed_at")?,
            failed_at: row.int_or_null("failed_at")?,
            expired_at: row.int_or_null("expired_at")?,
            cancelling_at: row.int_or_null("cancelling_at")?,
            cancelled_at: row.int_or_null("cancelled_at")?,
        },
        counts: RequestCounts {
            total: queue_count(row, "total")?,
            completed: queue_count(row, "completed")?,
            failed: queue_count(row, "failed")?,
        },
        output_file_id: row.text_or_null("output_file_id")?,
        error_file_id: row.text_or_null("error_file_id")?,
    })
}

/// A line's result, for the result files.
pub fn queue_result<R: StoredRow>(row: &R) -> Result<StoredResult, StoreError> {
    let response = match row.int_or_null("status_code")? {
        Some(status) => Some(LineResponse {
            status_code: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("status code {status}")))?,
            request_id: row.text_or_null("request_id")?.unwrap_or_default(),
            provider: row.text_or_null("provider")?,
            model: row.text_or_null("served_model")?,
            attempts: row
                .int_or_null("attempts")?
                .and_then(|a| u32::try_from(a).ok()),
            body: row.bytes_or_null("body")?.unwrap_or_default(),
        }),
        None => None,
    };
    let error = match row.text_or_null("error_code")? {
        Some(code) => Some(LineError {
            code,
            message: row.text_or_null("error_message")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(StoredResult {
        line: line_number(row, "line")?,
        custom_id: row.text("custom_id")?,
        response,
        error,
    })
}

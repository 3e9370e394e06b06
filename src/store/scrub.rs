//! The store's half of keeping secrets out: every text a write carries passes
//! [`crate::secret::scrub`] before any back end stores it, whatever produced the text upstream.
//! JSON payloads (monitor snapshots, queued alert messages) are scrubbed string by string so
//! their structure survives. The gate also replaces U+0000 with U+FFFD: PostgreSQL's text cannot
//! hold it (a provider's error body may carry one), and doing it here for both back ends keeps
//! what SQLite and PostgreSQL store — and answer — the same. Back ends call these on the way in;
//! nothing here touches a database.

use std::borrow::Cow;

use super::queue::{LineError, LineResult};
use super::{AlertCommit, AttemptFailure, NewIncident, OfficialIncident, ResultRecord};
use crate::secret::{scrub, scrub_json_text, scrub_registered};

/// What a NUL character is stored as.
const NUL_REPLACEMENT: &str = "\u{FFFD}";

/// `text`, scrubbed; borrowed when there was nothing to remove.
pub fn text(text: &str) -> Cow<'_, str> {
    let clean = without_nul(scrub(text));
    if clean == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(clean)
    }
}

fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', NUL_REPLACEMENT)
    } else {
        text
    }
}

/// A JSON document's text, scrubbed string by string (JSON escapes a NUL inside a string, so
/// only text that is not JSON can still carry one).
pub fn json_text(text: &str) -> String {
    without_nul(scrub_json_text(text))
}

fn option(value: &Option<String>) -> Option<String> {
    value.as_deref().map(|t| text(t).into_owned())
}

/// Official incidents with their titles and links scrubbed (public text, but every text a
/// write carries passes the same gate).
pub fn official(incidents: &[OfficialIncident]) -> Vec<OfficialIncident> {
    incidents
        .iter()
        .map(|o| OfficialIncident {
            title: text(&o.title).into_owned(),
            url: option(&o.url),
            ..o.clone()
        })
        .collect()
}

/// Results with their explanations scrubbed; no copy when none needed it.
pub fn results(results: &[ResultRecord]) -> Cow<'_, [ResultRecord]> {
    let dirty = |r: &ResultRecord| {
        r.explanation
            .as_deref()
            .is_some_and(|t| matches!(text(t), Cow::Owned(_)))
    };
    if !results.iter().any(dirty) {
        return Cow::Borrowed(results);
    }
    Cow::Owned(
        results
            .iter()
            .map(|r| ResultRecord {
                explanation: option(&r.explanation),
                ..r.clone()
            })
            .collect(),
    )
}

pub fn incident(incident: &NewIncident) -> NewIncident {
    NewIncident {
        first_error: option(&incident.first_error),
        ..incident.clone()
    }
}

pub fn error_sample(sample: Option<&str>) -> Option<Cow<'_, str>> {
    sample.map(text)
}

pub fn snapshot(snapshot: &str) -> Cow<'_, str> {
    let clean = json_text(snapshot);
    if clean == snapshot {
        Cow::Borrowed(snapshot)
    } else {
        Cow::Owned(clean)
    }
}

pub fn alert_commit(commit: &AlertCommit) -> AlertCommit {
    let mut commit = commit.clone();
    for entry in &mut commit.entries {
        entry.payload = json_text(&entry.payload);
    }
    commit
}

pub fn attempt_failure(failure: &AttemptFailure) -> AttemptFailure {
    AttemptFailure {
        error: text(&failure.error).into_owned(),
        ..failure.clone()
    }
}

/// Line results as a store may keep them: a response body loses the exact values of configured
/// secrets only (it is JSON a client will parse, so its shape must stay); error messages are
/// scrubbed like any other text. No copy when nothing needed it.
pub fn line_results(results: &[LineResult]) -> Cow<'_, [LineResult]> {
    let dirty = |r: &LineResult| {
        r.response.as_ref().is_some_and(|resp| {
            std::str::from_utf8(&resp.body)
                .is_ok_and(|body| matches!(scrub_registered(body), Cow::Owned(_)))
        }) || r
            .error
            .as_ref()
            .is_some_and(|e| matches!(text(&e.message), Cow::Owned(_)))
    };
    if !results.iter().any(dirty) {
        return Cow::Borrowed(results);
    }
    Cow::Owned(
        results
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Some(resp) = &mut r.response
                    && let Ok(body) = std::str::from_utf8(&resp.body)
                    && let Cow::Owned(clean) = scrub_registered(body)
                {
                    resp.body = clean.into_bytes();
                }
                if let Some(error) = &mut r.error {
                    error.message = text(&error.message).into_owned();
                }
                r
            })
            .collect(),
    )
}

/// A line error (expired, cancelled) with its message scrubbed.
pub fn line_error(error: &LineError) -> LineError {
    LineError {
        code: error.code.clone(),
        message: text(&error.message).into_owned(),
    }
}

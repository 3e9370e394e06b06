//! The OpenAI objects of the Files and Batch API as isdown serves them — the file object, the
//! batch object, lists, the deleted-file answer — and the errors of the queue's endpoints, in
//! the gateway's one OpenAI error shape (`gateway::error::ApiError`).
//!
//! Pure: records in (`store::queue`), JSON out. Times leave as Unix seconds, as OpenAI's do.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::gateway::error::ApiError;
use crate::store::queue::{BatchRecord, BatchStatus, FileRecord};
use crate::time::Millis;

/// A new object id: `prefix` and 24 random lower-case hex digits (ids are not secrets: the
/// owner check guards every object).
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    for _ in 0..24 {
        id.push(char::from_digit(fastrand::u32(0..16), 16).expect("a digit below 16"));
    }
    id
}

/// Prefix of file ids, as OpenAI's.
pub const FILE_PREFIX: &str = "file-";
/// Prefix of batch ids, as OpenAI's.
pub const BATCH_PREFIX: &str = "batch_";

fn seconds(at: Millis) -> i64 {
    at.div_euclid(1_000)
}

fn seconds_opt(at: Option<Millis>) -> Value {
    at.map_or(Value::Null, |at| json!(seconds(at)))
}

/// The file object. `expires_at`: when the queue's retention may remove it.
pub fn file(record: &FileRecord, retention_ms: Millis) -> Value {
    json!({
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": seconds(record.created_at),
        "expires_at": seconds(record.created_at.saturating_add(retention_ms)),
        "filename": record.filename,
        "purpose": record.purpose.as_str(),
        "status": "processed",
        "status_details": null,
    })
}

/// The batch object.
pub fn batch(record: &BatchRecord) -> Value {
    let t = &record.times;
    let metadata = record
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .unwrap_or(Value::Null);
    let errors = record
        .errors
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .map_or(Value::Null, |data| json!({"object": "list", "data": data}));
    json!({
        "id": record.id,
        "object": "batch",
        "endpoint": record.endpoint,
        "errors": errors,
        "input_file_id": record.input_file_id,
        "completion_window": record.completion_window,
        "status": record.status.as_str(),
        "output_file_id": record.output_file_id,
        "error_file_id": record.error_file_id,
        "created_at": seconds(t.created_at),
        "in_progress_at": seconds_opt(t.in_progress_at),
        "expires_at": seconds(t.expires_at),
        "finalizing_at": seconds_opt(t.finalizing_at),
        "completed_at": seconds_opt(t.completed_at),
        "failed_at": seconds_opt(t.failed_at),
        "expired_at": seconds_opt(t.expired_at),
        "cancelling_at": seconds_opt(t.cancelling_at),
        "cancelled_at": seconds_opt(t.cancelled_at),
        "request_counts": {
            "total": record.counts.total,
            "completed": record.counts.completed,
            "failed": record.counts.failed,
        },
        "metadata": metadata,
    })
}

/// A cursor page: `data` holds at most `limit` objects; one more was read to know `has_more`.
pub fn list(mut data: Vec<Value>, limit: usize) -> Value {
    let has_more = data.len() > limit;
    data.truncate(limit);
    let id = |v: Option<&Value>| v.and_then(|v| v.get("id")).cloned().unwrap_or(Value::Null);
    json!({
        "object": "list",
        "first_id": id(data.first()),
        "last_id": id(data.last()),
        "has_more": has_more,
        "data": data,
    })
}

/// The answer to a deleted file.
pub fn deleted(id: &str) -> Value {
    json!({"id": id, "object": "file", "deleted": true})
}

// === errors of the queue's endpoints ===

fn error(status: StatusCode, message: String) -> ApiError {
    ApiError::new(status, "invalid_request_error", message)
}

fn with_param(mut e: ApiError, param: &'static str) -> ApiError {
    e.param = Some(param);
    e
}

fn with_code(mut e: ApiError, code: &str) -> ApiError {
    e.code = Some(code.to_owned());
    e
}

pub fn no_such_file(id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        format!("No such File object: {}", crate::secret::scrub(id)),
    )
}

pub fn no_such_batch(id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        format!("No such Batch object: {}", crate::secret::scrub(id)),
    )
}

/// A request field is missing or not what the endpoint takes.
pub fn invalid(param: &'static str, message: impl Into<String>) -> ApiError {
    with_param(error(StatusCode::BAD_REQUEST, message.into()), param)
}

/// The upload is larger than the Batch API allows, or one of its lines is.
pub fn too_large(message: impl Into<String>) -> ApiError {
    with_code(
        error(StatusCode::PAYLOAD_TOO_LARGE, message.into()),
        "file_too_large",
    )
}

/// The file is the input of a batch that has not ended.
pub fn file_in_use(id: &str, batch: &str) -> ApiError {
    with_code(
        error(
            StatusCode::CONFLICT,
            format!(
                "file {} is the input of batch {batch}, which has not ended; cancel the batch \
                 or wait for it to end, then delete the file",
                crate::secret::scrub(id)
            ),
        ),
        "file_in_use",
    )
}

/// A batch that has already ended cannot be cancelled.
pub fn not_cancellable(id: &str, status: BatchStatus) -> ApiError {
    with_code(
        error(
            StatusCode::CONFLICT,
            format!(
                "batch {} has already ended ({}); only a batch that is validating or in \
                 progress can be cancelled",
                crate::secret::scrub(id),
                status.as_str()
            ),
        ),
        "batch_not_cancellable",
    )
}

/// The queue's database failed; the message is the store's, scrubbed.
pub fn storage(error_text: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        format!(
            "the queue's database failed: {}",
            crate::secret::scrub(error_text)
        ),
    );
    e.code = Some("storage_error".into());
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::{BatchTimes, RequestCounts};

    #[test]
    fn ids_have_openai_prefixes_and_24_hex_digits() {
        let id = new_id(BATCH_PREFIX);
        assert!(id.starts_with("batch_") && id.len() == 30, "{id}");
        assert!(id[6..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(new_id(FILE_PREFIX), new_id(FILE_PREFIX));
    }

    #[test]
    fn a_batch_object_has_every_documented_field_in_seconds() {
        let record = BatchRecord {
            key: 1,
            id: "batch_1".into(),
            owner: "o".into(),
            input_file_key: 1,
            input_file_id: "file-1".into(),
            endpoint: "/v1/chat/completions".into(),
            completion_window: "24h".into(),
            metadata: Some(r#"{"job":"nightly"}"#.into()),
            status: BatchStatus::Failed,
            errors: Some(
                r#"[{"code":"empty_file","message":"m","param":null,"line":null}]"#.into(),
            ),
            times: BatchTimes {
                created_at: 1_700_000_000_999,
                expires_at: 1_700_086_400_000,
                failed_at: Some(1_700_000_001_000),
                ..BatchTimes::default()
            },
            counts: RequestCounts::default(),
            output_file_id: None,
            error_file_id: None,
        };
        let v = batch(&record);
        for field in [
            "id",
            "object",
            "endpoint",
            "errors",
            "input_file_id",
            "completion_window",
            "status",
            "output_file_id",
            "error_file_id",
            "created_at",
            "in_progress_at",
            "expires_at",
            "finalizing_at",
            "completed_at",
            "failed_at",
            "expired_at",
            "cancelling_at",
            "cancelled_at",
            "request_counts",
            "metadata",
        ] {
            assert!(v.get(field).is_some(), "{field} missing: {v}");
        }
        assert_eq!(v["created_at"], 1_700_000_000);
        assert_eq!(v["failed_at"], 1_700_000_001);
        assert_eq!(v["in_progress_at"], Value::Null);
        assert_eq!(v["errors"]["object"], "list");
        assert_eq!(v["errors"]["data"][0]["code"], "empty_file");
        assert_eq!(v["metadata"]["job"], "nightly");
        assert_eq!(
            v["request_counts"],
            json!({"total": 0, "completed": 0, "failed": 0})
        );
    }

    #[test]
    fn a_list_says_whether_more_follow() {
        let items: Vec<Value> = (1..=3).map(|i| json!({"id": format!("x{i}")})).collect();
        let page = list(items.clone(), 2);
        assert_eq!(page["has_more"], true);
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(
            (page["first_id"].clone(), page["last_id"].clone()),
            (json!("x1"), json!("x2"))
        );
        assert_eq!(list(items, 3)["has_more"], false);
        assert_eq!(list(vec![], 3)["first_id"], Value::Null);
    }
}

//! `POST /v1/files`: a multipart upload streamed into the store as it arrives — split into lines
//! (`split`), written a group of lines per transaction, never held whole. The Batch API's
//! 200 MB limit is enforced while reading: past it (or past the announced length) the upload is
//! dropped and answered 413, and the rest of the body is read and discarded, up to as much
//! again, so that a client still sending sees the answer instead of a broken connection.

use axum::extract::Multipart;
use axum::extract::multipart::Field;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;

use super::Shared;
use super::object::{self, FILE_PREFIX};
use super::settings::MAX_FILE_BYTES;
use super::split::{SplitError, Splitter};
use crate::gateway::error::ApiError;
use crate::store::StoreError;
use crate::store::queue::{FileLine, FilePurpose, FileRecord, NewFile};

/// Lines written per store transaction (or fewer, when they hold [`GROUP_BYTES`]).
const GROUP_LINES: usize = 512;
/// Bytes of lines held before they are written: what one upload holds at most, besides the line
/// being read.
const GROUP_BYTES: usize = 4 * 1024 * 1024;
/// Multipart framing and the small fields around the file.
const FRAMING_BYTES: u64 = 1024 * 1024;
/// The `purpose` field (and any other small field) is read up to this.
const SMALL_FIELD_BYTES: usize = 256;

/// Reads the upload of `owner`; the file is visible once it is whole.
pub async fn upload(
    shared: &Shared,
    owner: &str,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<FileRecord, ApiError> {
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_FILE_BYTES + FRAMING_BYTES) {
        drain(&mut multipart, MAX_FILE_BYTES).await;
        return Err(too_large());
    }
    let mut purpose: Option<String> = None;
    let mut stored: Option<FileRecord> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                discard(shared, stored.as_ref()).await;
                return Err(object::invalid(
                    "file",
                    format!("the upload could not be read: {e}"),
                ));
            }
        };
        match field.name() {
            Some("file") if stored.is_none() => match store_file(shared, owner, field).await {
                Ok(file) => stored = Some(file),
                Err(Refused {
                    error,
                    drain: read_rest,
                }) => {
                    if read_rest {
                        drain(&mut multipart, MAX_FILE_BYTES).await;
                    }
                    return Err(error);
                }
            },
            Some("purpose") => purpose = Some(small_text(field).await?),
            _ => {
                // Other fields (e.g. `expires_after`) are read and ignored.
                small_text(field).await?;
            }
        }
    }
    let Some(file) = stored else {
        return Err(object::invalid(
            "file",
            "Missing required parameter: 'file' (the JSONL file, as a multipart file field).",
        ));
    };
    if purpose.as_deref() != Some(FilePurpose::Batch.as_str()) {
        discard(shared, Some(&file)).await;
        return Err(object::invalid(
            "purpose",
            "isdown stores files for the Batch API only: 'purpose' must be 'batch'.",
        ));
    }
    Ok(file)
}

/// Why an upload was refused, and whether the rest of the body is still to be read (so that the
/// client, still sending, sees the answer).
struct Refused {
    error: ApiError,
    drain: bool,
}

/// Streams the file field into the store.
async fn store_file(
    shared: &Shared,
    owner: &str,
    mut field: Field<'_>,
) -> Result<FileRecord, Refused> {
    let storage = |e: StoreError| object::storage(&e.to_string());
    let refused = |error: ApiError| Refused {
        error,
        drain: false,
    };
    let new = NewFile {
        id: object::new_id(FILE_PREFIX),
        owner: owner.to_owned(),
        filename: field
            .file_name()
            .map(crate::secret::scrub)
            .unwrap_or_else(|| "upload.jsonl".to_owned()),
        purpose: FilePurpose::Batch,
        created_at: shared.now(),
    };
    let queue = shared.store.queue();
    let key = queue
        .queue_file_begin(&new)
        .await
        .map_err(|e| refused(storage(e)))?;
    let mut splitter = Splitter::new(shared.settings.max_line_bytes);
    let mut group: Vec<FileLine> = Vec::new();
    let mut group_bytes = 0usize;
    let (mut bytes, mut lines) = (0u64, 0u64);
    let failure: Refused = loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                break match finish(splitter, &mut group) {
                    Ok(()) => {
                        lines += group.len() as u64;
                        if let Err(e) = queue.queue_file_append(key, &group).await {
                            break refused(storage(e));
                        }
                        if let Err(e) = queue.queue_file_complete(key, bytes, lines).await {
                            break refused(storage(e));
                        }
                        return Ok(FileRecord {
                            key,
                            id: new.id,
                            owner: new.owner,
                            filename: new.filename,
                            purpose: new.purpose,
                            bytes,
                            lines,
                            created_at: new.created_at,
                            result_of: None,
                        });
                    }
                    Err(e) => refused(split_failure(e)),
                };
            }
            Err(e) => {
                break refused(object::invalid(
                    "file",
                    format!("the upload broke off: {e}"),
                ));
            }
        };
        bytes += chunk.len() as u64;
        if bytes > MAX_FILE_BYTES {
            break Refused {
                error: too_large(),
                drain: true,
            };
        }
        let pushed = splitter.push(&chunk, &mut |line| {
            group_bytes += line.content.len();
            group.push(line);
        });
        if let Err(e) = pushed {
            break Refused {
                error: split_failure(e),
                drain: true,
            };
        }
        if group.len() >= GROUP_LINES || group_bytes >= GROUP_BYTES {
            lines += group.len() as u64;
            if let Err(e) = queue.queue_file_append(key, &group).await {
                break refused(storage(e));
            }
            group.clear();
            group_bytes = 0;
        }
    };
    if let Err(e) = queue.queue_file_discard(key).await {
        tracing::warn!(error = %e, "queue: an unfinished upload could not be removed yet");
    }
    Err(failure)
}

fn finish(splitter: Splitter, group: &mut Vec<FileLine>) -> Result<(), SplitError> {
    splitter.finish(&mut |line| group.push(line)).map(|_| ())
}

fn split_failure(error: SplitError) -> ApiError {
    match error {
        SplitError::LineTooLong { .. } => object::too_large(format!(
            "{error}: a request line may be as large as the gateway's max_request_bytes"
        )),
        SplitError::TooManyLines => object::too_large(error.to_string()),
    }
}

fn too_large() -> ApiError {
    object::too_large(format!(
        "the file is larger than {} MB, the most the Batch API takes",
        MAX_FILE_BYTES / 1_000_000
    ))
}

/// A small text field (`purpose`), bounded.
async fn small_text(mut field: Field<'_>) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| object::invalid("purpose", format!("the upload could not be read: {e}")))?
    {
        if text.len() + chunk.len() > SMALL_FIELD_BYTES {
            return Err(object::invalid(
                "purpose",
                format!("a form field other than 'file' is longer than {SMALL_FIELD_BYTES} bytes"),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).map_err(|_| object::invalid("purpose", "a form field is not UTF-8"))
}

/// Reads and discards what is left of the body, up to `limit` bytes.
async fn drain(multipart: &mut Multipart, limit: u64) {
    let mut read = 0u64;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            read += chunk.len() as u64;
            if read > limit {
                return;
            }
        }
    }
}

/// Removes an upload that will not be kept.
async fn discard(shared: &Shared, file: Option<&FileRecord>) {
    if let Some(file) = file {
        // Complete files are deleted through the owner's view of them.
        if let Err(e) = shared
            .store
            .queue()
            .queue_file_delete(&file.owner, &file.id)
            .await
        {
            tracing::warn!(error = %e, "queue: a refused upload could not be removed");
        }
    }
}

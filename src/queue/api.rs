//! The Files and Batch API endpoints: `POST|GET /v1/files`, `GET|DELETE /v1/files/{id}`,
//! `GET /v1/files/{id}/content`, `POST|GET /v1/batches`, `GET /v1/batches/{id}`,
//! `POST /v1/batches/{id}/cancel`.
//!
//! Every request is checked by the gateway's client auth first (the same keys and, for an open
//! gateway, the same guard against web pages — an upload counts as a request without a JSON
//! body, so its `Host` and `Origin` are checked); the key it presents decides the owner, and a
//! key sees and touches only its own objects (another owner's id answers 404, as an unknown id
//! does). Handlers validate, store and answer; they run nothing: creating or cancelling a batch
//! wakes the dispatcher.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};

use super::Shared;
use super::line::ENDPOINT;
use super::object::{self, BATCH_PREFIX};
use super::results;
use crate::gateway::auth::{self, presented_key};
use crate::gateway::error::ApiError;
use crate::store::StoreError;
use crate::store::queue::{BatchStatus, FileDeletion, FilePurpose, FileRecord, ListPage, NewBatch};
use crate::time::{millis_of, parse_duration};

/// OpenAI's bounds on metadata: 16 pairs, keys up to 64 characters, values up to 512.
const METADATA_PAIRS: usize = 16;
const METADATA_KEY_CHARS: usize = 64;
const METADATA_VALUE_CHARS: usize = 512;

/// A batch creation request is a few hundred bytes; this is generous.
const MAX_CREATE_BYTES: usize = 64 * 1024;

/// The shortest and longest completion windows taken: OpenAI takes `24h` only; isdown takes
/// other durations too (a short one for tests and demos, up to a week for long outages).
const MIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// What a handler answers: the response, or the OpenAI-shaped error axum turns into one.
type Answer = Result<Response, ApiError>;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v1/files",
            get(list_files)
                .post(upload_file)
                // The upload enforces its own limit while it streams (`upload`).
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/files/{id}", get(retrieve_file).delete(delete_file))
        .route("/v1/files/{id}/content", get(file_content))
        .route("/v1/batches", get(list_batches).post(create_batch))
        .route("/v1/batches/{id}", get(retrieve_batch))
        .route("/v1/batches/{id}/cancel", post(cancel_batch))
        .with_state(shared)
}

fn json(value: Value) -> Answer {
    Ok(axum::Json(value).into_response())
}

fn storage(error: StoreError) -> ApiError {
    object::storage(&error.to_string())
}

/// The owner of a request the gateway's auth lets through.
fn owner(shared: &Shared, headers: &HeaderMap, body: auth::Body) -> Result<String, ApiError> {
    shared.gateway.check_client(headers, body)?;
    Ok(shared.owners.of(presented_key(headers)))
}

/// The owner of a request without a JSON body that the gateway's client auth let through:
/// every handler's but batch creation's (its body is JSON). Handlers take it after their path,
/// so a bad path is still answered before the key is checked.
struct Owner(String);

impl FromRequestParts<Arc<Shared>> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        owner(shared, &parts.headers, auth::Body::None).map(Owner)
    }
}

type Params = Result<Query<BTreeMap<String, String>>, QueryRejection>;

fn params(query: Params) -> Result<BTreeMap<String, String>, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| object::invalid("query", format!("the query string is not valid: {e}")))
}

/// `limit` within `1..=max`, `default` when absent.
fn limit(params: &BTreeMap<String, String>, default: u32, max: u32) -> Result<u32, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| object::invalid("limit", format!("limit must be between 1 and {max}"))),
    }
}

// === files ===

/// The owner's file `id`; another owner's file is as unknown as one that does not exist.
async fn owned_file(shared: &Shared, owner: &str, id: &str) -> Result<FileRecord, ApiError> {
    shared
        .store
        .queue()
        .queue_file(owner, id)
        .await
        .map_err(storage)?
        .ok_or_else(|| object::no_such_file(id))
}

async fn upload_file(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Owner(owner): Owner,
    multipart: Result<Multipart, MultipartRejection>,
) -> Answer {
    let multipart = multipart.map_err(|e| {
        object::invalid("file", format!("send the file as multipart/form-data: {e}"))
    })?;
    let file = super::upload::upload(&shared, &owner, &headers, multipart).await?;
    json(object::file(&file, shared.retention_ms()))
}

async fn list_files(
    State(shared): State<Arc<Shared>>,
    query: Params,
    Owner(owner): Owner,
) -> Answer {
    let params = params(query)?;
    let limit = limit(&params, 10_000, 10_000)?;
    let newest_first = match params.get("order").map(String::as_str) {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(object::invalid("order", "order must be 'asc' or 'desc'")),
    };
    let purpose = match params.get("purpose") {
        None => None,
        Some(p) => Some(FilePurpose::parse(p).ok_or_else(|| {
            object::invalid("purpose", "isdown stores 'batch' and 'batch_output' files")
        })?),
    };
    let page = ListPage {
        after: params.get("after").cloned(),
        limit: limit + 1,
        newest_first,
        purpose,
    };
    let files = shared
        .store
        .queue()
        .queue_files(&owner, &page)
        .await
        .map_err(storage)?;
    let retention = shared.retention_ms();
    let data = files.iter().map(|f| object::file(f, retention)).collect();
    json(object::list(data, limit as usize))
}

async fn retrieve_file(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Owner(owner): Owner,
) -> Answer {
    let file = owned_file(&shared, &owner, &id).await?;
    json(object::file(&file, shared.retention_ms()))
}

async fn delete_file(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Owner(owner): Owner,
) -> Answer {
    match shared
        .store
        .queue()
        .queue_file_delete(&owner, &id)
        .await
        .map_err(storage)?
    {
        FileDeletion::Deleted => json(object::deleted(&id)),
        FileDeletion::NotFound => Err(object::no_such_file(&id)),
        FileDeletion::InUse { batch } => Err(object::file_in_use(&id, &batch)),
    }
}

async fn file_content(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Owner(owner): Owner,
) -> Answer {
    let file = owned_file(&shared, &owner, &id).await?;
    let store = shared.store.clone();
    let body = match file.result_of {
        Some(of) => Body::from_stream(results::stream(store, of.batch_key, of.batch_id, of.kind)),
        None => Body::from_stream(results::input_stream(store, file.key)),
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    Ok(response)
}

// === batches ===

async fn create_batch(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Answer {
    let owner = owner(&shared, &headers, auth::Body::Json)?;
    let bytes = axum::body::to_bytes(body, MAX_CREATE_BYTES)
        .await
        .map_err(|_| {
            object::invalid(
                "body",
                format!("send at most {MAX_CREATE_BYTES} bytes of JSON"),
            )
        })?;
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(object::invalid(
            "body",
            "the request body is not a JSON object",
        ));
    };
    let new = new_batch(&shared, &owner, &request).await?;
    let queue = shared.store.queue();
    queue.queue_batch_create(&new).await.map_err(storage)?;
    let created = queue
        .queue_batch(Some(&owner), &new.id)
        .await
        .map_err(storage)?
        .ok_or_else(|| object::no_such_batch(&new.id))?;
    shared.wake.notify_one();
    json(object::batch(&created))
}

/// The batch a creation request asks for, checked field by field.
async fn new_batch(
    shared: &Shared,
    owner: &str,
    request: &Map<String, Value>,
) -> Result<NewBatch, ApiError> {
    let text = |field: &'static str| match request.get(field) {
        Some(Value::String(value)) => Ok(value.clone()),
        _ => Err(object::invalid(
            field,
            format!("Missing required parameter: '{field}' (a string)."),
        )),
    };
    let input_file_id = text("input_file_id")?;
    let endpoint = text("endpoint")?;
    if endpoint != ENDPOINT {
        return Err(object::invalid(
            "endpoint",
            format!("isdown runs batches of {ENDPOINT} only"),
        ));
    }
    let completion_window = text("completion_window")?;
    let window = parse_duration(&completion_window, MIN_WINDOW, MAX_WINDOW).map_err(|e| {
        object::invalid(
            "completion_window",
            format!("completion_window must be \"24h\" or another duration up to 7 days: {e}"),
        )
    })?;
    let metadata = match request.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(pairs)) => Some(metadata(pairs)?),
        Some(_) => return Err(object::invalid("metadata", "metadata must be an object")),
    };
    let file = shared
        .store
        .queue()
        .queue_file(owner, &input_file_id)
        .await
        .map_err(storage)?
        .filter(|f| f.purpose == FilePurpose::Batch)
        .ok_or_else(|| object::no_such_file(&input_file_id))?;
    let created_at = shared.now();
    Ok(NewBatch {
        id: object::new_id(BATCH_PREFIX),
        owner: owner.to_owned(),
        input_file_key: file.key,
        input_file_id,
        endpoint,
        completion_window,
        metadata,
        created_at,
        expires_at: created_at.saturating_add(millis_of(window)),
    })
}

/// Metadata within OpenAI's bounds, as JSON text.
fn metadata(pairs: &Map<String, Value>) -> Result<String, ApiError> {
    if pairs.len() > METADATA_PAIRS {
        return Err(object::invalid(
            "metadata",
            format!("metadata holds at most {METADATA_PAIRS} pairs"),
        ));
    }
    for (key, value) in pairs {
        let Value::String(value) = value else {
            return Err(object::invalid(
                "metadata",
                "metadata values must be strings",
            ));
        };
        if key.chars().count() > METADATA_KEY_CHARS || value.chars().count() > METADATA_VALUE_CHARS
        {
            return Err(object::invalid(
                "metadata",
                format!(
                    "metadata keys are at most {METADATA_KEY_CHARS} characters and values at \
                     most {METADATA_VALUE_CHARS}"
                ),
            ));
        }
    }
    Ok(Value::Object(pairs.clone()).to_string())
}

async fn retrieve_batch(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Owner(owner): Owner,
) -> Answer {
    let batch = shared
        .store
        .queue()
        .queue_batch(Some(&owner), &id)
        .await
        .map_err(storage)?
        .ok_or_else(|| object::no_such_batch(&id))?;
    json(object::batch(&batch))
}

async fn list_batches(
    State(shared): State<Arc<Shared>>,
    query: Params,
    Owner(owner): Owner,
) -> Answer {
    let params = params(query)?;
    let limit = limit(&params, 20, 100)?;
    let batches = shared
        .store
        .queue()
        .queue_batches(&owner, params.get("after").map(String::as_str), limit + 1)
        .await
        .map_err(storage)?;
    let data = batches.iter().map(object::batch).collect();
    json(object::list(data, limit as usize))
}

async fn cancel_batch(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Owner(owner): Owner,
) -> Answer {
    // No body to check: the SDK sends none.
    let batch = shared
        .store
        .queue()
        .queue_batch_cancel(&owner, &id, shared.now())
        .await
        .map_err(storage)?
        .ok_or_else(|| object::no_such_batch(&id))?;
    if matches!(
        batch.status,
        BatchStatus::Completed | BatchStatus::Failed | BatchStatus::Expired
    ) {
        return Err(object::not_cancellable(&id, batch.status));
    }
    shared.wake.notify_one();
    json(object::batch(&batch))
}

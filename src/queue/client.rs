//! A small client of the queue's Files and Batch API, for `isdown batch` and the demo: the same
//! HTTP requests the OpenAI SDKs send, to a running `isdown serve`.
//!
//! Uploads stream the file from disk (a multipart body written around the file's chunks), and
//! result files stream to the caller: neither is held whole. The key, when there is one, is a
//! secret and goes only into the `Authorization` header.

use std::path::Path;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::io::AsyncReadExt;

/// Bytes read from the uploaded file at a time.
const UPLOAD_CHUNK: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach isdown at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("isdown answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("isdown's answer is not what the Batch API returns: {0}")]
    Unexpected(String),
}

/// A client of one `isdown serve`.
#[derive(Debug, Clone)]
pub struct BatchClient {
    http: reqwest::Client,
    /// `http://host:port`, without a trailing slash.
    base: String,
    key: Option<SecretString>,
}

impl BatchClient {
    pub fn new(base: &str, key: Option<SecretString>) -> Result<BatchClient, ClientError> {
        let http = crate::transport::client_builder()
            .build()
            .map_err(|source| ClientError::Unreachable {
                url: base.to_owned(),
                source,
            })?;
        Ok(BatchClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.header(AUTHORIZATION, format!("Bearer {}", key.expose_secret())),
            None => request,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body["error"]["message"]
            .as_str()
            .map(crate::secret::scrub)
            .unwrap_or_else(|| "no error message".to_owned());
        Err(ClientError::Api { status, message })
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let response = self.send(request).await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    /// Uploads a JSONL file for the Batch API (`POST /v1/files`, `purpose=batch`); returns the
    /// file object.
    pub async fn upload(&self, path: &Path) -> Result<Value, ClientError> {
        let read_error = |source| ClientError::Read {
            path: path.display().to_string(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(read_error)?;
        let size = file.metadata().await.map_err(read_error)?.len();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("requests.jsonl")
            .replace(['"', '\r', '\n'], "_");
        let boundary = format!("isdown{:016x}", fastrand::u64(..));
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let length = head.len() as u64 + size + tail.len() as u64;
        let body =
            futures_util::stream::once(
                async move { Ok::<Bytes, std::io::Error>(Bytes::from(head)) },
            )
            .chain(file_chunks(file))
            .chain(futures_util::stream::once(async move {
                Ok::<Bytes, std::io::Error>(Bytes::from(tail))
            }));
        let request = self
            .request(reqwest::Method::POST, "/v1/files")
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(body));
        self.json(request).await
    }

    /// Creates a batch of `/v1/chat/completions` requests over an uploaded file.
    pub async fn create(
        &self,
        input_file_id: &str,
        completion_window: &str,
        metadata: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut body = json!({
            "input_file_id": input_file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": completion_window,
        });
        if let Some(metadata) = metadata {
            body["metadata"] = metadata.clone();
        }
        self.json(
            self.request(reqwest::Method::POST, "/v1/batches")
                .json(&body),
        )
        .await
    }

    pub async fn retrieve(&self, id: &str) -> Result<Value, ClientError> {
        self.json(self.request(reqwest::Method::GET, &format!("/v1/batches/{}", encode(id))))
            .await
    }

    /// The newest batches, at most `limit`.
    pub async fn list(&self, limit: u32) -> Result<Value, ClientError> {
        self.json(self.request(reqwest::Method::GET, &format!("/v1/batches?limit={limit}")))
            .await
    }

    pub async fn cancel(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/v1/batches/{}/cancel", encode(id));
        self.json(self.request(reqwest::Method::POST, &path)).await
    }

    /// A file's content as it arrives.
    pub async fn content(
        &self,
        file_id: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, ClientError>> + use<>, ClientError> {
        let path = format!("/v1/files/{}/content", encode(file_id));
        let response = self.send(self.request(reqwest::Method::GET, &path)).await?;
        let url = self.base.clone();
        Ok(response.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })
        }))
    }
}

/// An id in a URL path: ids are ASCII letters, digits, `-` and `_`; anything else is encoded.
fn encode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%5F", "_")
}

/// The file's bytes in chunks, as they are read.
fn file_chunks(
    file: tokio::fs::File,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; UPLOAD_CHUNK];
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some((Bytes::from(buffer), file)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_readable_in_paths_and_anything_else_is_encoded() {
        assert_eq!(encode("batch_0a1b-2c"), "batch_0a1b-2c");
        assert_eq!(encode("../x"), "%2E%2E%2Fx");
    }
}

//! The batch result files — the output file (answered lines) and the error file (lines that
//! failed) — in OpenAI's line format, produced from the stored line results when they are read,
//! page by page: a file is never held whole.
//!
//! One line per request, in input order:
//! `{"id","custom_id","response":{"status_code","request_id","body"},"error":null,"x_isdown":{…}}`
//! where `response.body` is the answer as the provider sent it (its `model` is the model that
//! answered) and `x_isdown` (isdown's addition, named like its `x-isdown-*` headers) says which
//! `provider` and `model` served it and after how many `attempts`. A line that got no HTTP
//! answer (expired, cancelled) has `"response":null` and `"error":{"code","message"}`.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::store::queue::{ResultKind, StoredResult};
use crate::store::{Store, StoreError};

/// Results read per store query while producing a file.
const PAGE: u32 = 512;

/// The stable id of a line's result (the same on every download): the batch id's random part
/// and the line number.
pub fn request_id(batch_id: &str, line: u32) -> String {
    let part = batch_id.strip_prefix("batch_").unwrap_or(batch_id);
    format!("batch_req_{part}_{line}")
}

/// One result as its line of the file, without the line end.
pub fn line(batch_id: &str, result: &StoredResult) -> String {
    let response = result.response.as_ref().map(|r| {
        json!({
            "status_code": r.status_code,
            "request_id": r.request_id,
            "body": body(&r.body),
        })
    });
    let isdown = result
        .response
        .as_ref()
        .filter(|r| r.provider.is_some())
        .map(|r| json!({"provider": r.provider, "model": r.model, "attempts": r.attempts}));
    let error = result
        .error
        .as_ref()
        .map(|e| json!({"code": e.code, "message": e.message}));
    json!({
        "id": request_id(batch_id, result.line),
        "custom_id": result.custom_id,
        "response": response,
        "error": error,
        "x_isdown": isdown,
    })
    .to_string()
}

/// A stored body as JSON: parsed (and so written on one line); a body that is not JSON (an
/// HTML error page passed through) becomes a string.
fn body(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The size in bytes and the number of lines of a batch's result file, read the way a download
/// reads it.
pub async fn measure(
    store: &dyn Store,
    batch_key: i64,
    batch_id: &str,
    kind: ResultKind,
) -> Result<(u64, u64), StoreError> {
    let (mut bytes, mut lines, mut after) = (0u64, 0u64, 0u32);
    loop {
        let page = store
            .queue()
            .queue_results(batch_key, kind, after, PAGE)
            .await?;
        let Some(last) = page.last() else {
            return Ok((bytes, lines));
        };
        after = last.line;
        for result in &page {
            bytes += line(batch_id, result).len() as u64 + 1;
            lines += 1;
        }
    }
}

/// A batch result file as a stream of chunks (a page of lines each).
pub fn stream(
    store: Arc<dyn Store>,
    batch_key: i64,
    batch_id: String,
    kind: ResultKind,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send {
    futures_util::stream::try_unfold(Some(0u32), move |after| {
        let store = store.clone();
        let batch_id = batch_id.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let page = store
                .queue()
                .queue_results(batch_key, kind, after, PAGE)
                .await?;
            let Some(last) = page.last().map(|r| r.line) else {
                return Ok(None);
            };
            let mut chunk = BytesMut::new();
            for result in &page {
                chunk.put_slice(line(&batch_id, result).as_bytes());
                chunk.put_u8(b'\n');
            }
            let next = (page.len() == PAGE as usize).then_some(last);
            Ok(Some((chunk.freeze(), next)))
        }
    })
}

/// An uploaded file's content as a stream of chunks: its stored lines, each ended by `\n`
/// (blank lines were not stored, so they are not given back).
pub fn input_stream(
    store: Arc<dyn Store>,
    file_key: i64,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send {
    futures_util::stream::try_unfold(Some(0u32), move |after| {
        let store = store.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let page = store
                .queue()
                .queue_file_lines(file_key, after, PAGE)
                .await?;
            let Some(last) = page.last().map(|l| l.line) else {
                return Ok(None);
            };
            let mut chunk = BytesMut::new();
            for line in &page {
                chunk.put_slice(&line.content);
                chunk.put_u8(b'\n');
            }
            let next = (page.len() == PAGE as usize).then_some(last);
            Ok(Some((chunk.freeze(), next)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::{LineError, LineResponse};

    #[test]
    fn an_answered_line_has_openais_fields_and_says_who_served_it() {
        let result = StoredResult {
            line: 12,
            custom_id: "task-12".into(),
            response: Some(LineResponse {
                status_code: 200,
                request_id: "req_abc".into(),
                provider: Some("deepseek".into()),
                model: Some("deepseek-v4-flash".into()),
                attempts: Some(2),
                body: b"{\n  \"model\": \"deepseek-v4-flash\",\n  \"choices\": []\n}".to_vec(),
            }),
            error: None,
        };
        let text = line("batch_0123", &result);
        assert!(!text.contains('\n'), "one line: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], "batch_req_0123_12");
        assert_eq!(v["custom_id"], "task-12");
        assert_eq!(v["response"]["status_code"], 200);
        assert_eq!(v["response"]["request_id"], "req_abc");
        assert_eq!(v["response"]["body"]["model"], "deepseek-v4-flash");
        assert_eq!(v["error"], Value::Null);
        assert_eq!(
            v["x_isdown"],
            json!({"provider": "deepseek", "model": "deepseek-v4-flash", "attempts": 2})
        );
    }

    #[test]
    fn a_line_without_an_answer_has_an_error_and_a_null_response() {
        let result = StoredResult {
            line: 3,
            custom_id: "c".into(),
            response: None,
            error: Some(LineError {
                code: "batch_expired".into(),
                message: "This request could not be executed before the completion window \
                          expired."
                    .into(),
            }),
        };
        let v: Value = serde_json::from_str(&line("batch_x", &result)).unwrap();
        assert_eq!(v["response"], Value::Null);
        assert_eq!(v["error"]["code"], "batch_expired");
        assert_eq!(v["x_isdown"], Value::Null);
    }

    #[test]
    fn a_body_that_is_not_json_is_kept_as_a_string() {
        assert_eq!(body(b"<html>502</html>"), json!("<html>502</html>"));
        assert_eq!(body(b"{\"a\":1}"), json!({"a": 1}));
    }
}

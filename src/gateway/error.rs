//! Errors of the gateway: [`StartError`] when it cannot be built, and [`ApiError`], every error a
//! client can receive, with its one mapping to an HTTP status and the OpenAI error body
//! `{"error":{"message","type","param","code"}}` that the official SDKs parse.
//!
//! Messages are written here or come from the classifier's sanitised explanations; they never
//! contain a key or an upstream HTML page.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

use crate::lint::Finding;

/// Why the gateway could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(
        "[gateway] open_on_localhost is set but the gateway listens on {addr}, which is not a \
         loopback address; set client_keys_env instead"
    )]
    OpenOnNonLoopback { addr: SocketAddr },
    #[error("cannot build the gateway's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Fixes(#[from] super::fixes::FixError),
}

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, ...
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<String>,
    /// Seconds for a `Retry-After` header, when waiting helps.
    pub retry_after: Option<&'static str>,
    /// Request lint findings, listed in the body's `error.findings` when there are any.
    /// Boxed slice, not `Vec`: keeps `ApiError` small on every `Result` of the hot path.
    pub findings: Box<[Finding]>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
            findings: Box::default(),
        }
    }

    fn code(mut self, code: impl Into<String>) -> ApiError {
        self.code = Some(code.into());
        self
    }

    fn retry_after(mut self, seconds: &'static str) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    fn param(mut self, param: &'static str) -> ApiError {
        self.param = Some(param);
        self
    }

    pub fn missing_key() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "missing gateway key: send it as `Authorization: Bearer <key>`",
        )
        .code("missing_api_key")
    }

    pub fn wrong_key() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "the gateway key is not valid",
        )
        .code("invalid_api_key")
    }

    /// The open gateway refused a request that could come from a web page (see `auth`).
    pub fn browser_refused(why: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            format!(
                "the gateway runs without client keys (open_on_localhost) and takes requests \
                 from programs on this machine only: {why}. To call it from a browser or another \
                 host, set [gateway] client_keys_env"
            ),
        )
        .code("open_gateway_refused")
    }

    /// No client key is configured and the gateway is not opened for localhost.
    pub fn no_keys_configured(vars: &[String]) -> ApiError {
        let message = if vars.is_empty() {
            "the gateway has no client keys: set [gateway] client_keys_env = [\"VAR\"] and put a \
             key in VAR (or open_on_localhost = true on a loopback listener)"
                .to_owned()
        } else {
            format!(
                "the gateway has no client keys: none of {} is set in isdown's environment",
                vars.join(", ")
            )
        };
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
            .code("gateway_not_configured")
    }

    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("request body larger than {limit} bytes ([gateway] max_request_bytes)"),
        )
        .code("request_too_large")
    }

    /// The budget of request bodies in flight stayed full for `waited`.
    pub fn gateway_busy(waited: std::time::Duration) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            format!(
                "the gateway is holding as many request bytes as it may \
                 ([gateway] max_request_bytes_in_flight) and none were freed within {} s; \
                 retry shortly",
                waited.as_secs()
            ),
        )
        .code("gateway_busy")
        .retry_after("1")
    }

    pub fn unreadable_body() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the request body could not be read",
        )
    }

    pub fn invalid_json(detail: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("the request body is not a JSON object: {detail}"),
        )
        .code("invalid_json")
    }

    pub fn missing_model() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "`model` is required (a string naming one of the gateway's routes, see GET /v1/models)",
        )
        .param("model")
    }

    pub fn bad_timeout_header(header: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("`{header}` must be a duration such as \"20s\" or \"1500ms\""),
        )
        .param("x-isdown-timeout")
    }

    /// The client's model, quoted as an 80-character excerpt: more than real names have, and a
    /// bound on the answer (the name may be most of a 16 MiB body).
    pub fn no_route(model: &str, defaults: bool) -> ApiError {
        const MODEL_CHARS: usize = 80;
        let hint = if defaults {
            "no [[routes]] are configured, so models are named PROVIDER/MODEL (e.g. \
             \"kimi/kimi-k2.6\") for providers whose key is set"
        } else {
            "add a [[routes]] entry for it"
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "no route for model \"{}\": {hint}; GET /v1/models lists them",
                crate::quote::scrubbed_excerpt(model, MODEL_CHARS)
            ),
        )
        .param("model")
        .code("model_not_found")
    }

    /// Every target was skipped because the prompt is larger than its context window.
    pub fn context_too_long(estimate: u64) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!(
                "the prompt (about {estimate} tokens) does not fit the context window of any \
                 target of this route"
            ),
        )
        .param("messages")
        .code("context_length_exceeded")
    }

    /// The route's lint (`lint = "reject"`) found problems: nothing was sent.
    pub fn lint_rejected(findings: Vec<Finding>) -> ApiError {
        let message = format!(
            "the request was not sent: the gateway's request lint (route lint = \"reject\") \
             finds {} problem(s): {}",
            findings.len(),
            crate::lint::summary(&findings)
        );
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            .code("request_lint");
        error.findings = findings.into_boxed_slice();
        error
    }

    /// Every target failed, the last with a 500 to a request the lint flags: the request, not
    /// the provider, is the likely cause, so the caller should fix it rather than retry.
    pub fn request_likely_invalid(findings: Vec<Finding>, attempts: String) -> ApiError {
        let message = format!(
            "the request, not the provider, is the likely cause: a provider answered 500 to a \
             request the gateway's lint flags ({}); {attempts}",
            crate::lint::summary(&findings)
        );
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            .code("request_likely_invalid");
        error.findings = findings.into_boxed_slice();
        error
    }

    /// Every attempt failed; `summary` lists them, `verdict` is the last one's.
    pub fn upstream_failed(status: StatusCode, verdict: &str, summary: String) -> ApiError {
        ApiError::new(status, "upstream_error", summary).code(verdict)
    }

    pub fn deadline(summary: String) -> ApiError {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_error", summary).code("timeout")
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        });
        if !self.findings.is_empty() {
            body["error"]["findings"] = json!(self.findings);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"isdown\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_model_is_quoted_as_a_short_scrubbed_excerpt() {
        // The name may be most of a 16 MiB body, and of any shape: `sk- ` repeated made the
        // whole-text scrub take minutes before it became one pass.
        let long = "sk- ".repeat(1_000_000);
        let error = ApiError::no_route(&long, false);
        assert!(error.message.len() < 400, "{} bytes", error.message.len());
        assert!(error.message.contains("no route for model \"sk- sk- "));

        let key = "sk-abcdef0123456789abcdef0123456789";
        let error = ApiError::no_route(&format!("gpt-{key}"), true);
        assert!(!error.message.contains("0123456789"), "{}", error.message);
        assert_eq!(error.code.as_deref(), Some("model_not_found"));
    }
}

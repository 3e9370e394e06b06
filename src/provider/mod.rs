//! Providers: the typed, validated description of an LLM API endpoint, and how to talk to it.
//!
//! A [`Provider`] is built by `config` (catalog entry + user overrides, key resolved from the
//! environment), by `isdown check --base-url` for an endpoint named on the command line, and in
//! unit tests by `Provider::for_test`. This module owns the wire knowledge — paths, auth
//! headers, probe payloads — for the two styles isdown speaks; it performs no I/O itself
//! (`probe` and the gateway send what it builds).

pub mod request;

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::SecretString;
use serde::Deserialize;

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireStyle {
    /// OpenAI Chat Completions: `POST {base}/chat/completions`, `Authorization: Bearer`.
    Openai,
    /// Anthropic Messages: `POST {base}/v1/messages`, `x-api-key` + `anthropic-version`.
    Anthropic,
}

#[derive(Debug, Clone)]
pub struct Provider {
    /// Catalog or config name, e.g. `kimi`.
    pub id: String,
    /// Display name, e.g. `Kimi`.
    pub name: String,
    pub base_url: Url,
    pub style: WireStyle,
    pub api_key_env: Option<String>,
    /// Resolved from `api_key_env` when the config was loaded; `None` when unset or empty.
    pub api_key: Option<SecretString>,
    pub probe_model: String,
    pub context_window: Option<u64>,
    pub degraded_after: Duration,
    pub status_page: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How the provider continues an answer from a given start, if it can (catalog data;
    /// the gateway's stream recovery uses it).
    pub prefill: Option<Prefill>,
    /// True for entries of the built-in catalog (used to pick default witnesses).
    pub builtin: bool,
}

/// Assistant prefill: a request whose last message is `{"role":"assistant","content":TEXT}`
/// (with `FLAG: true` when the provider asks for a flag) is answered with what follows TEXT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefill {
    /// The message field set to `true`: Moonshot `partial`, DeepSeek `prefix`; `None` for a
    /// plain trailing assistant message (Anthropic).
    pub flag: Option<String>,
    /// Another base URL for such requests (DeepSeek serves prefix completion on `/beta`).
    pub base_url: Option<Url>,
}

/// A healthy answer slower than this is `degraded` unless the provider's config says otherwise
/// (README: `degraded_after`).
pub const DEFAULT_DEGRADED_AFTER: Duration = Duration::from_secs(8);

impl Provider {
    /// A provider named by its id, without a key and with every optional setting at its
    /// default; callers set what they know on top.
    pub fn new(id: &str, base_url: Url, style: WireStyle, probe_model: String) -> Provider {
        Provider {
            id: id.to_owned(),
            name: id.to_owned(),
            base_url,
            style,
            api_key_env: None,
            api_key: None,
            probe_model,
            context_window: None,
            degraded_after: DEFAULT_DEGRADED_AFTER,
            status_page: None,
            headers: Vec::new(),
            prefill: None,
            builtin: false,
        }
    }

    /// `api.moonshot.ai` — what people recognise in a summary line.
    pub fn host(&self) -> &str {
        self.base_url.host_str().unwrap_or("?")
    }

    pub fn has_key(&self) -> bool {
        self.api_key.is_some()
    }
}

#[cfg(test)]
impl Provider {
    /// A provider `id` of the OpenAI style at a closed loopback port (`127.0.0.1:9`), with a
    /// key, for unit tests that need providers but no config (the config is above them).
    pub(crate) fn for_test(id: &str) -> Provider {
        let base_url = Url::parse("http://127.0.0.1:9/v1").expect("a valid URL");
        Provider {
            api_key_env: Some("KEY".to_owned()),
            api_key: Some(SecretString::from("sk-test-key-123")),
            ..Provider::new(id, base_url, WireStyle::Openai, "m".to_owned())
        }
    }
}

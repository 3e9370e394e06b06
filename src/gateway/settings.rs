//! The gateway's settings: the typed, validated form of `[[routes]]`, `[gateway]` and what
//! else the gateway reads from a config (the providers its routes name, `[web] public_url`).
//!
//! The gateway owns these types; `config` builds one [`GatewaySettings`] from the file (every
//! check that spans fields — known providers, caller-owned `params`, `open_on_localhost` on a
//! loopback address — and client keys resolved from the environment), and the gateway takes it
//! at start ([`super::Gateway::new`]) and at every reload. Past that point no value here can be
//! invalid, and the gateway never reads the config file or the environment. No parsing, no I/O.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::provider::Provider;

/// 16 MiB: a 1M-token prompt is ~4 MB of text; anything far larger is a mistake or an attack.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// 128 MiB: eight bodies of the largest default size, or over a thousand 100 KB agent prompts,
/// at once; the gateway holds about three times this at peak (see `gateway::budget`), well
/// inside a small VM.
pub const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT: usize = 128 * 1024 * 1024;

/// 10 s: a wait an agent hardly notices, and shorter than most switches cost in
/// changed model behaviour.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// Everything the gateway is built from, validated.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Every provider of the config, in config order (catalog first): the upstreams, which
    /// routes name by id.
    pub providers: Vec<Arc<Provider>>,
    /// `[web] public_url`: its host is the one non-loopback `Host` the open gateway accepts.
    pub public_url: Option<String>,
    /// In file order; empty means the default routes (`PROVIDER/MODEL`, see `gateway::route`).
    /// Every target names one of `providers`.
    pub routes: Vec<RouteSpec>,
    /// Client keys resolved from `client_keys_env` (unset or empty variables are left out).
    pub client_keys: Vec<SecretString>,
    /// The variables named by `client_keys_env`, for messages.
    pub client_keys_env: Vec<String>,
    pub open_on_localhost: bool,
    pub max_retry_wait: Duration,
    pub max_request_bytes: usize,
    /// Default for routes without their own `stream_recovery`.
    pub stream_recovery: StreamRecovery,
    /// Request bytes held by all requests in flight together (`gateway::budget`); never
    /// smaller than `max_request_bytes`.
    pub max_request_bytes_in_flight: usize,
    pub timeouts: GatewayTimeouts,
}

impl Default for GatewaySettings {
    /// No providers, no routes, no client keys, and the documented defaults.
    fn default() -> Self {
        GatewaySettings {
            providers: Vec::new(),
            public_url: None,
            routes: Vec::new(),
            client_keys: Vec::new(),
            client_keys_env: Vec::new(),
            open_on_localhost: false,
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_request_bytes_in_flight: DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
            stream_recovery: StreamRecovery::Off,
            timeouts: GatewayTimeouts::default(),
        }
    }
}

/// `[gateway.timeouts]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayTimeouts {
    /// TCP (and TLS) connect of one attempt.
    pub connect: Duration,
    /// Streaming: until the first content chunk of one attempt.
    pub first_token: Duration,
    /// Streaming: longest silence between chunks once content flows.
    pub idle: Duration,
    /// Non-streaming: until the whole answer of one attempt.
    pub request: Duration,
    /// Whole request, every attempt and wait together.
    pub total: Duration,
}

impl Default for GatewayTimeouts {
    fn default() -> Self {
        GatewayTimeouts {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(15),
            idle: Duration::from_secs(30),
            request: Duration::from_secs(120),
            total: Duration::from_secs(300),
        }
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    /// Exact model name, or a pattern where `*` matches any run of characters.
    pub pattern: String,
    /// At least one.
    pub targets: Vec<TargetSpec>,
    /// Opt-in hedging of non-streaming requests; `None`: never. Only with a second target.
    pub hedge_after: Option<HedgeAfter>,
    /// `None`: `[gateway] stream_recovery`.
    pub stream_recovery: Option<StreamRecovery>,
    /// Opt-in request lint.
    pub lint: LintMode,
}

/// One target of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// A provider id of [`GatewaySettings::providers`].
    pub provider: String,
    /// `None`: forward the requested model name unchanged.
    pub model: Option<String>,
    /// Top-level request fields set for this target (JSON values); never `model`, `messages`
    /// or `stream`, which are the caller's.
    pub params: Map<String, Value>,
}

/// `[[routes]] lint`: what the gateway does with a request the request lint flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LintMode {
    /// No lint (the default): requests go out unread.
    #[default]
    Off,
    /// Forward, and name the findings in the `x-isdown-lint` response header; a provider 500 to
    /// a flagged request is taken as the request's fault, not the provider's.
    Warn,
    /// Answer 400 naming the findings, before any provider is paid.
    Reject,
}

/// `[[routes]] hedge_after`: how long a non-streaming request waits for its target before the
/// same request also goes to the next healthy target (first complete answer wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    /// `"20s"`: a fixed delay, never zero.
    Fixed(Duration),
    /// `"p95+2s"`: the target's recent p95 time to answer plus a margin; no hedge until the
    /// target has answered enough requests for a p95.
    P95Plus(Duration),
}

/// `stream_recovery`: what the gateway does when a stream breaks after content was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamRecovery {
    /// End the stream with an in-band error (the default).
    #[default]
    Off,
    /// Continue it where the continuation can be proven seamless (`gateway::resume`).
    Verified,
}

// === test constructors ===

#[cfg(test)]
impl RouteSpec {
    /// A route of `pattern` to `targets` (provider id, fixed model), nothing opted in.
    pub(crate) fn for_test(pattern: &str, targets: &[(&str, Option<&str>)]) -> RouteSpec {
        RouteSpec {
            pattern: pattern.to_owned(),
            targets: targets
                .iter()
                .map(|(provider, model)| TargetSpec {
                    provider: (*provider).to_owned(),
                    model: model.map(str::to_owned),
                    params: Map::new(),
                })
                .collect(),
            hedge_after: None,
            stream_recovery: None,
            lint: LintMode::Off,
        }
    }
}

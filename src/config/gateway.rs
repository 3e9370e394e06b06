//! `[[routes]]` and `[gateway]`: validation of the gateway's part of the file into
//! [`GatewaySettings`].
//!
//! It checks what the serde model cannot: that every target names a known provider, that a route
//! has targets, that per-target `params` do not override what the caller owns (`model`,
//! `messages`, `stream`), and that `open_on_localhost` is not combined with a non-loopback
//! `[serve] listen`. Client keys are resolved from the environment here; the values become
//! secrets and are never printed. It does no I/O beyond reading the environment through `env`.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::raw::{RawGateway, RawRoute};
use super::{ConfigError, invalid_at};
use crate::provider::Provider;

/// Parameters a target may not override: they belong to the caller's request.
const CALLER_OWNED: [&str; 3] = ["model", "messages", "stream"];

/// 16 MiB: a 1M-token prompt is ~4 MB of text; anything far larger is a mistake or an attack.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// 128 MiB: eight bodies of the largest default size, or over a thousand 100 KB agent prompts,
/// at once; the gateway holds about three times this at peak (see `gateway::budget`), well
/// inside a small VM.
pub const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT: usize = 128 * 1024 * 1024;

/// 10 s: a wait an agent hardly notices, and shorter than most switches cost in
/// changed model behaviour.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

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
    pub targets: Vec<TargetSpec>,
    /// Opt-in hedging of non-streaming requests; `None`: never.
    pub hedge_after: Option<HedgeAfter>,
    /// `None`: `[gateway] stream_recovery`.
    pub stream_recovery: Option<StreamRecovery>,
    /// Opt-in request lint.
    pub lint: LintMode,
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

impl LintMode {
    /// The values the config accepts.
    const NAMES: [(&'static str, LintMode); 2] =
        [("warn", LintMode::Warn), ("reject", LintMode::Reject)];

    pub fn parse(text: &str) -> Result<LintMode, String> {
        LintMode::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, mode)| *mode)
            .ok_or_else(|| format!("lint = \"{text}\": expected \"warn\" or \"reject\""))
    }
}

/// `[[routes]] hedge_after`: how long a non-streaming request waits for its target before the
/// same request also goes to the next healthy target (first complete answer wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    /// `"20s"`: a fixed delay.
    Fixed(Duration),
    /// `"p95+2s"`: the target's recent p95 time to answer plus a margin; no hedge until the
    /// target has answered enough requests for a p95.
    P95Plus(Duration),
}

impl HedgeAfter {
    /// Parses `"p95+2s"`, `"p95"` or a plain duration (`"20s"`).
    pub fn parse(text: &str) -> Result<HedgeAfter, String> {
        let expected = "expected \"p95+DURATION\" (e.g. \"p95+2s\") or a duration (e.g. \"20s\")";
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let duration = |part: &str| {
            humantime::parse_duration(part)
                .map_err(|e| format!("hedge_after = \"{text}\": {e}; {expected}"))
        };
        match compact.strip_prefix("p95") {
            Some("") => Ok(HedgeAfter::P95Plus(Duration::ZERO)),
            Some(rest) => match rest.strip_prefix('+') {
                Some(margin) => duration(margin).map(HedgeAfter::P95Plus),
                None => Err(format!("hedge_after = \"{text}\": {expected}")),
            },
            None => match duration(&compact)? {
                zero if zero.is_zero() => Err(format!(
                    "hedge_after = \"{text}\": a zero delay would send every request twice; {expected}"
                )),
                delay => Ok(HedgeAfter::Fixed(delay)),
            },
        }
    }
}

/// `stream_recovery`: what the gateway does when a stream breaks after content was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamRecovery {
    /// End the stream with an in-band error (the default).
    #[default]
    Off,
    /// Continue it where the continuation can be proven seamless (`gateway::recovery`).
    Verified,
}

impl StreamRecovery {
    pub fn parse(text: &str) -> Result<StreamRecovery, String> {
        match text {
            "off" => Ok(StreamRecovery::Off),
            "verified" => Ok(StreamRecovery::Verified),
            other => Err(format!(
                "stream_recovery = \"{other}\": expected \"off\" or \"verified\""
            )),
        }
    }
}

/// One target of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// A provider id known to the config.
    pub provider: String,
    /// `None`: forward the requested model name unchanged.
    pub model: Option<String>,
    /// Top-level request fields set for this target (JSON values).
    pub params: Map<String, Value>,
}

/// The gateway's settings after validation.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// In file order; empty means the default routes (`PROVIDER/MODEL`, see `gateway::route`).
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
    /// Request bytes held by all requests in flight together (`gateway::budget`).
    pub max_request_bytes_in_flight: usize,
    pub timeouts: GatewayTimeouts,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
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

pub(super) struct Source<'a> {
    pub text: &'a str,
    pub file: &'a str,
}

pub(super) fn gateway_settings(
    routes: Vec<toml::Spanned<RawRoute>>,
    raw: RawGateway,
    providers: &[Provider],
    listen: SocketAddr,
    source: &Source<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GatewaySettings, ConfigError> {
    let mut settings = GatewaySettings::default();
    for route in routes {
        let at = route.span().start;
        settings.routes.push(
            route_spec(route.into_inner(), providers).map_err(|message| {
                let mut error = invalid_at(source.text, source.file, at, message);
                if let ConfigError::Invalid { field, .. } = &mut error {
                    *field = "routes".into();
                }
                error
            })?,
        );
    }
    if let Some(open) = raw.open_on_localhost {
        let at = open.span().start;
        settings.open_on_localhost = open.into_inner();
        if settings.open_on_localhost && !listen.ip().is_loopback() {
            return Err(invalid_at(
                source.text,
                source.file,
                at,
                format!(
                    "the gateway may run without client keys only on a loopback address, and \
                     [serve] listen is {listen}; set client_keys_env instead"
                ),
            ));
        }
    }
    if let Some(names) = raw.client_keys_env {
        let at = names.span().start;
        for name in names.into_inner() {
            if let Some(key) = super::secret_from_env(env, &name.0)
                .map_err(|m| invalid_at(source.text, source.file, at, m))?
            {
                settings.client_keys.push(key);
            }
            settings.client_keys_env.push(name.0);
        }
    }
    if let Some(wait) = raw.max_retry_wait {
        settings.max_retry_wait = wait.0;
    }
    if let Some(bytes) = raw.max_request_bytes {
        settings.max_request_bytes = bytes.0 as usize;
    }
    if let Some(bytes) = raw.max_request_bytes_in_flight {
        let at = bytes.span().start;
        settings.max_request_bytes_in_flight = bytes.into_inner().0 as usize;
        if settings.max_request_bytes_in_flight < settings.max_request_bytes {
            return Err(invalid_at(
                source.text,
                source.file,
                at,
                format!(
                    "max_request_bytes_in_flight ({}) is smaller than max_request_bytes ({}): \
                     a request of the largest allowed size could never be read",
                    settings.max_request_bytes_in_flight, settings.max_request_bytes
                ),
            ));
        }
    }
    if let Some(mode) = raw.stream_recovery {
        let at = mode.span().start;
        settings.stream_recovery = StreamRecovery::parse(mode.get_ref())
            .map_err(|m| invalid_at(source.text, source.file, at, m))?;
    }
    let t = &mut settings.timeouts;
    let raw_t = raw.timeouts;
    for (slot, value) in [
        (&mut t.connect, raw_t.connect),
        (&mut t.first_token, raw_t.first_token),
        (&mut t.idle, raw_t.idle),
        (&mut t.request, raw_t.request),
        (&mut t.total, raw_t.total),
    ] {
        if let Some(value) = value {
            *slot = value.0;
        }
    }
    Ok(settings)
}

fn route_spec(raw: RawRoute, providers: &[Provider]) -> Result<RouteSpec, String> {
    if raw.model.trim().is_empty() {
        return Err("a route needs a model name or pattern (`model`)".into());
    }
    if raw.targets.is_empty() {
        return Err(format!(
            "route \"{}\" has no targets; add e.g. targets = [{{ provider = \"kimi\" }}]",
            raw.model
        ));
    }
    let mut targets = Vec::with_capacity(raw.targets.len());
    for target in raw.targets {
        if !providers.iter().any(|p| p.id == target.provider) {
            let known: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
            return Err(format!(
                "route \"{}\": unknown provider \"{}\" in targets; known: {}",
                raw.model,
                target.provider,
                known.join(", ")
            ));
        }
        let params = match target.params {
            None => Map::new(),
            Some(table) => match serde_json::to_value(table) {
                Ok(Value::Object(map)) => map,
                _ => return Err("`params` must be a table of request fields".into()),
            },
        };
        if let Some(owned) = CALLER_OWNED.iter().find(|k| params.contains_key(**k)) {
            return Err(format!(
                "route \"{}\": `params` may not set \"{owned}\" (it is the caller's; use the \
                 target's `model` to rename the model)",
                raw.model
            ));
        }
        targets.push(TargetSpec {
            provider: target.provider,
            model: target.model.filter(|m| !m.trim().is_empty()),
            params,
        });
    }
    let hedge_after = raw
        .hedge_after
        .as_deref()
        .map(HedgeAfter::parse)
        .transpose()
        .map_err(|e| format!("route \"{}\": {e}", raw.model))?;
    if hedge_after.is_some() && targets.len() < 2 {
        return Err(format!(
            "route \"{}\": hedge_after needs a second target to hedge to",
            raw.model
        ));
    }
    let stream_recovery = raw
        .stream_recovery
        .as_deref()
        .map(StreamRecovery::parse)
        .transpose()
        .map_err(|e| format!("route \"{}\": {e}", raw.model))?;
    let lint = raw
        .lint
        .as_deref()
        .map(LintMode::parse)
        .transpose()
        .map_err(|e| format!("route \"{}\": {e}", raw.model))?
        .unwrap_or_default();
    Ok(RouteSpec {
        pattern: raw.model,
        targets,
        hedge_after,
        stream_recovery,
        lint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_modes_parse_and_anything_else_is_refused() {
        assert_eq!(LintMode::parse("warn"), Ok(LintMode::Warn));
        assert_eq!(LintMode::parse("reject"), Ok(LintMode::Reject));
        for bad in ["off", "Warn", "", "block"] {
            let err = LintMode::parse(bad).unwrap_err();
            assert!(err.contains("\"warn\" or \"reject\""), "{bad}: {err}");
        }
    }

    #[test]
    fn hedge_after_table() {
        let s = Duration::from_secs;
        let rows = [
            ("p95+2s", Ok(HedgeAfter::P95Plus(s(2)))),
            (
                "p95 + 500ms",
                Ok(HedgeAfter::P95Plus(Duration::from_millis(500))),
            ),
            ("p95", Ok(HedgeAfter::P95Plus(Duration::ZERO))),
            ("20s", Ok(HedgeAfter::Fixed(s(20)))),
            ("p99+2s", Err("p95+DURATION")),
            ("p95-2s", Err("p95+DURATION")),
            ("0s", Err("every request twice")),
            ("soon", Err("soon")),
        ];
        for (text, want) in rows {
            match (HedgeAfter::parse(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(part)) => assert!(got.contains(part), "{text}: {got}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }
}

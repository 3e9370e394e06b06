//! `[[routes]]` and `[gateway]`: the raw TOML of the gateway's part of the file into the
//! gateway's own [`GatewaySettings`] (`gateway::settings` owns the types).
//!
//! It checks what the serde model cannot: that every target names a known provider, that a route
//! has targets, that per-target `params` do not override what the caller owns (`model`,
//! `messages`, `stream`), and that `open_on_localhost` is not combined with a non-loopback
//! `[serve] listen`; it reads `hedge_after`, `stream_recovery` and `lint` from their text. Client
//! keys are resolved from the environment here; the values become secrets and are never printed.
//! It does no I/O beyond reading the environment through `env`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::raw::{RawGateway, RawRoute};
use super::{ConfigError, invalid_at};
use crate::gateway::settings::{
    GatewaySettings, HedgeAfter, LintMode, RouteSpec, StreamRecovery, TargetSpec,
};
use crate::provider::Provider;
use crate::time::MAX_DURATION;

/// Parameters a target may not override: they belong to the caller's request.
const CALLER_OWNED: [&str; 3] = ["model", "messages", "stream"];

/// The values `lint` accepts.
const LINT_MODES: [(&str, LintMode); 2] = [("warn", LintMode::Warn), ("reject", LintMode::Reject)];

/// The values `stream_recovery` accepts.
const STREAM_RECOVERY: [(&str, StreamRecovery); 2] = [
    ("off", StreamRecovery::Off),
    ("verified", StreamRecovery::Verified),
];

/// The value of `table` named `text`, or an error quoting `key = "text"` and the names allowed.
fn one_of<T: Copy>(key: &str, text: &str, table: &[(&str, T)]) -> Result<T, String> {
    table
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<String> = table
                .iter()
                .map(|(name, _)| format!("\"{name}\""))
                .collect();
            format!("{key} = \"{text}\": expected {}", names.join(" or "))
        })
}

fn lint_mode(text: &str) -> Result<LintMode, String> {
    one_of("lint", text, &LINT_MODES)
}

fn stream_recovery(text: &str) -> Result<StreamRecovery, String> {
    one_of("stream_recovery", text, &STREAM_RECOVERY)
}

/// Reads `"p95+2s"`, `"p95"` or a plain duration (`"20s"`).
fn hedge_after(text: &str) -> Result<HedgeAfter, String> {
    let expected = "expected \"p95+DURATION\" (e.g. \"p95+2s\") or a duration (e.g. \"20s\")";
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // Bounded like every other duration of the file (`time::MAX_DURATION`): a delay of
    // billions of years parses, and would overflow the instant it is added to.
    let duration = |part: &str| match humantime::parse_duration(part) {
        Err(e) => Err(format!("hedge_after = \"{text}\": {e}; {expected}")),
        Ok(delay) if delay > MAX_DURATION => Err(format!(
            "hedge_after = \"{text}\": longer than {}; {expected}",
            humantime::format_duration(MAX_DURATION)
        )),
        Ok(delay) => Ok(delay),
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

pub(super) struct Source<'a> {
    pub text: &'a str,
    pub file: &'a str,
}

/// What the gateway reads beside its own sections.
pub(super) struct Context<'a> {
    /// Every provider of the config, in config order.
    pub providers: &'a [Arc<Provider>],
    /// `[serve] listen`.
    pub listen: SocketAddr,
    /// `[web] public_url`, as the web settings hold it.
    pub public_url: Option<String>,
}

pub(super) fn gateway_settings(
    routes: Vec<toml::Spanned<RawRoute>>,
    raw: RawGateway,
    context: Context<'_>,
    source: &Source<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GatewaySettings, ConfigError> {
    let Context {
        providers,
        listen,
        public_url,
    } = context;
    let mut settings = GatewaySettings {
        providers: providers.to_vec(),
        public_url,
        ..GatewaySettings::default()
    };
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
        settings.stream_recovery = stream_recovery(mode.get_ref())
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

fn route_spec(raw: RawRoute, providers: &[Arc<Provider>]) -> Result<RouteSpec, String> {
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
        .map(hedge_after)
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
        .map(stream_recovery)
        .transpose()
        .map_err(|e| format!("route \"{}\": {e}", raw.model))?;
    let lint = raw
        .lint
        .as_deref()
        .map(lint_mode)
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
        assert_eq!(lint_mode("warn"), Ok(LintMode::Warn));
        assert_eq!(lint_mode("reject"), Ok(LintMode::Reject));
        for bad in ["off", "Warn", "", "block"] {
            let err = lint_mode(bad).unwrap_err();
            assert!(err.contains("\"warn\" or \"reject\""), "{bad}: {err}");
        }
    }

    #[test]
    fn stream_recovery_modes_parse_and_anything_else_is_refused_by_name() {
        assert_eq!(stream_recovery("off"), Ok(StreamRecovery::Off));
        assert_eq!(stream_recovery("verified"), Ok(StreamRecovery::Verified));
        assert_eq!(
            stream_recovery("on").unwrap_err(),
            "stream_recovery = \"on\": expected \"off\" or \"verified\""
        );
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
            ("500000000000y", Err("longer than")),
            ("p95+500000000000y", Err("longer than")),
        ];
        for (text, want) in rows {
            match (hedge_after(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(part)) => assert!(got.contains(part), "{text}: {got}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }
}

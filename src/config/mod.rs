//! Configuration: `isdown.toml` merged over the embedded provider catalog.
//!
//! Loading is one step from text to a typed [`Config`]: the raw serde model (`raw`) rejects
//! unknown keys and bad values with their position; this module merges catalog and file, checks
//! what spans several fields, and resolves key environment variables into secrets. After it, no
//! invalid value exists. Errors always name the file, the line and the field, and never repeat a
//! value that could be a key.
//!
//! The typed settings belong to the modules that use them (`gateway::settings`,
//! `monitor::MonitorSettings`, `alert::spec`, `queue::settings`, `web::site`, `store`, …); this
//! module only fills them in (`gateway.rs`, `queue.rs`, `corroboration.rs` hold the conversions
//! that take more than a few lines). It sits above every module it builds settings for: none of
//! them imports `config`, and it imports none of the modules that load a config (`check`,
//! `server`, `cli`); `tests/layering.rs` holds both to it.

mod corroboration;
mod gateway;
mod queue;
pub mod raw;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::SecretString;
use thiserror::Error;

use crate::alert::policy::{AlertPolicy, Maintenance, MonitorSet};
use crate::alert::spec::ChannelSpec;
use crate::gateway::settings::GatewaySettings;
use crate::monitor::{MonitorSettings, MonitorSpec};
use crate::probe::ProbeKind;
use crate::provider::Provider;
use crate::store::{DatabaseUrl, PoolSettings, Retention};
use crate::time::Millis;
use crate::web::site::WebSettings;
use raw::{RawConfig, RawProvider};

/// The built-in catalog, as shipped.
pub const CATALOG_TOML: &str = include_str!("catalog.toml");
/// What `isdown init` writes.
pub const TEMPLATE_TOML: &str = include_str!("template.toml");

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "isdown.toml";

/// Catalog entries in file order (the order `check` lists them in).
static CATALOG: LazyLock<Vec<(String, RawProvider)>> = LazyLock::new(|| {
    let table: toml::Table = toml::from_str(CATALOG_TOML).expect("embedded catalog is valid TOML");
    let mut entries: Vec<(usize, String, RawProvider)> = table
        .into_iter()
        // The request constraints section belongs to the request lint (`crate::lint`).
        .filter(|(id, _)| id != crate::lint::CATALOG_SECTION)
        .map(|(id, value)| {
            let position = CATALOG_TOML
                .find(&format!("\n[{id}]\n"))
                .expect("catalog entry has a header");
            let entry: RawProvider = value.try_into().expect("embedded catalog entry is valid");
            (position, id, entry)
        })
        .collect();
    entries.sort_by_key(|(position, _, _)| *position);
    entries.into_iter().map(|(_, id, e)| (id, e)).collect()
});

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// A setting from the environment; the message never repeats the value.
    #[error("{var}: {message}")]
    Env { var: &'static str, message: String },
    /// Field and message can quote the file (a table header, a key name, a value in the
    /// parser's message): both pass the secret scrub on the way out, so a key pasted into the
    /// file is not repeated — at start-up, or on an admin reload when every key is registered.
    #[error(
        "{file}:{line}:{column}: `{}`: {}",
        crate::secret::scrub(.field),
        crate::secret::scrub(.message)
    )]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

/// Settings of `isdown check` that may come from the file.
#[derive(Debug, Clone, Default)]
pub struct CheckSettings {
    /// `None`: every catalog provider not being checked.
    pub witnesses: Option<Vec<String>>,
    pub timeout: Option<Duration>,
}

/// Settings of `isdown serve`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    /// Data directory; the SQLite file is `isdown.db` inside it.
    pub data: PathBuf,
    /// Bearer token of the admin endpoints (reload); admin endpoints are off without it.
    pub admin_token: Option<SecretString>,
    /// `None`: fitted to the process's open-file limit at start.
    pub max_connections: Option<usize>,
    /// `[serve] region` or `ISDOWN_REGION`; `default` when neither says.
    pub region: String,
    /// `[serve] instance` or `ISDOWN_INSTANCE`; `None`: made up at start (host, pid, random).
    pub instance: Option<String>,
    /// `[serve] lease`: how long a lease lasts unless renewed (peers' takeover time).
    pub lease: Duration,
    /// `[serve] region_quorum`; `None`: a majority of the regions reporting.
    pub region_quorum: Option<u32>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from(DEFAULT_DATA_DIR),
            admin_token: None,
            max_connections: None,
            region: crate::peers::DEFAULT_REGION.to_owned(),
            instance: None,
            lease: crate::peers::DEFAULT_LEASE,
            region_quorum: None,
        }
    }
}

/// The data directory when neither `--data` nor `[serve] data` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "isdown-data";

/// Selects the store; wins over `[store] url` (the usual order: environment over file, and a
/// password kept out of the file).
pub const DATABASE_URL_VAR: &str = "ISDOWN_DATABASE_URL";

/// Names the instance's region; wins over `[serve] region`.
pub const REGION_VAR: &str = "ISDOWN_REGION";

/// Names the instance among the instances of one database; wins over `[serve] instance`.
pub const INSTANCE_VAR: &str = "ISDOWN_INSTANCE";

/// The shortest lease: its round runs every third of it, and a round is a few statements.
const MIN_LEASE: Duration = Duration::from_secs(1);

/// `[store]`, with `ISDOWN_DATABASE_URL` applied.
#[derive(Debug, Clone, Default)]
pub struct StoreSettings {
    /// `None`: the SQLite file in the data directory ([`StoreSettings::url_in`]).
    pub url: Option<DatabaseUrl>,
    pub pool: PoolSettings,
}

impl StoreSettings {
    /// The store to open, given the data directory in effect (`--data` or `[serve] data`).
    pub fn url_in(&self, data: &Path) -> DatabaseUrl {
        self.url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::default_in(data))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Catalog order first, then providers the file adds, in name order.
    pub providers: Vec<Arc<Provider>>,
    pub check: CheckSettings,
    pub serve: ServeSettings,
    pub monitor: MonitorSettings,
    /// Expanded monitors: one per (provider, probe).
    pub monitors: Vec<MonitorSpec>,
    pub retention: Retention,
    /// Alert channels, in name order, already checked (kinds, fields, secrets present).
    pub alerts: Vec<ChannelSpec>,
    /// `[alerting]`: reminders, grouping, retries, maintenance windows.
    pub alerting: AlertPolicy,
    pub web: WebSettings,
    /// `[[routes]]` and `[gateway]`, with the providers and `[web] public_url` the gateway
    /// reads: everything [`crate::gateway::Gateway::new`] takes.
    pub gateway: GatewaySettings,
    /// `[queue]`: the durable queue's pacing.
    pub queue: crate::queue::settings::QueueSettings,
    /// `[corroboration]` and every provider's sources (official page, aggregator, feeds).
    pub corroboration: crate::corroborate::Settings,
    /// `[store]` and `ISDOWN_DATABASE_URL`.
    pub store: StoreSettings,
    /// Where it came from, if from a file.
    pub source: Option<PathBuf>,
}

impl Config {
    /// Loads `path`, or `./isdown.toml` when it exists, or the catalog alone.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Config::from_toml("", "<built-in defaults>", &env_lookup);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            file: path.clone(),
            source,
        })?;
        let mut config = Config::from_toml(&text, &path.display().to_string(), &env_lookup)?;
        config.source = Some(path);
        Ok(config)
    }

    /// Parses and validates `text`; `file` names it in errors; `env` resolves key variables.
    pub fn from_toml(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            invalid_at(text, file, span.start, e.message().trim().to_owned())
        })?;

        let mut merged: BTreeMap<String, (RawProvider, bool, usize)> = BTreeMap::new();
        for (order, (id, entry)) in CATALOG.iter().enumerate() {
            merged.insert(id.clone(), (entry.clone(), true, order));
        }
        let mut spans = BTreeMap::new();
        for (id, entry) in raw.providers {
            let span = entry.span();
            spans.insert(id.clone(), span.start);
            let entry = entry.into_inner();
            match merged.get_mut(&id) {
                Some((base, _, _)) => *base = base.clone().overridden_by(entry),
                None => {
                    merged.insert(id, (entry, false, usize::MAX));
                }
            }
        }

        let mut providers = Vec::new();
        let mut sources = Vec::new();
        for (id, (entry, builtin, order)) in merged {
            let at = spans.get(&id).copied();
            let bad = |(field, msg): (&str, String)| {
                invalid_at(text, file, at.unwrap_or(0), format!("{msg} (`{field}`)"))
            };
            sources.push((
                id.clone(),
                corroboration::provider_sources(&entry).map_err(bad)?,
            ));
            let provider = build_provider(&id, entry, builtin, env).map_err(bad)?;
            providers.push((order, provider));
        }
        providers.sort_by(|(a, pa), (b, pb)| a.cmp(b).then_with(|| pa.id.cmp(&pb.id)));
        let mut providers: Vec<Arc<Provider>> =
            providers.into_iter().map(|(_, p)| Arc::new(p)).collect();
        // Collected in place, the list would keep the buffer of `(order, Provider)` pairs (~670
        // bytes a provider) as the home of 8-byte `Arc`s.
        providers.shrink_to_fit();

        let witnesses = match raw.check.witnesses {
            Some(list) => {
                let at = list.span().start;
                let list = list.into_inner();
                if let Some(unknown) = list.iter().find(|w| !providers.iter().any(|p| &p.id == *w))
                {
                    return Err(invalid_at(
                        text,
                        file,
                        at,
                        format!("unknown provider \"{unknown}\" in witnesses"),
                    ));
                }
                Some(list)
            }
            None => None,
        };

        let serve = serve_settings(raw.serve, text, file, env)?;
        let store = store_settings(raw.store, text, file, env)?;
        let web = WebSettings {
            public_url: raw
                .web
                .public_url
                .map(|u| u.0.as_str().trim_end_matches('/').to_string()),
            hide_urls: raw.web.hide_urls.unwrap_or(false),
        };
        let gateway = gateway::gateway_settings(
            raw.routes,
            raw.gateway,
            gateway::Context {
                providers: &providers,
                listen: serve.listen,
                public_url: web.public_url.clone(),
            },
            &gateway::Source { text, file },
            env,
        )?;
        let queue = queue::queue_settings(raw.queue, &gateway, &providers, text, file)?;
        let monitor = monitor_settings(&raw.monitor);
        let monitors = monitor_specs(&raw.monitors, &raw.monitor, &providers, text, file)?;
        let defaults = Retention::default();
        let pick = |v: &Option<raw::DurationValue>, d: Millis| {
            v.map_or(d, |v| {
                Millis::try_from(v.0.as_millis()).unwrap_or(Millis::MAX)
            })
        };
        let retention = Retention {
            raw: pick(&raw.retention.raw, defaults.raw),
            minute: pick(&raw.retention.minute, defaults.minute),
            hour: pick(&raw.retention.hour, defaults.hour),
            day: pick(&raw.retention.day, defaults.day),
        };

        let mut alerts = Vec::new();
        for (name, table) in raw.alerts {
            let at = table.span().start;
            let spec = ChannelSpec::from_table(&name, table.into_inner(), env).map_err(|e| {
                let mut error = invalid_at(text, file, at, e.message);
                if let ConfigError::Invalid { field, .. } = &mut error {
                    *field = if e.field.is_empty() {
                        format!("alerts.{name}")
                    } else {
                        format!("alerts.{name}.{}", e.field)
                    };
                }
                error
            })?;
            alerts.push(spec);
        }
        let alerting = alert_policy(raw.alerting, text, file)?;
        let corroboration =
            corroboration::settings(raw.corroboration, &providers, sources, text, file)?;

        Ok(Config {
            alerts,
            alerting,
            corroboration,
            web,
            gateway,
            queue,
            providers,
            check: CheckSettings {
                witnesses,
                timeout: raw.check.timeout.map(|d| d.0),
            },
            serve,
            store,
            monitor,
            monitors,
            retention,
            source: None,
        })
    }

    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id).map(|p| &**p)
    }

    pub fn provider_ids(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.id.as_str()).collect()
    }

    /// Every key value in use, for the last-chance scrub of output.
    pub fn secrets(&self) -> Vec<SecretString> {
        self.providers
            .iter()
            .filter_map(|p| p.api_key.clone())
            .chain(self.gateway.client_keys.iter().cloned())
            .collect()
    }
}

fn serve_settings(
    raw: raw::RawServe,
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServeSettings, ConfigError> {
    let mut serve = ServeSettings::default();
    if let Some(listen) = raw.listen {
        let at = listen.span().start;
        serve.listen = listen.into_inner().parse().map_err(|_| {
            invalid_at(
                text,
                file,
                at,
                "expected an address with a port, e.g. \"127.0.0.1:8080\"".into(),
            )
        })?;
    }
    if let Some(data) = raw.data {
        serve.data = PathBuf::from(data);
    }
    serve.max_connections = raw.max_connections.map(|c| c.0 as usize);
    serve.region = name_setting(env, REGION_VAR, raw.region, text, file)?
        .unwrap_or_else(|| crate::peers::DEFAULT_REGION.to_owned());
    serve.instance = name_setting(env, INSTANCE_VAR, raw.instance, text, file)?;
    serve.region_quorum = raw.region_quorum.map(|q| q.0);
    if let Some(lease) = raw.lease {
        let at = lease.span().start;
        serve.lease = lease.into_inner().0;
        if serve.lease < MIN_LEASE {
            return Err(invalid_at(
                text,
                file,
                at,
                "a lease must last at least 1s".into(),
            ));
        }
    }
    if let Some(name) = raw.admin_token_env {
        let at = name.span().start;
        serve.admin_token =
            secret_from_env(env, &name.get_ref().0).map_err(|m| invalid_at(text, file, at, m))?;
    }
    Ok(serve)
}

/// A region or instance name: from `var` when set and not empty, else from the file. Names go
/// into lease names, metric labels and URLs, so they are kept to letters, digits, `.`, `_` and
/// `-`, at most 64.
fn name_setting(
    env: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    raw: Option<toml::Spanned<String>>,
    text: &str,
    file: &str,
) -> Result<Option<String>, ConfigError> {
    let valid = |name: &str| {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    const RULE: &str = "must be 1 to 64 letters, digits, '.', '_' or '-'";
    if let Some(value) = env(var).filter(|v| !v.trim().is_empty()) {
        let value = value.trim().to_owned();
        return match valid(&value) {
            true => Ok(Some(value)),
            false => Err(ConfigError::Env {
                var,
                message: format!("the name {RULE}"),
            }),
        };
    }
    let Some(raw) = raw else {
        return Ok(None);
    };
    let at = raw.span().start;
    let value = raw.into_inner();
    match valid(&value) {
        true => Ok(Some(value)),
        false => Err(invalid_at(text, file, at, format!("the name {RULE}"))),
    }
}

/// `[store]`; `ISDOWN_DATABASE_URL`, when set and not empty, wins over its `url`. Either URL's
/// password is registered as a secret as it is parsed; errors never repeat the value.
fn store_settings(
    raw: raw::RawStore,
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StoreSettings, ConfigError> {
    let mut settings = StoreSettings::default();
    let from_env = env(DATABASE_URL_VAR).filter(|v| !v.trim().is_empty());
    if let Some(value) = from_env {
        settings.url = Some(DatabaseUrl::parse(&value).map_err(|e| ConfigError::Env {
            var: DATABASE_URL_VAR,
            message: format!("the value {e}"),
        })?);
    } else if let Some(url) = raw.url {
        let at = url.span().start;
        settings.url = Some(
            DatabaseUrl::parse(url.get_ref())
                .map_err(|e| invalid_at(text, file, at, format!("the URL {e}")))?,
        );
    }
    if let Some(size) = raw.pool_size {
        settings.pool.size = size.0;
    }
    if let Some(timeout) = raw.acquire_timeout {
        settings.pool.acquire_timeout = timeout.0;
    }
    Ok(settings)
}

fn alert_policy(raw: raw::RawAlerting, text: &str, file: &str) -> Result<AlertPolicy, ConfigError> {
    let mut policy = AlertPolicy::default();
    if let Some(reminder) = raw.reminder {
        let at = reminder.span().start;
        policy.reminder = AlertPolicy::parse_reminder(reminder.get_ref())
            .map_err(|m| invalid_at(text, file, at, m))?;
    }
    let pick = |v: Option<raw::DurationValue>, d| v.map_or(d, |v| v.0);
    policy.group_window = pick(raw.group_window, policy.group_window);
    policy.retry_initial = pick(raw.retry_initial, policy.retry_initial);
    policy.retry_max = pick(raw.retry_max, policy.retry_max).max(policy.retry_initial);
    policy.give_up_after = pick(raw.give_up_after, policy.give_up_after);
    for window in raw.maintenance {
        let at = window.span().start;
        let window = window.into_inner();
        let bad = |m: String| invalid_at(text, file, at, m);
        let start = AlertPolicy::parse_instant(&window.start).map_err(bad)?;
        let end = AlertPolicy::parse_instant(&window.end).map_err(bad)?;
        if end <= start {
            return Err(bad("`end` must be after `start`".into()));
        }
        policy.maintenance.push(Maintenance {
            monitors: MonitorSet::new(window.monitors).map_err(bad)?,
            start,
            end,
            reason: window.reason,
        });
    }
    Ok(policy)
}

fn monitor_settings(raw: &raw::RawMonitorDefaults) -> MonitorSettings {
    let mut settings = MonitorSettings::default();
    let t = &mut settings.thresholds;
    let count = |v: Option<raw::Count>, d: u32| v.map_or(d, |c| c.0);
    t.failure = count(raw.failure_threshold, t.failure);
    t.success = count(raw.success_threshold, t.success);
    t.flap_window = count(raw.flap_window, t.flap_window).min(32);
    t.flap_failures = count(raw.flap_failures, t.flap_failures);
    if let Some(d) = raw.confirm_after {
        t.confirm_after = d.0;
    }
    if let Some(d) = raw.reopen_within {
        t.reopen_within = Millis::try_from(d.0.as_millis()).unwrap_or(Millis::MAX);
    }
    settings.concurrency = count(raw.concurrency, settings.concurrency as u32) as usize;
    settings
}

/// `[[monitors]]` expanded into one spec per probe; without any, one monitor per provider:
/// `chat` where a key is set, `reachability` where not.
fn monitor_specs(
    raw: &[toml::Spanned<raw::RawMonitor>],
    defaults: &raw::RawMonitorDefaults,
    providers: &[Arc<Provider>],
    text: &str,
    file: &str,
) -> Result<Vec<MonitorSpec>, ConfigError> {
    let interval = defaults
        .interval
        .map_or(crate::monitor::DEFAULT_INTERVAL, |d| d.0);
    let timeout = defaults
        .timeout
        .map_or(crate::monitor::DEFAULT_PROBE_TIMEOUT, |d| d.0);
    // Monitors share their provider with the config (one copy each), and lookups are by id: a
    // config with 50,000 monitors is read in linear time.
    let mut specs: Vec<MonitorSpec> = Vec::new();
    if raw.is_empty() {
        for provider in providers {
            let probe = if provider.has_key() {
                ProbeKind::Chat
            } else {
                ProbeKind::Reachability
            };
            specs.push(MonitorSpec::new(provider.clone(), probe, interval, timeout));
        }
        return Ok(specs);
    }
    let by_id: HashMap<&str, &Arc<Provider>> =
        providers.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut ids: HashSet<String> = HashSet::new();
    for entry in raw {
        let at = entry.span().start;
        let m = entry.get_ref();
        let provider = by_id.get(m.provider.as_str()).ok_or_else(|| {
            let known: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
            invalid_at(
                text,
                file,
                at,
                format!(
                    "unknown provider \"{}\" (`provider`); known: {}",
                    m.provider,
                    known.join(", ")
                ),
            )
        })?;
        let probes: Vec<ProbeKind> = match &m.probes {
            Some(list) => list.clone(),
            None if provider.has_key() => vec![ProbeKind::Chat],
            None => vec![ProbeKind::Reachability],
        };
        for probe in probes {
            let spec = MonitorSpec::new(
                Arc::clone(provider),
                probe,
                m.interval.map_or(interval, |d| d.0),
                m.timeout.map_or(timeout, |d| d.0),
            );
            if !ids.insert(spec.id.clone()) {
                return Err(invalid_at(
                    text,
                    file,
                    at,
                    format!("monitor \"{}\" is defined twice", spec.id),
                ));
            }
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// Reads a secret from the environment variable `var`: surrounding white space is trimmed and an
/// empty value counts as unset; a value that cannot be a key (a control character, too short) is
/// an error naming the variable, never the value. Every secret read is registered for scrubbing
/// ([`crate::secret::register`]).
pub(crate) fn secret_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
) -> Result<Option<SecretString>, String> {
    let Some(value) = env(var) else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    crate::secret::check_value(value).map_err(|e| format!("the value of {var} {e}"))?;
    crate::secret::register([value]);
    Ok(Some(SecretString::from(value.to_owned())))
}

pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Turns a merged raw entry into a provider; errors name the missing or bad field.
fn build_provider(
    id: &str,
    raw: RawProvider,
    builtin: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, (&'static str, String)> {
    let new = "a provider not in the built-in catalog needs";
    let base_url = raw
        .base_url
        .ok_or(("base_url", format!("{new} a base_url")))?;
    let probe_model = raw
        .probe_model
        .filter(|m| !m.trim().is_empty())
        .ok_or(("probe_model", format!("{new} a probe_model")))?;
    let mut headers = Vec::new();
    for (name, value) in raw.headers.unwrap_or_default() {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ("headers", format!("\"{name}\" is not a valid header name")))?;
        if matches!(
            header.as_str(),
            "authorization" | "x-api-key" | "api-key" | "cookie"
        ) {
            return Err((
                "headers",
                format!("\"{name}\" carries credentials: use api_key_env instead"),
            ));
        }
        let value = HeaderValue::from_str(&value)
            .map_err(|_| ("headers", format!("the value of \"{name}\" is not valid")))?;
        headers.push((header, value));
    }
    let api_key_env = raw.api_key_env.map(|e| e.0);
    let api_key = match &api_key_env {
        Some(var) => secret_from_env(env, var).map_err(|m| ("api_key_env", m))?,
        None => None,
    };
    Ok(Provider {
        id: id.to_owned(),
        name: raw.name.unwrap_or_else(|| id.to_owned()),
        base_url: base_url.0,
        style: raw.style.unwrap_or(crate::provider::WireStyle::Openai),
        api_key_env,
        api_key,
        probe_model,
        context_window: raw.context_window,
        degraded_after: raw
            .degraded_after
            .map(|d| d.0)
            .unwrap_or(crate::provider::DEFAULT_DEGRADED_AFTER),
        status_page: raw.status_page,
        headers,
        prefill: raw.prefill.map(|p| crate::provider::Prefill {
            flag: p.flag.filter(|f| !f.trim().is_empty()),
            base_url: p.base_url.map(|u| u.0),
        }),
        builtin,
    })
}

/// Builds an error pointing at byte `offset` of `text`: line, column, and the dotted field path
/// found from the key on that line and the table header above it.
fn invalid_at(text: &str, file: &str, offset: usize, message: String) -> ConfigError {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let field = field_path(&text[..line_start], line_text);
    ConfigError::Invalid {
        file: file.to_owned(),
        line,
        column,
        field,
        message,
    }
}

fn field_path(text_before_line: &str, line_text: &str) -> String {
    let trimmed = line_text.trim();
    if let Some(header) = table_header(trimmed) {
        return header;
    }
    let key = trimmed
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .unwrap_or_default();
    let table = text_before_line
        .lines()
        .rev()
        .find_map(|l| table_header(l.trim()))
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

fn table_header(line: &str) -> Option<String> {
    let inner = line.strip_prefix("[[").and_then(|l| l.split_once("]]"));
    let inner = inner.or_else(|| line.strip_prefix('[').and_then(|l| l.split_once(']')));
    inner.map(|(name, _)| name.trim().to_owned())
}

#[cfg(test)]
mod tests;

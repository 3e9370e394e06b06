//! The file model: serde structs that mirror `isdown.toml` and the embedded catalog one to one.
//!
//! Every struct denies unknown fields, and every value type validates itself while it is
//! deserialized, so that a bad value is reported by the TOML parser with its exact position.
//! Nothing here reads the environment or touches the network; `config::Config` turns these into
//! the typed configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::probe::ProbeKind;
use crate::provider::WireStyle;
use crate::time::{MAX_DURATION, MIN_DURATION, parse_duration};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub providers: BTreeMap<String, Spanned<RawProvider>>,
    #[serde(default)]
    pub check: RawCheck,
    #[serde(default)]
    pub serve: RawServe,
    #[serde(default)]
    pub monitor: RawMonitorDefaults,
    #[serde(default)]
    pub monitors: Vec<Spanned<RawMonitor>>,
    #[serde(default)]
    pub retention: RawRetention,
    /// `[alerts.NAME]` tables; each is checked by the channel its `kind` names.
    #[serde(default)]
    pub alerts: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default)]
    pub web: RawWeb,
    /// `[[routes]]`: gateway model aliases, tried in file order.
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub gateway: RawGateway,
    #[serde(default)]
    pub alerting: RawAlerting,
    #[serde(default)]
    pub queue: RawQueue,
    #[serde(default)]
    pub corroboration: RawCorroboration,
    #[serde(default)]
    pub store: RawStore,
}

/// `[store]`: where history is kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite:PATH` or `postgres://…`; `ISDOWN_DATABASE_URL` wins over it. Absent: the SQLite
    /// file in the data directory.
    pub url: Option<Spanned<String>>,
    /// PostgreSQL connections one isdown process opens at most (default 10).
    pub pool_size: Option<Count>,
    /// How long a query waits for a free PostgreSQL connection (default 30 s).
    pub acquire_timeout: Option<DurationValue>,
}

/// `[queue]`: pacing of the durable queue's batch lines.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// Batch lines in flight to one provider at most (default 16).
    pub concurrency_per_provider: Option<Count>,
    /// Batch lines started per minute per provider at most (default: no limit of our own).
    pub requests_per_minute: Option<Count>,
    /// `[queue.providers.ID]`: the same two limits for one provider.
    #[serde(default)]
    pub providers: BTreeMap<String, Spanned<RawQueueProvider>>,
}

/// `[queue.providers.ID]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueueProvider {
    pub concurrency: Option<Count>,
    pub requests_per_minute: Option<Count>,
}

/// `[corroboration]`: how the sources beside the probes (official pages, the aggregator,
/// community feeds) are read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCorroboration {
    /// `false` turns every source off.
    pub enabled: Option<bool>,
    /// How often `serve` reads each source (at least 1 s; default 2 min).
    pub interval: Option<IntervalValue>,
    /// Deadline of one read (default 10 s).
    pub timeout: Option<DurationValue>,
    /// The aggregator's API root (default OpenRouter's).
    pub aggregator_url: Option<BaseUrl>,
    /// `[[corroboration.community]]`: feeds counted as community reports.
    #[serde(default)]
    pub community: Vec<Spanned<RawCommunityFeed>>,
}

/// One community feed of one provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommunityFeed {
    pub provider: String,
    /// An RSS, Atom or JSON Feed URL.
    pub url: SourceUrl,
    /// Shown in outputs (default: the feed's host).
    pub name: Option<String>,
    /// Phrases that make a post a report (case-insensitive), e.g. ["kimi down"].
    pub keywords: Vec<String>,
    /// Reports are counted over this trailing window (default 30 min).
    pub window: Option<DurationValue>,
    /// How far back the usual count is learnt (default 7 days).
    pub baseline: Option<DurationValue>,
    /// Fewer reports than this are never a spike (default 3).
    pub min_reports: Option<Count>,
}

/// `[[routes]]`: a model alias (exact, or a glob with `*`) and the targets tried in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub model: String,
    pub targets: Vec<RawTarget>,
    /// Non-streaming requests only: also send to the next target after this long without an
    /// answer, e.g. "p95+2s" or "20s".
    pub hedge_after: Option<String>,
    /// `"off"` or `"verified"`; absent: `[gateway] stream_recovery`.
    pub stream_recovery: Option<String>,
    /// Check requests with the request lint: "warn" (forward, flag with a header) or "reject"
    /// (answer 400 before any provider is paid).
    pub lint: Option<String>,
}

/// One target of a route: a provider, optionally another model name and parameter overrides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub provider: String,
    /// The model sent to this provider; absent: the requested name, unchanged.
    pub model: Option<String>,
    /// Request parameters set (or replaced) for this target only, e.g. `{ temperature = 1 }`.
    pub params: Option<toml::Table>,
}

/// `[gateway]`: the OpenAI-compatible endpoint of `isdown serve`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// Environment variables holding the keys clients send as `Authorization: Bearer`.
    pub client_keys_env: Option<Spanned<Vec<EnvVarName>>>,
    /// Serve without client keys; refused unless the listen address is loopback.
    pub open_on_localhost: Option<Spanned<bool>>,
    /// Longest announced `Retry-After` worth waiting for on the same target (default 10 s).
    pub max_retry_wait: Option<DurationValue>,
    /// Largest request body accepted, in bytes (default 16 MiB).
    pub max_request_bytes: Option<Count>,
    /// Request bytes held at once by every request in flight together (default 128 MiB).
    pub max_request_bytes_in_flight: Option<Spanned<Count>>,
    /// `"off"` (default) or `"verified"`: whether a stream cut after content was sent may be
    /// completed on the same or another target (see `gateway::recovery`).
    pub stream_recovery: Option<Spanned<String>>,
    #[serde(default)]
    pub timeouts: RawGatewayTimeouts,
}

/// `[gateway.timeouts]`: per-attempt deadlines and the whole-request budget.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayTimeouts {
    pub connect: Option<DurationValue>,
    pub first_token: Option<DurationValue>,
    pub idle: Option<DurationValue>,
    pub request: Option<DurationValue>,
    pub total: Option<DurationValue>,
}

/// `[alerting]`: when alerts are sent, for every channel.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    /// While an incident stays open: "30m" (default), at least "5m", or "off".
    pub reminder: Option<Spanned<String>>,
    /// Incidents opening within this window of the first one share one message.
    pub group_window: Option<DurationValue>,
    /// First retry delay after a receiver fails; doubles (with jitter) up to `retry_max`.
    pub retry_initial: Option<DurationValue>,
    pub retry_max: Option<DurationValue>,
    /// A message not delivered after this long is given up (and reported).
    pub give_up_after: Option<DurationValue>,
    #[serde(default)]
    pub maintenance: Vec<Spanned<RawMaintenance>>,
}

/// `[[alerting.maintenance]]`: a window during which chosen monitors raise no alerts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    /// Monitor ids, provider ids or globs ("kimi", "kimi-*", "*").
    pub monitors: Vec<String>,
    /// RFC 3339, e.g. "2026-12-01T02:00:00Z".
    pub start: String,
    pub end: String,
    pub reason: Option<String>,
}

/// `[web]`: the public face (status page, links in alerts).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Where people reach the status page, e.g. "https://status.example.com"; alerts link to it.
    pub public_url: Option<BaseUrl>,
    /// Hide upstream base URLs from the public pages and JSON.
    pub hide_urls: Option<bool>,
}

/// `[serve]`: where the daemon listens and keeps its data.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    pub listen: Option<Spanned<String>>,
    /// A directory (the SQLite file `isdown.db` lives inside).
    pub data: Option<String>,
    /// Environment variable holding the bearer token of the admin endpoints.
    pub admin_token_env: Option<Spanned<EnvVarName>>,
    /// Connections the listener holds at once (default: fitted to the open-file limit).
    pub max_connections: Option<Count>,
    /// The instance's region (`ISDOWN_REGION` wins).
    pub region: Option<Spanned<String>>,
    /// The instance's id among the instances of one database (`ISDOWN_INSTANCE` wins).
    pub instance: Option<Spanned<String>>,
    /// How long a lease on a monitor or on alerting lasts unless renewed.
    pub lease: Option<Spanned<DurationValue>>,
    /// Regions that must see an outage for it to open (default: a majority of those reporting).
    pub region_quorum: Option<Count>,
}

/// `[monitor]`: defaults for every monitor.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitorDefaults {
    pub interval: Option<IntervalValue>,
    pub timeout: Option<DurationValue>,
    pub failure_threshold: Option<Count>,
    pub success_threshold: Option<Count>,
    pub confirm_after: Option<DurationValue>,
    pub reopen_within: Option<DurationValue>,
    pub flap_window: Option<Count>,
    pub flap_failures: Option<Count>,
    pub concurrency: Option<Count>,
}

/// `[[monitors]]`: one provider, probed one or more ways.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub provider: String,
    pub probes: Option<Vec<ProbeKind>>,
    pub interval: Option<IntervalValue>,
    pub timeout: Option<DurationValue>,
}

/// `[retention]`: how long rows are kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub raw: Option<DurationValue>,
    pub minute: Option<DurationValue>,
    pub hour: Option<DurationValue>,
    pub day: Option<DurationValue>,
}

/// A positive count (thresholds, windows, concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Count(pub u32);

impl TryFrom<i64> for Count {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        u32::try_from(value)
            .ok()
            .filter(|v| *v >= 1)
            .map(Count)
            .ok_or_else(|| format!("expected a whole number of at least 1, got {value}"))
    }
}

/// One provider, in the catalog or in `[providers.NAME]`. In the file every field is optional:
/// an entry for a catalog name overrides only the fields it sets.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: Option<String>,
    pub base_url: Option<BaseUrl>,
    pub style: Option<WireStyle>,
    pub api_key_env: Option<EnvVarName>,
    pub probe_model: Option<String>,
    pub context_window: Option<u64>,
    pub degraded_after: Option<DurationValue>,
    pub status_page: Option<String>,
    /// A Statuspage v2 root read as corroboration (`/api/v2/summary.json`, `incidents.json`).
    pub status_url: Option<BaseUrl>,
    /// Component names or ids of `status_url` that matter for the API.
    pub status_components: Option<Vec<String>>,
    /// The model's slug at the aggregator (OpenRouter), e.g. "moonshotai/kimi-k2.6".
    pub aggregator_model: Option<String>,
    /// This provider's endpoint at the aggregator (its name or tag), e.g. "Moonshot AI".
    pub aggregator_provider: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    /// Assistant prefill, if the provider supports it (see `provider::Prefill`).
    pub prefill: Option<RawPrefill>,
}

/// `prefill = { flag = "partial" }`, `{ flag = "prefix", base_url = "…/beta" }` or `{}`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrefill {
    pub flag: Option<String>,
    pub base_url: Option<BaseUrl>,
}

impl RawProvider {
    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub fn overridden_by(mut self, over: RawProvider) -> RawProvider {
        // A catalog provider's status page and aggregator entry describe its official
        // endpoint: an entry that points it elsewhere (a proxy, a self-hosted copy, a mock)
        // keeps them only by setting them again.
        if over.base_url.is_some() && over.base_url != self.base_url {
            self.status_url = None;
            self.status_components = None;
            self.aggregator_model = None;
            self.aggregator_provider = None;
        }
        macro_rules! take {
            ($($field:ident),*) => { $( if over.$field.is_some() { self.$field = over.$field; } )* };
        }
        take!(
            name,
            base_url,
            style,
            api_key_env,
            probe_model,
            context_window,
            degraded_after,
            status_page,
            headers,
            prefill,
            status_url,
            status_components,
            aggregator_model,
            aggregator_provider
        );
        self
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Providers probed (reachability only) to tell a provider outage from a local network
    /// problem. Default: every catalog provider not already being checked.
    pub witnesses: Option<Spanned<Vec<String>>>,
    /// Per-probe deadline; `--timeout` wins.
    pub timeout: Option<DurationValue>,
}

/// An `http`/`https` URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BaseUrl(pub reqwest::Url);

impl TryFrom<String> for BaseUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let trimmed = value.trim_end_matches('/');
        let url = reqwest::Url::parse(trimmed).map_err(|e| {
            format!("not a URL ({e}); expected e.g. \"https://api.moonshot.ai/v1\"")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("expected an http:// or https:// URL with a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL are not allowed; use api_key_env".into());
        }
        Ok(BaseUrl(url))
    }
}

/// An `http`/`https` URL with a host, kept exactly as written (a feed URL's trailing slash or
/// query matters).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SourceUrl(pub reqwest::Url);

impl TryFrom<String> for SourceUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let url = reqwest::Url::parse(value.trim()).map_err(|e| {
            format!("not a URL ({e}); expected e.g. \"https://example.com/feed.xml\"")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("expected an http:// or https:// URL with a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL are not allowed".into());
        }
        Ok(SourceUrl(url))
    }
}

/// The name of an environment variable. Rejects values that look like a key, and says so without
/// repeating the value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct EnvVarName(pub String);

impl TryFrom<String> for EnvVarName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.starts_with("sk-") || crate::secret::redact(&value) != value {
            return Err(
                "this looks like a key: name the environment variable that holds it instead \
                 (e.g. \"MOONSHOT_API_KEY\"), never the key itself"
                    .into(),
            );
        }
        let mut chars = value.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "\"{value}\" is not an environment variable name (letters, digits, _)"
            ));
        }
        Ok(EnvVarName(value))
    }
}

/// A duration written the human way: "30s", "5m", "1h 30m", "250ms"; between a millisecond and
/// a century ([`crate::time::parse_duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DurationValue(pub Duration);

impl TryFrom<String> for DurationValue {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        parse_duration(&value, MIN_DURATION, MAX_DURATION).map(DurationValue)
    }
}

/// A monitor's probe interval: at least a second (a faster loop would hammer the provider and
/// isdown's own database) and at most a day (a monitor that looks less often does not monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IntervalValue(pub Duration);

/// Bounds of [`IntervalValue`].
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(86_400));

impl TryFrom<String> for IntervalValue {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        parse_duration(&value, INTERVAL_RANGE.0, INTERVAL_RANGE.1).map(IntervalValue)
    }
}

//! Corroboration: what the provider's own status page, an aggregator (OpenRouter) and the
//! community say about a provider, beside isdown's own probes.
//!
//! This module owns the sources (their settings, built by `config`), reading them over HTTP
//! within bounds of size, time and redirects (`fetch`), the pure parsers of what they return
//! (`statuspage`, `aggregator`, `feed` — plain functions over bytes, so they can be fuzzed), the
//! pure judgements made from them (`community`: reports against a baseline; `lead`: which
//! official incident acknowledged which of ours, and how far ahead isdown was), the one-shot
//! gathering of `isdown check` (`gather`) and the poller of `isdown serve` (`poller`: its own
//! task, schedule, conditional GETs and cache; it records official incidents and
//! acknowledgements through the [`crate::store::Store`] trait and publishes a [`view::SourcesView`]
//! for the status page). How a reading reads for people is written once, in `words`.
//!
//! What it must not do: decide a verdict or an exit code (the probes do; corroboration explains,
//! it never overrides), slow probing down (its own task and HTTP client, every read under a
//! deadline, its failures stay inside a source's reading), or send a key anywhere (sources are
//! public and are read without credentials). A source that is down, slow, redirects in a loop,
//! answers HTML or garbage or changes its format becomes [`Reading::Unavailable`] with a reason;
//! nothing else changes.

pub mod aggregator;
pub mod community;
pub mod feed;
pub mod fetch;
pub mod gather;
pub mod lead;
pub mod poller;
pub mod statuspage;
pub mod view;
pub mod words;

#[cfg(test)]
mod tests;

use std::time::Duration;

use reqwest::Url;
use thiserror::Error;

pub use aggregator::AggregatorReading;
pub use community::FeedCount;
pub use statuspage::OfficialReading;

/// 2 min: official pages change by the minute at best, and a page polled more often than this
/// by every isdown instance would rightly rate-limit it.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(120);
/// 10 s per source read: a status page that takes longer is as good as down, and a check must
/// not wait on it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// OpenRouter's public API root (`{root}/models/{model}/endpoints`).
pub const DEFAULT_AGGREGATOR_URL: &str = "https://openrouter.ai/api/v1";
/// The aggregator's name, as people know it.
pub const AGGREGATOR_NAME: &str = "OpenRouter";

/// `[corroboration]` and the sources of every provider, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `enabled = false` turns every source off (a machine without internet access).
    pub enabled: bool,
    /// How often `serve` reads every source.
    pub interval: Duration,
    /// Deadline of one read of one source (redirects and body included).
    pub timeout: Duration,
    /// The aggregator's API root.
    pub aggregator_url: Url,
    /// Providers with at least one source, in config order.
    pub providers: Vec<ProviderSources>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: true,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            aggregator_url: Url::parse(DEFAULT_AGGREGATOR_URL)
                .expect("the default aggregator URL is valid"),
            providers: Vec::new(),
        }
    }
}

impl Settings {
    /// These settings with only the sources of `providers` (what is monitored, or checked):
    /// nobody's status page is read for a provider nobody watches.
    pub fn only(&self, providers: &[&str]) -> Settings {
        Settings {
            providers: self
                .providers
                .iter()
                .filter(|p| providers.contains(&p.provider.as_str()))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The sources of a provider, when it has any and corroboration is on.
    pub fn of(&self, provider: &str) -> Option<&ProviderSources> {
        self.providers
            .iter()
            .find(|p| p.provider == provider)
            .filter(|_| self.enabled)
    }
}

/// The sources of one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSources {
    pub provider: String,
    /// Display name, e.g. "Kimi".
    pub name: String,
    pub official: Option<OfficialSource>,
    pub aggregator: Option<AggregatorSource>,
    pub community: Vec<CommunityFeed>,
}

/// A Statuspage v2 root (`status_url`), narrowed to some components (`status_components`).
#[derive(Debug, Clone, PartialEq)]
pub struct OfficialSource {
    /// e.g. `https://status.moonshot.cn`; isdown reads `/api/v2/summary.json` and
    /// `/api/v2/incidents.json` under it.
    pub root: Url,
    /// Component names or ids that matter for the API; empty: the whole page.
    pub components: Vec<String>,
}

impl OfficialSource {
    /// `{root}/api/v2/summary.json`: status, components, unresolved incidents.
    pub fn summary_url(&self) -> Url {
        under(&self.root, "api/v2/summary.json")
    }

    /// `{root}/api/v2/incidents.json`: the 50 newest incidents, resolved ones included.
    pub fn incidents_url(&self) -> Url {
        under(&self.root, "api/v2/incidents.json")
    }
}

/// A model at the aggregator, and the endpoint (upstream provider) that stands for this
/// provider there.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatorSource {
    /// The aggregator's model slug, e.g. `moonshotai/kimi-k2.6`.
    pub model: String,
    /// The upstream's name or tag at the aggregator, e.g. `Moonshot AI`; `None`: every
    /// endpoint of the model (the aggregator itself as the provider).
    pub endpoint: Option<String>,
}

impl AggregatorSource {
    /// `{root}/models/{model}/endpoints`.
    pub fn url(&self, root: &Url) -> Url {
        under(root, &format!("models/{}/endpoints", self.model))
    }
}

/// A community feed (RSS, Atom or JSON Feed) and what counts as a report in it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunityFeed {
    /// Shown in outputs, e.g. "r/LocalLLaMA"; defaults to the feed's host.
    pub name: String,
    pub url: Url,
    /// Lower-case phrases; an item whose title or text contains one is a report.
    pub keywords: Vec<String>,
    /// Reports are counted over this trailing window.
    pub window: Duration,
    /// How far back the usual count per window is learnt.
    pub baseline: Duration,
    /// Fewer reports than this in a window are never a spike.
    pub min_reports: u32,
}

/// `root` with `path` appended below its own path (a root may itself have a path).
fn under(root: &Url, path: &str) -> Url {
    let mut url = root.clone();
    let base = root.path().trim_end_matches('/');
    url.set_path(&format!("{base}/{path}"));
    url.set_query(None);
    url
}

/// What one source says, or why it says nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading<T> {
    Ok(T),
    /// Down, slow, redirected in a loop, HTML, garbage, a changed format: the reason says
    /// which, in a few words (never the body).
    Unavailable(String),
}

impl<T> Reading<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Reading::Ok(value) => Some(value),
            Reading::Unavailable(_) => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Reading::Ok(_) => None,
            Reading::Unavailable(reason) => Some(reason),
        }
    }

    /// `"ok"` or `"unavailable"`: the `state` of the JSON contract.
    pub fn state(&self) -> &'static str {
        match self {
            Reading::Ok(_) => "ok",
            Reading::Unavailable(_) => "unavailable",
        }
    }
}

/// Everything the sources of one provider say, each `None` when not configured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Corroboration {
    pub provider: String,
    pub official: Option<Reading<OfficialReading>>,
    pub aggregator: Option<Reading<AggregatorReading>>,
    /// One per configured feed, in config order; empty when none is configured.
    pub community: Vec<(CommunityFeed, Reading<FeedCount>)>,
}

impl Corroboration {
    /// Whether any source is configured at all.
    pub fn any(&self) -> bool {
        self.official.is_some() || self.aggregator.is_some() || !self.community.is_empty()
    }
}

/// Why a document could not be read as what it should be. Never quotes the body: a page may
/// echo anything, and reasons end up in pages and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty answer")]
    Empty,
    #[error("an HTML page, not {expected}")]
    Html { expected: &'static str },
    #[error("not {expected} ({detail})")]
    Malformed {
        expected: &'static str,
        detail: String,
    },
    /// A value outside the documented enumeration: the source changed its format.
    #[error("unknown {field} \"{value}\" (the format changed?)")]
    Unknown { field: &'static str, value: String },
}

impl ParseError {
    /// An unknown `value` of `field`, quoted as an [`excerpt`].
    pub(crate) fn unknown(field: &'static str, value: &str) -> ParseError {
        ParseError::Unknown {
            field,
            value: excerpt(value),
        }
    }
}

/// Characters of a source's own text a reason may quote (an unknown word, an element name):
/// enough to recognise it, never the document.
const EXCERPT_CHARS: usize = 40;

/// `text` as a reason quotes what a source sent ([`crate::quote::excerpt`] of [`EXCERPT_CHARS`]
/// characters), so that a hostile page cannot fill a status page.
pub(crate) fn excerpt(text: &str) -> String {
    crate::quote::excerpt(text, EXCERPT_CHARS)
}

/// How a JSON document failed to parse, as a [`ParseError`]: HTML is recognised, serde's
/// message (a position and what it expected, never content) is kept.
fn json_error(bytes: &[u8], expected: &'static str, e: &serde_json::Error) -> ParseError {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        ParseError::Empty
    } else if looks_like_html(bytes) {
        ParseError::Html { expected }
    } else {
        ParseError::Malformed {
            expected,
            detail: e.to_string().chars().take(120).collect(),
        }
    }
}

/// `<!DOCTYPE html` or `<html` after white space: a web page (a CDN's error page, a login
/// wall, a single-page app's shell) where data was expected.
pub(crate) fn looks_like_html(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let head: Vec<u8> = bytes[start..]
        .iter()
        .take(14)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

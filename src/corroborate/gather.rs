//! From documents to readings, and the one-shot gathering of `isdown check`.
//!
//! Every source is one or two URLs; each URL is read at most once however many providers share
//! it (Kimi, Kimi China and OpenRouter may all ask OpenRouter about the same model), parsed by
//! its kind into a [`Doc`], and each provider's [`Corroboration`] is then derived from the
//! documents by pure functions. `serve`'s poller keeps the same documents between reads;
//! [`gather`] reads them once, concurrently, under one deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::task::JoinSet;

use super::aggregator::{self, Endpoint};
use super::feed::{self, FeedItem};
use super::fetch::{Deadline, Fetched, Fetcher, Validators};
use super::statuspage::{self, PageIncident, Summary};
use super::{Corroboration, ParseError, ProviderSources, Reading, Settings, community};
use crate::time::Millis;

/// What a URL is expected to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Summary,
    Incidents,
    Endpoints,
    Feed,
}

/// A document as parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Summary(Arc<Summary>),
    Incidents(Arc<Vec<PageIncident>>),
    Endpoints(Arc<Vec<Endpoint>>),
    /// Posts known, and since when the reader has known the feed (`None`: since its oldest
    /// post).
    Feed {
        items: Arc<Vec<FeedItem>>,
        covered_from: Option<Millis>,
    },
}

/// Parses `bytes` as a document of `kind`.
pub fn parse(kind: Kind, bytes: &[u8]) -> Result<Doc, ParseError> {
    Ok(match kind {
        Kind::Summary => Doc::Summary(Arc::new(statuspage::parse_statuspage_summary(bytes)?)),
        Kind::Incidents => Doc::Incidents(Arc::new(statuspage::parse_statuspage_incidents(bytes)?)),
        Kind::Endpoints => Doc::Endpoints(Arc::new(aggregator::parse_openrouter_endpoints(bytes)?)),
        Kind::Feed => Doc::Feed {
            items: Arc::new(feed::parse_feed(bytes)?),
            covered_from: None,
        },
    })
}

/// Each URL's latest document, or why there is none.
pub type Docs = HashMap<Url, Result<Doc, String>>;

/// The URLs `sources` needs; `history` adds the official page's `incidents.json` (`serve`
/// records resolved incidents; a check needs only what is open now).
pub fn urls(settings: &Settings, sources: &ProviderSources, history: bool) -> Vec<(Url, Kind)> {
    let mut out = Vec::new();
    if let Some(official) = &sources.official {
        out.push((official.summary_url(), Kind::Summary));
        if history {
            out.push((official.incidents_url(), Kind::Incidents));
        }
    }
    if let Some(aggregator) = &sources.aggregator {
        out.push((aggregator.url(&settings.aggregator_url), Kind::Endpoints));
    }
    for feed in &sources.community {
        out.push((feed.url.clone(), Kind::Feed));
    }
    out
}

const NOT_READ: &str = "not read yet";

/// What `sources` says now, from `docs`.
pub fn corroboration(
    settings: &Settings,
    sources: &ProviderSources,
    docs: &Docs,
    now: Millis,
) -> Corroboration {
    let doc = |url: &Url| docs.get(url).cloned();
    let official = sources
        .official
        .as_ref()
        .map(|source| match doc(&source.summary_url()) {
            Some(Ok(Doc::Summary(summary))) => statuspage::official_reading(&summary, source)
                .map_or_else(|e| Reading::Unavailable(e.to_string()), Reading::Ok),
            Some(Err(reason)) => Reading::Unavailable(reason),
            _ => Reading::Unavailable(NOT_READ.to_owned()),
        });
    let aggregator =
        sources.aggregator.as_ref().map(
            |source| match doc(&source.url(&settings.aggregator_url)) {
                Some(Ok(Doc::Endpoints(endpoints))) => {
                    aggregator::aggregator_reading(&endpoints, source)
                        .map_or_else(|e| Reading::Unavailable(e.to_string()), Reading::Ok)
                }
                Some(Err(reason)) => Reading::Unavailable(reason),
                _ => Reading::Unavailable(NOT_READ.to_owned()),
            },
        );
    let community = sources
        .community
        .iter()
        .map(|f| {
            let reading = match doc(&f.url) {
                Some(Ok(Doc::Feed {
                    items,
                    covered_from,
                })) => Reading::Ok(community::count(&items, f, covered_from, now)),
                Some(Err(reason)) => Reading::Unavailable(reason),
                _ => Reading::Unavailable(NOT_READ.to_owned()),
            };
            (f.clone(), reading)
        })
        .collect();
    Corroboration {
        provider: sources.provider.clone(),
        official,
        aggregator,
        community,
    }
}

/// Reads and parses one URL before `deadline`; the error is the reason shown.
pub async fn read(
    fetcher: &Fetcher,
    url: &Url,
    kind: Kind,
    deadline: Deadline,
) -> Result<Doc, String> {
    match fetcher.get(url, &Validators::default(), deadline).await {
        Ok(Fetched::Body { bytes, .. }) => parse(kind, &bytes).map_err(|e| e.to_string()),
        // Unconditional GETs are never answered 304 by a correct server.
        Ok(Fetched::NotModified) => Err("HTTP 304 to an unconditional request".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// `isdown check`'s corroboration of `providers` (in that order; providers without sources
/// get an empty one): every URL read once, concurrently, all within `timeout`.
pub async fn gather(
    settings: &Settings,
    providers: &[String],
    timeout: Duration,
    now: Millis,
) -> Vec<Corroboration> {
    let wanted: Vec<&ProviderSources> = providers.iter().filter_map(|p| settings.of(p)).collect();
    let mut docs: Docs = HashMap::new();
    let deadline = Deadline::after(timeout.min(settings.timeout));
    match Fetcher::new() {
        Ok(fetcher) => {
            let mut tasks = JoinSet::new();
            let mut seen = Vec::new();
            for (url, kind) in wanted.iter().flat_map(|s| urls(settings, s, false)) {
                if seen.contains(&url) {
                    continue;
                }
                seen.push(url.clone());
                let fetcher = fetcher.clone();
                tasks.spawn(async move {
                    let doc = read(&fetcher, &url, kind, deadline).await;
                    (url, doc)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                if let Ok((url, doc)) = joined {
                    docs.insert(url, doc);
                }
            }
        }
        Err(e) => {
            let reason = format!("cannot build the HTTP client: {e}");
            for (url, _) in wanted.iter().flat_map(|s| urls(settings, s, false)) {
                docs.insert(url, Err(reason.clone()));
            }
        }
    }
    providers
        .iter()
        .map(|p| match settings.of(p) {
            Some(sources) => corroboration(settings, sources, &docs, now),
            None => Corroboration {
                provider: p.clone(),
                ..Corroboration::default()
            },
        })
        .collect()
}

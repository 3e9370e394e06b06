//! `[corroboration]`, the providers' `status_url`/`status_components`/`aggregator_*` keys and
//! `[[corroboration.community]]` into [`corroborate::Settings`]: durations and URLs already
//! typed by `raw`, checked here for what spans fields (a feed's provider exists, a baseline is
//! longer than its window, an aggregator endpoint comes with a model).

use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawCommunityFeed, RawCorroboration, RawProvider};
use super::{ConfigError, invalid_at};
use crate::corroborate::{
    AggregatorSource, CommunityFeed, OfficialSource, ProviderSources, Settings,
};
use crate::provider::Provider;

/// 30 min: long enough for a handful of posts to gather, short enough to be about now.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 60);
/// 7 days: a week holds both quiet nights and busy weekdays.
pub const DEFAULT_BASELINE: Duration = Duration::from_secs(7 * 86_400);
/// 3: one post is an opinion and two a coincidence.
pub const DEFAULT_MIN_REPORTS: u32 = 3;

/// The sources a provider entry itself sets (the community feeds are set elsewhere).
#[derive(Debug, Clone, Default)]
pub(super) struct OwnSources {
    pub official: Option<OfficialSource>,
    pub aggregator: Option<AggregatorSource>,
}

/// A provider's own sources (official page, aggregator), read from its merged entry; the error
/// names the field.
pub(super) fn provider_sources(raw: &RawProvider) -> Result<OwnSources, (&'static str, String)> {
    let components: Vec<String> = raw
        .status_components
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.trim().to_owned())
        .collect();
    if components.iter().any(String::is_empty) {
        return Err((
            "status_components",
            "a component name cannot be empty".into(),
        ));
    }
    if !components.is_empty() && raw.status_url.is_none() {
        return Err((
            "status_components",
            "status_components narrows a status_url: set status_url too".into(),
        ));
    }
    let official = raw.status_url.clone().map(|root| OfficialSource {
        root: root.0,
        components,
    });
    let model = raw
        .aggregator_model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let endpoint = raw
        .aggregator_provider
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let aggregator = match (model, endpoint) {
        (None, Some(_)) => {
            return Err((
                "aggregator_provider",
                "aggregator_provider names an endpoint of aggregator_model: set \
                 aggregator_model too"
                    .into(),
            ));
        }
        (None, None) => None,
        (Some(model), endpoint) => {
            if model.contains(['?', '#']) || model.starts_with('/') || model.contains("..") {
                return Err((
                    "aggregator_model",
                    format!("\"{model}\" is not a model slug (e.g. \"moonshotai/kimi-k2.6\")"),
                ));
            }
            Some(AggregatorSource {
                model: model.to_owned(),
                endpoint: endpoint.map(str::to_owned),
            })
        }
    };
    Ok(OwnSources {
        official,
        aggregator,
    })
}

/// Everything together: `sources` holds each provider's own sources (config order), the
/// community feeds are attached to theirs.
pub(super) fn settings(
    raw: RawCorroboration,
    providers: &[Arc<Provider>],
    sources: Vec<(String, OwnSources)>,
    text: &str,
    file: &str,
) -> Result<Settings, ConfigError> {
    let defaults = Settings::default();
    let mut settings = Settings {
        enabled: raw.enabled.unwrap_or(true),
        interval: raw.interval.map_or(defaults.interval, |i| i.0),
        timeout: raw.timeout.map_or(defaults.timeout, |t| t.0),
        aggregator_url: raw.aggregator_url.map_or(defaults.aggregator_url, |u| u.0),
        providers: Vec::new(),
    };
    let mut feeds: Vec<(String, CommunityFeed)> = Vec::new();
    for entry in raw.community {
        let at = entry.span().start;
        let feed = community_feed(entry, providers).map_err(|(field, message)| {
            let mut error = invalid_at(text, file, at, message);
            if let ConfigError::Invalid { field: f, .. } = &mut error {
                *f = format!("corroboration.community.{field}");
            }
            error
        })?;
        feeds.push(feed);
    }
    for provider in providers {
        let OwnSources {
            official,
            aggregator,
        } = sources
            .iter()
            .find(|(id, _)| *id == provider.id)
            .map(|(_, own)| own.clone())
            .unwrap_or_default();
        let community: Vec<CommunityFeed> = feeds
            .iter()
            .filter(|(id, _)| *id == provider.id)
            .map(|(_, f)| f.clone())
            .collect();
        if official.is_none() && aggregator.is_none() && community.is_empty() {
            continue;
        }
        settings.providers.push(ProviderSources {
            provider: provider.id.clone(),
            name: provider.name.clone(),
            official,
            aggregator,
            community,
        });
    }
    Ok(settings)
}

fn community_feed(
    entry: Spanned<RawCommunityFeed>,
    providers: &[Arc<Provider>],
) -> Result<(String, CommunityFeed), (&'static str, String)> {
    let raw = entry.into_inner();
    if !providers.iter().any(|p| p.id == raw.provider) {
        let known: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
        return Err((
            "provider",
            format!(
                "unknown provider \"{}\"; known: {}",
                raw.provider,
                known.join(", ")
            ),
        ));
    }
    let keywords: Vec<String> = raw
        .keywords
        .iter()
        .map(|k| k.trim().to_lowercase())
        .collect();
    if keywords.is_empty() || keywords.iter().any(String::is_empty) {
        return Err((
            "keywords",
            "at least one non-empty phrase is needed, e.g. [\"kimi down\"]".into(),
        ));
    }
    let window = raw.window.map_or(DEFAULT_WINDOW, |w| w.0);
    let baseline = raw.baseline.map_or(DEFAULT_BASELINE, |b| b.0);
    if baseline < window {
        return Err((
            "baseline",
            "the baseline must be at least as long as the window".into(),
        ));
    }
    let name = raw
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| raw.url.0.host_str().unwrap_or("feed").to_owned());
    Ok((
        raw.provider,
        CommunityFeed {
            name,
            url: raw.url.0,
            keywords,
            window,
            baseline,
            min_reports: raw.min_reports.map_or(DEFAULT_MIN_REPORTS, |c| c.0),
        },
    ))
}

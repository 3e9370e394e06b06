//! What `serve`'s corroboration poller and `check` read from other people's servers
//! (`isdown::corroborate`): a Statuspage v2 `summary.json` or `incidents.json`, OpenRouter's
//! model endpoints, a community feed (RSS, Atom or JSON Feed) — parsed by the same function
//! that serves (`gather::parse`), then turned into the readings shown beside a verdict
//! (`gather::corroboration`: components narrowed, the aggregator's endpoint found, reports
//! counted) and, for incident lists, each incident's impact and relevance.
//!
//! Input: the first byte picks the document kind (modulo 4: summary, incidents, endpoints,
//! feed); the rest is the document's body as received. Checks: no panic; a reading that is
//! unavailable says why in a few words, never the body (its reason is bounded).
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use isdown::config::Config;
use isdown::corroborate::gather::{self, Docs, Kind};
use isdown::corroborate::{ProviderSources, Reading, Settings, statuspage};
use libfuzzer_sys::fuzz_target;

/// A reason longer than this would be quoting the document.
const MAX_REASON: usize = 600;
/// 2026-12-01T00:00:00Z, so that feed dates around now fall in and out of the window.
const NOW: i64 = 1_796_083_200_000;

/// Kimi with every kind of source: its catalog page (three components) and aggregator
/// endpoint, and one community feed.
static SOURCES: LazyLock<(Settings, ProviderSources)> = LazyLock::new(|| {
    let text = "[[corroboration.community]]\nprovider = \"kimi\"\n\
                url = \"http://127.0.0.1:7/feed\"\nkeywords = [\"kimi down\", \"moonshot\"]\n";
    let config = Config::from_toml(text, "fuzz.toml", &|_| None).expect("the fuzz config is valid");
    let settings = config.corroboration;
    let sources = settings
        .of("kimi")
        .expect("kimi has sources in the catalog")
        .clone();
    (settings, sources)
});

const KINDS: [Kind; 4] = [Kind::Summary, Kind::Incidents, Kind::Endpoints, Kind::Feed];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let (settings, sources) = &*SOURCES;
    let parsed = gather::parse(kind, body);
    if let Ok(gather::Doc::Incidents(incidents)) = &parsed {
        let official = sources
            .official
            .as_ref()
            .expect("kimi has an official page");
        for incident in incidents.iter() {
            let _ = statuspage::concerns(incident, official);
            let _ = statuspage::impact(incident);
            let _ = incident.is_over();
        }
    }
    let doc = parsed.map_err(|e| e.to_string());
    if let Err(reason) = &doc {
        assert!(
            reason.len() <= MAX_REASON,
            "parse error of {} bytes",
            reason.len()
        );
    }
    let docs: Docs = gather::urls(settings, sources, true)
        .into_iter()
        .filter(|(_, k)| *k == kind)
        .map(|(url, _)| (url, doc.clone()))
        .collect::<HashMap<_, _>>();
    let seen = gather::corroboration(settings, sources, &docs, NOW);
    let reasons = seen
        .official
        .iter()
        .filter_map(Reading::reason)
        .chain(seen.aggregator.iter().filter_map(Reading::reason))
        .chain(seen.community.iter().filter_map(|(_, r)| r.reason()));
    for reason in reasons {
        assert!(
            reason.len() <= MAX_REASON,
            "reason of {} bytes",
            reason.len()
        );
    }
});

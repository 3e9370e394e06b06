//! `serve`'s reader of every source: its own task on its own schedule.
//!
//! Each distinct URL is read every `interval` (a source that answered 429 is left alone for as
//! long as its `Retry-After` asks, up to an hour), with a conditional GET once it sent an ETag
//! or Last-Modified, under the per-read deadline; the latest document of each URL is cached,
//! and a feed's posts are remembered across reads (bounded) so its baseline grows past what
//! one read holds. After each round it records the official pages' incidents in the store,
//! links the outages they acknowledge (`lead`), and publishes a [`SourcesView`] when it changed.
//!
//! It never touches probing: no shared client, no lock the monitor takes, and a store error
//! costs one round's bookkeeping (logged), never the loop. Settings come in at start; a reload
//! starts it again.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Url;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::feed::FeedItem;
use super::fetch::{Deadline, FetchError, Fetched, Fetcher, Validators};
use super::gather::{self, Doc, Docs, Kind};
use super::lead;
use super::statuspage::{self, PageIncident};
use super::view::{ProviderView, SourcesView, UNSEEN_SHOWN};
use super::{OfficialSource, Settings};
use crate::store::{OfficialIncident, Store, StoreError};
use crate::time::{Clock, Millis};

/// Posts remembered per feed for its baseline; the oldest go first beyond it.
pub const MAX_REMEMBERED: usize = 5_000;

/// 5 min: how far ahead of isdown's clock a page's may run and its incidents still count now.
const PAGE_CLOCK_AHEAD: Millis = 5 * crate::time::MINUTE_MS;

/// What the poller works with besides its settings.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    /// How far back incidents count for lead statistics (incidents' retention).
    pub window: Millis,
    pub view: watch::Sender<Arc<SourcesView>>,
}

/// One URL and what is known of it.
struct Resource {
    url: Url,
    kind: Kind,
    next_due: Instant,
    validators: Validators,
    doc: Option<Result<Doc, String>>,
    /// Feeds: posts remembered by key, and when the feed was first read.
    posts: HashMap<String, FeedItem>,
    first_read: Option<Millis>,
    /// Read afresh (not 304, not failed) in the round just done.
    fresh: bool,
}

/// Polls until `stop` turns true.
pub async fn run(settings: Settings, deps: Deps, mut stop: watch::Receiver<bool>) {
    if !settings.enabled || settings.providers.is_empty() {
        deps.view
            .send_if_modified(|v| replace(v, SourcesView::default()));
        return;
    }
    let fetcher = match Fetcher::new() {
        Ok(fetcher) => fetcher,
        Err(e) => {
            tracing::error!(error = %e, "corroboration: cannot build the HTTP client; sources are not read");
            return;
        }
    };
    let mut resources: Vec<Resource> = Vec::new();
    for sources in &settings.providers {
        for (url, kind) in gather::urls(&settings, sources, true) {
            if !resources.iter().any(|r| r.url == url) {
                resources.push(Resource {
                    url,
                    kind,
                    next_due: Instant::now(),
                    validators: Validators::default(),
                    doc: None,
                    posts: HashMap::new(),
                    first_read: None,
                    fresh: false,
                });
            }
        }
    }
    loop {
        read_due(&fetcher, &settings, &deps, &mut resources).await;
        let docs: Docs = resources
            .iter()
            .filter_map(|r| r.doc.clone().map(|d| (r.url.clone(), d)))
            .collect();
        let view = bookkeeping(&settings, &deps, &resources, &docs).await;
        deps.view.send_if_modified(|v| replace(v, view));

        let next = resources
            .iter()
            .map(|r| r.next_due)
            .min()
            .unwrap_or_else(|| Instant::now() + settings.interval);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
    }
}

fn replace(current: &mut Arc<SourcesView>, new: SourcesView) -> bool {
    if **current == new {
        false
    } else {
        *current = Arc::new(new);
        true
    }
}

/// Reads every resource that is due, concurrently, and files what came back. The next read of
/// each is timed from the round's start, not from when its answer came, so sources read
/// together stay together (a page's summary and history describe the same moment).
async fn read_due(fetcher: &Fetcher, settings: &Settings, deps: &Deps, resources: &mut [Resource]) {
    let round = Instant::now();
    let mut tasks = JoinSet::new();
    for (index, r) in resources.iter_mut().enumerate() {
        r.fresh = false;
        if r.next_due > round {
            continue;
        }
        let (fetcher, url, validators) = (fetcher.clone(), r.url.clone(), r.validators.clone());
        let deadline = Deadline::after(settings.timeout);
        tasks.spawn(async move { (index, fetcher.get(&url, &validators, deadline).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, result)) = joined else {
            continue;
        };
        let r = &mut resources[index];
        let wait = result
            .as_ref()
            .err()
            .and_then(FetchError::retry_after)
            .map_or(settings.interval, |asked| asked.max(settings.interval));
        r.next_due = round + wait;
        file(r, result, deps.clock.now());
    }
}

/// Files one read's outcome into its resource.
fn file(r: &mut Resource, result: Result<Fetched, FetchError>, now: Millis) {
    match result {
        Ok(Fetched::NotModified) => {}
        Ok(Fetched::Body { bytes, validators }) => match gather::parse(r.kind, &bytes) {
            Ok(Doc::Feed { items, .. }) => {
                r.first_read.get_or_insert(now);
                remember(&mut r.posts, &items);
                let mut posts: Vec<FeedItem> = r.posts.values().cloned().collect();
                posts.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.key.cmp(&b.key)));
                r.doc = Some(Ok(Doc::Feed {
                    items: Arc::new(posts),
                    covered_from: r.first_read,
                }));
                r.validators = validators;
                r.fresh = true;
            }
            Ok(doc) => {
                r.doc = Some(Ok(doc));
                r.validators = validators;
                r.fresh = true;
            }
            Err(e) => {
                // The next read asks for the whole document again.
                r.validators = Validators::default();
                r.doc = Some(Err(e.to_string()));
            }
        },
        Err(e) => r.doc = Some(Err(e.to_string())),
    }
}

/// Adds a read's posts, keeping at most [`MAX_REMEMBERED`] (the newest).
fn remember(posts: &mut HashMap<String, FeedItem>, items: &[FeedItem]) {
    for item in items.iter().filter(|i| !i.key.is_empty()) {
        posts.insert(item.key.clone(), item.clone());
    }
    if posts.len() > MAX_REMEMBERED {
        let mut by_age: Vec<(Option<Millis>, String)> =
            posts.iter().map(|(k, i)| (i.at, k.clone())).collect();
        by_age.sort();
        for (_, key) in by_age.into_iter().take(posts.len() - MAX_REMEMBERED) {
            posts.remove(&key);
        }
    }
}

/// The incident as the store keeps it: acknowledged when the page posted it.
fn stored(incident: &PageIncident) -> OfficialIncident {
    OfficialIncident {
        source_id: incident.id.clone(),
        title: incident.name.clone(),
        url: incident.url.clone(),
        impact: incident.impact.clone(),
        started_at: incident.started_at,
        acknowledged_at: incident.created_at,
        resolved_at: incident.resolved_at,
    }
}

/// The page's incidents that concern the configured components, from the fresh documents of
/// this round (summary first, then the history, one entry per page id).
fn official_incidents(source: &OfficialSource, resources: &[Resource]) -> Vec<OfficialIncident> {
    let mut out: Vec<OfficialIncident> = Vec::new();
    let fresh = |url: &Url| {
        resources
            .iter()
            .find(|r| r.url == *url && r.fresh)
            .and_then(|r| r.doc.as_ref())
            .and_then(|d| d.as_ref().ok())
    };
    let mut listed: Vec<&PageIncident> = Vec::new();
    if let Some(Doc::Summary(summary)) = fresh(&source.summary_url()) {
        listed.extend(summary.incidents.iter());
    }
    if let Some(Doc::Incidents(incidents)) = fresh(&source.incidents_url()) {
        listed.extend(incidents.iter());
    }
    for incident in listed
        .into_iter()
        .filter(|i| statuspage::concerns(i, source))
    {
        if !out.iter().any(|o| o.source_id == incident.id) {
            out.push(stored(incident));
        }
    }
    out
}

/// Records the pages' incidents, links acknowledgements and builds the view. A store failure
/// is logged and leaves the lead figures out of this round's view.
async fn bookkeeping(
    settings: &Settings,
    deps: &Deps,
    resources: &[Resource],
    docs: &Docs,
) -> SourcesView {
    let now = deps.clock.now();
    let history = match record_and_link(settings, deps, resources, now).await {
        Ok(history) => Some(history),
        Err(e) => {
            tracing::warn!(error = %e, "corroboration: store update failed; trying again next round");
            None
        }
    };
    let providers = settings
        .providers
        .iter()
        .map(|sources| {
            let (ours, official) = history
                .as_ref()
                .map_or((&[][..], &[][..]), |(o, f)| (o.as_slice(), f.as_slice()));
            let unseen = lead::unseen(&sources.provider, official, ours, now);
            ProviderView {
                provider: sources.provider.clone(),
                name: sources.name.clone(),
                now: gather::corroboration(settings, sources, docs, now),
                has_official: sources.official.is_some(),
                page: sources
                    .official
                    .as_ref()
                    .map(|o| o.root.as_str().trim_end_matches('/').to_owned()),
                model: sources.aggregator.as_ref().map(|a| a.model.clone()),
                lead: lead::stats(&sources.provider, ours),
                unseen_total: unseen.len(),
                unseen: unseen.into_iter().take(UNSEEN_SHOWN).cloned().collect(),
            }
        })
        .collect();
    SourcesView { providers }
}

type History = (
    Vec<crate::store::Incident>,
    Vec<crate::store::StoredOfficialIncident>,
);

async fn record_and_link(
    settings: &Settings,
    deps: &Deps,
    resources: &[Resource],
    now: Millis,
) -> Result<History, StoreError> {
    for sources in &settings.providers {
        if let Some(source) = &sources.official {
            let incidents = official_incidents(source, resources);
            deps.store
                .record_official_incidents(&sources.provider, &incidents, now)
                .await?;
        }
    }
    let from = now.saturating_sub(deps.window);
    let (mut ours, official) = tokio::try_join!(
        deps.store.incidents_between(from, now),
        // A page whose clock runs ahead of ours dates its incidents a little in the future.
        deps.store
            .official_incidents_between(from, now.saturating_add(PAGE_CLOCK_AHEAD)),
    )?;
    let links = lead::acknowledgements(&ours, &official, now);
    if !links.is_empty() {
        deps.store.acknowledge_incidents(&links).await?;
        lead::apply(&mut ours, &links, &official);
        for (incident, official) in &links {
            tracing::info!(
                incident,
                official,
                "incident acknowledged by the official page"
            );
        }
    }
    Ok((ours, official))
}

//! The public views that are rendered on change and served from memory: the overview (`/`),
//! the first page of the incident history, the Atom feed, `/api/v1/status`, the Statuspage JSON
//! (`/api/v2/*`) and every badge.
//!
//! A [`Views`] is one consistent version of all of them, drawn by the pure functions of `page`,
//! `feed`, `api`, `statuspage` and `badge` from one [`Inputs`]. Badges are the exception to
//! "drawn once per render": a render keeps what each monitor's badges say (`badge/table.rs`) and
//! a badge is drawn when it is requested, since two SVGs per monitor per render cost more memory
//! than the rest of the monitor (BENCHMARKS.md "Memory per monitor"). Building it does no I/O (the
//! renderer gathers the inputs, `renderer.rs`), and every view's bytes go through
//! [`Rendered::publish`]. Handlers only follow a pointer to the current version
//! ([`PublicViews`]): a request never touches the database. Which views exist is the table
//! [`VIEWS`]; which badges, the table `badge::table::BADGES`.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::AppState;
use super::badge::{self, table::BADGES, table::BadgeTable};
use super::freshness::Freshness;
use super::page::{self, HISTORY, MonitorHistory, OverviewInput};
use super::rendered::{self, Kind, Rendered};
use super::site::SiteInfo;
use super::summary::{self, OVERVIEW_ROWS_MAX};
use super::{api, feed, statuspage};
use crate::corroborate::view::SourcesView;
use crate::monitor::health::HealthSnapshot;
use crate::store::Incident;
use crate::time::Millis;

/// What every cached view is drawn from.
pub struct Inputs {
    pub site: Arc<SiteInfo>,
    pub health: HealthSnapshot,
    pub now: Millis,
    pub freshness: Freshness,
    /// One per `health.monitors` entry, same order.
    pub histories: Vec<Arc<MonitorHistory>>,
    /// Incidents open at some time in the uptime bars' days, newest first (every open one).
    pub window: Vec<Incident>,
    /// The newest incidents, at most [`LATEST`], newest first.
    pub latest: Vec<Incident>,
    /// What the sources beside the probes say (the corroboration poller's latest view).
    pub others: Arc<SourcesView>,
}

/// Newest incidents kept: a page of history plus one, which tells whether an "Older" link is
/// needed (the feed and the Statuspage list show 50 of them).
pub const LATEST: u32 = page::HISTORY_PER_PAGE + 1;

impl Inputs {
    /// The open incidents, newest first.
    fn open(&self) -> Vec<Incident> {
        self.window
            .iter()
            .filter(|i| i.ended_at.is_none())
            .cloned()
            .collect()
    }

    /// When the data last changed, or now before any data (Statuspage needs a time).
    fn updated_at(&self) -> Millis {
        self.freshness.updated_at.unwrap_or(self.now)
    }
}

type Draw = fn(&Inputs) -> Result<String, askama::Error>;

/// One cached view: its path, what it is, and how it is drawn.
pub struct View {
    pub path: &'static str,
    pub kind: Kind,
    draw: Draw,
    /// Served by the generic handler here; `false` where another module routes the path
    /// because its other variants read the store (`/incidents?page=2`).
    routed_here: bool,
}

/// Every view rendered on change.
pub const VIEWS: [View; 9] = [
    View {
        path: "/",
        kind: rendered::HTML,
        draw: draw_overview,
        routed_here: true,
    },
    View {
        path: HISTORY,
        kind: rendered::HTML,
        draw: draw_history,
        routed_here: false,
    },
    View {
        path: "/feed.atom",
        kind: rendered::ATOM,
        draw: draw_feed,
        routed_here: true,
    },
    View {
        path: "/api/v1/status",
        kind: rendered::JSON,
        draw: draw_status_v1,
        routed_here: true,
    },
    View {
        path: "/api/v2/status.json",
        kind: rendered::JSON,
        draw: draw_sp_status,
        routed_here: true,
    },
    View {
        path: "/api/v2/summary.json",
        kind: rendered::JSON,
        draw: draw_sp_summary,
        routed_here: true,
    },
    View {
        path: "/api/v2/components.json",
        kind: rendered::JSON,
        draw: draw_sp_components,
        routed_here: true,
    },
    View {
        path: "/api/v2/incidents.json",
        kind: rendered::JSON,
        draw: draw_sp_incidents,
        routed_here: true,
    },
    View {
        path: "/api/v2/incidents/unresolved.json",
        kind: rendered::JSON,
        draw: draw_sp_unresolved,
        routed_here: true,
    },
];

/// The full overview, or above [`OVERVIEW_ROWS_MAX`] monitors its summary (`summary.rs`).
fn draw_overview(i: &Inputs) -> Result<String, askama::Error> {
    let input = OverviewInput {
        site: &i.site,
        health: &i.health,
        now: i.now,
        freshness: i.freshness,
        histories: &i.histories,
        incidents: &i.window,
        others: &i.others,
    };
    if i.health.monitors.len() > OVERVIEW_ROWS_MAX {
        summary::summary_page(&input).render()
    } else {
        page::overview_page(&input).render()
    }
}

fn draw_history(i: &Inputs) -> Result<String, askama::Error> {
    page::incidents_page(&i.site, &i.latest, 1, i.now, i.freshness).render()
}

fn draw_feed(i: &Inputs) -> Result<String, askama::Error> {
    let shown = i.latest.len().min(feed::FEED_ENTRIES as usize);
    feed::feed_of(&i.site, &i.latest[..shown], i.now).render()
}

fn draw_status_v1(i: &Inputs) -> Result<String, askama::Error> {
    json_text(&api::status_json(&i.health, &i.histories, i.freshness))
}

/// A view serialized straight to text, without a JSON tree in between.
fn json_text(view: &impl serde::Serialize) -> Result<String, askama::Error> {
    serde_json::to_string(view).map_err(askama::Error::custom)
}

fn draw_sp_status(i: &Inputs) -> Result<String, askama::Error> {
    Ok(statuspage::status_json(&i.site, &i.health, i.updated_at()).to_string())
}

fn draw_sp_summary(i: &Inputs) -> Result<String, askama::Error> {
    json_text(&statuspage::summary_json(
        &i.site,
        &i.health,
        &i.open(),
        i.updated_at(),
    ))
}

fn draw_sp_components(i: &Inputs) -> Result<String, askama::Error> {
    json_text(&statuspage::components_json(
        &i.site,
        &i.health,
        i.updated_at(),
    ))
}

fn draw_sp_incidents(i: &Inputs) -> Result<String, askama::Error> {
    let shown = i.latest.len().min(statuspage::INCIDENTS_LISTED as usize);
    Ok(
        statuspage::incidents_json(&i.site, &i.health, &i.latest[..shown], i.updated_at())
            .to_string(),
    )
}

fn draw_sp_unresolved(i: &Inputs) -> Result<String, askama::Error> {
    let mut open = i.open();
    open.truncate(statuspage::INCIDENTS_LISTED as usize);
    Ok(statuspage::incidents_json(&i.site, &i.health, &open, i.updated_at()).to_string())
}

/// One consistent version of every cached view.
pub struct Views {
    /// In [`VIEWS`] order; `None` where drawing failed and no earlier version exists.
    pages: Vec<Option<Arc<Rendered>>>,
    /// What every monitor's badges say; each is drawn when it is requested.
    badges: BadgeTable,
    missing_badge: Arc<Rendered>,
    pub freshness: Freshness,
    /// The time the inputs were taken.
    pub rendered_at: Millis,
}

impl Views {
    /// Draws every view from `inputs`. Views whose bytes did not change keep their version from
    /// `previous` (same ETag, not compressed again).
    pub fn build(inputs: &Inputs, previous: Option<&Views>) -> Views {
        let at = inputs.now;
        let pages = VIEWS
            .iter()
            .enumerate()
            .map(|(n, view)| {
                let before = previous.and_then(|p| p.pages[n].as_ref());
                match (view.draw)(inputs) {
                    Ok(body) => Some(Rendered::publish(before, view.kind, body, at)),
                    Err(e) => {
                        // A template that fails to render is a bug; keep serving the last good
                        // version rather than nothing.
                        tracing::error!(path = view.path, error = %e, "view failed to render");
                        before.cloned()
                    }
                }
            })
            .collect();
        let badges = BadgeTable::build(
            inputs.site.clone(),
            inputs.freshness.stale,
            &inputs.health.monitors,
            &inputs.histories,
            at,
            previous.map(|p| &p.badges),
        );
        let missing_badge = Rendered::publish(
            previous.map(|p| &p.missing_badge),
            rendered::SVG,
            badge::missing_badge(),
            at,
        );
        Views {
            pages,
            badges,
            missing_badge,
            freshness: inputs.freshness,
            rendered_at: at,
        }
    }

    /// The view at `path` (one of [`VIEWS`]).
    pub fn get(&self, path: &str) -> Option<&Arc<Rendered>> {
        let n = VIEWS.iter().position(|v| v.path == path)?;
        self.pages[n].as_ref()
    }

    /// Badge `which` (index into [`BADGES`]) of a monitor id or provider id, drawn now.
    pub fn badge(&self, key: &str, which: usize) -> Option<Arc<Rendered>> {
        self.badges.draw(key, which)
    }
}

// === the handle handlers use ===

/// 10 s: the first render after start-up reads every monitor's history once; a request that
/// arrives before it waits rather than seeing an empty page.
const FIRST_RENDER_WAIT: Duration = Duration::from_secs(10);
/// Handlers that still read the store (one monitor's page and JSON, older incident pages, the
/// incident API) run two at a time: a flood of them queues here instead of taking the database
/// and the CPU from the monitor and the renderer.
const STORE_READERS: usize = 2;
/// A request that waited this long for a turn gets a 503 instead of waiting longer.
const STORE_READ_WAIT: Duration = Duration::from_secs(5);

/// What the public handlers serve from: the current [`Views`] (set by the renderer) and the gate
/// of the handlers that read the store.
#[derive(Clone)]
pub struct PublicViews {
    current: watch::Receiver<Option<Arc<Views>>>,
    store_reads: Arc<Semaphore>,
}

impl PublicViews {
    pub(super) fn new(current: watch::Receiver<Option<Arc<Views>>>) -> PublicViews {
        PublicViews {
            current,
            store_reads: Arc::new(Semaphore::new(STORE_READERS)),
        }
    }

    /// The current version; before the first render, waits for it (a bounded time).
    pub async fn current(&self) -> Option<Arc<Views>> {
        if let Some(views) = self.current.borrow().clone() {
            return Some(views);
        }
        let mut rx = self.current.clone();
        let first = tokio::time::timeout(FIRST_RENDER_WAIT, rx.wait_for(Option::is_some)).await;
        match first {
            Ok(Ok(views)) => views.clone(),
            _ => None,
        }
    }

    /// Follows the renderer: each new version as it is published (tests, and anything that
    /// wants to react to a render).
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Views>>> {
        self.current.clone()
    }

    /// The response for the cached view at `path`.
    pub async fn respond(&self, path: &str, request: &HeaderMap) -> Response {
        match self.current().await {
            Some(views) => match views.get(path) {
                Some(view) => view.respond(request),
                None => failed(),
            },
            None => starting(),
        }
    }

    /// A turn to read the store, or the 503 to send when none came in time.
    pub async fn store_read(&self) -> Result<OwnedSemaphorePermit, Response> {
        let permit =
            tokio::time::timeout(STORE_READ_WAIT, self.store_reads.clone().acquire_owned()).await;
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "busy: too many requests are reading history; try again in a few seconds",
            )
                .into_response()),
        }
    }
}

fn starting() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "isdown is starting; the status page will be ready in a moment",
    )
        .into_response()
}

fn failed() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "this view could not be rendered",
    )
        .into_response()
}

pub fn routes() -> axum::Router<AppState> {
    let mut router = axum::Router::new();
    for view in VIEWS.iter().filter(|v| v.routed_here) {
        let path = view.path;
        router = router.route(
            path,
            get(
                move |State(app): State<AppState>, headers: HeaderMap| async move {
                    app.views.respond(path, &headers).await
                },
            ),
        );
    }
    for (which, (path, _)) in BADGES.iter().enumerate() {
        router =
            router.route(
                path,
                get(
                    move |State(app): State<AppState>,
                          Path(key): Path<String>,
                          headers: HeaderMap| async move {
                        let Some(views) = app.views.current().await else {
                            return starting();
                        };
                        match views.badge(&key, which) {
                            Some(badge) => badge.respond(&headers),
                            None => {
                                // A 404 is never "not modified": only the encoding is negotiated.
                                let mut plain = HeaderMap::new();
                                if let Some(accept) = headers.get(header::ACCEPT_ENCODING) {
                                    plain.insert(header::ACCEPT_ENCODING, accept.clone());
                                }
                                let mut response = views.missing_badge.respond(&plain);
                                *response.status_mut() = StatusCode::NOT_FOUND;
                                response
                            }
                        }
                    },
                ),
            );
    }
    router
}

//! The HTTP side of `isdown serve`: JSON API, `/metrics`, `/healthz`, the status page and the
//! tools' views of it (badges, Atom feed, Statuspage-compatible JSON), on one listener that the
//! gateway shares, with its connection handling (`connections`).
//!
//! Handlers only read: the health view (a copy under a short lock), the store, the metrics
//! registry. The one write is the authenticated admin reload, which is handed to the serve loop
//! over a channel. Like every server here, [`run`] takes a bound listener and a shutdown future.
//!
//! The public views that everyone opens at once — the overview, `/api/v1/status`, `/api/v2/*`,
//! the feed — are not rendered per request: the renderer (`renderer.rs`, started by
//! [`renderer::start`]) draws them when what they show changes, at most about once a second,
//! and handlers serve the bytes, already compressed, from memory (`views.rs`, `rendered.rs`).
//! Badges are drawn per request from what each render keeps about every monitor
//! (`badge/table.rs`): a badge takes microseconds to draw, and two per monitor kept drawn cost
//! more memory than the rest of the monitor.

mod api;
mod badge;
mod chart;
pub mod connections;
mod feed;
pub mod freshness;
mod page;
pub mod rendered;
pub mod renderer;
pub mod site;
mod statuspage;
mod summary;
#[cfg(test)]
mod tests;
mod text;
pub mod views;

use crate::peers::Peers;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::alert::outbox::AlertHealth;
use crate::metrics::Metrics;
use crate::monitor::health::Health;
use crate::store::Store;
use crate::time::Clock;
pub use connections::Limits;
use site::Site;
use views::PublicViews;

/// A reload request from the admin endpoint; the serve loop answers with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub health: Health,
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    pub clock: Clock,
    /// Bearer token of the admin endpoints; `None` disables them.
    pub admin_token: Option<Arc<SecretString>>,
    pub reload: mpsc::Sender<ReloadRequest>,
    /// Alert channels' delivery status.
    pub alerts: AlertHealth,
    /// Display names and `[web]` settings for the public pages (swapped on reload).
    pub site: Site,
    /// The views rendered on change ([`renderer::start`]).
    pub views: PublicViews,
    /// This instance and its peers on a shared database (`/api/v1/peers`).
    pub peers: Peers,
}

pub fn router(state: AppState) -> Router {
    api::routes()
        .merge(page::routes())
        .merge(views::routes())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, with the default connection limits.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve(listener, router, Limits::default(), shutdown).await
}

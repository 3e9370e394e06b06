//! `isdown serve` as a library: the monitor, the alert dispatcher and its delivery workers, the
//! corroboration poller (official pages, the aggregator, community feeds), the status page, the
//! JSON API, `/metrics`, the gateway and the durable queue (the Files and Batch API and its
//! dispatcher), on one bound listener, until a shutdown future resolves.
//!
//! The shape is mini-redis's `server::run(listener, shutdown)`: the caller binds the listener
//! (tests bind `127.0.0.1:0`), passes a shutdown future and a channel of reload requests, and
//! learns what happens from [`Server::subscribe`] (incidents) and [`Server::subscribe_alerts`]
//! (delivered alerts) — never from log text. Signals belong to the caller (`cli/serve.rs` maps
//! SIGINT/SIGTERM to shutdown and SIGHUP to a reload request).
//!
//! A reload re-reads the config from where it came from ([`Config::source`]): the monitor
//! restarts with the new monitors and continues every machine and incident from the store, the
//! alert channels and the pages take the new settings, and a config that does not load is
//! reported to the requester and ignored (the running one stays). The gateway swaps its table
//! (routes, targets, fixes, timeouts, client keys) for new requests while requests in flight
//! finish on the old one; a config the gateway refuses is refused whole. The store and the
//! listener are kept.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::alert::dispatch::{self, AlertContext};
use crate::alert::outbox::{AlertHealth, AlertMetrics, Delivered};
use crate::config::{Config, ConfigError};
use crate::corroborate;
use crate::gateway::error::StartError;
use crate::gateway::{Gateway, GatewayDeps};
use crate::metrics::Metrics;
use crate::monitor::health::PassiveReporter;
use crate::monitor::service::{MonitorEvent, MonitorService, initial_health};
use crate::peers::{PeerSettings, Peers};
use crate::probe::{ProbeError, Prober};
use crate::queue::{Queue, QueueError, RunDeps};
use crate::store::{Store, StoreError};
use crate::time::Clock;
use crate::web::connections::{Limits, open_file_limit, serve as serve_connections};
use crate::web::site::{Site, SiteInfo};
use crate::web::{self, AppState};

pub use crate::web::ReloadRequest;

/// 5 s: a monitor that could not start (the database did not answer its first reads) gets a
/// moment before it tries again.
const STORE_RESTART: Duration = Duration::from_secs(5);

/// Incident events buffered per subscriber; a slower subscriber sees `Lagged`, never blocks the
/// monitor.
const EVENT_BUFFER: usize = 1_024;
/// Live verdicts from the gateway buffered for the monitor; beyond it reports are dropped (the
/// gateway never waits on the monitor).
const PASSIVE_BUFFER: usize = 4_096;

/// Why the server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gateway refused its settings (e.g. `open_on_localhost` on a public address).
    #[error(transparent)]
    Gateway(#[from] StartError),
    #[error("cannot build the HTTP client for probes: {0}")]
    Prober(#[from] ProbeError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot read the listener's address: {0}")]
    Address(std::io::Error),
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
}

impl ServerError {
    /// True when the user can fix it in the config (exit code 2 at the CLI).
    pub fn is_config(&self) -> bool {
        matches!(self, ServerError::Gateway(_))
    }
}

/// A server ready to run: store open, listener bound, routes built.
pub struct Server {
    config: Config,
    listener: TcpListener,
    addr: SocketAddr,
    store: Arc<dyn Store>,
    events: broadcast::Sender<MonitorEvent>,
    delivered: broadcast::Sender<Delivered>,
}

impl Server {
    /// Opens the store the config selects (`[store]`, `ISDOWN_DATABASE_URL`), by default the
    /// SQLite file under `config.serve.data` (created on first use).
    pub async fn new(config: Config, listener: TcpListener) -> Result<Server, ServerError> {
        let url = config.store.url_in(&config.serve.data);
        let store = crate::store::open(&url, &config.store.pool).await?;
        Server::with_store(config, listener, store)
    }

    /// As [`Server::new`], on a store the caller opened.
    pub fn with_store(
        config: Config,
        listener: TcpListener,
        store: Arc<dyn Store>,
    ) -> Result<Server, ServerError> {
        let addr = listener.local_addr().map_err(ServerError::Address)?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (delivered, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Server {
            config,
            listener,
            addr,
            store,
            events,
            delivered,
        })
    }

    /// The address the listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Incidents opened and closed, after the store has them.
    pub fn subscribe(&self) -> broadcast::Receiver<MonitorEvent> {
        self.events.subscribe()
    }

    /// Alerts as their channel accepted them.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Delivered> {
        self.delivered.subscribe()
    }

    /// Serves until `shutdown` resolves; answers each request on `reload` with its outcome.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send,
        mut reload: mpsc::Receiver<ReloadRequest>,
    ) -> Result<(), ServerError> {
        let Server {
            mut config,
            listener,
            addr,
            store,
            events,
            delivered,
        } = self;
        let prober = Arc::new(Prober::new()?);
        let metrics = Metrics::new();
        let clock = Clock::system();
        // Alone on a SQLite file it holds everything; on a shared PostgreSQL it takes its share
        // of the monitors, and maybe the alerts, by lease (`peers`).
        let (stop_peers, peers_stopped) = watch::channel(false);
        let peer_settings = PeerSettings {
            quorum: config.serve.region_quorum,
            ..PeerSettings::new(
                &config.serve.region,
                config.serve.instance.clone(),
                config.serve.lease,
            )
        };
        let (peers, lease_round) = Peers::start(&peer_settings, store.clone(), peers_stopped);
        peers.register(&metrics);
        tracing::info!(
            instance = %peers.me().instance,
            region = %peers.me().region,
            shared = lease_round.is_some(),
            "instance"
        );
        let health = initial_health(&config.monitors);
        // Before the first probe too: the API's `regions` name this instance's region.
        let region = peers.me().region.clone();
        health.update(|view| view.region = region);
        let (admin_reload, mut admin_requests) = mpsc::channel::<ReloadRequest>(4);
        let (reporter, mut passive) = PassiveReporter::channel(PASSIVE_BUFFER);
        let alert_health = AlertHealth::default();
        let alert_context = AlertContext {
            store: store.clone(),
            health: health.clone(),
            clock,
            alert_health: alert_health.clone(),
            metrics: AlertMetrics::register(&metrics),
            delivered: delivered.clone(),
            held: peers.held(),
        };
        // The public views (status page, feed, badges, status JSON) are rendered on change by
        // their own task and served from memory.
        let site = Site::new(SiteInfo::of(
            &config.web,
            &config.providers,
            &config.corroboration,
        ));
        // What the sources beside the probes say, published by the corroboration poller (one
        // per config, restarted on reload) and read by the renderer from memory.
        let (others, others_view) =
            watch::channel(Arc::new(corroborate::view::SourcesView::default()));
        let views = web::renderer::start(web::renderer::Sources {
            health: health.clone(),
            store: store.clone(),
            site: site.clone(),
            clock,
            others: others_view,
        });
        let app = AppState {
            health: health.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            clock,
            admin_token: config.serve.admin_token.clone().map(Arc::new),
            reload: admin_reload,
            alerts: alert_health,
            site: site.clone(),
            views,
            peers: peers.clone(),
        };
        let gateway = Gateway::new(
            &config.gateway,
            GatewayDeps {
                health: health.clone(),
                reporter,
                metrics: metrics.clone(),
            },
            addr,
        )?;
        // The queue runs its lines through the gateway's router in process, and stops before
        // the listener so that lines in flight are answered or sent back to pending.
        let queue =
            Queue::open(store.clone(), gateway.clone(), config.queue.clone(), clock).await?;
        let router = web::router(app)
            .merge(gateway.router())
            .merge(queue.router());
        let (stop_queue, queue_stopped) = watch::channel(false);
        let dispatcher = queue.dispatcher(RunDeps {
            metrics: metrics.clone(),
            health: health.clone(),
            events: events.subscribe(),
            held: peers.held(),
        });
        let queue_task = tokio::spawn(dispatcher.run(wait_true(queue_stopped)));
        let (stop_web, web_stopped) = watch::channel(false);
        let limits = match config.serve.max_connections {
            Some(max) => Limits {
                max_connections: max,
                ..Limits::default()
            },
            None => Limits::for_descriptors(open_file_limit()),
        };
        tracing::info!(max_connections = limits.max_connections, "listener limits");
        let web = tokio::spawn(serve_connections(
            listener,
            router,
            limits,
            wait_true(web_stopped),
        ));

        tokio::pin!(shutdown);
        loop {
            health.reset(initial_health(&config.monitors));
            site.set(SiteInfo::of(
                &config.web,
                &config.providers,
                &config.corroboration,
            ));
            let (stop, stopped) = watch::channel(false);
            let mut alerts = JoinSet::new();
            dispatch::start(
                &mut alerts,
                &alert_context,
                &config.alerts,
                &config.alerting,
                &config.monitors,
                config.web.public_url.clone(),
                events.subscribe(),
                stopped.clone(),
            );
            let service = MonitorService {
                specs: Arc::new(config.monitors.clone()),
                settings: config.monitor,
                retention: config.retention,
                store: store.clone(),
                runner: prober.clone(),
                health: health.clone(),
                metrics: metrics.clone(),
                clock,
                events: events.clone(),
                peers: peers.clone(),
            };
            let monitored: Vec<&str> = config
                .monitors
                .iter()
                .map(|m| m.provider.id.as_str())
                .collect();
            let poller = tokio::spawn(corroborate::poller::run(
                config.corroboration.only(&monitored),
                corroborate::poller::Deps {
                    store: store.clone(),
                    clock,
                    window: config.retention.day,
                    view: others.clone(),
                },
                stopped.clone(),
            ));
            let running = service.run(&mut passive, stopped);
            tokio::pin!(running);
            // Set once `running` has completed: a finished future must not be awaited again.
            let mut finished = false;
            let next = loop {
                tokio::select! {
                    result = &mut running, if !finished => {
                        finished = true;
                        match result {
                            Ok(()) => break Next::Quit,
                            // The monitor could not start: the database did not answer its
                            // first reads (once running, it probes on through a database
                            // outage; see `monitor::journal`). It tries again after a pause;
                            // the web side and the alert outbox keep running meanwhile.
                            Err(e) => {
                                tracing::error!(
                                    error = %e,
                                    "monitor could not start on a database error; retrying in {} s",
                                    STORE_RESTART.as_secs()
                                );
                                tokio::select! {
                                    _ = tokio::time::sleep(STORE_RESTART) => {}
                                    _ = &mut shutdown => break Next::Quit,
                                }
                                break Next::Restart(Box::new(config.clone()));
                            }
                        }
                    }
                    _ = &mut shutdown => break Next::Quit,
                    Some(reply) = reload.recv() => if let Some(new) = reload_config(&config, &gateway, reply) {
                        break Next::Restart(new);
                    },
                    Some(reply) = admin_requests.recv() => if let Some(new) = reload_config(&config, &gateway, reply) {
                        break Next::Restart(new);
                    },
                }
            };
            let _ = stop.send(true);
            if !finished && let Err(e) = running.await {
                tracing::error!(error = %e, "monitor could not start on a database error");
            }
            while alerts.join_next().await.is_some() {}
            // It ends on the stop signal; a panic inside it is logged, never the server's end.
            if let Err(e) = poller.await {
                tracing::error!(error = %e, "the corroboration poller panicked");
            }
            match next {
                Next::Quit => break,
                Next::Restart(new) => {
                    tracing::info!(monitors = new.monitors.len(), "config reloaded");
                    config = *new;
                }
            }
        }
        // Leases are given up at once, so peers take over without waiting for them to expire.
        let _ = stop_peers.send(true);
        if let Some(round) = lease_round
            && let Err(join) = round.await
        {
            tracing::error!(error = %join, "the lease round stopped abnormally");
        }
        let _ = stop_queue.send(true);
        if let Err(join) = queue_task.await {
            tracing::error!(error = %join, "the queue's dispatcher stopped abnormally");
        }
        let _ = stop_web.send(true);
        match web.await {
            Ok(result) => result.map_err(ServerError::Http),
            // The web task only ends by returning; a panic inside it is a bug worth surfacing.
            Err(join) => Err(ServerError::Http(std::io::Error::other(join))),
        }
    }
}

/// Binds nothing and hides nothing: [`Server::new`] then [`Server::run`].
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    reload: mpsc::Receiver<ReloadRequest>,
) -> Result<(), ServerError> {
    Server::new(config, listener)
        .await?
        .run(shutdown, reload)
        .await
}

enum Next {
    Quit,
    Restart(Box<Config>),
}

/// Re-reads the config the running one came from and hands it to the gateway; answers the
/// requester either way.
fn reload_config(running: &Config, gateway: &Gateway, reply: ReloadRequest) -> Option<Box<Config>> {
    let loaded = load_again(running)
        .map_err(|e| e.to_string())
        .and_then(|new| {
            gateway.reload(&new.gateway).map_err(|e| e.to_string())?;
            Ok(new)
        });
    match loaded {
        Ok(new) => {
            let _ = reply.send(Ok(()));
            Some(Box::new(new))
        }
        Err(e) => {
            tracing::error!("reload failed, keeping the running config: {e}");
            let _ = reply.send(Err(e));
            None
        }
    }
}

/// The same file (or the catalog alone), read again; the listen address, the data directory
/// and the store (`[store]`) in effect are kept, since none can change while serving.
fn load_again(running: &Config) -> Result<Config, ConfigError> {
    let mut new = Config::load(running.source.as_deref())?;
    new.serve.listen = running.serve.listen;
    new.serve.data = running.serve.data.clone();
    new.store = running.store.clone();
    Ok(new)
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

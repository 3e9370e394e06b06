//! `isdown serve`: the monitor, the JSON API and `/metrics` on one listener, until a signal.
//!
//! SIGINT/SIGTERM stop it gracefully (results flushed, machine states saved). SIGHUP or the
//! authenticated `POST /api/v1/admin/reload` re-read the config: the monitor restarts with the
//! new monitors and continues every machine and incident from the store, and a config that does
//! not load is reported and ignored (the running one stays).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::CliError;
use crate::alert::dispatch::{self, AlertContext};
use crate::alert::outbox::{AlertHealth, AlertMetrics};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::monitor::clock::Clock;
use crate::monitor::health::PassiveReporter;
use crate::monitor::service::{MonitorService, initial_health};
use crate::probe::Prober;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::web::site::{Site, SiteInfo};
use crate::web::{self, AppState, ReloadRequest};

/// 5 s: a database error that stopped the monitor (a full disk, another process holding the
/// lock) gets a moment to clear before the monitor starts again.
const STORE_RESTART: std::time::Duration = std::time::Duration::from_secs(5);

/// The SQLite file inside the data directory.
pub const DB_FILE: &str = "isdown.db";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (default: ./isdown.toml when present).
    #[arg(long, env = "ISDOWN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Data directory (default ./isdown-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

enum Next {
    Quit,
    Restart(Box<Config>),
}

pub async fn run(args: ServeArgs) -> Result<u8, CliError> {
    let mut config = Config::load(args.config.as_deref())?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| config.serve.data.clone());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data.join(DB_FILE)).await?);
    let listen = args.listen.unwrap_or(config.serve.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| CliError::Io {
            context: format!("cannot listen on {listen}"),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| CliError::Io {
        context: "cannot read the bound address".into(),
        source,
    })?;
    let prober = Arc::new(Prober::new().map_err(crate::check::CheckError::from)?);
    let metrics = Metrics::new();
    let clock = Clock::system();
    let health = initial_health(&config.monitors);
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let (reporter, mut passive) = PassiveReporter::channel(4_096);
    // The alert dispatcher (and live pages) subscribe here.
    let (events, _) = tokio::sync::broadcast::channel(1_024);
    let alert_health = AlertHealth::default();
    let alert_context = AlertContext {
        store: store.clone(),
        health: health.clone(),
        clock,
        alert_health: alert_health.clone(),
        metrics: AlertMetrics::register(&metrics),
    };
    let (stop_web, web_stopped) = watch::channel(false);
    // Status page (issue 21): the public views are rendered on change by their own task.
    let site = Site::new(SiteInfo::from_config(&config));
    let views = web::renderer::start(web::renderer::Sources {
        health: health.clone(),
        store: store.clone(),
        site: site.clone(),
        clock,
    });
    let app = AppState {
        health: health.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        clock,
        admin_token: config.serve.admin_token.clone().map(Arc::new),
        reload: reload_tx,
        alerts: alert_health,
        site: site.clone(),
        views,
    };
    // The gateway reads the config once at start; a reload re-reads monitors, not routes.
    let gateway = crate::gateway::Gateway::new(
        &config,
        crate::gateway::GatewayDeps {
            health: health.clone(),
            reporter,
            metrics: metrics.clone(),
        },
        addr,
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let router = web::router(app).merge(gateway.router());
    let web = tokio::spawn(web::run(listener, router, wait_true(web_stopped)));
    // Scripts and tests read this line to learn the address.
    println!(
        "isdown serving on http://{addr} ({} monitors, data in {})",
        config.monitors.len(),
        data.display()
    );

    let mut signals = Signals::new()?;
    loop {
        health.reset(initial_health(&config.monitors));
        site.set(SiteInfo::from_config(&config));
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
        };
        let running = service.run(&mut passive, stopped);
        tokio::pin!(running);
        // Set once `running` has completed: a finished future must not be awaited again.
        let mut finished = false;
        let next = loop {
            tokio::select! {
                result = &mut running, if !finished => match result {
                    Ok(()) => {
                        finished = true;
                        break Next::Quit;
                    }
                    // The database refused a write (disk full, locked by another process). The
                    // monitor restarts from what is stored, after a pause; the web side and the
                    // alert outbox keep running, so nothing already recorded is lost.
                    Err(e) => {
                        finished = true;
                        tracing::error!(
                            error = %e,
                            "monitor stopped on a database error; restarting in {} s",
                            STORE_RESTART.as_secs()
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(STORE_RESTART) => {}
                            _ = signals.next() => break Next::Quit,
                        }
                        break Next::Restart(Box::new(config.clone()));
                    }
                },
                signal = signals.next() => match signal {
                    Signal::Terminate => break Next::Quit,
                    Signal::Hangup => match reload(&args) {
                        Ok(new) => break Next::Restart(Box::new(new)),
                        Err(e) => tracing::error!("reload failed, keeping the running config: {e}"),
                    },
                },
                Some(reply) = reload_rx.recv() => match reload(&args) {
                    Ok(new) => {
                        let _ = reply.send(Ok(()));
                        break Next::Restart(Box::new(new));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                },
            }
        };
        let _ = stop.send(true);
        if !finished && let Err(e) = running.await {
            tracing::error!(error = %e, "monitor stopped on a database error");
        }
        while alerts.join_next().await.is_some() {}
        match next {
            Next::Quit => break,
            Next::Restart(new) => {
                tracing::info!(monitors = new.monitors.len(), "config reloaded");
                config = *new;
            }
        }
    }
    let _ = stop_web.send(true);
    web.await
        .expect("the web task does not panic")
        .map_err(|source| CliError::Io {
            context: "the HTTP server failed".into(),
            source,
        })?;
    Ok(0)
}

fn reload(args: &ServeArgs) -> Result<Config, CliError> {
    Ok(Config::load(args.config.as_deref())?)
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// SIGINT/SIGTERM and SIGHUP.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |source| CliError::Io {
            context: "cannot install signal handlers".into(),
            source,
        };
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(io)?,
            hup: signal(SignalKind::hangup()).map_err(io)?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Terminate,
            _ = tokio::signal::ctrl_c() => Signal::Terminate,
            _ = self.hup.recv() => Signal::Hangup,
        }
    }
}

enum Signal {
    Terminate,
    Hangup,
}

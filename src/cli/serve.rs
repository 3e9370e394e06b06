//! `isdown serve`: resolves the command line into a config, binds the listener, and runs the
//! library server ([`crate::server`]) until a signal: SIGINT/SIGTERM stop it gracefully, SIGHUP
//! asks it to reload the config.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use super::CliError;
use crate::config::Config;
use crate::server::{ReloadRequest, Server};

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

pub async fn run(args: ServeArgs) -> Result<u8, CliError> {
    // Before anything opens a socket: the listener's connection cap is fitted to this limit, and
    // the default soft limit (often 1,024) is what a connection flood would exhaust.
    let open_files = crate::web::connections::raise_open_file_limit();
    tracing::debug!(open_files, "open-file limit");
    let mut config = Config::load(args.config.as_deref())?;
    config.serve.listen = args.listen.unwrap_or(config.serve.listen);
    config.serve.data = args.data.unwrap_or(config.serve.data);
    let listener = tokio::net::TcpListener::bind(config.serve.listen)
        .await
        .map_err(|source| CliError::Io {
            context: format!("cannot listen on {}", config.serve.listen),
            source,
        })?;
    let monitors = config.monitors.len();
    // Shown without a PostgreSQL URL's password.
    let store = config.store.url_in(&config.serve.data);
    let server = Server::new(config, listener).await?;
    // Scripts and tests read this line to learn the address.
    println!(
        "isdown serving on http://{} ({monitors} monitors, store {store})",
        server.addr(),
    );
    let signals = Signals::install().map_err(|source| CliError::Io {
        context: "cannot install signal handlers".into(),
        source,
    })?;
    let (reload, requests) = mpsc::channel(1);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let signals = tokio::spawn(signals.forward(reload, shutdown));
    let outcome = server
        .run(
            async {
                let _ = stopped.await;
            },
            requests,
        )
        .await;
    signals.abort();
    outcome?;
    Ok(0)
}

struct Signals {
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// SIGHUP becomes a reload request (the server logs its outcome); the first SIGINT or
    /// SIGTERM becomes the shutdown.
    async fn forward(mut self, reload: mpsc::Sender<ReloadRequest>, shutdown: oneshot::Sender<()>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = self.hup.recv() => {
                    let (reply, _outcome) = oneshot::channel();
                    let _ = reload.send(reply).await;
                }
            }
        }
        let _ = shutdown.send(());
    }
}

//! The command line: argument definitions and one function per subcommand.
//!
//! `main.rs` parses [`Cli`], calls [`run`] and turns its result into an exit code; everything
//! else about the CLI lives here and in the sibling files, one per subcommand.

mod alert;
mod batch;
mod check;
mod db;
mod demo;
mod init;
mod mock_provider;
mod serve;

use clap::{Parser, Subcommand};
use thiserror::Error;

use crate::check::CheckError;
use crate::config::ConfigError;

#[derive(Debug, Parser)]
#[command(
    name = "isdown",
    version,
    about = "Is Kimi down, or is it my setup? Diagnose, monitor and fail over LLM APIs."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One-shot diagnosis: which providers are up, what fails, whose side it is on.
    Check(check::CheckArgs),
    /// Run a scripted OpenAI/Anthropic-compatible mock provider (for tests and demos).
    MockProvider(mock_provider::MockArgs),
    /// Monitor every provider, keep history, serve the JSON API and /metrics.
    Serve(serve::ServeArgs),
    /// Everything at once, offline: simulated providers, serve, agents, an outage and recovery.
    Demo(demo::DemoArgs),
    /// Alert channels: `isdown alert test CHANNEL`.
    Alert(alert::AlertArgs),
    /// The durable queue of a running `isdown serve`: submit, follow, list, download batches.
    Batch(batch::BatchArgs),
    /// Write a commented isdown.toml.
    Init(init::InitArgs),
    /// The database: `isdown db copy --from sqlite:PATH --to postgres://…`.
    Db(db::DbArgs),
}

/// Errors that end a command; every one maps to exit code 2 (usage or config).
#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error(transparent)]
    Copy(#[from] crate::store::copy::CopyError),
    #[error(transparent)]
    Batch(#[from] crate::queue::client::ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl CliError {
    /// 2 for usage and config errors (the user can fix the command), 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Check(_) | CliError::Usage(_) => 2,
            CliError::Server(e) if e.is_config() => 2,
            CliError::Copy(e) if e.is_usage() => 2,
            CliError::Store(_)
            | CliError::Server(_)
            | CliError::Demo(_)
            | CliError::Copy(_)
            | CliError::Batch(_)
            | CliError::Io { .. } => 1,
        }
    }
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            context: "cannot start the async runtime".into(),
            source,
        })?;
    match cli.command {
        Command::Check(args) => runtime.block_on(check::run(args)),
        Command::MockProvider(args) => runtime.block_on(mock_provider::run(args)),
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Alert(args) => runtime.block_on(alert::run(args)),
        Command::Batch(args) => runtime.block_on(batch::run(args)),
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        Command::Init(args) => init::run(args),
        Command::Db(args) => runtime.block_on(db::run(args)),
    }
}

/// Logs go to stderr; `ISDOWN_LOG` (or `RUST_LOG`) sets the filter, default `warn` — except in
/// the demo, which narrates incidents and alerts itself and so shows only errors.
pub fn init_logging(cli: &Cli) {
    let default = match cli.command {
        Command::Demo(_) => "error",
        _ => "warn",
    };
    let filter = std::env::var("ISDOWN_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(|| ScrubbedStderr)
        // Colour codes only for a person at a terminal, never in files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A panic message may quote whatever the code was holding: it leaves scrubbed, like a log.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{}", crate::secret::scrub(&info.to_string()));
    }));
}

/// Standard error, with every configured secret scrubbed from what is written. The log
/// formatter writes each event whole in one call, so a secret is never split between writes.
struct ScrubbedStderr;

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(crate::secret::scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

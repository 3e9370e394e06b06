//! `isdown mock-provider`: the scripted mock provider on a chosen address.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::mock::{self, MockOptions, Scenario, Style};

#[derive(Debug, Args)]
pub struct MockArgs {
    /// Address to listen on, e.g. 127.0.0.1:9001 (port 0 picks a free one, printed at start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Initial scenario (switch at run time with POST /_mock/scenario).
    #[arg(long, default_value = "ok")]
    pub scenario: String,
    /// Error style: kimi, deepseek, openai, anthropic, zhipu, dashscope, openrouter.
    #[arg(long, default_value = "openai")]
    pub style: String,
    /// Delay used by the `slow` scenario, e.g. 2s.
    #[arg(long, default_value = "2s", value_parser = |s: &str| humantime::parse_duration(s).map_err(|e| e.to_string()))]
    pub delay: Duration,
}

pub async fn run(args: MockArgs) -> Result<u8, CliError> {
    let scenario: Scenario = args.scenario.parse().map_err(|_| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.as_str()).collect();
        CliError::Usage(format!(
            "unknown scenario \"{}\"; known: {}",
            args.scenario,
            names.join(", ")
        ))
    })?;
    let style: Style = args
        .style
        .parse()
        .map_err(|_| CliError::Usage(format!("unknown style \"{}\"", args.style)))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| CliError::Io {
            context: format!("cannot listen on {}", args.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| CliError::Io {
        context: "cannot read the bound address".into(),
        source,
    })?;
    // Tests and scripts read this line to learn the port.
    println!("mock-provider listening on http://{addr}");
    let options = MockOptions {
        scenario,
        style,
        delay: args.delay,
    };
    mock::run(listener, options, shutdown_signal())
        .await
        .map_err(|source| CliError::Io {
            context: "mock provider failed".into(),
            source,
        })?;
    Ok(0)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

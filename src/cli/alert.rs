//! `isdown alert test CHANNEL`: sends a test message through one configured channel and says
//! whether the receiver took it.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;
use crate::alert::channel::http;
use crate::alert::render;
use crate::config::Config;
use crate::time::Clock;

#[derive(Debug, Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub command: AlertCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Send a test message through the `[alerts.CHANNEL]` channel.
    Test {
        channel: String,
        /// Config file (default: ./isdown.toml when present).
        #[arg(long, env = "ISDOWN_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub async fn run(args: AlertArgs) -> Result<u8, CliError> {
    let AlertCommand::Test { channel, config } = args.command;
    let config = Config::load(config.as_deref())?;
    let Some(spec) = config.alerts.iter().find(|a| a.name == channel) else {
        let known: Vec<&str> = config.alerts.iter().map(|a| a.name.as_str()).collect();
        return Err(CliError::Usage(format!(
            "no alert channel \"{channel}\"; configured: {}",
            if known.is_empty() {
                "none (add an [alerts.NAME] table)".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    let sender = spec.build(&http::client());
    let now = Clock::system().now();
    let message = render::test_message(&channel, now);
    match sender.send(&message).await {
        Ok(()) => {
            println!("sent a test alert through `{channel}` ({})", sender.kind());
            Ok(0)
        }
        Err(e) => {
            eprintln!(
                "`{channel}` ({}) did not take the test alert: {e}",
                sender.kind()
            );
            Ok(1)
        }
    }
}

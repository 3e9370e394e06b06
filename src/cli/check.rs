//! `isdown check`: flags, spinner, output, exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::SecretString;

use super::CliError;
use crate::check::report::{self, Style};
use crate::check::{self as checking, CheckOptions, DEFAULT_TIMEOUT, ProbeSelection};
use crate::config::Config;
use crate::config::raw::{BaseUrl, EnvVarName};
use crate::probe::ProbeKind;
use crate::provider::Provider;
use crate::provider::WireStyle;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProbeArg {
    Reachability,
    Chat,
    Stream,
    Tools,
    All,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StyleArg {
    Openai,
    Anthropic,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Providers to check (catalog or config names); default: all of them.
    pub providers: Vec<String>,
    /// Probe kind. Default: chat where a key is set, reachability where not.
    #[arg(long, value_enum)]
    pub probe: Option<ProbeArg>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Check an ad-hoc OpenAI/Anthropic-compatible endpoint (needs --model).
    #[arg(long, requires = "model")]
    pub url: Option<String>,
    /// Model for --url.
    #[arg(long, requires = "url")]
    pub model: Option<String>,
    /// Environment variable holding the key for --url.
    #[arg(long, requires = "url")]
    pub key_env: Option<String>,
    /// Wire style of --url.
    #[arg(long, value_enum, requires = "url", default_value = "openai")]
    pub style: StyleArg,
    /// Config file (default: ./isdown.toml when present).
    #[arg(long, env = "ISDOWN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Deadline per probe, e.g. 20s, 1m.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// A probe deadline: at least a millisecond, at most an hour (longer is never an answer).
fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::time::parse_duration(text, crate::time::MIN_DURATION, Duration::from_secs(3_600))
}

/// Builds the provider for `--url`, validated like a config entry.
fn adhoc(args: &CheckArgs) -> Result<Option<Provider>, CliError> {
    let (Some(url), Some(model)) = (&args.url, &args.model) else {
        return Ok(None);
    };
    let base =
        BaseUrl::try_from(url.clone()).map_err(|e| CliError::Usage(format!("--url: {e}")))?;
    let key_env = args
        .key_env
        .clone()
        .map(EnvVarName::try_from)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--key-env: {e}")))?;
    let api_key = match key_env.as_ref().and_then(|v| std::env::var(&v.0).ok()) {
        Some(key) if !key.trim().is_empty() => {
            let key = key.trim();
            crate::secret::check_value(key).map_err(|e| {
                let var = key_env.as_ref().map_or("", |v| v.0.as_str());
                CliError::Usage(format!("--key-env: the key in {var} {e}"))
            })?;
            crate::secret::register([key]);
            Some(SecretString::from(key.to_owned()))
        }
        _ => None,
    };
    let host = match base.0.port() {
        Some(port) => format!("{}:{port}", base.0.host_str().unwrap_or_default()),
        None => base.0.host_str().unwrap_or_default().to_owned(),
    };
    Ok(Some(Provider {
        id: host.clone(),
        name: host,
        base_url: base.0,
        style: match args.style {
            StyleArg::Openai => WireStyle::Openai,
            StyleArg::Anthropic => WireStyle::Anthropic,
        },
        api_key_env: key_env.map(|v| v.0),
        api_key,
        probe_model: model.clone(),
        context_window: None,
        degraded_after: Duration::from_secs(8),
        status_page: None,
        headers: Vec::new(),
        prefill: None,
        builtin: false,
    }))
}

pub async fn run(args: CheckArgs) -> Result<u8, CliError> {
    let config = Config::load(args.config.as_deref())?;
    let probes = match args.probe {
        None => ProbeSelection::Default,
        Some(ProbeArg::All) => ProbeSelection::All,
        Some(ProbeArg::Reachability) => ProbeSelection::One(ProbeKind::Reachability),
        Some(ProbeArg::Chat) => ProbeSelection::One(ProbeKind::Chat),
        Some(ProbeArg::Stream) => ProbeSelection::One(ProbeKind::Stream),
        Some(ProbeArg::Tools) => ProbeSelection::One(ProbeKind::Tools),
    };
    let adhoc = adhoc(&args)?;
    let options = CheckOptions {
        providers: args.providers.clone(),
        adhoc,
        probes,
        timeout: args
            .timeout
            .or(config.check.timeout)
            .unwrap_or(DEFAULT_TIMEOUT),
    };

    let spinner = if args.json || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message("checking…");
        bar
    };
    let progress = |done: usize, total: usize| {
        spinner.set_message(format!("checking… {done}/{total} probes done"));
    };
    let report = checking::run(&config, &options, &progress).await?;
    spinner.finish_and_clear();

    let text = if args.json {
        report::json(&report)
    } else {
        report::human(
            &report,
            Style {
                color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            },
        )
    };
    println!("{}", crate::secret::scrub(text.trim_end()));
    Ok(report::exit_code(&report))
}

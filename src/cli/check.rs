//! `isdown check`: flags, spinner, output, exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::SecretString;

use super::CliError;
use crate::check::report::{self, Style};
use crate::check::request;
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
    /// Deadline per probe, e.g. 20s, 1m (with --request: per request, default 120s).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Check a request: a JSON chat body, a JSONL file of recorded requests, or a curl command
    /// line (`-` reads standard input). Needs exactly one PROVIDER (or --url).
    #[arg(long, value_name = "FILE", conflicts_with = "probe")]
    pub request: Option<String>,
    /// With --request: lint only, send nothing.
    #[arg(long, requires = "request")]
    pub offline: bool,
    /// With --request: requests sent at most, the ping included (default 12).
    #[arg(long, requires = "request", value_name = "N")]
    pub max_requests: Option<usize>,
}

/// 32 MiB: Anthropic's request limit, far above any real request; a larger file is a mistake.
const MAX_REQUEST_FILE: u64 = 32 * 1024 * 1024;

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
    let style = match args.style {
        StyleArg::Openai => WireStyle::Openai,
        StyleArg::Anthropic => WireStyle::Anthropic,
    };
    Ok(Some(Provider {
        api_key_env: key_env.map(|v| v.0),
        api_key,
        ..Provider::new(&host, base.0, style, model.clone())
    }))
}

pub async fn run(args: CheckArgs) -> Result<u8, CliError> {
    let config = Config::load(args.config.as_deref())?;
    if let Some(file) = args.request.clone() {
        return run_request(&args, &config, &file).await;
    }
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

/// Reads a request file (`-`: standard input), at most [`MAX_REQUEST_FILE`] bytes.
fn read_request_file(file: &str) -> Result<String, CliError> {
    use std::io::Read as _;
    let context = || format!("cannot read the request {file}");
    let mut text = String::new();
    let read = if file == "-" {
        std::io::stdin()
            .take(MAX_REQUEST_FILE + 1)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_REQUEST_FILE + 1).read_to_string(&mut text))
    };
    // A file that cannot be read is the command's mistake: a usage error (exit 2).
    read.map_err(|e| CliError::Usage(format!("{}: {e}", context())))?;
    if text.len() as u64 > MAX_REQUEST_FILE {
        return Err(CliError::Usage(format!(
            "--request {file}: larger than {MAX_REQUEST_FILE} bytes; no provider accepts such a request"
        )));
    }
    Ok(text)
}

/// `check PROVIDER --request FILE`.
async fn run_request(args: &CheckArgs, config: &Config, file: &str) -> Result<u8, CliError> {
    let adhoc = adhoc(args)?;
    let provider =
        match (args.providers.as_slice(), adhoc) {
            ([], Some(provider)) => provider,
            ([name], None) => config.provider(name).cloned().ok_or_else(|| {
                checking::CheckError::UnknownProvider {
                    name: name.clone(),
                    known: config.provider_ids().join(", "),
                }
            })?,
            _ => {
                return Err(CliError::Usage(
                    "--request checks a request against one provider: name exactly one \
                 (`isdown check kimi --request req.json`) or use --url"
                        .into(),
                ));
            }
        };
    let text = read_request_file(file)?;
    let read_file = |name: &str| std::fs::read_to_string(name).map_err(|e| e.to_string());
    let recorded = request::input::parse(&text, &read_file)
        .map_err(|e| CliError::Usage(format!("--request {file}: {e}")))?;
    let options = request::RequestOptions {
        offline: args.offline,
        max_requests: args.max_requests.unwrap_or(request::DEFAULT_MAX_REQUESTS),
        ping_timeout: config.check.timeout.unwrap_or(DEFAULT_TIMEOUT),
        request_timeout: args.timeout.unwrap_or(request::DEFAULT_REQUEST_TIMEOUT),
    };
    let json = args.json;
    let notify = move |text: &str| {
        if !json {
            eprintln!("{}", crate::secret::scrub(text));
        }
    };
    let report = request::run(&provider, recorded, &options, &notify)
        .await
        .map_err(checking::CheckError::from)?;
    let text = if args.json {
        request::report::json(&report)
    } else {
        request::report::human(&report)
    };
    println!("{}", crate::secret::scrub(text.trim_end()));
    Ok(report.exit_code())
}

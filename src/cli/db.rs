//! `isdown db copy --from sqlite:PATH --to postgres://…`: moves an installation's history into
//! PostgreSQL ([`crate::store::copy`]) and says what it copied.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;
use crate::config::Config;
use crate::store::DatabaseUrl;
use crate::store::copy::{self, CopyReport};

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy history from a SQLite file into PostgreSQL; a rerun writes nothing twice.
    Copy {
        /// The SQLite database, e.g. sqlite:isdown-data/isdown.db.
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The PostgreSQL database (which must exist). Default: the store the config selects,
        /// $ISDOWN_DATABASE_URL or `[store] url` — which keeps its password off the command line.
        #[arg(long, value_name = "postgres://…")]
        to: Option<String>,
        /// Config file (default: ./isdown.toml when present): its secrets are scrubbed from
        /// history the file holds from versions before the scrub, as `serve` would.
        #[arg(long, env = "ISDOWN_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub async fn run(args: DbArgs) -> Result<u8, CliError> {
    let DbCommand::Copy { from, to, config } = args.command;
    // First: it registers every configured secret (and a URL's password) for scrubbing.
    let config = Config::load(config.as_deref())?;
    let url = |flag: &str, text: &str| {
        DatabaseUrl::parse(text).map_err(|e| CliError::Usage(format!("{flag}: the URL {e}")))
    };
    let from = url("--from", &from)?;
    let to = match to {
        Some(text) => url("--to", &text)?,
        None => config.store.url.clone().ok_or_else(|| {
            CliError::Usage(
                "--to: name the PostgreSQL database (or set ISDOWN_DATABASE_URL, or [store] url)"
                    .into(),
            )
        })?,
    };
    eprintln!("copying {from} into {to}");
    let mut last_table = "";
    let mut progress = |table: &'static str, rows: u64| {
        if table != last_table {
            last_table = table;
            eprintln!("  {table}…");
        }
        tracing::debug!(table, rows, "copied");
    };
    let report = copy::copy(&from, &to, &config.store.pool, &mut progress).await?;
    print!("{}", summary(&report));
    Ok(0)
}

/// One line per table, in the order they were copied.
fn summary(report: &CopyReport) -> String {
    let rows = [
        ("monitors", report.monitors, None),
        ("results", report.results, Some(report.results_present)),
        ("rollups", report.rollups, None),
        ("official incidents", report.official_incidents, None),
        ("incidents", report.incidents, None),
        ("monitor states", report.monitor_states, None),
        ("quarantined states", report.quarantined_states, None),
        ("alert groups", report.alert_groups, None),
        ("outbox entries", report.outbox_entries, None),
    ];
    let mut out = String::from("copied:\n");
    for (table, count, present) in rows {
        out.push_str(&format!("  {table:<20} {count}"));
        if let Some(present) = present.filter(|p| *p > 0) {
            out.push_str(&format!(" ({present} already there)"));
        }
        out.push('\n');
    }
    let queue = report.queue_left;
    if queue.batches + queue.files > 0 {
        out.push_str(&format!(
            "not copied: the durable queue stays in the SQLite file (batches {}, not ended {}, \
             files {}); finish or cancel its batches and download their results before \
             switching\n",
            queue.batches, queue.open_batches, queue.files
        ));
    }
    out
}

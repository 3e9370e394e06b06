//! `isdown init`: writes the commented example configuration.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::config::{DEFAULT_FILE, TEMPLATE_TOML};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(long, default_value = DEFAULT_FILE)]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: InitArgs) -> Result<u8, CliError> {
    if args.path.exists() && !args.force {
        return Err(CliError::Usage(format!(
            "{} already exists; use --force to overwrite it",
            args.path.display()
        )));
    }
    std::fs::write(&args.path, TEMPLATE_TOML).map_err(|source| CliError::Io {
        context: format!("cannot write {}", args.path.display()),
        source,
    })?;
    println!(
        "Wrote {}. Edit it, then run: isdown check --config {}",
        args.path.display(),
        args.path.display()
    );
    Ok(0)
}

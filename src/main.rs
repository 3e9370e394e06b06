//! The `isdown` binary: parse, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, chosen by measurement (BENCHMARKS.md "Memory after bursts").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = isdown::cli::Cli::parse();
    isdown::cli::init_logging(&cli);
    match isdown::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = error.exit_code();
            // Scrubbed like every log line: an error may quote what it failed on.
            let message = format!("{:#}", anyhow::Error::from(error));
            eprintln!("isdown: {}", isdown::secret::scrub(&message));
            ExitCode::from(code)
        }
    }
}

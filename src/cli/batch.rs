//! `isdown batch`: the durable queue for people who do not write code — submit a JSONL file of
//! chat requests to a running `isdown serve`, follow it, list batches, download the results.
//!
//! It talks to the server over HTTP like any client of the Batch API (`queue::client`), with
//! the key from `--key-env` (default `ISDOWN_GATEWAY_KEY`); a progress bar on a terminal, and
//! with `--json` the API's own objects on stdout.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures_util::StreamExt;
use serde_json::Value;

use super::CliError;
use crate::queue::client::{BatchClient, ClientError};
use crate::time::rfc3339;

/// How often `--wait` asks how the batch stands.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub command: BatchCommand,
    /// The `isdown serve` to talk to.
    #[arg(
        long,
        global = true,
        env = "ISDOWN_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Environment variable holding the gateway key (none set: no key is sent, for an open
    /// gateway).
    #[arg(long, global = true, default_value = "ISDOWN_GATEWAY_KEY")]
    pub key_env: String,
    /// Print the API's JSON objects instead of words.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Upload a JSONL file of /v1/chat/completions requests and start a batch over it.
    Submit {
        file: PathBuf,
        /// Follow the batch until it ends (a progress bar on a terminal).
        #[arg(long)]
        wait: bool,
        /// How long the batch may take before what is left expires ("24h", as OpenAI; isdown
        /// also takes other durations up to 7 days).
        #[arg(long, default_value = "24h")]
        window: String,
    },
    /// List the newest batches of this key.
    Ls {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// How a batch stands.
    Status { id: String },
    /// Write a batch's output file (or with --errors its error file) to stdout or --output.
    Results {
        id: String,
        /// The error file instead of the output file.
        #[arg(long)]
        errors: bool,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Cancel a batch: nothing more is sent; finished lines keep their results.
    Cancel { id: String },
}

pub async fn run(args: BatchArgs) -> Result<u8, CliError> {
    let key = crate::config::secret_from_env(&crate::config::env_lookup, &args.key_env)
        .map_err(CliError::Usage)?;
    let client = BatchClient::new(&args.url, key)?;
    match args.command {
        BatchCommand::Submit { file, wait, window } => {
            let uploaded = client.upload(&file).await?;
            let file_id = text(&uploaded, "id")?;
            let batch = client.create(&file_id, &window, None).await?;
            let id = text(&batch, "id")?;
            if !wait {
                print(&args.json, &batch, || {
                    format!("{}\nfollow it: isdown batch status {id}", summary(&batch))
                });
                return Ok(0);
            }
            let ended = follow(&client, &id, args.json).await?;
            print(&args.json, &ended, || summary(&ended));
            Ok(u8::from(ended["status"] != "completed"))
        }
        BatchCommand::Ls { limit } => {
            let list = client.list(limit).await?;
            print(&args.json, &list, || table(&list));
            Ok(0)
        }
        BatchCommand::Status { id } => {
            let batch = client.retrieve(&id).await?;
            print(&args.json, &batch, || summary(&batch));
            Ok(0)
        }
        BatchCommand::Cancel { id } => {
            let batch = client.cancel(&id).await?;
            print(&args.json, &batch, || summary(&batch));
            Ok(0)
        }
        BatchCommand::Results { id, errors, output } => {
            let batch = client.retrieve(&id).await?;
            let field = if errors {
                "error_file_id"
            } else {
                "output_file_id"
            };
            let Some(file_id) = batch[field].as_str() else {
                let status = batch["status"].as_str().unwrap_or("unknown");
                let which = if errors { "error" } else { "output" };
                return Err(CliError::Usage(format!(
                    "batch {id} has no {which} file (status {status}): results are written when \
                     a batch ends, and a file only when it has lines"
                )));
            };
            download(&client, file_id, output).await?;
            Ok(0)
        }
    }
}

/// Polls until the batch ends, with a progress bar on a terminal.
async fn follow(client: &BatchClient, id: &str, json: bool) -> Result<Value, ClientError> {
    let bar = if json || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:12} [{bar:30}] {pos}/{len} lines ({elapsed})",
            )
            .expect("a constant template is valid")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    };
    loop {
        let batch = client.retrieve(id).await?;
        let counts = &batch["request_counts"];
        let number = |field: &str| counts[field].as_u64().unwrap_or(0);
        bar.set_length(number("total"));
        bar.set_position(number("completed") + number("failed"));
        let status = batch["status"].as_str().unwrap_or("unknown").to_owned();
        bar.set_message(status.clone());
        if matches!(
            status.as_str(),
            "completed" | "failed" | "expired" | "cancelled"
        ) {
            bar.finish_and_clear();
            return Ok(batch);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Streams a file to `output` or stdout.
async fn download(
    client: &BatchClient,
    file_id: &str,
    output: Option<PathBuf>,
) -> Result<(), CliError> {
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|source| CliError::Io {
            context: format!("cannot write {}", path.display()),
            source,
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut chunks = Box::pin(client.content(file_id).await?);
    while let Some(chunk) = chunks.next().await {
        out.write_all(&chunk?).map_err(|source| CliError::Io {
            context: "cannot write the results".into(),
            source,
        })?;
    }
    out.flush().map_err(|source| CliError::Io {
        context: "cannot write the results".into(),
        source,
    })
}

fn print(json: &bool, value: &Value, words: impl FnOnce() -> String) {
    if *json {
        println!("{value}");
    } else {
        println!("{}", words());
    }
}

fn text(value: &Value, field: &str) -> Result<String, ClientError> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Unexpected(format!("no `{field}` in {value}")))
}

/// One batch in words: "batch_… in_progress: 312 of 500 lines done, 2 failed".
fn summary(batch: &Value) -> String {
    let counts = &batch["request_counts"];
    let number = |field: &str| counts[field].as_u64().unwrap_or(0);
    let mut lines = vec![format!(
        "{} {}: {} of {} lines done, {} failed",
        batch["id"].as_str().unwrap_or("?"),
        batch["status"].as_str().unwrap_or("?"),
        number("completed"),
        number("total"),
        number("failed"),
    )];
    if let Some(created) = batch["created_at"].as_i64() {
        lines.push(format!("created {}", rfc3339(created * 1_000)));
    }
    if let Some(errors) = batch["errors"]["data"].as_array() {
        for error in errors {
            let line = error["line"]
                .as_u64()
                .map_or(String::new(), |l| format!("line {l}: "));
            lines.push(format!(
                "  {line}{} ({})",
                error["message"].as_str().unwrap_or(""),
                error["code"].as_str().unwrap_or("")
            ));
        }
    }
    let id = batch["id"].as_str().unwrap_or("ID");
    if batch["output_file_id"].is_string() {
        lines.push(format!("results: isdown batch results {id}"));
    }
    if batch["error_file_id"].is_string() {
        lines.push(format!("failed lines: isdown batch results {id} --errors"));
    }
    lines.join("\n")
}

/// Batches as a table.
fn table(list: &Value) -> String {
    let mut out = format!(
        "{:<31} {:<11} {:>7} {:>7} {:>7}  {}",
        "ID", "STATUS", "DONE", "FAILED", "TOTAL", "CREATED"
    );
    for batch in list["data"].as_array().into_iter().flatten() {
        let counts = &batch["request_counts"];
        out.push_str(&format!(
            "\n{:<31} {:<11} {:>7} {:>7} {:>7}  {}",
            batch["id"].as_str().unwrap_or("?"),
            batch["status"].as_str().unwrap_or("?"),
            counts["completed"].as_u64().unwrap_or(0),
            counts["failed"].as_u64().unwrap_or(0),
            counts["total"].as_u64().unwrap_or(0),
            batch["created_at"]
                .as_i64()
                .map(|s| rfc3339(s * 1_000))
                .unwrap_or_default(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_summary_names_counts_errors_and_where_the_results_are() {
        let failed = json!({
            "id": "batch_1", "status": "failed", "created_at": 1_767_225_600,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "errors": {"object": "list", "data": [
                {"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
                 "param": null, "line": 2}
            ]},
            "output_file_id": null, "error_file_id": null,
        });
        let text = summary(&failed);
        assert!(
            text.starts_with("batch_1 failed: 0 of 0 lines done, 0 failed"),
            "{text}"
        );
        assert!(
            text.contains("line 2: This line is not parseable"),
            "{text}"
        );
        assert!(text.contains("created 2026-01-01T00:00:00Z"), "{text}");
        let done = json!({
            "id": "batch_2", "status": "completed",
            "request_counts": {"total": 3, "completed": 2, "failed": 1},
            "output_file_id": "file-a", "error_file_id": "file-b",
        });
        let text = summary(&done);
        assert!(text.contains("2 of 3 lines done, 1 failed"), "{text}");
        assert!(
            text.contains("isdown batch results batch_2 --errors"),
            "{text}"
        );
    }

    #[test]
    fn the_table_has_one_row_per_batch() {
        let list = json!({"data": [
            {"id": "batch_a", "status": "in_progress", "created_at": 0,
             "request_counts": {"total": 10, "completed": 4, "failed": 1}},
        ]});
        let text = table(&list);
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().nth(1).unwrap().starts_with("batch_a"));
    }
}

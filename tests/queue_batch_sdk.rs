//! The durable queue through the official `openai` Python SDK, against the real `isdown serve`
//! and `isdown mock-provider` binaries: each test runs one case of `tests/python/batch_sdk.py`
//! (which starts its own mocks and `serve` on free loopback ports and says what it checks).
//!
//! Python is `$ISDOWN_TEST_PYTHON`, or `.venv/bin/python` at the repository root (the one
//! `.ci/run` installs `openai` into). Without it the test fails with the command that installs
//! it: a skipped SDK test would hide a broken queue.

use std::path::PathBuf;
use std::process::Command;

const INSTALL: &str = "python3 -m venv .venv && .venv/bin/pip install 'openai==3.51.0'";

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("ISDOWN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"))
}

fn case(name: &str) {
    let python = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/batch_sdk.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(name)
        .env("ISDOWN_BIN", env!("CARGO_BIN_EXE_isdown"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run `{INSTALL}` at the repository root, or set \
                 ISDOWN_TEST_PYTHON",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("ok {name}")),
        "case {name} failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_batch_submitted_during_an_outage_waits_and_completes_after_recovery() {
    case("outage");
}

#[test]
fn a_batch_whose_primary_is_down_finishes_on_the_fallback_and_says_so() {
    case("failover");
}

#[test]
fn kill_9_mid_batch_and_a_restart_yield_each_custom_id_exactly_once() {
    case("crash");
}

#[test]
fn a_rate_limit_pauses_the_provider_for_its_retry_after() {
    case("rate_limit");
}

#[test]
fn each_bad_input_gives_the_documented_failed_batch() {
    case("bad_input");
}

#[test]
fn lines_that_are_the_requests_own_fault_end_once_in_the_error_file() {
    case("request_errors");
}

#[test]
fn one_key_cannot_reach_another_keys_files_or_batches() {
    case("owners");
}

#[test]
fn cancel_expiry_files_and_listings_behave_as_openai_documents() {
    case("lifecycle");
}

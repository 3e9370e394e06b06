//! The official `openai` SDKs — Python and Node — talk to the real `isdown serve` binary, in
//! front of two mock providers: plain, streaming and tool-call requests, failover on 503,
//! Retry-After honoured on 429, a complete stream without `[DONE]` that is a complete answer
//! with usage, and a cut stream that raises instead of returning truncated text (the cases live
//! in `tests/python/gateway_sdk.py` and `tests/node/gateway_sdk.mjs`, which switch the mocks'
//! scenarios over their `/_mock/scenario` endpoint).
//!
//! Python is `$ISDOWN_TEST_PYTHON`, or `.venv/bin/python` at the repository root (the one
//! `.ci/run` installs `openai` into); Node is `node` on the PATH with the pinned `openai` in
//! `tests/node/node_modules` (`.ci/run` runs `npm ci` there). Without them the test fails with the
//! command that installs them: a skipped SDK test would hide a broken gateway.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::*;

const INSTALL: &str = "python3 -m venv .venv && .venv/bin/pip install 'openai==3.51.0'";
const NODE_INSTALL: &str = "npm ci --prefix tests/node";
const CLIENT_KEY: &str = "gw-sdk-client-7Hq2";

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("ISDOWN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"))
}

/// Two mocks (`a` first) behind the route `agent` of a running `isdown serve`.
struct Gateway {
    a: MockServer,
    b: MockServer,
    url: String,
    _serve: Serve,
    _config: ConfigFile,
}

fn gateway() -> Gateway {
    let a = mock("openai", "ok");
    let b = mock("openai", "ok");
    // Monitors probe only the mocks, and rarely: the SDK cases must see the gateway alone.
    let config = config(&format!(
        "{}{}[[monitors]]\nprovider = \"a\"\ninterval = \"1h\"\n\
         [[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"a\" }}, {{ provider = \"b\" }}]\n\
         [gateway]\nclient_keys_env = [\"GW_KEY\"]\n",
        provider_toml("a", &a.v1(), "openai", "KEY_A"),
        provider_toml("b", &b.v1(), "openai", "KEY_B"),
    ));
    let serve = Serve::start(
        &config.path,
        &config.dir.path().join("data"),
        &[
            ("GW_KEY", CLIENT_KEY),
            ("KEY_A", "sk-upstream-a-Qw8ErTy2UiOp"),
            ("KEY_B", "sk-upstream-b-Qw8ErTy2UiOp"),
        ],
    );
    let url = serve.url.clone();
    Gateway {
        a,
        b,
        url,
        _serve: serve,
        _config: config,
    }
}

impl Gateway {
    /// Runs an SDK suite with the gateway's address in its environment.
    fn run(&self, command: &mut Command) -> std::process::Output {
        command
            .env("GATEWAY_URL", &self.url)
            .env("GATEWAY_KEY", CLIENT_KEY)
            .env("MOCK_A", self.a.url())
            .env("MOCK_B", self.b.url())
            .output()
            .expect("run the SDK suite")
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_official_openai_python_sdk_works_against_the_gateway() {
    let python = python();
    let check = Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}). This test needs Python with the openai package: run \
                 `{INSTALL}` at the repository root, or set ISDOWN_TEST_PYTHON",
                python.display()
            )
        });
    assert!(
        check.status.success(),
        "{} cannot import openai: run `{INSTALL}` at the repository root, or set \
         ISDOWN_TEST_PYTHON. {}",
        python.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    let gateway = gateway();
    let out = gateway.run(Command::new(&python).arg(root().join("tests/python/gateway_sdk.py")));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openai SDK suite failed:\n{report}");
    // Every case ran (unittest reports on stderr).
    assert!(report.contains("Ran 7 tests"), "{report}");
}

#[test]
fn the_official_openai_node_sdk_works_against_the_gateway() {
    let sdk = root().join("tests/node/node_modules/openai/package.json");
    assert!(
        sdk.exists(),
        "the Node openai package is not installed: run `{NODE_INSTALL}` at the repository root"
    );
    let gateway = gateway();
    let out = gateway.run(
        Command::new("node")
            .args(["--test", "--test-reporter=tap"])
            .arg(root().join("tests/node/gateway_sdk.mjs")),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openai Node SDK suite failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every case ran and passed (node's TAP summary).
    assert!(report.contains("# pass 4"), "{report}");
}

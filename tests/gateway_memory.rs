//! Memory stays bounded under concurrent large bodies: the real `isdown serve` process receives
//! many large requests at once from a valid client, and its peak resident memory (`VmHWM` in
//! `/proc/<pid>/status`) stays under the bound README's "Memory" promises — about three times
//! `max_request_bytes_in_flight` above what it held before the burst. Requests the budget could
//! not fit in time get the documented 503 `gateway_busy`, never a failure of another kind.

mod support;

use support::{Serve, mock_async};

const MIB: u64 = 1024 * 1024;
/// The budget under test: small, so that the burst below offers it many times over.
const BUDGET: u64 = 24 * MIB;
const BODY: usize = 5 * MIB as usize;
const CONCURRENT: usize = 24;

/// A `/proc/<pid>/status` field in bytes (`VmHWM`, `VmRSS`).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_bodies_stay_under_three_times_the_in_flight_budget() {
    let mock = mock_async("openai", "ok").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("isdown.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.up]\nname = \"up\"\nbase_url = \"{}\"\nstyle = \"openai\"\n\
             api_key_env = \"KEY_UP\"\nprobe_model = \"m\"\n\
             [[monitors]]\nprovider = \"up\"\nprobes = [\"reachability\"]\ninterval = \"1h\"\n\
             [[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"up\" }}]\n\
             [gateway]\nclient_keys_env = [\"GW_KEY\"]\n\
             max_request_bytes = {}\nmax_request_bytes_in_flight = {}\n",
            mock.v1(),
            8 * MIB,
            BUDGET
        ),
    )
    .unwrap();
    let serve = Serve::start(
        &config,
        &dir.path().join("data"),
        &[
            ("GW_KEY", "gw-memory-key-8Hq2"),
            ("KEY_UP", "sk-up-memory-3Jd9"),
        ],
    );
    let pid = serve.child.id();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", serve.url);
    let ask = |content: String| {
        client
            .post(&url)
            .bearer_auth("gw-memory-key-8Hq2")
            .json(&serde_json::json!({
                "model": "agent",
                "messages": [{"role": "user", "content": content}],
            }))
            .send()
    };
    // Warm up: the first request builds the upstream connection and the runtime's buffers.
    assert_eq!(ask("ping".into()).await.unwrap().status(), 200);
    let before = status_bytes(pid, "VmRSS");

    let burst: Vec<_> = (0..CONCURRENT)
        .map(|i| ask(format!("{i}{}", "x".repeat(BODY))))
        .collect();
    let answers = futures_util::future::join_all(burst).await;
    let mut served = 0;
    for answer in answers {
        let answer = answer.unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap();
        match status {
            200 => served += 1,
            503 => assert!(body.contains("gateway_busy"), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    // Four bodies fit the budget at once, so the first four never wait.
    assert!(served >= 4, "only {served} of {CONCURRENT} were served");

    let peak = status_bytes(pid, "VmHWM");
    let grew = peak.saturating_sub(before);
    // Three times the budget (README "Memory"), plus 16 MiB for the runtime's own buffers.
    let bound = 3 * BUDGET + 16 * MIB;
    assert!(
        grew <= bound,
        "peak {} MiB is {} MiB above the {} MiB before the burst; the bound is {} MiB",
        peak / MIB,
        grew / MIB,
        before / MIB,
        bound / MIB
    );
}

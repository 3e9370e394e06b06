//! `isdown demo`: everything at once, offline. Three simulated providers (the mock provider in
//! Kimi, DeepSeek and GLM styles), the real server (monitor, alerts to the console, status page,
//! gateway, durable queue) in this process, and a steady trickle of agent requests through the
//! gateway. Then Kimi goes down and comes back, and the demo narrates what isdown does — the
//! agents fail over, and a batch that needs Kimi itself (the route `kimi-batch`, no fallback),
//! submitted through the Batch API while Kimi is down, waits and completes after recovery.
//!
//! The story follows the server's own events — incidents as the monitor opens and closes them,
//! alerts as their channel accepts them — and sends its agent traffic and status reads over
//! HTTP, as a user's agents and dashboards would. It fails (exit 1) when any agent request fails
//! or a step does not happen in time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::CliError;
use crate::alert::AlertEvent;
use crate::alert::channel::console;
use crate::alert::outbox::Delivered;
use crate::config::Config;
use crate::mock::{MockOptions, MockServer, Scenario, Style};
use crate::monitor::service::MonitorEvent;
use crate::server::Server;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the status page and gateway listen (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Stop when the story is told, instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit_when_done: bool,
}

/// One agent request every 200 ms: a steady trickle, like a few agents at work.
const REQUEST_EVERY: Duration = Duration::from_millis(200);
/// Longest wait for any one step (an incident opening, an alert, recovery).
const STEP_DEADLINE: Duration = Duration::from_secs(45);
/// How long each phase of healthy or failed-over traffic is shown.
const PHASE: Duration = Duration::from_secs(6);
/// Lines of the demo's batch: enough to see it wait, few enough to finish in a second or two.
const BATCH_LINES: usize = 200;
/// The route of the demo's batch: Kimi only, so its lines wait out Kimi's outage.
const BATCH_ROUTE: &str = "kimi-batch";
/// Not a real key: the simulated providers accept anything; `serve` needs one to run chat probes.
const DEMO_KEY: &str = "demo-key-not-a-secret";
/// The variable the demo config names for it; resolved by the demo itself, never set in the
/// process environment.
const DEMO_KEY_ENV: &str = "ISDOWN_DEMO_KEY";

/// Why the story could not be told to its end.
#[derive(Debug, Error)]
pub enum DemoError {
    #[error("demo: {what} did not happen within {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("demo: the server stopped before the story ended")]
    Stopped,
    #[error("demo: cannot build the HTTP client: {0}")]
    Client(String),
    #[error("demo: the batch: {0}")]
    Batch(#[from] crate::queue::client::ClientError),
    #[error("demo: cannot write the batch's requests: {0}")]
    BatchFile(std::io::Error),
    #[error("demo: the batch ended {status}, with {done} of {total} lines answered")]
    BatchIncomplete {
        status: String,
        done: u64,
        total: u64,
    },
}

/// The simulated providers: (id, display, mock style, model the route asks for).
const PROVIDERS: [(&str, &str, Style, &str); 3] = [
    ("kimi", "Kimi", Style::Kimi, "kimi-k2.6"),
    ("deepseek", "DeepSeek", Style::Deepseek, "deepseek-chat"),
    ("glm", "GLM", Style::Zhipu, "glm-4.6"),
];

#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    failed: u64,
    by_provider: BTreeMap<String, u64>,
    last_provider: Option<String>,
    last_error: Option<String>,
}

pub async fn run(args: DemoArgs) -> Result<u8, CliError> {
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| CliError::Io { context, source }
    };
    let dir = tempfile_dir().map_err(io("cannot create the demo's data directory"))?;
    // Stopped when dropped, on every way out of this function.
    let mut mocks = Vec::new();
    for (_, _, style, _) in PROVIDERS {
        let options = MockOptions {
            scenario: Scenario::Ok,
            style,
            ..MockOptions::default()
        };
        let mock = MockServer::start(options)
            .await
            .map_err(io("cannot start a simulated provider"))?;
        mocks.push(mock);
    }
    let mock_urls: Vec<String> = mocks.iter().map(MockServer::url).collect();
    let mut config = Config::from_toml(
        &demo_config(&mock_urls, args.listen),
        "<demo config>",
        &|var| (var == DEMO_KEY_ENV).then(|| DEMO_KEY.to_owned()),
    )?;
    config.serve.data = dir.join("data");
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(io("cannot listen for the status page"))?;
    let server = Server::new(config, listener).await?;
    let base = format!("http://{}", server.addr());
    let started = Instant::now();
    let incidents = server.subscribe();
    let alerts = narrate_alerts(server.subscribe_alerts(), started);
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    // Never sent: the demo's config does not change while it runs.
    let (_reload, reloads) = mpsc::channel(1);
    let serving = tokio::spawn(server.run(
        async {
            let _ = server_stopped.await;
        },
        reloads,
    ));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| DemoError::Client(e.to_string()))?;
    say(
        started,
        &format!("Status page: {base}/   (open it to watch live)"),
    );
    say(
        started,
        &format!("Gateway:     {base}/v1  (model \"kimi-k2\": Kimi, then DeepSeek, then GLM)"),
    );

    let story = tell_the_story(&client, &base, &mocks, &dir, started, incidents, alerts).await;
    match story {
        Ok(tally) => {
            let failed = tally.failed;
            say(
                started,
                &format!(
                    "Done: {} agent requests, {} failed; served by {}.",
                    tally.sent,
                    failed,
                    served_by(&tally)
                ),
            );
            if !args.exit_when_done {
                say(started, "The status page stays up; press Ctrl-C to stop.");
                let _ = tokio::signal::ctrl_c().await;
            }
            let _ = stop_server.send(());
            let _ = serving.await;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(u8::from(failed > 0))
        }
        Err(e) => {
            let _ = stop_server.send(());
            let _ = serving.await;
            let _ = std::fs::remove_dir_all(&dir);
            Err(e.into())
        }
    }
}

async fn tell_the_story(
    client: &reqwest::Client,
    base: &str,
    mocks: &[MockServer],
    dir: &std::path::Path,
    started: Instant,
    mut incidents: broadcast::Receiver<MonitorEvent>,
    mut opened_alert: watch::Receiver<bool>,
) -> Result<Tally, DemoError> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (stop_traffic, traffic_stopped) = watch::channel(false);
    let traffic = tokio::spawn(agent_traffic(
        client.clone(),
        base.to_owned(),
        tally.clone(),
        traffic_stopped,
    ));

    wait_for(started, "every provider to be up", || async {
        let status = get_json(client, &format!("{base}/api/v1/status")).await?;
        let monitors = status["monitors"].as_array()?;
        (!monitors.is_empty() && monitors.iter().all(|m| m["state"] == "up")).then_some(())
    })
    .await?;
    say(
        started,
        "All three providers are up; agents are talking to Kimi.",
    );
    tokio::time::sleep(PHASE).await;
    report(started, &tally);

    say(
        started,
        "Taking Kimi down: it now answers every request with 503.",
    );
    mocks[0].set_scenario(Scenario::Unavailable);
    let down_at = Instant::now();
    let (id, monitor, kind) = next_event(
        started,
        "the Kimi incident to open",
        &mut incidents,
        |e| match e {
            MonitorEvent::IncidentOpened {
                id, monitor, kind, ..
            } if monitor.starts_with("kimi-") => Some((*id, monitor.clone(), *kind)),
            _ => None,
        },
    )
    .await?;
    let verdict = get_json(client, &format!("{base}/api/v1/incidents?state=open"))
        .await
        .and_then(|open| {
            open["incidents"]
                .as_array()?
                .iter()
                .find(|i| i["id"] == id)
                .and_then(|i| i["verdict"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into());
    say(
        started,
        &format!(
            "Incident opened after {:.1} s: {monitor} {} ({verdict}, the provider's side).",
            down_at.elapsed().as_secs_f64(),
            kind.as_str(),
        ),
    );
    within(
        started,
        "the alert to be delivered",
        opened_alert.wait_for(|seen| *seen),
    )
    .await?
    .map_err(|_| DemoError::Stopped)?;
    let before = tally
        .lock()
        .map(|t| t.by_provider.clone())
        .unwrap_or_default();
    let batches = crate::queue::client::BatchClient::new(base, None)?;
    let batch = submit_batch(&batches, dir).await?;
    say(
        started,
        &format!(
            "A nightly job submits a batch of {BATCH_LINES} requests for \"{BATCH_ROUTE}\" \
             (Kimi only, no fallback) through the Batch API: {batch}."
        ),
    );
    tokio::time::sleep(PHASE).await;
    let waiting = batches.retrieve(&batch).await?;
    let reached = batch_requests_received(&mocks[0]);
    say(
        started,
        &format!(
            "The batch waits while Kimi is down: {}, {} of {BATCH_LINES} lines answered, {reached} \
             sent to Kimi.",
            waiting["status"].as_str().unwrap_or("?"),
            waiting["request_counts"]["completed"]
        ),
    );
    {
        let t = tally.lock().unwrap_or_else(|e| e.into_inner());
        let moved: Vec<String> = PROVIDERS[1..]
            .iter()
            .filter_map(|(id, name, _, _)| {
                let n = t.by_provider.get(*id).copied().unwrap_or(0)
                    - before.get(*id).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} to {name}"))
            })
            .collect();
        say(
            started,
            &format!(
                "Agents failed over while Kimi is down: {}; {} failed so far.",
                if moved.is_empty() {
                    "none".into()
                } else {
                    moved.join(", ")
                },
                t.failed
            ),
        );
    }

    say(started, "Bringing Kimi back.");
    mocks[0].set_scenario(Scenario::Ok);
    let up_at = Instant::now();
    next_event(
        started,
        "the Kimi incident to close",
        &mut incidents,
        |e| match e {
            MonitorEvent::IncidentClosed { id: closed, .. } if *closed == id => Some(()),
            _ => None,
        },
    )
    .await?;
    say(
        started,
        &format!(
            "Incident closed {:.1} s after Kimi recovered.",
            up_at.elapsed().as_secs_f64()
        ),
    );
    wait_for(started, "traffic to return to Kimi", || async {
        let last = tally.lock().ok()?.last_provider.clone()?;
        (last == "kimi").then_some(())
    })
    .await?;
    say(started, "Agents are back on Kimi.");
    let ended = wait_for(started, "the batch to end", || async {
        let batch = batches.retrieve(&batch).await.ok()?;
        matches!(
            batch["status"].as_str(),
            Some("completed" | "failed" | "expired" | "cancelled")
        )
        .then_some(batch)
    })
    .await?;
    let (done, total) = (
        ended["request_counts"]["completed"].as_u64().unwrap_or(0),
        ended["request_counts"]["total"].as_u64().unwrap_or(0),
    );
    if ended["status"] != "completed" || done != total {
        return Err(DemoError::BatchIncomplete {
            status: ended["status"].as_str().unwrap_or("?").to_owned(),
            done,
            total,
        });
    }
    let after = up_at.elapsed().as_secs_f64();
    let (answered_by, unique) = batch_results(&batches, &ended).await?;
    say(
        started,
        &format!(
            "The batch completed {after:.1} s after Kimi recovered: {done} of {total} lines \
             answered by {answered_by}, {unique} distinct custom_ids (isdown batch results \
             {batch})."
        ),
    );
    tokio::time::sleep(PHASE / 2).await;

    let _ = stop_traffic.send(true);
    let _ = traffic.await;
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(error) = &tally.last_error {
        say(started, &format!("Last failed request: {error}"));
    }
    Ok(tally)
}

/// Writes the batch's requests next to the demo's database, uploads them and starts the batch;
/// returns its id.
async fn submit_batch(
    batches: &crate::queue::client::BatchClient,
    dir: &std::path::Path,
) -> Result<String, DemoError> {
    let lines: String = (0..BATCH_LINES)
        .map(|i| {
            let request = json!({
                "custom_id": format!("nightly-{i}"),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": BATCH_ROUTE,
                    "messages": [{"role": "user", "content": format!("Summarise document {i}.")}],
                },
            });
            format!("{request}\n")
        })
        .collect();
    let path = dir.join("nightly.jsonl");
    std::fs::write(&path, lines).map_err(DemoError::BatchFile)?;
    let file = batches.upload(&path).await?;
    let file_id = file["id"].as_str().unwrap_or_default();
    let batch = batches.create(file_id, "24h", None).await?;
    Ok(batch["id"].as_str().unwrap_or_default().to_owned())
}

/// How many of the batch's requests a simulated provider received, from its request log.
fn batch_requests_received(mock: &MockServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.body.to_string().contains("Summarise document"))
        .count()
}

/// Who answered the batch's lines (providers with counts) and how many distinct custom_ids its
/// output file holds, read from the output file as a user would.
async fn batch_results(
    batches: &crate::queue::client::BatchClient,
    batch: &Value,
) -> Result<(String, usize), DemoError> {
    use futures_util::StreamExt;
    let Some(file) = batch["output_file_id"].as_str() else {
        return Ok(("nobody".into(), 0));
    };
    let mut bytes = Vec::new();
    let mut chunks = Box::pin(batches.content(file).await?);
    while let Some(chunk) = chunks.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    let mut providers: BTreeMap<String, u64> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        let Ok(result) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let provider = result["x_isdown"]["provider"].as_str().unwrap_or("?");
        let name = PROVIDERS
            .iter()
            .find(|(id, ..)| *id == provider)
            .map_or(provider, |(_, name, ..)| name);
        *providers.entry(name.to_owned()).or_default() += 1;
        ids.insert(result["custom_id"].to_string());
    }
    let answered_by = providers
        .iter()
        .map(|(name, n)| format!("{name} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((answered_by, ids.len()))
}

/// Sends one agent request every [`REQUEST_EVERY`] (every third one streamed) until stopped.
async fn agent_traffic(
    client: reqwest::Client,
    base: String,
    tally: Arc<Mutex<Tally>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(REQUEST_EVERY);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        n += 1;
        let (client, base, tally) = (client.clone(), base.clone(), tally.clone());
        in_flight.spawn(async move {
            let outcome = agent_request(&client, &base, n.is_multiple_of(3)).await;
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            t.sent += 1;
            match outcome {
                Ok(provider) => {
                    *t.by_provider.entry(provider.clone()).or_default() += 1;
                    t.last_provider = Some(provider);
                }
                Err(e) => {
                    t.failed += 1;
                    t.last_error = Some(e);
                }
            }
        });
    }
    while in_flight.join_next().await.is_some() {}
}

/// One chat completion through the gateway; the provider that served it, or what went wrong.
async fn agent_request(
    client: &reqwest::Client,
    base: &str,
    stream: bool,
) -> Result<String, String> {
    let body = json!({
        "model": "kimi-k2",
        "stream": stream,
        "messages": [{"role": "user", "content": "Summarise the failing test in one line."}],
    });
    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let provider = response
        .headers()
        .get("x-isdown-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    // A stream counts as served only when it ended cleanly: an in-band error is a failure.
    if stream && (!text.contains("data: [DONE]") || text.contains("\"error\"")) {
        return Err("the stream ended with an error".into());
    }
    Ok(provider)
}

fn report(started: Instant, tally: &Mutex<Tally>) {
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    say(
        started,
        &format!(
            "Agents so far: {} requests, {} failed; served by {}.",
            t.sent,
            t.failed,
            served_by(&t)
        ),
    );
}

fn served_by(t: &Tally) -> String {
    let parts: Vec<String> = PROVIDERS
        .iter()
        .filter_map(|(id, name, _, _)| t.by_provider.get(*id).map(|n| format!("{name} {n}")))
        .collect();
    if parts.is_empty() {
        "nobody yet".into()
    } else {
        parts.join(", ")
    }
}

fn say(started: Instant, text: &str) {
    println!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
}

async fn wait_for<T, F, Fut>(started: Instant, what: &str, mut check: F) -> Result<T, DemoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(gave_up(started, what));
        }
        // Polling the public API, as a dashboard would; 250 ms keeps the story prompt.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

/// Waits for the first event `pick` accepts, for at most [`STEP_DEADLINE`].
async fn next_event<T>(
    started: Instant,
    what: &str,
    events: &mut broadcast::Receiver<MonitorEvent>,
    pick: impl Fn(&MonitorEvent) -> Option<T>,
) -> Result<T, DemoError> {
    within(started, what, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return Ok(found);
                    }
                }
                // Missed events are not this story's: keep listening.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Err(DemoError::Stopped),
            }
        }
    })
    .await?
}

/// `step`, or [`DemoError::Timeout`] after [`STEP_DEADLINE`].
async fn within<T>(
    started: Instant,
    what: &str,
    step: impl std::future::Future<Output = T>,
) -> Result<T, DemoError> {
    tokio::time::timeout(STEP_DEADLINE, step)
        .await
        .map_err(|_| gave_up(started, what))
}

fn gave_up(started: Instant, what: &str) -> DemoError {
    say(started, &format!("Gave up waiting for {what}."));
    DemoError::Timeout {
        what: what.to_owned(),
        secs: STEP_DEADLINE.as_secs(),
    }
}

/// Shows every alert the console channel delivered as part of the story; the returned flag turns
/// true at the first `Opened` one.
fn narrate_alerts(
    mut delivered: broadcast::Receiver<Delivered>,
    started: Instant,
) -> watch::Receiver<bool> {
    let (opened, seen) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            match delivered.recv().await {
                Ok(Delivered { channel, message }) => {
                    say(
                        started,
                        &format!("ALERT ({channel} channel): {}", console::line(&message)),
                    );
                    if message.event == AlertEvent::Opened {
                        opened.send_replace(true);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    seen
}

fn demo_config(mocks: &[String], listen: SocketAddr) -> String {
    let mut text = format!(
        "# Written by `isdown demo`: three simulated providers and a route that falls over.\n\
         [serve]\nlisten = \"{listen}\"\n\n\
         [monitor]\ninterval = \"2s\"\nconfirm_after = \"500ms\"\ntimeout = \"2s\"\n\n\
         [alerting]\ngroup_window = \"1s\"\n\n\
         [alerts.console]\nkind = \"console\"\n\n\
         [gateway]\nopen_on_localhost = true\n\n\
         [[routes]]\nmodel = \"kimi-k2\"\ntargets = [\n"
    );
    for (id, _, _, model) in PROVIDERS {
        text.push_str(&format!(
            "  {{ provider = \"{id}\", model = \"{model}\" }},\n"
        ));
    }
    text.push_str(&format!(
        "]\n\n[[routes]]\nmodel = \"{BATCH_ROUTE}\"\n\
         targets = [{{ provider = \"kimi\", model = \"{}\" }}]\n",
        PROVIDERS[0].3
    ));
    for ((id, name, _, model), url) in PROVIDERS.iter().zip(mocks) {
        text.push_str(&format!(
            "\n[providers.{id}]\nname = \"{name} (simulated)\"\nbase_url = \"{url}/v1\"\n\
             api_key_env = \"{DEMO_KEY_ENV}\"\nprobe_model = \"{model}\"\n\n\
             [[monitors]]\nprovider = \"{id}\"\nprobes = [\"chat\"]\n"
        ));
    }
    text
}

/// A fresh directory under the system temp dir for the demo's config and database.
fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..1_000u32 {
        let dir = base.join(format!("isdown-demo-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_loads() {
        let mocks: Vec<String> = (1..=3)
            .map(|n| format!("http://127.0.0.1:900{n}"))
            .collect();
        let text = demo_config(&mocks, "127.0.0.1:8080".parse().unwrap());
        let config = crate::config::Config::from_toml(&text, "demo.toml", &|v| {
            (v == DEMO_KEY_ENV).then(|| DEMO_KEY.to_owned())
        })
        .unwrap();
        assert_eq!(config.monitors.len(), 3);
        assert_eq!(config.alerts.len(), 1);
    }
}

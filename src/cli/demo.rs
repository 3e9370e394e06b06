//! `isdown demo`: everything at once, offline. Three simulated providers (the mock provider in
//! Kimi, DeepSeek and GLM styles), the real `isdown serve` (monitor, alerts to the console,
//! status page, gateway) as a child process, and a steady trickle of agent requests through the
//! gateway. Then Kimi goes down and comes back, and the demo narrates what isdown does.
//!
//! The demo drives the product only through what a user has — the `serve` binary, its config
//! file, its HTTP API and its log — so what it shows is what a user gets. It fails (exit 1) when
//! any agent request fails or a step does not happen in time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use super::CliError;
use crate::mock::{self, MockOptions, Scenario, Style};

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
/// Not a real key: the simulated providers accept anything; `serve` needs one to run chat probes.
const DEMO_KEY: &str = "demo-key-not-a-secret";

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
    let (stop_mocks, mocks_stopped) = watch::channel(false);
    let mut mock_urls = Vec::new();
    for (_, _, style, _) in PROVIDERS {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("cannot start a simulated provider"))?;
        let addr = listener
            .local_addr()
            .map_err(io("cannot read its address"))?;
        let options = MockOptions {
            scenario: Scenario::Ok,
            style,
            ..MockOptions::default()
        };
        let mut stopped = mocks_stopped.clone();
        tokio::spawn(mock::run(listener, options, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        mock_urls.push(format!("http://{addr}"));
    }
    let config_path = dir.join("isdown.toml");
    std::fs::write(&config_path, demo_config(&mock_urls, args.listen))
        .map_err(io("cannot write the demo config"))?;

    let exe = std::env::current_exe().map_err(io("cannot find the isdown binary"))?;
    let mut serve = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--listen")
        .arg(args.listen.to_string())
        .env("ISDOWN_DEMO_KEY", DEMO_KEY)
        .env("ISDOWN_LOG", "warn,isdown::alert::channel::console=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("cannot start isdown serve"))?;
    let started = Instant::now();
    let base = read_banner(&mut serve).await?;
    forward_alert_lines(&mut serve, started);

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::Usage(format!("cannot build the HTTP client: {e}")))?;
    say(
        started,
        &format!("Status page: {base}/   (open it to watch live)"),
    );
    say(
        started,
        &format!("Gateway:     {base}/v1  (model \"kimi-k2\": Kimi, then DeepSeek, then GLM)"),
    );

    let story = tell_the_story(&client, &base, &mock_urls, started).await;
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
            let _ = stop_mocks.send(true);
            let _ = serve.kill().await;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(u8::from(failed > 0))
        }
        Err(e) => {
            let _ = stop_mocks.send(true);
            let _ = serve.kill().await;
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

async fn tell_the_story(
    client: &reqwest::Client,
    base: &str,
    mocks: &[String],
    started: Instant,
) -> Result<Tally, CliError> {
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
    set_scenario(client, &mocks[0], "unavailable").await?;
    let down_at = Instant::now();
    let incident = wait_for(started, "the Kimi incident to open", || async {
        let open = get_json(client, &format!("{base}/api/v1/incidents?state=open")).await?;
        open["incidents"]
            .as_array()?
            .iter()
            .find(|i| i["provider"] == "kimi")
            .cloned()
    })
    .await?;
    say(
        started,
        &format!(
            "Incident opened after {:.1} s: {} {} ({}, the provider's side).",
            down_at.elapsed().as_secs_f64(),
            incident["monitor"].as_str().unwrap_or("?"),
            incident["kind"].as_str().unwrap_or("?"),
            incident["verdict"].as_str().unwrap_or("?"),
        ),
    );
    wait_for(started, "the alert to be delivered", || async {
        let health = get_json(client, &format!("{base}/healthz")).await?;
        (!health["alerts"]["console"]["last_delivered_at"].is_null()).then_some(())
    })
    .await?;
    let before = tally
        .lock()
        .map(|t| t.by_provider.clone())
        .unwrap_or_default();
    tokio::time::sleep(PHASE).await;
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
    set_scenario(client, &mocks[0], "ok").await?;
    let up_at = Instant::now();
    wait_for(started, "the Kimi incident to close", || async {
        let open = get_json(client, &format!("{base}/api/v1/incidents?state=open")).await?;
        open["incidents"].as_array()?.is_empty().then_some(())
    })
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
    tokio::time::sleep(PHASE / 2).await;

    let _ = stop_traffic.send(true);
    let _ = traffic.await;
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(error) = &tally.last_error {
        say(started, &format!("Last failed request: {error}"));
    }
    Ok(tally)
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

async fn wait_for<T, F, Fut>(started: Instant, what: &str, mut check: F) -> Result<T, CliError>
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
            say(started, &format!("Gave up waiting for {what}."));
            return Err(CliError::Usage(format!(
                "demo: {what} did not happen within {} s",
                STEP_DEADLINE.as_secs()
            )));
        }
        // Polling the public API, as a dashboard would; 250 ms keeps the story prompt.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

async fn set_scenario(
    client: &reqwest::Client,
    mock: &str,
    scenario: &str,
) -> Result<(), CliError> {
    client
        .post(format!("{mock}/_mock/scenario"))
        .json(&json!({ "scenario": scenario }))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map(|_| ())
        .map_err(|e| CliError::Usage(format!("cannot switch the simulated provider: {e}")))
}

async fn read_banner(serve: &mut Child) -> Result<String, CliError> {
    let stdout = serve
        .stdout
        .take()
        .ok_or_else(|| CliError::Usage("serve has no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(STEP_DEADLINE, lines.next_line())
        .await
        .ok()
        .and_then(|l| l.ok().flatten())
        .ok_or_else(|| {
            CliError::Usage("isdown serve did not start (see its errors above)".into())
        })?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_owned)
        .ok_or_else(|| CliError::Usage(format!("unexpected banner from serve: {line}")))
}

/// Shows serve's console-channel alerts (and its errors) as part of the story.
fn forward_alert_lines(serve: &mut Child, started: Instant) {
    let Some(stderr) = serve.stderr.take() else {
        return;
    };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((_, alert)) = line.split_once("isdown::alert::channel::console: ") {
                let alert = alert.split(" channel=").next().unwrap_or(alert);
                say(started, &format!("ALERT (console channel): {alert}"));
            } else if line.contains("ERROR") {
                say(started, &format!("serve: {line}"));
            }
        }
    });
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
    text.push_str("]\n");
    for ((id, name, _, model), url) in PROVIDERS.iter().zip(mocks) {
        text.push_str(&format!(
            "\n[providers.{id}]\nname = \"{name} (simulated)\"\nbase_url = \"{url}/v1\"\n\
             api_key_env = \"ISDOWN_DEMO_KEY\"\nprobe_model = \"{model}\"\n\n\
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
            (v == "ISDOWN_DEMO_KEY").then(|| DEMO_KEY.to_owned())
        })
        .unwrap();
        assert_eq!(config.monitors.len(), 3);
        assert_eq!(config.alerts.len(), 1);
    }
}

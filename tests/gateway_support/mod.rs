//! Shared by the gateway tests: in-process mock providers and an in-process gateway (the real
//! `gateway::Gateway` router on `web::run`), both on free ports of 127.0.0.1, so that tests can
//! run on paused tokio time. Nothing here sleeps: shutdown is a oneshot, start-up is a bound
//! listener.
#![allow(dead_code)]

use std::time::Duration;

use isdown::config::Config;
use isdown::gateway::breaker::BreakerPolicy;
use isdown::gateway::{Gateway, GatewayDeps};
use isdown::metrics::Metrics;
use isdown::mock::{MockOptions, Scenario, Style};
use isdown::monitor::health::{Health, PassiveReport, PassiveReporter};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A client that opens a connection per request. These tests jump tokio time forward by
/// minutes, past the listener's idle timeout: a pooled connection would be closed by the server
/// at the very instant the client reuses it, a race that real time makes rare and paused time
/// makes certain.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a plain client builds")
}

/// The key clients send to the gateway.
pub const CLIENT_KEY: &str = "gw-client-Zx81Lm";

/// The upstream key of provider `id` (what the mock must receive, and no client ever sees).
pub fn upstream_key(id: &str) -> String {
    format!("sk-upstream-{id}-Qw8ErTy2UiOp")
}

/// A second client key (`GW_KEY2`), for reload tests.
pub const CLIENT_KEY_2: &str = "gw-client-second-Pq73Vb";

/// Environment of the test configs: `GW_KEY`, `GW_KEY2` and one `KEY_<ID>` per provider.
pub fn env(name: &str) -> Option<String> {
    match name {
        "GW_KEY" => Some(CLIENT_KEY.to_owned()),
        "GW_KEY2" => Some(CLIENT_KEY_2.to_owned()),
        _ => name
            .strip_prefix("KEY_")
            .map(|id| upstream_key(&id.to_lowercase())),
    }
}

/// An in-process mock provider.
pub struct Mock {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    client: reqwest::Client,
}

impl Mock {
    pub async fn start(style: &str, scenario: &str) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let options = MockOptions {
            scenario: scenario.parse::<Scenario>().unwrap(),
            style: style.parse::<Style>().unwrap(),
            ..MockOptions::default()
        };
        tokio::spawn(async move {
            let _ = isdown::mock::run(listener, options, async {
                let _ = stopped.await;
            })
            .await;
        });
        Mock {
            url,
            stop: Some(stop),
            client: reqwest::Client::new(),
        }
    }

    pub async fn set(&self, scenario: &str) {
        let response = self
            .client
            .post(format!("{}/_mock/scenario", self.url))
            .json(&json!({ "scenario": scenario }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Chat requests received, oldest first.
    pub async fn chats(&self) -> Vec<Value> {
        let all: Value = self
            .client
            .get(format!("{}/_mock/requests", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("chat/completions"))
            .cloned()
            .collect()
    }

    pub async fn count(&self) -> usize {
        self.chats().await.len()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `[providers.ID]` pointing at a mock (OpenAI style, key in `KEY_<ID>`).
pub fn provider(id: &str, mock: &Mock) -> String {
    provider_with(id, mock, "")
}

/// As [`provider`], with extra lines (e.g. `context_window = 1000`).
pub fn provider_with(id: &str, mock: &Mock, extra: &str) -> String {
    format!(
        "[providers.{id}]\nname = \"{id}\"\nbase_url = \"{}/v1\"\nstyle = \"openai\"\n\
         api_key_env = \"KEY_{}\"\nprobe_model = \"m\"\n{extra}\n",
        mock.url,
        id.to_uppercase()
    )
}

/// A route `agent` over `targets` (provider ids, each forwarding the model).
pub fn route(targets: &[&str]) -> String {
    let list: Vec<String> = targets
        .iter()
        .map(|t| format!("{{ provider = \"{t}\" }}"))
        .collect();
    format!(
        "[[routes]]\nmodel = \"agent\"\ntargets = [{}]\n",
        list.join(", ")
    )
}

pub const GATEWAY: &str = "[gateway]\nclient_keys_env = [\"GW_KEY\"]\n";

/// A running in-process gateway.
pub struct Gw {
    pub url: String,
    pub client: reqwest::Client,
    pub live: mpsc::Receiver<PassiveReport>,
    pub metrics: Metrics,
    /// The gateway itself, for reloads.
    pub gateway: Gateway,
    stop: Option<oneshot::Sender<()>>,
}

/// A test config (keys from [`env`]).
pub fn config(text: &str) -> Config {
    Config::from_toml(text, "test.toml", &env).unwrap()
}

impl Gw {
    pub async fn start(config: &str) -> Gw {
        Gw::start_with(config, Health::default(), BreakerPolicy::default()).await
    }

    pub async fn start_with(config: &str, health: Health, breaker: BreakerPolicy) -> Gw {
        let config = self::config(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (reporter, live) = PassiveReporter::channel(1_024);
        let metrics = Metrics::new();
        let deps = GatewayDeps {
            health,
            reporter,
            metrics: metrics.clone(),
        };
        let gateway = Gateway::with_breaker(&config.gateway, deps, addr, breaker).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(isdown::web::run(listener, gateway.router(), async {
            let _ = stopped.await;
        }));
        Gw {
            url: format!("http://{addr}"),
            client: fresh_connections(),
            live,
            metrics,
            gateway,
            stop: Some(stop),
        }
    }

    /// `POST /v1/chat/completions` with the client key.
    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.chat_with(body, &[]).await
    }

    pub async fn chat_with(&self, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
        self.chat_as(CLIENT_KEY, body, headers).await
    }

    /// As [`Gw::chat_with`], with the client key `key`.
    pub async fn chat_as(
        &self,
        key: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(key)
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// Live verdicts reported so far, as (provider, verdict); other reports are left out.
    pub fn reported(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(report) = self.live.try_recv() {
            if let PassiveReport::Attempt(live) = report {
                out.push((live.provider, live.verdict.as_str().to_owned()));
            }
        }
        out
    }

    /// Every report so far (attempts, skips, recovery tests), oldest first.
    pub fn reports(&mut self) -> Vec<PassiveReport> {
        let mut out = Vec::new();
        while let Ok(report) = self.live.try_recv() {
            out.push(report);
        }
        out
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A plain chat request for the route `agent`.
pub fn ask(stream: bool) -> Value {
    json!({
        "model": "agent",
        "stream": stream,
        "messages": [{"role": "user", "content": "ping"}],
    })
}

/// `x-isdown-*` header value.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The SSE `data:` payloads of a streamed body.
pub fn events(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// The text content of a streamed chat body.
pub fn streamed_text(body: &str) -> String {
    events(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

pub fn secs(n: f64) -> Duration {
    Duration::from_secs_f64(n)
}

//! The gateway in-process: the real `gateway::Gateway` router on `web::run`, on a free port of
//! 127.0.0.1, in front of mocks started with [`super::mock_async`] — all on the test's runtime,
//! so that gateway tests run on paused tokio time — and what those tests build and read: keys,
//! provider and route TOML, chat requests, reports, SSE bodies. Nothing here sleeps: shutdown is
//! a oneshot, start-up is a bound listener.

use std::time::Duration;

use isdown::config::Config;
use isdown::gateway::breaker::BreakerPolicy;
use isdown::gateway::{Gateway, GatewayDeps};
use isdown::metrics::Metrics;
use isdown::mock::{MockServer, RecordedRequest};
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

/// The chat requests `mock` received, oldest first (what the gateway forwarded).
pub fn chats(mock: &MockServer) -> Vec<RecordedRequest> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("chat/completions"))
        .collect()
}

/// `[providers.ID]` pointing at a mock (OpenAI style, key in `KEY_<ID>`).
pub fn provider(id: &str, mock: &MockServer) -> String {
    provider_with(id, mock, "")
}

/// As [`provider`], with extra lines (e.g. `context_window = 1000`).
pub fn provider_with(id: &str, mock: &MockServer, extra: &str) -> String {
    format!(
        "[providers.{id}]\nname = \"{id}\"\nbase_url = \"{}\"\nstyle = \"openai\"\n\
         api_key_env = \"KEY_{}\"\nprobe_model = \"m\"\n{extra}\n",
        mock.v1(),
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

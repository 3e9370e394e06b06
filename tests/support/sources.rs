//! A local stand-in for the sources beside the probes: a provider's Statuspage v2 page,
//! OpenRouter's endpoint data and a community feed, on 127.0.0.1, each path answering what the
//! test sets — good documents, or any of the bad answers a real source gives (down, slow, a
//! redirect loop, HTML, garbage).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

/// What one path answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Json(Value),
    Rss(String),
    Status(u16),
    Html,
    Garbage,
    /// Nothing for a minute.
    Slow,
    Redirect(String),
}

type Table = Arc<Mutex<HashMap<String, Answer>>>;

/// The server, on its own thread and runtime (tests that use it are plain `#[test]`s).
pub struct Sources {
    pub url: String,
    table: Table,
}

impl Sources {
    pub fn start() -> Sources {
        let table: Table = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind sources");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = table.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = Router::new().fallback(answer).with_state(state);
                axum::serve(listener, app).await.expect("serve sources");
            });
        });
        Sources { url, table }
    }

    /// Makes `path` answer `answer` from now on.
    pub fn set(&self, path: &str, answer: Answer) {
        self.table
            .lock()
            .expect("table")
            .insert(path.to_owned(), answer);
    }

    /// The Statuspage root to configure as `status_url`.
    pub fn status_root(&self) -> String {
        format!("{}/status", self.url)
    }

    /// The aggregator root to configure as `[corroboration] aggregator_url`.
    pub fn aggregator_root(&self) -> String {
        format!("{}/or/api/v1", self.url)
    }

    pub fn summary(&self, answer: Answer) {
        self.set("/status/api/v2/summary.json", answer);
    }

    pub fn incidents(&self, answer: Answer) {
        self.set("/status/api/v2/incidents.json", answer);
    }

    pub fn endpoints(&self, model: &str, answer: Answer) {
        self.set(&format!("/or/api/v1/models/{model}/endpoints"), answer);
    }
}

async fn answer(State(table): State<Table>, uri: Uri) -> Response {
    let found = table.lock().expect("table").get(uri.path()).cloned();
    match found {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Answer::Json(value)) => (
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
        Some(Answer::Rss(text)) => {
            ([(header::CONTENT_TYPE, "application/rss+xml")], text).into_response()
        }
        Some(Answer::Status(code)) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(Answer::Html) => (
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>",
        )
            .into_response(),
        Some(Answer::Garbage) => vec![0u8, 159, 146, 150, 7, 255, 12, 33].into_response(),
        Some(Answer::Slow) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
        Some(Answer::Redirect(to)) => Redirect::temporary(&to).into_response(),
    }
}

// === documents ===

/// A Statuspage v2 incident (`created` RFC 3339) on the "Open API" component.
pub fn incident(
    id: &str,
    name: &str,
    impact: &str,
    created: &str,
    resolved: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "name": name,
        "status": if resolved.is_some() { "resolved" } else { "investigating" },
        "impact": impact,
        "created_at": created,
        "updated_at": created,
        "started_at": created,
        "resolved_at": resolved,
        "shortlink": format!("https://stspg.io/{id}"),
        "incident_updates": [],
        "components": [{"id": "c1", "name": "Open API", "status": "major_outage"}],
    })
}

/// A Statuspage v2 summary whose "Open API" component has `status`.
pub fn summary(indicator: &str, status: &str, incidents: Vec<Value>) -> Value {
    json!({
        "page": {"id": "10y9y5wx5xh3", "name": "Moonshot", "url": "https://status.moonshot.cn",
                 "time_zone": "Asia/Shanghai", "updated_at": "2026-06-19T12:50:00+08:00"},
        "status": {"indicator": indicator, "description": "as the page says"},
        "components": [
            {"id": "c1", "name": "Open API", "status": status, "group": false},
            {"id": "c2", "name": "Website", "status": "operational", "group": false},
        ],
        "incidents": incidents,
        "scheduled_maintenances": [],
    })
}

/// OpenRouter's endpoints of a model: (provider name, uptime over 30 min).
pub fn endpoints(endpoints: &[(&str, f64)]) -> Value {
    json!({"data": {
        "id": "moonshotai/kimi-k2.6",
        "name": "Kimi K2.6",
        "endpoints": endpoints.iter().map(|(name, uptime)| json!({
            "name": name,
            "provider_name": name,
            "tag": name.to_lowercase().replace(' ', ""),
            "status": 0,
            "uptime_last_30m": uptime,
            "uptime_last_5m": uptime,
            "uptime_last_1d": 99.0,
        })).collect::<Vec<_>>(),
    }})
}

/// An RSS feed of posts (title, age).
pub fn rss(posts: &[(&str, Duration)]) -> String {
    let now = std::time::SystemTime::now();
    let items: String = posts
        .iter()
        .enumerate()
        .map(|(n, (title, age))| {
            format!(
                "<item><title>{title}</title><guid>post-{n}</guid><pubDate>{}</pubDate></item>",
                httpdate::fmt_http_date(now - *age)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>search</title>{items}</channel></rss>"
    )
}

/// RFC 3339 of now minus `ago`.
pub fn ago(ago: Duration) -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now() - ago).to_string()
}

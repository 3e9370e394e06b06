//! The sources beside the probes, on a [`Receiver`]: a provider's Statuspage v2 page,
//! OpenRouter's endpoint data and a community feed — the paths isdown reads, and the documents
//! they answer. Each path answers what the test sets: good documents, or any of the bad answers a
//! real source gives (down, slow, a redirect loop, HTML, garbage); every other path is a 404.

use std::time::Duration;

use serde_json::{Value, json};

pub use super::receiver::{Answer, Receiver};

/// A receiver with nothing set yet: every path is a 404.
pub fn start() -> Receiver {
    Receiver::start(Answer::Status(404))
}

impl Receiver {
    /// The Statuspage root to configure as `status_url`.
    pub fn status_root(&self) -> String {
        self.url("/status")
    }

    /// The aggregator root to configure as `[corroboration] aggregator_url`.
    pub fn aggregator_root(&self) -> String {
        self.url("/or/api/v1")
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

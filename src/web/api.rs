//! JSON API (`/api/v1/...`), `/healthz` and `/metrics`. Field names are a contract (README).
//!
//! `/api/v1/status` is drawn here ([`status_json`]) but rendered on change and served from
//! memory by `views.rs`; one monitor's JSON and the incident list read the store per request,
//! a few at a time. Every error text and sample passes [`SiteInfo::public_text`], so
//! `hide_urls` holds here as on the pages.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::AppState;
use super::freshness::Freshness;
use super::page::MonitorHistory;
use super::rendered;
use super::site::SiteInfo;
use crate::monitor::health::{HealthSnapshot, Liveness, MonitorHealth, StoreBacklog};
use crate::peers::Duty;
use crate::store::{Incident, IncidentFilter, IncidentState, ResultRecord, StoreError};
use crate::time::{Millis, rfc3339};

/// `/healthz` answers within this even when the database does not: a health check that hangs
/// on a wedged disk tells an orchestrator nothing.
const HEALTH_STORE_WAIT: Duration = Duration::from_secs(2);

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/monitors/{id}", get(monitor))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/admin/reload", post(reload))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json_once(status, &json!({ "error": { "message": message.into() } }))
}

/// Every JSON answer of this module goes out through `rendered::once`.
fn json_once(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => rendered::once(status, rendered::JSON_ONCE, body),
        Err(e) => {
            tracing::error!(error = %e, "JSON answer could not be written");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn store_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "store query failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is unavailable",
    )
}

/// This instance (`instance`, `region`), the members seen alive at the last lease round, and
/// what this instance does alone: the monitors it probes for its region and whether it sends
/// alerts. Alone on its store (SQLite), it is the only member and holds everything.
async fn peers(State(app): State<AppState>) -> Response {
    let view = app.health.snapshot();
    let me = app.peers.me();
    let held = app
        .peers
        .held_monitors(view.monitors.iter().map(|m| m.id.as_str()));
    let members: Vec<Value> = app
        .peers
        .members()
        .iter()
        .map(|m| json!({ "instance": m.instance, "region": m.region }))
        .collect();
    json_once(
        StatusCode::OK,
        &json!({
            "instance": me.instance,
            "region": me.region,
            "shared": app.peers.held().borrow().shared(),
            "members": members,
            "held": {
                "monitors": held,
                "alerts": app.peers.held().borrow().does(Duty::Alerts),
                "queue": app.peers.held().borrow().does(Duty::Queue),
            },
        }),
    )
}

/// 200 while isdown itself works (a failing alert channel is `degraded`, not down: restarting
/// isdown would not fix Slack); 503 (`error`) when the database is unavailable or the monitor
/// loop has stalled (no heartbeat for 30 s): restarting may fix either, and an orchestrator
/// should know.
async fn healthz(State(app): State<AppState>) -> Response {
    let view = app.health.snapshot();
    let now = app.clock.now();
    let liveness = view.liveness(now);
    let store = async {
        let backlog = app.store.outbox_backlog().await?;
        let bytes = app.store.size_bytes().await?;
        Ok::<_, StoreError>((backlog, bytes))
    };
    let stored = match tokio::time::timeout(HEALTH_STORE_WAIT, store).await {
        Ok(Ok(read)) => Some(read),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check: store unavailable");
            None
        }
        Err(_) => {
            tracing::error!("health check: the store did not answer in time");
            None
        }
    };
    let monitor_loop = monitor_loop_json(liveness, now);
    let stalled = matches!(liveness, Liveness::Stalled { .. });
    let Some((backlog, bytes)) = stored else {
        let mut reasons = vec!["database unavailable"];
        if stalled {
            reasons.push("monitor loop stalled");
        }
        return json_once(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "status": "error",
                "reason": reasons.join("; "),
                "monitor_loop": monitor_loop,
                "database": backlog_json(&view.store),
            }),
        );
    };
    let mut alerts = serde_json::Map::new();
    for (name, status) in app.alerts.snapshot() {
        let queued = backlog.iter().find(|b| b.channel == name);
        alerts.insert(
            name,
            json!({
                "kind": status.kind,
                "state": status.state,
                "consecutive_failures": status.consecutive_failures,
                "last_error": status.last_error,
                "last_delivered_at": status.last_delivered_at.map(rfc3339),
                "pending": queued.map_or(0, |b| b.pending),
                "oldest_pending_at": queued.and_then(|b| b.oldest_pending_at).map(rfc3339),
                "given_up": queued.map_or(0, |b| b.failed),
            }),
        );
    }
    let failing = app.alerts.failing();
    let quarantined: serde_json::Map<String, Value> = view
        .quarantined
        .iter()
        .map(|(id, q)| (id.clone(), quarantine_json(q)))
        .collect();
    let (code, status) = if stalled {
        (StatusCode::SERVICE_UNAVAILABLE, "error")
    } else if failing.is_empty() && quarantined.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::OK, "degraded")
    };
    let mut body = json!({
        "status": status,
        "monitors": view.monitors.len(),
        "monitor_loop": monitor_loop,
        "database_bytes": bytes,
        "network_down": view.network_incident.is_some(),
        "failing_alert_channels": failing,
        "alerts": alerts,
        "quarantined_states": quarantined,
        "database": backlog_json(&view.store),
    });
    if stalled {
        body["reason"] = json!("monitor loop stalled");
    }
    json_once(code, &body)
}

/// What waits for the database: `{"away_since","waiting_incident_writes","dropped_notes",
/// "waiting_results","dropped_results"}` (`away_since` null while it answers).
fn backlog_json(backlog: &StoreBacklog) -> Value {
    json!({
        "away_since": backlog.away_since.map(rfc3339),
        "waiting_incident_writes": backlog.waiting_incident_writes,
        "dropped_notes": backlog.dropped_notes,
        "waiting_results": backlog.waiting_results,
        "dropped_results": backlog.dropped_results,
    })
}

/// `{"state":"running","heartbeat_at":"…","seconds_since_heartbeat":0}`.
fn monitor_loop_json(liveness: Liveness, now: Millis) -> Value {
    let mut out = serde_json::to_value(liveness).unwrap_or_else(|_| json!({}));
    let heartbeat = match liveness {
        Liveness::Starting => None,
        Liveness::Running { heartbeat_at } | Liveness::Stalled { heartbeat_at } => {
            Some(heartbeat_at)
        }
    };
    out["heartbeat_at"] = json!(heartbeat.map(rfc3339));
    out["seconds_since_heartbeat"] = json!(heartbeat.map(|at| (now - at).max(0) / 1000));
    out
}

async fn metrics(State(app): State<AppState>) -> Response {
    rendered::streamed(StatusCode::OK, rendered::METRICS_ONCE, app.metrics.chunks())
}

/// `/api/v1/status`: the contract fields, plus `updated_at` (the newest probe result, when the
/// monitor last updated the data) and `stale` (the monitor loop has stalled). Serialized as it
/// is walked, without a JSON tree: a tree held a B-tree node and a string per key for every
/// monitor during every render (BENCHMARKS.md "Memory per monitor").
pub fn status_json<'a>(
    health: &'a HealthSnapshot,
    histories: &'a [Arc<MonitorHistory>],
    freshness: Freshness,
) -> impl Serialize + 'a {
    #[derive(Serialize)]
    struct Status<'a> {
        status: &'static str,
        network_down: bool,
        updated_at: Option<String>,
        stale: bool,
        monitors: Listed<'a>,
    }
    Status {
        status: health.overall(),
        network_down: health.network_incident.is_some(),
        updated_at: freshness.updated_at.map(rfc3339),
        stale: freshness.stale,
        monitors: Listed { health, histories },
    }
}

/// The monitors of `/api/v1/status`, one object each as the list is written.
struct Listed<'a> {
    health: &'a HealthSnapshot,
    histories: &'a [Arc<MonitorHistory>],
}

impl Serialize for Listed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Item<'a> {
            #[serde(flatten)]
            head: MonitorHead<'a>,
            uptime: &'a crate::store::Uptime,
            regions: BTreeMap<String, RegionJson>,
        }
        s.collect_seq(
            self.health
                .monitors
                .iter()
                .zip(self.histories)
                .map(|(m, history)| Item {
                    head: MonitorHead::of(m),
                    uptime: &history.uptime,
                    regions: regions_json(self.health, m),
                }),
        )
    }
}

pub fn result_json(site: &SiteInfo, r: &ResultRecord) -> Value {
    json!({
        "at": rfc3339(r.at),
        "verdict": r.verdict,
        "blame": r.blame,
        "status": r.status,
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "explanation": r.explanation.as_deref().map(|e| site.public_text(e)),
        "region": r.region,
    })
}

async fn monitor(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let view = app.health.snapshot();
    let Some(m) = view.monitors.iter().find(|m| m.id == id) else {
        return error(StatusCode::NOT_FOUND, format!("no monitor \"{id}\""));
    };
    let _turn = match app.views.store_read().await {
        Ok(permit) => permit,
        Err(busy) => return busy,
    };
    let now = app.clock.now();
    let store = &app.store;
    let site = app.site.get();
    let filter = IncidentFilter {
        state: None,
        monitor: Some(id.clone()),
        limit: 20,
        offset: 0,
    };
    let (uptime, recent, latency, incidents) = match tokio::try_join!(
        store.uptime(&id, now),
        store.recent_results(&id, 50),
        store.daily_latency(&id, now, 30),
        store.incidents(&filter),
    ) {
        Ok(all) => all,
        Err(e) => return store_error(e),
    };
    let latency: Vec<Value> = latency
        .iter()
        .map(|d| {
            json!({
                "day": rfc3339(d.day),
                "p50_ms": d.p50_ms,
                "p95_ms": d.p95_ms,
                "samples": d.samples,
            })
        })
        .collect();
    json_once(
        StatusCode::OK,
        &monitor_json(
            m,
            json!({
            "explanation": m.explanation.as_deref().map(|e| site.public_text(e)),
            "advice": m.advice.as_deref().map(|a| site.public_text(a)),
            "uptime": uptime,
            "latency_daily": latency,
            "recent_results": recent.iter().map(|r| result_json(&site, r)).collect::<Vec<_>>(),
            "incidents": incidents.iter().map(|i| incident_json(&site, i, now)).collect::<Vec<_>>(),
            "live": view.passive.get(&m.provider),
            "quarantined": view.quarantined.get(&m.id).map(quarantine_json),
            "regions": regions_json(&view, m),
            }),
        ),
    )
}

/// What names a monitor and where it stands, the same in the list and on its own page.
#[derive(Serialize)]
struct MonitorHead<'a> {
    id: &'a str,
    provider: &'a str,
    model: Option<&'a str>,
    probe: &'a str,
    state: crate::monitor::machine::MonitorState,
    verdict: Option<crate::verdict::Verdict>,
    since: Option<String>,
}

impl MonitorHead<'_> {
    fn of(m: &MonitorHealth) -> MonitorHead<'_> {
        MonitorHead {
            id: &m.id,
            provider: &m.provider,
            model: m.model.as_deref(),
            probe: &m.probe,
            state: m.state,
            verdict: m.verdict,
            since: m.since.map(rfc3339),
        }
    }
}

/// The monitor's [`MonitorHead`] with the `more` fields of its own page.
fn monitor_json(m: &MonitorHealth, more: Value) -> Value {
    let mut all = serde_json::to_value(MonitorHead::of(m)).unwrap_or_else(|_| json!({}));
    if let (Value::Object(all), Value::Object(more)) = (&mut all, more) {
        all.extend(more);
    }
    all
}

/// One region's view of a monitor.
#[derive(Serialize)]
struct RegionJson {
    state: String,
    verdict: Option<String>,
    since: Option<String>,
}

/// `{"REGION": {"state", "verdict", "since"}}`: each region's view of the monitor.
fn regions_json(health: &HealthSnapshot, m: &MonitorHealth) -> BTreeMap<String, RegionJson> {
    health
        .regions_of(m)
        .into_iter()
        .map(|(region, view)| {
            let json = RegionJson {
                state: view.state,
                verdict: view.verdict,
                since: view.since.map(rfc3339),
            };
            (region, json)
        })
        .collect()
}

/// A state set aside at start: when and why (never its content).
fn quarantine_json(q: &crate::monitor::health::Quarantine) -> Value {
    json!({ "at": rfc3339(q.at), "reason": q.reason })
}

pub fn incident_json(site: &SiteInfo, i: &Incident, now: Millis) -> Value {
    let end = i.ended_at.unwrap_or(now);
    json!({
        "id": i.id,
        "monitor": i.monitor,
        "provider": i.provider,
        "kind": i.kind,
        "verdict": i.verdict,
        "started_at": rfc3339(i.started_at),
        "ended_at": i.ended_at.map(rfc3339),
        "duration_s": (end - i.started_at).max(0) / 1000,
        "failed_probes": i.failed_probes,
        "first_error": i.first_error.as_deref().map(|e| site.public_text(e)),
        "last_error": i.last_error.as_deref().map(|e| site.public_text(e)),
        "opened_by": i.opened_by,
        "official": official_json(i),
    })
}

/// The provider's acknowledgement (a contract: `null` until its page posted a matching
/// incident; `lead_s` = `acknowledged_at` − `started_at` as printed, in whole seconds, so a
/// script subtracting the two fields gets the same number; negative when the page was first).
fn official_json(i: &Incident) -> Value {
    match &i.official {
        Some(o) => json!({
            "title": o.title,
            "url": o.url,
            "acknowledged_at": rfc3339(o.acknowledged_at),
            "resolved_at": o.resolved_at.map(rfc3339),
            "lead_s": o.acknowledged_at.div_euclid(1000) - i.started_at.div_euclid(1000),
        }),
        None => Value::Null,
    }
}

#[derive(Debug, Deserialize)]
struct IncidentQuery {
    state: Option<String>,
    monitor: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

#[derive(Serialize)]
struct IncidentPage {
    incidents: Vec<Value>,
    page: u32,
    per_page: u32,
}

/// 50 per page by default, at most 500: enough for a dashboard, small enough to be instant.
const PER_PAGE_DEFAULT: u32 = 50;
const PER_PAGE_MAX: u32 = 500;

async fn incidents(State(app): State<AppState>, Query(q): Query<IncidentQuery>) -> Response {
    let state = match q.state.as_deref() {
        None | Some("all") => None,
        Some("open") => Some(IncidentState::Open),
        Some("closed") => Some(IncidentState::Closed),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state must be open, closed or all, not \"{other}\""),
            );
        }
    };
    let page = q.page.unwrap_or(1).max(1);
    let per_page = q
        .per_page
        .unwrap_or(PER_PAGE_DEFAULT)
        .clamp(1, PER_PAGE_MAX);
    let filter = IncidentFilter {
        state,
        monitor: q.monitor,
        limit: per_page,
        offset: (page - 1).saturating_mul(per_page),
    };
    let _turn = match app.views.store_read().await {
        Ok(permit) => permit,
        Err(busy) => return busy,
    };
    match app.store.incidents(&filter).await {
        Ok(list) => {
            let now = app.clock.now();
            let site = app.site.get();
            json_once(
                StatusCode::OK,
                &IncidentPage {
                    incidents: list.iter().map(|i| incident_json(&site, i, now)).collect(),
                    page,
                    per_page,
                },
            )
        }
        Err(e) => store_error(e),
    }
}

/// Constant-time comparison: the token check must not leak its length or prefix by timing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn reload(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &app.admin_token else {
        return error(
            StatusCode::NOT_FOUND,
            "admin endpoints are disabled: set [serve] admin_token_env",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same(presented.as_bytes(), token.expose_secret().as_bytes()) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong admin token");
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    if app.reload.send(tx).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match rx.await {
        Ok(Ok(())) => json_once(StatusCode::OK, &json!({ "reloaded": true })),
        Ok(Err(message)) => error(StatusCode::BAD_REQUEST, message),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}

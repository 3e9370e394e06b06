//! Tests of the sources: the parsers against documented shapes and bad input (`parsers`),
//! reading over real HTTP from servers on 127.0.0.1 that misbehave in every listed way
//! (`fetching`), and the pure judgements — community spikes and official acknowledgements
//! (`judging`).

mod fetching;
mod judging;
mod parsers;

use serde_json::{Value, json};

/// 2026-06-19T04:50:00Z.
pub(super) const T0: crate::time::Millis = 1_781_844_600_000;

/// A Statuspage v2 incident object; `created` and `resolved` as RFC 3339.
pub(super) fn sp_incident(
    id: &str,
    name: &str,
    impact: &str,
    created: &str,
    resolved: Option<&str>,
    components: &[(&str, &str)],
) -> Value {
    json!({
        "id": id,
        "name": name,
        "status": if resolved.is_some() { "resolved" } else { "investigating" },
        "impact": impact,
        "created_at": created,
        "updated_at": created,
        "monitoring_at": null,
        "resolved_at": resolved,
        "started_at": created,
        "shortlink": format!("https://stspg.io/{id}"),
        "page_id": "10y9y5wx5xh3",
        "incident_updates": [],
        "components": components.iter().map(|(id, name)| json!({
            "id": id, "name": name, "status": "major_outage"
        })).collect::<Vec<_>>(),
        "reminder_intervals": null,
    })
}

/// A Statuspage v2 `summary.json` with components (id, name, status) and incidents.
pub(super) fn sp_summary(
    indicator: &str,
    components: &[(&str, &str, &str)],
    incidents: Vec<Value>,
) -> Value {
    json!({
        "page": {
            "id": "10y9y5wx5xh3",
            "name": "Moonshot",
            "url": "https://status.moonshot.cn",
            "time_zone": "Asia/Shanghai",
            "updated_at": "2026-06-19T12:50:00.000+08:00",
        },
        "status": {"indicator": indicator, "description": match indicator {
            "none" => "All Systems Operational",
            "minor" => "Minor Service Outage",
            "major" => "Partial System Outage",
            _ => "Major Service Outage",
        }},
        "components": components.iter().map(|(id, name, status)| json!({
            "id": id, "name": name, "status": status,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2026-06-19T04:50:00Z",
            "position": 1, "description": null, "showcase": false, "start_date": null,
            "group_id": null, "page_id": "10y9y5wx5xh3", "group": false,
            "only_show_if_degraded": false,
        })).collect::<Vec<_>>(),
        "incidents": incidents,
        "scheduled_maintenances": [],
    })
}

/// OpenRouter's endpoints document for a model: (provider name, tag, status, uptime 30 min).
pub(super) fn or_endpoints(model: &str, endpoints: &[(&str, &str, i64, Option<f64>)]) -> Value {
    json!({"data": {
        "id": model,
        "name": "Kimi K2.6",
        "created": 1_781_000_000,
        "description": "…",
        "architecture": {"tokenizer": "Other", "instruct_type": null, "modality": "text->text",
                         "input_modalities": ["text"], "output_modalities": ["text"]},
        "endpoints": endpoints.iter().map(|(name, tag, status, uptime)| json!({
            "name": format!("{name} | {model}"),
            "model_name": "Kimi K2.6",
            "context_length": 262_144,
            "pricing": {"prompt": "0.0000006", "completion": "0.0000025"},
            "provider_name": name,
            "tag": tag,
            "quantization": "fp8",
            "max_completion_tokens": null,
            "max_prompt_tokens": null,
            "supported_parameters": ["tools", "temperature"],
            "status": status,
            "uptime_last_30m": uptime,
            "uptime_last_5m": uptime,
            "uptime_last_1d": 99.1,
            "supports_implicit_caching": false,
            "latency_last_30m": {"p50": 0.8, "p75": 1.1, "p90": 1.9, "p99": 4.0},
            "throughput_last_30m": {"p50": 40.0, "p75": 30.0, "p90": 20.0, "p99": 9.0},
        })).collect::<Vec<_>>(),
    }})
}

//! The aggregator's view: OpenRouter's public per-model endpoint list
//! (`GET /api/v1/models/{author}/{slug}/endpoints`), which gives, for each upstream provider
//! serving the model, OpenRouter's routing `status` and its measured uptime over the last
//! 5 minutes, 30 minutes and day.
//!
//! That is what tells an aggregator outage from a provider outage from the outside: isdown's
//! probe of Kimi fails while OpenRouter's Moonshot endpoint keeps 99% uptime — the route from
//! here is the problem; isdown's probe through OpenRouter fails while every upstream is healthy
//! — OpenRouter itself is. Pure functions over bytes; no I/O.

use serde::Deserialize;

use super::{AggregatorSource, ParseError, json_error};

/// Below this uptime (percent, last 30 minutes) an endpoint is degraded: one request in twenty
/// failing is already felt by an agent.
pub const DEGRADED_BELOW: f64 = 95.0;
/// Below this it is down: most requests fail.
pub const DOWN_BELOW: f64 = 50.0;

/// One upstream endpoint of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// e.g. "Moonshot AI".
    pub provider_name: String,
    /// e.g. "moonshotai" or "deepinfra/fp8".
    pub tag: String,
    /// OpenRouter's routing status: 0 normal, negative when it is deprioritised.
    pub status: i64,
    /// Percent, 0–100; `None` when OpenRouter has no data.
    pub uptime_last_5m: Option<f64>,
    pub uptime_last_30m: Option<f64>,
    pub uptime_last_1d: Option<f64>,
}

/// How an endpoint, or a model across its endpoints, looks from the aggregator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    Operational,
    Degraded,
    Down,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Operational => "operational",
            View::Degraded => "degraded",
            View::Down => "down",
        }
    }
}

impl Endpoint {
    /// Down below [`DOWN_BELOW`], degraded below [`DEGRADED_BELOW`] or when OpenRouter
    /// deprioritises it, else operational. Without uptime data only the status speaks.
    pub fn view(&self) -> View {
        match self.uptime_last_30m {
            Some(u) if u < DOWN_BELOW => View::Down,
            Some(u) if u < DEGRADED_BELOW => View::Degraded,
            _ if self.status < 0 => View::Degraded,
            _ => View::Operational,
        }
    }

    /// Whether `wanted` (a configured name or tag) names this endpoint: its provider name, its
    /// whole tag, or the tag's provider part (`deepinfra` for `deepinfra/fp8`).
    fn is(&self, wanted: &str) -> bool {
        let wanted = wanted.trim();
        wanted.eq_ignore_ascii_case(&self.provider_name)
            || wanted.eq_ignore_ascii_case(&self.tag)
            || self
                .tag
                .split('/')
                .next()
                .is_some_and(|t| wanted.eq_ignore_ascii_case(t))
    }
}

#[derive(Deserialize)]
struct RawDoc {
    data: RawModel,
}

#[derive(Deserialize)]
struct RawModel {
    endpoints: Vec<RawEndpoint>,
}

#[derive(Deserialize)]
struct RawEndpoint {
    provider_name: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(default)]
    uptime_last_5m: Option<f64>,
    #[serde(default)]
    uptime_last_30m: Option<f64>,
    #[serde(default)]
    uptime_last_1d: Option<f64>,
}

const ENDPOINTS: &str = "OpenRouter endpoints JSON";

/// Reads OpenRouter's `{"data":{"endpoints":[…]}}`.
pub fn parse_openrouter_endpoints(bytes: &[u8]) -> Result<Vec<Endpoint>, ParseError> {
    let raw: RawDoc =
        serde_json::from_slice(bytes).map_err(|e| json_error(bytes, ENDPOINTS, &e))?;
    raw.data
        .endpoints
        .into_iter()
        .map(|e| {
            // Documented as an integer (0, -1, -2, -3, -5, -10); an old example shows a word.
            let status = match &e.status {
                None | Some(serde_json::Value::Null) => 0,
                Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(serde_json::Value::String(s)) if s == "default" => 0,
                Some(other) => {
                    return Err(ParseError::Unknown {
                        field: "endpoint status",
                        value: other.to_string().chars().take(40).collect(),
                    });
                }
            };
            let percent = |v: Option<f64>| v.filter(|u| u.is_finite()).map(|u| u.clamp(0.0, 100.0));
            Ok(Endpoint {
                tag: e.tag.unwrap_or_default(),
                provider_name: e.provider_name,
                status,
                uptime_last_5m: percent(e.uptime_last_5m),
                uptime_last_30m: percent(e.uptime_last_30m),
                uptime_last_1d: percent(e.uptime_last_1d),
            })
        })
        .collect()
}

/// What the aggregator says about this provider.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatorReading {
    pub model: String,
    /// The endpoint standing for this provider, when one is configured.
    pub endpoint: Option<Endpoint>,
    /// The provider's endpoint's view, or the model's across endpoints (the best of them: one
    /// healthy upstream is enough for the model to be served).
    pub view: View,
    /// Endpoints of the model (the provider's own included) and how many are operational.
    pub endpoints: usize,
    pub operational: usize,
}

/// The reading for `source` from the model's endpoints. A configured endpoint the model does
/// not list is an error naming the ones it does.
pub fn aggregator_reading(
    endpoints: &[Endpoint],
    source: &AggregatorSource,
) -> Result<AggregatorReading, ParseError> {
    let operational = endpoints
        .iter()
        .filter(|e| e.view() == View::Operational)
        .count();
    let (endpoint, view) = match &source.endpoint {
        Some(wanted) => {
            let found = endpoints.iter().find(|e| e.is(wanted)).ok_or_else(|| {
                let listed: Vec<&str> = endpoints
                    .iter()
                    .take(12)
                    .map(|e| e.provider_name.as_str())
                    .collect();
                ParseError::Malformed {
                    expected: "a model served by the configured provider",
                    detail: format!(
                        "{} lists no \"{wanted}\" endpoint for {}; it lists {}",
                        super::AGGREGATOR_NAME,
                        source.model,
                        if listed.is_empty() {
                            "none".to_owned()
                        } else {
                            listed.join(", ")
                        }
                    ),
                }
            })?;
            (Some(found.clone()), found.view())
        }
        None => {
            let best = endpoints.iter().map(Endpoint::view).min().ok_or_else(|| {
                ParseError::Malformed {
                    expected: "a model with endpoints",
                    detail: format!("{} lists no endpoint", source.model),
                }
            })?;
            (None, best)
        }
    };
    Ok(AggregatorReading {
        model: source.model.clone(),
        endpoint,
        view,
        endpoints: endpoints.len(),
        operational,
    })
}

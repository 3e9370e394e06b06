//! The request lint in the gateway, opt-in per route (`[[routes]] lint = "warn" | "reject"`).
//!
//! It owns one question: what does the lint (`crate::lint`, which decides everything about a
//! request) find in this request *wherever the route sends it*? Each distinct target of the
//! route is linted with the body it would get (its fixes and parameters applied, its model
//! name), and a finding counts only when every target yields it: a problem that failing over
//! avoids is not the request's. The request path calls [`findings`] once per request (nothing
//! when the route's lint is off) and [`mark`] on the answer; the decision and breaker read
//! whether a request is flagged. No I/O.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use serde_json::{Map, Value};

use super::route::Route;
use super::settings::LintMode;
use super::upstream::Upstream;
use crate::lint::{self, Finding, Target, Wire};

/// Response header naming the findings of a forwarded request (`lint = "warn"`).
pub const HEADER_LINT: &str = "x-isdown-lint";
const LINT: HeaderName = HeaderName::from_static(HEADER_LINT);

/// 2 KiB: room for a dozen findings; proxies commonly refuse headers over 8 KiB.
const HEADER_LIMIT: usize = 2048;

/// The findings every target of `route` yields for `request` (whose `model` was taken out:
/// `model` is the requested name). Empty when the route does not lint.
pub fn findings(
    route: &Route,
    upstreams: &[Upstream],
    request: &Map<String, Value>,
    model: &str,
) -> Vec<Finding> {
    if route.lint == LintMode::Off {
        return Vec::new();
    }
    let mut common: Option<Vec<Finding>> = None;
    for target in &route.targets {
        let up = &upstreams[target.upstream];
        let sent_as = target.model_for(model);
        let mut body = crate::gateway::fixes::fixed(up.fixes(), request);
        if !target.params.is_empty() {
            let copy = body.to_mut();
            for (key, value) in &target.params {
                copy.insert(key.clone(), value.clone());
            }
        }
        let facts = Target {
            provider: &up.id,
            model: Some(sent_as),
            // The gateway routes on the provider's window for every model it sends there.
            configured_window: up.context_window.map(|window| (sent_as, window)),
            wire: Wire::Chat,
        };
        let found = lint::lint_map(&body, &facts);
        common = Some(match common {
            None => found,
            Some(before) => before
                .into_iter()
                .filter(|f| found.iter().any(|g| g.path == f.path && g.rule == f.rule))
                .collect(),
        });
    }
    common.unwrap_or_default()
}

/// Adds the `x-isdown-lint` header to a forwarded request's answer: `PATH RULE` pairs joined
/// by `; `, cut at [`HEADER_LIMIT`] bytes.
pub fn mark(response: &mut Response, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let mut text = String::new();
    for finding in findings {
        let item = format!("{} {}", finding.path, finding.rule);
        if text.len() + item.len() + 2 > HEADER_LIMIT {
            text.push_str("; …");
            break;
        }
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&item);
    }
    // Paths may hold non-ASCII property names: those are escaped, never dropped.
    let ascii: String = text
        .chars()
        .flat_map(|c| {
            let plain = c.is_ascii() && !c.is_ascii_control();
            let escaped: Vec<char> = if plain {
                vec![c]
            } else {
                c.escape_unicode().collect()
            };
            escaped
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&ascii) {
        response.headers_mut().insert(LINT, value);
    }
}

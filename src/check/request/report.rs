//! What people and scripts read after `isdown check --request`: the `--json` object (a
//! contract: `"findings": [{"path", "rule", "message", "fix"}]`, README "Is it my request?")
//! and the human text. Formatting only; the decisions are `RequestReport`'s.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Checked, Conclusion, Narrowing, RequestReport};
use crate::lint::Finding;
use crate::probe::ProbeResult;
use crate::verdict::{Blame, Verdict};

#[derive(Serialize)]
struct JsonAnswer<'a> {
    verdict: Verdict,
    blame: Option<Blame>,
    status: Option<u16>,
    latency_ms: Option<f64>,
    explanation: &'a str,
    advice: &'a str,
}

impl<'a> JsonAnswer<'a> {
    fn of(result: &'a ProbeResult) -> JsonAnswer<'a> {
        JsonAnswer {
            verdict: result.diagnosis.verdict,
            blame: result.diagnosis.blame,
            status: result.diagnosis.status,
            latency_ms: result.latency.map(|l| (l.as_secs_f64() * 1000.0).round()),
            explanation: &result.diagnosis.explanation,
            advice: &result.diagnosis.advice,
        }
    }
}

#[derive(Serialize)]
struct JsonNarrowing<'a> {
    announced_requests: usize,
    tokens_per_request: u64,
    requests: usize,
    steps: &'a [String],
    part: Option<String>,
    out_of_budget: bool,
    inconclusive: bool,
}

#[derive(Serialize)]
struct JsonRequest<'a> {
    origin: &'a str,
    model: Option<&'a str>,
    findings: &'a [Finding],
    live: Option<JsonAnswer<'a>>,
    explained_by: &'a [String],
    narrowing: Option<JsonNarrowing<'a>>,
    not_sent: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    provider: &'a str,
    /// Every finding of every request, in order.
    findings: Vec<&'a Finding>,
    verdict: &'static str,
    ping: Option<JsonAnswer<'a>>,
    requests: Vec<JsonRequest<'a>>,
    requests_sent: usize,
    max_requests: usize,
    summary: String,
}

fn narrowing_json(narrowing: &Narrowing) -> JsonNarrowing<'_> {
    JsonNarrowing {
        announced_requests: narrowing.announced_requests,
        tokens_per_request: narrowing.tokens_per_request,
        requests: narrowing.reduced.requests,
        steps: &narrowing.reduced.steps,
        part: narrowing.reduced.part.as_ref().map(|p| p.path.to_string()),
        out_of_budget: narrowing.reduced.out_of_budget,
        inconclusive: narrowing.reduced.inconclusive,
    }
}

/// The `--json` document.
pub fn json(report: &RequestReport) -> String {
    let document = JsonReport {
        provider: &report.provider,
        findings: report.findings().collect(),
        verdict: report.conclusion().as_str(),
        ping: report.ping.as_ref().map(JsonAnswer::of),
        requests: report
            .requests
            .iter()
            .map(|r: &Checked| JsonRequest {
                origin: &r.origin,
                model: r.model.as_deref(),
                findings: &r.findings,
                live: r.live.as_ref().map(JsonAnswer::of),
                explained_by: &r.explained_by,
                narrowing: r.narrowing.as_ref().map(narrowing_json),
                not_sent: r.not_sent.as_deref(),
            })
            .collect(),
        requests_sent: report.sent,
        max_requests: report.max_requests,
        summary: summary(report),
    };
    serde_json::to_string_pretty(&document).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// What failed, in a few words: "400 bad_request".
fn what(result: &ProbeResult) -> String {
    match result.diagnosis.status {
        Some(status) => format!("{status} {}", result.diagnosis.verdict),
        None => result.diagnosis.verdict.to_string(),
    }
}

/// The one-paragraph answer.
pub fn summary(report: &RequestReport) -> String {
    let name = &report.name;
    let findings = report.findings().count();
    let failed = report.requests.iter().find(|r| {
        r.live
            .as_ref()
            .is_some_and(|l| !l.diagnosis.verdict.is_healthy())
    });
    let found = if findings == 1 {
        "1 problem".to_owned()
    } else {
        format!("{findings} problems")
    };
    match report.conclusion() {
        Conclusion::NoFindings => {
            format!("No problem found in the request for {name} (offline: nothing was sent).")
        }
        Conclusion::Ok => format!("{name} answers this request: nothing wrong with it."),
        Conclusion::YourRequest => match (failed, &report.ping) {
            (Some(request), Some(ping)) => {
                let live = request.live.as_ref().map(what).unwrap_or_default();
                let because = if request.explained_by.is_empty() {
                    "nothing in it explains why".to_owned()
                } else {
                    format!("explained by {}", request.explained_by.join(", "))
                };
                let ping_ms = ping
                    .latency
                    .map(|l| format!(" in {} ms", l.as_millis()))
                    .unwrap_or_default();
                format!(
                    "YOUR REQUEST — {name} is up (the ping answered{ping_ms}) but fails {} with {live}: {because}.",
                    request.origin
                )
            }
            _ => {
                let sent = if report.offline {
                    "offline: nothing was sent".to_owned()
                } else {
                    report
                        .live_skipped
                        .clone()
                        .unwrap_or_else(|| format!("{name} accepted it, but other targets may not"))
                };
                format!("YOUR REQUEST — {found} found in the request for {name} ({sent}).")
            }
        },
        Conclusion::Provider => match &report.ping {
            Some(ping) if !ping.diagnosis.verdict.is_healthy() => format!(
                "{name} is DOWN — the ping failed with {}; the request was not sent. {}",
                what(ping),
                ping.diagnosis.explanation
            ),
            _ => format!(
                "{name} answered the ping but failed the request with {}, an outage-type failure, not the request.",
                failed
                    .and_then(|r| r.live.as_ref())
                    .map(what)
                    .unwrap_or_default()
            ),
        },
        Conclusion::Account => format!(
            "{name}: a problem with your account, not the request or an outage ({}).",
            report
                .ping
                .iter()
                .chain(report.requests.iter().filter_map(|r| r.live.as_ref()))
                .find(|r| !r.diagnosis.verdict.is_healthy())
                .map(what)
                .unwrap_or_default()
        ),
        Conclusion::Network => format!("{name} could not be reached: check your network."),
    }
}

fn finding_lines(out: &mut String, finding: &Finding, explains: bool) {
    let mark = if explains {
        "  ← explains the failure"
    } else {
        ""
    };
    let _ = writeln!(out, "  ✗ {}  [{}]{mark}", finding.path, finding.rule);
    let _ = writeln!(out, "      {}", finding.message);
    let _ = writeln!(out, "      fix: {}", finding.fix);
}

/// The human text.
pub fn human(report: &RequestReport) -> String {
    let mut out = String::new();
    for request in &report.requests {
        let model = request.model.as_deref().unwrap_or("no model");
        let _ = writeln!(
            out,
            "{} → {} ({model}): {}",
            request.origin,
            report.name,
            match request.findings.len() {
                0 => "no problem found".to_owned(),
                1 => "1 problem".to_owned(),
                n => format!("{n} problems"),
            }
        );
        for finding in &request.findings {
            finding_lines(
                &mut out,
                finding,
                request.explained_by.contains(&finding.path),
            );
        }
        if let Some(live) = &request.live {
            let ms = live
                .latency
                .map(|l| format!(" in {} ms", l.as_millis()))
                .unwrap_or_default();
            if live.diagnosis.verdict.is_healthy() {
                let _ = writeln!(out, "  sent: answered correctly{ms}");
            } else {
                let _ = writeln!(
                    out,
                    "  sent: {}{ms} — {}",
                    what(live),
                    live.diagnosis.explanation
                );
            }
        }
        if let Some(narrowing) = &request.narrowing {
            let _ = writeln!(
                out,
                "  narrowed down with {} of up to {} requests:",
                narrowing.reduced.requests, narrowing.announced_requests
            );
            for step in &narrowing.reduced.steps {
                let _ = writeln!(out, "    - {step}");
            }
            if narrowing.reduced.part.is_none() {
                let why = if narrowing.reduced.out_of_budget {
                    "the request budget ran out first (raise --max-requests)"
                } else if narrowing.reduced.inconclusive {
                    "an answer said nothing about the request"
                } else {
                    "no single part makes the difference"
                };
                let _ = writeln!(out, "    no part named: {why}");
            }
        }
        if let Some(why) = &request.not_sent {
            let _ = writeln!(out, "  not sent: {why}");
        }
    }
    if let Some(ping) = &report.ping {
        let ms = ping
            .latency
            .map(|l| format!(" in {} ms", l.as_millis()))
            .unwrap_or_default();
        let state = if ping.diagnosis.verdict.is_healthy() {
            format!("answered{ms}")
        } else {
            format!("{} — {}", what(ping), ping.diagnosis.explanation)
        };
        let _ = writeln!(
            out,
            "ping ({}): {state}",
            ping.model.as_deref().unwrap_or("probe model")
        );
        let _ = writeln!(
            out,
            "requests sent: {} of at most {}",
            report.sent, report.max_requests
        );
    }
    if let Some(why) = &report.live_skipped {
        let _ = writeln!(out, "live check skipped: {why}");
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

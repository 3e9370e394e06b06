//! Turning a [`CheckReport`] into what people and scripts read: the exit code, the one-line
//! summary, the `--json` object (a contract: README "isdown check") and the human table, with
//! the "What others see" section (`others`) after the verdict. The verdict and the exit code
//! come from the probes alone.

use std::fmt::Write as _;

use serde::Serialize;

use super::CheckReport;
use crate::probe::{ProbeKind, ProbeResult, Timings};
use crate::verdict::{Blame, Cause, Verdict};

/// Exit codes of `check` (a contract: README "isdown check").
pub const EXIT_OK: u8 = 0;
pub const EXIT_PROVIDER: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_SETUP: u8 = 3;

/// 0 when every probe is up/degraded; 1 when any failure is provider-side; else 3.
pub fn exit_code(report: &CheckReport) -> u8 {
    let failures = || {
        report
            .results
            .iter()
            .filter(|r| !r.diagnosis.verdict.is_healthy())
    };
    if failures().any(|r| r.diagnosis.blame == Some(Blame::Provider)) {
        EXIT_PROVIDER
    } else if failures().next().is_some() {
        EXIT_SETUP
    } else {
        EXIT_OK
    }
}

impl CheckReport {
    pub(super) fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names
            .iter()
            .find(|(i, _)| i == id)
            .map_or(id, |(_, n)| n.as_str())
    }

    fn host(&self, id: &str) -> String {
        self.targets
            .iter()
            .find(|t| t.provider.id == id)
            .map(|t| t.provider.host().to_owned())
            .unwrap_or_default()
    }
}

/// Providers in first-seen order with their results.
fn grouped(results: &[ProbeResult]) -> Vec<(&str, Vec<&ProbeResult>)> {
    let mut groups: Vec<(&str, Vec<&ProbeResult>)> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|(id, _)| *id == r.provider) {
            Some((_, list)) => list.push(r),
            None => groups.push((&r.provider, vec![r])),
        }
    }
    groups
}

/// What failed, in a few words: "503", "timeout (no first byte)", "rate limited".
fn what(r: &ProbeResult) -> String {
    match (r.diagnosis.verdict, r.diagnosis.status) {
        (Verdict::Timeout, _) => "no answer before the deadline".into(),
        (Verdict::Network, _) => "network failure".into(),
        (verdict, Some(status)) => format!("{status} {}", verdict.as_str().replace('_', " ")),
        (verdict, None) => verdict.as_str().replace('_', " "),
    }
}

fn ms(d: Option<std::time::Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1000.0).round())
}

/// The one-paragraph answer: who is down, whose side it is on, and whether the network works.
pub fn summary(report: &CheckReport) -> String {
    let groups = grouped(&report.results);
    let mut sentences: Vec<String> = Vec::new();
    let failing = |rs: &[&ProbeResult]| -> Vec<ProbeResult> {
        rs.iter()
            .filter(|r| !r.diagnosis.verdict.is_healthy())
            .map(|r| (*r).clone())
            .collect()
    };

    let all_results: Vec<&ProbeResult> = report.results.iter().chain(&report.witnesses).collect();
    let network_down = !report.results.is_empty()
        && report
            .results
            .iter()
            .all(|r| r.diagnosis.blame == Some(Blame::Network));
    if network_down {
        let n = grouped(&report.results).len() + grouped(&report.witnesses).len();
        let dns = all_results
            .iter()
            .all(|r| r.diagnosis.cause == Some(Cause::Dns));
        let how = if dns {
            format!("DNS failed for all {n}")
        } else {
            format!("all {n} failed at the network level")
        };
        return format!("Your network looks down: no provider is reachable ({how}).");
    }

    for (id, rs) in &groups {
        let failed = failing(rs);
        let name = report.name(id);
        let Some(worst) = failed
            .iter()
            .find(|r| r.diagnosis.blame == Some(Blame::Provider))
            .or(failed.first())
        else {
            if let Some(slow) = rs.iter().find(|r| r.diagnosis.verdict == Verdict::Degraded) {
                sentences.push(format!(
                    "{name} is SLOW — {}.",
                    slow.diagnosis.explanation.trim_end_matches('.')
                ));
            }
            continue;
        };
        let counts = format!("{}/{} probes", failed.len(), rs.len());
        let sentence = match worst.diagnosis.blame {
            Some(Blame::Provider) => {
                let state = if worst.diagnosis.verdict == Verdict::Overloaded {
                    "OVERLOADED"
                } else {
                    "DOWN"
                };
                format!(
                    "{name} is {state} — {} from {} ({counts}).",
                    what(worst),
                    report.host(id)
                )
            }
            Some(Blame::Network) => {
                format!(
                    "{name} is unreachable — {} (your network: nothing else answered either).",
                    what(worst)
                )
            }
            Some(Blame::Account) => {
                let wait = worst
                    .diagnosis
                    .retry_after_s
                    .map(|s| format!(", retry after {s:.0} s"))
                    .unwrap_or_default();
                format!(
                    "{name}: {}{wait} — a problem with your account, not an outage.",
                    what(worst)
                )
            }
            Some(Blame::Request) | None => format!(
                "{name}: {} — a problem with the request or config, not an outage.",
                what(worst)
            ),
        };
        sentences.push(sentence);
    }

    let any_failure = report
        .results
        .iter()
        .any(|r| !r.diagnosis.verdict.is_healthy());
    if any_failure {
        let failing_ids: Vec<&str> = report
            .results
            .iter()
            .filter(|r| !r.diagnosis.verdict.is_healthy())
            .map(|r| r.provider.as_str())
            .collect();
        let fastest = all_results
            .iter()
            .filter(|r| {
                r.diagnosis.verdict.is_healthy() && !failing_ids.contains(&r.provider.as_str())
            })
            .filter_map(|r| r.latency.map(|l| (l, *r)))
            .min_by_key(|(l, _)| *l);
        if let Some((latency, r)) = fastest {
            sentences.push(format!(
                "Your network is fine: {} answered in {} ms.",
                report.name(&r.provider),
                latency.as_millis()
            ));
        }
        // Where to go now: a checked provider whose completions work (not merely reachable).
        let provider_down = report.results.iter().any(|r| {
            !r.diagnosis.verdict.is_healthy() && r.diagnosis.blame == Some(Blame::Provider)
        });
        let fallback = report.results.iter().find(|r| {
            r.kind != ProbeKind::Reachability
                && r.diagnosis.verdict.is_healthy()
                && !failing_ids.contains(&r.provider.as_str())
        });
        if let (true, Some(r)) = (provider_down, fallback) {
            sentences.push(format!(
                "{} answers completions: fail over to it.",
                report.name(&r.provider)
            ));
        }
    } else {
        let n = groups.len();
        let all_of = if n == 1 {
            format!("{} is up", report.name(groups[0].0))
        } else {
            format!("All {n} providers are up")
        };
        let reach_only: Vec<&str> = report
            .targets
            .iter()
            .filter(|t| !t.provider.has_key())
            .map(|t| t.provider.name.as_str())
            .collect();
        if reach_only.is_empty() {
            sentences.insert(0, format!("{all_of}."));
        } else if reach_only.len() == n {
            sentences.insert(
                0,
                format!("{all_of} (reachability only: no API key is set)."),
            );
        } else {
            sentences.insert(
                0,
                format!(
                    "{all_of} (reachability only for {}: no key set).",
                    reach_only.join(", ")
                ),
            );
        }
    }

    let skipped: Vec<String> = report
        .targets
        .iter()
        .filter(|t| !t.skipped_for_no_key.is_empty())
        .filter_map(|t| {
            let kinds: Vec<&str> = t.skipped_for_no_key.iter().map(|k| k.as_str()).collect();
            t.provider.api_key_env.as_ref().map(|env| {
                format!(
                    "{} {} not run: {env} is not set.",
                    t.provider.name,
                    kinds.join("/")
                )
            })
        })
        .collect();
    sentences.extend(skipped);
    sentences.join(" ")
}

#[derive(Serialize)]
struct JsonCheck<'a> {
    provider: &'a str,
    url: &'a str,
    model: Option<&'a str>,
    probe: ProbeKind,
    verdict: Verdict,
    blame: Option<Blame>,
    status: Option<u16>,
    retry_after_s: Option<f64>,
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    explanation: &'a str,
    advice: &'a str,
    timings: Timings,
    /// What others see about this check's provider (the same object on each of its checks).
    corroboration: serde_json::Value,
}

#[derive(Serialize)]
struct JsonWitness<'a> {
    provider: &'a str,
    verdict: Verdict,
    status: Option<u16>,
    latency_ms: Option<f64>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    checks: Vec<JsonCheck<'a>>,
    /// Providers probed only to decide blame (reachability).
    witnesses: Vec<JsonWitness<'a>>,
    summary: String,
}

/// The `--json` document (a contract: README "isdown check"; `timings`, `witnesses` and each
/// check's `corroboration` added).
pub fn json(report: &CheckReport) -> String {
    let others: Vec<(&str, serde_json::Value)> = report
        .corroboration
        .iter()
        .map(|c| (c.provider.as_str(), super::others::json(c, report)))
        .collect();
    let corroboration_of = |provider: &str| {
        others
            .iter()
            .find(|(id, _)| *id == provider)
            .map_or(serde_json::Value::Null, |(_, v)| v.clone())
    };
    let checks = report
        .results
        .iter()
        .map(|r| JsonCheck {
            provider: &r.provider,
            url: &r.url,
            model: r.model.as_deref(),
            probe: r.kind,
            verdict: r.diagnosis.verdict,
            blame: r.diagnosis.blame,
            status: r.diagnosis.status,
            retry_after_s: r.diagnosis.retry_after_s,
            latency_ms: ms(r.latency),
            ttft_ms: ms(r.ttft),
            explanation: &r.diagnosis.explanation,
            advice: &r.diagnosis.advice,
            timings: r.timings,
            corroboration: corroboration_of(&r.provider),
        })
        .collect();
    let witnesses = report
        .witnesses
        .iter()
        .map(|r| JsonWitness {
            provider: &r.provider,
            verdict: r.diagnosis.verdict,
            status: r.diagnosis.status,
            latency_ms: ms(r.latency),
        })
        .collect();
    let doc = JsonReport {
        checks,
        witnesses,
        summary: summary(report),
    };
    serde_json::to_string_pretty(&doc).expect("the report serializes")
}

/// ANSI styling, only when writing to a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn verdict(self, r: &ProbeResult) -> String {
        let code = match (r.diagnosis.verdict, r.diagnosis.blame) {
            (Verdict::Up, _) => "32",
            (Verdict::Degraded, _) => "33",
            (_, Some(Blame::Provider)) => "31;1",
            (_, Some(Blame::Network)) => "35;1",
            _ => "33;1",
        };
        self.paint(code, &format!("{:<16}", r.diagnosis.verdict.as_str()))
    }
}

/// The human table, advice lines and the summary.
pub fn human(report: &CheckReport, style: Style) -> String {
    let mut out = String::new();
    let dash = || "-".to_owned();
    let fmt_ms = |d: Option<std::time::Duration>| {
        d.map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(dash)
    };
    let _ = writeln!(
        out,
        "{}",
        style.paint(
            "1",
            &format!(
                "{:<14} {:<13} {:<16} {:<9} {:>4} {:>9} {:>9}",
                "PROVIDER", "PROBE", "VERDICT", "BLAME", "HTTP", "LATENCY", "TTFT"
            )
        )
    );
    for r in &report.results {
        let blame = r.diagnosis.blame.map_or("-", |b| b.as_str());
        let status = r.diagnosis.status.map_or_else(dash, |s| s.to_string());
        let _ = writeln!(
            out,
            "{:<14} {:<13} {} {:<9} {:>4} {:>9} {:>9}",
            r.provider,
            r.kind.as_str(),
            style.verdict(r),
            blame,
            status,
            fmt_ms(r.latency),
            fmt_ms(r.ttft)
        );
        if !r.diagnosis.explanation.is_empty() {
            let _ = writeln!(out, "    {}", r.diagnosis.explanation);
        }
        if !r.diagnosis.verdict.is_healthy() && !r.diagnosis.advice.is_empty() {
            let _ = writeln!(out, "    {} {}", style.paint("36", "→"), r.diagnosis.advice);
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", style.paint("1", &summary(report)));
    let others = super::others::section(report);
    if !others.is_empty() {
        let (head, rest) = others.split_once('\n').unwrap_or((&others, ""));
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", style.paint("1", head));
        let _ = writeln!(out, "{rest}");
    }
    out
}

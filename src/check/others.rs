//! "What others see": the corroboration of a check, for people (a section after the verdict)
//! and for scripts (the `corroboration` object of each check in `--json`, a contract: README
//! "isdown check"), and the sentences that say plainly when the sources and the probe
//! disagree. Formatting only: the verdict and the exit code are the probes' (`report`).

use serde_json::{Value, json};

use super::CheckReport;
use crate::corroborate::aggregator::View;
use crate::corroborate::{
    AGGREGATOR_NAME, AggregatorReading, Corroboration, FeedCount, OfficialReading, Reading, words,
};
use crate::probe::ProbeResult;
use crate::verdict::Blame;

// === what the probe and the sources each say ===

/// The probe's side of a comparison, for one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// A provider-side failure.
    Fails,
    /// Every probe answered (up or degraded).
    Works,
}

/// What one source says, as far as a comparison needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// The official page: operational, nothing open.
    OfficialQuiet,
    /// The official page: a problem, or an open incident.
    OfficialTrouble,
    /// The aggregator reaches this provider's endpoint fine.
    AggregatorFine,
    /// The aggregator's upstreams are fine (the provider is the aggregator itself).
    UpstreamsFine,
    /// The aggregator sees this provider (or every upstream) degraded or down.
    AggregatorTrouble,
    /// Community reports spike.
    CommunitySpike,
}

/// When the probe and a source meet like this, say so. `{name}` is the provider's name.
const AGREEMENT: [(Probe, Signal, &str); 9] = [
    (
        Probe::Fails,
        Signal::OfficialQuiet,
        "Your probe fails and the official page says operational: it may be you, or the page is late.",
    ),
    (
        Probe::Fails,
        Signal::OfficialTrouble,
        "The official page confirms a problem.",
    ),
    (
        Probe::Works,
        Signal::OfficialTrouble,
        "The official page reports a problem your probe does not see: it may concern other models, regions or features.",
    ),
    (
        Probe::Fails,
        Signal::AggregatorFine,
        "OpenRouter reaches {name} fine: the problem may be on the way from you (region, network, account) rather than at {name}.",
    ),
    (
        Probe::Fails,
        Signal::UpstreamsFine,
        "The providers behind OpenRouter look healthy to it: OpenRouter itself (or your account there) is the likely problem.",
    ),
    (
        Probe::Fails,
        Signal::AggregatorTrouble,
        "OpenRouter sees {name} failing too: others are affected, not just you.",
    ),
    (
        Probe::Works,
        Signal::AggregatorTrouble,
        "OpenRouter sees {name} struggling although your probe works: it may come and go.",
    ),
    (
        Probe::Fails,
        Signal::CommunitySpike,
        "Community reports are spiking too.",
    ),
    (
        Probe::Works,
        Signal::CommunitySpike,
        "Community reports are spiking although your probe works.",
    ),
];

/// The probe's side for `provider`: `None` when it failed on the user's side (an account,
/// request or network problem says nothing about an outage).
fn probe_side(results: &[ProbeResult], provider: &str) -> Option<Probe> {
    let mine: Vec<&ProbeResult> = results.iter().filter(|r| r.provider == provider).collect();
    if mine.is_empty() {
        return None;
    }
    if mine
        .iter()
        .any(|r| !r.diagnosis.verdict.is_healthy() && r.diagnosis.blame == Some(Blame::Provider))
    {
        Some(Probe::Fails)
    } else if mine.iter().all(|r| r.diagnosis.verdict.is_healthy()) {
        Some(Probe::Works)
    } else {
        None
    }
}

fn signals(c: &Corroboration) -> Vec<Signal> {
    let mut out = Vec::new();
    if let Some(Reading::Ok(o)) = &c.official {
        out.push(if o.indicator.is_trouble() || !o.incidents.is_empty() {
            Signal::OfficialTrouble
        } else {
            Signal::OfficialQuiet
        });
    }
    if let Some(Reading::Ok(a)) = &c.aggregator {
        out.push(match (a.view, a.endpoint.is_some()) {
            (View::Operational, true) => Signal::AggregatorFine,
            (View::Operational, false) => Signal::UpstreamsFine,
            _ => Signal::AggregatorTrouble,
        });
    }
    if c.community
        .iter()
        .any(|(_, r)| r.ok().is_some_and(|count| count.spike))
    {
        out.push(Signal::CommunitySpike);
    }
    out
}

/// The sentences comparing the probe with the sources, in table order.
pub fn notes(c: &Corroboration, results: &[ProbeResult], name: &str) -> Vec<String> {
    let Some(probe) = probe_side(results, &c.provider) else {
        return Vec::new();
    };
    let said = signals(c);
    AGREEMENT
        .iter()
        .filter(|(p, s, _)| *p == probe && said.contains(s))
        .map(|(_, _, text)| text.replace("{name}", name))
        .collect()
}

// === JSON ===

fn official_json(r: &Reading<OfficialReading>, page: Option<&str>) -> Value {
    match r {
        Reading::Ok(o) => json!({
            "state": "ok",
            "page": o.page,
            "indicator": o.indicator.as_str(),
            "description": o.description,
            "components": o.components.iter().map(|(name, status)| json!({
                "name": name,
                "status": status,
            })).collect::<Vec<_>>(),
            "incidents": o.incidents.iter().map(|i| json!({
                "name": i.name,
                "impact": i.impact.as_str(),
                "started_at": crate::time::rfc3339(i.started_at),
                "url": i.url,
                "status": i.status,
            })).collect::<Vec<_>>(),
        }),
        Reading::Unavailable(reason) => json!({
            "state": "unavailable",
            "reason": reason,
            "page": page,
            "indicator": null,
            "incidents": [],
        }),
    }
}

fn aggregator_json(r: &Reading<AggregatorReading>, model: Option<&str>) -> Value {
    match r {
        Reading::Ok(a) => json!({
            "state": "ok",
            "name": AGGREGATOR_NAME,
            "model": a.model,
            "view": a.view.as_str(),
            "endpoint": a.endpoint.as_ref().map(|e| json!({
                "provider": e.provider_name,
                "tag": e.tag,
                "status": e.status,
                "uptime_last_5m": e.uptime_last_5m,
                "uptime_last_30m": e.uptime_last_30m,
                "uptime_last_1d": e.uptime_last_1d,
            })),
            "endpoints": a.endpoints,
            "operational": a.operational,
        }),
        Reading::Unavailable(reason) => json!({
            "state": "unavailable",
            "reason": reason,
            "name": AGGREGATOR_NAME,
            "model": model,
            "view": null,
        }),
    }
}

fn usual_json(count: &FeedCount) -> Value {
    count
        .usual
        .map_or(Value::Null, |(low, high)| json!([low, high]))
}

fn community_json(feeds: &[(crate::corroborate::CommunityFeed, Reading<FeedCount>)]) -> Value {
    let each: Vec<Value> = feeds
        .iter()
        .map(|(feed, reading)| match reading {
            Reading::Ok(count) => json!({
                "name": feed.name,
                "url": feed.url.as_str(),
                "state": "ok",
                "reports": count.reports,
                "window_s": count.window.as_secs(),
                "usual": usual_json(count),
                "spike": count.spike,
            }),
            Reading::Unavailable(reason) => json!({
                "name": feed.name,
                "url": feed.url.as_str(),
                "state": "unavailable",
                "reason": reason,
            }),
        })
        .collect();
    let counts: Vec<&FeedCount> = feeds.iter().filter_map(|(_, r)| r.ok()).collect();
    if counts.is_empty() {
        let reasons: Vec<String> = feeds
            .iter()
            .filter_map(|(f, r)| r.reason().map(|reason| format!("{}: {reason}", f.name)))
            .collect();
        return json!({
            "state": "unavailable",
            "reason": reasons.join("; "),
            "reports": null,
            "spike": null,
            "feeds": each,
        });
    }
    let usual = counts
        .iter()
        .filter_map(|c| c.usual)
        .reduce(|(a, b), (c, d)| (a + c, b + d));
    json!({
        "state": "ok",
        "reports": counts.iter().map(|c| c.reports).sum::<u32>(),
        "window_s": counts.iter().map(|c| c.window.as_secs()).max(),
        "usual": usual.map(|(low, high)| json!([low, high])),
        "spike": counts.iter().any(|c| c.spike),
        "feeds": each,
    })
}

/// The `corroboration` object of a provider's checks (a contract): each source `null` when not
/// configured, else with `state` `ok` or `unavailable` (and `reason`).
pub fn json(c: &Corroboration, report: &CheckReport) -> Value {
    let sources = report.sources(&c.provider);
    let page = sources
        .and_then(|s| s.official.as_ref())
        .map(|o| o.root.as_str().trim_end_matches('/').to_owned());
    let model = sources
        .and_then(|s| s.aggregator.as_ref())
        .map(|a| a.model.clone());
    json!({
        "official": c.official.as_ref().map(|r| official_json(r, page.as_deref())),
        "aggregator": c.aggregator.as_ref().map(|r| aggregator_json(r, model.as_deref())),
        "community": (!c.community.is_empty()).then(|| community_json(&c.community)),
        "notes": notes(c, &report.results, report.name(&c.provider)),
    })
}

// === for people ===

/// The "What others see" section; empty when no checked provider has a source.
pub fn section(report: &CheckReport) -> String {
    let mut blocks = Vec::new();
    for c in report.corroboration.iter().filter(|c| c.any()) {
        let name = report.name(&c.provider);
        let sources = report.sources(&c.provider);
        let mut lines = Vec::new();
        if let Some(r) = &c.official {
            let page = sources
                .and_then(|s| s.official.as_ref())
                .map_or(String::new(), |o| o.root.to_string());
            lines.push(words::official(r, &page));
            for i in r.ok().map(|o| o.incidents.as_slice()).unwrap_or_default() {
                let link = i
                    .url
                    .as_deref()
                    .map(|u| format!(" — {u}"))
                    .unwrap_or_default();
                lines.push(format!("  {}{link}", words::open_incident(i)));
            }
        }
        if let Some(r) = &c.aggregator {
            let model = sources
                .and_then(|s| s.aggregator.as_ref())
                .map_or("", |a| a.model.as_str());
            lines.push(words::aggregator(r, model));
        }
        for (feed, r) in &c.community {
            lines.push(words::community(feed, r));
        }
        for note in notes(c, &report.results, name) {
            lines.push(format!("→ {note}"));
        }
        let body: Vec<String> = lines.iter().map(|l| format!("  {l}")).collect();
        blocks.push(format!("{name}\n{}", body.join("\n")));
    }
    if blocks.is_empty() {
        return String::new();
    }
    format!("What others see\n{}", blocks.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corroborate::aggregator::Endpoint;
    use crate::corroborate::statuspage::Indicator;
    use crate::probe::{ProbeKind, Timings};
    use crate::verdict::{Diagnosis, Verdict};

    fn probe(provider: &str, verdict: Verdict) -> ProbeResult {
        ProbeResult {
            provider: provider.into(),
            url: String::new(),
            model: None,
            kind: ProbeKind::Chat,
            diagnosis: Diagnosis::new(verdict, "x", "y"),
            latency: None,
            ttft: None,
            timings: Timings::default(),
        }
    }

    fn official(indicator: Indicator) -> Option<Reading<OfficialReading>> {
        Some(Reading::Ok(OfficialReading {
            page: "https://status.example.com".into(),
            indicator,
            description: indicator.words().into(),
            components: Vec::new(),
            incidents: Vec::new(),
        }))
    }

    fn aggregator(view: View, endpoint: bool) -> Option<Reading<AggregatorReading>> {
        Some(Reading::Ok(AggregatorReading {
            model: "m".into(),
            endpoint: endpoint.then(|| Endpoint {
                provider_name: "P".into(),
                tag: "p".into(),
                status: 0,
                uptime_last_5m: None,
                uptime_last_30m: Some(99.0),
                uptime_last_1d: None,
            }),
            view,
            endpoints: 2,
            operational: 1,
        }))
    }

    #[test]
    fn the_probe_and_each_source_are_compared_by_the_table() {
        let c = |official_at, aggregator_at| Corroboration {
            provider: "kimi".into(),
            official: official_at,
            aggregator: aggregator_at,
            community: Vec::new(),
        };
        let fails = [probe("kimi", Verdict::Unavailable)];
        let works = [probe("kimi", Verdict::Up)];
        let quiet_page = c(
            official(Indicator::None),
            aggregator(View::Operational, true),
        );
        assert_eq!(
            notes(&quiet_page, &fails, "Kimi"),
            vec![
                "Your probe fails and the official page says operational: it may be you, or \
                 the page is late.",
                "OpenRouter reaches Kimi fine: the problem may be on the way from you (region, \
                 network, account) rather than at Kimi.",
            ]
        );
        assert!(notes(&quiet_page, &works, "Kimi").is_empty(), "all agree");
        let outage = c(official(Indicator::Critical), aggregator(View::Down, true));
        assert_eq!(
            notes(&outage, &fails, "Kimi"),
            vec![
                "The official page confirms a problem.",
                "OpenRouter sees Kimi failing too: others are affected, not just you.",
            ]
        );
        // The aggregator as the provider: its upstreams being fine points at it.
        let upstreams = c(None, aggregator(View::Operational, false));
        assert_eq!(
            notes(&upstreams, &fails, "OpenRouter"),
            vec![
                "The providers behind OpenRouter look healthy to it: OpenRouter itself (or \
                 your account there) is the likely problem."
            ]
        );
        // An account or request problem says nothing about an outage: no comparison.
        let mut setup = probe("kimi", Verdict::AuthFailed);
        setup.diagnosis.blame = Some(Blame::Account);
        assert!(notes(&outage, &[setup], "Kimi").is_empty());
        // Unavailable sources compare with nothing.
        let broken = c(
            Some(Reading::Unavailable("HTTP 503".into())),
            Some(Reading::Unavailable("HTTP 503".into())),
        );
        assert!(notes(&broken, &fails, "Kimi").is_empty());
    }
}

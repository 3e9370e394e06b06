//! `isdown check PROVIDER --request FILE`: is it my request?
//!
//! Reads the request(s) (`input`), lints each against the provider (`crate::lint`), and unless
//! offline asks the provider: first the minimal ping (a `chat` probe), then each request as
//! given, through the prober's own send path (same client, deadlines and classifier as every
//! probe). Ping fails: the provider (or the account, or the network) is the problem, and the
//! requests are not sent. Ping passes and a request fails for a request-side reason (or with a
//! 500, which malformed tool schemas are known to cause): "your request", with the lint
//! findings that explain the failure; when none does, `reduce` sends smaller versions of the
//! request to name the part that triggers it. `--max-requests` bounds everything sent, ping
//! included. Owns no output formatting (`report` does).

pub mod input;
pub mod reduce;
pub mod report;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::estimate::estimate_request_tokens;
use crate::lint::{self, Finding, JsonPath, Rule, Target, Wire};
use crate::probe::{ProbeError, ProbeKind, ProbeResult, Prober};
use crate::provider::{Provider, WireStyle};
use crate::verdict::{Blame, Verdict};
use input::Recorded;
use reduce::{Outcome, Reduced};

/// 12 requests: the ping, the request, and ten to narrow a failure down — enough to name one
/// property of one tool among 24 (1 + 5 + 1 + 2 requests), few enough to cost little.
pub const DEFAULT_MAX_REQUESTS: usize = 12;

/// 120 s: the gateway's per-attempt deadline; a real agent request (long prompt, thinking)
/// takes far longer than the ping.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct RequestOptions {
    pub offline: bool,
    /// Requests sent at most, the ping included.
    pub max_requests: usize,
    /// Deadline of the ping.
    pub ping_timeout: Duration,
    /// Deadline of each request.
    pub request_timeout: Duration,
}

/// Whose problem it is, all requests considered (the `verdict` of the JSON report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    /// Sent: the provider answered every request correctly, and the lint found nothing.
    Ok,
    /// Offline and the lint found nothing.
    NoFindings,
    /// The lint found problems, or the provider refused a request although the ping passed.
    YourRequest,
    /// The ping failed on the provider's side, or a request failed with an outage.
    Provider,
    /// A key, balance or rate limit of the account.
    Account,
    /// The provider could not be reached and others could not be asked.
    Network,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Ok => "ok",
            Conclusion::NoFindings => "no_findings",
            Conclusion::YourRequest => "your_request",
            Conclusion::Provider => "provider",
            Conclusion::Account => "account",
            Conclusion::Network => "network",
        }
    }
}

/// A reduction, with what it was announced to cost.
#[derive(Debug, Clone)]
pub struct Narrowing {
    /// Requests it could send at most.
    pub announced_requests: usize,
    /// Estimated prompt tokens of one request.
    pub tokens_per_request: u64,
    pub reduced: Reduced,
}

/// One request and what was found about it.
#[derive(Debug, Clone)]
pub struct Checked {
    pub origin: String,
    /// The request as read.
    pub body: Value,
    pub model: Option<String>,
    pub findings: Vec<Finding>,
    /// The request as sent and its diagnosis; `None` when it was not sent.
    pub live: Option<ProbeResult>,
    /// Paths of the findings that explain a live failure.
    pub explained_by: Vec<String>,
    pub narrowing: Option<Narrowing>,
    /// Why it was not sent, when it was not.
    pub not_sent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RequestReport {
    pub provider: String,
    pub name: String,
    pub ping: Option<ProbeResult>,
    pub requests: Vec<Checked>,
    pub sent: usize,
    pub max_requests: usize,
    pub offline: bool,
    /// Why no live check ran although it was asked for (no key).
    pub live_skipped: Option<String>,
}

impl RequestReport {
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.requests.iter().flat_map(|r| r.findings.iter())
    }

    pub fn conclusion(&self) -> Conclusion {
        if let Some(ping) = &self.ping
            && !ping.diagnosis.verdict.is_healthy()
        {
            return conclusion_of_blame(ping.diagnosis.blame);
        }
        let failed = self
            .requests
            .iter()
            .filter_map(|r| r.live.as_ref())
            .find(|live| !live.diagnosis.verdict.is_healthy());
        if let Some(live) = failed {
            return if suspects_request(live.diagnosis.verdict) {
                Conclusion::YourRequest
            } else {
                conclusion_of_blame(live.diagnosis.blame)
            };
        }
        if self.findings().next().is_some() {
            Conclusion::YourRequest
        } else if self.ping.is_some() {
            Conclusion::Ok
        } else {
            Conclusion::NoFindings
        }
    }

    /// The contract's exit codes: 0 nothing found and (live) every request passed; 1 provider
    /// side; 3 the request or the account at fault.
    pub fn exit_code(&self) -> u8 {
        match self.conclusion() {
            Conclusion::Ok | Conclusion::NoFindings => crate::check::report::EXIT_OK,
            Conclusion::Provider => crate::check::report::EXIT_PROVIDER,
            Conclusion::YourRequest | Conclusion::Account | Conclusion::Network => {
                crate::check::report::EXIT_SETUP
            }
        }
    }
}

fn conclusion_of_blame(blame: Option<Blame>) -> Conclusion {
    match blame {
        Some(Blame::Provider) | None => Conclusion::Provider,
        Some(Blame::Account) => Conclusion::Account,
        Some(Blame::Network) => Conclusion::Network,
        Some(Blame::Request) => Conclusion::YourRequest,
    }
}

/// A failure the request itself can cause while the ping passes: the request-side verdicts, and
/// the 500s and broken answers that malformed tool schemas are known to produce.
fn suspects_request(verdict: Verdict) -> bool {
    verdict.default_blame() == Some(Blame::Request)
        || matches!(verdict, Verdict::ServerError | Verdict::Malformed)
}

/// Failures one part of a request can trigger, so that sending smaller versions finds it. A
/// wrong model id or an oversized prompt is not in one part: narrowing would only spend.
fn narrowable(verdict: Verdict) -> bool {
    matches!(
        verdict,
        Verdict::BadRequest | Verdict::ServerError | Verdict::Malformed | Verdict::ContentFiltered
    )
}

/// Which findings can explain a failure with `verdict` (`None`: any finding can).
fn explaining_rules(verdict: Verdict) -> Option<&'static [Rule]> {
    const CONTEXT: &[Rule] = &[Rule::ContextWindowExceeded, Rule::MaxTokensAboveLimit];
    const MODEL: &[Rule] = &[Rule::ModelMissing];
    const NOTHING: &[Rule] = &[];
    match verdict {
        Verdict::ContextTooLong => Some(CONTEXT),
        Verdict::ModelNotFound => Some(MODEL),
        Verdict::ContentFiltered => Some(NOTHING),
        _ => None,
    }
}

/// What the lint knows about `provider` for a request to `model`.
pub fn target_of<'p>(provider: &'p Provider) -> Target<'p> {
    Target {
        provider: &provider.id,
        model: None,
        configured_window: provider
            .context_window
            .map(|window| (provider.probe_model.as_str(), window)),
        wire: match provider.style {
            WireStyle::Openai => Wire::Chat,
            WireStyle::Anthropic => Wire::Messages,
        },
    }
}

/// Lints every request; unless offline, checks them live. `notify` hears announcements meant
/// for a person (the cost of a reduction) before the requests are sent.
pub async fn run(
    provider: &Provider,
    recorded: Vec<Recorded>,
    options: &RequestOptions,
    notify: &(dyn Fn(&str) + Sync),
) -> Result<RequestReport, ProbeError> {
    let target = target_of(provider);
    let mut report = RequestReport {
        provider: provider.id.clone(),
        name: provider.name.clone(),
        ping: None,
        requests: recorded
            .into_iter()
            .map(|r| Checked {
                model: r
                    .body
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                findings: lint::lint(&r.body, &target),
                origin: r.origin,
                body: r.body,
                live: None,
                explained_by: Vec::new(),
                narrowing: None,
                not_sent: None,
            })
            .collect(),
        sent: 0,
        max_requests: options.max_requests,
        offline: options.offline,
        live_skipped: None,
    };
    if options.offline {
        return Ok(report);
    }
    if !provider.has_key() {
        report.live_skipped = Some(match &provider.api_key_env {
            Some(var) => format!("{var} is not set, so nothing was sent"),
            None => "no key is configured, so nothing was sent".to_owned(),
        });
        return Ok(report);
    }
    Live::new(provider, options, notify)?
        .check(&mut report, &target)
        .await;
    Ok(report)
}

/// The live part of a check.
struct Live<'a> {
    prober: Prober,
    provider: &'a Provider,
    options: &'a RequestOptions,
    notify: &'a (dyn Fn(&str) + Sync),
    sent: usize,
}

impl<'a> Live<'a> {
    fn new(
        provider: &'a Provider,
        options: &'a RequestOptions,
        notify: &'a (dyn Fn(&str) + Sync),
    ) -> Result<Live<'a>, ProbeError> {
        Ok(Live {
            prober: Prober::new()?,
            provider,
            options,
            notify,
            sent: 0,
        })
    }

    fn budget_left(&self) -> usize {
        self.options.max_requests.saturating_sub(self.sent)
    }

    async fn send(&mut self, body: &Value) -> ProbeResult {
        self.sent += 1;
        self.prober
            .send(self.provider, body, self.options.request_timeout)
            .await
    }

    async fn check(mut self, report: &mut RequestReport, target: &Target<'_>) {
        if self.budget_left() == 0 {
            report.live_skipped = Some("--max-requests 0 allows no request".into());
            return;
        }
        self.sent += 1;
        let ping = self
            .prober
            .run(self.provider, ProbeKind::Chat, self.options.ping_timeout)
            .await;
        let ping_healthy = ping.diagnosis.verdict.is_healthy();
        report.ping = Some(ping);
        let mut reduced_once = false;
        let mut stop: Option<String> =
            (!ping_healthy).then(|| "the ping failed, so the request was not sent".to_owned());
        for checked in &mut report.requests {
            if let Some(why) = &stop {
                checked.not_sent = Some(why.clone());
                continue;
            }
            if self.budget_left() == 0 {
                checked.not_sent = Some(format!(
                    "--max-requests {} was reached",
                    self.options.max_requests
                ));
                continue;
            }
            let Some(body) = checked.body.as_object().cloned() else {
                checked.not_sent = Some("it is not a JSON object".into());
                continue;
            };
            let result = self.send(&Value::Object(body.clone())).await;
            let verdict = result.diagnosis.verdict;
            if !verdict.is_healthy() {
                if suspects_request(verdict) {
                    self.explain(checked, &body, target, verdict);
                    if checked.explained_by.is_empty() && !reduced_once && narrowable(verdict) {
                        reduced_once = true;
                        checked.narrowing = self.narrow(&body, &result).await;
                        if let Some(part) = checked
                            .narrowing
                            .as_ref()
                            .and_then(|n| n.reduced.part.as_ref())
                        {
                            let finding = found_part(part, &result);
                            checked.explained_by.push(finding.path.clone());
                            checked.findings.push(finding);
                        }
                    }
                } else {
                    stop = Some(format!(
                        "an earlier request failed with {verdict}, which is not about the request"
                    ));
                }
            }
            checked.live = Some(result);
        }
        report.sent = self.sent;
    }

    /// Marks the findings that explain a failure with `verdict`; for a context refusal the lint
    /// did not flag (within the estimate's margin) the estimate itself explains it.
    fn explain(
        &self,
        checked: &mut Checked,
        body: &Map<String, Value>,
        target: &Target<'_>,
        verdict: Verdict,
    ) {
        let explaining = |f: &Finding| match explaining_rules(verdict) {
            Some(rules) => rules.contains(&f.rule),
            None => f.rule != Rule::ContextWindowExceeded,
        };
        checked.explained_by = checked
            .findings
            .iter()
            .filter(|f| explaining(f))
            .map(|f| f.path.clone())
            .collect();
        if verdict == Verdict::ContextTooLong
            && checked.explained_by.is_empty()
            && let Some(finding) = lint::context_explanation(body, target)
        {
            checked.explained_by.push(finding.path.clone());
            checked.findings.push(finding);
        }
    }

    /// Sends smaller versions of the failing request, within what is left of the budget.
    async fn narrow(
        &mut self,
        body: &Map<String, Value>,
        failed: &ProbeResult,
    ) -> Option<Narrowing> {
        let budget = self.budget_left();
        if budget == 0 {
            return None;
        }
        let tokens = estimate_request_tokens(body);
        (self.notify)(&format!(
            "The provider refuses this request and nothing in it explains why: narrowing it down \
             with up to {budget} more requests of at most ~{tokens} prompt tokens each (~{} \
             tokens in all; --max-requests bounds this).",
            tokens.saturating_mul(budget as u64)
        ));
        let original = failed.diagnosis.verdict;
        let reduced = reduce::reduce(body, budget, async |candidate: &Map<String, Value>| {
            let result = self.send(&Value::Object(candidate.clone())).await;
            let verdict = result.diagnosis.verdict;
            if verdict.is_healthy() {
                Outcome::Passes
            } else if verdict == original || suspects_request(verdict) && suspects_request(original)
            {
                Outcome::Fails
            } else {
                Outcome::Inconclusive
            }
        })
        .await;
        Some(Narrowing {
            announced_requests: budget,
            tokens_per_request: tokens,
            reduced,
        })
    }
}

/// The finding for a part the reduction named.
fn found_part(part: &reduce::Part, failed: &ProbeResult) -> Finding {
    let detail = format!(
        "{} — with it the provider answers {} ({}), without it the request passes",
        part.what,
        failed.diagnosis.status.map_or_else(
            || failed.diagnosis.verdict.to_string(),
            |s| format!("{s} {}", failed.diagnosis.verdict)
        ),
        failed.diagnosis.explanation
    );
    let path: &JsonPath = &part.path;
    Finding::new(
        Rule::ProviderRejectsPart,
        path,
        None,
        Some("the rest of the request passed"),
        Some(&detail),
    )
}

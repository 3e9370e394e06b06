//! Correlation: "is it you or them?"
//!
//! A `network` or `timeout` verdict alone cannot say whose side the problem is on. This module
//! decides it from the other providers checked in the same run (README "isdown check"): when
//! another provider answered over HTTP, the network works and the silent provider is to blame;
//! when every other one also failed at the network level, the network is. Pure: no I/O.

use crate::probe::ProbeResult;
use crate::verdict::Blame;

/// Re-blames transport-level failures in `results` using every other provider's results (the
/// `witnesses` count as evidence but are not changed).
pub fn correlate(results: &mut [ProbeResult], witnesses: &[ProbeResult]) {
    let answered_by_other = |provider: &str, all: &[&ProbeResult]| {
        all.iter()
            .filter(|r| r.provider != provider)
            .find(|r| r.diagnosis.status.is_some())
            .map(|r| r.provider.clone())
    };
    let compared_with = |provider: &str, all: &[&ProbeResult]| {
        all.iter().filter(|r| r.provider != provider).count()
    };
    let snapshot: Vec<ProbeResult> = results.iter().chain(witnesses).cloned().collect();
    let all: Vec<&ProbeResult> = snapshot.iter().collect();
    for result in results.iter_mut() {
        if !result.diagnosis.verdict.is_transport_level() {
            continue;
        }
        if compared_with(&result.provider, &all) == 0 {
            result.diagnosis.blame = Some(Blame::Provider);
            result
                .diagnosis
                .explanation
                .push_str(" (no other provider was checked to compare with)");
            continue;
        }
        match answered_by_other(&result.provider, &all) {
            Some(_) => result.diagnosis.blame = Some(Blame::Provider),
            None => {
                result.diagnosis.blame = Some(Blame::Network);
                result.diagnosis.advice = "No provider is reachable from here: check this \
                    machine's network, DNS, proxy (HTTPS_PROXY) and firewall before blaming \
                    any provider."
                    .into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{ProbeKind, Timings};
    use crate::verdict::{Diagnosis, Verdict};

    fn result(provider: &str, verdict: Verdict, status: Option<u16>) -> ProbeResult {
        let mut diagnosis = Diagnosis::new(verdict, "x", "y");
        diagnosis.status = status;
        ProbeResult {
            provider: provider.into(),
            url: String::new(),
            model: None,
            kind: ProbeKind::Reachability,
            diagnosis,
            latency: None,
            ttft: None,
            timings: Timings::default(),
        }
    }

    #[test]
    fn one_silent_provider_while_another_answers_is_the_providers_fault() {
        let mut results = vec![result("kimi", Verdict::Timeout, None)];
        let witnesses = vec![result("deepseek", Verdict::Up, Some(200))];
        correlate(&mut results, &witnesses);
        assert_eq!(results[0].diagnosis.blame, Some(Blame::Provider));
    }

    #[test]
    fn an_error_status_from_another_provider_still_proves_the_network_works() {
        let mut results = vec![result("kimi", Verdict::Network, None)];
        let witnesses = vec![result("openai", Verdict::Unavailable, Some(503))];
        correlate(&mut results, &witnesses);
        assert_eq!(results[0].diagnosis.blame, Some(Blame::Provider));
    }

    #[test]
    fn everyone_failing_at_the_network_level_is_the_networks_fault() {
        let mut results = vec![
            result("kimi", Verdict::Network, None),
            result("deepseek", Verdict::Timeout, None),
        ];
        let witnesses = vec![result("openai", Verdict::Network, None)];
        correlate(&mut results, &witnesses);
        assert!(
            results
                .iter()
                .all(|r| r.diagnosis.blame == Some(Blame::Network))
        );
        assert!(results[0].diagnosis.advice.contains("network"));
    }

    #[test]
    fn another_probe_of_the_same_provider_is_not_evidence() {
        let mut results = vec![
            result("kimi", Verdict::Timeout, None),
            result("kimi", Verdict::Up, Some(200)),
        ];
        correlate(&mut results, &[result("deepseek", Verdict::Network, None)]);
        assert_eq!(results[0].diagnosis.blame, Some(Blame::Network));
    }

    #[test]
    fn with_nothing_to_compare_the_provider_is_blamed_and_it_says_so() {
        let mut results = vec![result("kimi", Verdict::Network, None)];
        correlate(&mut results, &[]);
        assert_eq!(results[0].diagnosis.blame, Some(Blame::Provider));
        assert!(
            results[0]
                .diagnosis
                .explanation
                .contains("no other provider")
        );
    }

    #[test]
    fn non_transport_verdicts_keep_their_blame() {
        let mut results = vec![result("kimi", Verdict::RateLimited, Some(429))];
        correlate(&mut results, &[result("x", Verdict::Network, None)]);
        assert_eq!(results[0].diagnosis.blame, Some(Blame::Account));
    }
}

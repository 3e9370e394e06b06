//! How the monitor reacts to live traffic (passive health): which live verdicts reported by the
//! gateway are worth a probe now, and which probe and monitor that is.
//!
//! Pure: no I/O, no clock; the core (`service`) carries the reactions out. The rules (README
//! "Passive health" repeats them for users):
//! - a live provider-side failure, a rejected key or an empty balance: probe the provider's
//!   monitors now (their configured probes), so the monitor confirms it — or dismisses it — in
//!   seconds instead of at the next tick;
//! - a live **timeout**: watch for a hang. A hung provider usually still answers `GET /models`,
//!   so the configured probe may never see it; one of the provider's monitors probes with a
//!   streaming chat probe (first-token timing) at once and keeps doing so — confirmation included
//!   — until such a probe passes with no incident open. Two timeouts in a row open an outage with
//!   verdict `timeout`, which the gateway reads as a confirmed hang;
//! - rate limits and the caller's own errors: nothing (probing an account over its limit would
//!   only add to it).
//!
//! Reactions that need memory (e.g. a burst of live failures) belong here too, as state next to
//! [`reaction`].

use super::MonitorSpec;
use super::health::LiveVerdict;
use crate::probe::ProbeKind;
use crate::verdict::{Blame, Verdict};

/// What the core does about one live verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    Nothing,
    /// Probe the provider's monitors now, with their configured probes.
    ProbeNow,
    /// Probe the provider with [`HANG_PROBE`] now and until one passes.
    WatchForHang,
}

/// The probe that sees a hang: a streaming chat request, judged by its first token.
pub const HANG_PROBE: ProbeKind = ProbeKind::Stream;

pub fn reaction(live: &LiveVerdict) -> Reaction {
    match live.verdict {
        Verdict::Timeout => Reaction::WatchForHang,
        Verdict::AuthFailed | Verdict::QuotaExhausted => Reaction::ProbeNow,
        verdict if live.blame == Some(Blame::Provider) && !verdict.is_healthy() => {
            Reaction::ProbeNow
        }
        _ => Reaction::Nothing,
    }
}

/// Which monitor watches `provider` for a hang, and whether it already probes with
/// [`HANG_PROBE`] (then a nudge is enough). Its other chat probes come first, then any monitor;
/// none when the provider has no monitor or no key (a chat probe without a key would only
/// report a setup problem).
pub fn hang_watcher(specs: &[MonitorSpec], provider: &str) -> Option<(usize, bool)> {
    let rank = |kind: ProbeKind| match kind {
        kind if kind == HANG_PROBE => 0,
        ProbeKind::Reachability => 2,
        _ => 1,
    };
    specs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.provider.id == provider && s.provider.has_key())
        .min_by_key(|(i, s)| (rank(s.probe), *i))
        .map(|(i, s)| (i, s.probe == HANG_PROBE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Provider;

    fn live(verdict: Verdict) -> LiveVerdict {
        LiveVerdict {
            provider: "kimi".into(),
            verdict,
            blame: verdict.default_blame(),
            latency_ms: None,
        }
    }

    #[test]
    fn reaction_table() {
        let rows = [
            (Verdict::Up, Reaction::Nothing),
            (Verdict::Degraded, Reaction::Nothing),
            (Verdict::RateLimited, Reaction::Nothing),
            (Verdict::BadRequest, Reaction::Nothing),
            (Verdict::ModelNotFound, Reaction::Nothing),
            (Verdict::Unavailable, Reaction::ProbeNow),
            (Verdict::ServerError, Reaction::ProbeNow),
            (Verdict::Network, Reaction::ProbeNow),
            (Verdict::AuthFailed, Reaction::ProbeNow),
            (Verdict::QuotaExhausted, Reaction::ProbeNow),
            (Verdict::Timeout, Reaction::WatchForHang),
        ];
        for (verdict, want) in rows {
            assert_eq!(reaction(&live(verdict)), want, "{verdict}");
        }
    }

    /// Monitors of provider `p` (keyed or not), one per probe, in order.
    fn specs(keyed: bool, probes: &[ProbeKind]) -> Vec<MonitorSpec> {
        let mut provider = Provider::for_test("p");
        if !keyed {
            provider.api_key = None;
        }
        let interval = std::time::Duration::from_secs(30);
        probes
            .iter()
            .map(|probe| MonitorSpec::new(provider.clone(), *probe, interval, interval))
            .collect()
    }

    #[test]
    fn the_hang_watcher_prefers_a_stream_monitor_then_chat_then_any() {
        use ProbeKind::{Chat, Reachability, Stream};
        let rows: [(&[ProbeKind], _); 3] = [
            (&[Reachability], Some((0, false))),
            (&[Reachability, Chat], Some((1, false))),
            (&[Reachability, Chat, Stream], Some((2, true))),
        ];
        for (probes, want) in rows {
            assert_eq!(hang_watcher(&specs(true, probes), "p"), want, "{probes:?}");
        }
        assert_eq!(hang_watcher(&specs(true, &[Chat]), "other"), None);
        let keyless = specs(false, &[Reachability]);
        assert_eq!(hang_watcher(&keyless, "p"), None);
    }
}

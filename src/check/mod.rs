//! `isdown check`: the one-shot diagnosis.
//!
//! Chooses targets and probe kinds from the config and the command line, runs every target
//! concurrently (its own probes one after another: low-tier Kimi accounts allow one request at a
//! time), adds reachability "witnesses" when only some providers are checked, correlates, and
//! hands a [`CheckReport`] to `report` for printing. Owns no output formatting. `request` is
//! the other question `check` answers: is a failing request the provider's fault or its own?
//! While the probes run, what others see (official pages, the aggregator, community feeds) is
//! gathered concurrently within the same timeout (`crate::corroborate::gather`); it is reported
//! beside the verdict (`others`) and never changes it.

pub mod correlate;
pub mod others;
pub mod report;
pub mod request;

use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::corroborate::{Corroboration, ProviderSources};
use crate::probe::{ProbeError, ProbeKind, ProbeResult, Prober, Timings};
use crate::provider::Provider;
use crate::verdict::classify_transport;

/// 20 s: a healthy one-token completion takes well under 10 s even on a busy provider; past 20 s
/// an agent's user is already waiting too long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Which probes to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeSelection {
    /// `chat` where a key is set, `reachability` where not.
    Default,
    One(ProbeKind),
    All,
}

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Provider ids; empty means every configured provider.
    pub providers: Vec<String>,
    /// An ad-hoc target from `--url`, already built.
    pub adhoc: Option<Provider>,
    pub probes: ProbeSelection,
    pub timeout: Duration,
}

#[derive(Debug, Error)]
pub enum CheckError {
    #[error("unknown provider \"{name}\"; known: {known}")]
    UnknownProvider { name: String, known: String },
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// A target: one provider and the probe kinds to run against it.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Provider,
    pub kinds: Vec<ProbeKind>,
    /// Probes that were asked for but need a key that is not set.
    pub skipped_for_no_key: Vec<ProbeKind>,
}

/// Everything a check found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub targets: Vec<Target>,
    /// Results of the targets, in target order then probe order.
    pub results: Vec<ProbeResult>,
    /// Reachability results of providers probed only for correlation.
    pub witnesses: Vec<ProbeResult>,
    /// Display names by provider id, for summaries.
    pub names: Vec<(String, String)>,
    /// What others see about each target's provider, in target order.
    pub corroboration: Vec<Corroboration>,
    /// The sources that were read, of the targets that have any.
    pub sources: Vec<ProviderSources>,
}

impl CheckReport {
    /// The sources configured for `provider`, when it has any.
    pub fn sources(&self, provider: &str) -> Option<&ProviderSources> {
        self.sources.iter().find(|s| s.provider == provider)
    }
}

/// Picks the targets and witnesses for `options`.
pub fn plan(
    config: &Config,
    options: &CheckOptions,
) -> Result<(Vec<Target>, Vec<Provider>), CheckError> {
    let mut chosen: Vec<Provider> = Vec::new();
    for name in &options.providers {
        let provider = config
            .provider(name)
            .ok_or_else(|| CheckError::UnknownProvider {
                name: name.clone(),
                known: config.provider_ids().join(", "),
            })?;
        if !chosen.iter().any(|p| p.id == provider.id) {
            chosen.push(Provider::clone(provider));
        }
    }
    chosen.extend(options.adhoc.clone());
    let partial = !chosen.is_empty();
    if !partial {
        chosen = config
            .providers
            .iter()
            .map(|p| Provider::clone(p))
            .collect();
    }
    let targets = chosen
        .into_iter()
        .map(|provider| target(provider, options.probes))
        .collect::<Vec<_>>();

    let witnesses = if partial {
        match &config.check.witnesses {
            Some(ids) => ids
                .iter()
                .filter_map(|id| config.provider(id))
                .filter(|p| !targets.iter().any(|t| t.provider.id == p.id))
                .map(Provider::clone)
                .collect(),
            None => config
                .providers
                .iter()
                .filter(|p| p.builtin && !targets.iter().any(|t| t.provider.id == p.id))
                .map(|p| Provider::clone(p))
                .collect(),
        }
    } else {
        Vec::new()
    };
    Ok((targets, witnesses))
}

fn target(provider: Provider, selection: ProbeSelection) -> Target {
    let wanted: Vec<ProbeKind> = match selection {
        ProbeSelection::Default if provider.has_key() => vec![ProbeKind::Chat],
        ProbeSelection::Default => vec![ProbeKind::Reachability],
        ProbeSelection::One(kind) => vec![kind],
        ProbeSelection::All => ProbeKind::ALL.to_vec(),
    };
    let (kinds, skipped): (Vec<_>, Vec<_>) = wanted
        .into_iter()
        .partition(|k| provider.has_key() || !k.needs_key());
    let kinds = if kinds.is_empty() {
        vec![ProbeKind::Reachability]
    } else {
        kinds
    };
    Target {
        provider,
        kinds,
        skipped_for_no_key: skipped,
    }
}

/// Runs the check. `progress(done, total)` is called after every finished probe.
pub async fn run(
    config: &Config,
    options: &CheckOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<CheckReport, CheckError> {
    let (targets, witnesses) = plan(config, options)?;
    let prober = Prober::new()?;
    let ids: Vec<String> = targets.iter().map(|t| t.provider.id.clone()).collect();
    let sources: Vec<ProviderSources> = ids
        .iter()
        .filter_map(|id| config.corroboration.of(id).cloned())
        .collect();
    let others = {
        let (settings, ids, timeout) = (config.corroboration.clone(), ids.clone(), options.timeout);
        let now = crate::time::Clock::system().now();
        tokio::spawn(async move {
            crate::corroborate::gather::gather(&settings, &ids, timeout, now).await
        })
    };
    let total: usize = targets.iter().map(|t| t.kinds.len()).sum::<usize>() + witnesses.len();

    let mut tasks = JoinSet::new();
    let jobs = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (Some(i), t.provider.clone(), t.kinds.clone()))
        .chain(
            witnesses
                .iter()
                .map(|w| (None, w.clone(), vec![ProbeKind::Reachability])),
        );
    for (index, provider, kinds) in jobs {
        let prober = prober.clone();
        let timeout = options.timeout;
        tasks.spawn(async move {
            let results = probe_target(&prober, &provider, &kinds, timeout).await;
            (index, results)
        });
    }

    let mut by_target: Vec<Vec<ProbeResult>> = vec![Vec::new(); targets.len()];
    let mut witness_results = Vec::new();
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (index, results) = joined.expect("probe tasks do not panic");
        done += results.len();
        progress(done, total);
        match index {
            Some(i) => by_target[i] = results,
            None => witness_results.extend(results),
        }
    }
    let mut results: Vec<ProbeResult> = by_target.into_iter().flatten().collect();
    correlate::correlate(&mut results, &witness_results);

    let names = config
        .providers
        .iter()
        .map(|p| &**p)
        .chain(options.adhoc.iter())
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    // Bounded by the same timeout as one probe, and started with them: done by now, or soon.
    let corroboration = others.await.unwrap_or_else(|_| {
        ids.iter()
            .map(|id| Corroboration {
                provider: id.clone(),
                ..Corroboration::default()
            })
            .collect()
    });
    Ok(CheckReport {
        targets,
        results,
        witnesses: witness_results,
        names,
        corroboration,
        sources,
    })
}

/// Times the connection once, then runs the probes in order. When the connection itself fails,
/// every probe reports that failure without being sent.
async fn probe_target(
    prober: &Prober,
    provider: &Provider,
    kinds: &[ProbeKind],
    timeout: Duration,
) -> Vec<ProbeResult> {
    match prober.phases(provider, timeout).await {
        Err(failed) => kinds
            .iter()
            .map(|&kind| ProbeResult {
                provider: provider.id.clone(),
                url: provider.base_url.to_string(),
                model: (kind != ProbeKind::Reachability).then(|| provider.probe_model.clone()),
                kind,
                diagnosis: classify_transport(&failed.failure),
                latency: None,
                ttft: None,
                timings: Timings {
                    phases: failed.phases,
                    ..Timings::default()
                },
            })
            .collect(),
        Ok(phases) => {
            let mut results = Vec::with_capacity(kinds.len());
            for &kind in kinds {
                let mut result = prober.run(provider, kind, timeout).await;
                result.timings.phases = phases;
                results.push(result);
            }
            results
        }
    }
}

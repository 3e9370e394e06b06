//! Routes: which targets a requested model name goes to, in which order.
//!
//! Built once from the [`RouteSpec`]s of the gateway's settings (`[[routes]]`, validated by
//! `config`); the first route whose pattern matches wins (file order). Patterns are exact names
//! or globs where `*` matches any run of characters — a hand-written matcher, since exact names
//! and `*` globs are all routes need. Without any `[[routes]]`, every provider that has a key is
//! reachable as `PROVIDER/MODEL` (e.g. `kimi/kimi-k2.6`), the model after the first `/` sent
//! unchanged. Resolving does not allocate.
//!
//! A reload builds a new table from the previous one: a target (provider and model) that is in
//! both keeps its state — breaker, answer times — so a reload neither forgives a failing target
//! nor forgets a recovering one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::breaker::BreakerPolicy;
use super::settings::{HedgeAfter, LintMode, RouteSpec, StreamRecovery};
use super::target::{FORWARDED, TargetState};
use super::telemetry::GatewayMetrics;
use crate::provider::Provider;

/// How the model name sent upstream is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelName {
    /// The requested name, unchanged.
    Forward,
    /// A fixed name from the route.
    Fixed(String),
    /// The part after `PROVIDER/` (default routes).
    AfterSlash,
}

#[derive(Debug, Clone)]
pub struct Target {
    /// Index into the gateway's upstreams (same order as the config's providers).
    pub upstream: usize,
    pub model: ModelName,
    pub params: Map<String, Value>,
    /// Breaker and counters, shared by every route target with the same provider and fixed
    /// model; targets that forward the requested name share one per provider.
    pub state: Arc<TargetState>,
}

impl Target {
    /// The model name to send for a request that asked for `requested`.
    pub fn model_for<'a>(&'a self, requested: &'a str) -> &'a str {
        match &self.model {
            ModelName::Forward => requested,
            ModelName::Fixed(name) => name,
            ModelName::AfterSlash => requested.split_once('/').map_or(requested, |(_, m)| m),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pattern: String,
    pub targets: Vec<Target>,
    pub hedge_after: Option<HedgeAfter>,
    pub stream_recovery: StreamRecovery,
    /// What the request lint does on this route.
    pub lint: LintMode,
}

/// Every route, in order.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// The aliases `GET /v1/models` lists.
    aliases: Vec<String>,
    /// Every target state with its upstream index (the monitor's incidents are per provider).
    states: Vec<(usize, Arc<TargetState>)>,
    /// True when built from the defaults (no `[[routes]]`).
    pub defaults: bool,
}

impl RouteTable {
    /// Builds the table and its target states; `providers` is the config's list (upstream
    /// indexes follow it). Targets also in `previous` keep their state.
    pub fn new(
        specs: &[RouteSpec],
        providers: &[Arc<Provider>],
        policy: BreakerPolicy,
        metrics: &GatewayMetrics,
        previous: Option<&RouteTable>,
        stream_recovery: StreamRecovery,
    ) -> RouteTable {
        let index = |id: &str| providers.iter().position(|p| p.id == id);
        let mut states: BTreeMap<(usize, Option<String>), Arc<TargetState>> = BTreeMap::new();
        let mut state = |upstream: usize, model: Option<&String>| {
            states
                .entry((upstream, model.cloned()))
                .or_insert_with(|| {
                    let provider = &providers[upstream].id;
                    let label = model.map_or(FORWARDED, String::as_str);
                    let kept = previous.and_then(|old| {
                        old.states
                            .iter()
                            .find(|(_, s)| &*s.provider == provider.as_str() && &*s.label == label)
                    });
                    match kept {
                        Some((_, state)) => state.clone(),
                        None => Arc::new(TargetState::new(
                            provider,
                            model.map(String::as_str),
                            policy,
                            metrics,
                        )),
                    }
                })
                .clone()
        };
        if specs.is_empty() {
            let mut routes = Vec::new();
            let mut aliases = Vec::new();
            for (i, provider) in providers.iter().enumerate() {
                if !provider.has_key() {
                    continue;
                }
                aliases.push(format!("{}/{}", provider.id, provider.probe_model));
                routes.push(Route {
                    pattern: format!("{}/*", provider.id),
                    targets: vec![Target {
                        upstream: i,
                        model: ModelName::AfterSlash,
                        params: Map::new(),
                        state: state(i, None),
                    }],
                    hedge_after: None,
                    stream_recovery,
                    lint: LintMode::Off,
                });
            }
            return RouteTable {
                routes,
                aliases,
                states: flatten(states),
                defaults: true,
            };
        }
        let routes = specs
            .iter()
            .map(|spec| Route {
                pattern: spec.pattern.clone(),
                targets: spec
                    .targets
                    .iter()
                    // Validated by config: every target names a known provider.
                    .filter_map(|t| {
                        let upstream = index(&t.provider)?;
                        Some(Target {
                            upstream,
                            model: t.model.clone().map_or(ModelName::Forward, ModelName::Fixed),
                            params: t.params.clone(),
                            state: state(upstream, t.model.as_ref()),
                        })
                    })
                    .collect(),
                hedge_after: spec.hedge_after,
                stream_recovery: spec.stream_recovery.unwrap_or(stream_recovery),
                lint: spec.lint,
            })
            .collect::<Vec<_>>();
        let aliases = routes.iter().map(|r| r.pattern.clone()).collect();
        RouteTable {
            routes,
            aliases,
            states: flatten(states),
            defaults: false,
        }
    }

    /// Every target state of the table, with the index of its upstream.
    pub fn states(&self) -> &[(usize, Arc<TargetState>)] {
        &self.states
    }

    /// The first route matching `model`.
    pub fn resolve(&self, model: &str) -> Option<&Route> {
        self.resolve_index(model).map(|i| &self.routes[i])
    }

    /// The index of the first route matching `model`.
    pub fn resolve_index(&self, model: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| glob_match(&r.pattern, model))
    }

    /// The route at `index` (from [`RouteTable::resolve_index`] on this table).
    pub fn route(&self, index: usize) -> &Route {
        &self.routes[index]
    }

    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }
}

fn flatten(
    map: BTreeMap<(usize, Option<String>), Arc<TargetState>>,
) -> Vec<(usize, Arc<TargetState>)> {
    map.into_iter()
        .map(|((upstream, _), state)| (upstream, state))
        .collect()
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut text) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or("");
    for part in parts {
        match text.find(part) {
            Some(at) => text = &text[at + part.len()..],
            None => return false,
        }
    }
    text.len() >= last.len() && text.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let rows = [
            ("kimi-k2", "kimi-k2", true),
            ("kimi-k2", "kimi-k2.6", false),
            ("kimi-*", "kimi-k2.6", true),
            ("kimi-*", "kimi-", true),
            ("kimi-*", "deepseek", false),
            ("*", "anything", true),
            ("*-flash", "deepseek-v4-flash", true),
            ("*-flash", "flash", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-b-x-c", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("gpt-*-mini", "gpt-5-mini", true),
            ("gpt-*-mini", "gpt-5-mini-2", false),
        ];
        for (pattern, text, want) in rows {
            assert_eq!(glob_match(pattern, text), want, "{pattern} vs {text}");
        }
    }

    #[test]
    fn breakers_are_per_provider_and_model_and_shared_across_routes() {
        let routes = [
            RouteSpec::for_test("r1", &[("kimi", Some("x")), ("deepseek", None)]),
            RouteSpec::for_test(
                "r2",
                &[("kimi", Some("x")), ("kimi", Some("y")), ("deepseek", None)],
            ),
        ];
        let providers = [Provider::for_test("kimi"), Provider::for_test("deepseek")].map(Arc::new);
        let metrics = GatewayMetrics::register(&crate::metrics::Metrics::new());
        let table = RouteTable::new(
            &routes,
            &providers,
            BreakerPolicy::default(),
            &metrics,
            None,
            StreamRecovery::Off,
        );
        let r1 = &table.resolve("r1").unwrap().targets;
        let r2 = &table.resolve("r2").unwrap().targets;
        assert!(Arc::ptr_eq(&r1[0].state, &r2[0].state), "kimi/x shared");
        assert!(
            !Arc::ptr_eq(&r2[0].state, &r2[1].state),
            "kimi/y is its own"
        );
        assert!(
            Arc::ptr_eq(&r1[1].state, &r2[2].state),
            "deepseek forwarding shared"
        );
        assert_eq!(table.states().len(), 3);
        assert_eq!(&*r2[1].state.label, "y");
        assert_eq!(&*r1[1].state.label, "*");
    }

    #[test]
    fn default_route_model_is_the_part_after_the_provider() {
        let metrics = GatewayMetrics::register(&crate::metrics::Metrics::new());
        let target = Target {
            upstream: 0,
            model: ModelName::AfterSlash,
            params: Map::new(),
            state: Arc::new(TargetState::new(
                "kimi",
                None,
                BreakerPolicy::default(),
                &metrics,
            )),
        };
        assert_eq!(target.model_for("kimi/kimi-k2.6"), "kimi-k2.6");
        assert_eq!(
            target.model_for("openrouter/moonshotai/kimi-k2"),
            "moonshotai/kimi-k2"
        );
    }
}

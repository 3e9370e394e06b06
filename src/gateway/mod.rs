//! The failover gateway: an OpenAI-compatible endpoint (`POST /v1/chat/completions`,
//! `GET /v1/models`) inside `isdown serve` that sends each request to the targets of its route,
//! in order, and decides after every failed attempt by the verdict the one classifier gives it
//! (the README's "How it decides" table).
//!
//! It owns the request path: client authentication (`auth`), the budget of request bodies in
//! flight (`budget`), reading the request (`request`: a borrowed peek, never a full tree unless
//! a fix needs one), routes (`route`), provider request fixes (`fixes`), per-target state
//! (`target`: the circuit breaker of `breaker`, answer times, counters), the decisions and their
//! waits (`decision`, with the shared `crate::backoff`), one upstream attempt (`upstream`),
//! opt-in hedging of non-streaming requests (`hedge`), off-path recovery tests of failing
//! targets (`recovery`), the items of a stream (`stream`: what they mean, how they are framed),
//! the streaming relay (`relay`) and its opt-in verified recovery of broken streams (`resume`),
//! metrics and passive-health reports (`telemetry`), the OpenAI-shaped errors (`error`), and the
//! opt-in per-route request lint (`lint`, on top of `crate::lint`). For work that can wait (the
//! durable queue) it offers one read of its state, `readiness`, and runs the queue's lines
//! through its own router, marked `auth::InProcess` instead of a client key.
//! It classifies nothing itself (`verdict` does) and never writes the health view: it reads the
//! monitor's open incidents from [`Health`] about once a second and reports every attempt, every
//! skipped failing target and every recovery test through [`PassiveReporter`].
//!
//! Its settings are its own types (`settings`): `config` builds one [`GatewaySettings`] from the
//! file, validated, and the gateway never reads the config itself. Everything built from them —
//! routes, targets, fixes, timeouts, client keys — is one table (`Inner`), swapped whole by
//! [`Gateway::reload`]: a request keeps the table it arrived on until its answer (and stream) is
//! done; target states that both tables share are the same objects, so a reload keeps every
//! breaker.
//!
//! Target order for one request: while some target that can hold the prompt is healthy, route
//! order, passing failing targets over (a live request is never the trial of a target known to
//! be failing; passing one over may start its recovery test); when none is, every target, least
//! bad first (`breaker::Standing`).
//!
//! Hot path: the body is read once within its budget reservation, peeked (top-level fields as
//! raw byte ranges) and forwarded as the original bytes with `model` replaced; the token
//! estimate reads raw text and only for routes with a known context window; streams are relayed
//! chunk by chunk and never collected; one pooled HTTP client serves every upstream; no lock is
//! held across an `.await`; successful attempts log at debug level only.

pub mod auth;
pub mod breaker;
pub mod budget;
pub mod decision;
pub mod error;
pub mod fixes;
mod hedge;
pub mod lint;
pub mod readiness;
mod recovery;
mod relay;
pub mod request;
mod resume;
pub mod route;
pub mod settings;
mod stream;
pub mod target;
mod telemetry;
mod upstream;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::incident::IncidentKind;
use crate::metrics::Metrics;
use crate::monitor::health::{Health, LiveVerdict, PassiveReporter};
use crate::verdict::{Blame, Diagnosis, Verdict};
use auth::ClientAuth;
use breaker::{Admission, BreakerPolicy, OpenIncident, Outcome, Standing};
use decision::{Action, Failed, Policy, Progress};
use error::{ApiError, StartError};
use route::{Route, RouteTable, Target};
use settings::{GatewaySettings, GatewayTimeouts, LintMode, StreamRecovery};
use target::TargetState;
use telemetry::{GatewayMetrics, OutcomeCounters, RequestOutcome};
use upstream::{Attempt, Failure, Upstream};

/// Response header: the provider id that served the answer.
pub const HEADER_PROVIDER: &str = "x-isdown-provider";
/// Response header: the model name sent to that provider.
pub const HEADER_MODEL: &str = "x-isdown-model";
/// Response header: attempts made for this request (1 when the first try answered).
pub const HEADER_ATTEMPTS: &str = "x-isdown-attempts";
/// Request header: a shorter overall deadline for this request, e.g. `20s` or `1500ms`.
pub const HEADER_TIMEOUT: &str = "x-isdown-timeout";

const PROVIDER: HeaderName = HeaderName::from_static(HEADER_PROVIDER);
const MODEL: HeaderName = HeaderName::from_static(HEADER_MODEL);
const ATTEMPTS: HeaderName = HeaderName::from_static(HEADER_ATTEMPTS);

/// How often the open incidents of the health view are re-read: a monitor confirms an outage
/// over tens of seconds, so one second of lag costs nothing and keeps the read off the hot path.
const INCIDENT_SYNC_EVERY: Duration = Duration::from_secs(1);

/// How long a target whose key or balance failed sits out (`auth_failed`, `quota_exhausted`):
/// long enough that a revoked key does not cost every request an attempt, short enough that a
/// fixed key is used again within a minute.
const SETUP_COOL_DOWN: Duration = Duration::from_secs(60);

/// Idle connections kept per upstream host: enough for 64 requests in flight to one provider
/// to reuse their connections (agents rarely run more at once), few enough that a burst of
/// thousands does not hold thousands of sockets — file descriptors and TLS buffers — for the
/// 90 s idle timeout after it.
const POOL_IDLE_PER_TARGET: usize = 64;

/// What the gateway needs from the rest of `isdown serve`.
#[derive(Clone)]
pub struct GatewayDeps {
    pub health: Health,
    pub reporter: PassiveReporter,
    pub metrics: Metrics,
}

/// `host[:port]` of the configured public URL: the one non-loopback `Host` the open gateway
/// accepts.
fn public_host(public_url: Option<&str>) -> Option<String> {
    let url = reqwest::Url::parse(public_url?).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The gateway: cheap to clone (one `Arc`). Its table — everything built from its settings — is
/// swapped whole by [`Gateway::reload`]; a request takes the table current when it arrives and
/// keeps it to the end, so a reload never changes a request in flight.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

/// What outlives a reload.
struct Shared {
    table: RwLock<Arc<Inner>>,
    deps: GatewayDeps,
    metrics: GatewayMetrics,
    listen: SocketAddr,
    breaker: BreakerPolicy,
    /// Request bodies in flight, for every table: a reload resizes it, never replaces it.
    budget: budget::Budget,
}

/// One table: built from one [`GatewaySettings`], read-only but for the target states it shares with the
/// tables before and after it.
struct Inner {
    client: reqwest::Client,
    routes: RouteTable,
    upstreams: Vec<Upstream>,
    timeouts: GatewayTimeouts,
    policy: Policy,
    max_request_bytes: usize,
    auth: ClientAuth,
    health: Health,
    reporter: PassiveReporter,
    outcomes: OutcomeCounters,
    recoveries: telemetry::RecoveryCounters,
    /// Some route hedges: successful answer times are kept for its p95.
    hedging: bool,
    /// When the incidents were last read; `try_lock` so that only one request does it.
    incidents_read: Mutex<Option<Instant>>,
    budget: budget::Budget,
}

impl Gateway {
    /// Builds the gateway for a listener bound to `listen`. Refuses `open_on_localhost` on a
    /// non-loopback address.
    pub fn new(
        settings: &GatewaySettings,
        deps: GatewayDeps,
        listen: SocketAddr,
    ) -> Result<Gateway, StartError> {
        Gateway::with_breaker(settings, deps, listen, BreakerPolicy::default())
    }

    /// As [`Gateway::new`], with a breaker policy (tests use small ones).
    pub fn with_breaker(
        settings: &GatewaySettings,
        deps: GatewayDeps,
        listen: SocketAddr,
        breaker: BreakerPolicy,
    ) -> Result<Gateway, StartError> {
        let metrics = GatewayMetrics::register(&deps.metrics);
        let budget = budget::Budget::new(settings.max_request_bytes_in_flight);
        let parts = Parts {
            deps: &deps,
            metrics: &metrics,
            listen,
            breaker,
            budget: &budget,
        };
        let table = Inner::build(settings, &parts, None)?;
        Ok(Gateway {
            shared: Arc::new(Shared {
                table: RwLock::new(Arc::new(table)),
                deps,
                metrics,
                listen,
                breaker,
                budget,
            }),
        })
    }

    /// Builds a table from `settings` and makes it current: new requests use it, requests in
    /// flight finish on the one they started with. Targets (provider and model) that are in
    /// both keep their breaker and answer times. On an error the current table stays.
    pub fn reload(&self, settings: &GatewaySettings) -> Result<(), StartError> {
        let shared = &self.shared;
        let previous = self.table();
        let parts = Parts {
            deps: &shared.deps,
            metrics: &shared.metrics,
            listen: shared.listen,
            breaker: shared.breaker,
            budget: &shared.budget,
        };
        let table = Inner::build(settings, &parts, Some(&previous))?;
        shared.budget.resize(settings.max_request_bytes_in_flight);
        tracing::info!(
            routes = settings.routes.len(),
            client_keys = settings.client_keys.len(),
            "gateway: routes, targets and client keys reloaded"
        );
        *shared.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        Ok(())
    }

    /// The current table.
    fn table(&self) -> Arc<Inner> {
        self.shared
            .table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `POST /v1/chat/completions` and `GET /v1/models`, to merge with the web router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .with_state(self.clone())
    }
}

async fn chat_completions(
    State(gateway): State<Gateway>,
    in_process: Option<Extension<auth::InProcess>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inner = gateway.table();
    // The queue's own requests carry the in-process marker instead of a client key.
    if in_process.is_none()
        && let Err(e) = inner.auth.check(&headers, auth::Body::Json)
    {
        inner.outcomes.count(RequestOutcome::Rejected);
        return e.into_response();
    }
    match inner.chat(&inner, &headers, body).await {
        Ok(response) => response,
        Err((error, outcome)) => {
            inner.outcomes.count(outcome);
            error.into_response()
        }
    }
}

async fn models(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let inner = gateway.table();
    if let Err(e) = inner.auth.check(&headers, auth::Body::None) {
        return e.into_response();
    }
    let data: Vec<Value> = inner
        .routes
        .aliases()
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "isdown"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

type Refusal = (ApiError, RequestOutcome);

fn rejected(error: ApiError) -> Refusal {
    (error, RequestOutcome::Rejected)
}

/// One failed attempt, kept for the final error message.
struct Tried {
    upstream: usize,
    diagnosis: Diagnosis,
}

// === impl Inner: the request path ===

/// One request on its way through its route's targets.
struct Run<'a> {
    route: &'a Route,
    /// Index of `route` in the table (a recovered stream finds it again by it).
    route_index: usize,
    /// The body budget held for this request; a stream that may be recovered takes it along.
    reservation: Option<budget::Reservation>,
    /// The caller's request; shared with a stream that may be recovered.
    request: Arc<request::ChatRequest>,
    stream: bool,
    /// Estimated prompt tokens; 0 when no target of the route has a known context window.
    estimate: u64,
    deadline: Instant,
    attempts: u32,
    tried: Vec<Tried>,
    /// Route positions already attempted, one bit each (a hedge reaches the next target
    /// early); a bitmask so that the request path allocates nothing for it.
    done: u64,
    /// After a context_too_long: targets whose window is known and no larger are skipped.
    need_window_above: Option<u64>,
    skipped_for_window: bool,
    /// What the route's request lint finds (empty when it does not lint).
    findings: Vec<crate::lint::Finding>,
}

impl Run<'_> {
    /// Positions from 64 on are never marked: only a hedge needs the mark, and it never picks
    /// them.
    fn is_done(&self, position: usize) -> bool {
        position < 64 && self.done & (1 << position) != 0
    }

    fn mark_done(&mut self, position: usize) {
        if position < 64 {
            self.done |= 1 << position;
        }
    }

    fn window_fits(&self, up: &Upstream) -> bool {
        match (up.context_window, self.need_window_above) {
            (Some(window), _) if self.estimate > window => false,
            (Some(window), Some(floor)) => window > floor,
            _ => true,
        }
    }
}

/// Where a target left the request.
enum Step {
    Served(Response),
    Next,
    DeadlinePassed,
}

/// What a table is built with besides its settings.
struct Parts<'a> {
    deps: &'a GatewayDeps,
    metrics: &'a GatewayMetrics,
    listen: SocketAddr,
    breaker: BreakerPolicy,
    budget: &'a budget::Budget,
}

impl Inner {
    /// A table for `settings`; `previous` lends its target states and its HTTP client (whose
    /// idle connections are worth keeping) when the connect timeout is unchanged.
    fn build(
        settings: &GatewaySettings,
        parts: &Parts<'_>,
        previous: Option<&Inner>,
    ) -> Result<Inner, StartError> {
        if settings.open_on_localhost && !parts.listen.ip().is_loopback() {
            return Err(StartError::OpenOnNonLoopback { addr: parts.listen });
        }
        let timeouts = settings.timeouts;
        let client = match previous {
            Some(old) if old.timeouts.connect == timeouts.connect => old.client.clone(),
            _ => upstream_client(&timeouts)?,
        };
        let table = fixes::FixTable::embedded()?;
        let metrics = parts.metrics;
        let upstreams = settings
            .providers
            .iter()
            .map(|p| Upstream::new(p, table.for_provider(&p.id), metrics.target(&p.id)))
            .collect();
        if settings.client_keys.is_empty() && !settings.open_on_localhost {
            tracing::info!(
                "gateway: no client key is set ([gateway] client_keys_env); /v1 requests will be \
                 refused with 401"
            );
        }
        let routes = RouteTable::new(
            &settings.routes,
            &settings.providers,
            parts.breaker,
            metrics,
            previous.map(|old| &old.routes),
            settings.stream_recovery,
        );
        Ok(Inner {
            client,
            routes,
            upstreams,
            timeouts,
            policy: Policy::new(settings.max_retry_wait),
            max_request_bytes: settings.max_request_bytes,
            auth: ClientAuth::new(
                settings.client_keys.clone(),
                settings.open_on_localhost,
                settings.client_keys_env.clone(),
                public_host(settings.public_url.as_deref()),
            ),
            health: parts.deps.health.clone(),
            reporter: parts.deps.reporter.clone(),
            outcomes: metrics.outcomes(),
            recoveries: metrics.recoveries(),
            hedging: settings.routes.iter().any(|r| r.hedge_after.is_some()),
            incidents_read: Mutex::new(None),
            budget: parts.budget.clone(),
        })
    }

    async fn chat(
        &self,
        this: &Arc<Inner>,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, Refusal> {
        let started = Instant::now();
        let deadline = started + request::budget(headers, self.timeouts.total).map_err(rejected)?;
        // Held until the answer is handed over: the parsed request lives that long.
        let (bytes, reservation) = self.read_body(headers, body).await.map_err(rejected)?;
        let request = request::parse_request(bytes).map_err(rejected)?;
        let route_index = self
            .routes
            .resolve_index(&request.model)
            .ok_or_else(|| rejected(ApiError::no_route(&request.model, self.routes.defaults)))?;
        let route = self.routes.route(route_index);
        // Only a known context window needs the prompt's size.
        let windows = route
            .targets
            .iter()
            .any(|t| self.upstreams[t.upstream].context_window.is_some());
        let estimate = if windows {
            request.estimate_tokens()
        } else {
            0
        };
        // The lint reads the whole request: a tree is built only for a route that lints.
        let findings = if route.lint == LintMode::Off {
            Vec::new()
        } else {
            lint::findings(route, &self.upstreams, &request.to_map(), &request.model)
        };
        if route.lint == LintMode::Reject && !findings.is_empty() {
            return Err(rejected(ApiError::lint_rejected(findings)));
        }
        self.sync_incidents(started);

        let mut run = Run {
            route,
            route_index,
            reservation: Some(reservation),
            stream: request.stream,
            request: Arc::new(request),
            estimate,
            deadline,
            attempts: 0,
            tried: Vec::new(),
            done: 0,
            need_window_above: None,
            skipped_for_window: false,
            findings,
        };
        // Targets known to be failing get no live request while another one is healthy; when
        // none is, every target is tried, least bad first. Admission is taken only when a
        // target's turn comes, so a trial slot is not used up by a request that never reaches
        // that target.
        let least_bad = self.least_bad_order(&run, started);
        for step in 0..route.targets.len() {
            let position = least_bad.as_ref().map_or(step, |order| order[step]);
            let target = &route.targets[position];
            if run.is_done(position) {
                continue;
            }
            if !run.window_fits(&self.upstreams[target.upstream]) {
                run.skipped_for_window = true;
                continue;
            }
            if least_bad.is_none()
                && target.state.breaker.admit(Instant::now()) == Admission::Rejected
            {
                self.pass_over(this, target, &run.request.model);
                continue;
            }
            match self.serve(this, &mut run, position).await {
                Step::Served(mut response) => {
                    self.outcomes.count(RequestOutcome::Served);
                    lint::mark(&mut response, &run.findings);
                    return Ok(response);
                }
                Step::Next => {}
                Step::DeadlinePassed => break,
            }
        }
        self.outcomes.count(RequestOutcome::Failed);
        let error = self.exhausted(&run);
        let mut response = error.into_response();
        response
            .headers_mut()
            .insert(ATTEMPTS, HeaderValue::from(run.attempts));
        lint::mark(&mut response, &run.findings);
        Ok(response)
    }

    /// `None` while some target that can hold the prompt is healthy (route order applies);
    /// otherwise every target's route position, least bad first (route order among equals).
    fn least_bad_order(&self, run: &Run<'_>, now: Instant) -> Option<Vec<usize>> {
        let targets = &run.route.targets;
        let healthy = targets.iter().any(|t| {
            run.window_fits(&self.upstreams[t.upstream])
                && t.state.breaker.peek(now) != Admission::Rejected
        });
        if healthy {
            return None;
        }
        let mut order: Vec<(Standing, usize)> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.state.breaker.standing(now), i))
            .collect();
        order.sort();
        Some(order.into_iter().map(|(_, i)| i).collect())
    }

    /// A live request passes a failing target over; a recovery test starts when one is due.
    fn pass_over(&self, this: &Arc<Inner>, target: &Target, model: &str) {
        target.state.skipped(&self.reporter);
        if target.state.breaker.claim_test(Instant::now()) {
            recovery::spawn(this, target, target.model_for(model));
        }
    }

    /// Attempts on one target (with the same-target retries the decision table allows, and the
    /// route's hedge), until it answers, fails over, or the deadline passes.
    async fn serve(&self, this: &Arc<Inner>, run: &mut Run<'_>, position: usize) -> Step {
        let route = run.route;
        let target = &route.targets[position];
        target.state.in_use();
        let up = &self.upstreams[target.upstream];
        let body = up.body_of(
            &run.request,
            target.model_for(&run.request.model),
            &target.params,
        );
        run.mark_done(position);
        let mut retries = 0;
        loop {
            let now = Instant::now();
            if now >= run.deadline {
                return Step::DeadlinePassed;
            }
            run.attempts += 1;
            let hedge = (retries == 0)
                .then(|| self.hedge_plan(run, position, now))
                .flatten();
            let attempt = match hedge {
                Some(plan) => match self.race(run, position, body.clone(), plan, now).await {
                    hedge::Raced::Primary(attempt) => attempt,
                    hedge::Raced::HedgeWon { partner, served } => {
                        return Step::Served(self.deliver(this, run, partner, served));
                    }
                },
                None => {
                    up.attempt(
                        &self.client,
                        body.clone(),
                        run.stream,
                        &self.timeouts,
                        now,
                        run.deadline,
                    )
                    .await
                }
            };
            let failure = match attempt {
                Attempt::Served(served) => {
                    let started = Started {
                        at: now,
                        attempts: run.attempts,
                    };
                    return Step::Served(self.deliver(this, run, (position, started), served));
                }
                Attempt::Failed(failure) => failure,
            };
            let suspect =
                !run.findings.is_empty() && failure.diagnosis.verdict == Verdict::ServerError;
            self.observe_attempt(
                target,
                &failure,
                now,
                run.attempts,
                suspect.then_some(&run.findings[..]),
            );
            let failed = Failed {
                request_flagged: suspect,
                verdict: failure.diagnosis.verdict,
                retry_after: failure
                    .diagnosis
                    .retry_after_s
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(86_400.0))),
                before_any_byte: failure.before_any_byte,
            };
            let progress = Progress {
                same_target_retries: retries,
                remaining: run.deadline.saturating_duration_since(Instant::now()),
            };
            match decision::decide(failed, progress, &self.policy, fastrand::f64()) {
                Action::ReturnToCaller => {
                    let response = failure.passthrough();
                    let model_name = target.model_for(&run.request.model);
                    return Step::Served(label(response, up, model_name, run.attempts));
                }
                Action::RetrySame { wait } => {
                    tracing::debug!(provider = %up.id, ?wait, "gateway: retrying the same target");
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                Action::Next {
                    cool_down,
                    setup_problem,
                } => {
                    if let Some(cool) = cool_down {
                        target.state.breaker.cool_down(Instant::now() + cool);
                    }
                    if setup_problem {
                        self.setup_problem(up, &failure.diagnosis);
                    }
                    run.tried.push(Tried {
                        upstream: target.upstream,
                        diagnosis: failure.diagnosis,
                    });
                    return Step::Next;
                }
                Action::NextLargerWindow => {
                    // An unknown window says nothing: later unknown windows may be tried.
                    run.need_window_above = up.context_window.max(run.need_window_above);
                    run.tried.push(Tried {
                        upstream: target.upstream,
                        diagnosis: failure.diagnosis,
                    });
                    return Step::Next;
                }
            }
        }
    }

    /// The client's response for an answer from the target at route position `position`.
    fn deliver(
        &self,
        this: &Arc<Inner>,
        run: &mut Run<'_>,
        (position, started): (usize, Started),
        served: upstream::Served,
    ) -> Response {
        let route = run.route;
        let target = &route.targets[position];
        let up = &self.upstreams[target.upstream];
        let response = match served.body {
            upstream::ServedBody::Whole(response) => {
                if self.hedging && !run.stream {
                    target.state.answers.record(started.at.elapsed());
                }
                self.observe_success(target, &served.diagnosis, started.at, started.attempts);
                response
            }
            // A stream is judged when it ends (the relay reports it).
            upstream::ServedBody::Stream(held) => {
                let resume = (run.route.stream_recovery == StreamRecovery::Verified).then(|| {
                    Box::new(resume::Resume {
                        route: run.route_index,
                        position,
                        request: run.request.clone(),
                        deadline: run.deadline,
                        _reservation: run.reservation.take().unwrap_or_else(budget::Budget::empty),
                        sent: resume::Transcript::new(),
                        recovered: None,
                    })
                });
                relay::response(
                    held,
                    relay::Finish {
                        inner: this.clone(),
                        upstream: target.upstream,
                        state: target.state.clone(),
                        started: started.at,
                    },
                    self.timeouts.idle,
                    run.deadline,
                    resume,
                )
            }
        };
        label(
            response,
            up,
            target.model_for(&run.request.model),
            run.attempts,
        )
    }

    /// The final error once no target answered.
    fn exhausted(&self, run: &Run<'_>) -> ApiError {
        let (tried, attempts, deadline) = (&run.tried, run.attempts, run.deadline);
        let Some(last) = tried.last() else {
            if run.skipped_for_window {
                return ApiError::context_too_long(run.estimate);
            }
            return ApiError::deadline(format!(
                "the request's deadline passed after {attempts} attempt(s)"
            ));
        };
        let list: Vec<String> = tried
            .iter()
            .map(|t| {
                format!(
                    "{}: {} ({})",
                    self.upstreams[t.upstream].id, t.diagnosis.verdict, t.diagnosis.explanation
                )
            })
            .collect();
        let verdict = last.diagnosis.verdict;
        let request_suspect = verdict == Verdict::ServerError && !run.findings.is_empty();
        let mut summary = format!(
            "no target answered after {attempts} attempt(s): {}",
            list.join("; ")
        );
        if Instant::now() >= deadline {
            summary.push_str("; the request's deadline passed");
        }
        let summary = crate::secret::scrub(&summary);
        if request_suspect {
            return ApiError::request_likely_invalid(run.findings.clone(), summary);
        }
        let status = match verdict {
            Verdict::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Verdict::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Verdict::ContextTooLong => StatusCode::BAD_REQUEST,
            Verdict::Overloaded | Verdict::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        let code = if verdict == Verdict::ContextTooLong {
            "context_length_exceeded"
        } else {
            verdict.as_str()
        };
        ApiError::upstream_failed(status, code, summary)
    }

    /// An account or config problem on a target: a bad key or an empty balance will not fix
    /// itself within seconds, so the target sits out [`SETUP_COOL_DOWN`] (then one request
    /// finds out whether it was fixed); a warning says what to do, at most once per cool-down.
    fn setup_problem(&self, up: &Upstream, diagnosis: &Diagnosis) {
        let now = Instant::now();
        if matches!(
            diagnosis.verdict,
            Verdict::AuthFailed | Verdict::QuotaExhausted
        ) {
            // A key or balance is the provider account's: every model of it sits out.
            for (_, state) in self.states_of(up) {
                state.breaker.cool_down(now + SETUP_COOL_DOWN);
            }
        }
        if up.setup_warning_due(now, SETUP_COOL_DOWN) {
            tracing::warn!(
                provider = %up.id,
                verdict = %diagnosis.verdict,
                "gateway: setup problem on a target, trying the next one: {} — {}",
                diagnosis.explanation,
                diagnosis.advice
            );
        }
    }

    /// Every target state of the provider `up`.
    fn states_of<'a>(
        &'a self,
        up: &'a Upstream,
    ) -> impl Iterator<Item = &'a (usize, Arc<TargetState>)> + 'a {
        self.routes
            .states()
            .iter()
            .filter(move |(i, _)| self.upstreams[*i].id == up.id)
    }

    fn observe_success(&self, target: &Target, diagnosis: &Diagnosis, started: Instant, n: u32) {
        let up = &self.upstreams[target.upstream];
        let latency = started.elapsed();
        self.record(
            up,
            &target.state,
            diagnosis.verdict,
            diagnosis.blame,
            latency,
            false,
        );
        tracing::debug!(provider = %up.id, attempt = n, verdict = %diagnosis.verdict, "gateway attempt");
    }

    /// Breaker, metrics, passive health and a log line for one failed attempt.
    fn observe(&self, target: &Target, failure: &Failure, started: Instant, attempt: u32) {
        self.observe_attempt(target, failure, started, attempt, None);
    }

    /// As [`Inner::observe`]; `flagged`: the lint's findings when this is a 500 to a request
    /// the route's lint flags — then the request, not the provider, is blamed: the breaker and
    /// the monitor do not count it. (A hedge partner's failure is observed without the flag.)
    fn observe_attempt(
        &self,
        target: &Target,
        failure: &Failure,
        started: Instant,
        attempt: u32,
        flagged: Option<&[crate::lint::Finding]>,
    ) {
        let up = &self.upstreams[target.upstream];
        let diagnosis = &failure.diagnosis;
        let latency = started.elapsed();
        let blame = match flagged {
            Some(_) => Some(Blame::Request),
            None => diagnosis.blame,
        };
        self.record(
            up,
            &target.state,
            diagnosis.verdict,
            blame,
            latency,
            failure.budget_cut,
        );
        if let Some(findings) = flagged {
            tracing::warn!(
                provider = %up.id,
                attempt,
                status = ?diagnosis.status,
                "gateway: the provider answered 500 to a request the lint flags; the request, not \
                 the provider, is the likely cause (not counted against the provider): {}",
                crate::lint::summary(findings)
            );
            return;
        }
        tracing::info!(
            provider = %up.id,
            attempt,
            verdict = %diagnosis.verdict,
            status = ?diagnosis.status,
            "gateway attempt failed: {}",
            diagnosis.explanation
        );
    }

    /// `budget_cut`: the request's own deadline, not the attempt's, ended it.
    fn record(
        &self,
        up: &Upstream,
        state: &TargetState,
        verdict: Verdict,
        blame: Option<Blame>,
        latency: Duration,
        budget_cut: bool,
    ) {
        state
            .breaker
            .record(Instant::now(), outcome(verdict, blame, budget_cut));
        up.stats.record(verdict, latency.as_secs_f64());
        self.reporter.report(LiveVerdict {
            provider: up.id.clone(),
            verdict,
            blame,
            latency_ms: Some(latency.as_secs_f64() * 1000.0),
        });
    }

    /// Reads the body within `max_request_bytes`, reserving its size in the budget of bodies
    /// in flight first (the announced length at once, else chunk by chunk).
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<(bytes::Bytes, budget::Reservation), ApiError> {
        let limit = self.max_request_bytes;
        let announced = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::body_too_large(limit));
        }
        let mut reservation = budget::Budget::empty();
        let mut stream = body.into_data_stream();
        let announced = announced.map_or(0, |n| n as usize);
        if self
            .budget
            .reserve(&mut reservation, announced)
            .await
            .is_err()
        {
            return Err(busy(stream, limit).await);
        }
        let mut first: Option<bytes::Bytes> = None;
        let mut whole = bytes::BytesMut::new();
        let mut read = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ApiError::unreadable_body())?;
            read += chunk.len();
            if read > limit {
                return Err(ApiError::body_too_large(limit));
            }
            let held = reservation.bytes();
            if read > held
                && self
                    .budget
                    .reserve(&mut reservation, read - held)
                    .await
                    .is_err()
            {
                drop((first, whole, reservation));
                return Err(busy(stream, limit - read).await);
            }
            // The common case, a body in one chunk, is kept without a copy.
            match first.take() {
                None if whole.is_empty() => first = Some(chunk),
                held => {
                    if whole.is_empty() {
                        whole.reserve(announced.max(read));
                    }
                    if let Some(held) = held {
                        whole.extend_from_slice(&held);
                    }
                    whole.extend_from_slice(&chunk);
                }
            }
        }
        let bytes = first.unwrap_or_else(|| whole.freeze());
        Ok((bytes, reservation))
    }

    /// Re-reads the monitor's open outage incidents into the breakers, at most once a second.
    fn sync_incidents(&self, now: Instant) {
        let Ok(mut last) = self.incidents_read.try_lock() else {
            return;
        };
        if last.is_some_and(|at| now.saturating_duration_since(at) < INCIDENT_SYNC_EVERY) {
            return;
        }
        *last = Some(now);
        drop(last);
        self.read_incidents(now);
    }

    /// Reads the open incidents of the health view into the targets' breakers.
    fn read_incidents(&self, now: Instant) {
        let mut open: Vec<Option<OpenIncident>> = vec![None; self.upstreams.len()];
        self.health.read(|view| {
            for monitor in &view.monitors {
                if let Some((IncidentKind::Outage, id)) = monitor.open_incident
                    && let Some(i) = self.upstreams.iter().position(|u| u.id == monitor.provider)
                {
                    // A hang confirmed by any monitor of the provider marks it hung.
                    let hung = monitor.verdict == Some(Verdict::Timeout)
                        || open[i].is_some_and(|o| o.hung);
                    open[i] = Some(OpenIncident {
                        id: id.unwrap_or(0),
                        hung,
                    });
                }
            }
        });
        for (upstream, state) in self.routes.states() {
            state.breaker.sync_incident(now, open[*upstream]);
        }
    }
}

/// How long a refused body may take to arrive (it is read and dropped so that the client hears
/// the 503 instead of a broken pipe): a client that sends slower is cut off.
const DRAIN_REFUSED_FOR: Duration = Duration::from_secs(10);

/// The 503 for a body that found no room in the budget, after reading (and dropping) what is
/// left of it, at most `left` bytes.
async fn busy(mut stream: axum::body::BodyDataStream, mut left: usize) -> ApiError {
    let _ = tokio::time::timeout(DRAIN_REFUSED_FOR, async {
        while let Some(Ok(chunk)) = stream.next().await {
            match left.checked_sub(chunk.len()) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    })
    .await;
    ApiError::gateway_busy(budget::WAIT_FOR_ROOM)
}

/// The pooled client for every upstream of a table.
fn upstream_client(timeouts: &GatewayTimeouts) -> Result<reqwest::Client, StartError> {
    Ok(crate::transport::client_builder()
        .connect_timeout(timeouts.connect)
        // Idle upstream connections are the gateway's main latency saving; 90 s is
        // hyper's default and below every provider's keep-alive timeout we know of.
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(POOL_IDLE_PER_TARGET)
        .build()?)
}

/// When an attempt on a target began, and how many attempts the request had made by then.
#[derive(Debug, Clone, Copy)]
struct Started {
    at: Instant,
    attempts: u32,
}

/// How an attempt counts toward its target's breaker. `budget_cut`: the request's overall
/// deadline (not the attempt's own) ended it, so a timeout says less about the target and
/// counts like a fast failure.
fn outcome(verdict: Verdict, blame: Option<Blame>, budget_cut: bool) -> Outcome {
    match verdict {
        verdict if verdict.is_healthy() => Outcome::Success,
        Verdict::Timeout if !budget_cut => Outcome::TimedOut,
        _ if matches!(blame, Some(Blame::Provider | Blame::Network)) => Outcome::Failure,
        _ => Outcome::Neutral,
    }
}

/// Adds the `x-isdown-*` headers.
fn label(mut response: Response, up: &Upstream, model: &str, attempts: u32) -> Response {
    let headers = response.headers_mut();
    headers.insert(PROVIDER, up.id_header.clone());
    if let Ok(value) = HeaderValue::from_str(model) {
        headers.insert(MODEL, value);
    }
    headers.insert(ATTEMPTS, HeaderValue::from(attempts));
    response
}

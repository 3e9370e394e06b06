//! Off-path recovery tests of failing targets: a live request never is the trial of a target
//! known to be failing (timed out, breaker open, or an open monitor incident); instead, when the
//! breaker says a test is due (see `breaker`), the request that passed the target over starts
//! one in the background and goes on to the next target without waiting for it.
//!
//! A test is a small request of the kind that failed — streaming, judged by its first token
//! within `[gateway.timeouts] connect` and `first_token` — with the monitor's stream-probe prompt
//! ("ping", a few tokens), sent to the target's own model with its `params` and request fixes.
//! The stream is dropped (cancelled) as soon as the first content chunk arrives. Its result goes
//! to the breaker, the target's metrics and the passive-health hook; never to the client, and
//! never to the monitor's live-verdict statistics (a test is not traffic).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::Inner;
use super::route::Target;
use super::target::TargetState;
use super::upstream::Attempt;
use crate::monitor::health::RecoveryTest;
use crate::provider::WireStyle;
use crate::provider::request::{ChatPayload, chat_body};
use crate::verdict::Verdict;

/// Starts a recovery test of `target` with the model name `model`; returns at once.
pub(super) fn spawn(inner: &Arc<Inner>, target: &Target, model: &str) {
    let mut request = match chat_body(WireStyle::Openai, model, ChatPayload::Stream) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let body = inner.upstreams[target.upstream].body(&mut request, model, &target.params);
    tokio::spawn(run(
        inner.clone(),
        target.upstream,
        target.state.clone(),
        body,
    ));
}

async fn run(inner: Arc<Inner>, upstream: usize, state: Arc<TargetState>, body: Bytes) {
    let up = &inner.upstreams[upstream];
    let started = Instant::now();
    let deadline = started + inner.timeouts.first_token;
    let attempt = up
        .attempt(
            &inner.client,
            body,
            true,
            &inner.timeouts,
            started,
            deadline,
        )
        .await;
    // Dropping a served stream here cancels the rest of the answer.
    let (verdict, explanation, ttft) = match attempt {
        Attempt::Served(served) => (served.diagnosis.verdict, None, Some(started.elapsed())),
        Attempt::Failed(failure) => (
            failure.diagnosis.verdict,
            Some(failure.diagnosis.explanation),
            None,
        ),
    };
    let passed = verdict.is_healthy();
    let now = Instant::now();
    if passed {
        state.breaker.test_passed(now);
        tracing::info!(
            provider = %state.provider,
            model = %state.label,
            ttft_ms = ttft.map_or(0, |d| d.as_millis()),
            "gateway: recovery test passed; live requests return to this target gradually"
        );
    } else {
        let timed_out = verdict == Verdict::Timeout;
        state.breaker.test_failed(now, timed_out, fastrand::f64());
        tracing::info!(
            provider = %state.provider,
            model = %state.label,
            %verdict,
            "gateway: recovery test failed, the target stays out: {}",
            explanation.as_deref().unwrap_or_default()
        );
    }
    state.tested(
        &inner.reporter,
        RecoveryTest {
            provider: state.provider.clone(),
            target: state.label.clone(),
            passed,
            verdict,
            ttft,
        },
    );
}

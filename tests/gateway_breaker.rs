//! Per-target circuit breakers through the real gateway: opened by a failure ratio or by the
//! monitor's open outage incident, re-admitted only after an off-path recovery test passed (then
//! one live trial closes them), and ignored when every target is open. Paused tokio time.

mod support;

use isdown::gateway::breaker::BreakerPolicy;
use isdown::incident::IncidentKind;
use isdown::mock::{MockServer, Scenario};
use isdown::monitor::health::{Health, MonitorHealth};
use isdown::monitor::machine::MonitorState;
use support::gateway::*;
use support::mock_async;

async fn pair_with(a: &str, b: &str, health: Health) -> (MockServer, MockServer, Gw) {
    let ma = mock_async("openai", a).await;
    let mb = mock_async("openai", b).await;
    let config = format!(
        "{}{}{}{GATEWAY}",
        provider("a", &ma),
        provider("b", &mb),
        route(&["a", "b"])
    );
    let gw = Gw::start_with(&config, health, BreakerPolicy::default()).await;
    (ma, mb, gw)
}

/// A health view in which the monitor of each listed provider has an open outage incident.
fn outage(providers: &[&str]) -> Health {
    Health::new(
        providers
            .iter()
            .enumerate()
            .map(|(i, p)| MonitorHealth {
                id: format!("{p}/chat"),
                provider: (*p).to_owned(),
                model: None,
                probe: "chat".into(),
                state: MonitorState::Down,
                since: None,
                verdict: None,
                last_at: None,
                last_latency_ms: None,
                explanation: None,
                advice: None,
                open_incident: Some((IncidentKind::Outage, Some(i as i64 + 1))),
                regions: Default::default(),
            })
            .collect(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_failing_target_opens_its_breaker_and_is_skipped() {
    let (a, b, gw) = pair_with("unavailable", "ok", Health::default()).await;
    // Default policy: at least 5 attempts, half of them failed.
    for _ in 0..5 {
        let response = gw.chat(ask(false)).await;
        assert_eq!(header(&response, "x-isdown-provider"), "b");
    }
    assert_eq!(chats(&a).len(), 5);
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    assert_eq!(chats(&a).len(), 5, "open: not tried");
    assert_eq!(chats(&b).len(), 6);
}

/// Chat requests a mock received from live traffic (recovery tests carry the monitor's probe
/// prompt with `max_tokens`; the test requests here never do).
fn live_chats(mock: &MockServer) -> usize {
    chats(mock)
        .iter()
        .filter(|r| r.body["max_tokens"].is_null())
        .count()
}

fn recovery_tests(mock: &MockServer) -> usize {
    chats(mock).len() - live_chats(mock)
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_retested_off_the_request_path_and_one_live_trial_closes_it() {
    let (a, _b, gw) = pair_with("unavailable", "ok", Health::default()).await;
    for _ in 0..5 {
        gw.chat(ask(false)).await;
    }
    a.set_scenario(Scenario::Ok);
    // Still failing one second later: no test is due yet.
    tokio::time::advance(secs(1.0)).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(recovery_tests(&a), 0);
    // After 2 s the request that passes `a` over starts a recovery test in the background and
    // is served by `b` itself: a live request is never the trial of a failing target.
    tokio::time::advance(secs(1.0)).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    tokio::time::sleep(secs(0.5)).await;
    assert_eq!(recovery_tests(&a), 1, "the test saw the recovery first");
    // The passed test re-admits `a`: one live trial, and its success closes the breaker.
    for _ in 0..3 {
        let response = gw.chat(ask(false)).await;
        assert_eq!(header(&response, "x-isdown-provider"), "a");
    }
    assert_eq!(live_chats(&a), 5 + 3);
}

#[tokio::test(start_paused = true)]
async fn the_monitors_open_outage_incident_steers_traffic_away_until_a_recovery_test_passes() {
    let (a, b, gw) = pair_with("ok", "ok", outage(&["a"])).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(chats(&a).len(), 0, "the incident keeps `a` out");
    // A couple of seconds later a request starts a recovery test and goes to `b`; the test
    // finds `a` healthy, which overrules the incident the monitor has not closed yet.
    tokio::time::advance(secs(2.0)).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    tokio::time::sleep(secs(0.5)).await;
    assert_eq!(recovery_tests(&a), 1);
    for _ in 0..2 {
        let response = gw.chat(ask(false)).await;
        assert_eq!(header(&response, "x-isdown-provider"), "a");
    }
    assert_eq!(live_chats(&b), 2);
}

#[tokio::test(start_paused = true)]
async fn when_every_target_is_open_they_are_tried_in_order() {
    let (a, b, gw) = pair_with("ok", "ok", outage(&["a", "b"])).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 0);
}

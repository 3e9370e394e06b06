//! A hung provider costs one timeout, not one per request: the real gateway in front of mock
//! providers on paused tokio time, driven like a coding agent (one request at a time, a few
//! seconds apart). A timed-out target gets no further live request while another target is
//! healthy; its recovery is tested off the request path; a single fast 5xx ejects nobody; with
//! every target failing the least bad one is still tried; non-streaming requests may be hedged.

mod support;

use isdown::gateway::breaker::BreakerPolicy;
use isdown::incident::IncidentKind;
use isdown::mock::{MockServer, Scenario};
use isdown::monitor::health::{Health, MonitorHealth, PassiveReport};
use isdown::monitor::machine::MonitorState;
use isdown::verdict::Verdict;
use support::gateway::*;
use support::mock_async;
use tokio::time::Instant;

/// `a` (first) and `b` (fallback) behind the route `agent`, with `extra` config lines.
async fn pair(a: &str, b: &str, extra: &str, health: Health) -> (MockServer, MockServer, Gw) {
    let ma = mock_async("openai", a).await;
    let mb = mock_async("openai", b).await;
    let config = format!(
        "{}{}{}{GATEWAY}{extra}",
        provider("a", &ma),
        provider("b", &mb),
        route(&["a", "b"])
    );
    let gw = Gw::start_with(&config, health, BreakerPolicy::default()).await;
    (ma, mb, gw)
}

/// Live attempts the gateway reported for `provider`, as verdicts.
fn attempts_on(reports: &[PassiveReport], provider: &str) -> Vec<Verdict> {
    reports
        .iter()
        .filter_map(|r| match r {
            PassiveReport::Attempt(live) if live.provider == provider => Some(live.verdict),
            _ => None,
        })
        .collect()
}

/// Recovery tests the gateway reported for `provider`, as (passed, verdict).
fn tests_of(reports: &[PassiveReport], provider: &str) -> Vec<(bool, Verdict)> {
    reports
        .iter()
        .filter_map(|r| match r {
            PassiveReport::RecoveryTest(t) if &*t.provider == provider => {
                Some((t.passed, t.verdict))
            }
            _ => None,
        })
        .collect()
}

/// Chat requests a mock received from clients (recovery tests carry the stream probe's
/// `max_tokens`; the requests of these tests never do).
fn live_chats(mock: &MockServer) -> usize {
    chats(mock)
        .iter()
        .filter(|r| r.body["max_tokens"].is_null())
        .count()
}

#[tokio::test(start_paused = true)]
async fn sequential_streams_against_a_hung_primary_pay_its_timeout_once() {
    let (a, b, mut gw) = pair("hang", "ok", "", Health::default()).await;
    let mut took = Vec::new();
    for turn in 0..9 {
        let started = Instant::now();
        let response = gw.chat(ask(true)).await;
        assert_eq!(response.status(), 200, "turn {turn}");
        assert_eq!(header(&response, "x-isdown-provider"), "b", "turn {turn}");
        let body = response.text().await.unwrap();
        assert!(body.trim_end().ends_with("data: [DONE]"), "turn {turn}");
        took.push(started.elapsed());
        tokio::time::sleep(secs(3.0)).await;
    }
    // The first turn waits the whole first-token timeout (15 s) on `a`...
    assert!(took[0] >= secs(15.0), "{:?}", took[0]);
    // ...and every later one goes straight to `b`.
    for (turn, t) in took.iter().enumerate().skip(1) {
        assert!(*t < secs(1.0), "turn {turn}: {t:?}");
    }
    assert_eq!(
        live_chats(&a),
        1,
        "one client request reached the hung target"
    );
    assert_eq!(chats(&b).len(), 9);
    let reports = gw.reports();
    assert_eq!(attempts_on(&reports, "a"), [Verdict::Timeout]);
    // Recovery was tested in the background, and every test timed out.
    let tests = tests_of(&reports, "a");
    assert!(!tests.is_empty());
    assert!(
        tests.iter().all(|t| *t == (false, Verdict::Timeout)),
        "{tests:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_recovered_primary_is_seen_by_a_recovery_test_first_and_traffic_returns() {
    let (a, _b, mut gw) = pair("hang", "ok", "", Health::default()).await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    a.set_scenario(Scenario::Ok);
    tokio::time::sleep(secs(3.0)).await;
    // The first test is due 2 s after the timeout: this request starts it and is served by
    // `b` without waiting for it.
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    tokio::time::sleep(secs(3.0)).await;
    // The test passed: the next client requests are served by `a` again.
    for _ in 0..3 {
        let response = gw.chat(ask(true)).await;
        assert_eq!(header(&response, "x-isdown-provider"), "a");
        tokio::time::sleep(secs(3.0)).await;
    }
    // What `a` received after the hang: the recovery test first, then client requests.
    let chats = chats(&a);
    assert_eq!(chats.len(), 5, "{chats:?}");
    assert!(
        chats[0].body["max_tokens"].is_null(),
        "the hung client request"
    );
    assert_eq!(chats[1].body["max_tokens"], 8, "the recovery test");
    assert_eq!(chats[1].body["stream"], true);
    assert!(chats[2..].iter().all(|c| c.body["max_tokens"].is_null()));
    let reports = gw.reports();
    assert_eq!(tests_of(&reports, "a"), [(true, Verdict::Up)]);
    assert_eq!(
        attempts_on(&reports, "a"),
        [Verdict::Timeout, Verdict::Up, Verdict::Up, Verdict::Up]
    );
}

#[tokio::test(start_paused = true)]
async fn a_single_fast_server_error_does_not_eject_a_target() {
    let (a, b, gw) = pair("unavailable", "ok", "", Health::default()).await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    a.set_scenario(Scenario::Ok);
    tokio::time::sleep(secs(3.0)).await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    assert_eq!(live_chats(&a), 2);
    assert_eq!(chats(&b).len(), 1);
}

/// A health view where the monitor of each listed provider has an open outage incident.
fn outage(providers: &[(&str, Verdict)]) -> Health {
    Health::new(
        providers
            .iter()
            .enumerate()
            .map(|(i, (p, verdict))| MonitorHealth {
                id: format!("{p}-chat"),
                provider: (*p).to_owned(),
                model: None,
                probe: "chat".into(),
                state: MonitorState::Down,
                since: None,
                verdict: Some(*verdict),
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
async fn with_every_target_failing_the_least_bad_is_still_tried_first() {
    // `b` has an open (non-hang) outage incident; `a` hangs.
    let (a, b, mut gw) = pair(
        "hang",
        "unavailable",
        "",
        outage(&[("b", Verdict::Unavailable)]),
    )
    .await;
    // `a` is healthy as far as anyone knows: it gets the request and times out. `b` is kept
    // out by its incident; passing it over starts a recovery test, which fails.
    let response = gw.chat(ask(true)).await;
    assert_eq!(response.status(), 504);
    tokio::time::sleep(secs(0.5)).await;
    assert_eq!(
        tests_of(&gw.reports(), "b"),
        [(false, Verdict::Unavailable)]
    );
    assert_eq!(live_chats(&b), 0);
    // Now no target is healthy, and `b` answers again. The request still goes out, to the
    // least bad target first — `b`, failing fast, before `a`, known to hang — although `a`
    // comes first in the route.
    b.set_scenario(Scenario::Ok);
    let started = Instant::now();
    let response = gw.chat(ask(true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    assert!(started.elapsed() < secs(1.0));
    assert_eq!(live_chats(&a), 1);
}

#[tokio::test(start_paused = true)]
async fn a_confirmed_hang_incident_keeps_live_requests_away_from_the_first_one_on() {
    let (a, b, gw) = pair("hang", "ok", "", outage(&[("a", Verdict::Timeout)])).await;
    let started = Instant::now();
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert!(started.elapsed() < secs(1.0));
    assert_eq!(chats(&a).len(), 0);
    assert_eq!(chats(&b).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_sequential_non_streaming_requests_against_a_hung_primary_lose_only_the_first() {
    let (a, _b, gw) = pair("hang", "ok", "", Health::default()).await;
    let started = Instant::now();
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    // The whole `request` timeout (120 s) on `a`, once.
    assert!(started.elapsed() >= secs(120.0), "{:?}", started.elapsed());
    let started = Instant::now();
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    assert!(started.elapsed() < secs(1.0), "{:?}", started.elapsed());
    assert_eq!(live_chats(&a), 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_the_client_asked_for_does_not_eject_the_target() {
    // The client allows 2 s, far below the 15 s first-token timeout: `a` was not given its
    // own deadline, so one such timeout counts like a fast failure.
    let (a, _b, gw) = pair("hang", "hang", "", Health::default()).await;
    let response = gw.chat_with(ask(true), &[("x-isdown-timeout", "2s")]).await;
    assert_eq!(response.status(), 504);
    a.set_scenario(Scenario::Ok);
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "a");
}

#[tokio::test(start_paused = true)]
async fn a_hedged_route_sends_a_slow_request_to_the_next_target_after_its_p95_plus_margin() {
    let hedged = "[[routes]]\nmodel = \"hedged\"\ntargets = [{ provider = \"a\" }, \
                  { provider = \"b\" }]\nhedge_after = \"p95+2s\"\n";
    let ma = mock_async("openai", "ok").await;
    let mb = mock_async("openai", "ok").await;
    let config = format!(
        "{hedged}{}{}{GATEWAY}",
        provider("a", &ma),
        provider("b", &mb)
    );
    let gw = Gw::start(&config).await;
    let mut request = ask(false);
    request["model"] = "hedged".into();
    // Ten quick answers give `a` a p95 (about 0 s on paused time).
    for _ in 0..10 {
        let response = gw.chat(request.clone()).await;
        assert_eq!(header(&response, "x-isdown-provider"), "a");
    }
    ma.set_scenario(Scenario::Hang);
    let started = Instant::now();
    let response = gw.chat(request.clone()).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "2");
    assert!(waited >= secs(2.0) && waited < secs(2.5), "{waited:?}");
    assert_eq!(chats(&mb).len(), 1);
    let metrics = gw.metrics.render();
    assert!(
        metrics.contains("isdown_gateway_hedges_total{provider=\"a\",model=\"*\"} 1"),
        "{metrics}"
    );
    // Streams are never hedged: they have their first-token timeout.
    request["stream"] = true.into();
    let started = Instant::now();
    let response = gw.chat(request.clone()).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert!(started.elapsed() >= secs(15.0));
}

#[tokio::test(start_paused = true)]
async fn without_a_p95_yet_a_hedged_route_does_not_hedge_but_a_fixed_delay_does() {
    for (hedge_after, hedged) in [("p95+2s", false), ("5s", true)] {
        let route = format!(
            "[[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"a\" }}, \
             {{ provider = \"b\" }}]\nhedge_after = \"{hedge_after}\"\n"
        );
        let ma = mock_async("openai", "hang").await;
        let mb = mock_async("openai", "ok").await;
        let config = format!(
            "{route}{}{}{GATEWAY}",
            provider("a", &ma),
            provider("b", &mb)
        );
        let gw = Gw::start(&config).await;
        let started = Instant::now();
        let response = gw.chat(ask(false)).await;
        assert_eq!(header(&response, "x-isdown-provider"), "b");
        let want = if hedged { 5.0 } else { 120.0 };
        let waited = started.elapsed();
        assert!(
            waited >= secs(want) && waited < secs(want + 0.5),
            "{hedge_after}: {waited:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn skipped_requests_and_recovery_tests_are_counted_per_target_in_metrics() {
    let (_a, _b, gw) = pair("hang", "ok", "", Health::default()).await;
    for _ in 0..3 {
        gw.chat(ask(true)).await;
        tokio::time::sleep(secs(3.0)).await;
    }
    // Let the recovery test started by the second request time out.
    tokio::time::sleep(secs(20.0)).await;
    let metrics = gw.metrics.render();
    for line in [
        "isdown_gateway_skipped_total{provider=\"a\",model=\"*\"} 2",
        "isdown_gateway_recovery_tests_total{provider=\"a\",model=\"*\",result=\"failed\"} 1",
        "isdown_gateway_last_recovery_test_passed{provider=\"a\",model=\"*\"} 0",
        "isdown_gateway_skipped_total{provider=\"b\",model=\"*\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("isdown_gateway_last_recovery_test_timestamp_seconds{provider=\"a\""));
}

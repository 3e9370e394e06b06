//! The gateway decision table (DESIGN.md), one test per row: the real gateway in front of mock
//! providers on 127.0.0.1, on paused tokio time so that Retry-After waits, backoff and timeouts
//! pass instantly and can be measured exactly.

mod support;

use isdown::mock::{MockServer, Scenario};
use serde_json::Value;
use support::gateway::*;
use support::mock_async;
use tokio::time::Instant;

/// Two providers `a` (first) and `b` (fallback) behind the route `agent`.
async fn pair(a: &str, b: &str, extra: &str) -> (MockServer, MockServer, Gw) {
    let ma = mock_async("openai", a).await;
    let mb = mock_async("openai", b).await;
    let config = format!(
        "{}{}{}{GATEWAY}{extra}",
        provider("a", &ma),
        provider("b", &mb),
        route(&["a", "b"])
    );
    let gw = Gw::start(&config).await;
    (ma, mb, gw)
}

#[tokio::test(start_paused = true)]
async fn rate_limit_with_short_retry_after_waits_on_same_provider_before_switching() {
    // The mock's 429 always says `retry-after: 2` (≤ max_retry_wait 10 s).
    let (a, b, gw) = pair("rate_limited", "ok", "").await;
    let started = Instant::now();
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200);
    // Two announced waits on `a` (2 s each), then `b`.
    assert!(started.elapsed() >= secs(4.0), "{:?}", started.elapsed());
    assert!(started.elapsed() < secs(5.0), "{:?}", started.elapsed());
    assert_eq!(chats(&a).len(), 3);
    assert_eq!(chats(&b).len(), 1);
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "4");
}

#[tokio::test(start_paused = true)]
async fn rate_limit_with_short_retry_after_is_served_by_the_same_provider_once_it_recovers() {
    let (a, b, gw) = pair("rate_limited", "ok", "").await;
    let request = tokio::spawn({
        let client = gw.client.clone();
        let url = format!("{}/v1/chat/completions", gw.url);
        async move {
            client
                .post(url)
                .bearer_auth(CLIENT_KEY)
                .json(&ask(false))
                .send()
                .await
                .unwrap()
        }
    });
    // The gateway is now inside its 2 s wait (virtual time only moves when every task idles);
    // `a` recovers after 1 s.
    tokio::time::sleep(secs(1.0)).await;
    a.set_scenario(Scenario::Ok);
    let response = request.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    assert_eq!(header(&response, "x-isdown-attempts"), "2");
    assert_eq!(chats(&a).len(), 2);
    assert_eq!(chats(&b).len(), 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_with_long_retry_after_switches_at_once_and_cools_the_target_down() {
    // max_retry_wait 1 s < the mock's 2 s Retry-After.
    let (a, b, gw) = pair("rate_limited", "ok", "max_retry_wait = \"1s\"\n").await;
    let started = Instant::now();
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert!(started.elapsed() < secs(0.5), "{:?}", started.elapsed());
    assert_eq!(chats(&a).len(), 1);
    // Cooling down: the next request does not touch `a` at all.
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    assert_eq!(chats(&a).len(), 1);
    // After the announced 2 s, `a` is tried again.
    a.set_scenario(Scenario::Ok);
    tokio::time::advance(secs(2.0)).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    assert_eq!(chats(&b).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_without_retry_after_backs_off_twice_then_switches() {
    let (a, b, gw) = pair("rate_limited_no_retry_after", "ok", "").await;
    let started = Instant::now();
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(chats(&a).len(), 3);
    assert_eq!(chats(&b).len(), 1);
    // ≈0.5 s then ≈1 s, each jittered by at most ±20 %.
    let waited = started.elapsed();
    assert!(waited >= secs(1.2) && waited <= secs(1.9), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn server_error_gets_one_quick_retry_then_the_next_target() {
    let (a, b, gw) = pair("server_error", "ok", "").await;
    let started = Instant::now();
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "3");
    assert_eq!(chats(&a).len(), 2);
    assert_eq!(chats(&b).len(), 1);
    let waited = started.elapsed();
    assert!(waited >= secs(0.2) && waited <= secs(0.3), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn network_failure_before_any_byte_gets_one_quick_retry_then_the_next_target() {
    // `reset`: the mock reads the request, then resets the connection before a status line.
    let (a, b, gw) = pair("reset", "ok", "").await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "3");
    assert_eq!(chats(&a).len(), 2);
    assert_eq!(chats(&b).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn overloaded_unavailable_and_malformed_go_to_the_next_target_at_once() {
    for scenario in [
        "overloaded",
        "unavailable",
        "html_504",
        "malformed",
        "empty_choices",
    ] {
        let (a, b, gw) = pair(scenario, "ok", "").await;
        let started = Instant::now();
        let response = gw.chat(ask(false)).await;
        assert_eq!(response.status(), 200, "{scenario}");
        assert_eq!(header(&response, "x-isdown-provider"), "b", "{scenario}");
        assert_eq!(header(&response, "x-isdown-attempts"), "2", "{scenario}");
        assert_eq!(chats(&a).len(), 1, "{scenario}");
        assert_eq!(chats(&b).len(), 1, "{scenario}");
        assert!(started.elapsed() < secs(0.1), "{scenario}: no wait");
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_moves_to_the_next_target_and_never_retries_the_silent_one() {
    let (a, b, gw) = pair("hang", "ok", "[gateway.timeouts]\nrequest = \"10s\"\n").await;
    let started = Instant::now();
    let response = gw.chat(ask(false)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "2");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 1);
    let waited = started.elapsed();
    assert!(waited >= secs(10.0) && waited < secs(10.5), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn the_next_target_gets_the_rest_of_the_budget_and_the_client_header_shortens_it() {
    let (a, b, gw) = pair("hang", "hang", "[gateway.timeouts]\nrequest = \"15s\"\n").await;
    let started = Instant::now();
    let response = gw
        .chat_with(ask(false), &[("x-isdown-timeout", "20s")])
        .await;
    let waited = started.elapsed();
    // 15 s on `a`, then the remaining 5 s on `b`, then a 504 in OpenAI's error shape.
    assert!(waited >= secs(20.0) && waited < secs(20.5), "{waited:?}");
    assert_eq!(response.status(), 504);
    assert_eq!(header(&response, "x-isdown-attempts"), "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn context_too_long_skips_small_windows_and_goes_to_a_target_that_fits() {
    let small = mock_async("openai", "ok").await;
    let refuses = mock_async("openai", "context_too_long").await;
    let large = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{}{}{GATEWAY}",
        provider_with("small", &small, "context_window = 1000"),
        provider("refuses", &refuses),
        provider_with("large", &large, "context_window = 2000000"),
        route(&["small", "refuses", "large"])
    );
    let gw = Gw::start(&config).await;
    // ~10,000 tokens of English text: far above 1,000.
    let long = "the quick brown fox jumps over the lazy dog ".repeat(900);
    let mut request = ask(false);
    request["messages"][0]["content"] = Value::String(long);
    let response = gw.chat(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "large");
    assert_eq!(header(&response, "x-isdown-attempts"), "2");
    assert_eq!(
        chats(&small).len(),
        0,
        "a window known to be too small is skipped"
    );
    assert_eq!(chats(&refuses).len(), 1);
    assert_eq!(chats(&large).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_prompt_no_target_can_hold_is_refused_without_sending_it() {
    let small = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{GATEWAY}",
        provider_with("small", &small, "context_window = 100"),
        route(&["small"])
    );
    let gw = Gw::start(&config).await;
    let mut request = ask(false);
    request["messages"][0]["content"] = Value::String("word ".repeat(1000));
    let response = gw.chat(request).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(chats(&small).len(), 0);
}

#[tokio::test(start_paused = true)]
async fn auth_quota_and_model_not_found_go_to_the_next_target_and_account_problems_sit_out() {
    for scenario in ["auth_failed", "quota_exhausted", "model_not_found"] {
        let (a, b, mut gw) = pair(scenario, "ok", "").await;
        let response = gw.chat(ask(false)).await;
        assert_eq!(response.status(), 200, "{scenario}");
        assert_eq!(header(&response, "x-isdown-provider"), "b", "{scenario}");
        assert_eq!(chats(&a).len(), 1, "{scenario}: no retry");
        assert_eq!(chats(&b).len(), 1, "{scenario}");
        // The setup problem is visible to the monitor through passive health.
        let reported = gw.reported();
        assert_eq!(reported[0], ("a".to_owned(), scenario.to_owned()));
        // A bad key or an empty balance keeps the target out for a minute; a missing model is
        // a property of the request, so the next request tries again.
        gw.chat(ask(false)).await;
        let again = usize::from(scenario == "model_not_found");
        assert_eq!(chats(&a).len(), 1 + again, "{scenario}");
        tokio::time::advance(secs(60.0)).await;
        gw.chat(ask(false)).await;
        assert_eq!(
            chats(&a).len(),
            2 + again,
            "{scenario}: back after the cool-down"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn bad_request_comes_back_unchanged_without_retry_or_fallback() {
    let (a, b, gw) = pair("bad_request", "ok", "").await;
    // What the provider answers when asked directly.
    let direct = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", a.url()))
        .json(&ask(false))
        .send()
        .await
        .unwrap();
    let direct_status = direct.status();
    let direct_body = direct.text().await.unwrap();

    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), direct_status);
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    assert_eq!(response.text().await.unwrap(), direct_body);
    assert_eq!(chats(&a).len(), 2, "one direct, one through the gateway");
    assert_eq!(chats(&b).len(), 0);
}

#[tokio::test(start_paused = true)]
async fn content_filtered_comes_back_unchanged_without_retry_or_fallback() {
    // Moonshot refuses with a 400 `content_filter` error.
    let a = mock_async("kimi", "content_filtered").await;
    let b = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{}{GATEWAY}",
        provider("a", &a),
        provider("b", &b),
        route(&["a", "b"])
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_object(), "{body}");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 0);
}

#[tokio::test(start_paused = true)]
async fn when_every_target_fails_the_error_names_each_attempt_in_openai_shape() {
    let (a, b, gw) = pair("unavailable", "overloaded", "").await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "x-isdown-attempts"), "2");
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["type"], "upstream_error");
    assert_eq!(error["code"], "overloaded");
    assert!(error["param"].is_null());
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("a: unavailable") && message.contains("b: overloaded"),
        "{message}"
    );
    assert!(!message.contains("sk-upstream"), "{message}");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn after_context_too_long_smaller_known_windows_are_skipped_and_unknown_ones_tried() {
    let refuses = mock_async("openai", "context_too_long").await;
    let smaller = mock_async("openai", "ok").await;
    let unknown = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{}{}{GATEWAY}",
        provider_with("refuses", &refuses, "context_window = 500000"),
        provider_with("smaller", &smaller, "context_window = 300000"),
        provider("unknown", &unknown),
        route(&["refuses", "smaller", "unknown"])
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "unknown");
    assert_eq!(chats(&refuses).len(), 1);
    assert_eq!(chats(&smaller).len(), 0);
    assert_eq!(chats(&unknown).len(), 1);
}

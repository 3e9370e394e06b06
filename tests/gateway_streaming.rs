//! The gateway's streaming contract (DESIGN.md): the response is held until the first content
//! chunk and may fail over before it; after it the gateway never switches, and every mid-stream
//! failure ends with an OpenAI-style in-band error event and no `[DONE]`. Paused tokio time, so
//! first-token and idle deadlines pass instantly.

mod support;

use isdown::mock::MockServer;
use serde_json::{Value, json};
use support::gateway::*;
use support::mock_async;
use tokio::time::Instant;

async fn pair(style: &str, a: &str, b: &str) -> (MockServer, MockServer, Gw) {
    let ma = mock_async(style, a).await;
    let mb = mock_async("openai", b).await;
    let config = format!(
        "{}{}{}{GATEWAY}",
        provider("a", &ma),
        provider("b", &mb),
        route(&["a", "b"])
    );
    (ma, mb, Gw::start(&config).await)
}

fn last_error(body: &str) -> Option<Value> {
    events(body)
        .last()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["error"].is_object())
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_held_until_first_content_and_fails_over_before_it() {
    // `a` only sends keep-alives: no first token within 15 s, so `b` answers; nothing of `a`
    // reaches the client.
    let (a, b, gw) = pair("deepseek", "keepalive_only", "ok").await;
    let started = Instant::now();
    let response = gw.chat(ask(true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    assert_eq!(header(&response, "x-isdown-attempts"), "2");
    let body = response.text().await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= secs(15.0) && waited < secs(16.0), "{waited:?}");
    assert!(!body.contains("keep-alive"), "{body}");
    assert_eq!(streamed_text(&body), "pong");
    assert_eq!(events(&body).last().unwrap(), "[DONE]");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_breaks_before_its_first_content_fails_over() {
    // `malformed`: a role chunk, a cut JSON event, then the end — never any content.
    let (a, b, gw) = pair("openai", "malformed", "ok").await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "b");
    let body = response.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_mid_way_ends_with_an_in_band_error_and_no_done() {
    let (a, b, mut gw) = pair("openai", "stream_cut", "ok").await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    let body = response.text().await.unwrap();
    // The content that was sent stays; no silent switch to `b`.
    assert_eq!(streamed_text(&body), "pon");
    assert!(!body.contains("[DONE]"), "{body}");
    let error = last_error(&body).unwrap_or_else(|| panic!("no error event: {body}"));
    assert_eq!(error["error"]["code"], "stream_interrupted");
    assert_eq!(error["error"]["type"], "upstream_error");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 0);
    let reported = gw.reported();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].0, "a");
    assert_ne!(reported[0].1, "up");
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_stalls_mid_way_ends_with_an_idle_timeout_error() {
    let (a, b, mut gw) = pair("openai", "stream_stall", "ok").await;
    let started = Instant::now();
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    let body = response.text().await.unwrap();
    let waited = started.elapsed();
    // The default idle timeout: 30 s of silence after content had started.
    assert!(waited >= secs(30.0) && waited < secs(31.0), "{waited:?}");
    assert!(!streamed_text(&body).is_empty());
    assert!(!body.contains("[DONE]"), "{body}");
    let error = last_error(&body).unwrap_or_else(|| panic!("no error event: {body}"));
    assert_eq!(error["error"]["code"], "stream_stalled");
    assert_eq!(chats(&b).len(), 0);
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(gw.reported(), vec![("a".to_owned(), "timeout".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn the_providers_in_stream_error_is_forwarded_and_ends_the_stream() {
    let (a, b, mut gw) = pair("openai", "stream_error", "ok").await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    let body = response.text().await.unwrap();
    assert_eq!(streamed_text(&body), "p");
    assert!(!body.contains("[DONE]"), "{body}");
    let error = last_error(&body).unwrap_or_else(|| panic!("no error event: {body}"));
    assert_eq!(error["error"]["type"], "server_error");
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 0);
    assert_eq!(
        gw.reported(),
        vec![("a".to_owned(), "server_error".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn keep_alive_comments_pass_through() {
    let (_a, _b, gw) = pair("deepseek", "keepalive_then_ok", "ok").await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    let body = response.text().await.unwrap();
    assert_eq!(body.matches(": keep-alive").count(), 2, "{body}");
    assert!(body.find(": keep-alive") < body.find("data: "), "{body}");
    assert_eq!(streamed_text(&body), "pong");
    assert_eq!(events(&body).last().unwrap(), "[DONE]");
}

#[tokio::test(start_paused = true)]
async fn usage_is_forwarded() {
    let (a, _b, gw) = pair("openai", "ok", "ok").await;
    let mut request = ask(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = gw.chat(request).await;
    let body = response.text().await.unwrap();
    let usage: Vec<Value> = events(&body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["usage"].is_object())
        .collect();
    assert_eq!(usage.len(), 1, "{body}");
    assert!(usage[0]["usage"]["prompt_tokens"].as_u64().is_some());
    assert!(usage[0]["usage"]["completion_tokens"].as_u64().is_some());
    // The parameter reached the provider.
    assert_eq!(chats(&a)[0].body["stream_options"]["include_usage"], true);
}

#[tokio::test(start_paused = true)]
async fn a_first_token_timeout_counts_keep_alives_as_silence_and_uses_the_config() {
    let ma = mock_async("openrouter", "keepalive_only").await;
    let config = format!(
        "{}{}{GATEWAY}[gateway.timeouts]\nfirst_token = \"3s\"\n",
        provider("a", &ma),
        route(&["a"])
    );
    let gw = Gw::start(&config).await;
    let started = Instant::now();
    let response = gw.chat(ask(true)).await;
    let waited = started.elapsed();
    assert!(waited >= secs(3.0) && waited < secs(3.5), "{waited:?}");
    assert_eq!(response.status(), 504);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_also_ends_a_running_stream_with_an_error() {
    let (_a, b, gw) = pair("openai", "stream_stall", "ok").await;
    let started = Instant::now();
    let response = gw.chat_with(ask(true), &[("x-isdown-timeout", "5s")]).await;
    let body = response.text().await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= secs(5.0) && waited < secs(5.5), "{waited:?}");
    assert!(!body.contains("[DONE]"), "{body}");
    let error = last_error(&body).unwrap_or_else(|| panic!("no error event: {body}"));
    assert_eq!(error["error"]["code"], "deadline_exceeded");
    assert_eq!(chats(&b).len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_complete_stream_without_done_is_forwarded_with_usage_and_the_done_it_lacked() {
    // Kimi-style usage inside the final choice, and OpenAI-style usage chunk: both pass.
    for style in ["kimi", "openai"] {
        let (a, b, mut gw) = pair(style, "complete_without_done", "ok").await;
        let mut request = ask(true);
        request["stream_options"] = json!({"include_usage": true});
        let response = gw.chat(request).await;
        assert_eq!(response.status(), 200, "{style}");
        assert_eq!(header(&response, "x-isdown-provider"), "a", "{style}");
        let body = response.text().await.unwrap();
        assert_eq!(streamed_text(&body), "pong", "{style}: {body}");
        assert!(last_error(&body).is_none(), "{style}: {body}");
        let events = events(&body);
        assert_eq!(events.last().unwrap(), "[DONE]", "{style}: {body}");
        assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 1);
        assert!(body.contains("\"usage\""), "{style}: {body}");
        assert!(
            body.contains("\"finish_reason\":\"stop\""),
            "{style}: {body}"
        );
        // A complete answer: a success for the target, no failover.
        assert_eq!(
            gw.reported(),
            [("a".to_owned(), "up".to_owned())],
            "{style}"
        );
        assert_eq!(chats(&a).len(), 1);
        assert_eq!(chats(&b).len(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_ends_without_a_finish_reason_is_still_an_in_band_error() {
    let (_a, _b, gw) = pair("openai", "stream_cut", "ok").await;
    let response = gw.chat(ask(true)).await;
    let body = response.text().await.unwrap();
    assert!(!body.contains("[DONE]"), "{body}");
    let error = last_error(&body).expect("an in-band error event");
    assert_eq!(error["error"]["code"], "stream_interrupted");
}

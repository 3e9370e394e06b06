//! Verified stream recovery (`stream_recovery = "verified"`): a stream cut or stalled after
//! content reached the client is completed by prefix continuation where the target supports
//! prefill, by a verified restart elsewhere, and ends with the clean in-band error when the
//! restart diverges; a refused prefill is not the caller's final error; tool-call streams are
//! never spliced; with recovery off nothing changes. Paused tokio time.

mod support;

use isdown::mock::MockServer;
use serde_json::{Value, json};
use support::gateway::*;
use support::mock_async;

const VERIFIED: &str = "stream_recovery = \"verified\"\n";
/// Moonshot's partial mode, as the catalog declares it for `kimi`.
const PARTIAL: &str = "prefill = { flag = \"partial\" }";

/// One target `a` (scenario `scenario`, `extra` provider lines) behind `agent`.
async fn single(scenario: &str, extra: &str, gateway_extra: &str) -> (MockServer, Gw) {
    let a = mock_async("openai", scenario).await;
    let config = format!(
        "{}{}{GATEWAY}{gateway_extra}",
        provider_with("a", &a, extra),
        route(&["a"])
    );
    (a, Gw::start(&config).await)
}

fn stream_with_usage() -> Value {
    json!({
        "model": "agent",
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "ping"}],
    })
}

fn last_error(body: &str) -> Option<Value> {
    events(body)
        .last()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["error"].is_object())
}

fn usage(body: &str) -> Value {
    events(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["usage"].is_object())
        .map(|v| v["usage"].clone())
        .unwrap_or(Value::Null)
}

fn recoveries(gw: &Gw, strategy: &str, result: &str) -> u64 {
    let wanted = format!(
        "isdown_gateway_stream_recoveries_total{{provider=\"a\",strategy=\"{strategy}\",result=\"{result}\"}} "
    );
    gw.metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(wanted.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(start_paused = true)]
async fn with_recovery_off_a_cut_stream_ends_with_the_in_band_error_as_before() {
    let (a, gw) = single("cut_once", PARTIAL, "").await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pon");
    assert_eq!(
        last_error(&body).unwrap()["error"]["code"],
        "stream_interrupted"
    );
    assert!(!body.contains("[DONE]"), "{body}");
    assert!(!body.contains("x-isdown-recovered"), "{body}");
    assert_eq!(chats(&a).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_is_completed_by_prefix_continuation_where_the_target_supports_prefill() {
    let (a, gw) = single("cut_once", PARTIAL, VERIFIED).await;
    let response = gw.chat(stream_with_usage()).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong", "{body}");
    assert_eq!(events(&body).last().unwrap(), "[DONE]");
    assert!(
        body.contains(": x-isdown-recovered: prefix on a after 3 bytes"),
        "{body}"
    );
    // The continuation request carried the streamed text as Moonshot's partial prefill.
    let chats = chats(&a);
    assert_eq!(chats.len(), 2);
    let last = chats[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last,
        json!({"role": "assistant", "content": "pon", "partial": true})
    );
    // Usage adds the broken attempt (estimated) to what the continuation reported.
    let paid = usage(&body);
    let continuation_completion = 1; // "g": the mock counts at least one token
    assert!(
        paid["completion_tokens"].as_u64().unwrap() > continuation_completion,
        "{paid}"
    );
    assert_eq!(
        paid["total_tokens"].as_u64().unwrap(),
        paid["prompt_tokens"].as_u64().unwrap() + paid["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(recoveries(&gw, "prefix", "recovered"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_is_completed_too() {
    let (a, gw) = single("stall_once", PARTIAL, VERIFIED).await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong", "{body}");
    assert_eq!(events(&body).last().unwrap(), "[DONE]");
    assert_eq!(chats(&a).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_is_completed_by_a_verified_restart_when_the_answer_begins_with_what_was_sent()
{
    let (a, gw) = single("cut_once", "", VERIFIED).await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong", "{body}");
    assert_eq!(events(&body).last().unwrap(), "[DONE]");
    assert!(
        body.contains(": x-isdown-recovered: restart on a after 3 bytes"),
        "{body}"
    );
    // The restart was the caller's request again, without a prefill.
    let chats = chats(&a);
    assert_eq!(chats[1].body["messages"], chats[0].body["messages"]);
    assert_eq!(recoveries(&gw, "restart", "recovered"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restart_that_diverges_ends_with_the_clean_in_band_error() {
    let (a, gw) = single("cut_once_then_other", "", VERIFIED).await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    // Nothing of the diverging answer ("pink") reached the client.
    assert_eq!(streamed_text(&body), "pon", "{body}");
    let error = last_error(&body).unwrap();
    assert_eq!(error["error"]["code"], "stream_interrupted");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("diverged after 1 of the 3 bytes"),
        "{message}"
    );
    assert!(!body.contains("[DONE]"), "{body}");
    assert_eq!(chats(&a).len(), 2);
    assert_eq!(recoveries(&gw, "restart", "diverged"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_target_that_refuses_the_prefill_is_restarted_instead_of_failing_the_caller() {
    let (a, gw) = single("cut_once_refuse_prefill", PARTIAL, VERIFIED).await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong", "{body}");
    assert!(
        body.contains(": x-isdown-recovered: restart on a"),
        "{body}"
    );
    assert_eq!(chats(&a).len(), 3, "cut, refused prefill, restart");
    assert_eq!(recoveries(&gw, "prefix", "refused"), 1);
    assert_eq!(recoveries(&gw, "restart", "recovered"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_prefill_then_a_diverging_restart_end_with_the_original_failure_named() {
    let (a, gw) = single("cut_once_then_other", PARTIAL, VERIFIED).await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pon", "{body}");
    let error = last_error(&body).unwrap();
    assert_eq!(error["error"]["code"], "stream_interrupted");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the provider's stream ended before it was complete"),
        "{message}"
    );
    assert!(
        message.contains("a (prefix): the prefill was refused"),
        "{message}"
    );
    assert!(
        message.contains("a (restart): the new answer diverged"),
        "{message}"
    );
    assert!(!body.contains("[DONE]"), "{body}");
    assert_eq!(chats(&a).len(), 3, "cut, refused prefill, restart");
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_sent_a_tool_call_is_never_spliced() {
    let (a, gw) = single("cut_once", PARTIAL, VERIFIED).await;
    let request = json!({
        "model": "agent",
        "stream": true,
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]
        }}}],
    });
    let body = gw.chat(request).await.text().await.unwrap();
    let error = last_error(&body).unwrap();
    assert_eq!(error["error"]["code"], "stream_interrupted");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("a tool call"), "{message}");
    assert!(!body.contains("[DONE]"), "{body}");
    // No continuation was even asked for.
    assert_eq!(chats(&a).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_route_may_turn_recovery_on_for_itself() {
    let a = mock_async("openai", "cut_once").await;
    let config = format!(
        "{}[[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"a\" }}]\n{VERIFIED}{GATEWAY}",
        provider("a", &a),
    );
    let gw = Gw::start(&config).await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong", "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_stall_ejects_its_target_so_the_next_healthy_one_continues_the_stream() {
    let a = mock_async("openai", "stall_once").await;
    let b = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{}{GATEWAY}{VERIFIED}",
        provider("a", &a),
        provider("b", &b),
        route(&["a", "b"])
    );
    let gw = Gw::start(&config).await;
    let body = gw.chat(ask(true)).await.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong", "{body}");
    assert!(
        body.contains(": x-isdown-recovered: restart on b after 3 bytes"),
        "{body}"
    );
    // The hung target got no second request.
    assert_eq!(chats(&a).len(), 1);
    assert_eq!(chats(&b).len(), 1);
}

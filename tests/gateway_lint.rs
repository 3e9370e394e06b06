//! The request lint in the gateway, per route: `lint = "reject"` answers 400 naming the problems
//! before any provider is paid; `lint = "warn"` forwards and names them in `x-isdown-lint`; and
//! a provider's 500 to a request the lint flags is the request's fault — the error says so and
//! the breaker does not count it against the provider. Paused tokio time.

mod support;

use isdown::mock::MockServer;
use isdown::monitor::health::PassiveReport;
use isdown::verdict::Blame;
use serde_json::{Value, json};
use support::gateway::*;
use support::mock_async;

/// A route `agent` over `targets` with `lint = MODE`.
fn linted_route(targets: &[&str], mode: &str) -> String {
    format!("{}lint = \"{mode}\"\n", route(targets))
}

/// An agent request whose first tool has a name providers refuse.
fn flagged_request() -> Value {
    json!({
        "model": "agent",
        "messages": [{"role": "user", "content": "read the file"}],
        "tools": [
            {"type": "function", "function": {"name": "read file", "parameters": {
                "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}},
            {"type": "function", "function": {"name": "write_file", "parameters": {
                "type": "object", "properties": {"path": {"type": "string"}}}}},
        ],
    })
}

async fn error_of(response: reqwest::Response) -> Value {
    let body: Value = response.json().await.unwrap();
    body["error"].clone()
}

#[tokio::test(start_paused = true)]
async fn reject_answers_400_naming_the_findings_before_any_provider_is_paid() {
    let a = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{GATEWAY}",
        provider("a", &a),
        linted_route(&["a"], "reject")
    );
    let gw = Gw::start(&config).await;
    let mut request = flagged_request();
    request["temperature"] = json!(0.5);
    request["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "tool", "tool_call_id": "call_9", "content": "orphan"}));
    let response = gw.chat(request).await;
    assert_eq!(response.status(), 400);
    let error = error_of(response).await;
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "request_lint");
    let paths: Vec<&str> = error["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["messages[1].tool_call_id", "tools[0].function.name"]
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("not sent"), "{message}");
    assert!(message.contains("read file"), "{message}");
    assert_eq!(chats(&a).len(), 0, "no provider was paid");
}

#[tokio::test(start_paused = true)]
async fn reject_forwards_a_clean_request_unmarked() {
    let a = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{GATEWAY}",
        provider("a", &a),
        linted_route(&["a"], "reject")
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-isdown-lint").is_none());
    assert_eq!(chats(&a).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn warn_forwards_the_request_and_names_the_findings_in_a_header() {
    let a = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{GATEWAY}",
        provider("a", &a),
        linted_route(&["a"], "warn")
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(flagged_request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-isdown-lint"),
        "tools[0].function.name tool_name_pattern"
    );
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    // Forwarded as given: the lint changes nothing in the request.
    let sent = &chats(&a)[0].body;
    assert_eq!(sent["tools"][0]["function"]["name"], "read file");
}

#[tokio::test(start_paused = true)]
async fn a_finding_that_failing_over_avoids_is_not_the_requests() {
    // Target `a` sets temperature 0.3 for a Kimi model, which only `kimi` refuses; a request
    // clean elsewhere is not flagged for the whole route.
    let kimi = mock_async("kimi", "ok").await;
    let b = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}[[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"kimi\", model = \"kimi-k2.6\", params = {{ temperature = 0.3 }} }}, {{ provider = \"b\" }}]\nlint = \"reject\"\n{GATEWAY}",
        provider("kimi", &kimi),
        provider("b", &b),
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200, "{:?}", response.headers());
}

/// Sends `n` flagged requests through a route `a` (answering 500 to them) then `b`.
async fn flagged_500s(mode: Option<&str>, n: usize) -> (MockServer, MockServer, Gw) {
    let a = mock_async("openai", "tool_schema_500").await;
    let b = mock_async("openai", "ok").await;
    let routes = match mode {
        Some(mode) => linted_route(&["a", "b"], mode),
        None => route(&["a", "b"]),
    };
    let config = format!(
        "{}{}{routes}{GATEWAY}",
        provider("a", &a),
        provider("b", &b)
    );
    let gw = Gw::start(&config).await;
    for _ in 0..n {
        let response = gw.chat(flagged_request()).await;
        assert_eq!(header(&response, "x-isdown-provider"), "b");
    }
    (a, b, gw)
}

#[tokio::test(start_paused = true)]
async fn a_provider_500_to_a_flagged_request_does_not_open_its_breaker() {
    // Without lint, five 500s (each retried once) open `a`'s breaker: it is passed over after.
    let (a, _b, _gw) = flagged_500s(None, 8).await;
    let unlinted = chats(&a).len();
    assert!(
        unlinted < 16,
        "the breaker opened without lint: {unlinted} attempts"
    );

    // With lint = "warn" the same 500s are the request's: no retry on `a`, no breaker opening,
    // so every request still tries `a` once.
    let (a, b, mut gw) = flagged_500s(Some("warn"), 8).await;
    assert_eq!(chats(&a).len(), 8);
    assert_eq!(chats(&b).len(), 8);
    let blames: Vec<Option<Blame>> = gw
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            PassiveReport::Attempt(live) if live.provider == "a" => Some(live.blame),
            _ => None,
        })
        .collect();
    assert_eq!(blames.len(), 8);
    assert!(
        blames.iter().all(|b| *b == Some(Blame::Request)),
        "{blames:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_500_everywhere_to_a_flagged_request_says_the_request_is_the_likely_cause() {
    let a = mock_async("openai", "tool_schema_500").await;
    let config = format!(
        "{}{}{GATEWAY}",
        provider("a", &a),
        linted_route(&["a"], "warn")
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(flagged_request()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        header(&response, "x-isdown-lint"),
        "tools[0].function.name tool_name_pattern"
    );
    let error = error_of(response).await;
    assert_eq!(error["code"], "request_likely_invalid");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("the request, not the provider, is the likely cause"),
        "{message}"
    );
    assert_eq!(error["findings"][0]["rule"], "tool_name_pattern");
    assert_eq!(
        chats(&a).len(),
        1,
        "a flagged 500 is not retried on the same target"
    );
}

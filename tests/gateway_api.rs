//! The gateway's OpenAI-compatible surface: authentication, request limits, routes and model
//! rewrites, parameter pass-through and per-target overrides, data-driven request fixes, the
//! Anthropic target, `GET /v1/models`, error shapes, and what every attempt leaves behind
//! (provenance headers, passive-health reports, metrics). Keys never leak.

mod support;

use isdown::config::Config;
use isdown::gateway::{Gateway, GatewayDeps};
use isdown::metrics::Metrics;
use isdown::mock::MockServer;
use isdown::monitor::health::{Health, PassiveReporter};
use serde_json::{Value, json};
use support::gateway::*;
use support::mock_async;

async fn single(scenario: &str) -> (MockServer, Gw) {
    let m = mock_async("openai", scenario).await;
    let config = format!("{}{}{GATEWAY}", provider("a", &m), route(&["a"]));
    (m, Gw::start(&config).await)
}

#[tokio::test]
async fn a_plain_request_is_served_with_provenance_headers_and_the_upstream_key() {
    let m = mock_async("openai", "ok").await;
    let config = format!(
        "{}[[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"a\", model = \"real-model\" }}]\n{GATEWAY}",
        provider("a", &m)
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-provider"), "a");
    assert_eq!(header(&response, "x-isdown-model"), "real-model");
    assert_eq!(header(&response, "x-isdown-attempts"), "1");
    assert!(header(&response, "content-type").starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "pong");
    let seen = &chats(&m)[0];
    assert_eq!(seen.body["model"], "real-model");
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {}", upstream_key("a"))
    );
    assert!(
        !serde_json::to_string(seen).unwrap().contains(CLIENT_KEY),
        "the client's key stays here"
    );
}

#[tokio::test]
async fn every_parameter_and_tool_passes_through_and_tool_calls_come_back() {
    let (m, gw) = single("ok").await;
    let request = json!({
        "model": "agent",
        "messages": [{"role": "user", "content": "time?"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 77,
        "seed": 5,
        "user": "agent-7",
        "some_vendor_field": {"nested": [1, 2]},
        "tool_choice": "auto",
        "tools": [{"type": "function", "function": {
            "name": "get_time", "description": "now",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}
        }}],
    });
    let response = gw.chat(request.clone()).await;
    let body: Value = response.json().await.unwrap();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_time");
    let sent = &chats(&m)[0].body;
    for key in [
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "user",
        "some_vendor_field",
        "tool_choice",
        "tools",
    ] {
        assert_eq!(sent[key], request[key], "{key}");
    }
}

#[tokio::test]
async fn per_target_params_override_the_request_for_that_target_only() {
    let a = mock_async("openai", "unavailable").await;
    let b = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}[[routes]]\nmodel = \"agent\"\ntargets = [{{ provider = \"a\" }}, \
         {{ provider = \"b\", params = {{ temperature = 1, max_tokens = 9 }} }}]\n{GATEWAY}",
        provider("a", &a),
        provider("b", &b)
    );
    let gw = Gw::start(&config).await;
    let mut request = ask(false);
    request["temperature"] = json!(0.2);
    gw.chat(request).await;
    assert_eq!(chats(&a)[0].body["temperature"], 0.2);
    let to_b = &chats(&b)[0].body;
    assert_eq!(to_b["temperature"], 1);
    assert_eq!(to_b["max_tokens"], 9);
}

#[tokio::test]
async fn reasoning_content_is_kept_for_kimi_and_deepseek_and_dropped_for_other_targets() {
    // The catalog ids, pointed at mocks: the fixes table keys on ids. DeepSeek V4 requires the
    // field on tool-call turns; OpenAI does not know it.
    let kimi = mock_async("kimi", "unavailable").await;
    let deepseek = mock_async("deepseek", "unavailable").await;
    let openai = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{}{}{GATEWAY}",
        provider("kimi", &kimi),
        provider("deepseek", &deepseek),
        provider("openai", &openai),
        route(&["kimi", "deepseek", "openai"])
    );
    let gw = Gw::start(&config).await;
    let request = json!({
        "model": "agent",
        "messages": [
            {"role": "user", "content": "time?"},
            {"role": "assistant", "content": "", "reasoning_content": "I should call the tool",
             "tool_calls": [{"id": "c1", "type": "function",
                             "function": {"name": "get_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
        ],
    });
    let response = gw.chat(request).await;
    assert_eq!(header(&response, "x-isdown-provider"), "openai");
    let to_kimi = &chats(&kimi)[0].body["messages"][1];
    assert_eq!(to_kimi["reasoning_content"], "I should call the tool");
    let to_deepseek = &chats(&deepseek)[0].body["messages"][1];
    assert_eq!(to_deepseek["reasoning_content"], "I should call the tool");
    let to_openai = &chats(&openai)[0].body["messages"][1];
    assert!(to_openai.get("reasoning_content").is_none(), "{to_openai}");
    assert_eq!(to_openai["tool_calls"][0]["id"], "c1");
}

#[tokio::test]
async fn an_anthropic_target_is_reached_through_its_openai_compatible_endpoint() {
    let m = mock_async("anthropic", "ok").await;
    let config = format!(
        "[providers.claude]\nbase_url = \"{}\"\nstyle = \"anthropic\"\napi_key_env = \"KEY_CLAUDE\"\n\
         probe_model = \"claude-x\"\n{}{GATEWAY}",
        m.url(),
        route(&["claude"])
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(ask(true)).await;
    assert_eq!(header(&response, "x-isdown-provider"), "claude");
    let body = response.text().await.unwrap();
    assert_eq!(streamed_text(&body), "pong");
    let seen = &chats(&m)[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {}", upstream_key("claude"))
    );
}

#[tokio::test]
async fn missing_or_wrong_client_keys_are_refused_in_openai_shape() {
    let (m, gw) = single("ok").await;
    let url = format!("{}/v1/chat/completions", gw.url);
    for auth in [None, Some("Bearer not-the-key"), Some(CLIENT_KEY)] {
        let mut request = gw.client.post(&url).json(&ask(false));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(body["error"].get("param").is_some() && body["error"].get("code").is_some());
        assert!(!body.to_string().contains("not-the-key"));
    }
    let models = gw
        .client
        .get(format!("{}/v1/models", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
    assert_eq!(chats(&m).len(), 0);
}

#[tokio::test]
async fn without_client_keys_the_gateway_says_how_to_configure_it() {
    let m = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}[gateway]\nclient_keys_env = [\"UNSET_GW_KEY\"]\n",
        provider("a", &m),
        route(&["a"])
    );
    let gw = Gw::start(&config).await;
    let response = gw.chat(ask(false)).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UNSET_GW_KEY"),
        "{body}"
    );
}

#[tokio::test]
async fn open_on_localhost_needs_no_key_and_is_refused_elsewhere() {
    let m = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}[gateway]\nopen_on_localhost = true\n",
        provider("a", &m),
        route(&["a"])
    );
    let gw = Gw::start(&config).await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&ask(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // On a public address the gateway refuses to start...
    let parsed = Config::from_toml(&config, "t.toml", &env).unwrap();
    let (reporter, _rx) = PassiveReporter::channel(1);
    let deps = GatewayDeps {
        health: Health::default(),
        reporter,
        metrics: Metrics::new(),
    };
    let error = Gateway::new(&parsed.gateway, deps, "0.0.0.0:8080".parse().unwrap())
        .err()
        .expect("refused");
    assert!(error.to_string().contains("loopback"), "{error}");
    // ...and a config that says so is refused with its line.
    let public = format!("[serve]\nlisten = \"0.0.0.0:8080\"\n{config}");
    let error = Config::from_toml(&public, "t.toml", &env)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("open_on_localhost") && error.contains("loopback"),
        "{error}"
    );
}

#[tokio::test]
async fn the_open_gateway_refuses_what_a_web_page_can_send() {
    let m = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}[gateway]\nopen_on_localhost = true\n",
        provider("a", &m),
        route(&["a"])
    );
    let gw = Gw::start(&config).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = ask(false).to_string();
    // What a cross-site page can send without a CORS preflight: text/plain with its Origin.
    let cross_site = gw
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .header("origin", "https://evil.example")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let error: Value = cross_site.json().await.unwrap();
    assert_eq!(error["error"]["code"], "open_gateway_refused");
    // DNS rebinding: the right address under a foreign name.
    let rebound = gw
        .client
        .post(&url)
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // Nothing reached the provider; a local program still gets through.
    assert_eq!(chats(&m).len(), 0);
    let local = gw
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);
}

#[tokio::test]
async fn oversized_bodies_bad_json_and_missing_models_are_openai_shaped_errors() {
    let m = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{GATEWAY}max_request_bytes = 2000\n",
        provider("a", &m),
        route(&["a"])
    );
    let gw = Gw::start(&config).await;
    let mut big = ask(false);
    big["messages"][0]["content"] = json!("x".repeat(5000));
    let response = gw.chat(big).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_too_large");

    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(CLIENT_KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let response = gw.chat(json!({"messages": []})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "model");

    let response = gw.chat(json!({"model": "nope", "messages": []})).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));

    let response = gw
        .chat_with(ask(false), &[("x-isdown-timeout", "soon")])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(chats(&m).len(), 0);
}

#[tokio::test]
async fn routes_match_exact_names_and_globs_in_file_order() {
    let a = mock_async("openai", "ok").await;
    let b = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}[[routes]]\nmodel = \"kimi-k2\"\ntargets = [{{ provider = \"a\" }}]\n\
         [[routes]]\nmodel = \"kimi-*\"\ntargets = [{{ provider = \"b\" }}]\n{GATEWAY}",
        provider("a", &a),
        provider("b", &b)
    );
    let gw = Gw::start(&config).await;
    let exact = gw.chat(json!({"model": "kimi-k2", "messages": []})).await;
    assert_eq!(header(&exact, "x-isdown-provider"), "a");
    let glob = gw.chat(json!({"model": "kimi-k2.6", "messages": []})).await;
    assert_eq!(header(&glob, "x-isdown-provider"), "b");
    // A target without `model` forwards the requested name.
    assert_eq!(header(&glob, "x-isdown-model"), "kimi-k2.6");
    assert_eq!(chats(&b)[0].body["model"], "kimi-k2.6");

    let models: Value = gw
        .client
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["kimi-k2", "kimi-*"]);
    assert_eq!(models["object"], "list");
}

#[tokio::test]
async fn without_routes_each_provider_with_a_key_is_reachable_as_provider_slash_model() {
    let m = mock_async("openai", "ok").await;
    let config = format!("{}{GATEWAY}", provider("a", &m));
    let gw = Gw::start(&config).await;
    let response = gw
        .chat(json!({"model": "a/some-model", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-isdown-model"), "some-model");
    assert_eq!(chats(&m)[0].body["model"], "some-model");
    // Catalog providers without a key in the environment are not routes.
    let response = gw
        .chat(json!({"model": "kimi/kimi-k2.6", "messages": []}))
        .await;
    assert_eq!(response.status(), 404);
    let models: Value = gw
        .client
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "a/m");
    assert_eq!(models["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_attempt_is_reported_to_passive_health_and_counted_in_metrics() {
    let a = mock_async("openai", "unavailable").await;
    let b = mock_async("openai", "ok").await;
    let config = format!(
        "{}{}{}{GATEWAY}",
        provider("a", &a),
        provider("b", &b),
        route(&["a", "b"])
    );
    let mut gw = Gw::start(&config).await;
    gw.chat(ask(false)).await;
    assert_eq!(
        gw.reported(),
        vec![
            ("a".to_owned(), "unavailable".to_owned()),
            ("b".to_owned(), "up".to_owned())
        ]
    );
    let text = gw.metrics.render();
    assert!(
        text.contains(r#"isdown_gateway_attempts_total{provider="a",verdict="unavailable"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"isdown_gateway_attempts_total{provider="b",verdict="up"} 1"#));
    assert!(text.contains(r#"isdown_gateway_attempt_latency_seconds_count{provider="b"} 1"#));
    assert!(text.contains(r#"isdown_gateway_requests_total{outcome="served"} 1"#));
}

#[tokio::test]
async fn upstream_keys_never_reach_the_client() {
    let a = mock_async("openai", "auth_failed").await;
    let b = mock_async("kimi", "auth_failed").await;
    let config = format!(
        "{}{}{}{GATEWAY}",
        provider("a", &a),
        provider("b", &b),
        route(&["a", "b"])
    );
    let gw = Gw::start(&config).await;
    for stream in [false, true] {
        let response = gw.chat(ask(stream)).await;
        assert_eq!(response.status(), 502);
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap();
        for key in [upstream_key("a"), upstream_key("b")] {
            assert!(!body.contains(&key) && !headers.contains(&key), "{body}");
        }
        assert!(body.contains("auth_failed"), "{body}");
    }
}

//! Tests of the mock provider, against the real server ([`MockServer`]) on a loopback port.
//!
//! The server is listening when `MockServer::start` returns, so there is nothing to wait for at
//! start-up. Every test runs on paused tokio time: the mock's delays and keep-alive ticks cost
//! no wall time, and the time limits below are client-side deadlines that pass only once the
//! runtime is idle — never sleeps, never bounds on the machine's speed.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::request::{Generation, example_arguments};
use super::styles::StyleTable;
use super::{MockOptions, MockServer, Scenario, Style, answer, describe};
use crate::sse::{SseItem, SseReader};

/// The deadline for "nothing more comes". The tests run on paused time, where it passes only
/// once the runtime has nothing left to do: every byte the mock was going to send has arrived.
const QUIET: Duration = Duration::from_millis(300);

/// A client of one mock: its own connection pool (a test checks that a pooled connection is
/// reset too) aimed at the mock's base URL.
struct Client {
    http: reqwest::Client,
    base: String,
}

async fn start(style: Style, scenario: Scenario) -> (MockServer, Client) {
    let options = MockOptions {
        scenario,
        style,
        ..MockOptions::default()
    };
    let mock = MockServer::start(options).await.unwrap();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let client = Client {
        http,
        base: mock.url(),
    };
    (mock, client)
}

/// Stops the server and checks that it returns promptly and cleanly.
async fn stop(mock: MockServer) {
    tokio::time::timeout(Duration::from_secs(5), mock.stop())
        .await
        .expect("the server stops soon after it is asked to")
        .unwrap();
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn switch(&self, body: Value) -> reqwest::Response {
        self.post("/_mock/scenario")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn set(&self, scenario: &str) {
        let response = self.switch(json!({ "scenario": scenario })).await;
        assert_eq!(response.status(), 200, "switching to {scenario}");
    }

    async fn chat(&self, body: Value) -> reqwest::Result<reqwest::Response> {
        self.post("/v1/chat/completions")
            .bearer_auth("sk-test-key")
            .json(&body)
            .send()
            .await
    }

    async fn messages(&self, body: Value) -> reqwest::Result<reqwest::Response> {
        self.post("/v1/messages")
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
    }

    /// A request to `path` without the API's headers, for the tests that send their own.
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path))
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    /// A generation request on the style's own wire: `/v1/messages` for Anthropic, chat
    /// completions for every other style.
    async fn generate(&self, style: Style, stream: bool) -> reqwest::Result<reqwest::Response> {
        if style == Style::Anthropic {
            self.messages(messages_body(stream)).await
        } else {
            self.chat(chat_body(stream)).await
        }
    }

    async fn chat_json(&self, body: Value) -> Value {
        self.chat(body).await.unwrap().json().await.unwrap()
    }

    async fn chat_status(&self, body: Value) -> u16 {
        self.chat(body).await.unwrap().status().as_u16()
    }

    /// The `data:` payloads of a streamed chat answer, read to its end.
    async fn chat_data(&self, body: Value) -> Vec<String> {
        data_of(&self.chat(body).await.unwrap().text().await.unwrap())
    }

    async fn messages_json(&self, body: Value) -> Value {
        self.messages(body).await.unwrap().json().await.unwrap()
    }

    async fn messages_text(&self, body: Value) -> String {
        self.messages(body).await.unwrap().text().await.unwrap()
    }

    /// The request log as `GET /_mock/requests` lists it.
    async fn requests(&self) -> Vec<Value> {
        let log = self.get_json("/_mock/requests").await;
        log["requests"].as_array().unwrap().clone()
    }
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "kimi-k2.6",
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 8,
        "stream": stream,
    })
}

fn tools() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer"},
                    "verbose": {"type": "boolean"}
                },
                "required": ["city", "unit", "days"]
            }
        }
    }])
}

fn anthropic_tools() -> Value {
    json!([{
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }
    }])
}

fn messages_body(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "ping"}],
        "stream": stream,
    })
}

fn sse(text: &str) -> Vec<SseItem> {
    let mut reader = SseReader::new();
    let mut items = Vec::new();
    reader.push(text.as_bytes(), &mut items).unwrap();
    reader.finish(&mut items).unwrap();
    items
}

/// The `data:` payloads of an SSE text, in order.
fn data_of(text: &str) -> Vec<String> {
    sse(text)
        .into_iter()
        .filter_map(|item| match item {
            SseItem::Event { data, .. } => Some(data),
            SseItem::Comment(_) => None,
        })
        .collect()
}

/// The `(event name, JSON data)` pairs of an Anthropic stream.
fn events_of(text: &str) -> Vec<(String, Value)> {
    sse(text)
        .into_iter()
        .filter_map(|item| match item {
            SseItem::Event { event, data } => Some((
                event.unwrap_or_default(),
                serde_json::from_str(&data).unwrap(),
            )),
            SseItem::Comment(_) => None,
        })
        .collect()
}

/// Reads a body until it ends, fails, or stays quiet for [`QUIET`].
async fn read_until_quiet(response: &mut reqwest::Response) -> (String, Outcome) {
    let mut text = Vec::new();
    loop {
        match tokio::time::timeout(QUIET, response.chunk()).await {
            Err(_) => return (String::from_utf8_lossy(&text).into_owned(), Outcome::Quiet),
            Ok(Ok(Some(bytes))) => text.extend_from_slice(&bytes),
            Ok(Ok(None)) => return (String::from_utf8_lossy(&text).into_owned(), Outcome::End),
            Ok(Err(err)) => {
                assert!(err.is_body() || err.is_decode(), "{err:?}");
                return (String::from_utf8_lossy(&text).into_owned(), Outcome::Error);
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    End,
    Error,
    Quiet,
}

/// The content of an OpenAI stream: concatenated `delta.content`.
fn streamed_content(datas: &[String]) -> String {
    datas
        .iter()
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| {
            let chunk: Value = serde_json::from_str(data).unwrap();
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

// === names and data ===

#[test]
fn scenario_names_round_trip_in_declaration_order() {
    assert_eq!(Scenario::all().len(), 36);
    for (index, scenario) in Scenario::ALL.iter().enumerate() {
        assert_eq!(
            *scenario as usize, index,
            "SCENARIOS is in declaration order"
        );
        assert_eq!(scenario.as_str().parse::<Scenario>().unwrap(), *scenario);
        assert!(!describe(*scenario).is_empty());
    }
    let err = "explode".parse::<Scenario>().unwrap_err();
    assert!(err.to_string().contains("stream_stall"), "{err}");
}

#[test]
fn style_names_round_trip_in_declaration_order() {
    let names: Vec<&str> = Style::ALL.iter().map(|style| style.as_str()).collect();
    assert_eq!(
        names,
        [
            "kimi",
            "deepseek",
            "openai",
            "anthropic",
            "zhipu",
            "dashscope",
            "openrouter"
        ]
    );
    for (index, style) in Style::ALL.iter().enumerate() {
        assert_eq!(*style as usize, index);
        assert_eq!(style.as_str().parse::<Style>().unwrap(), *style);
    }
    assert!("mistral".parse::<Style>().is_err());
}

#[test]
fn embedded_style_table_loads_and_fills_the_model_json_escaped() {
    let table = StyleTable::embedded().unwrap();
    let openai = table.get(Style::Openai);
    let canned = openai.canned(Scenario::ModelNotFound).unwrap();
    let body: Value = serde_json::from_str(&canned.body("gpt-\"x\"")).unwrap();
    assert_eq!(
        body["error"]["message"],
        "The model `gpt-\"x\"` does not exist or you do not have access to it."
    );
}

#[test]
fn example_arguments_fill_required_properties_by_type() {
    let schema = &tools()[0]["function"]["parameters"];
    let arguments = example_arguments(schema);
    assert_eq!(
        Value::Object(arguments),
        json!({"city": "mock", "unit": "celsius", "days": 1})
    );
    assert!(example_arguments(&Value::Null).is_empty());
}

#[test]
fn arguments_are_split_into_at_least_two_pieces() {
    assert_eq!(answer::split_arguments("{}"), ["{", "}"]);
    let pieces = answer::split_arguments(r#"{"city":"mock"}"#);
    assert!(pieces.len() >= 2);
    assert_eq!(pieces.concat(), r#"{"city":"mock"}"#);
}

#[test]
fn generation_parse_reads_both_tool_formats() {
    let mut body = chat_body(true);
    body["tools"] = tools();
    body["stream_options"] = json!({"include_usage": true});
    let generation = Generation::parse(body.to_string().as_bytes()).unwrap();
    assert!(generation.stream && generation.include_usage);
    assert_eq!(generation.tool.unwrap().name, "get_weather");

    let mut body = messages_body(false);
    body["tools"] = anthropic_tools();
    let generation = Generation::parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(generation.tool.unwrap().schema["required"], json!(["city"]));
    assert!(Generation::parse(b"not json").is_err());
}

// === healthy answers ===

#[tokio::test(start_paused = true)]
async fn healthy_chat_echoes_the_model_and_answers_pong() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "499");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "kimi-k2.6");
    assert_eq!(body["choices"][0]["message"]["content"], "pong");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn healthy_stream_ends_with_done_after_a_usage_chunk() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    let mut body = chat_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = client.chat(body).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let datas = data_of(&response.text().await.unwrap());
    assert_eq!(datas.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&datas[datas.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let finish: Value = serde_json::from_str(&datas[datas.len() - 3]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], Value::Null);
    assert_eq!(streamed_content(&datas), "pong");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let (mock, client) = start(Style::Deepseek, Scenario::Ok).await;
    let datas = client.chat_data(chat_body(true)).await;
    assert_eq!(datas.last().unwrap(), "[DONE]");
    for data in &datas[..datas.len() - 1] {
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
        assert!(chunk.get("usage").is_none());
    }
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn kimi_stream_puts_usage_inside_the_last_choice() {
    let (mock, client) = start(Style::Kimi, Scenario::Ok).await;
    let datas = client.chat_data(chat_body(true)).await;
    let last: Value = serde_json::from_str(&datas[datas.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(
        last["choices"][0]["usage"]["total_tokens"]
            .as_u64()
            .is_some()
    );
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn tool_request_gets_a_call_of_the_first_tool_with_object_arguments() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    let mut body = chat_body(false);
    body["tools"] = tools();
    let answer: Value = client.chat_json(body).await;
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["city"], "mock");
    assert!(arguments.is_object());
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn streamed_tool_arguments_span_several_deltas_and_reassemble() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    let mut body = chat_body(true);
    body["tools"] = tools();
    let datas = client.chat_data(body).await;
    assert_eq!(datas.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = datas[..datas.len() - 1]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["function"]["name"], "get_weather");
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .filter(|piece| !piece.is_empty())
        .collect();
    assert!(pieces.len() >= 2, "{pieces:?}");
    let arguments: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert!(arguments.is_object());
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn anthropic_messages_answer_whole() {
    let (mock, client) = start(Style::Anthropic, Scenario::Ok).await;
    let response = client.messages(messages_body(false)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "pong"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["usage"]["input_tokens"].as_u64().is_some());
    assert!(message["usage"]["output_tokens"].as_u64().is_some());
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn anthropic_stream_sends_the_documented_event_sequence() {
    let (mock, client) = start(Style::Anthropic, Scenario::Ok).await;
    let text = client.messages_text(messages_body(true)).await;
    let events = events_of(&text);
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], *name, "event name matches data type");
    }
    let text: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "pong");
    assert_eq!(events[7].1["delta"]["stop_reason"], "end_turn");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn anthropic_tool_use_streams_input_json_deltas() {
    let (mock, client) = start(Style::Anthropic, Scenario::Ok).await;
    let mut body = messages_body(true);
    body["tools"] = anthropic_tools();
    let text = client.messages_text(body).await;
    let events = events_of(&text);
    let start = &events[1].1["content_block"];
    assert_eq!(start["type"], "tool_use");
    assert_eq!(start["name"], "get_weather");
    let pieces: Vec<&str> = events
        .iter()
        .filter(|(_, data)| data["delta"]["type"] == "input_json_delta")
        .filter_map(|(_, data)| data["delta"]["partial_json"].as_str())
        .collect();
    assert!(pieces.len() >= 2);
    let input: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert_eq!(input, json!({"city": "mock"}));
    let delta = events
        .iter()
        .find(|(name, _)| name == "message_delta")
        .unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events.last().unwrap().0, "message_stop");

    let mut body = messages_body(false);
    body["tools"] = anthropic_tools();
    let message: Value = client.messages_json(body).await;
    assert_eq!(message["content"][0]["type"], "tool_use");
    assert_eq!(message["content"][0]["input"], json!({"city": "mock"}));
    assert_eq!(message["stop_reason"], "tool_use");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn model_lists_take_each_style_shape() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    for path in ["/v1/models", "/models"] {
        let list: Value = client.get_json(path).await;
        assert_eq!(list["object"], "list");
        assert_eq!(list["data"][0]["object"], "model");
        assert_eq!(list["data"][0]["id"], "gpt-4o");
    }
    stop(mock).await;

    let (mock, client) = start(Style::Anthropic, Scenario::Ok).await;
    let list: Value = client.get_json("/v1/models").await;
    assert_eq!(list["data"][0]["type"], "model");
    assert!(
        list["data"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("claude-")
    );
    assert_eq!(list["has_more"], false);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn echo_key_quotes_the_key_it_received() {
    let (mock, client) = start(Style::Kimi, Scenario::EchoKey).await;
    let response = client
        .post("/v1/chat/completions")
        .bearer_auth("plainproxykey")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("plainproxykey"), "{message}");
    stop(mock).await;
}

// === every scenario × style ===

/// Status of a non-streaming generation request per scenario, in `Style::ALL` order (kimi,
/// deepseek, openai, anthropic, zhipu, dashscope, openrouter). `hang` and `reset` never get a
/// status and have their own tests.
const STATUSES: [(&str, [u16; 7]); 33] = [
    ("ok", [200; 7]),
    ("slow", [200; 7]),
    ("rate_limited", [429; 7]),
    ("rate_limited_no_retry_after", [429; 7]),
    ("quota_exhausted", [429, 402, 429, 400, 429, 400, 402]),
    ("auth_failed", [401; 7]),
    ("model_not_found", [404, 400, 404, 404, 400, 404, 400]),
    ("context_too_long", [400; 7]),
    ("content_filtered", [400, 400, 200, 200, 400, 400, 403]),
    ("bad_request", [400, 422, 400, 400, 400, 400, 400]),
    ("overloaded", [429, 503, 503, 529, 429, 503, 502]),
    ("server_error", [500; 7]),
    ("unavailable", [503; 7]),
    ("html_504", [504; 7]),
    ("malformed", [200; 7]),
    ("empty_choices", [200; 7]),
    ("error_in_200", [200; 7]),
    ("no_tool_call", [200; 7]),
    ("bad_tool_args", [200; 7]),
    ("stream_cut", [200; 7]),
    ("stream_stall", [200; 7]),
    ("stream_error", [500; 7]),
    ("keepalive_only", [200; 7]),
    ("keepalive_then_ok", [200; 7]),
    ("complete_without_done", [200; 7]),
    ("flapping", [200; 7]),
    ("echo_key", [401; 7]),
    // The first request after a switch breaks (cut, stalled) after its status line.
    ("cut_once", [200; 7]),
    ("cut_once_then_other", [200; 7]),
    ("cut_once_refuse_prefill", [200; 7]),
    ("stall_once", [200; 7]),
    // No tools in the request: the tool-schema scenarios answer as `ok` (see their own test).
    ("tool_schema_rejected", [200; 7]),
    ("tool_schema_500", [200; 7]),
];

#[tokio::test(start_paused = true)]
async fn every_scenario_answers_with_the_documented_status_in_every_style() {
    let table: Vec<&str> = STATUSES.iter().map(|(name, _)| *name).collect();
    for scenario in Scenario::all() {
        let listed = table.contains(&scenario.as_str());
        let special = matches!(
            scenario,
            Scenario::Hang | Scenario::HangChat | Scenario::Reset
        );
        assert!(listed != special, "{scenario} is covered exactly once");
    }
    for (index, style) in Style::ALL.iter().enumerate() {
        let (mock, client) = start(*style, Scenario::Ok).await;
        for (name, statuses) in STATUSES {
            client
                .switch(json!({"scenario": name, "delay_ms": 20}))
                .await;
            let response = client.generate(*style, false).await.unwrap();
            assert_eq!(response.status(), statuses[index], "{style} × {name}");
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let retry_after = response.headers().get("retry-after").cloned();
            match name {
                "rate_limited" => assert_eq!(retry_after.unwrap(), "2", "{style}"),
                "rate_limited_no_retry_after" => assert!(retry_after.is_none(), "{style}"),
                _ => {}
            }
            // Bodies that should arrive whole are read; the stream scenarios stop after headers.
            let breaks = [
                "stream_cut",
                "stream_stall",
                "keepalive_only",
                "cut_once",
                "stall_once",
            ];
            if breaks.iter().any(|b| name.starts_with(b)) {
                continue;
            }
            let text = response.text().await.unwrap();
            let parses = serde_json::from_str::<Value>(&text).is_ok();
            if name == "html_504"
                || (name == "unavailable" && content_type.starts_with("text/html"))
            {
                assert!(text.starts_with("<html>"), "{style} × {name}: {text}");
            } else if content_type.starts_with("application/json") {
                assert_eq!(parses, name != "malformed", "{style} × {name}: {text}");
            }
        }
        stop(mock).await;
    }
}

#[tokio::test(start_paused = true)]
async fn openai_rate_limit_carries_its_headers_and_wait() {
    let (mock, client) = start(Style::Openai, Scenario::RateLimited).await;
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn kimi_error_bodies_branch_on_type() {
    let (mock, client) = start(Style::Kimi, Scenario::RateLimited).await;
    let cases = [
        (
            "rate_limited",
            "rate_limit_reached_error",
            "please try again after 2 seconds",
        ),
        (
            "rate_limited_no_retry_after",
            "rate_limit_reached_error",
            "TPM rate limit",
        ),
        ("quota_exhausted", "exceeded_current_quota_error", "quota"),
        ("overloaded", "engine_overloaded_error", "overloaded"),
        (
            "model_not_found",
            "resource_not_found_error",
            "Not found the model kimi-k2.6",
        ),
    ];
    for (scenario, kind, text) in cases {
        client.set(scenario).await;
        let body: Value = client.chat_json(chat_body(false)).await;
        assert_eq!(body["error"]["type"], kind, "{scenario}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(text),
            "{scenario}"
        );
        assert!(
            body["error"].get("code").is_none(),
            "Moonshot sends no code"
        );
    }
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn anthropic_overload_is_529_and_credit_exhaustion_is_400() {
    let (mock, client) = start(Style::Anthropic, Scenario::Overloaded).await;
    let response = client.messages(messages_body(false)).await.unwrap();
    assert_eq!(response.status(), 529);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
    client.set("quota_exhausted").await;
    let body: Value = client.messages_json(messages_body(false)).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credit balance is too low")
    );
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn dashscope_moderation_is_an_sse_framed_400() {
    let (mock, client) = start(Style::Dashscope, Scenario::ContentFiltered).await;
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("data: "), "{text}");
    let error: Value = serde_json::from_str(&data_of(&text)[0]).unwrap();
    assert_eq!(error["error"]["code"], "data_inspection_failed");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn content_filter_without_an_error_status_ends_with_the_filter_reason() {
    let (mock, client) = start(Style::Openai, Scenario::ContentFiltered).await;
    let body: Value = client.chat_json(chat_body(false)).await;
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    let datas = client.chat_data(chat_body(true)).await;
    assert_eq!(datas.last().unwrap(), "[DONE]");
    let last: Value = serde_json::from_str(&datas[datas.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "content_filter");
    // The same style on the Anthropic wire answers with Anthropic's refusal.
    let message: Value = client.messages_json(messages_body(false)).await;
    assert_eq!(message["stop_reason"], "refusal");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn models_follow_outages_but_not_request_specific_errors() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    let cases = [
        ("auth_failed", 401),
        ("unavailable", 503),
        ("html_504", 504),
        ("rate_limited", 429),
        ("model_not_found", 200),
        ("context_too_long", 200),
        ("content_filtered", 200),
        ("bad_request", 200),
        ("stream_cut", 200),
        ("hang_chat", 200),
        ("bad_tool_args", 200),
        ("empty_choices", 200),
    ];
    for (scenario, status) in cases {
        client.set(scenario).await;
        let response = client.get("/v1/models").await;
        assert_eq!(response.status(), status, "{scenario}");
        if status == 200 {
            let list: Value = response.json().await.unwrap();
            assert_eq!(list["object"], "list", "{scenario}");
        }
    }
    client.set("reset").await;
    let err = client
        .http
        .get(client.url("/models"))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    stop(mock).await;
}

// === shapes of the broken answers ===

#[tokio::test(start_paused = true)]
async fn malformed_is_a_200_whose_json_stops_halfway() {
    let (mock, client) = start(Style::Openai, Scenario::Malformed).await;
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert!(text.starts_with('{'));
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let datas = client.chat_data(chat_body(true)).await;
    assert!(
        datas
            .iter()
            .any(|data| data != "[DONE]" && serde_json::from_str::<Value>(data).is_err())
    );
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn empty_choices_are_empty_in_both_wires() {
    let (mock, client) = start(Style::Openai, Scenario::EmptyChoices).await;
    let body: Value = client.chat_json(chat_body(false)).await;
    assert_eq!(body["choices"], json!([]));
    let message: Value = client.messages_json(messages_body(false)).await;
    assert_eq!(message["content"], json!([]));
    let datas = client.chat_data(chat_body(true)).await;
    assert_eq!(streamed_content(&datas), "");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn openrouter_error_in_200_relays_the_upstream_failure() {
    let (mock, client) = start(Style::Openrouter, Scenario::ErrorIn200).await;
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 502);
    assert!(body["error"]["metadata"]["provider_name"].is_string());
    assert!(body["error"]["metadata"]["raw"].is_string());
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn no_tool_call_answers_text_although_tools_were_given() {
    let (mock, client) = start(Style::Openai, Scenario::NoToolCall).await;
    let mut body = chat_body(false);
    body["tools"] = tools();
    let answer: Value = client.chat_json(body).await;
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["choices"][0]["message"]["content"], "pong");
    assert!(answer["choices"][0]["message"].get("tool_calls").is_none());
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn bad_tool_args_are_not_json() {
    let (mock, client) = start(Style::Openai, Scenario::BadToolArgs).await;
    let mut body = chat_body(false);
    body["tools"] = tools();
    let answer: Value = client.chat_json(body.clone()).await;
    let arguments = answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        serde_json::from_str::<Value>(&arguments).is_err(),
        "{arguments}"
    );
    // Without tools there is nothing to break.
    let plain: Value = client.chat_json(chat_body(false)).await;
    assert_eq!(plain["choices"][0]["message"]["content"], "pong");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn slow_holds_the_headers_for_the_delay() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    client
        .switch(json!({"scenario": "slow", "delay_ms": 150}))
        .await;
    let started = Instant::now();
    let response = client.chat(chat_body(false)).await.unwrap();
    // Paused time: the wait is exactly the switched delay, not the 2 s default.
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < super::DEFAULT_DELAY);
    assert_eq!(response.status(), 200);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn flapping_alternates_ok_and_unavailable() {
    let (mock, client) = start(Style::Kimi, Scenario::Flapping).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(client.chat_status(chat_body(false)).await);
    }
    assert_eq!(statuses, [200, 503, 200, 503]);
    stop(mock).await;
}

// === connection-level faults ===

#[tokio::test(start_paused = true)]
async fn reset_breaks_the_connection_before_any_status() {
    let (mock, client) = start(Style::Kimi, Scenario::Ok).await;
    // A pooled keep-alive connection is reset too, not just a fresh one.
    assert_eq!(client.chat(chat_body(false)).await.unwrap().status(), 200);
    client.set("reset").await;
    let err = client.chat(chat_body(false)).await.unwrap_err();
    assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
    client.set("ok").await;
    assert_eq!(client.chat(chat_body(false)).await.unwrap().status(), 200);

    // On a raw socket, which tells the two apart: the request is read, then RST — not an
    // orderly FIN.
    client.set("reset").await;
    let mut socket = TcpStream::connect(mock.addr()).await.unwrap();
    let request = "GET /v1/models HTTP/1.1\r\nhost: mock\r\n\r\n";
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
        .await
        .unwrap();
    let err = read.expect_err("a reset, not a response or a clean EOF");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn hang_never_answers() {
    let (mock, client) = start(Style::Openai, Scenario::Hang).await;
    let started = Instant::now();
    let err = client
        .post("/v1/chat/completions")
        .json(&chat_body(false))
        .timeout(QUIET)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= QUIET);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn hang_chat_never_answers_a_generation_but_lists_its_models() {
    let (mock, client) = start(Style::Openai, Scenario::HangChat).await;
    let err = client
        .post("/v1/chat/completions")
        .json(&chat_body(true))
        .timeout(QUIET)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let models = client.get("/v1/models").await;
    assert_eq!(models.status(), 200);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn stream_stall_sends_content_then_silence() {
    let (mock, client) = start(Style::Openai, Scenario::StreamStall).await;
    let mut response = client.chat(chat_body(true)).await.unwrap();
    assert_eq!(response.status(), 200);
    let (text, outcome) = read_until_quiet(&mut response).await;
    assert_eq!(outcome, Outcome::Quiet);
    let datas = data_of(&text);
    assert!(!streamed_content(&datas).is_empty());
    assert!(!datas.iter().any(|data| data == "[DONE]"));
    drop(response);

    // Non-streaming: headers, then nothing.
    let mut response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 200);
    let (text, outcome) = read_until_quiet(&mut response).await;
    assert_eq!((text.as_str(), outcome), ("", Outcome::Quiet));
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn keepalive_only_sends_comments_and_never_content() {
    for (style, comment) in [
        (Style::Deepseek, "keep-alive"),
        (Style::Openrouter, "OPENROUTER PROCESSING"),
    ] {
        let (mock, client) = start(style, Scenario::KeepaliveOnly).await;
        let mut response = client.chat(chat_body(true)).await.unwrap();
        assert_eq!(response.status(), 200);
        let (text, outcome) = read_until_quiet(&mut response).await;
        assert_eq!(outcome, Outcome::Quiet);
        let items = sse(&text);
        assert!(!items.is_empty());
        for item in items {
            assert_eq!(item, SseItem::Comment(comment.to_owned()), "{style}");
        }
        drop(response);

        let mut response = client.chat(chat_body(false)).await.unwrap();
        let (text, outcome) = read_until_quiet(&mut response).await;
        assert_eq!(outcome, Outcome::Quiet);
        assert!(
            !text.is_empty() && text.chars().all(|c| c == '\n'),
            "{text:?}"
        );
        drop(response);
        stop(mock).await;
    }
}

#[tokio::test(start_paused = true)]
async fn keepalives_repeat_every_half_second() {
    let (mock, client) = start(Style::Deepseek, Scenario::KeepaliveOnly).await;
    let mut response = client.chat(chat_body(true)).await.unwrap();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_millis(1_250);
    while let Ok(Ok(Some(_))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        count += 1;
    }
    // At once, after 500 ms and after 1000 ms: repetition, not a flood (on paused time the
    // count is exact).
    assert_eq!(count, 3, "{count} keep-alives");
    drop(response);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn stream_cut_delivers_content_then_a_body_error() {
    for style in [Style::Openai, Style::Anthropic] {
        let (mock, client) = start(style, Scenario::StreamCut).await;
        let mut response = client.generate(style, true).await.unwrap();
        assert_eq!(response.status(), 200);
        let (text, outcome) = read_until_quiet(&mut response).await;
        assert_eq!(outcome, Outcome::Error, "{style}: {text}");
        assert!(
            text.contains("\"po\"") || text.contains("\"p\""),
            "{style}: {text}"
        );
        assert!(!text.contains("[DONE]") && !text.contains("message_stop"));

        let response = client.generate(style, false).await.unwrap();
        assert_eq!(response.status(), 200);
        let err = response.text().await.unwrap_err();
        assert!(err.is_body() || err.is_decode(), "{err:?}");
        stop(mock).await;
    }
}

#[tokio::test(start_paused = true)]
async fn complete_without_done_streams_everything_but_the_end_marker_and_ends_cleanly() {
    for style in [Style::Openai, Style::Anthropic] {
        let (mock, client) = start(style, Scenario::CompleteWithoutDone).await;
        let mut response = if style == Style::Anthropic {
            client.messages(messages_body(true)).await
        } else {
            let mut body = chat_body(true);
            body["stream_options"] = json!({"include_usage": true});
            client.chat(body).await
        }
        .unwrap();
        assert_eq!(response.status(), 200);
        let (text, outcome) = read_until_quiet(&mut response).await;
        assert_eq!(outcome, Outcome::End, "{style}: {text}");
        assert!(
            !text.contains("[DONE]") && !text.contains("message_stop"),
            "{text}"
        );
        if style == Style::Anthropic {
            assert!(text.contains("\"stop_reason\":\"end_turn\""), "{text}");
        } else {
            assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
            assert!(text.contains("\"usage\""), "{text}");
        }
        stop(mock).await;
    }
}

#[tokio::test(start_paused = true)]
async fn stream_error_sends_the_style_in_stream_error() {
    // OpenAI: content, then an error object, then EOF without [DONE].
    let (mock, client) = start(Style::Openai, Scenario::StreamError).await;
    let mut response = client.chat(chat_body(true)).await.unwrap();
    let (text, outcome) = read_until_quiet(&mut response).await;
    assert_eq!(outcome, Outcome::End);
    let datas = data_of(&text);
    assert_eq!(streamed_content(&datas[..datas.len() - 1]), "p");
    let error: Value = serde_json::from_str(datas.last().unwrap()).unwrap();
    assert_eq!(error["error"]["type"], "server_error");
    stop(mock).await;

    // Anthropic: an `event: error` with overloaded_error and no message_stop.
    let (mock, client) = start(Style::Anthropic, Scenario::StreamError).await;
    let text = client.messages_text(messages_body(true)).await;
    let events = events_of(&text);
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert!(!events.iter().any(|(name, _)| name == "message_stop"));
    stop(mock).await;

    // Zhipu: a failure finish_reason, then [DONE] all the same.
    let (mock, client) = start(Style::Zhipu, Scenario::StreamError).await;
    let datas = client.chat_data(chat_body(true)).await;
    assert_eq!(datas.last().unwrap(), "[DONE]");
    let failure: Value = serde_json::from_str(&datas[datas.len() - 2]).unwrap();
    assert_eq!(failure["choices"][0]["finish_reason"], "network_error");
    stop(mock).await;

    // OpenRouter: the unified error chunk, model echoed, then the stream ends.
    let (mock, client) = start(Style::Openrouter, Scenario::StreamError).await;
    let datas = client.chat_data(chat_body(true)).await;
    let last: Value = serde_json::from_str(datas.last().unwrap()).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    assert_eq!(last["model"], "kimi-k2.6");
    assert!(last["error"]["message"].is_string());
    // Non-streaming: an ordinary server error.
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 500);
    stop(mock).await;

    // DashScope: the moderation error object, no [DONE].
    let (mock, client) = start(Style::Dashscope, Scenario::StreamError).await;
    let datas = client.chat_data(chat_body(true)).await;
    let last: Value = serde_json::from_str(datas.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "data_inspection_failed");
    stop(mock).await;
}

// === admin ===

#[tokio::test(start_paused = true)]
async fn admin_switches_the_scenario_at_run_time() {
    let (mock, client) = start(Style::Kimi, Scenario::Ok).await;
    let state: Value = client.get_json("/_mock/scenario").await;
    assert_eq!(state["scenario"], "ok");
    assert_eq!(state["style"], "kimi");
    assert_eq!(state["delay_ms"], 2000);

    let response = client
        .switch(json!({"scenario": "overloaded", "delay_ms": 50}))
        .await;
    assert_eq!(response.status(), 200);
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["scenario"], "overloaded");
    assert_eq!(state["delay_ms"], 50);
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "engine_overloaded_error");

    // The style can be switched too.
    let state: Value = client
        .switch(json!({"scenario": "overloaded", "style": "anthropic"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["style"], "anthropic");
    assert_eq!(client.chat(chat_body(false)).await.unwrap().status(), 529);

    client.set("ok").await;
    assert_eq!(client.chat(chat_body(false)).await.unwrap().status(), 200);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn unknown_scenario_is_a_400_listing_the_valid_names() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    for body in [
        json!({"scenario": "meltdown"}),
        json!({"scenario": "ok", "style": "mistral"}),
        json!({"scenaro": "ok"}),
    ] {
        let response = client.switch(body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        let valid = error["error"]["valid_scenarios"].as_array().unwrap();
        assert_eq!(valid.len(), Scenario::ALL.len());
        assert!(valid.contains(&json!("keepalive_only")));
        assert!(error["error"]["message"].is_string());
    }
    // The scenario in force is unchanged.
    assert_eq!(client.chat(chat_body(false)).await.unwrap().status(), 200);
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn request_log_records_api_requests_with_headers_and_body() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    client.chat(chat_body(false)).await.unwrap();
    client.messages(messages_body(false)).await.unwrap();
    client.get("/models").await;
    client
        .post("/v1/chat/completions")
        .body("not json")
        .send()
        .await
        .unwrap();
    client.set("auth_failed").await;

    let requests = client.requests().await;
    assert_eq!(requests.len(), 4, "admin requests are not recorded");
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(requests[0]["path"], "/v1/chat/completions");
    assert_eq!(
        requests[0]["headers"]["authorization"],
        "Bearer sk-test-key"
    );
    assert_eq!(requests[0]["body"], chat_body(false));
    assert!(requests[0]["body"].get("temperature").is_none());
    assert_eq!(requests[1]["headers"]["x-api-key"], "sk-ant-test");
    assert_eq!(requests[1]["headers"]["anthropic-version"], "2023-06-01");
    assert_eq!(requests[2]["method"], "GET");
    assert_eq!(requests[2]["body"], Value::Null);
    assert_eq!(requests[3]["body"], "not json");
    // The handle holds the same log.
    assert_eq!(json!(mock.requests()), Value::Array(requests));

    let response = client.delete("/_mock/requests").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(client.requests().await.is_empty());
    assert!(mock.requests().is_empty());
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn the_handle_switches_scenarios_and_tells_when_requests_arrived() {
    let (mock, client) = start(Style::Kimi, Scenario::Ok).await;
    assert_eq!(mock.url(), client.base);
    assert_eq!(mock.v1(), format!("{}/v1", client.base));
    mock.received(0).await;

    mock.set_scenario(Scenario::Flapping);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(client.chat_status(chat_body(false)).await);
    }
    // Setting a scenario starts `flapping` over, as the admin endpoint does.
    mock.set_scenario(Scenario::Flapping);
    statuses.push(client.chat_status(chat_body(false)).await);
    assert_eq!(statuses, [200, 503, 200, 200]);

    // A hung request counts as it arrives: `received` is the event to wait on.
    mock.set_scenario(Scenario::Hang);
    let hung = tokio::spawn({
        let http = client.http.clone();
        let url = client.url("/v1/chat/completions");
        async move { http.post(url).json(&chat_body(false)).send().await }
    });
    mock.received(5).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[4].path, "/v1/chat/completions");
    assert_eq!(requests[4].headers["content-type"], "application/json");
    assert_eq!(requests[4].body, chat_body(false));
    stop(mock).await;
    assert!(
        hung.await.unwrap().is_err(),
        "the hung request ends with the server"
    );
}

#[tokio::test(start_paused = true)]
async fn non_json_body_is_the_styles_bad_request() {
    let (mock, client) = start(Style::Zhipu, Scenario::Ok).await;
    let response = client
        .post("/chat/completions")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "1210");
    stop(mock).await;
}

#[tokio::test(start_paused = true)]
async fn unknown_path_is_a_404_and_is_recorded() {
    let (mock, client) = start(Style::Openai, Scenario::Ok).await;
    let response = client
        .post("/v1/completions")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_url");
    assert_eq!(client.requests().await[0]["path"], "/v1/completions");
    stop(mock).await;
}

// === shutdown ===

#[tokio::test(start_paused = true)]
async fn shutdown_returns_with_a_hung_connection_open() {
    let (mock, client) = start(Style::Openai, Scenario::Hang).await;
    // A raw socket, to see the connection itself: nothing arrives, then the close.
    let mut socket = TcpStream::connect(mock.addr()).await.unwrap();
    let body = chat_body(false).to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(QUIET, socket.read(&mut buf))
            .await
            .is_err(),
        "hang sends nothing"
    );
    // An in-flight stream that never ends must not hold shutdown either.
    client.set("keepalive_only").await;
    let mut stream = client.chat(chat_body(true)).await.unwrap();
    assert!(stream.chunk().await.unwrap().is_some());

    // Tokio time: the grace for in-flight answers, not a wait for the hung ones to end.
    let started = Instant::now();
    stop(mock).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    // The hung connection was closed by the shutdown.
    let read = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf))
        .await
        .expect("closed after shutdown");
    assert!(matches!(read, Ok(0) | Err(_)));
}

#[tokio::test(start_paused = true)]
async fn slow_waits_on_tokio_time() {
    // On paused time the 2 s default delay passes instantly once the runtime is idle: the mock
    // sleeps with tokio::time, never with the thread.
    let (mock, client) = start(Style::Openai, Scenario::Slow).await;
    let started = Instant::now();
    let response = client.chat(chat_body(false)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= super::DEFAULT_DELAY);
    stop(mock).await;
}

// === tool-schema scenarios ===

/// The OpenAI-wire request with one extra tool whose schema or name is `bad`.
fn chat_with_tool(tool: Value) -> Value {
    let mut body = chat_body(false);
    let mut list = tools().as_array().unwrap().clone();
    list.push(tool);
    body["tools"] = Value::Array(list);
    body
}

#[tokio::test(start_paused = true)]
async fn tool_schema_scenarios_refuse_only_requests_with_a_refused_tool() {
    let union = json!({"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"id": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}}}});
    let bad_name = json!({"type": "function", "function": {"name": "read file", "parameters": {
        "type": "object", "properties": {}}}});
    let fine = json!({"type": "function", "function": {"name": "read_file", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}}}}});
    for (scenario, refused_status) in [("tool_schema_rejected", 400), ("tool_schema_500", 500)] {
        let (mock, client) = start(Style::Kimi, Scenario::Ok).await;
        client.switch(json!({"scenario": scenario})).await;
        assert_eq!(
            client.chat(chat_body(false)).await.unwrap().status(),
            200,
            "{scenario}: ping"
        );
        assert_eq!(
            client
                .chat(chat_with_tool(fine.clone()))
                .await
                .unwrap()
                .status(),
            200,
            "{scenario}"
        );
        for tool in [&union, &bad_name] {
            let response = client.chat(chat_with_tool(tool.clone())).await.unwrap();
            assert_eq!(response.status(), refused_status, "{scenario}: {tool}");
        }
        // The model list is untouched: the provider is up.
        let models = client.get("/v1/models").await;
        assert_eq!(models.status(), 200);
        stop(mock).await;
    }
}

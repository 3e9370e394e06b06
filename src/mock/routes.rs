//! The mock's routes: the API endpoints (models, chat, messages), the admin endpoints and the
//! scenario in force. Every API request is recorded in the request log (`log`) before it is
//! answered.
//!
//! Which answer a scenario gives comes from `scenario` (facts), `styles` (canned bodies) and
//! `answer` (payloads); this module only wires them to requests. It never touches sockets: a
//! handler that wants its connection reset asks through the [`ConnHandle`] in its extensions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::MockOptions;
use super::answer::{self, Ctx, Ending, Parts, Reply};
use super::log::{RecordedRequest, RequestLog};
use super::request::{Endpoint, Generation, example_arguments};
use super::reset::ConnHandle;
use super::scenario::Scenario;
use super::styles::{Style, StyleData, StyleTable, Wire};

/// 500 ms between keep-alives: fast enough that a client's idle timer sees traffic, slow
/// enough to be cheap while a test waits on a first-token deadline.
const KEEPALIVE_EVERY: Duration = Duration::from_millis(500);

/// 32 MiB, Anthropic's request limit: context-window tests send big prompts on purpose.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

// === impl shared state ===

/// The scenario in force; switched at run time by the admin endpoint.
#[derive(Debug, Clone, Copy)]
pub(super) struct Live {
    scenario: Scenario,
    style: Style,
    delay: Duration,
    /// API requests answered under `flapping` since it was set.
    flaps: u64,
}

pub(super) struct Shared {
    table: &'static StyleTable,
    live: Mutex<Live>,
    pub(super) requests: RequestLog,
    next_id: AtomicU64,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical section
/// is a plain read or assignment), so poisoning is ignored rather than propagated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(super) fn new(table: &'static StyleTable, options: MockOptions) -> Shared {
        Shared {
            table,
            live: Mutex::new(Live {
                scenario: options.scenario,
                style: options.style,
                delay: options.delay,
                flaps: 0,
            }),
            requests: RequestLog::default(),
            next_id: AtomicU64::new(1),
        }
    }

    fn live(&self) -> Live {
        *lock(&self.live)
    }

    /// The scenario that answers this request: `flapping` resolved to its turn, and scenarios
    /// that leave the model list alone resolved to `ok` on `/models`.
    fn effective(&self, endpoint: Endpoint) -> (Scenario, Style, Duration) {
        let mut live = lock(&self.live);
        let mut scenario = live.scenario;
        let first_breaks = match scenario {
            Scenario::CutOnce | Scenario::CutOnceThenOther | Scenario::CutOnceRefusePrefill => {
                Some(Scenario::StreamCut)
            }
            Scenario::StallOnce => Some(Scenario::StreamStall),
            _ => None,
        };
        if let Some(broken) = first_breaks
            && endpoint != Endpoint::Models
        {
            if live.flaps == 0 {
                scenario = broken;
            }
            live.flaps += 1;
        }
        if scenario == Scenario::Flapping {
            scenario = if live.flaps.is_multiple_of(2) {
                Scenario::Ok
            } else {
                Scenario::Unavailable
            };
            live.flaps += 1;
        }
        if endpoint == Endpoint::Models && !scenario.affects_models() {
            scenario = Scenario::Ok;
        }
        (scenario, live.style, live.delay)
    }

    /// Puts `scenario` in force (and `delay`, `style` when given), as `POST /_mock/scenario`
    /// does: `flapping` and the first-request scenarios start over.
    pub(super) fn switch(
        &self,
        scenario: Scenario,
        delay: Option<Duration>,
        style: Option<Style>,
    ) -> Live {
        let live = {
            let mut live = lock(&self.live);
            live.scenario = scenario;
            live.flaps = 0;
            if let Some(delay) = delay {
                live.delay = delay;
            }
            if let Some(style) = style {
                live.style = style;
            }
            *live
        };
        tracing::info!(scenario = %live.scenario, style = %live.style, "mock: scenario switched");
        live
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .route("/_mock/scenario", get(get_scenario).post(set_scenario))
        .route("/_mock/requests", get(list_requests).delete(clear_requests))
        .fallback(unknown_path)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

// === impl admin ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    scenario: String,
    delay_ms: Option<u64>,
    style: Option<String>,
}

fn state_json(live: &Live) -> Value {
    json!({
        "scenario": live.scenario.as_str(),
        "description": live.scenario.describe(),
        "style": live.style.as_str(),
        "delay_ms": u64::try_from(live.delay.as_millis()).unwrap_or(u64::MAX),
    })
}

fn admin_error(message: String) -> Response {
    let body = json!({
        "error": {
            "message": message,
            "valid_scenarios": Scenario::names(),
            "valid_styles": Style::names(),
        }
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn get_scenario(State(shared): State<Arc<Shared>>) -> Response {
    Json(state_json(&shared.live())).into_response()
}

async fn set_scenario(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let switch: Switch = match serde_json::from_slice(&body) {
        Ok(switch) => switch,
        Err(err) => {
            return admin_error(format!(
                "expected {{\"scenario\": NAME, \"delay_ms\"?: N, \"style\"?: NAME}}: {err}"
            ));
        }
    };
    let scenario = match switch.scenario.parse::<Scenario>() {
        Ok(scenario) => scenario,
        Err(err) => return admin_error(err.to_string()),
    };
    let style = match switch.style.as_deref().map(str::parse::<Style>).transpose() {
        Ok(style) => style,
        Err(err) => return admin_error(err.to_string()),
    };
    let live = shared.switch(scenario, switch.delay_ms.map(Duration::from_millis), style);
    Json(state_json(&live)).into_response()
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({ "requests": shared.requests.list() })).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.clear();
    Json(json!({ "requests": [] })).into_response()
}

// === impl API ===

/// An API request as the handlers see it.
struct Incoming {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// Every API handler takes the whole request as one [`Incoming`]; the body is read as axum's
/// `Bytes` reads it, so the router's [`DefaultBodyLimit`] applies.
impl<S: Send + Sync> FromRequest<S> for Incoming {
    type Rejection = BytesRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let mut rest = Request::new(body);
        *rest.extensions_mut() = parts.extensions;
        Ok(Incoming {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body: Bytes::from_request(rest, state).await?,
        })
    }
}

fn record(shared: &Shared, incoming: &Incoming) {
    let headers = incoming.headers.iter().fold(
        BTreeMap::new(),
        |mut map: BTreeMap<String, String>, (name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            map.entry(name.as_str().to_owned())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert(value);
            map
        },
    );
    let body = if incoming.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&incoming.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&incoming.body).into_owned()))
    };
    shared.requests.record(RecordedRequest {
        method: incoming.method.to_string(),
        path: incoming.uri.path().to_owned(),
        headers,
        body,
    });
}

async fn models(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    incoming: Incoming,
) -> Response {
    api(&shared, &conn, Endpoint::Models, incoming).await
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    incoming: Incoming,
) -> Response {
    api(&shared, &conn, Endpoint::Chat, incoming).await
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    incoming: Incoming,
) -> Response {
    api(&shared, &conn, Endpoint::Messages, incoming).await
}

/// Unknown paths are logged (a wrong base URL is worth seeing) and answered like OpenAI does.
async fn unknown_path(State(shared): State<Arc<Shared>>, incoming: Incoming) -> Response {
    record(&shared, &incoming);
    let message = format!(
        "Unknown request URL: {} {}. Please check the URL for typos.",
        incoming.method,
        incoming.uri.path()
    );
    let body = json!({
        "error": {"message": message, "type": "invalid_request_error", "param": null, "code": "unknown_url"}
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// Answers one API request according to the scenario in force.
async fn api(
    shared: &Shared,
    conn: &ConnHandle,
    endpoint: Endpoint,
    incoming: Incoming,
) -> Response {
    record(shared, &incoming);
    let (mut scenario, style, delay) = shared.effective(endpoint);
    tracing::debug!(path = incoming.uri.path(), %scenario, %style, "mock: request");

    // Connection-level scenarios act before anything is parsed, like a broken network would.
    match scenario {
        Scenario::Hang | Scenario::HangChat => return std::future::pending().await,
        Scenario::Reset => {
            conn.0.request();
            return std::future::pending().await;
        }
        Scenario::Slow => tokio::time::sleep(delay).await,
        Scenario::EchoKey => return echo_key(&incoming.headers),
        _ => {}
    }

    let data = shared.table.get(style);
    let generation = match endpoint.wire() {
        None => None,
        Some(_) => match Generation::parse(&incoming.body) {
            Ok(generation) => Some(generation),
            Err(_) => return canned(data, Scenario::BadRequest, ""),
        },
    };
    let model = generation
        .as_ref()
        .map(|generation| generation.model.as_str())
        .filter(|model| !model.is_empty())
        .or(data.models.first().map(String::as_str))
        .unwrap_or("mock-model")
        .to_owned();

    if data.canned(scenario).is_some() {
        return canned(data, scenario, &model);
    }
    let prefilled = generation.as_ref().is_some_and(|g| g.prefill.is_some());
    let refuses_prefill = matches!(
        scenario,
        Scenario::CutOnceRefusePrefill | Scenario::CutOnceThenOther
    );
    if refuses_prefill && prefilled {
        return canned(data, Scenario::BadRequest, &model);
    }
    if let Some(refusal) = scenario.tool_schema_refusal() {
        if generation.as_ref().is_some_and(|g| g.refused_tool) {
            return canned(data, refusal, &model);
        }
        scenario = Scenario::Ok;
    }
    let mut response = match generation {
        None => model_list(shared, style, scenario),
        Some(generation) => {
            let shape = Shape {
                shared,
                style,
                endpoint,
                scenario,
                model,
                generation,
            };
            shape.answer()
        }
    };
    add_headers(&mut response, &data.headers, false);
    response
}

/// A 401 that repeats the key it was sent (from `Authorization: Bearer` or `x-api-key`), in
/// OpenAI's error shape, whatever the style: the shape of the leak, not of the provider, is what
/// tests need.
fn echo_key(headers: &HeaderMap) -> Response {
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    let body = json!({
        "error": {
            "message": format!("Incorrect API key provided: {key}. Key {key} is not valid."),
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key"
        }
    });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// A canned error answer of `style` (status, headers, body).
fn canned(data: &StyleData, scenario: Scenario, model: &str) -> Response {
    let Some(canned) = data.canned(scenario) else {
        // Every style resolves every canned scenario (validated when the table loads).
        return (StatusCode::INTERNAL_SERVER_ERROR, "mock: no canned answer").into_response();
    };
    let mut response = Response::new(Body::from(canned.body(model)));
    *response.status_mut() = canned.status;
    add_headers(&mut response, &data.headers, false);
    add_headers(&mut response, &canned.headers, true);
    response
}

/// Copies `headers` onto the response; `replace` lets answer-specific headers override the
/// style's defaults (e.g. `x-ratelimit-remaining-requests: 0` on a 429).
fn add_headers(response: &mut Response, headers: &HeaderMap, replace: bool) {
    for (name, value) in headers {
        if replace || !response.headers().contains_key(name) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn json_response(value: &Value) -> Response {
    Json(value).into_response()
}

fn model_list(shared: &Shared, style: Style, scenario: Scenario) -> Response {
    let data = shared.table.get(style);
    let list = if style.wire() == Wire::Messages {
        answer::anthropic_model_list(&data.models)
    } else {
        answer::model_list(&data.models, &data.owned_by, unix_now())
    };
    if scenario == Scenario::Malformed {
        return malformed_json(&list);
    }
    json_response(&list)
}

/// A 200 `application/json` answer whose body stops halfway (valid HTTP, invalid JSON).
fn malformed_json(value: &Value) -> Response {
    let text = value.to_string();
    let mut response = Response::new(Body::from(answer::first_half(text.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Everything needed to shape one generation answer.
struct Shape<'a> {
    shared: &'a Shared,
    style: Style,
    endpoint: Endpoint,
    scenario: Scenario,
    model: String,
    generation: Generation,
}

impl Shape<'_> {
    fn wire_data(&self) -> &StyleData {
        let wire = self.endpoint.wire().unwrap_or_else(|| self.style.wire());
        self.shared.table.in_stream(self.style, wire)
    }

    fn ctx(&self) -> Ctx {
        let n = self.shared.next_id();
        let id = match self.endpoint {
            Endpoint::Messages => format!("msg_mock{n:016}"),
            _ => format!("chatcmpl-mock{n:016}"),
        };
        Ctx {
            id,
            model: self.model.clone(),
            created: unix_now(),
            prompt_tokens: self.generation.prompt_tokens,
            include_usage: self.generation.include_usage,
            usage_in_choice: self.shared.table.get(self.style).usage_in_choice,
        }
    }

    /// The reply the scenario calls for.
    fn reply(&self) -> Reply {
        let tool = self.generation.tool.as_ref();
        match (self.scenario, tool) {
            (Scenario::EmptyChoices, _) => Reply::Empty,
            (Scenario::ContentFiltered, _) => {
                let finish = self
                    .wire_data()
                    .content_filter_finish
                    .clone()
                    .unwrap_or_else(|| "content_filter".to_owned());
                // Partial output, then the refusal: how filtered answers really end.
                Reply::Text {
                    pieces: vec![answer::PONG[0].to_owned()],
                    finish,
                }
            }
            (Scenario::CutOnce | Scenario::CutOnceRefusePrefill | Scenario::StallOnce, None) => {
                answer::after_prefill(answer::PONG, self.generation.prefill.as_deref())
            }
            (Scenario::CutOnceThenOther, None) => {
                answer::after_prefill(answer::PINK, self.generation.prefill.as_deref())
            }
            (Scenario::NoToolCall, _) | (_, None) => Reply::pong(),
            (_, Some(tool)) => {
                let mut arguments = Value::Object(example_arguments(&tool.schema)).to_string();
                if self.scenario == Scenario::BadToolArgs {
                    let cut = arguments.len() / 2;
                    arguments.truncate(cut.max(1));
                }
                let n = self.shared.next_id();
                let call_id = match self.endpoint {
                    Endpoint::Messages => format!("toolu_mock{n:016}"),
                    _ => format!("call_mock{n:016}"),
                };
                Reply::ToolCall {
                    call_id,
                    name: tool.name.clone(),
                    pieces: answer::split_arguments(&arguments),
                }
            }
        }
    }

    fn answer(&self) -> Response {
        if self.generation.stream {
            self.stream()
        } else {
            self.whole()
        }
    }

    fn whole(&self) -> Response {
        let json_headers = |mut response: Response| {
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        };
        match self.scenario {
            Scenario::StreamError => {
                return canned(
                    self.shared.table.get(self.style),
                    Scenario::ServerError,
                    &self.model,
                );
            }
            Scenario::StreamStall => {
                return json_headers(Response::new(answer::scripted_body(
                    Vec::new(),
                    Ending::Stall,
                )));
            }
            Scenario::KeepaliveOnly => {
                // DeepSeek's queue: blank lines on a non-streaming request.
                let ending = Ending::Repeat {
                    bytes: Bytes::from_static(b"\n"),
                    every: KEEPALIVE_EVERY,
                };
                return json_headers(Response::new(answer::scripted_body(Vec::new(), ending)));
            }
            _ => {}
        }
        let ctx = self.ctx();
        let reply = self.reply();
        let value = match self.endpoint {
            Endpoint::Messages => answer::message_json(&ctx, &reply),
            _ => answer::chat_json(&ctx, &reply),
        };
        match self.scenario {
            Scenario::Malformed => malformed_json(&value),
            Scenario::StreamCut => {
                // Announce the whole length, send half, then drop the connection.
                let text = value.to_string();
                let half = answer::first_half(text.as_bytes());
                let mut response = json_headers(Response::new(answer::scripted_body(
                    vec![half],
                    Ending::Abort,
                )));
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
                response
            }
            _ => json_response(&value),
        }
    }

    fn stream(&self) -> Response {
        let ctx = self.ctx();
        let reply = self.reply();
        let parts = match self.endpoint {
            Endpoint::Messages => answer::message_stream(&ctx, &reply),
            _ => answer::chat_stream(&ctx, &reply),
        };
        let Parts {
            head,
            content,
            tail,
        } = parts;
        let take = |n: usize| content.iter().take(n).cloned();
        let (chunks, ending) = match self.scenario {
            Scenario::StreamCut => (head.into_iter().chain(take(2)).collect(), Ending::Abort),
            Scenario::StreamStall => (head.into_iter().chain(take(2)).collect(), Ending::Stall),
            Scenario::StreamError => {
                let error = Bytes::from(self.wire_data().stream_error(&self.model));
                let chunks = head.into_iter().chain(take(1)).chain([error]).collect();
                (chunks, Ending::Done)
            }
            Scenario::KeepaliveOnly => {
                let ending = Ending::Repeat {
                    bytes: self.wire_data().keepalive.clone(),
                    every: KEEPALIVE_EVERY,
                };
                (Vec::new(), ending)
            }
            Scenario::KeepaliveThenOk => {
                // DeepSeek and OpenRouter interleave comments with a healthy answer.
                let keepalive = self.wire_data().keepalive.clone();
                let chunks = [keepalive.clone(), keepalive]
                    .into_iter()
                    .chain(head)
                    .chain(content)
                    .chain(tail)
                    .collect();
                (chunks, Ending::Done)
            }
            Scenario::CompleteWithoutDone => {
                // Everything but the end marker, which is the tail's last event on both wires.
                let mut tail = tail;
                tail.pop();
                let chunks = head.into_iter().chain(content).chain(tail).collect();
                (chunks, Ending::Done)
            }
            Scenario::Malformed => {
                // A `data:` line whose JSON stops halfway, then a normal end.
                let broken = content
                    .first()
                    .map(|event| {
                        let mut cut = answer::first_half(event).to_vec();
                        cut.extend_from_slice(b"\n\n");
                        Bytes::from(cut)
                    })
                    .unwrap_or_else(|| Bytes::from_static(b"data: {\"id\":\n\n"));
                let chunks = head.into_iter().chain([broken]).chain(tail).collect();
                (chunks, Ending::Done)
            }
            _ => {
                let chunks = head.into_iter().chain(content).chain(tail).collect();
                (chunks, Ending::Done)
            }
        };
        let mut response = Response::new(answer::scripted_body(chunks, ending));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

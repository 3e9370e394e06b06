//! Provider styles: which provider the mock impersonates, and that provider's canned answers.
//!
//! The facts live in the embedded `styles.toml` (status, headers and body of every error
//! scenario, per style), parsed and validated once into a [`StyleTable`]; adding a provider or
//! correcting a body is a data change. This module does no I/O: the server asks it for bytes.
//! A style missing an entry inherits it from the file's `[default]` table; which ones do is
//! pinned by [`EXPECTED_FALLBACKS`], checked at load.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use thiserror::Error;

use super::scenario::Scenario;
use crate::sse::{SseItem, SseReader};

/// The provider whose wire format, headers and error bodies the mock imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Style {
    Kimi,
    Deepseek,
    Openai,
    Anthropic,
    Zhipu,
    Dashscope,
    Openrouter,
}

/// The request protocol of an endpoint: OpenAI Chat Completions or Anthropic Messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Chat,
    Messages,
}

struct StyleInfo {
    style: Style,
    name: &'static str,
    /// The protocol this provider natively speaks; in-stream answers (finish reasons, stream
    /// error events, keep-alives) only make sense on that wire.
    wire: Wire,
}

/// One row per style, in declaration order (checked by a test).
const STYLES: [StyleInfo; 7] = [
    StyleInfo {
        style: Style::Kimi,
        name: "kimi",
        wire: Wire::Chat,
    },
    StyleInfo {
        style: Style::Deepseek,
        name: "deepseek",
        wire: Wire::Chat,
    },
    StyleInfo {
        style: Style::Openai,
        name: "openai",
        wire: Wire::Chat,
    },
    StyleInfo {
        style: Style::Anthropic,
        name: "anthropic",
        wire: Wire::Messages,
    },
    StyleInfo {
        style: Style::Zhipu,
        name: "zhipu",
        wire: Wire::Chat,
    },
    StyleInfo {
        style: Style::Dashscope,
        name: "dashscope",
        wire: Wire::Chat,
    },
    StyleInfo {
        style: Style::Openrouter,
        name: "openrouter",
        wire: Wire::Chat,
    },
];

/// A name that is not a style. Its message lists the valid names.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown style `{name}`; valid styles: {}", Style::names().join(", "))]
pub struct UnknownStyle {
    pub name: String,
}

impl Style {
    pub const ALL: [Style; 7] = [
        Style::Kimi,
        Style::Deepseek,
        Style::Openai,
        Style::Anthropic,
        Style::Zhipu,
        Style::Dashscope,
        Style::Openrouter,
    ];

    pub fn names() -> Vec<&'static str> {
        STYLES.iter().map(|info| info.name).collect()
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    pub(crate) fn wire(self) -> Wire {
        self.info().wire
    }

    fn info(self) -> &'static StyleInfo {
        &STYLES[self as usize]
    }
}

impl FromStr for Style {
    type Err = UnknownStyle;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        STYLES
            .iter()
            .find(|info| info.name == name)
            .map(|info| info.style)
            .ok_or_else(|| UnknownStyle {
                name: name.to_owned(),
            })
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Wire {
    /// The style whose in-stream answers serve this wire when the chosen style speaks the other
    /// one (e.g. `--style kimi` asked on `/v1/messages` still streams Anthropic events).
    pub(crate) fn home_style(self) -> Style {
        match self {
            Wire::Chat => Style::Openai,
            Wire::Messages => Style::Anthropic,
        }
    }
}

// === data file ===

const STYLES_TOML: &str = include_str!("styles.toml");

/// Scenarios answered with a canned status and body from the table.
const CANNED: [Scenario; 13] = [
    Scenario::RateLimited,
    Scenario::RateLimitedNoRetryAfter,
    Scenario::QuotaExhausted,
    Scenario::AuthFailed,
    Scenario::ModelNotFound,
    Scenario::ContextTooLong,
    Scenario::ContentFiltered,
    Scenario::BadRequest,
    Scenario::Overloaded,
    Scenario::ServerError,
    Scenario::Unavailable,
    Scenario::Html504,
    Scenario::ErrorIn200,
];

/// Errors a provider is not known to send, answered with `[default]`'s OpenAI-shaped entry, in
/// `Style::ALL` order. `html_504` and the `: keep-alive` comment are shared by design and not
/// listed. Checked when the table loads, so a missing entry in `styles.toml` cannot silently
/// become an inheritance.
pub(crate) const EXPECTED_FALLBACKS: [(Style, &str); 2] = [
    // Moonshot's mid-stream error format is undocumented (reference §3.6).
    (Style::Kimi, "stream_error"),
    // DashScope documents no overload error (reference §1.3).
    (Style::Dashscope, "overloaded"),
];

/// The placeholder replaced by the requested model in bodies and stream tails.
const MODEL_PLACEHOLDER: &str = "${model}";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStyle {
    #[serde(default)]
    models: Vec<String>,
    owned_by: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    usage_in_choice: bool,
    keepalive: Option<String>,
    stream_error: Option<String>,
    content_filter_finish: Option<String>,
    #[serde(default)]
    errors: BTreeMap<String, RawCanned>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanned {
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    content_type: Option<String>,
    body: String,
}

/// What is wrong with `styles.toml`. Only a broken build can produce one (tests load the file).
#[derive(Debug, Error)]
pub(crate) enum StyleError {
    #[error("styles.toml does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("styles.toml: `{name}` is neither a style nor `default`")]
    UnknownStyle { name: String },
    #[error("styles.toml: style `{style}` is missing")]
    MissingStyle { style: Style },
    #[error("styles.toml: [{table}.errors.{name}] is not a scenario answered from the table")]
    NotCanned { table: String, name: String },
    #[error("styles.toml: style `{style}` has no `{what}` (nor does [default])")]
    Missing { style: Style, what: String },
    #[error(
        "styles.toml: style `{style}` answers content_filtered both with an error and a finish"
    )]
    ContentFilterTwice { style: Style },
    #[error("styles.toml: [{table}] has an invalid header `{name}`")]
    BadHeader { table: String, name: String },
    #[error("styles.toml: [{table}.errors.{name}] has an invalid status {status}")]
    BadStatus {
        table: String,
        name: String,
        status: u16,
    },
    #[error(
        "styles.toml: styles inheriting from [default] changed: {found} (update EXPECTED_FALLBACKS)"
    )]
    UnexpectedFallbacks { found: String },
    #[error("styles.toml: [{table}] `{what}` is not valid JSON/SSE: {detail}")]
    BadBody {
        table: String,
        what: String,
        detail: String,
    },
}

/// A canned HTTP answer: status, headers (content type included) and body template.
#[derive(Debug, Clone)]
pub(crate) struct Canned {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: String,
}

impl Canned {
    /// The body with the requested model filled in.
    pub fn body(&self, model: &str) -> String {
        fill_model(&self.body, model)
    }
}

/// Everything the server needs to answer in one style.
#[derive(Debug)]
pub(crate) struct StyleData {
    pub models: Vec<String>,
    pub owned_by: String,
    /// Sent with every API answer of this style.
    pub headers: HeaderMap,
    pub usage_in_choice: bool,
    pub keepalive: Bytes,
    stream_error: String,
    /// `content_filtered` as a 200 ending with this finish/stop reason (else a canned error).
    pub content_filter_finish: Option<String>,
    canned: HashMap<Scenario, Canned>,
    /// `(scenario name)` entries taken from `[default]` other than the shared ones.
    fallbacks: Vec<&'static str>,
}

impl StyleData {
    /// The canned answer of an error scenario, if this scenario has one in this style.
    pub fn canned(&self, scenario: Scenario) -> Option<&Canned> {
        self.canned.get(&scenario)
    }

    /// The raw SSE bytes `stream_error` sends after its content chunk.
    pub fn stream_error(&self, model: &str) -> String {
        fill_model(&self.stream_error, model)
    }
}

/// The validated style table, one entry per [`Style`].
#[derive(Debug)]
pub(crate) struct StyleTable {
    styles: Vec<StyleData>,
}

impl StyleTable {
    /// The embedded table, parsed and validated on first use.
    pub fn embedded() -> Result<&'static StyleTable, &'static StyleError> {
        static TABLE: OnceLock<Result<StyleTable, StyleError>> = OnceLock::new();
        TABLE
            .get_or_init(|| StyleTable::parse(STYLES_TOML))
            .as_ref()
    }

    pub fn get(&self, style: Style) -> &StyleData {
        // `parse` builds one entry per style in `Style::ALL` order.
        &self.styles[style as usize]
    }

    /// Style-specific in-stream answers for a request on `wire`: the style's own when it speaks
    /// that wire, else the wire's home style's.
    pub fn in_stream(&self, style: Style, wire: Wire) -> &StyleData {
        if style.wire() == wire {
            self.get(style)
        } else {
            self.get(wire.home_style())
        }
    }

    /// `(style, scenario)` pairs answered from `[default]`, shared entries excluded.
    fn fallbacks(&self) -> Vec<(Style, &'static str)> {
        Style::ALL
            .iter()
            .flat_map(|&style| {
                self.get(style)
                    .fallbacks
                    .iter()
                    .map(move |&name| (style, name))
            })
            .collect()
    }

    fn parse(text: &str) -> Result<StyleTable, StyleError> {
        let mut raw: BTreeMap<String, RawStyle> = toml::from_str(text)?;
        let default = raw.remove("default").unwrap_or_default();
        if let Some(name) = raw.keys().find(|name| name.parse::<Style>().is_err()) {
            return Err(StyleError::UnknownStyle { name: name.clone() });
        }
        check_canned_names("default", &default)?;
        let default_canned = canned_map("default", &default)?;
        let mut styles = Vec::with_capacity(Style::ALL.len());
        for style in Style::ALL {
            let own = raw
                .remove(style.as_str())
                .ok_or(StyleError::MissingStyle { style })?;
            styles.push(resolve(style, own, &default, &default_canned)?);
        }
        let table = StyleTable { styles };
        let fallbacks = table.fallbacks();
        if fallbacks != EXPECTED_FALLBACKS {
            return Err(StyleError::UnexpectedFallbacks {
                found: format!("{fallbacks:?}"),
            });
        }
        Ok(table)
    }
}

fn check_canned_names(table: &str, raw: &RawStyle) -> Result<(), StyleError> {
    for name in raw.errors.keys() {
        let known = name
            .parse::<Scenario>()
            .is_ok_and(|scenario| CANNED.contains(&scenario));
        if !known {
            return Err(StyleError::NotCanned {
                table: table.to_owned(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

fn canned_map(table: &str, raw: &RawStyle) -> Result<HashMap<Scenario, Canned>, StyleError> {
    let mut map = HashMap::new();
    for (name, entry) in &raw.errors {
        let scenario = name
            .parse::<Scenario>()
            .map_err(|_| StyleError::NotCanned {
                table: table.to_owned(),
                name: name.clone(),
            })?;
        map.insert(scenario, canned(table, name, entry)?);
    }
    Ok(map)
}

fn resolve(
    style: Style,
    own: RawStyle,
    default: &RawStyle,
    default_canned: &HashMap<Scenario, Canned>,
) -> Result<StyleData, StyleError> {
    let table = style.as_str();
    check_canned_names(table, &own)?;
    let missing = |what: &str| StyleError::Missing {
        style,
        what: what.to_owned(),
    };
    let mut fallbacks = Vec::new();

    let mut canned = canned_map(table, &own)?;
    if own.content_filter_finish.is_some() && canned.contains_key(&Scenario::ContentFiltered) {
        return Err(StyleError::ContentFilterTwice { style });
    }
    for scenario in CANNED {
        let answered = canned.contains_key(&scenario)
            || (scenario == Scenario::ContentFiltered && own.content_filter_finish.is_some());
        if answered {
            continue;
        }
        let inherited = default_canned
            .get(&scenario)
            .ok_or_else(|| missing(scenario.as_str()))?;
        canned.insert(scenario, inherited.clone());
        if scenario != Scenario::Html504 {
            fallbacks.push(scenario.as_str());
        }
    }

    let stream_error = match (&own.stream_error, &default.stream_error) {
        (Some(own), _) => own.clone(),
        (None, Some(default)) => {
            fallbacks.push(Scenario::StreamError.as_str());
            default.clone()
        }
        (None, None) => return Err(missing("stream_error")),
    };
    check_sse(table, "stream_error", &stream_error)?;
    let keepalive = own
        .keepalive
        .as_ref()
        .or(default.keepalive.as_ref())
        .ok_or_else(|| missing("keepalive"))?;
    check_sse(table, "keepalive", keepalive)?;
    if own.models.is_empty() {
        return Err(missing("models"));
    }

    Ok(StyleData {
        models: own.models,
        owned_by: own.owned_by.ok_or_else(|| missing("owned_by"))?,
        headers: header_map(table, &own.headers)?,
        usage_in_choice: own.usage_in_choice,
        keepalive: Bytes::from(keepalive.clone()),
        stream_error,
        content_filter_finish: own.content_filter_finish,
        canned,
        fallbacks,
    })
}

fn canned(table: &str, name: &str, raw: &RawCanned) -> Result<Canned, StyleError> {
    let status = StatusCode::from_u16(raw.status).map_err(|_| StyleError::BadStatus {
        table: table.to_owned(),
        name: name.to_owned(),
        status: raw.status,
    })?;
    let where_ = format!("{table}.errors.{name}");
    let mut headers = header_map(&where_, &raw.headers)?;
    let content_type = raw.content_type.as_deref().unwrap_or("application/json");
    let value = HeaderValue::from_str(content_type).map_err(|_| StyleError::BadHeader {
        table: where_.clone(),
        name: "content_type".to_owned(),
    })?;
    headers.insert(CONTENT_TYPE, value);
    if content_type.starts_with("application/json") {
        check_json(&where_, "body", &fill_model(&raw.body, "mock"))?;
    } else if content_type.starts_with("text/event-stream") {
        check_sse(&where_, "body", &raw.body)?;
    }
    Ok(Canned {
        status,
        headers,
        body: raw.body.clone(),
    })
}

fn header_map(table: &str, raw: &BTreeMap<String, String>) -> Result<HeaderMap, StyleError> {
    let mut map = HeaderMap::with_capacity(raw.len());
    for (name, value) in raw {
        let bad = || StyleError::BadHeader {
            table: table.to_owned(),
            name: name.clone(),
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_str(value).map_err(|_| bad())?;
        map.insert(name, value);
    }
    Ok(map)
}

fn check_json(table: &str, what: &str, text: &str) -> Result<(), StyleError> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|_| ())
        .map_err(|err| StyleError::BadBody {
            table: table.to_owned(),
            what: what.to_owned(),
            detail: err.to_string(),
        })
}

/// SSE text must frame cleanly and every `data:` must be JSON or the `[DONE]` marker.
fn check_sse(table: &str, what: &str, text: &str) -> Result<(), StyleError> {
    let bad = |detail: String| StyleError::BadBody {
        table: table.to_owned(),
        what: what.to_owned(),
        detail,
    };
    if !text.ends_with("\n\n") {
        return Err(bad("SSE text must end with a blank line".to_owned()));
    }
    let mut reader = SseReader::new();
    let mut items = Vec::new();
    reader
        .push(text.as_bytes(), &mut items)
        .map_err(|err| bad(err.to_string()))?;
    reader
        .finish(&mut items)
        .map_err(|err| bad(err.to_string()))?;
    for item in items {
        if let SseItem::Event { data, .. } = item
            && data != "[DONE]"
        {
            check_json(table, what, &fill_model(&data, "mock"))?;
        }
    }
    Ok(())
}

/// Replaces the model placeholder, JSON-escaped so a model id cannot break the body.
fn fill_model(template: &str, model: &str) -> String {
    if !template.contains(MODEL_PLACEHOLDER) {
        return template.to_owned();
    }
    let quoted = serde_json::Value::from(model).to_string();
    let escaped = &quoted[1..quoted.len() - 1];
    template.replace(MODEL_PLACEHOLDER, escaped)
}

//! What the mock needs to know about an incoming API request: the endpoint, the model to echo,
//! whether to stream, whether to answer with a tool call. Parsing is lenient on purpose — the
//! mock imitates a provider, it does not validate requests (scenarios script the errors) — but a
//! body that is not JSON at all is reported so the server can answer it as a bad request.

use serde_json::{Map, Value};

use super::styles::Wire;

/// The API endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Models,
    Chat,
    Messages,
}

impl Endpoint {
    /// The protocol of a generation endpoint; `None` for the model list.
    pub fn wire(self) -> Option<Wire> {
        match self {
            Endpoint::Models => None,
            Endpoint::Chat => Some(Wire::Chat),
            Endpoint::Messages => Some(Wire::Messages),
        }
    }
}

/// The first tool of the request, which a tool-calling answer calls.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tool {
    pub name: String,
    /// JSON Schema of the arguments (OpenAI `function.parameters`, Anthropic `input_schema`).
    pub schema: Value,
}

/// A parsed generation request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Generation {
    /// The requested model, echoed in answers (empty when the request named none).
    pub model: String,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: add a final usage chunk with `choices: []`.
    pub include_usage: bool,
    pub tool: Option<Tool>,
    /// A rough prompt size for `usage` (about four bytes per token).
    pub prompt_tokens: u64,
    /// The text of a trailing assistant message (a prefill: answer what follows it).
    pub prefill: Option<String>,
    /// Some tool has a schema the tool-schema scenarios refuse (see [`refused_tool`]).
    pub refused_tool: bool,
}

/// The body was not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotJson;

impl Generation {
    pub fn parse(body: &[u8]) -> Result<Generation, NotJson> {
        let value: Value = serde_json::from_slice(body).map_err(|_| NotJson)?;
        let object = value.as_object().ok_or(NotJson)?;
        let model = object
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let stream = object
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let include_usage = object
            .get("stream_options")
            .and_then(|options| options.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let tool = object
            .get("tools")
            .and_then(Value::as_array)
            .and_then(|tools| tools.first())
            .and_then(tool_of);
        let prompt_bytes = object
            .get("messages")
            .map(|messages| messages.to_string().len())
            .unwrap_or(0);
        let prefill = object
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|messages| messages.last())
            .filter(|last| last.get("role").and_then(Value::as_str) == Some("assistant"))
            .and_then(|last| last.get("content"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let refused_tool = object
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|tools| tools.iter().any(refused_tool));
        Ok(Generation {
            model,
            stream,
            include_usage,
            tool,
            prefill,
            refused_tool,
            prompt_tokens: (prompt_bytes as u64 / 4).max(1),
        })
    }
}

/// Reads a tool in either wire format: OpenAI `{"type":"function","function":{"name",
/// "parameters"}}` or Anthropic `{"name","input_schema"}`.
fn tool_of(tool: &Value) -> Option<Tool> {
    let (name, schema) = match tool.get("function") {
        Some(function) => (function.get("name"), function.get("parameters")),
        None => (tool.get("name"), tool.get("input_schema")),
    };
    Some(Tool {
        name: name?.as_str()?.to_owned(),
        schema: schema.cloned().unwrap_or(Value::Null),
    })
}

/// Composition keywords the mock's validator refuses, as several providers' validators refuse
/// some union schemas.
const REFUSED_KEYWORDS: [&str; 3] = ["anyOf", "oneOf", "allOf"];

/// What the tool-schema scenarios refuse in a tool (either wire): a name outside letters,
/// digits, `_`, `.` and `-` or longer than 64 characters, or a composition keyword anywhere in
/// its schema. The first is what `isdown check --request` flags by reading; the second is valid
/// JSON Schema, found only by sending.
fn refused_tool(tool: &Value) -> bool {
    let Some(tool) = tool_of(tool) else {
        return false;
    };
    let bad_name = tool.name.is_empty()
        || tool.name.chars().count() > 64
        || !tool
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    bad_name || uses_refused_keyword(&tool.schema, 0)
}

/// Depth-bounded: a request's JSON is at most 128 levels deep anyway.
fn uses_refused_keyword(schema: &Value, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    match schema {
        Value::Object(map) => map.iter().any(|(key, value)| {
            REFUSED_KEYWORDS.contains(&key.as_str()) || uses_refused_keyword(value, depth + 1)
        }),
        Value::Array(items) => items.iter().any(|v| uses_refused_keyword(v, depth + 1)),
        _ => false,
    }
}

/// Example arguments that satisfy a tool's schema well enough for a client to accept them:
/// every required property (every property when none is marked required) gets a value of its
/// declared type, the first `enum` value when there is one.
pub(crate) fn example_arguments(schema: &Value) -> Map<String, Value> {
    let mut arguments = Map::new();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return arguments;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        if required.is_empty() || required.contains(&name.as_str()) {
            arguments.insert(name.clone(), example_value(property));
        }
    }
    arguments
}

/// Example values by JSON Schema type (a data table, not logic).
const EXAMPLES: [(&str, &str); 6] = [
    ("string", r#""mock""#),
    ("integer", "1"),
    ("number", "1.5"),
    ("boolean", "true"),
    ("array", "[]"),
    ("object", "{}"),
];

fn example_value(property: &Value) -> Value {
    if let Some(first) = property
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    let kind = match property.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        // `"type": ["string", "null"]`: the first type will do.
        Some(Value::Array(kinds)) => kinds.first().and_then(Value::as_str).unwrap_or("string"),
        _ => "string",
    };
    EXAMPLES
        .iter()
        .find(|(name, _)| *name == kind)
        .and_then(|(_, example)| serde_json::from_str(example).ok())
        .unwrap_or_else(|| Value::from("mock"))
}

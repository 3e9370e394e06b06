//! Tool definitions and the JSON Schema of their parameters.
//!
//! Rules that hold for every provider: a tool is `{"type": "function", "function": {"name",
//! "parameters"}}` (Anthropic wire: `{"name", "input_schema"}`), names are unique, parameters are
//! an object schema, and the schema is valid JSON Schema (known `type` names, `properties` an
//! object, `required` naming properties that exist). Catalog rows add what some providers refuse
//! although JSON Schema allows it: name patterns, tool counts, description lengths, arrays
//! without `items`, boolean or tuple schemas.
//!
//! Schemas are walked to [`MAX_DEPTH`] levels: deep enough for any real tool, bounded for a
//! hostile one.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::table::{Scope, Spec, TABLE};
use super::{Finding, JsonPath, Rule, Wire, shown};

/// 32 levels of nested schema: real tools use fewer than ten.
const MAX_DEPTH: usize = 32;

const SCHEMA_TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 3] = ["anyOf", "oneOf", "allOf"];

/// Keywords whose value is a map of named schemas.
const SCHEMA_MAPS: [&str; 2] = ["$defs", "definitions"];

const CHAT_SHAPE: &str = "`{\"type\": \"function\", \"function\": {\"name\": …, \"description\": …, \"parameters\": {…}}}`";
const MESSAGES_SHAPE: &str = "`{\"name\": …, \"description\": …, \"input_schema\": {…}}`";

/// Checks a tool name against the target's pattern (tool definitions and replayed calls).
pub(super) fn check_name(name: &str, path: &JsonPath, scope: &Scope<'_>, out: &mut Vec<Finding>) {
    let Some(check) = TABLE.first(Rule::ToolNamePattern, scope) else {
        return;
    };
    let Spec::Pattern { regex, text } = &check.spec else {
        return;
    };
    if !regex.is_match(name) {
        let value = shown(&Value::String(name.to_owned()));
        let expected = format!("`{text}`");
        out.push(Finding::new(
            Rule::ToolNamePattern,
            path,
            Some(&value),
            Some(&expected),
            Some(&check.source),
        ));
    }
}

/// Which data-driven schema rules apply to this target.
#[derive(Debug, Clone, Copy, Default)]
struct SchemaRules<'t> {
    array_items: Option<&'t str>,
    node_object: Option<&'t str>,
    tuple_items: Option<&'t str>,
}

pub(super) fn check(
    request: &Map<String, Value>,
    scope: &Scope<'_>,
    wire: Wire,
    out: &mut Vec<Finding>,
) {
    let path = JsonPath::root().key("tools");
    let tools = match request.get("tools") {
        None | Some(Value::Null) => return,
        Some(Value::Array(tools)) => tools,
        Some(other) => {
            let detail = format!("`tools` is {}, not an array", shown(other));
            out.push(Finding::new(
                Rule::ToolDefinitionInvalid,
                &path,
                None,
                Some(shape(wire)),
                Some(&detail),
            ));
            return;
        }
    };
    if let Some(check) = TABLE.first(Rule::ToolsTooMany, scope)
        && let Spec::Limit(limit) = check.spec
        && tools.len() as u64 > limit
    {
        let (value, expected) = (tools.len().to_string(), limit.to_string());
        out.push(Finding::new(
            Rule::ToolsTooMany,
            &path,
            Some(&value),
            Some(&expected),
            Some(&check.source),
        ));
    }
    let description_limit = TABLE
        .first(Rule::ToolDescriptionTooLong, scope)
        .and_then(|c| match c.spec {
            Spec::Limit(limit) => Some((limit, c.source.as_str())),
            _ => None,
        });
    let rules = SchemaRules {
        array_items: TABLE
            .first(Rule::SchemaArrayItemsMissing, scope)
            .map(|c| c.source.as_str()),
        node_object: TABLE
            .first(Rule::SchemaNodeNotObject, scope)
            .map(|c| c.source.as_str()),
        tuple_items: TABLE
            .first(Rule::SchemaTupleItems, scope)
            .map(|c| c.source.as_str()),
    };
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, tool) in tools.iter().enumerate() {
        let here = path.index(i);
        let Some(definition) = definition(tool, &here, wire, out) else {
            continue;
        };
        check_name(definition.name, &definition.name_path, scope, out);
        match names.get(definition.name) {
            Some(first) => {
                let value = shown(&Value::String(definition.name.to_owned()));
                let detail = format!("first at tools[{first}]");
                out.push(Finding::new(
                    Rule::ToolNameDuplicate,
                    &definition.name_path,
                    Some(&value),
                    None,
                    Some(&detail),
                ));
            }
            None => {
                names.insert(definition.name, i);
            }
        }
        if let (Some((limit, source)), Some(description)) =
            (description_limit, definition.description)
        {
            let length = description.chars().count() as u64;
            if length > limit {
                let (value, expected) = (length.to_string(), limit.to_string());
                out.push(Finding::new(
                    Rule::ToolDescriptionTooLong,
                    &definition.description_path,
                    Some(&value),
                    Some(&expected),
                    Some(source),
                ));
            }
        }
        match definition.schema {
            Some(schema) => parameters(schema, &definition.schema_path, &rules, out),
            None if wire == Wire::Messages => out.push(Finding::with_detail(
                Rule::ToolParametersNotObject,
                &definition.schema_path,
                "`input_schema` is missing",
            )),
            None => {}
        }
    }
}

fn shape(wire: Wire) -> &'static str {
    match wire {
        Wire::Chat => CHAT_SHAPE,
        Wire::Messages => MESSAGES_SHAPE,
    }
}

/// The parts of one tool definition the checks need.
struct Definition<'v> {
    name: &'v str,
    name_path: JsonPath,
    description: Option<&'v str>,
    description_path: JsonPath,
    schema: Option<&'v Value>,
    schema_path: JsonPath,
}

/// Reads one definition; reports and returns `None` when its shape is wrong, or for tools that
/// carry no schema of their own (OpenAI `custom` tools, Anthropic server tools).
fn definition<'v>(
    tool: &'v Value,
    here: &JsonPath,
    wire: Wire,
    out: &mut Vec<Finding>,
) -> Option<Definition<'v>> {
    let invalid = |out: &mut Vec<Finding>, path: &JsonPath, detail: &str| {
        out.push(Finding::new(
            Rule::ToolDefinitionInvalid,
            path,
            None,
            Some(shape(wire)),
            Some(detail),
        ));
    };
    let Some(tool) = tool.as_object() else {
        invalid(out, here, &format!("the tool is {}", shown(tool)));
        return None;
    };
    let (body, body_path) = match wire {
        Wire::Chat => {
            match tool.get("type").and_then(Value::as_str) {
                Some("function") => {}
                // Free-form tools of OpenAI's newer models: a name and a grammar, no schema.
                Some("custom") => return None,
                Some(other) => {
                    invalid(
                        out,
                        &here.key("type"),
                        &format!("`type` is \"{other}\", not \"function\""),
                    );
                    return None;
                }
                None => {
                    invalid(out, &here.key("type"), "`type` is missing");
                    return None;
                }
            }
            let Some(function) = tool.get("function").and_then(Value::as_object) else {
                invalid(
                    out,
                    &here.key("function"),
                    "`function` is missing or not an object",
                );
                return None;
            };
            (function, here.key("function"))
        }
        Wire::Messages => {
            // Server tools (`web_search_…`, `bash_…`) are defined by their type, not a schema.
            if tool
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "custom")
            {
                return None;
            }
            (tool, here.clone())
        }
    };
    let name_path = body_path.key("name");
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        invalid(out, &name_path, "`name` is missing or not a string");
        return None;
    };
    let schema_key = match wire {
        Wire::Chat => "parameters",
        Wire::Messages => "input_schema",
    };
    Some(Definition {
        name,
        name_path,
        description: body.get("description").and_then(Value::as_str),
        description_path: body_path.key("description"),
        schema: body.get(schema_key).filter(|s| !s.is_null()),
        schema_path: body_path.key(schema_key),
    })
}

/// The root of a tool's schema must be an object schema; then the whole schema is walked.
fn parameters(schema: &Value, path: &JsonPath, rules: &SchemaRules<'_>, out: &mut Vec<Finding>) {
    let Some(node) = schema.as_object() else {
        let detail = format!("they are {}", shown(schema));
        out.push(Finding::with_detail(
            Rule::ToolParametersNotObject,
            path,
            &detail,
        ));
        return;
    };
    match node.get("type") {
        Some(Value::String(kind)) if kind == "object" => {}
        Some(other) => {
            let detail = format!("`type` is {}", shown(other));
            out.push(Finding::with_detail(
                Rule::ToolParametersNotObject,
                path,
                &detail,
            ));
        }
        // `{}` is accepted everywhere as "no arguments"; anything more needs the type.
        None if !node.is_empty() => out.push(Finding::with_detail(
            Rule::ToolParametersNotObject,
            path,
            "`type` is missing",
        )),
        None => {}
    }
    walk(node, path, 0, rules, out);
}

fn invalid_schema(path: &JsonPath, detail: &str, expected: &str, out: &mut Vec<Finding>) {
    out.push(Finding::new(
        Rule::SchemaInvalid,
        path,
        None,
        Some(expected),
        Some(detail),
    ));
}

/// A sub-schema: an object is walked, a boolean is legal JSON Schema that some targets refuse,
/// anything else is invalid.
fn child(
    value: &Value,
    path: &JsonPath,
    depth: usize,
    rules: &SchemaRules<'_>,
    out: &mut Vec<Finding>,
) {
    match value {
        Value::Object(node) => walk(node, path, depth + 1, rules, out),
        Value::Bool(_) => {
            if let Some(source) = rules.node_object {
                let value = shown(value);
                out.push(Finding::new(
                    Rule::SchemaNodeNotObject,
                    path,
                    Some(&value),
                    None,
                    Some(source),
                ));
            }
        }
        other => {
            let detail = format!("a schema must be an object, found {}", shown(other));
            invalid_schema(
                path,
                &detail,
                "write `{\"type\": …}` instead of a bare value",
                out,
            );
        }
    }
}

fn walk(
    node: &Map<String, Value>,
    path: &JsonPath,
    depth: usize,
    rules: &SchemaRules<'_>,
    out: &mut Vec<Finding>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let types = schema_types(node, path, out);
    if let Some(properties) = node.get("properties") {
        match properties {
            Value::Object(properties) => {
                for (name, property) in properties {
                    child(
                        property,
                        &path.key("properties").key(name),
                        depth,
                        rules,
                        out,
                    );
                }
            }
            other => {
                let detail = format!("`properties` is {}", shown(other));
                invalid_schema(
                    &path.key("properties"),
                    &detail,
                    "`properties` maps names to schemas",
                    out,
                );
            }
        }
    }
    required(node, path, out);
    match node.get("items") {
        Some(Value::Array(items)) => {
            if let Some(source) = rules.tuple_items {
                out.push(Finding::with_detail(
                    Rule::SchemaTupleItems,
                    &path.key("items"),
                    source,
                ));
            }
            for (k, item) in items.iter().enumerate() {
                child(item, &path.key("items").index(k), depth, rules, out);
            }
        }
        Some(items) => child(items, &path.key("items"), depth, rules, out),
        None => {
            let is_array = types.contains(&"array");
            if is_array
                && !node.contains_key("prefixItems")
                && let Some(source) = rules.array_items
            {
                out.push(Finding::with_detail(
                    Rule::SchemaArrayItemsMissing,
                    path,
                    source,
                ));
            }
        }
    }
    if let Some(values) = node.get("enum")
        && values.as_array().is_none_or(Vec::is_empty)
    {
        let detail = format!("`enum` is {}", shown(values));
        invalid_schema(
            &path.key("enum"),
            &detail,
            "`enum` is a non-empty list of values",
            out,
        );
    }
    for keyword in SCHEMA_LISTS {
        match node.get(keyword) {
            None => {}
            Some(Value::Array(list)) => {
                for (k, item) in list.iter().enumerate() {
                    child(item, &path.key(keyword).index(k), depth, rules, out);
                }
            }
            Some(other) => {
                let detail = format!("`{keyword}` is {}", shown(other));
                let expected = format!("`{keyword}` is a list of schemas");
                invalid_schema(&path.key(keyword), &detail, &expected, out);
            }
        }
    }
    if let Some(additional @ Value::Object(_)) = node.get("additionalProperties") {
        child(
            additional,
            &path.key("additionalProperties"),
            depth,
            rules,
            out,
        );
    }
    for keyword in SCHEMA_MAPS {
        if let Some(Value::Object(definitions)) = node.get(keyword) {
            for (name, definition) in definitions {
                child(definition, &path.key(keyword).key(name), depth, rules, out);
            }
        }
    }
}

/// The node's `type` names, reporting ones JSON Schema does not know.
fn schema_types<'v>(
    node: &'v Map<String, Value>,
    path: &JsonPath,
    out: &mut Vec<Finding>,
) -> Vec<&'v str> {
    let expected = format!("`type` is one of {}", SCHEMA_TYPES.join(", "));
    let names: Vec<&Value> = match node.get("type") {
        None => return Vec::new(),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single) => vec![single],
    };
    let mut types = Vec::new();
    for name in names {
        match name.as_str() {
            Some(kind) if SCHEMA_TYPES.contains(&kind) => types.push(kind),
            _ => {
                let detail = format!("`type` {} is not a JSON Schema type", shown(name));
                invalid_schema(&path.key("type"), &detail, &expected, out);
            }
        }
    }
    types
}

/// `required` is a list of property names, each one defined — checked only where the node
/// lists its properties itself (composed schemas may define them in their branches).
fn required(node: &Map<String, Value>, path: &JsonPath, out: &mut Vec<Finding>) {
    let Some(required) = node.get("required") else {
        return;
    };
    let Some(names) = required
        .as_array()
        .filter(|names| names.iter().all(Value::is_string))
    else {
        let detail = format!("`required` is {}", shown(required));
        invalid_schema(
            &path.key("required"),
            &detail,
            "`required` is a list of property names",
            out,
        );
        return;
    };
    let composed = SCHEMA_LISTS.iter().any(|k| node.contains_key(*k))
        || node.contains_key("$ref")
        || node.contains_key("patternProperties")
        || node
            .get("additionalProperties")
            .is_some_and(Value::is_object);
    let Some(Value::Object(properties)) = node.get("properties") else {
        return;
    };
    if composed {
        return;
    }
    for (k, name) in names.iter().enumerate() {
        if let Some(name) = name.as_str()
            && !properties.contains_key(name)
        {
            let value = format!("`{name}`");
            out.push(Finding::new(
                Rule::SchemaRequiredUnknown,
                &path.key("required").index(k),
                Some(&value),
                None,
                None,
            ));
        }
    }
}

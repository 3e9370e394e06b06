//! The request lint: what is wrong with a chat request before it is sent.
//!
//! It owns the answer to "is it my request?" that can be given without a provider: tool
//! definitions that are not the JSON Schema subset providers accept, message order and tool-call
//! pairing, parameters outside a model's documented range, fields a target rejects or requires,
//! and prompts that cannot fit the model's context window (the estimate is the gateway's,
//! `crate::estimate`). `isdown check --request` and the gateway's per-route `lint` call
//! [`lint`]; each [`Finding`] names its place in the request in the contract's path notation
//! (`tools[3].function.parameters.properties.x`), its rule, what is wrong and the fix.
//!
//! Knowledge is data (`table`): the rules' wording in `rules.toml` beside this file, and which
//! providers and models a rule applies to, with the source of each fact, in the provider
//! catalog's `[[lint.check]]` rows. Rules without rows (pairing, JSON Schema validity) hold for
//! every provider. A rule flags only what its source says a provider refuses: a valid request
//! must come out clean, because a false finding sends the user after a problem they do not have.
//!
//! Pure: no I/O, no clock, never panics, bounded work (schemas are walked to a fixed depth).
//! It reads the OpenAI Chat Completions shape, and the Anthropic Messages shape when the target
//! speaks that wire ([`Wire`]); it knows nothing of HTTP, verdicts or the gateway.

mod messages;
mod params;
mod path;
mod table;
mod tools;

use serde::Serialize;
use serde_json::{Map, Value};

pub use path::JsonPath;
pub use table::TableError;
use table::{Scope, Slots, TABLE};

/// The key of the provider catalog's section that holds the lint's rows (`[[lint.check]]`);
/// the provider loader skips it.
pub const CATALOG_SECTION: &str = "lint";

/// The rules, by their contract names (the `rule` of a finding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    RequestNotObject,
    ModelMissing,
    MessagesMissing,
    ContextWindowExceeded,
    MaxTokensAboveLimit,
    ParameterValue,
    FieldRejected,
    FieldRequired,
    MessageInvalid,
    MessageRoleUnknown,
    MessageContentMissing,
    ToolCallUnanswered,
    ToolResultOrphan,
    ToolCallIdMissing,
    ToolCallArgumentsNotString,
    ToolDefinitionInvalid,
    ToolNameDuplicate,
    ToolNamePattern,
    ToolsTooMany,
    ToolDescriptionTooLong,
    ToolParametersNotObject,
    SchemaInvalid,
    SchemaRequiredUnknown,
    SchemaArrayItemsMissing,
    SchemaNodeNotObject,
    SchemaTupleItems,
    ProviderRejectsPart,
}

impl Rule {
    /// Every rule with its name and whether it needs catalog rows to apply (data-driven) — the
    /// others hold for every provider.
    const TABLE: [(Rule, &'static str, bool); 27] = [
        (Rule::RequestNotObject, "request_not_object", false),
        (Rule::ModelMissing, "model_missing", false),
        (Rule::MessagesMissing, "messages_missing", false),
        (Rule::ContextWindowExceeded, "context_window_exceeded", true),
        (Rule::MaxTokensAboveLimit, "max_tokens_above_limit", true),
        (Rule::ParameterValue, "parameter_value", true),
        (Rule::FieldRejected, "field_rejected", true),
        (Rule::FieldRequired, "field_required", true),
        (Rule::MessageInvalid, "message_invalid", false),
        (Rule::MessageRoleUnknown, "message_role_unknown", false),
        (
            Rule::MessageContentMissing,
            "message_content_missing",
            false,
        ),
        (Rule::ToolCallUnanswered, "tool_call_unanswered", false),
        (Rule::ToolResultOrphan, "tool_result_orphan", false),
        (Rule::ToolCallIdMissing, "tool_call_id_missing", false),
        (
            Rule::ToolCallArgumentsNotString,
            "tool_call_arguments_not_string",
            false,
        ),
        (
            Rule::ToolDefinitionInvalid,
            "tool_definition_invalid",
            false,
        ),
        (Rule::ToolNameDuplicate, "tool_name_duplicate", false),
        (Rule::ToolNamePattern, "tool_name_pattern", true),
        (Rule::ToolsTooMany, "tools_too_many", true),
        (
            Rule::ToolDescriptionTooLong,
            "tool_description_too_long",
            true,
        ),
        (
            Rule::ToolParametersNotObject,
            "tool_parameters_not_object",
            false,
        ),
        (Rule::SchemaInvalid, "schema_invalid", false),
        (
            Rule::SchemaRequiredUnknown,
            "schema_required_unknown",
            false,
        ),
        (
            Rule::SchemaArrayItemsMissing,
            "schema_array_items_missing",
            true,
        ),
        (Rule::SchemaNodeNotObject, "schema_node_not_object", true),
        (Rule::SchemaTupleItems, "schema_tuple_items", true),
        (Rule::ProviderRejectsPart, "provider_rejects_part", false),
    ];

    /// Every rule, in documentation order.
    pub const ALL: [Rule; 27] = {
        let mut all = [Rule::RequestNotObject; 27];
        let mut i = 0;
        while i < Rule::TABLE.len() {
            all[i] = Rule::TABLE[i].0;
            i += 1;
        }
        all
    };

    pub fn as_str(self) -> &'static str {
        Rule::TABLE[self.index()].1
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(rule, _, _)| *rule)
    }

    /// Applies only where a catalog row says so.
    pub fn is_data_driven(self) -> bool {
        Rule::TABLE[self.index()].2
    }

    fn index(self) -> usize {
        // `TABLE` is in declaration order (checked by a test), so the discriminant indexes it.
        self as usize
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a request (a contract: `{"path","rule","message","fix"}` in
/// `isdown check --request --json` and the gateway's lint answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Where, e.g. `tools[3].function.parameters.properties.x` (see [`JsonPath`]).
    pub path: String,
    pub rule: Rule,
    /// What is wrong, one line.
    pub message: String,
    /// What to do, one line.
    pub fix: String,
}

impl Finding {
    /// A finding of `rule` at `path` with the table's wording filled in.
    pub fn new(
        rule: Rule,
        path: &JsonPath,
        value: Option<&str>,
        expected: Option<&str>,
        detail: Option<&str>,
    ) -> Finding {
        let (message, fix) = TABLE.render(
            rule,
            &Slots {
                value,
                expected,
                detail,
            },
        );
        Finding {
            path: path.to_string(),
            rule,
            message,
            fix,
        }
    }

    /// A finding whose only slot is the detail: what exactly is wrong at `path`.
    pub fn with_detail(rule: Rule, path: &JsonPath, detail: &str) -> Finding {
        Finding::new(rule, path, None, None, Some(detail))
    }
}

/// Findings as one line for error messages and logs: the first few, then a count.
pub fn summary(findings: &[Finding]) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = findings
        .iter()
        .take(SHOWN)
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect();
    if findings.len() > SHOWN {
        parts.push(format!("and {} more", findings.len() - SHOWN));
    }
    parts.join("; ")
}

/// The wire format the request is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    /// OpenAI Chat Completions (every provider's OpenAI-compatible endpoint).
    #[default]
    Chat,
    /// Anthropic Messages (`style = "anthropic"` providers).
    Messages,
}

/// What the lint knows about where a request goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// Provider id (catalog or config name); rows for other providers do not apply.
    pub provider: &'a str,
    /// The model the request is sent as, when it is not the request's own `model` (a gateway
    /// target with a fixed model).
    pub model: Option<&'a str>,
    /// A context window known from the config for one model (the provider's `context_window`
    /// belongs to its probe model), used when no catalog row covers the model.
    pub configured_window: Option<(&'a str, u64)>,
    pub wire: Wire,
}

/// The findings for a request body; a body that is not a JSON object is one finding.
pub fn lint(request: &Value, target: &Target<'_>) -> Vec<Finding> {
    match request {
        Value::Object(map) => lint_map(map, target),
        _ => vec![Finding::new(
            Rule::RequestNotObject,
            &JsonPath::root(),
            None,
            None,
            None,
        )],
    }
}

/// The findings for a request object, in request order: top-level fields, messages, tools.
pub fn lint_map(request: &Map<String, Value>, target: &Target<'_>) -> Vec<Finding> {
    let model = target
        .model
        .or_else(|| request.get("model").and_then(Value::as_str));
    let scope = Scope {
        provider: target.provider,
        model,
        request,
    };
    let mut out = Vec::new();
    if request.get("model").and_then(Value::as_str).is_none() && target.model.is_none() {
        out.push(Finding::new(
            Rule::ModelMissing,
            &JsonPath::root().key("model"),
            None,
            None,
            None,
        ));
    }
    params::check(request, &scope, target, &mut out);
    messages::check(request, &scope, target.wire, &mut out);
    tools::check(request, &scope, target.wire, &mut out);
    out
}

/// The context-window finding for a request the provider refused as too long, even when it is
/// within the estimate's margin (so not a finding of [`lint`]): it explains the refusal.
pub fn context_explanation(request: &Map<String, Value>, target: &Target<'_>) -> Option<Finding> {
    let model = target
        .model
        .or_else(|| request.get("model").and_then(Value::as_str));
    let scope = Scope {
        provider: target.provider,
        model,
        request,
    };
    params::context_finding(request, &scope, target, false)
}

/// A value as a finding shows it: JSON, at most ~80 characters.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 80 {
        return text;
    }
    let cut: String = text.chars().take(77).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests;

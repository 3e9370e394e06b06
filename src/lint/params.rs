//! Top-level parameters and fields: values outside a model's accepted range, fields a target
//! rejects or requires, `max_tokens` above the model's output limit, and a prompt that cannot
//! fit the context window. Every check here is driven by catalog rows (`table`).

use serde_json::{Map, Value};

use super::table::{Check, FieldPath, Scope, Spec, TABLE, lookup, same_value};
use super::{Finding, JsonPath, Rule, Target, shown};
use crate::estimate::{certain_tokens, estimate_request_tokens};

/// The output-size fields, newest name first (OpenAI renamed `max_tokens` for reasoning models).
const MAX_OUTPUT_FIELDS: [&str; 2] = ["max_completion_tokens", "max_tokens"];

pub(super) fn check(
    request: &Map<String, Value>,
    scope: &Scope<'_>,
    target: &Target<'_>,
    out: &mut Vec<Finding>,
) {
    for check in TABLE.applicable(Rule::ParameterValue, scope) {
        parameter_value(request, check, out);
    }
    for check in TABLE.applicable(Rule::FieldRejected, scope) {
        field(request, check, out);
    }
    for check in TABLE.applicable(Rule::FieldRequired, scope) {
        field(request, check, out);
    }
    if let Some(check) = TABLE.first(Rule::MaxTokensAboveLimit, scope)
        && let Spec::Limit(limit) = check.spec
        && let Some((name, asked)) = max_output(request)
        && asked > limit
    {
        let value = format!("{name}: {asked}");
        let expected = limit.to_string();
        out.push(Finding::new(
            Rule::MaxTokensAboveLimit,
            &JsonPath::root().key(name),
            Some(&value),
            Some(&expected),
            Some(&check.source),
        ));
    }
    out.extend(context_finding(request, scope, target, true));
}

fn parameter_value(request: &Map<String, Value>, check: &Check, out: &mut Vec<Finding>) {
    let Spec::Value {
        path,
        allowed,
        min,
        max,
    } = &check.spec
    else {
        return;
    };
    let Some(value) = lookup(request, path) else {
        return;
    };
    let in_list = allowed.is_empty() || allowed.iter().any(|a| same_value(a, value));
    let in_range = match value.as_f64() {
        Some(number) => min.is_none_or(|m| number >= m) && max.is_none_or(|m| number <= m),
        None => min.is_none() && max.is_none(),
    };
    if in_list && in_range {
        return;
    }
    let name = path.join(".");
    let mut expected: Vec<String> = Vec::new();
    if !allowed.is_empty() {
        let values: Vec<String> = allowed.iter().map(Value::to_string).collect();
        expected.push(format!("`{name}` = {}", values.join(" or ")));
    }
    match (min, max) {
        (Some(min), Some(max)) => expected.push(format!("`{name}` from {min} to {max}")),
        (Some(min), None) => expected.push(format!("`{name}` of at least {min}")),
        (None, Some(max)) => expected.push(format!("`{name}` of at most {max}")),
        (None, None) => {}
    }
    let shown_value = format!("`{name}: {}`", shown(value));
    out.push(Finding::new(
        Rule::ParameterValue,
        &JsonPath::dotted(&name),
        Some(&shown_value),
        Some(&expected.join(", ")),
        Some(&check.source),
    ));
}

fn field(request: &Map<String, Value>, check: &Check, out: &mut Vec<Finding>) {
    let Spec::Field { path, with } = &check.spec else {
        return;
    };
    match path {
        FieldPath::Top(parts) => {
            if check.rule == Rule::FieldRejected && lookup(request, parts).is_some() {
                let name = parts.join(".");
                out.push(Finding::new(
                    Rule::FieldRejected,
                    &JsonPath::dotted(&name),
                    Some(&name),
                    None,
                    Some(&check.source),
                ));
            }
        }
        FieldPath::Message { role, name } => {
            let Some(Value::Array(messages)) = request.get("messages") else {
                return;
            };
            for (i, message) in messages.iter().enumerate() {
                let Some(message) = message.as_object() else {
                    continue;
                };
                let role_matches = role
                    .as_deref()
                    .is_none_or(|r| message.get("role").and_then(Value::as_str) == Some(r));
                let carries = with.as_deref().is_none_or(|w| {
                    message
                        .get(w)
                        .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
                });
                if !role_matches || !carries {
                    continue;
                }
                let present = message.get(name).is_some_and(|v| !v.is_null());
                let flagged = match check.rule {
                    Rule::FieldRejected => present,
                    _ => !present,
                };
                if flagged {
                    let detail = match with {
                        Some(w) if check.rule == Rule::FieldRequired => {
                            format!("this message carries `{w}`; {}", check.source)
                        }
                        _ => check.source.clone(),
                    };
                    out.push(Finding::new(
                        check.rule,
                        &JsonPath::root().key("messages").index(i).key(name),
                        Some(name),
                        None,
                        Some(&detail),
                    ));
                }
            }
        }
    }
}

/// The requested output size and the field that asked for it.
fn max_output(request: &Map<String, Value>) -> Option<(&'static str, u64)> {
    MAX_OUTPUT_FIELDS.iter().find_map(|name| {
        request
            .get(*name)
            .and_then(Value::as_u64)
            .map(|n| (*name, n))
    })
}

/// The model's window: a catalog row, else the window the config gives for this model.
fn window(scope: &Scope<'_>, target: &Target<'_>) -> Option<(u64, String)> {
    if let Some(check) = TABLE.first(Rule::ContextWindowExceeded, scope)
        && let Spec::Limit(limit) = check.spec
    {
        return Some((limit, check.source.clone()));
    }
    let (model, window) = target.configured_window?;
    (scope.model == Some(model)).then(|| {
        (
            window,
            format!("the context_window of {model} in the config"),
        )
    })
}

/// `certain`: only when the request is over even if the estimate errs high (a finding of the
/// lint); otherwise whenever the estimate itself is over (explaining a provider's refusal).
pub(super) fn context_finding(
    request: &Map<String, Value>,
    scope: &Scope<'_>,
    target: &Target<'_>,
    certain: bool,
) -> Option<Finding> {
    let (window, source) = window(scope, target)?;
    let estimate = estimate_request_tokens(request);
    let prompt = if certain {
        certain_tokens(estimate)
    } else {
        estimate
    };
    let (output_field, output) = max_output(request).unwrap_or(("max_tokens", 0));
    if prompt.saturating_add(output) <= window {
        return None;
    }
    let model = scope.model.unwrap_or("the model");
    let over_by_prompt = prompt > window;
    let detail = format!(
        "the prompt is about {estimate} tokens (at least {}), plus {output_field} {output}, against {window} for {model}",
        certain_tokens(estimate)
    );
    let expected = if over_by_prompt {
        format!("{model} holds {window} tokens; source: {source}")
    } else {
        format!(
            "{output_field} at most about {} leaves room for this prompt; source: {source}",
            window.saturating_sub(prompt)
        )
    };
    // When the prompt alone fits, the output request is what to change.
    let path = if over_by_prompt || output == 0 {
        JsonPath::root().key("messages")
    } else {
        JsonPath::root().key(output_field)
    };
    Some(Finding::new(
        Rule::ContextWindowExceeded,
        &path,
        None,
        Some(&expected),
        Some(&detail),
    ))
}

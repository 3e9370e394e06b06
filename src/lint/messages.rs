//! Messages: roles, content, and the pairing of tool calls with their results — every call of
//! an assistant message answered right after it, no result without its call. Providers refuse
//! both with a 400 (OpenAI "An assistant message with 'tool_calls' must be followed by tool
//! messages responding to each 'tool_call_id'", "messages with role 'tool' must be a response to
//! a preceding message with 'tool_calls'"; Anthropic "tool_use ids were found without
//! tool_result blocks immediately after"), so these rules need no catalog row.

use serde_json::{Map, Value};

use super::table::Scope;
use super::tools::check_name;
use super::{Finding, JsonPath, Rule, Wire, shown};

const CHAT_ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];
const MESSAGES_ROLES: [&str; 2] = ["user", "assistant"];

/// A tool call waiting for its result.
struct Pending {
    id: String,
    path: JsonPath,
}

pub(super) fn check(
    request: &Map<String, Value>,
    scope: &Scope<'_>,
    wire: Wire,
    out: &mut Vec<Finding>,
) {
    let path = JsonPath::root().key("messages");
    let messages = match request.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        other => {
            let detail = match other {
                None | Some(Value::Null) => "`messages` is missing",
                Some(Value::Array(_)) => "`messages` is empty",
                Some(_) => "`messages` is not an array",
            };
            out.push(Finding::with_detail(Rule::MessagesMissing, &path, detail));
            return;
        }
    };
    let mut turn = Turn {
        pending: Vec::new(),
        open: false,
        out,
    };
    for (i, message) in messages.iter().enumerate() {
        let here = path.index(i);
        let Some(message) = message.as_object() else {
            let value = shown(message);
            turn.out.push(Finding::new(
                Rule::MessageInvalid,
                &here,
                Some(&value),
                None,
                None,
            ));
            continue;
        };
        let role = message.get("role").and_then(Value::as_str);
        let roles: &[&str] = match wire {
            Wire::Chat => &CHAT_ROLES,
            Wire::Messages => &MESSAGES_ROLES,
        };
        if role.is_none_or(|r| !roles.contains(&r)) {
            let value = message
                .get("role")
                .map_or_else(|| "(none)".to_owned(), shown);
            turn.out.push(Finding::new(
                Rule::MessageRoleUnknown,
                &here.key("role"),
                Some(&value),
                Some(&roles.join(", ")),
                None,
            ));
        }
        match wire {
            Wire::Chat => turn.chat_message(i, &here, role, message, scope),
            Wire::Messages => turn.messages_message(i, &here, role, message, scope),
        }
    }
    turn.close("the request ends after it");
}

/// Tool calls of the latest assistant turn that still wait for results.
struct Turn<'o> {
    pending: Vec<Pending>,
    /// Results may still come (the messages right after an assistant's calls).
    open: bool,
    out: &'o mut Vec<Finding>,
}

impl Turn<'_> {
    /// Every call still pending is unanswered.
    fn close(&mut self, why: &str) {
        for call in self.pending.drain(..) {
            let value = format!("`{}`", call.id);
            self.out.push(Finding::new(
                Rule::ToolCallUnanswered,
                &call.path,
                Some(&value),
                None,
                Some(why),
            ));
        }
        self.open = false;
    }

    /// A call found at `path`: pending until a result answers it, a finding (`why`) when it
    /// has no id.
    fn call(&mut self, id: Option<&Value>, path: JsonPath, why: &str) {
        if let Some(id) = required_id(id, &path.key("id"), why, self.out) {
            self.pending.push(Pending {
                id: id.to_owned(),
                path,
            });
        }
    }

    /// A result for `id`, found at `path`.
    fn answer(&mut self, id: &str, path: &JsonPath) {
        if let Some(at) = self.pending.iter().position(|p| p.id == id) {
            self.pending.remove(at);
            return;
        }
        let detail = if self.open {
            "its id is not one of the calls it follows".to_owned()
        } else {
            "no assistant message with tool calls comes right before it".to_owned()
        };
        let value = format!("`{id}`");
        self.out.push(Finding::new(
            Rule::ToolResultOrphan,
            path,
            Some(&value),
            None,
            Some(&detail),
        ));
    }

    fn chat_message(
        &mut self,
        i: usize,
        here: &JsonPath,
        role: Option<&str>,
        message: &Map<String, Value>,
        scope: &Scope<'_>,
    ) {
        if role == Some("tool") {
            content_required(here, message, "a tool result needs its output", self.out);
            let at = here.key("tool_call_id");
            let why = "the tool message has no `tool_call_id`";
            if let Some(id) = required_id(message.get("tool_call_id"), &at, why, self.out) {
                self.answer(id, &at);
            }
            return;
        }
        let why = format!("messages[{i}] comes next");
        self.close(&why);
        let calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty());
        match role {
            Some("assistant") => {
                let no_content = message.get("content").is_none_or(Value::is_null);
                if no_content && calls.is_none() && message.get("function_call").is_none() {
                    self.out.push(Finding::with_detail(
                        Rule::MessageContentMissing,
                        &here.key("content"),
                        "an assistant message needs content or tool calls",
                    ));
                }
            }
            Some("user" | "system" | "developer") => {
                content_required(here, message, "this role needs content", self.out);
            }
            _ => {}
        }
        let Some(calls) = calls else {
            return;
        };
        if role != Some("assistant") {
            return;
        }
        let calls_path = here.key("tool_calls");
        for (j, call) in calls.iter().enumerate() {
            let call_path = calls_path.index(j);
            let function = call.get("function");
            if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                check_name(
                    name,
                    &call_path.key("function").key("name"),
                    scope,
                    self.out,
                );
            }
            if let Some(arguments) = function.and_then(|f| f.get("arguments"))
                && !arguments.is_string()
            {
                let value = shown(arguments);
                self.out.push(Finding::new(
                    Rule::ToolCallArgumentsNotString,
                    &call_path.key("function").key("arguments"),
                    Some(&value),
                    None,
                    None,
                ));
            }
            self.call(
                call.get("id"),
                call_path,
                "the replayed tool call has no `id`",
            );
        }
        self.open = true;
    }

    fn messages_message(
        &mut self,
        i: usize,
        here: &JsonPath,
        role: Option<&str>,
        message: &Map<String, Value>,
        scope: &Scope<'_>,
    ) {
        content_required(here, message, "every message needs content", self.out);
        let blocks = message
            .get("content")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let content = here.key("content");
        // Results answer the calls of the message right before; then that turn is over.
        for (j, block) in blocks.iter().enumerate() {
            if block.get("type").and_then(Value::as_str) != Some("tool_result") {
                continue;
            }
            let at = content.index(j).key("tool_use_id");
            let why = "the tool_result block has no `tool_use_id`";
            if let Some(id) = required_id(block.get("tool_use_id"), &at, why, self.out) {
                self.answer(id, &at);
            }
        }
        let why = format!("messages[{i}] comes next without its result");
        self.close(&why);
        if role != Some("assistant") {
            return;
        }
        for (j, block) in blocks.iter().enumerate() {
            if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                continue;
            }
            let block_path = content.index(j);
            if let Some(name) = block.get("name").and_then(Value::as_str) {
                check_name(name, &block_path.key("name"), scope, self.out);
            }
            self.call(
                block.get("id"),
                block_path,
                "the tool_use block has no `id`",
            );
        }
        self.open = !self.pending.is_empty();
    }
}

/// The non-empty id a call or result carries; without one, a finding at `path` saying `why`.
fn required_id<'v>(
    id: Option<&'v Value>,
    path: &JsonPath,
    why: &str,
    out: &mut Vec<Finding>,
) -> Option<&'v str> {
    let id = id.and_then(Value::as_str).filter(|id| !id.is_empty());
    if id.is_none() {
        out.push(Finding::with_detail(Rule::ToolCallIdMissing, path, why));
    }
    id
}

fn content_required(
    here: &JsonPath,
    message: &Map<String, Value>,
    why: &str,
    out: &mut Vec<Finding>,
) {
    if message.get("content").is_none_or(Value::is_null) {
        out.push(Finding::with_detail(
            Rule::MessageContentMissing,
            &here.key("content"),
            why,
        ));
    }
}

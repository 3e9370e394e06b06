//! Provider-specific request fixes, as data: `fixes.toml` (embedded) lists fields that a
//! provider rejects, and this module removes them from a request bound for that provider.
//!
//! The table is parsed once; [`FixTable::for_provider`] picks the rows that apply to one provider
//! at start-up, so the request path only walks the (usually empty) list of its target's fixes and
//! copies the request only when a fix actually changes it. No I/O, no knowledge of providers
//! beyond the table.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

/// The embedded table.
pub const FIXES_TOML: &str = include_str!("fixes.toml");

#[derive(Debug, Error)]
pub enum FixError {
    #[error("fixes table: {0}")]
    Toml(#[from] toml::de::Error),
    #[error(
        "fixes table: field \"{0}\" is not `NAME`, `messages[].NAME` or `messages[role=R].NAME`"
    )]
    Field(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    remove: Vec<RawRemove>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemove {
    field: String,
    keep_for: Vec<String>,
    #[allow(dead_code)] // documentation in the data file; kept so the schema requires it
    why: String,
}

/// Where a removed field lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    TopLevel(String),
    /// In every message (of `role`, when given).
    Message {
        role: Option<String>,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub path: FieldPath,
    keep_for: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FixTable {
    /// Shared by every provider that no fix is kept for (most of them: one list, not one copy
    /// of ~460 bytes per provider).
    fixes: Arc<[Fix]>,
}

impl FixTable {
    pub fn embedded() -> Result<FixTable, FixError> {
        FixTable::parse(FIXES_TOML)
    }

    pub fn parse(text: &str) -> Result<FixTable, FixError> {
        let raw: RawTable = toml::from_str(text)?;
        let fixes = raw
            .remove
            .into_iter()
            .map(|r| {
                Ok(Fix {
                    path: parse_path(&r.field).ok_or(FixError::Field(r.field))?,
                    keep_for: r.keep_for,
                })
            })
            .collect::<Result<Vec<Fix>, FixError>>()?;
        Ok(FixTable {
            fixes: fixes.into(),
        })
    }

    /// The fixes to apply to requests bound for `provider`.
    pub fn for_provider(&self, provider: &str) -> Arc<[Fix]> {
        let kept = |f: &Fix| f.keep_for.iter().any(|k| k == provider);
        if !self.fixes.iter().any(kept) {
            return self.fixes.clone();
        }
        self.fixes.iter().filter(|f| !kept(f)).cloned().collect()
    }
}

fn parse_path(field: &str) -> Option<FieldPath> {
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if let Some(rest) = field.strip_prefix("messages[") {
        let (selector, name) = rest.split_once("].")?;
        let role = match selector {
            "" => None,
            s => Some(s.strip_prefix("role=").filter(|r| valid(r))?.to_owned()),
        };
        return valid(name).then(|| FieldPath::Message {
            role,
            name: name.to_owned(),
        });
    }
    valid(field).then(|| FieldPath::TopLevel(field.to_owned()))
}

impl Fix {
    /// True when applying the fix would change `request`.
    pub fn applies(&self, request: &Map<String, Value>) -> bool {
        match &self.path {
            FieldPath::TopLevel(name) => request.contains_key(name),
            FieldPath::Message { role, name } => messages(request)
                .iter()
                .any(|m| role_matches(m, role.as_deref()) && m.get(name).is_some()),
        }
    }

    /// Removes the field.
    pub fn apply(&self, request: &mut Map<String, Value>) {
        match &self.path {
            FieldPath::TopLevel(name) => {
                request.remove(name);
            }
            FieldPath::Message { role, name } => {
                if let Some(Value::Array(list)) = request.get_mut("messages") {
                    for message in list.iter_mut() {
                        if role_matches(message, role.as_deref())
                            && let Value::Object(map) = message
                        {
                            map.remove(name);
                        }
                    }
                }
            }
        }
    }
}

fn messages(request: &Map<String, Value>) -> &[Value] {
    match request.get("messages") {
        Some(Value::Array(list)) => list,
        _ => &[],
    }
}

fn role_matches(message: &Value, role: Option<&str>) -> bool {
    role.is_none_or(|r| message.get("role").and_then(Value::as_str) == Some(r))
}

/// Applies every fix that changes `request`; borrows it unchanged when none does.
pub fn fixed<'a>(
    fixes: &[Fix],
    request: &'a Map<String, Value>,
) -> std::borrow::Cow<'a, Map<String, Value>> {
    let mut out = std::borrow::Cow::Borrowed(request);
    for fix in fixes {
        if fix.applies(&out) {
            fix.apply(out.to_mut());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn replay() -> Map<String, Value> {
        map(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi", "reasoning_content": "user field stays"},
                {"role": "assistant", "content": "", "reasoning_content": "thinking...",
                 "tool_calls": [{"id": "c1", "type": "function",
                                 "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
        }))
    }

    /// One row per (provider, whether the embedded table strips Kimi's reasoning_content).
    #[test]
    fn embedded_table_strips_reasoning_content_only_where_it_is_rejected() {
        let table = FixTable::embedded().unwrap();
        let rows = [
            ("kimi", false),
            ("kimi-cn", false),
            ("glm", false),
            ("zai", false),
            ("deepseek", false),
            ("openai", true),
            ("anthropic", true),
            ("openrouter", true),
            ("qwen", true),
            ("my-vllm", true),
        ];
        let request = replay();
        for (provider, stripped) in rows {
            let out = fixed(&table.for_provider(provider), &request);
            let assistant = &out["messages"][1];
            assert_eq!(
                assistant.get("reasoning_content").is_none(),
                stripped,
                "{provider}"
            );
            // Only the assistant's field is touched; tool calls survive.
            assert_eq!(out["messages"][0]["reasoning_content"], "user field stays");
            assert_eq!(assistant["tool_calls"][0]["id"], "c1");
        }
    }

    /// Providers no fix is kept for share one list; the others get their own, filtered.
    #[test]
    fn providers_no_fix_is_kept_for_share_one_list() {
        let table = FixTable::embedded().unwrap();
        assert!(Arc::ptr_eq(
            &table.for_provider("openai"),
            &table.for_provider("my-vllm")
        ));
        let kimi = table.for_provider("kimi");
        assert!(!Arc::ptr_eq(&kimi, &table.for_provider("openai")));
        assert!(kimi.len() < table.for_provider("openai").len());
    }

    #[test]
    fn a_request_the_fixes_do_not_touch_is_not_copied() {
        let table = FixTable::embedded().unwrap();
        let request = map(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let out = fixed(&table.for_provider("openai"), &request);
        assert!(matches!(out, std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn top_level_fields_and_bad_paths() {
        let table = FixTable::parse(
            "[[remove]]\nfield = \"stream_options\"\nkeep_for = [\"openai\"]\nwhy = \"t\"\n",
        )
        .unwrap();
        let request = map(json!({"model": "m", "stream_options": {"include_usage": true}}));
        assert!(
            fixed(&table.for_provider("x"), &request)
                .get("stream_options")
                .is_none()
        );
        assert!(
            fixed(&table.for_provider("openai"), &request)
                .get("stream_options")
                .is_some()
        );
        for bad in [
            "",
            "a.b",
            "messages[x].y",
            "messages[role=].y",
            "messages[].",
        ] {
            let text = format!("[[remove]]\nfield = \"{bad}\"\nkeep_for = []\nwhy = \"t\"\n");
            assert!(FixTable::parse(&text).is_err(), "{bad}");
        }
    }
}

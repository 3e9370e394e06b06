//! JSON paths in the notation findings use (a contract: README "Is it my request?"):
//! `tools[3].function.parameters.properties.x`, `messages[2].tool_calls[1]`, `temperature`.
//!
//! Object keys are joined with `.`; array positions are `[n]`. A key that would read ambiguously
//! in that notation (empty, or holding anything but letters, digits, `_`, `-` and `$`) is
//! written as a quoted index: `properties["a.b"]`. The whole request is `$`. Paths are built by
//! pushing segments while walking the request and rendered once per finding.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A position inside the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    pub fn root() -> JsonPath {
        JsonPath::default()
    }

    /// The path one key further down.
    pub fn key(&self, key: &str) -> JsonPath {
        let mut next = self.clone();
        next.segments.push(Segment::Key(key.to_owned()));
        next
    }

    /// The path one array position further down.
    pub fn index(&self, index: usize) -> JsonPath {
        let mut next = self.clone();
        next.segments.push(Segment::Index(index));
        next
    }

    /// A top-level path written with dots (`thinking.type`), as the rules table names fields.
    pub fn dotted(text: &str) -> JsonPath {
        let mut path = JsonPath::root();
        for part in text.split('.') {
            path = path.key(part);
        }
        path
    }
}

fn plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'))
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("$");
        }
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) if plain(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => {
                    let quoted = serde_json::Value::String(key.clone()).to_string();
                    write!(f, "[{quoted}]")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_the_contract() {
        let tools = JsonPath::root().key("tools").index(3);
        let rows = [
            (
                tools
                    .key("function")
                    .key("parameters")
                    .key("properties")
                    .key("x"),
                "tools[3].function.parameters.properties.x",
            ),
            (
                JsonPath::root()
                    .key("messages")
                    .index(2)
                    .key("tool_calls")
                    .index(1),
                "messages[2].tool_calls[1]",
            ),
            (JsonPath::root().key("temperature"), "temperature"),
            (JsonPath::root(), "$"),
            (
                JsonPath::root().key("properties").key("a.b"),
                "properties[\"a.b\"]",
            ),
            (
                JsonPath::root().key("properties").key(""),
                "properties[\"\"]",
            ),
            (JsonPath::dotted("thinking.type"), "thinking.type"),
        ];
        for (path, want) in rows {
            assert_eq!(path.to_string(), want);
        }
    }
}

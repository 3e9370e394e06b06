//! What `--request FILE` may hold, turned into request bodies: one JSON body, a JSONL file of an
//! agent's recorded requests (one body per line, or a line wrapping it as `{"body": …}` or
//! `{"request": …}`), or a request captured as a curl command line (`curl URL -H … -d '…'`).
//!
//! Pure parsing, no I/O: a curl `--data @file` names a file, which the caller reads through the
//! `read` function it passes in. Headers of a curl command are ignored (they hold the key, which
//! must never be shown); only the body counts.

use serde_json::Value;
use thiserror::Error;

/// One request read from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Where it came from, for reports: "the request", "line 3", "the curl command".
    pub origin: String,
    pub body: Value,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InputError {
    #[error("the request file is empty")]
    Empty,
    #[error("line {line} is not JSON: {problem}")]
    BadLine { line: usize, problem: String },
    #[error("the curl command cannot be split into words (an unclosed quote?)")]
    CurlQuoting,
    #[error("the curl command sends no body (no -d, --data, --data-raw, --data-binary or --json)")]
    CurlNoBody,
    #[error("the curl command's body is not JSON: {0}")]
    CurlBody(String),
    #[error("cannot read {file} named by the curl command: {problem}")]
    CurlFile { file: String, problem: String },
    #[error(
        "the request is neither a JSON body, a JSONL file of requests, nor a curl command: {0}"
    )]
    Unknown(String),
}

/// curl options whose next word is the body.
const DATA_OPTIONS: [&str; 5] = ["-d", "--data", "--data-raw", "--data-binary", "--json"];

/// Reads the input text; `read` fetches a file a curl command names with `@file`.
pub fn parse(
    text: &str,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<Recorded>, InputError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(InputError::Empty);
    }
    let command = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
    if command.starts_with("curl ") || command.starts_with("curl\t") {
        return curl(command, read).map(|body| {
            vec![Recorded {
                origin: "the curl command".into(),
                body,
            }]
        });
    }
    let whole = serde_json::from_str::<Value>(trimmed);
    match whole {
        Ok(body) => Ok(vec![Recorded {
            origin: "the request".into(),
            body,
        }]),
        Err(whole_error) if trimmed.lines().filter(|l| !l.trim().is_empty()).count() > 1 => {
            jsonl(trimmed).map_err(|e| match e {
                // A first line that is not JSON either: the file is not JSONL at all.
                InputError::BadLine { line: 1, .. } => InputError::Unknown(whole_error.to_string()),
                other => other,
            })
        }
        Err(e) => Err(InputError::Unknown(e.to_string())),
    }
}

fn jsonl(text: &str) -> Result<Vec<Recorded>, InputError> {
    let mut requests = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| InputError::BadLine {
            line: n + 1,
            problem: e.to_string(),
        })?;
        requests.push(Recorded {
            origin: format!("line {}", n + 1),
            body: unwrapped(value),
        });
    }
    Ok(requests)
}

/// A recording that wraps the body (`{"body": {...}}`, `{"request": {...}}`) gives the body;
/// anything else is taken as the body itself.
fn unwrapped(value: Value) -> Value {
    let is_body = value.get("messages").is_some() || value.get("model").is_some();
    if !is_body && let Value::Object(mut map) = value {
        for key in ["body", "request"] {
            if let Some(inner @ Value::Object(_)) = map.remove(key) {
                return inner;
            }
        }
        return Value::Object(map);
    }
    value
}

fn curl(command: &str, read: &dyn Fn(&str) -> Result<String, String>) -> Result<Value, InputError> {
    // A command copied from a terminal or docs continues lines with `\`.
    let joined = command.replace("\\\r\n", " ").replace("\\\n", " ");
    let words = shlex::split(&joined).ok_or(InputError::CurlQuoting)?;
    let mut data = None;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if DATA_OPTIONS.contains(&word.as_str()) {
            data = words.next().cloned();
            continue;
        }
        // `--data=...` and `-d...` forms.
        if let Some(value) = DATA_OPTIONS
            .iter()
            .filter(|o| o.starts_with("--"))
            .find_map(|o| word.strip_prefix(&format!("{o}=")))
        {
            data = Some(value.to_owned());
        } else if let Some(value) = word.strip_prefix("-d").filter(|v| !v.is_empty()) {
            data = Some(value.to_owned());
        }
    }
    let data = data.ok_or(InputError::CurlNoBody)?;
    let text = match data.strip_prefix('@') {
        Some(file) => read(file).map_err(|problem| InputError::CurlFile {
            file: file.to_owned(),
            problem,
        })?,
        None => data,
    };
    serde_json::from_str(&text).map_err(|e| InputError::CurlBody(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_files(_: &str) -> Result<String, String> {
        Err("no files in this test".into())
    }

    #[test]
    fn a_json_body_is_one_request() {
        let got = parse(r#" {"model":"m","messages":[]} "#, &no_files).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, json!({"model": "m", "messages": []}));
    }

    #[test]
    fn jsonl_gives_one_request_per_line_and_unwraps_recordings() {
        let text = "{\"model\":\"a\",\"messages\":[]}\n\n{\"ts\":1,\"body\":{\"model\":\"b\",\"messages\":[]}}\n";
        let got = parse(text, &no_files).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].origin, "line 3");
        assert_eq!(got[1].body["model"], "b");
        let err = parse("{\"model\":\"a\"}\nnot json\n", &no_files).unwrap_err();
        assert!(
            matches!(err, InputError::BadLine { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn curl_commands_give_their_body_and_never_their_headers() {
        let command = "curl https://api.moonshot.ai/v1/chat/completions \\\n  -H \"Authorization: Bearer sk-secret\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{\"model\":\"kimi-k2.6\",\"messages\":[{\"role\":\"user\",\"content\":\"it'\"'\"'s\"}]}'";
        let got = parse(command, &no_files).unwrap();
        assert_eq!(got[0].body["model"], "kimi-k2.6");
        assert_eq!(got[0].body["messages"][0]["content"], "it's");
        assert!(!format!("{got:?}").contains("sk-secret"));
        for form in [
            "curl http://x --data-raw '{\"model\":\"m\"}'",
            "curl http://x --json '{\"model\":\"m\"}'",
            "$ curl http://x --data='{\"model\":\"m\"}'",
        ] {
            assert_eq!(
                parse(form, &no_files).unwrap()[0].body["model"],
                "m",
                "{form}"
            );
        }
        let from_file = |name: &str| {
            assert_eq!(name, "body.json");
            Ok("{\"model\":\"f\"}".to_owned())
        };
        assert_eq!(
            parse("curl http://x -d @body.json", &from_file).unwrap()[0].body["model"],
            "f"
        );
        assert_eq!(
            parse("curl http://x -H 'a: b'", &no_files).unwrap_err(),
            InputError::CurlNoBody
        );
        assert_eq!(
            parse("curl http://x -d '{oops", &no_files).unwrap_err(),
            InputError::CurlQuoting
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert_eq!(parse("  \n", &no_files).unwrap_err(), InputError::Empty);
        assert!(matches!(
            parse("hello there", &no_files).unwrap_err(),
            InputError::Unknown(_)
        ));
        assert!(matches!(
            parse("hello\nthere", &no_files).unwrap_err(),
            InputError::Unknown(_)
        ));
    }
}

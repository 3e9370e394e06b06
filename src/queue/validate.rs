//! Validation of a batch's input file, line by line, as OpenAI validates it: each request line
//! must be a JSON object with a unique `custom_id`, `method` `POST`, the batch's endpoint as its
//! `url` and a `body` whose `model` a route serves; a file may hold at most 50,000 requests.
//! Every problem becomes an entry of the batch's `errors.data[]` naming its 1-based line.
//!
//! Pure: lines in, valid lines or errors out; which models are served is asked through a
//! closure (the gateway's routes). It holds a 128-bit digest per `custom_id` seen, never the
//! lines themselves, so a 50,000-line file is checked in a few MiB.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::settings::MAX_BATCH_LINES;
use crate::store::queue::{FileLine, NewLine};

/// Errors reported per batch at most: enough to fix a file in one go, and a bound on what a
/// broken 50,000-line file costs.
pub const MAX_ERRORS: usize = 100;

/// Characters of an unserved model's name that its error quotes: more than real names have, and
/// a bound on the error, which is stored with the batch (a line may be 16 MiB, all of it a name).
const MODEL_CHARS: usize = 80;

/// One entry of a failed batch's `errors.data[]` (OpenAI's `BatchError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchError {
    pub code: &'static str,
    pub message: String,
    pub param: Option<&'static str>,
    pub line: Option<u32>,
}

/// Why a line is refused: (code, param, message). The codes are OpenAI's where it documents
/// one; the README lists them all.
fn problem(code: &'static str, param: Option<&'static str>, message: String) -> Problem {
    Problem {
        code,
        param,
        message,
    }
}

struct Problem {
    code: &'static str,
    param: Option<&'static str>,
    message: String,
}

/// Checks the lines of one input file, in order.
pub struct Validator<'a> {
    endpoint: &'a str,
    serves: &'a (dyn Fn(&str) -> bool + Sync),
    served: HashMap<String, bool>,
    seen: HashSet<[u8; 16]>,
    requests: u32,
    errors: Vec<BatchError>,
}

impl<'a> Validator<'a> {
    /// `serves(model)`: a route of the gateway takes requests for `model`.
    pub fn new(endpoint: &'a str, serves: &'a (dyn Fn(&str) -> bool + Sync)) -> Validator<'a> {
        Validator {
            endpoint,
            serves,
            served: HashMap::new(),
            seen: HashSet::new(),
            requests: 0,
            errors: Vec::new(),
        }
    }

    /// False once checking more lines cannot change the outcome (the error list is full, or the
    /// file has more requests than a batch may hold).
    pub fn wants_more(&self) -> bool {
        self.errors.len() < MAX_ERRORS && self.requests <= MAX_BATCH_LINES
    }

    /// The line as a request of the batch, or `None` (its error is recorded).
    pub fn check(&mut self, line: &FileLine) -> Option<NewLine> {
        self.requests += 1;
        if self.requests > MAX_BATCH_LINES {
            self.errors.push(BatchError {
                code: "max_requests_exceeded",
                message: format!(
                    "the input file has more than {MAX_BATCH_LINES} requests, the most a batch \
                     may hold; split it into several batches"
                ),
                param: None,
                line: Some(line.line),
            });
            return None;
        }
        match self.request(&line.content) {
            Ok(request) => Some(NewLine {
                line: line.line,
                custom_id: request.0,
                model: request.1,
            }),
            Err(p) => {
                self.errors.push(BatchError {
                    code: p.code,
                    message: p.message,
                    param: p.param,
                    line: Some(line.line),
                });
                None
            }
        }
    }

    /// The outcome once every line was checked: `Err` with every error (an empty file is one).
    pub fn finish(mut self) -> Result<u32, Vec<BatchError>> {
        if self.requests == 0 {
            self.errors.push(BatchError {
                code: "empty_file",
                message: "the input file has no requests".into(),
                param: None,
                line: None,
            });
        }
        if self.errors.is_empty() {
            Ok(self.requests)
        } else {
            Err(self.errors)
        }
    }

    /// (custom_id, model) of a valid request line.
    fn request(&mut self, content: &[u8]) -> Result<(String, String), Problem> {
        let not_json = || {
            problem(
                "invalid_json_line",
                None,
                "This line is not parseable as valid JSON.".into(),
            )
        };
        let text = std::str::from_utf8(content).map_err(|_| not_json())?;
        let Ok(Value::Object(request)) = serde_json::from_str::<Value>(text) else {
            return Err(not_json());
        };
        let custom_id = match request.get("custom_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(_) => {
                return Err(problem(
                    "invalid_custom_id",
                    Some("custom_id"),
                    "`custom_id` must be a non-empty string.".into(),
                ));
            }
            None => {
                return Err(problem(
                    "missing_required_parameter",
                    Some("custom_id"),
                    "Missing required parameter: 'custom_id'.".into(),
                ));
            }
        };
        match request.get("method") {
            Some(Value::String(method)) if method == "POST" => {}
            _ => {
                return Err(problem(
                    "invalid_method",
                    Some("method"),
                    "The method of this request must be POST.".into(),
                ));
            }
        }
        match request.get("url") {
            Some(Value::String(url)) if url == self.endpoint => {}
            _ => {
                return Err(problem(
                    "invalid_url",
                    Some("url"),
                    format!(
                        "The URL provided for this request does not match the batch endpoint \
                         ({}).",
                        self.endpoint
                    ),
                ));
            }
        }
        let Some(Value::Object(body)) = request.get("body") else {
            return Err(problem(
                "missing_required_parameter",
                Some("body"),
                "Missing required parameter: 'body' (a JSON object).".into(),
            ));
        };
        let Some(Value::String(model)) = body.get("model") else {
            return Err(problem(
                "missing_required_parameter",
                Some("body.model"),
                "Missing required parameter: 'body.model'.".into(),
            ));
        };
        if !self.is_served(model) {
            return Err(problem(
                "model_not_found",
                Some("body.model"),
                format!(
                    "The provided model '{}' is not served by any route of this gateway \
                     (GET /v1/models lists them).",
                    crate::quote::scrubbed_excerpt(model, MODEL_CHARS)
                ),
            ));
        }
        if !self.seen.insert(digest(&custom_id)) {
            return Err(problem(
                "duplicate_custom_id",
                Some("custom_id"),
                "The custom_id for this request is a duplicate of another request. The \
                 custom_id parameter must be unique for each request in a batch."
                    .into(),
            ));
        }
        Ok((custom_id, model.clone()))
    }

    fn is_served(&mut self, model: &str) -> bool {
        if let Some(known) = self.served.get(model) {
            return *known;
        }
        let served = (self.serves)(model);
        self.served.insert(model.to_owned(), served);
        served
    }
}

fn digest(custom_id: &str) -> [u8; 16] {
    let full = Sha256::digest(custom_id.as_bytes());
    let mut short = [0u8; 16];
    short.copy_from_slice(&full[..16]);
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "/v1/chat/completions";

    fn line(n: u32, text: &str) -> FileLine {
        FileLine {
            line: n,
            content: text.as_bytes().to_vec(),
        }
    }

    fn request(id: &str, model: &str) -> String {
        format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"{model}","messages":[]}}}}"#
        )
    }

    fn validate(lines: &[FileLine]) -> Result<Vec<NewLine>, Vec<BatchError>> {
        let serves = |model: &str| model == "kimi-k2";
        let mut v = Validator::new(ENDPOINT, &serves);
        let valid: Vec<NewLine> = lines.iter().filter_map(|l| v.check(l)).collect();
        v.finish().map(|_| valid)
    }

    /// One row per documented bad input: the line's text, the code and param reported.
    #[test]
    fn each_bad_line_is_named_with_its_code() {
        let rows: [(&str, &str, Option<&str>); 10] = [
            ("{not json", "invalid_json_line", None),
            ("[1, 2]", "invalid_json_line", None),
            (
                r#"{"method":"POST","url":"/v1/chat/completions","body":{"model":"kimi-k2"}}"#,
                "missing_required_parameter",
                Some("custom_id"),
            ),
            (
                r#"{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"kimi-k2"}}"#,
                "invalid_custom_id",
                Some("custom_id"),
            ),
            (
                r#"{"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{"model":"kimi-k2"}}"#,
                "invalid_method",
                Some("method"),
            ),
            (
                r#"{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"kimi-k2"}}"#,
                "invalid_url",
                Some("url"),
            ),
            (
                r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions"}"#,
                "missing_required_parameter",
                Some("body"),
            ),
            (
                r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}"#,
                "missing_required_parameter",
                Some("body.model"),
            ),
            (
                &request("a", "no-such-model"),
                "model_not_found",
                Some("body.model"),
            ),
            ("\u{fffd}", "invalid_json_line", None),
        ];
        for (text, code, param) in rows {
            let errors =
                validate(&[line(1, &request("ok", "kimi-k2")), line(3, text)]).unwrap_err();
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert_eq!((errors[0].code, errors[0].param), (code, param), "{text}");
            assert_eq!(errors[0].line, Some(3), "{text}");
        }
        let not_utf8 = FileLine {
            line: 2,
            content: vec![b'{', 0xff, b'}'],
        };
        assert_eq!(
            validate(&[not_utf8]).unwrap_err()[0].code,
            "invalid_json_line"
        );
    }

    /// Found by the `batch_jsonl` fuzz target: the name was quoted whole, so a line could make
    /// an error as long as itself, and a batch's stored errors up to 100 such lines.
    #[test]
    fn an_unserved_model_is_quoted_in_a_short_excerpt_whatever_its_length() {
        let long = format!("kimi-{}", "k".repeat(100_000));
        let errors = validate(&[line(1, &request("a", &long))]).unwrap_err();
        assert_eq!(errors[0].code, "model_not_found");
        let message = &errors[0].message;
        assert!(message.len() < 400, "a message of {} bytes", message.len());
        assert!(
            message.contains(&format!("'kimi-{}…'", "k".repeat(75))),
            "{message}"
        );

        let errors = validate(&[line(1, &request("a", "kimi-k3\\nsoon"))]).unwrap_err();
        assert!(
            errors[0].message.contains("'kimi-k3\u{FFFD}soon'"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_duplicate_custom_id_is_named_at_its_second_line() {
        let errors = validate(&[
            line(1, &request("a", "kimi-k2")),
            line(2, &request("b", "kimi-k2")),
            line(3, &request("a", "kimi-k2")),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            (errors[0].code, errors[0].line),
            ("duplicate_custom_id", Some(3))
        );
    }

    #[test]
    fn an_empty_file_and_one_request_too_many_fail() {
        let errors = validate(&[]).unwrap_err();
        assert_eq!((errors[0].code, errors[0].line), ("empty_file", None));

        let serves = |_: &str| true;
        let mut v = Validator::new(ENDPOINT, &serves);
        for n in 1..=MAX_BATCH_LINES {
            assert!(v.check(&line(n, &request(&n.to_string(), "m"))).is_some());
        }
        assert!(v.wants_more());
        assert!(
            v.check(&line(MAX_BATCH_LINES + 1, &request("last", "m")))
                .is_none()
        );
        assert!(!v.wants_more());
        let errors = v.finish().unwrap_err();
        assert_eq!(errors[0].code, "max_requests_exceeded");
        assert_eq!(errors[0].line, Some(MAX_BATCH_LINES + 1));
    }

    #[test]
    fn valid_lines_carry_their_custom_id_model_and_number() {
        let valid = validate(&[line(4, &request("x", "kimi-k2"))]).unwrap();
        assert_eq!(
            valid,
            vec![NewLine {
                line: 4,
                custom_id: "x".into(),
                model: "kimi-k2".into()
            }]
        );
    }

    #[test]
    fn errors_stop_at_the_cap() {
        let serves = |_: &str| true;
        let mut v = Validator::new(ENDPOINT, &serves);
        let mut n = 0;
        while v.wants_more() {
            n += 1;
            v.check(&line(n, "nope"));
        }
        assert_eq!(n as usize, MAX_ERRORS);
        assert_eq!(v.finish().unwrap_err().len(), MAX_ERRORS);
    }
}

//! Narrowing a failing request down to the part that makes the provider fail it.
//!
//! When the provider refuses a request and the lint finds nothing to explain why, isdown sends
//! smaller versions of it: first without tools (then halves of the tool list, then halves of the
//! one tool's properties), then with a shorter history (cut at user turns, so tool calls and
//! their results stay paired), then without one optional parameter at a time. Each step keeps the
//! parts that are known to be innocent, and bisection keeps the number of requests near
//! log2 of the parts. Every request counts against the caller's budget, and the search stops —
//! saying how far it got — when the budget is spent or an answer says nothing about the request
//! (an outage, a rate limit).
//!
//! The algorithm does no I/O: the caller passes `try_request`, which sends a candidate and says
//! whether it passed, failed as the original did, or was inconclusive.

use serde_json::{Map, Value};

use crate::lint::JsonPath;

/// What a candidate request's answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered correctly: what was removed holds the trigger.
    Passes,
    /// Failed again: the trigger is in what is left.
    Fails,
    /// Says nothing about the request (an outage, a rate limit, a timeout): stop.
    Inconclusive,
}

/// The part named as the trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub path: JsonPath,
    /// In words: "the tool `search` (tools[3])".
    pub what: String,
}

/// How the search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reduced {
    pub part: Option<Part>,
    /// Requests sent.
    pub requests: usize,
    /// One line per request: what was sent and what it did.
    pub steps: Vec<String>,
    /// The budget ran out before a single part was named.
    pub out_of_budget: bool,
    /// An answer said nothing about the request, so the search stopped.
    pub inconclusive: bool,
}

/// Top-level fields the search never drops: without them there is no request to compare.
const KEPT: [&str; 7] = [
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "stream",
    "stream_options",
];

/// Sends candidates through `try_request`, at most `budget` of them.
pub async fn reduce(
    original: &Map<String, Value>,
    budget: usize,
    mut try_request: impl AsyncFnMut(&Map<String, Value>) -> Outcome,
) -> Reduced {
    let mut search = Search {
        budget,
        reduced: Reduced {
            part: None,
            requests: 0,
            steps: Vec::new(),
            out_of_budget: false,
            inconclusive: false,
        },
    };
    let stages: [Stage; 3] = [Stage::Tools, Stage::History, Stage::Parameters];
    for stage in stages {
        let found = match stage {
            Stage::Tools => tools(original, &mut search, &mut try_request).await,
            Stage::History => history(original, &mut search, &mut try_request).await,
            Stage::Parameters => parameters(original, &mut search, &mut try_request).await,
        };
        match found {
            Step::Found(part) => {
                search.reduced.part = Some(part);
                break;
            }
            Step::Stop => break,
            Step::NotHere => {}
        }
    }
    search.reduced
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Tools,
    History,
    Parameters,
}

/// What a stage concluded.
enum Step {
    Found(Part),
    /// The trigger is not in this stage's part of the request.
    NotHere,
    /// Budget spent or an inconclusive answer.
    Stop,
}

struct Search {
    budget: usize,
    reduced: Reduced,
}

impl Search {
    /// Sends one candidate; `None` when the budget is spent or the answer was inconclusive.
    async fn attempt(
        &mut self,
        candidate: &Map<String, Value>,
        what: String,
        try_request: &mut impl AsyncFnMut(&Map<String, Value>) -> Outcome,
    ) -> Option<Outcome> {
        if self.reduced.requests >= self.budget {
            self.reduced.out_of_budget = true;
            return None;
        }
        self.reduced.requests += 1;
        let outcome = try_request(candidate).await;
        let said = match outcome {
            Outcome::Passes => "passes",
            Outcome::Fails => "fails",
            Outcome::Inconclusive => "inconclusive (stopped)",
        };
        self.reduced.steps.push(format!("{what}: {said}"));
        if outcome == Outcome::Inconclusive {
            self.reduced.inconclusive = true;
            return None;
        }
        Some(outcome)
    }
}

fn tool_name(tool: &Value) -> Option<&str> {
    tool.pointer("/function/name")
        .or_else(|| tool.get("name"))
        .and_then(Value::as_str)
}

/// The request with only the tools at `keep` (in their original order).
fn with_tools(
    original: &Map<String, Value>,
    tools: &[Value],
    keep: &[usize],
) -> Map<String, Value> {
    let mut candidate = original.clone();
    if keep.is_empty() {
        for key in ["tools", "tool_choice", "parallel_tool_calls"] {
            candidate.remove(key);
        }
    } else {
        let mut kept: Vec<usize> = keep.to_vec();
        kept.sort_unstable();
        candidate.insert(
            "tools".into(),
            Value::Array(kept.iter().map(|&i| tools[i].clone()).collect()),
        );
        // A forced choice of a dropped tool would fail for its own reason.
        candidate.remove("tool_choice");
    }
    candidate
}

async fn tools(
    original: &Map<String, Value>,
    search: &mut Search,
    try_request: &mut impl AsyncFnMut(&Map<String, Value>) -> Outcome,
) -> Step {
    let Some(Value::Array(tools)) = original.get("tools") else {
        return Step::NotHere;
    };
    if tools.is_empty() {
        return Step::NotHere;
    }
    // Tools the history calls stay: dropping them would make the history itself invalid.
    let called: Vec<String> = called_tools(original);
    let (always, suspects): (Vec<usize>, Vec<usize>) = (0..tools.len())
        .partition(|&i| tool_name(&tools[i]).is_some_and(|n| called.iter().any(|c| c == n)));
    if suspects.is_empty() {
        return Step::NotHere;
    }
    let what = if always.is_empty() {
        format!("without the {} tools", suspects.len())
    } else {
        format!(
            "with only the {} tools the history calls ({} suspects dropped)",
            always.len(),
            suspects.len()
        )
    };
    match search
        .attempt(&with_tools(original, tools, &always), what, try_request)
        .await
    {
        Some(Outcome::Passes) => {}
        Some(_) => return Step::NotHere,
        None => return Step::Stop,
    }
    // Bisect the suspects: the trigger is in `suspects[lo..hi]`.
    let (mut lo, mut hi) = (0, suspects.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        let keep: Vec<usize> = always
            .iter()
            .copied()
            .chain(suspects[lo..mid].iter().copied())
            .collect();
        let span = if mid - lo == 1 {
            format!("tools[{}]", suspects[lo])
        } else {
            format!("tools[{}]..tools[{}]", suspects[lo], suspects[mid - 1])
        };
        let what = format!(
            "keeping {} of the {} remaining suspect tools ({span})",
            mid - lo,
            hi - lo
        );
        match search
            .attempt(&with_tools(original, tools, &keep), what, try_request)
            .await
        {
            Some(Outcome::Fails) => hi = mid,
            Some(_) => lo = mid,
            None => return Step::Stop,
        }
    }
    let index = suspects[lo];
    let tool_path = JsonPath::root().key("tools").index(index);
    let name = tool_name(&tools[index]).unwrap_or("(unnamed)");
    let tool_part = Part {
        path: tool_path.clone(),
        what: format!("the tool `{name}` ({tool_path})"),
    };
    Step::Found(
        property(original, tools, &always, index, search, try_request)
            .await
            .unwrap_or(tool_part),
    )
}

/// Within one offending tool, the property that triggers the failure, if it is one.
async fn property(
    original: &Map<String, Value>,
    tools: &[Value],
    always: &[usize],
    index: usize,
    search: &mut Search,
    try_request: &mut impl AsyncFnMut(&Map<String, Value>) -> Outcome,
) -> Option<Part> {
    let (schema_pointer, schema_path) = if tools[index].get("function").is_some() {
        (
            "/function/parameters",
            JsonPath::root()
                .key("tools")
                .index(index)
                .key("function")
                .key("parameters"),
        )
    } else {
        (
            "/input_schema",
            JsonPath::root()
                .key("tools")
                .index(index)
                .key("input_schema"),
        )
    };
    let properties = tools[index]
        .pointer(schema_pointer)?
        .get("properties")?
        .as_object()?;
    let names: Vec<&String> = properties.keys().collect();
    if names.is_empty() {
        return None;
    }
    // The tool with some of its properties (`required` trimmed to match).
    let narrowed = |kept: &[&String]| {
        let mut tool = tools[index].clone();
        if let Some(Value::Object(schema)) = tool.pointer_mut(schema_pointer) {
            let properties: Map<String, Value> = properties
                .iter()
                .filter(|(k, _)| kept.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            schema.insert("properties".into(), Value::Object(properties));
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|r| {
                    r.as_str()
                        .is_some_and(|r| kept.iter().any(|k| k.as_str() == r))
                });
            }
        }
        let mut all: Vec<Value> = tools.to_vec();
        all[index] = tool;
        let mut keep: Vec<usize> = always.to_vec();
        keep.push(index);
        with_tools(original, &all, &keep)
    };
    // Without any property: still failing means the tool itself (its name, its description).
    match search
        .attempt(
            &narrowed(&[]),
            format!("tools[{index}] without its properties"),
            try_request,
        )
        .await
    {
        Some(Outcome::Passes) => {}
        _ => return None,
    }
    let (mut lo, mut hi) = (0, names.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        let what = format!(
            "tools[{index}] with properties {}",
            names[lo..mid]
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match search
            .attempt(&narrowed(&names[lo..mid]), what, try_request)
            .await
        {
            Some(Outcome::Fails) => hi = mid,
            Some(_) => lo = mid,
            None => return None,
        }
    }
    let name = names[lo];
    let path = schema_path.key("properties").key(name);
    let tool = tool_name(&tools[index]).unwrap_or("(unnamed)");
    Some(Part {
        what: format!("the property `{name}` of the tool `{tool}` ({path})"),
        path,
    })
}

/// Names of the tools called in the history (both wires).
fn called_tools(request: &Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    let Some(Value::Array(messages)) = request.get("messages") else {
        return names;
    };
    for message in messages {
        for call in message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                names.push(name.to_owned());
            }
        }
        for block in message
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if block.get("type").and_then(Value::as_str) == Some("tool_use")
                && let Some(name) = block.get("name").and_then(Value::as_str)
            {
                names.push(name.to_owned());
            }
        }
    }
    names
}

async fn history(
    original: &Map<String, Value>,
    search: &mut Search,
    try_request: &mut impl AsyncFnMut(&Map<String, Value>) -> Outcome,
) -> Step {
    let Some(Value::Array(messages)) = original.get("messages") else {
        return Step::NotHere;
    };
    let is_system = |m: &Value| {
        matches!(
            m.get("role").and_then(Value::as_str),
            Some("system" | "developer")
        )
    };
    let lead = messages.iter().take_while(|m| is_system(m)).count();
    // Turns start at user messages that carry no tool results: cutting there keeps pairs whole.
    let cuts: Vec<usize> = (lead..messages.len())
        .filter(|&i| {
            let m = &messages[i];
            m.get("role").and_then(Value::as_str) == Some("user")
                && !m
                    .get("content")
                    .and_then(Value::as_array)
                    .is_some_and(|blocks| {
                        blocks
                            .iter()
                            .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                    })
        })
        .collect();
    if cuts.len() < 2 || cuts[0] != lead {
        return Step::NotHere;
    }
    let from = |cut: usize| {
        let mut candidate = original.clone();
        let kept: Vec<Value> = messages[..lead]
            .iter()
            .chain(&messages[cut..])
            .cloned()
            .collect();
        candidate.insert("messages".into(), Value::Array(kept));
        candidate
    };
    let last = cuts.len() - 1;
    let what = format!("with only the last turn (from messages[{}])", cuts[last]);
    match search.attempt(&from(cuts[last]), what, try_request).await {
        Some(Outcome::Passes) => {}
        Some(_) => return Step::NotHere,
        None => return Step::Stop,
    }
    // The history from cuts[lo] fails, from cuts[hi] passes.
    let (mut lo, mut hi) = (0, last);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        let what = format!("with the history from messages[{}]", cuts[mid]);
        match search.attempt(&from(cuts[mid]), what, try_request).await {
            Some(Outcome::Fails) => lo = mid,
            Some(_) => hi = mid,
            None => return Step::Stop,
        }
    }
    let (start, end) = (cuts[lo], cuts[hi] - 1);
    let path = JsonPath::root().key("messages").index(start);
    Step::Found(Part {
        what: format!("the turn messages[{start}]..messages[{end}] of the history"),
        path,
    })
}

async fn parameters(
    original: &Map<String, Value>,
    search: &mut Search,
    try_request: &mut impl AsyncFnMut(&Map<String, Value>) -> Outcome,
) -> Step {
    for key in original.keys().filter(|k| !KEPT.contains(&k.as_str())) {
        let mut candidate = original.clone();
        candidate.remove(key);
        match search
            .attempt(&candidate, format!("without `{key}`"), try_request)
            .await
        {
            Some(Outcome::Passes) => {
                let path = JsonPath::root().key(key);
                return Step::Found(Part {
                    what: format!("the parameter `{key}`"),
                    path,
                });
            }
            Some(_) => {}
            None => return Step::Stop,
        }
    }
    Step::NotHere
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, properties: Value) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": properties}}})
    }

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    /// A provider that refuses any tool schema using `anyOf` (as some validators do).
    fn refuses_any_of(candidate: &Map<String, Value>) -> Outcome {
        let text = Value::Object(candidate.clone()).to_string();
        if text.contains("anyOf") {
            Outcome::Fails
        } else {
            Outcome::Passes
        }
    }

    fn agent(tools: usize, bad_at: usize) -> Map<String, Value> {
        let tools: Vec<Value> = (0..tools)
            .map(|i| {
                let mut properties = json!({"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "boolean"}});
                if i == bad_at {
                    properties["b"] = json!({"anyOf": [{"type": "string"}, {"type": "null"}]});
                }
                tool(&format!("tool_{i}"), properties)
            })
            .collect();
        map(
            json!({"model": "m", "temperature": 0.5, "messages": [{"role": "user", "content": "go"}], "tools": tools}),
        )
    }

    async fn run(
        request: &Map<String, Value>,
        budget: usize,
        judge: fn(&Map<String, Value>) -> Outcome,
    ) -> Reduced {
        reduce(request, budget, async |candidate: &Map<String, Value>| {
            judge(candidate)
        })
        .await
    }

    #[tokio::test]
    async fn the_offending_property_of_one_tool_in_twenty_four_is_named_within_the_bound() {
        for bad_at in [0, 7, 13, 23] {
            let reduced = run(&agent(24, bad_at), 12, refuses_any_of).await;
            let part = reduced.part.expect("a part is named");
            assert_eq!(
                part.path.to_string(),
                format!("tools[{bad_at}].function.parameters.properties.b"),
                "{:?}",
                reduced.steps
            );
            // 1 without tools + 5 halvings of 24 + 1 without properties + 2 halvings of 3.
            assert!(
                reduced.requests <= 9,
                "{} requests: {:?}",
                reduced.requests,
                reduced.steps
            );
        }
    }

    #[tokio::test]
    async fn a_small_budget_stops_and_says_so() {
        let reduced = run(&agent(24, 5), 3, refuses_any_of).await;
        assert_eq!(reduced.requests, 3);
        assert!(reduced.out_of_budget);
        assert!(reduced.part.is_none());
    }

    #[tokio::test]
    async fn a_tool_that_fails_by_itself_is_named_without_a_property() {
        let mut request = agent(6, 99);
        request["tools"][2]["function"]["name"] = json!("bad name");
        let judge = |c: &Map<String, Value>| {
            if Value::Object(c.clone()).to_string().contains("bad name") {
                Outcome::Fails
            } else {
                Outcome::Passes
            }
        };
        let reduced = reduce(&request, 12, async |c: &Map<String, Value>| judge(c)).await;
        assert_eq!(reduced.part.unwrap().path.to_string(), "tools[2]");
    }

    #[tokio::test]
    async fn a_turn_of_the_history_is_named_when_tools_are_innocent() {
        let mut messages = vec![json!({"role": "system", "content": "sys"})];
        for turn in 0..6 {
            messages.push(json!({"role": "user", "content": format!("q{turn}")}));
            let answer = if turn == 2 { "POISON" } else { "fine" };
            messages.push(json!({"role": "assistant", "content": answer}));
        }
        messages.push(json!({"role": "user", "content": "last"}));
        let request = map(json!({"model": "m", "messages": messages}));
        let judge = |c: &Map<String, Value>| {
            if Value::Object(c.clone()).to_string().contains("POISON") {
                Outcome::Fails
            } else {
                Outcome::Passes
            }
        };
        let reduced = reduce(&request, 12, async |c: &Map<String, Value>| judge(c)).await;
        assert_eq!(
            reduced.part.as_ref().unwrap().path.to_string(),
            "messages[5]",
            "{:?}",
            reduced.steps
        );
    }

    #[tokio::test]
    async fn a_parameter_is_named_last_and_an_outage_stops_the_search() {
        let request = map(
            json!({"model": "m", "temperature": 0.3, "top_p": 0.9, "messages": [{"role": "user", "content": "x"}]}),
        );
        let judge = |c: &Map<String, Value>| {
            if c.contains_key("top_p") {
                Outcome::Fails
            } else {
                Outcome::Passes
            }
        };
        let reduced = reduce(&request, 12, async |c: &Map<String, Value>| judge(c)).await;
        assert_eq!(reduced.part.unwrap().path.to_string(), "top_p");

        let reduced = run(&agent(4, 1), 12, |_| Outcome::Inconclusive).await;
        assert!(reduced.inconclusive);
        assert_eq!(reduced.requests, 1);
    }
}

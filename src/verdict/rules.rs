//! The classification table: `rules.toml`, embedded, parsed and validated once.
//!
//! This module owns the table's schema (documented at the top of `rules.toml`), its validation
//! (every verdict name known, every placeholder known, every fixed case present) and the three
//! lookups the classifier makes: the first [`Rule`] matching an error object, the status
//! fallback row, and the failure `finish_reason` row. It also renders the table's one-line
//! texts. It must not decide anything itself: order and content live in the data file, so that
//! adding a provider's error is a data change plus a test row.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

use super::{Expect, TimeoutPhase, Verdict};

const RULES_TOML: &str = include_str!("rules.toml");

/// The table, parsed on first use.
pub(super) static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::parse(RULES_TOML)
        .expect("the embedded rules.toml is valid: the `embedded_table_parses` test checks it")
});

/// Names a template may use; anything else in braces is a typo caught at load time.
const PLACEHOLDERS: [&str; 5] = ["message", "code", "status", "wait", "detail"];

#[derive(Debug, Error)]
pub enum RulesError {
    #[error("rules.toml does not parse: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("unknown verdict `{name}` in {place}")]
    UnknownVerdict { name: String, place: String },
    #[error("verdict `{0}` has no [verdicts.{0}] entry")]
    MissingVerdict(&'static str),
    #[error("fixed case `{0}` has no [cases.\"{0}\"] entry")]
    MissingCase(&'static str),
    #[error("unknown case `{0}`: the classifier never uses it")]
    UnknownCase(String),
    #[error("{place} has no match field: it would match every error")]
    MatchesEverything { place: String },
    #[error("{place}: {problem}")]
    BadRow { place: String, problem: String },
    #[error("unknown placeholder `{{{name}}}` in {place}")]
    UnknownPlaceholder { name: String, place: String },
}

// === raw serde structs (the file's shape) ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    verdicts: BTreeMap<String, RawVerdictText>,
    cases: BTreeMap<String, RawCase>,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    status_fallback: Vec<RawStatusRow>,
    #[serde(default)]
    finish_reason: Vec<RawFinishRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerdictText {
    explanation: String,
    advice: String,
    #[serde(default)]
    wait: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    verdict: String,
    explanation: String,
    advice: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    code: Vec<String>,
    #[serde(default)]
    code_prefix: Vec<String>,
    #[serde(default, rename = "type")]
    kind: Vec<String>,
    #[serde(default)]
    status: Vec<u16>,
    #[serde(default)]
    message_contains: Vec<String>,
    #[serde(default)]
    metadata_has: Vec<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    verdict: String,
    explanation: Option<String>,
    advice: Option<String>,
    #[serde(default)]
    no_wait: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatusRow {
    #[serde(default)]
    status: Vec<u16>,
    range: Option<[u16; 2]>,
    #[serde(default)]
    expect: Vec<String>,
    body: Option<String>,
    verdict: String,
    explanation: Option<String>,
    advice: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinishRow {
    value: Vec<String>,
    verdict: String,
    explanation: Option<String>,
    advice: Option<String>,
}

// === the typed table ===

/// A verdict with its one-line texts (templates), as a row resolves it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outcome<'t> {
    pub verdict: Verdict,
    pub explanation: &'t str,
    pub advice: &'t str,
    /// Report no wait even when the answer carries one.
    pub no_wait: bool,
}

#[derive(Debug)]
struct VerdictText {
    explanation: String,
    advice: String,
    wait: bool,
}

#[derive(Debug)]
struct Texts {
    verdict: Verdict,
    explanation: Option<String>,
    advice: Option<String>,
    no_wait: bool,
}

/// One `[[rule]]` row; see the schema at the top of `rules.toml`.
#[derive(Debug)]
pub(super) struct Rule {
    codes: Vec<String>,
    code_prefixes: Vec<String>,
    kinds: Vec<String>,
    statuses: Vec<u16>,
    /// Lower-cased once at load; messages are lower-cased once per classification.
    message_contains: Vec<String>,
    metadata_has: Vec<String>,
    metadata_eq: Vec<(String, String)>,
    texts: Texts,
}

#[derive(Debug)]
struct StatusRow {
    statuses: Vec<u16>,
    range: Option<(u16, u16)>,
    expect: Vec<ExpectKind>,
    html_only: bool,
    texts: Texts,
}

#[derive(Debug)]
struct FinishRow {
    values: Vec<String>,
    texts: Texts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpectKind {
    Reachable,
    Chat,
    ToolCall,
}

impl ExpectKind {
    const NAMES: [(&'static str, ExpectKind); 3] = [
        ("reachable", ExpectKind::Reachable),
        ("chat", ExpectKind::Chat),
        ("tool_call", ExpectKind::ToolCall),
    ];

    fn of(expect: Expect) -> ExpectKind {
        match expect {
            Expect::Reachable { .. } => ExpectKind::Reachable,
            Expect::Chat => ExpectKind::Chat,
            Expect::ToolCall => ExpectKind::ToolCall,
        }
    }
}

/// Situations the classifier recognises in code (a body kind, a stream ending, a transport
/// failure); their verdict and words live in `[cases.*]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    UpReachable,
    UpReachableNoKey,
    UpReachableTruncated,
    UpChat,
    UpToolCall,
    Degraded,
    BodyEmpty,
    BodyHtml,
    BodyNotJson,
    BodyTruncated,
    NotAReply,
    EmptyChoices,
    EmptyMessage,
    NoToolCall,
    BadToolArguments,
    UnknownError2xx,
    StreamCut,
    StreamNotJson,
    StreamNoContent,
    StreamUnknownError,
    StreamFirstToken,
    StreamFirstTokenQueued,
    StreamIdle,
    Dns,
    Connect,
    Tls,
    Reset,
    TransportOther,
    TimeoutConnect,
    TimeoutFirstByte,
    TimeoutFirstToken,
    TimeoutIdle,
    TimeoutResponse,
    TimeoutOther,
    LocalResources,
}

impl Case {
    /// Every case with its key in `[cases.*]`; the position is the case's index in the table.
    const ALL: [(Case, &'static str); 35] = [
        (Case::UpReachable, "up_reachable"),
        (Case::UpReachableNoKey, "up_reachable_no_key"),
        (Case::UpReachableTruncated, "up_reachable_truncated"),
        (Case::UpChat, "up_chat"),
        (Case::UpToolCall, "up_tool_call"),
        (Case::Degraded, "degraded"),
        (Case::BodyEmpty, "body_empty"),
        (Case::BodyHtml, "body_html"),
        (Case::BodyNotJson, "body_not_json"),
        (Case::BodyTruncated, "body_truncated"),
        (Case::NotAReply, "not_a_reply"),
        (Case::EmptyChoices, "empty_choices"),
        (Case::EmptyMessage, "empty_message"),
        (Case::NoToolCall, "no_tool_call"),
        (Case::BadToolArguments, "bad_tool_arguments"),
        (Case::UnknownError2xx, "unknown_error_2xx"),
        (Case::StreamCut, "stream_cut"),
        (Case::StreamNotJson, "stream_not_json"),
        (Case::StreamNoContent, "stream_no_content"),
        (Case::StreamUnknownError, "stream_unknown_error"),
        (Case::StreamFirstToken, "stream_first_token"),
        (Case::StreamFirstTokenQueued, "stream_first_token_queued"),
        (Case::StreamIdle, "stream_idle"),
        (Case::Dns, "dns"),
        (Case::Connect, "connect"),
        (Case::Tls, "tls"),
        (Case::Reset, "reset"),
        (Case::TransportOther, "transport_other"),
        (Case::TimeoutConnect, "timeout_connect"),
        (Case::TimeoutFirstByte, "timeout_first byte"),
        (Case::TimeoutFirstToken, "timeout_first token"),
        (Case::TimeoutIdle, "timeout_idle"),
        (Case::TimeoutResponse, "timeout_response"),
        (Case::TimeoutOther, "timeout_other"),
        (Case::LocalResources, "local_resources"),
    ];

    fn index(self) -> usize {
        Case::ALL
            .iter()
            .position(|(case, _)| *case == self)
            .unwrap_or_default()
    }

    /// The case for a transport deadline phase.
    pub(super) fn for_timeout_phase(phase: TimeoutPhase) -> Case {
        match phase {
            TimeoutPhase::Connect => Case::TimeoutConnect,
            TimeoutPhase::FirstByte => Case::TimeoutFirstByte,
            TimeoutPhase::FirstToken => Case::TimeoutFirstToken,
            TimeoutPhase::Idle => Case::TimeoutIdle,
            TimeoutPhase::Response => Case::TimeoutResponse,
            TimeoutPhase::Dns | TimeoutPhase::Tls => Case::TimeoutOther,
        }
    }
}

/// The parsed, validated table.
#[derive(Debug)]
pub(super) struct Table {
    /// Indexed like [`Verdict::ALL`].
    verdicts: Vec<VerdictText>,
    /// Indexed like [`Case::ALL`].
    cases: Vec<Texts>,
    rules: Vec<Rule>,
    status_rows: Vec<StatusRow>,
    finish_rows: Vec<FinishRow>,
}

/// What an error object offers the table to match on.
#[derive(Debug, Clone, Copy)]
pub(super) struct ErrorFacts<'a> {
    pub code: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Lower-cased message ("" when none).
    pub message_lower: &'a str,
    pub metadata: Option<&'a Map<String, Value>>,
    pub status: u16,
}

impl Table {
    pub(super) fn parse(text: &str) -> Result<Table, RulesError> {
        let raw: RawTable = toml::from_str(text)?;

        let mut verdicts = Vec::with_capacity(Verdict::ALL.len());
        for verdict in Verdict::ALL {
            let text = raw
                .verdicts
                .get(verdict.as_str())
                .ok_or(RulesError::MissingVerdict(verdict.as_str()))?;
            let place = format!("[verdicts.{verdict}]");
            check_placeholders(&text.explanation, &place)?;
            check_placeholders(&text.advice, &place)?;
            verdicts.push(VerdictText {
                explanation: text.explanation.clone(),
                advice: text.advice.clone(),
                wait: text.wait,
            });
        }
        if let Some(name) = raw.verdicts.keys().find(|k| Verdict::parse(k).is_none()) {
            return Err(RulesError::UnknownVerdict {
                name: name.clone(),
                place: "[verdicts]".into(),
            });
        }

        let mut cases = Vec::with_capacity(Case::ALL.len());
        for (_, name) in Case::ALL {
            let case = raw.cases.get(name).ok_or(RulesError::MissingCase(name))?;
            let place = format!("[cases.\"{name}\"]");
            cases.push(texts(
                &case.verdict,
                Some(&case.explanation),
                case.advice.as_deref(),
                false,
                &place,
            )?);
        }
        if let Some(name) = raw
            .cases
            .keys()
            .find(|k| !Case::ALL.iter().any(|(_, n)| n == k))
        {
            return Err(RulesError::UnknownCase(name.clone()));
        }

        let rules = raw
            .rule
            .iter()
            .enumerate()
            .map(|(i, row)| Rule::from_raw(row, &format!("[[rule]] #{}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;

        let status_rows = raw
            .status_fallback
            .iter()
            .enumerate()
            .map(|(i, row)| StatusRow::from_raw(row, &format!("[[status_fallback]] #{}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;

        let finish_rows = raw
            .finish_reason
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let place = format!("[[finish_reason]] #{}", i + 1);
                if row.value.is_empty() {
                    return Err(RulesError::MatchesEverything { place });
                }
                Ok(FinishRow {
                    values: row.value.clone(),
                    texts: texts(
                        &row.verdict,
                        row.explanation.as_deref(),
                        row.advice.as_deref(),
                        false,
                        &place,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Table {
            verdicts,
            cases,
            rules,
            status_rows,
            finish_rows,
        })
    }

    /// The first rule matching the error, as an outcome.
    pub(super) fn match_error(&self, facts: &ErrorFacts<'_>) -> Option<Outcome<'_>> {
        self.rules
            .iter()
            .find(|rule| rule.matches(facts))
            .map(|rule| self.outcome(&rule.texts))
    }

    /// The status fallback (reference §2 step 5c) for a status no rule explained, and whether
    /// the row was one for HTML bodies (its text then describes the page).
    pub(super) fn status_fallback(
        &self,
        status: u16,
        expect: Expect,
        html: bool,
    ) -> (Outcome<'_>, bool) {
        let kind = ExpectKind::of(expect);
        self.status_rows
            .iter()
            .find(|row| {
                let status_ok = row.statuses.contains(&status)
                    || row
                        .range
                        .is_some_and(|(lo, hi)| (lo..=hi).contains(&status));
                status_ok
                    && (row.expect.is_empty() || row.expect.contains(&kind))
                    && (!row.html_only || html)
            })
            .map_or_else(
                || (self.verdict_outcome(Verdict::Malformed), false),
                |row| (self.outcome(&row.texts), row.html_only),
            )
    }

    /// The row for a failure `finish_reason` / `stop_reason`, if `value` is one.
    pub(super) fn finish_reason(&self, value: &str) -> Option<Outcome<'_>> {
        self.finish_rows
            .iter()
            .find(|row| row.values.iter().any(|v| v.eq_ignore_ascii_case(value)))
            .map(|row| self.outcome(&row.texts))
    }

    pub(super) fn case(&self, case: Case) -> Outcome<'_> {
        self.outcome(&self.cases[case.index()])
    }

    /// A verdict with its default texts.
    pub(super) fn verdict_outcome(&self, verdict: Verdict) -> Outcome<'_> {
        let text = self.verdict_text(verdict);
        Outcome {
            verdict,
            explanation: &text.explanation,
            advice: &text.advice,
            no_wait: false,
        }
    }

    /// Whether `retry_after_s` is meaningful for this verdict (`wait = true` in the table).
    pub(super) fn reports_wait(&self, verdict: Verdict) -> bool {
        self.verdict_text(verdict).wait
    }

    fn verdict_text(&self, verdict: Verdict) -> &VerdictText {
        let index = Verdict::ALL
            .iter()
            .position(|v| *v == verdict)
            .unwrap_or_default();
        &self.verdicts[index]
    }

    fn outcome<'t>(&'t self, texts: &'t Texts) -> Outcome<'t> {
        let defaults = self.verdict_text(texts.verdict);
        Outcome {
            verdict: texts.verdict,
            explanation: texts
                .explanation
                .as_deref()
                .unwrap_or(&defaults.explanation),
            advice: texts.advice.as_deref().unwrap_or(&defaults.advice),
            no_wait: texts.no_wait,
        }
    }
}

impl Rule {
    fn from_raw(raw: &RawRule, place: &str) -> Result<Rule, RulesError> {
        let has_match = !(raw.code.is_empty()
            && raw.code_prefix.is_empty()
            && raw.kind.is_empty()
            && raw.status.is_empty()
            && raw.message_contains.is_empty()
            && raw.metadata_has.is_empty()
            && raw.metadata.is_empty());
        if !has_match {
            return Err(RulesError::MatchesEverything {
                place: place.into(),
            });
        }
        if let Some(empty) = raw
            .message_contains
            .iter()
            .chain(&raw.code)
            .chain(&raw.code_prefix)
            .chain(&raw.kind)
            .find(|s| s.trim().is_empty())
        {
            return Err(RulesError::BadRow {
                place: place.into(),
                problem: format!("empty match string {empty:?} would match everything"),
            });
        }
        Ok(Rule {
            codes: raw.code.clone(),
            code_prefixes: raw.code_prefix.clone(),
            kinds: raw.kind.clone(),
            statuses: raw.status.clone(),
            message_contains: raw
                .message_contains
                .iter()
                .map(|s| s.to_lowercase())
                .collect(),
            metadata_has: raw.metadata_has.clone(),
            metadata_eq: raw
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            texts: texts(
                &raw.verdict,
                raw.explanation.as_deref(),
                raw.advice.as_deref(),
                raw.no_wait,
                place,
            )?,
        })
    }

    /// Every group the row uses must match; inside the identity group any field may.
    fn matches(&self, facts: &ErrorFacts<'_>) -> bool {
        let uses_identity =
            !(self.codes.is_empty() && self.code_prefixes.is_empty() && self.kinds.is_empty());
        let identity = !uses_identity
            || facts.code.is_some_and(|code| {
                self.codes.iter().any(|c| c.eq_ignore_ascii_case(code))
                    || self
                        .code_prefixes
                        .iter()
                        .any(|p| starts_with_ignore_case(code, p))
            })
            || facts
                .kind
                .is_some_and(|kind| self.kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)));
        let status = self.statuses.is_empty() || self.statuses.contains(&facts.status);
        let message = self.message_contains.is_empty()
            || self
                .message_contains
                .iter()
                .any(|p| facts.message_lower.contains(p.as_str()));
        let metadata_has = self.metadata_has.is_empty()
            || facts.metadata.is_some_and(|m| {
                self.metadata_has
                    .iter()
                    .any(|key| m.get(key).is_some_and(|v| !v.is_null()))
            });
        let metadata_eq = self.metadata_eq.is_empty()
            || facts.metadata.is_some_and(|m| {
                self.metadata_eq
                    .iter()
                    .all(|(key, want)| m.get(key).and_then(Value::as_str) == Some(want))
            });
        identity && status && message && metadata_has && metadata_eq
    }
}

impl StatusRow {
    fn from_raw(raw: &RawStatusRow, place: &str) -> Result<StatusRow, RulesError> {
        if raw.status.is_empty() && raw.range.is_none() {
            return Err(RulesError::MatchesEverything {
                place: place.into(),
            });
        }
        let expect = raw
            .expect
            .iter()
            .map(|name| {
                ExpectKind::NAMES
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, kind)| *kind)
                    .ok_or_else(|| RulesError::BadRow {
                        place: place.into(),
                        problem: format!("unknown expect `{name}` (reachable, chat, tool_call)"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let html_only = match raw.body.as_deref() {
            None => false,
            Some("html") => true,
            Some(other) => {
                return Err(RulesError::BadRow {
                    place: place.into(),
                    problem: format!("unknown body kind `{other}` (only \"html\")"),
                });
            }
        };
        Ok(StatusRow {
            statuses: raw.status.clone(),
            range: raw.range.map(|[lo, hi]| (lo, hi)),
            expect,
            html_only,
            texts: texts(
                &raw.verdict,
                raw.explanation.as_deref(),
                raw.advice.as_deref(),
                false,
                place,
            )?,
        })
    }
}

fn texts(
    verdict: &str,
    explanation: Option<&str>,
    advice: Option<&str>,
    no_wait: bool,
    place: &str,
) -> Result<Texts, RulesError> {
    let verdict = Verdict::parse(verdict).ok_or_else(|| RulesError::UnknownVerdict {
        name: verdict.into(),
        place: place.into(),
    })?;
    for text in explanation.iter().chain(advice.iter()) {
        check_placeholders(text, place)?;
    }
    Ok(Texts {
        verdict,
        explanation: explanation.map(str::to_owned),
        advice: advice.map(str::to_owned),
        no_wait,
    })
}

fn check_placeholders(template: &str, place: &str) -> Result<(), RulesError> {
    for name in placeholders(template) {
        if !PLACEHOLDERS.contains(&name) {
            return Err(RulesError::UnknownPlaceholder {
                name: name.into(),
                place: place.into(),
            });
        }
    }
    Ok(())
}

/// Names inside `{…}` in a template.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

// === rendering ===

/// Values for a template's placeholders. `message` must already be sanitised.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Slots<'a> {
    pub message: Option<&'a str>,
    pub code: Option<&'a str>,
    pub status: Option<u16>,
    pub wait: Option<f64>,
    pub detail: Option<&'a str>,
}

/// Fills a template. Missing values get words, never an empty hole.
pub(super) fn render(template: &str, slots: &Slots<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once('}') {
            Some((name, tail)) if PLACEHOLDERS.contains(&name) => {
                out.push_str(&slot_value(name, slots));
                rest = tail;
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn slot_value(name: &str, slots: &Slots<'_>) -> String {
    match name {
        "message" => slots.message.unwrap_or("no message").to_owned(),
        "code" => slots.code.unwrap_or("no code").to_owned(),
        "status" => slots
            .status
            .map_or_else(|| "no status".to_owned(), |s| s.to_string()),
        "wait" => slots.wait.map_or_else(
            || "no wait was given: use exponential backoff".to_owned(),
            |w| format!("wait {}", format_seconds(w)),
        ),
        "detail" => slots.detail.unwrap_or("no detail").to_owned(),
        _ => String::new(),
    }
}

/// "20 s", "1.5 s", "1152 s (about 19 min)".
pub(super) fn format_seconds(seconds: f64) -> String {
    let shown = if seconds.fract() == 0.0 {
        format!("{seconds:.0} s")
    } else {
        let text = format!("{seconds:.3}");
        format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
    };
    if seconds >= 120.0 {
        format!("{shown} (about {:.0} min)", seconds / 60.0)
    } else {
        shown
    }
}

//! The lint's knowledge, as validated data: the rules' names and wording (`rules.toml`, beside
//! this file) and the provider and model constraints (`[[lint.check]]` rows of the provider
//! catalog, `src/config/catalog.toml`), both embedded and parsed once.
//!
//! This module owns both schemas and their validation: every rule the code knows has its texts,
//! no unknown rule, placeholder, provider id, field or path is accepted, every pattern compiles,
//! and a row carries exactly the fields its rule uses. It also answers the one question the
//! checks ask — which row of a rule applies to this target — and renders the texts. It decides
//! nothing about a request itself.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use super::Rule;

const RULES_TOML: &str = include_str!("rules.toml");
/// The provider catalog; this module reads only its `lint` section (`CATALOG_SECTION`).
const CATALOG_TOML: &str = include_str!("../config/catalog.toml");

/// The table, parsed on first use.
pub(super) static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::parse(RULES_TOML, CATALOG_TOML).expect(
        "the embedded lint rules and catalog rows are valid: the `embedded_table_parses` test checks them",
    )
});

/// Names a text may use inside braces; any other `{name}` is a typo caught at load time.
const PLACEHOLDERS: [&str; 3] = ["value", "expected", "detail"];

#[derive(Debug, Error)]
pub enum TableError {
    #[error("{file} does not parse: {source}")]
    Toml {
        file: &'static str,
        source: toml::de::Error,
    },
    #[error("rules.toml: rule `{0}` has no [rules.{0}] entry")]
    MissingRule(&'static str),
    #[error("{place}: unknown rule `{name}`")]
    UnknownRule { place: String, name: String },
    #[error("{place}: unknown placeholder `{{{name}}}`")]
    UnknownPlaceholder { place: String, name: String },
    #[error("{place}: {problem}")]
    BadRow { place: String, problem: String },
}

// === raw serde structs (the files' shapes) ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    rules: BTreeMap<String, RawTexts>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTexts {
    message: String,
    fix: String,
}

/// The catalog as this module sees it: provider tables (only their names matter here) and the
/// `lint` section.
#[derive(Debug, Deserialize)]
struct RawCatalog {
    lint: Option<RawLint>,
    #[serde(flatten)]
    providers: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLint {
    #[serde(default)]
    check: Vec<RawCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    rule: String,
    #[serde(default)]
    providers: Vec<String>,
    #[serde(default)]
    models: Vec<String>,
    source: String,
    pattern: Option<String>,
    limit: Option<u64>,
    path: Option<String>,
    allowed: Option<Vec<toml::Value>>,
    min: Option<f64>,
    max: Option<f64>,
    with: Option<String>,
    when: Option<BTreeMap<String, toml::Value>>,
    unless: Option<BTreeMap<String, toml::Value>>,
}

// === the typed table ===

#[derive(Debug)]
struct Texts {
    message: String,
    fix: String,
}

/// Where a field rule looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FieldPath {
    /// A top-level field, possibly nested (`thinking.type`).
    Top(Vec<String>),
    /// A field of every message (of `role`, when given).
    Message { role: Option<String>, name: String },
}

/// Field values that make a row apply (`when`) or not (`unless`).
#[derive(Debug, Clone, Default)]
pub(super) struct Condition {
    fields: Vec<(Vec<String>, Value)>,
    negate: bool,
}

/// What a row says beyond where it applies.
#[derive(Debug)]
pub(super) enum Spec {
    /// `tool_name_pattern`: the pattern and its text as written.
    Pattern { regex: Regex, text: String },
    /// `tools_too_many`, `tool_description_too_long`, `max_tokens_above_limit`,
    /// `context_window_exceeded`.
    Limit(u64),
    /// The schema rules: the row only switches the rule on.
    On,
    /// `parameter_value`.
    Value {
        path: Vec<String>,
        allowed: Vec<Value>,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// `field_rejected` and `field_required` (`with`: only messages carrying this field).
    Field {
        path: FieldPath,
        with: Option<String>,
    },
}

/// One `[[lint.check]]` row.
#[derive(Debug)]
pub(super) struct Check {
    pub rule: Rule,
    providers: Vec<String>,
    /// Lower-cased globs.
    models: Vec<String>,
    condition: Condition,
    pub source: String,
    pub spec: Spec,
}

/// The parsed, validated table.
#[derive(Debug)]
pub(super) struct Table {
    /// Indexed like [`Rule::ALL`].
    texts: Vec<Texts>,
    checks: Vec<Check>,
}

/// What a row is matched against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scope<'a> {
    pub provider: &'a str,
    pub model: Option<&'a str>,
    pub request: &'a serde_json::Map<String, Value>,
}

impl Table {
    pub(super) fn parse(rules: &str, catalog: &str) -> Result<Table, TableError> {
        let raw: RawRules = toml::from_str(rules).map_err(|source| TableError::Toml {
            file: "rules.toml",
            source,
        })?;
        let mut texts = Vec::with_capacity(Rule::ALL.len());
        for rule in Rule::ALL {
            let entry = raw
                .rules
                .get(rule.as_str())
                .ok_or(TableError::MissingRule(rule.as_str()))?;
            let place = format!("rules.toml [rules.{}]", rule.as_str());
            check_placeholders(&entry.message, &place)?;
            check_placeholders(&entry.fix, &place)?;
            texts.push(Texts {
                message: entry.message.clone(),
                fix: entry.fix.clone(),
            });
        }
        if let Some(name) = raw.rules.keys().find(|k| Rule::parse(k).is_none()) {
            return Err(TableError::UnknownRule {
                place: "rules.toml".into(),
                name: name.clone(),
            });
        }

        let catalog: RawCatalog = toml::from_str(catalog).map_err(|source| TableError::Toml {
            file: "catalog.toml",
            source,
        })?;
        let provider_ids: Vec<&str> = catalog.providers.keys().map(String::as_str).collect();
        let checks = catalog
            .lint
            .map(|lint| lint.check)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                Check::from_raw(
                    row,
                    &format!("catalog.toml [[lint.check]] #{}", i + 1),
                    &provider_ids,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Table { texts, checks })
    }

    /// The rows of `rule` that apply to `scope`, the first per path (rows are in file order,
    /// specific ones first).
    pub(super) fn applicable<'t>(&'t self, rule: Rule, scope: &Scope<'_>) -> Vec<&'t Check> {
        let mut chosen: Vec<&Check> = Vec::new();
        for check in self.checks.iter().filter(|c| c.rule == rule) {
            if !check.applies(scope) {
                continue;
            }
            if !chosen.iter().any(|c| c.spec.same_target(&check.spec)) {
                chosen.push(check);
            }
        }
        chosen
    }

    /// The first row of `rule` that applies to `scope`.
    pub(super) fn first<'t>(&'t self, rule: Rule, scope: &Scope<'_>) -> Option<&'t Check> {
        self.checks
            .iter()
            .find(|c| c.rule == rule && c.applies(scope))
    }

    /// The rendered message and fix of `rule`.
    pub(super) fn render(&self, rule: Rule, slots: &Slots<'_>) -> (String, String) {
        let texts = &self.texts[rule.index()];
        (render(&texts.message, slots), render(&texts.fix, slots))
    }
}

impl Check {
    fn from_raw(raw: RawCheck, place: &str, provider_ids: &[&str]) -> Result<Check, TableError> {
        let bad = |problem: String| TableError::BadRow {
            place: place.to_owned(),
            problem,
        };
        let rule = Rule::parse(&raw.rule).ok_or_else(|| TableError::UnknownRule {
            place: place.to_owned(),
            name: raw.rule.clone(),
        })?;
        if !rule.is_data_driven() {
            return Err(bad(format!(
                "rule `{}` applies to every request and takes no rows",
                rule.as_str()
            )));
        }
        if let Some(unknown) = raw
            .providers
            .iter()
            .find(|p| !provider_ids.contains(&p.as_str()))
        {
            return Err(bad(format!("unknown provider `{unknown}`")));
        }
        if raw.source.trim().is_empty() {
            return Err(bad(
                "`source` is empty: say where the fact comes from".into()
            ));
        }
        if let Some(empty) = raw.models.iter().find(|m| m.trim().is_empty()) {
            return Err(bad(format!("empty model pattern {empty:?}")));
        }

        // Which optional fields each rule takes; anything else on the row is a mistake.
        let used: [(&str, bool); 7] = [
            ("pattern", raw.pattern.is_some()),
            ("limit", raw.limit.is_some()),
            ("path", raw.path.is_some()),
            ("allowed", raw.allowed.is_some()),
            ("min", raw.min.is_some()),
            ("max", raw.max.is_some()),
            ("with", raw.with.is_some()),
        ];
        let takes: &[&str] = match rule {
            Rule::ToolNamePattern => &["pattern"],
            Rule::ToolsTooMany
            | Rule::ToolDescriptionTooLong
            | Rule::MaxTokensAboveLimit
            | Rule::ContextWindowExceeded => &["limit"],
            Rule::ParameterValue => &["path", "allowed", "min", "max"],
            Rule::FieldRejected => &["path"],
            Rule::FieldRequired => &["path", "with"],
            _ => &[],
        };
        if let Some((field, _)) = used
            .iter()
            .find(|(field, set)| *set && !takes.contains(field))
        {
            return Err(bad(format!("rule `{}` takes no `{field}`", rule.as_str())));
        }

        let spec = match rule {
            Rule::ToolNamePattern => {
                let text = raw
                    .pattern
                    .ok_or_else(|| bad("`pattern` is required".into()))?;
                let regex = Regex::new(&text).map_err(|e| bad(format!("bad pattern: {e}")))?;
                Spec::Pattern { regex, text }
            }
            Rule::ToolsTooMany
            | Rule::ToolDescriptionTooLong
            | Rule::MaxTokensAboveLimit
            | Rule::ContextWindowExceeded => match raw.limit {
                Some(0) => return Err(bad("`limit` must be above 0".into())),
                Some(limit) => Spec::Limit(limit),
                None => return Err(bad("`limit` is required".into())),
            },
            Rule::ParameterValue => {
                let path = raw.path.ok_or_else(|| bad("`path` is required".into()))?;
                let path = dotted_path(&path).ok_or_else(|| {
                    bad(format!("bad path `{path}`: expected a top-level field like `temperature` or `thinking.type`"))
                })?;
                let allowed = raw
                    .allowed
                    .unwrap_or_default()
                    .into_iter()
                    .map(json_of)
                    .collect::<Vec<_>>();
                if allowed.is_empty() && raw.min.is_none() && raw.max.is_none() {
                    return Err(bad("give `allowed` or `min`/`max`".into()));
                }
                if let (Some(min), Some(max)) = (raw.min, raw.max)
                    && min > max
                {
                    return Err(bad(format!("min {min} is above max {max}")));
                }
                Spec::Value {
                    path,
                    allowed,
                    min: raw.min,
                    max: raw.max,
                }
            }
            Rule::FieldRejected | Rule::FieldRequired => {
                let text = raw.path.ok_or_else(|| bad("`path` is required".into()))?;
                let path = field_path(&text).ok_or_else(|| {
                    bad(format!(
                        "bad path `{text}`: expected `NAME`, `messages[].NAME` or `messages[role=R].NAME`"
                    ))
                })?;
                if rule == Rule::FieldRequired && !matches!(path, FieldPath::Message { .. }) {
                    return Err(bad(
                        "field_required applies to message fields (`messages[...].NAME`)".into(),
                    ));
                }
                if let Some(with) = &raw.with
                    && !identifier(with)
                {
                    return Err(bad(format!("bad `with` field `{with}`")));
                }
                Spec::Field {
                    path,
                    with: raw.with,
                }
            }
            _ => Spec::On,
        };

        let condition = match (raw.when, raw.unless) {
            (Some(_), Some(_)) => return Err(bad("use `when` or `unless`, not both".into())),
            (Some(fields), None) => condition(fields, false).map_err(bad)?,
            (None, Some(fields)) => condition(fields, true).map_err(bad)?,
            (None, None) => Condition::default(),
        };

        Ok(Check {
            rule,
            providers: raw.providers,
            models: raw.models.iter().map(|m| m.to_lowercase()).collect(),
            condition,
            source: raw.source,
            spec,
        })
    }

    fn applies(&self, scope: &Scope<'_>) -> bool {
        let provider =
            self.providers.is_empty() || self.providers.iter().any(|p| p == scope.provider);
        let model = self.models.is_empty()
            || scope.model.is_some_and(|model| {
                let model = model.to_lowercase();
                self.models.iter().any(|glob| glob_matches(glob, &model))
            });
        provider && model && self.condition.holds(scope.request)
    }
}

impl Spec {
    /// Two rows aim at the same thing: the same field for parameter and field rules, the rule
    /// itself otherwise.
    fn same_target(&self, other: &Spec) -> bool {
        match (self, other) {
            (Spec::Value { path: a, .. }, Spec::Value { path: b, .. }) => a == b,
            (Spec::Field { path: a, .. }, Spec::Field { path: b, .. }) => a == b,
            _ => true,
        }
    }
}

impl Condition {
    fn holds(&self, request: &serde_json::Map<String, Value>) -> bool {
        if self.fields.is_empty() {
            return true;
        }
        let all = self
            .fields
            .iter()
            .all(|(path, want)| lookup(request, path).is_some_and(|v| same_value(v, want)));
        all != self.negate
    }
}

fn condition(fields: BTreeMap<String, toml::Value>, negate: bool) -> Result<Condition, String> {
    if fields.is_empty() {
        return Err("an empty `when`/`unless` would always hold".into());
    }
    let fields = fields
        .into_iter()
        .map(|(path, value)| {
            dotted_path(&path)
                .map(|p| (p, json_of(value)))
                .ok_or_else(|| format!("bad condition field `{path}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Condition { fields, negate })
}

/// The value at a dotted top-level path.
pub(super) fn lookup<'v>(
    request: &'v serde_json::Map<String, Value>,
    path: &[String],
) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut value = request.get(first)?;
    for key in rest {
        value = value.get(key)?;
    }
    Some(value).filter(|v| !v.is_null())
}

/// Equal values, numbers compared as numbers (`1` and `1.0` are the same temperature).
pub(super) fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

fn json_of(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        other => Value::String(other.to_string()),
    }
}

fn identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn dotted_path(text: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    parts.iter().all(|p| identifier(p)).then_some(parts)
}

/// `NAME`, `a.b`, `messages[].NAME` or `messages[role=R].NAME` (the syntax of the gateway's
/// fixes table).
fn field_path(text: &str) -> Option<FieldPath> {
    if let Some(rest) = text.strip_prefix("messages[") {
        let (selector, name) = rest.split_once("].")?;
        let role = match selector {
            "" => None,
            s => Some(
                s.strip_prefix("role=")
                    .filter(|r| identifier(r))?
                    .to_owned(),
            ),
        };
        return identifier(name).then(|| FieldPath::Message {
            role,
            name: name.to_owned(),
        });
    }
    dotted_path(text).map(FieldPath::Top)
}

/// `*` matches any run of characters; everything else literally. Both sides lower-case.
pub(super) fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

// === rendering ===

/// Values for a text's placeholders.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Slots<'a> {
    pub value: Option<&'a str>,
    pub expected: Option<&'a str>,
    pub detail: Option<&'a str>,
}

fn check_placeholders(text: &str, place: &str) -> Result<(), TableError> {
    for name in placeholders(text) {
        if !PLACEHOLDERS.contains(&name) {
            return Err(TableError::UnknownPlaceholder {
                place: place.to_owned(),
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// Names inside `{…}` that look like placeholders (lower-case letters and `_`); braces around
/// anything else (JSON in a fix) are literal text.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|s| {
        s.split_once('}').map(|(name, _)| name).filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
    })
}

fn render(template: &str, slots: &Slots<'_>) -> String {
    let mut out = template.to_owned();
    for (name, value) in [
        ("value", slots.value),
        ("expected", slots.expected),
        ("detail", slots.detail),
    ] {
        let key = format!("{{{name}}}");
        if out.contains(&key) {
            out = out.replace(&key, value.unwrap_or("-"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(catalog_rows: &str) -> Result<Table, TableError> {
        let catalog = format!("[kimi]\nname = \"Kimi\"\n\n{catalog_rows}");
        Table::parse(RULES_TOML, &catalog)
    }

    #[test]
    fn embedded_table_parses() {
        let table = Table::parse(RULES_TOML, CATALOG_TOML).unwrap();
        assert!(table.checks.len() > 20);
        assert_eq!(table.texts.len(), Rule::ALL.len());
    }

    #[test]
    fn bad_rows_are_refused_with_their_place() {
        let rows = [
            ("rule = \"no_such_rule\"\nsource = \"s\"", "unknown rule"),
            (
                "rule = \"tool_call_unanswered\"\nsource = \"s\"",
                "takes no rows",
            ),
            (
                "rule = \"tool_name_pattern\"\nsource = \"s\"",
                "`pattern` is required",
            ),
            (
                "rule = \"tool_name_pattern\"\npattern = \"([\"\nsource = \"s\"",
                "bad pattern",
            ),
            (
                "rule = \"tools_too_many\"\nlimit = 3\nproviders = [\"nobody\"]\nsource = \"s\"",
                "unknown provider",
            ),
            (
                "rule = \"tools_too_many\"\nlimit = 3\nsource = \" \"",
                "`source` is empty",
            ),
            (
                "rule = \"tools_too_many\"\nlimit = 3\npattern = \"x\"\nsource = \"s\"",
                "takes no `pattern`",
            ),
            (
                "rule = \"tools_too_many\"\nlimit = 0\nsource = \"s\"",
                "above 0",
            ),
            (
                "rule = \"parameter_value\"\npath = \"messages[0].x\"\nallowed = [1]\nsource = \"s\"",
                "bad path",
            ),
            (
                "rule = \"parameter_value\"\npath = \"temperature\"\nsource = \"s\"",
                "`allowed` or `min`",
            ),
            (
                "rule = \"field_rejected\"\npath = \"messages[x].y\"\nsource = \"s\"",
                "bad path",
            ),
            (
                "rule = \"field_required\"\npath = \"thinking\"\nsource = \"s\"",
                "message fields",
            ),
            (
                "rule = \"tools_too_many\"\nlimit = 3\nsource = \"s\"\nwhen = {}",
                "always hold",
            ),
            (
                "rule = \"tools_too_many\"\nlimit = 3\nsource = \"s\"\nwhen = { \"a[0]\" = 1 }",
                "bad condition",
            ),
            (
                "rule = \"tools_too_many\"\nlimit = 3\nsource = \"s\"\ncolour = 1",
                "unknown field",
            ),
        ];
        for (row, want) in rows {
            let err = table(&format!("[[lint.check]]\n{row}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{row}: {err}");
            if !want.contains("unknown field") {
                assert!(err.contains("[[lint.check]] #1"), "{row}: {err}");
            }
        }
    }

    #[test]
    fn rule_texts_must_be_complete_and_use_known_placeholders() {
        let missing = RULES_TOML.replace("[rules.model_missing]", "[rules.model_absent]");
        let err = Table::parse(&missing, "").unwrap_err().to_string();
        assert!(err.contains("model_missing"), "{err}");
        let typo = RULES_TOML.replace("{expected}", "{expectd}");
        let err = Table::parse(&typo, "").unwrap_err().to_string();
        assert!(err.contains("expectd"), "{err}");
    }

    #[test]
    fn globs_match_like_routes() {
        let rows = [
            ("kimi-k2*", "kimi-k2.6", true),
            ("kimi-k2*", "kimi-k3", false),
            ("gpt-5", "gpt-5", true),
            ("gpt-5", "gpt-5-mini", false),
            ("*/kimi-*", "moonshotai/kimi-k2.6", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (glob, text, want) in rows {
            assert_eq!(glob_matches(glob, text), want, "{glob} {text}");
        }
    }
}

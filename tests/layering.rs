//! The layering rules of ARCHITECTURE.md, checked against the source tree: it reads every file
//! under `src/` (plain file reading, no compiler), finds the module paths each one names —
//! `use` trees (`crate::`, `super::`, `self::`, a child module) and `crate::a::b` paths in code —
//! and fails, naming the files and lines, when
//! - two top-level modules depend on each other, directly or through others;
//! - two modules under one parent do (a file and its directory count as one module: what
//!   `alert/channel.rs` and everything in `alert/channel/` name is what `alert::channel` names);
//!   the parent itself (`mod.rs`) is not a sibling of its children: children use what their
//!   parent defines and the parent wires its children together;
//! - a module outside the few that sit above `config` names `crate::config`, or `config` names
//!   one of those (the table [`ABOVE_CONFIG`]);
//! - a top-level module uses one listed after it in the module map of `src/lib.rs` (the map is
//!   the layering, bottom first), or the map, or ARCHITECTURE.md's layers table, misses a module.
//!
//! Comments, strings and `#[cfg(test)]` code alike are read: test code is still code, and a
//! unit test that needs a parsed config belongs in `tests/`. `src/main.rs` is the binary, a
//! separate crate that sees the library as `isdown::`, and is not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The modules that may name `crate::config`: they assemble the program from a loaded config.
/// `config` must name none of them (it builds settings for the modules below it, never for
/// these). Everything else is below `config`: it owns its settings types and receives them
/// typed and validated.
const ABOVE_CONFIG: [(&str, &str); 3] = [
    (
        "cli",
        "one file per subcommand: loads the config and runs the command",
    ),
    (
        "server",
        "`isdown serve` as a library: hands each engine its settings",
    ),
    (
        "check",
        "one-shot diagnosis: reads providers, witnesses and timeouts of a config",
    ),
];

// === the source tree ===

/// One `.rs` file of the library and the module it is.
struct SourceFile {
    /// Relative to the package, e.g. `src/gateway/route.rs`.
    path: String,
    /// `["gateway", "route"]`; empty for `lib.rs`.
    module: Vec<String>,
    text: String,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    collect_rs(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|path| path != &root.join("src/main.rs"))
        .map(|path| {
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            SourceFile {
                path: relative.to_string_lossy().replace('\\', "/"),
                module: module_of(&relative),
                text: std::fs::read_to_string(&path).unwrap(),
            }
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/gateway/route.rs` → `gateway::route`; `src/gateway/mod.rs` → `gateway`;
/// `src/lib.rs` → the crate root.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .skip(1)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

// === tokens ===

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// The tokens of `text` that paths are made of, with their line numbers; comments, string and
/// character literals are skipped.
fn tokens(text: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&chars, i + 1, &mut line),
            'r' | 'b' | 'c' if raw_string_start(&chars, i).is_some() => {
                let (hashes, quote) = raw_string_start(&chars, i).unwrap();
                i = quote + 1;
                loop {
                    if i >= chars.len() {
                        break;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
            'b' | 'c' if at(i + 1) == '"' => i = skip_string(&chars, i + 2, &mut line),
            'b' if at(i + 1) == '\'' => i = skip_char(&chars, i + 1),
            '\'' => {
                // A character literal ('a', '\n', '"'); otherwise a lifetime or label ('a).
                if at(i + 1) == '\\' || at(i + 2) == '\'' {
                    i = skip_char(&chars, i);
                } else {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let begin = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[begin..i].iter().collect();
                let word = word.strip_prefix("r#").map(str::to_owned).unwrap_or(word);
                out.push((Token::Ident(word), start_line));
            }
            ':' if at(i + 1) == ':' => {
                out.push((Token::PathSep, line));
                i += 2;
            }
            c => {
                let token = match c {
                    '{' => Token::Open,
                    '}' => Token::Close,
                    ',' => Token::Comma,
                    ';' => Token::Semi,
                    '*' => Token::Star,
                    _ => Token::Other,
                };
                if !c.is_whitespace() {
                    out.push((token, line));
                }
                i += 1;
            }
        }
    }
    out
}

/// Past the closing quote of a string whose body starts at `i`.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                // An escaped line end continues the string on the next line.
                *line += usize::from(chars.get(i + 1) == Some(&'\n'));
                i += 2;
            }
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

/// Past the closing quote of a character literal whose opening quote is at `i`.
fn skip_char(chars: &[char], mut i: usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '\'' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `r"`, `r#"`, `br##"`, `cr"`: the number of `#` and the position of the opening quote.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j))
}

// === references ===

/// One module path a file names, resolved to a path from the crate root.
struct Reference {
    file: usize,
    line: usize,
    target: Vec<String>,
}

fn is_ident(token: &Token, word: &str) -> bool {
    matches!(token, Token::Ident(w) if w == word)
}

/// Every path in a `use` tree starting at `i`, each with the line of its first segment; returns
/// the index after the tree.
fn use_tree(
    toks: &[(Token, usize)],
    mut i: usize,
    prefix: &[(String, usize)],
    out: &mut Vec<Vec<(String, usize)>>,
) -> usize {
    let mut path = prefix.to_vec();
    if toks.get(i).map(|t| &t.0) == Some(&Token::PathSep) {
        i += 1; // `use ::std::…`
    }
    let mut named = false;
    while let Some((token, line)) = toks.get(i) {
        match token {
            Token::Ident(word) if word != "as" => {
                path.push((word.clone(), *line));
                named = true;
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Token::PathSep) {
                    i += 1;
                    continue;
                }
                break;
            }
            Token::Star => {
                // Kept as the last segment: the module it names is glob-imported.
                path.push(("*".to_owned(), *line));
                named = true;
                i += 1;
                break;
            }
            Token::Open => {
                i += 1;
                while let Some((token, _)) = toks.get(i) {
                    match token {
                        Token::Close => return i + 1,
                        Token::Comma => i += 1,
                        _ => {
                            let before = i;
                            i = use_tree(toks, i, &path, out);
                            if i == before {
                                i += 1;
                            }
                        }
                    }
                }
                return i;
            }
            _ => break,
        }
    }
    if toks.get(i).is_some_and(|t| is_ident(&t.0, "as")) {
        i += 2;
    }
    if path.last().is_some_and(|(w, _)| w == "self") {
        path.pop();
    }
    if named {
        out.push(path);
    }
    i
}

/// Where a path is read: the module it is written in, and the modules whose children it can
/// name without a prefix — its own and those it glob-imports (`use super::*;`: counted for the
/// whole file, a small over-approximation).
struct Scope<'a> {
    here: Vec<String>,
    globs: &'a [Vec<String>],
    modules: &'a BTreeSet<Vec<String>>,
}

impl Scope<'_> {
    /// `path` from the crate root; `None` for other crates and local items.
    fn resolve(&self, path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?;
        let here = &self.here;
        match first.as_str() {
            "crate" => Some(path[1..].to_vec()),
            "super" => {
                let ups = path.iter().take_while(|w| *w == "super").count();
                let base = here.get(..here.len().checked_sub(ups)?)?;
                Some(base.iter().chain(&path[ups..]).cloned().collect())
            }
            "self" => Some(here.iter().chain(&path[1..]).cloned().collect()),
            // A child module named without a prefix (`use route::Route;` in `gateway/mod.rs`).
            _ => std::iter::once(here).chain(self.globs).find_map(|base| {
                let child: Vec<String> = base.iter().chain([first]).cloned().collect();
                self.modules
                    .contains(&child)
                    .then(|| base.iter().chain(path).cloned().collect())
            }),
        }
    }
}

/// What every file names.
fn references(files: &[SourceFile]) -> Vec<Reference> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut out = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let toks = tokens(&file.text);
        // Inline modules (`mod tests { … }`) open at a brace depth.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut globs: Vec<Vec<String>> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        while i < toks.len() {
            let here: Vec<String> = file
                .module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(name, _)| name.clone()))
                .collect();
            let mut paths: Vec<Vec<(String, usize)>> = Vec::new();
            match &toks[i].0 {
                Token::Open => {
                    depth += 1;
                    i += 1;
                }
                Token::Close => {
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                Token::Ident(word) if word == "mod" => {
                    if let (Some((Token::Ident(name), _)), Some((Token::Open, _))) =
                        (toks.get(i + 1), toks.get(i + 2))
                    {
                        depth += 1;
                        inline.push((name.clone(), depth));
                        i += 3;
                    } else {
                        i += 1;
                    }
                }
                Token::Ident(word) if word == "use" => {
                    i = use_tree(&toks, i + 1, &[], &mut paths);
                }
                // A path in code: `crate::time::now()`, `super::Gateway`, `route::Route`.
                Token::Ident(word) if toks.get(i + 1).map(|t| &t.0) == Some(&Token::PathSep) => {
                    let mut path = vec![(word.clone(), toks[i].1)];
                    i += 1;
                    while toks.get(i).map(|t| &t.0) == Some(&Token::PathSep) {
                        match toks.get(i + 1) {
                            Some((Token::Ident(next), line)) => {
                                path.push((next.clone(), *line));
                                i += 2;
                            }
                            _ => break,
                        }
                    }
                    paths.push(path);
                }
                _ => i += 1,
            }
            for path in paths {
                let mut words: Vec<String> = path.iter().map(|(w, _)| w.clone()).collect();
                let glob = words.last().is_some_and(|w| w == "*");
                if glob {
                    words.pop();
                }
                let scope = Scope {
                    here: here.clone(),
                    globs: &globs,
                    modules: &modules,
                };
                let Some(target) = scope.resolve(&words) else {
                    continue;
                };
                if glob && modules.contains(&target) {
                    globs.push(target.clone());
                }
                out.push(Reference {
                    file: index,
                    line: path[0].1,
                    target,
                });
            }
        }
    }
    out
}

// === the dependency graph ===

/// Why a module depends on another: the first place it says so.
#[derive(Clone)]
struct Evidence {
    path: String,
    line: usize,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path, self.line)
    }
}

/// Edges between the children of one module: `from → to → where`.
type Graph = BTreeMap<String, BTreeMap<String, Evidence>>;

/// For every module with children, the graph between its children: an edge A → B when a file
/// of A's subtree names B's subtree. The parent's own file (`mod.rs`) is no child.
fn sibling_graphs(files: &[SourceFile], refs: &[Reference]) -> BTreeMap<Vec<String>, Graph> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut graphs: BTreeMap<Vec<String>, Graph> = BTreeMap::new();
    for reference in refs {
        let from = &files[reference.file].module;
        // The longest common prefix of both paths is the parent whose children they are in.
        let common = from
            .iter()
            .zip(&reference.target)
            .take_while(|(a, b)| a == b)
            .count();
        let (Some(a), Some(b)) = (from.get(common), reference.target.get(common)) else {
            continue; // a module naming its own subtree or an ancestor
        };
        let parent = from[..common].to_vec();
        let child: Vec<String> = parent.iter().chain([b]).cloned().collect();
        if !modules.contains(&child) {
            continue; // an item the parent defines (`super::Thing`), not a sibling module
        }
        graphs
            .entry(parent)
            .or_default()
            .entry(a.clone())
            .or_default()
            .entry(b.clone())
            .or_insert(Evidence {
                path: files[reference.file].path.clone(),
                line: reference.line,
            });
    }
    graphs
}

/// The cycles of `graph`: every strongly connected component of more than one node, each as
/// the edges inside it.
fn cycles(graph: &Graph) -> Vec<Vec<(String, String, Evidence)>> {
    let nodes: BTreeSet<&String> = graph
        .iter()
        .flat_map(|(from, to)| std::iter::once(from).chain(to.keys()))
        .collect();
    let reaches = |start: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(node) = stack.pop() {
            for next in graph.get(&node).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reaches(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for node in &nodes {
        if done.contains(*node) || !reach[node].contains(*node) {
            continue;
        }
        let component: BTreeSet<String> = nodes
            .iter()
            .filter(|other| reach[node].contains(**other) && reach[*other].contains(*node))
            .map(|n| (*n).clone())
            .collect();
        let mut edges = Vec::new();
        for from in &component {
            for (to, evidence) in graph.get(from).into_iter().flatten() {
                if component.contains(to) {
                    edges.push((from.clone(), to.clone(), evidence.clone()));
                }
            }
        }
        done.extend(component);
        out.push(edges);
    }
    out
}

fn describe(parent: &[String], edges: &[(String, String, Evidence)]) -> String {
    let name = |child: &str| {
        let mut path = parent.to_vec();
        path.push(child.to_owned());
        path.join("::")
    };
    let lines: Vec<String> = edges
        .iter()
        .map(|(from, to, at)| format!("    {} → {} ({at})", name(from), name(to)))
        .collect();
    lines.join("\n")
}

// === the rules ===

#[test]
fn top_level_modules_do_not_depend_on_each_other_in_a_cycle() {
    let files = source_files();
    let graphs = sibling_graphs(&files, &references(&files));
    let top = graphs.get(&Vec::new()).cloned().unwrap_or_default();
    let found: Vec<String> = cycles(&top).iter().map(|c| describe(&[], c)).collect();
    assert!(
        found.is_empty(),
        "top-level modules that depend on each other (break each cycle: move what both need \
         into a module below them):\n{}",
        found.join("\n  and\n")
    );
}

#[test]
fn modules_under_one_parent_do_not_depend_on_each_other_in_a_cycle() {
    let files = source_files();
    let graphs = sibling_graphs(&files, &references(&files));
    let found: Vec<String> = graphs
        .iter()
        .filter(|(parent, _)| !parent.is_empty())
        .flat_map(|(parent, graph)| cycles(graph).into_iter().map(|c| describe(parent, &c)))
        .collect();
    assert!(
        found.is_empty(),
        "sibling modules that depend on each other (move what both need into one of them, \
         or into the parent or a new module both use):\n{}",
        found.join("\n  and\n")
    );
}

#[test]
fn only_the_modules_above_config_name_it_and_config_names_none_of_them() {
    let files = source_files();
    let above: BTreeSet<&str> = ABOVE_CONFIG.iter().map(|(name, _)| *name).collect();
    let mut wrong = Vec::new();
    for reference in references(&files) {
        let file = &files[reference.file];
        let (Some(from), Some(to)) = (file.module.first(), reference.target.first()) else {
            continue;
        };
        let at = format!("{}:{}", file.path, reference.line);
        if to == "config" && from != "config" && !above.contains(from.as_str()) {
            wrong.push(format!(
                "    {at}: `{from}` names crate::{} (below config: take typed settings instead)",
                reference.target.join("::")
            ));
        }
        if from == "config" && above.contains(to.as_str()) {
            wrong.push(format!(
                "    {at}: config names crate::{} (above config)",
                reference.target.join("::")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "config's layering is broken (may name config: {}):\n{}",
        above.iter().copied().collect::<Vec<_>>().join(", "),
        wrong.join("\n")
    );
}

/// The top-level modules in the order of `src/lib.rs`'s module map (`//! - \`name\`: …`).
fn module_map() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|line| line.strip_prefix("//! - `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn the_module_map_lists_every_module_once_and_each_uses_only_those_before_it() {
    let files = source_files();
    let map = module_map();
    let top: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect();
    let listed: BTreeSet<String> = map.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        map.len(),
        "a module listed twice in src/lib.rs: {map:?}"
    );
    assert_eq!(
        listed, top,
        "src/lib.rs's module map and the modules under src/ differ"
    );
    let position = |name: &str| map.iter().position(|m| m == name);
    let graphs = sibling_graphs(&files, &references(&files));
    let mut upward = Vec::new();
    for (from, to) in graphs.get(&Vec::new()).into_iter().flatten() {
        for (to, at) in to {
            if position(to) > position(from) {
                upward.push(format!("    {from} → {to} ({at})"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "modules that use a module listed after them in src/lib.rs's module map (move the \
         module in the map if its layer is wrong, or move what it needs down):\n{}",
        upward.join("\n")
    );
}

#[test]
fn architecture_md_places_every_module_in_its_layers_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let table: String = text
        .lines()
        .skip_while(|line| !line.starts_with("## Layers"))
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .filter(|line| line.starts_with('|'))
        .map(|line| line.split('|').nth(2).unwrap_or_default().to_owned() + " ")
        .collect();
    let missing: Vec<String> = module_map()
        .into_iter()
        .filter(|name| !table.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's layers table does not place {missing:?}"
    );
}

#[test]
fn the_reader_finds_paths_in_use_trees_globs_and_code_but_not_in_comments_or_strings() {
    let text = "//! crate::alert in a doc\n\
                use crate::{gateway::{self, route::Route}, store as s};\n\
                use super::breaker::Breaker;\n\
                use route::Table;\n\
                fn f() { let _ = \"crate::web\"; let c = '\"'; crate::time::now(); }\n\
                /* crate::queue */ fn g<'a>(x: &'a str) -> &'a str { x }\n\
                mod tests { use super::super::fixes; }\n\
                mod more { use super::super::*; fn h() { route::Table::new(); std::route::x(); } }\n";
    let files = vec![
        SourceFile {
            path: "src/gateway/mod.rs".into(),
            module: vec!["gateway".into()],
            text: String::new(),
        },
        SourceFile {
            path: "src/gateway/route.rs".into(),
            module: vec!["gateway".into(), "route".into()],
            text: String::new(),
        },
        SourceFile {
            path: "src/gateway/hedge.rs".into(),
            module: vec!["gateway".into(), "hedge".into()],
            text: text.into(),
        },
    ];
    let mut found: Vec<(usize, String)> = references(&files)
        .into_iter()
        .map(|r| (r.line, r.target.join("::")))
        .collect();
    found.sort();
    let want = [
        (2, "gateway"),
        (2, "gateway::route::Route"),
        (2, "store"),
        (3, "gateway::breaker::Breaker"),
        (5, "time::now"),
        (7, "gateway::fixes"),
        (8, "gateway"),
        (8, "gateway::route::Table::new"),
    ];
    let want: Vec<(usize, String)> = want.iter().map(|(l, p)| (*l, p.to_string())).collect();
    assert_eq!(found, want);
    assert_eq!(module_of(Path::new("src/gateway/mod.rs")), ["gateway"]);
    assert_eq!(
        module_of(Path::new("src/alert/channel.rs")),
        ["alert", "channel"]
    );
    assert!(module_of(Path::new("src/lib.rs")).is_empty());
}

#[test]
fn a_cycle_through_a_third_module_is_found() {
    let evidence = || Evidence {
        path: "src/x.rs".into(),
        line: 1,
    };
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(from.into())
            .or_default()
            .insert(to.into(), evidence());
    }
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    let members: BTreeSet<&str> = found[0].iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(members, BTreeSet::from(["a", "b", "c"]));
}

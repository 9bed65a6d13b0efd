//! The crate's floors, checked (`./just lint` runs this file; so does `cargo test`).
//!
//! Every module of `src/` sits on a floor; a module may name (`use crate::…` or an inline
//! `crate::…` path in code, tests included) only modules on its own floor or below, never
//! through `lib.rs`'s re-exports (`crate::Error`), and `ring/` and `handshake/` never name each
//! other. No two modules may import each other through any chain (a circle). The rules and why
//! are in the crate docs' "Layout" section; this file is what makes them hold.
//!
//! It reads the source as text, as a reviewer would: doc comments and `//` comments are
//! skipped (a doc link to a public path is documentation, not an import).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Floors, lowest first: a module's floor is that of the longest prefix listed.
const FLOORS: &[(&str, u8)] = &[
    ("error", 0),
    ("trace", 0),
    ("wire", 0),
    ("sys", 1),
    ("wait", 2),
    ("ring", 3),
    ("handshake", 3),
    ("bus", 4),
    ("asynchronous", 4),
    ("rpc", 5),
    ("select", 5),
    ("listener", 5),
    ("fuzzing", 5),
    ("trace_events", 5),
    ("lib", 6),
];

/// Folders on one floor that must not name each other.
const APART: &[(&str, &str)] = &[("ring", "handshake")];

fn floor_of(module: &str) -> Option<u8> {
    let top = module.split("::").next().unwrap_or(module);
    FLOORS
        .iter()
        .find(|(name, _)| *name == top)
        .map(|(_, floor)| *floor)
}

/// The module path of a source file (`ring/consumer/tests.rs` → `ring::consumer::tests`).
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        return "lib".into();
    }
    parts.join("::")
}

/// Code of a file with comments removed (line comments, doc comments, block comments), and
/// string literals blanked, so a path inside a message is not an import.
fn code_only(source: &str) -> String {
    let mut code = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    code.push('"');
                }
                '\n' => code.push('\n'),
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        code.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            ('"', _) => {
                in_string = true;
                code.push('"');
            }
            // A char literal holding a quote would open a string: keep it whole.
            ('\'', Some('"')) => {
                code.push_str("'\"");
                chars.next();
            }
            _ => code.push(c),
        }
    }
    code
}

/// Every `crate::…` path a piece of code names, `use` groups expanded one level
/// (`use crate::{a::b, c}` → `a::b`, `c`; nested groups keep their prefix).
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `$crate::` (macros) and identifiers ending in "crate" are not crate paths.
        if before.is_some_and(|c| c == '$' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        paths.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            paths.push(item);
            continue;
        }
        paths.push(
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect(),
        );
    }
    paths
        .into_iter()
        .map(|path| {
            path.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .find(|word| !word.is_empty())
                .unwrap_or("")
                .trim_end_matches(':')
                .to_string()
        })
        .filter(|path| !path.is_empty())
        .collect()
}

/// The module a `crate::…` path lands in: its longest prefix that is a module of the crate,
/// or `lib` when it names a re-export of `lib.rs`.
fn target_module(path: &str, modules: &BTreeSet<String>) -> String {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_else(|| "lib".into())
}

/// What is wrong with the imports of `sources` (module path → source text).
fn problems(sources: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in sources {
        let Some(floor) = floor_of(module) else {
            problems.push(format!("{module}: on no floor (add it to FLOORS)"));
            continue;
        };
        for path in crate_paths(&code_only(source)) {
            let target = target_module(&path, &modules);
            if target == "lib" && module != "lib" {
                problems.push(format!(
                    "{module}: names crate::{path} through lib.rs's re-exports; name its home module"
                ));
                continue;
            }
            let Some(target_floor) = floor_of(&target) else {
                continue;
            };
            if target_floor > floor {
                problems.push(format!(
                    "{module} (floor {floor}) imports {target} (floor {target_floor}), a floor above"
                ));
            }
            let top = |m: &str| m.split("::").next().unwrap_or(m).to_string();
            for (a, b) in APART {
                let (from, to) = (top(module), top(&target));
                if (from == *a && to == *b) || (from == *b && to == *a) {
                    problems.push(format!(
                        "{module} imports {target}: {a}/ and {b}/ stay apart"
                    ));
                }
            }
            if target != *module && !module.starts_with(&format!("{target}::")) {
                edges.entry(module).or_default().insert(target);
            }
        }
    }
    problems.extend(circles(&edges));
    problems
}

/// Every circle in the import graph, each reported once.
fn circles(edges: &BTreeMap<&str, BTreeSet<String>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.to_string(), vec![start.to_string()])];
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(at.as_str()).into_iter().flatten() {
                if next == start {
                    let mut circle = trail.clone();
                    let first = circle.iter().min().cloned().unwrap_or_default();
                    let turn = circle.iter().position(|m| *m == first).unwrap_or(0);
                    circle.rotate_left(turn);
                    found.insert(format!("circle: {} -> {}", circle.join(" -> "), circle[0]));
                } else if !trail.contains(next) && trail.len() < 12 {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found.into_iter().collect()
}

fn read_tree(root: &Path, dir: &Path, sources: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(root, &path, sources);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap();
            sources.insert(module_of(relative), std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_import_stays_on_its_floor_or_below_and_no_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    read_tree(&root, &root, &mut sources);
    assert!(sources.contains_key("lib") && sources.len() > 20);
    let problems = problems(&sources);
    assert!(
        problems.is_empty(),
        "the crate's floors are broken:\n  {}",
        problems.join("\n  ")
    );
}

/// The checker itself catches what it is for (a check that cannot fail proves nothing).
#[test]
fn the_checker_catches_an_upward_import_a_circle_a_re_export_and_ring_meeting_handshake() {
    let tree = |files: &[(&str, &str)]| -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(m, s)| (m.to_string(), s.to_string()))
            .collect()
    };
    let clean = tree(&[
        ("lib", "mod error; pub use error::Error;"),
        ("error", "pub enum Error {}"),
        ("sys::futex", "use crate::error::Error;"),
        (
            "wait",
            "use crate::sys::futex; // crate::bus::Bus in a comment\n/// [`x`](crate::Bus)",
        ),
        (
            "ring::consumer",
            "use crate::{error::Error, wait::{self, Naps}};",
        ),
        (
            "bus",
            "use crate::ring::consumer::Consumer; fn f() { let _ = \"crate::rpc\"; }",
        ),
        ("rpc", "use crate::bus;"),
    ]);
    assert_eq!(problems(&clean), Vec::<String>::new());

    let mut upward = clean.clone();
    upward.insert("sys::futex".into(), "use crate::wait::Naps;".into());
    let found = problems(&upward);
    assert!(
        found.iter().any(|p| p.contains("a floor above")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.starts_with("circle:")), "{found:?}");

    let mut circle = clean.clone();
    circle.insert(
        "ring::producer".into(),
        "use crate::ring::consumer::X;".into(),
    );
    circle.insert(
        "ring::consumer".into(),
        "fn f() { crate::ring::producer::g(); }".into(),
    );
    let found = problems(&circle);
    assert_eq!(
        found,
        ["circle: ring::consumer -> ring::producer -> ring::consumer"],
        "{found:?}"
    );

    let mut re_export = clean.clone();
    re_export.insert("bus".into(), "use crate::Error;".into());
    let found = problems(&re_export);
    assert!(found.iter().any(|p| p.contains("re-exports")), "{found:?}");

    let mut apart = clean.clone();
    apart.insert(
        "handshake".into(),
        "use crate::ring::consumer::Consumer;".into(),
    );
    let found = problems(&apart);
    assert!(found.iter().any(|p| p.contains("stay apart")), "{found:?}");

    let mut stray = clean;
    stray.insert("gadgets".into(), String::new());
    assert!(problems(&stray).iter().any(|p| p.contains("on no floor")));
}

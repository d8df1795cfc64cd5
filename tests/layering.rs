//! The top-level modules form layers: no module imports one that imports it back.
//!
//! Reads `src/` and collects, per top-level module, every other top-level module its
//! code names through `crate::` (comments are skipped), then looks for cycles. Edges
//! known to close one are listed in `KNOWN` (none today); anything else fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Edges that still close a cycle, each with why it is left (see the lib.rs map). Empty:
/// the last one, `state -> detect`, went when `Baseline` and what detectors read with it
/// moved below both into `baseline` (state stores each detector's `KindState`; detectors
/// read only `baseline`).
const KNOWN: &[(&str, &str)] = &[];

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let first = first.to_string_lossy();
        if first == "lib.rs" || first == "main.rs" {
            continue;
        }
        // `src/pattern.rs` is module `pattern`; `src/detect/...` is module `detect`.
        let module = first.trim_end_matches(".rs").to_string();
        let text = strip_comments(&std::fs::read_to_string(&file).unwrap());
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let mut names: Vec<&str> = Vec::new();
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                names.extend(
                    inner
                        .split(',')
                        .map(|n| n.trim().split("::").next().unwrap_or("")),
                );
            } else {
                names.push(
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or(""),
                );
            }
            for name in names {
                let starts_lower = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
                if starts_lower && name != module && !KNOWN.contains(&(module.as_str(), name)) {
                    edges
                        .entry(module.clone())
                        .or_default()
                        .insert(name.to_string());
                }
            }
        }
    }
    edges
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let edges = graph();
    // Depth-first search; a back edge is a cycle.
    fn dfs<'a>(
        node: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node, 1);
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = path.iter().position(|n| *n == next).unwrap_or(0);
                    cycles.push(format!("{} -> {next}", path[from..].join(" -> ")));
                }
                Some(_) => {}
                None => dfs(next, edges, state, path, cycles),
            }
        }
        path.pop();
        state.insert(node, 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in edges.keys() {
        if !state.contains_key(node.as_str()) {
            dfs(node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between modules: {cycles:#?}"
    );
}

#[test]
fn only_the_kafka_module_names_the_kafka_client_library() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let kafka = src.join("kafka");
    let outside: Vec<String> = files
        .iter()
        .filter(|file| !file.starts_with(&kafka))
        .filter(|file| strip_comments(&std::fs::read_to_string(file).unwrap()).contains("rdkafka"))
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        outside.is_empty(),
        "rdkafka named outside src/kafka/: {outside:?}"
    );
}

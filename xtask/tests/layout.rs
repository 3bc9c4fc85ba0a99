//! The layout a newcomer reads (README, "Where things are"): one file per command under
//! `commands/`, what a phase is under `phase/`, the live environment under `live/`, the offline
//! checks under `checks/`; no two files that use each other, and nothing offline that uses `live`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as a path relative to it (`commands/verify/parity.rs`).
fn sources() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &src(), &mut out);
    out.sort();
    out
}

/// The module path of a file: `commands/verify/mod.rs` is `commands::verify`, `main.rs` the root.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "main")) {
        parts.pop();
    }
    parts
}

/// The code of a file without its `#[cfg(test)] mod tests` (a test module uses its parent).
fn code(file: &str) -> String {
    let text = std::fs::read_to_string(src().join(file)).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// The other files each file uses: by `crate::`, `super::` and `self::` paths (grouped ones
/// too) and by the names of the child modules it declares.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let by_module: BTreeMap<Vec<String>, String> = files.iter().map(|f| (module_of(f), f.clone())).collect();
    let resolve =
        |path: &[String]| -> Option<String> { (1..=path.len()).rev().find_map(|n| by_module.get(&path[..n]).cloned()) };
    let path_re = regex::Regex::new(r"\b(crate|super|self)((?:::\w+)*)(::\{([^}]*)\})?").unwrap();
    let child_re = regex::Regex::new(r"(?m)^\s*(?:pub(?:\(crate\))? )?mod (\w+);").unwrap();
    let mut uses = BTreeMap::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = code(file);
        let me = module_of(file);
        let mut found = BTreeSet::new();
        for m in path_re.captures_iter(&text) {
            let mut at: Vec<String> = match &m[1] {
                "crate" => Vec::new(),
                "super" => me[..me.len().saturating_sub(1)].to_vec(),
                _ => me.clone(),
            };
            let mut rest: Vec<String> = m[2].split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
            while rest.first().is_some_and(|s| s == "super") {
                at.pop();
                rest.remove(0);
            }
            at.extend(rest);
            let targets: Vec<Vec<String>> = match m.get(4) {
                Some(group) => group
                    .as_str()
                    .split(',')
                    .filter_map(|item| item.trim().split("::").next().filter(|s| !s.is_empty()))
                    .map(|first| [at.clone(), vec![first.to_string()]].concat())
                    .collect(),
                None => vec![at],
            };
            found.extend(targets.iter().filter_map(|t| resolve(t)));
        }
        for m in child_re.captures_iter(&text) {
            let child = &m[1];
            let used = text
                .match_indices(&format!("{child}::"))
                .any(|(i, _)| !text[..i].ends_with(|c: char| c == ':' || c == '_' || c.is_alphanumeric()));
            if used {
                found.extend(resolve(&[me.clone(), vec![child.to_string()]].concat()));
            }
        }
        found.remove(file);
        uses.insert(file.clone(), found);
    }
    uses
}

#[test]
fn no_two_files_use_each_other() {
    let uses = uses();
    let circles: Vec<String> = uses
        .iter()
        .flat_map(|(a, theirs)| theirs.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && uses.get(*b).is_some_and(|back| back.contains(*a)))
        .map(|(a, b)| format!("{a} <-> {b}"))
        .collect();
    assert!(circles.is_empty(), "files that use each other (move what both need into one of them): {circles:?}");
}

#[test]
fn the_offline_checks_never_use_the_live_environment() {
    let offline: Vec<String> = uses()
        .into_iter()
        .filter(|(file, _)| file.starts_with("checks/") || file.starts_with("phase/order"))
        .flat_map(|(file, used)| {
            used.into_iter().filter(|u| u.starts_with("live/")).map(move |u| format!("{file} -> {u}"))
        })
        .collect();
    assert!(offline.is_empty(), "offline code that reaches AWS: {offline:?}");
}

#[test]
fn each_folder_says_what_lives_there_and_what_it_may_use() {
    for file in sources().iter().filter(|f| f.ends_with("/mod.rs")) {
        let text = std::fs::read_to_string(src().join(file)).unwrap();
        let head: Vec<&str> = text.lines().take(2).collect();
        assert!(
            head.len() == 2 && head.iter().all(|l| l.starts_with("//! ")) && head[1].to_lowercase().contains("may use"),
            "{file} must open with two `//!` lines: what lives there, and what it may use"
        );
    }
}

#[test]
fn every_command_has_its_file_named_as_the_command() {
    let cli = std::fs::read_to_string(src().join("cli.rs")).unwrap();
    let start = cli.find("pub enum Command {").expect("the Command enum");
    let body = &cli[start..start + cli[start..].find("\n}").unwrap()];
    let variants: Vec<&str> = body
        .lines()
        .filter_map(|l| l.trim().strip_suffix(',').and_then(|v| v.split('(').next()))
        .filter(|v| v.starts_with(char::is_uppercase))
        .collect();
    assert!(variants.len() >= 18, "{variants:?}");
    for variant in variants {
        let mut file = String::new();
        for (i, c) in variant.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                file.push('_');
            }
            file.push(c.to_ascii_lowercase());
        }
        let commands = src().join("commands");
        let found = commands.join(format!("{file}.rs")).is_file() || commands.join(&file).join("mod.rs").is_file();
        assert!(found, "`cargo xtask {}` has no file commands/{file}.rs", file.replace('_', "-"));
    }
}

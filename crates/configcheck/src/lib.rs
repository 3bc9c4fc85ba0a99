//! Offline checks of the configs `cargo xtask render` produces; `cargo xtask check` calls them.

pub mod alloy;
pub mod grafana;
pub mod loki;

/// Levenshtein distance, for "did you mean" hints on unknown keys and arguments.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The rendered files of every environment whose name `matches`, sorted; at least one (tests).
#[cfg(test)]
pub(crate) fn rendered_files(matches: impl Fn(&str) -> bool) -> Vec<std::path::PathBuf> {
    let rendered = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rendered");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&rendered)
        .expect("rendered/ exists")
        .flatten()
        .flat_map(|env_dir| std::fs::read_dir(env_dir.path()).into_iter().flatten().flatten())
        .map(|file| file.path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(&matches))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no matching files under rendered/: run `cargo xtask render`");
    files
}

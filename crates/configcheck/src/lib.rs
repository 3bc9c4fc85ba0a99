//! Offline checks of the configs `cargo xtask render` produces, and of AWS requests and ECS
//! container definitions against AWS's own service models; `cargo xtask check` calls them.

pub mod alloy;
pub mod botocore;
pub mod grafana;
pub mod loki;
pub mod terraform;

pub(crate) use settings::hint::edit_distance;

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

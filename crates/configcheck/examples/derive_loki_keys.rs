//! Regenerates `data/loki-<version>-keys.txt` from Loki's configuration reference:
//!
//! ```text
//! git -C <loki checkout> show v3.7.6:docs/sources/shared/configuration.md > /tmp/configuration.md
//! cargo run -p configcheck --example derive_loki_keys -- /tmp/configuration.md v3.7.6 <commit> \
//!     > crates/configcheck/data/loki-3.7.6-keys.txt
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, tag, commit] = args.as_slice() else {
        eprintln!("usage: derive_loki_keys <configuration.md> <tag, e.g. v3.7.6> <commit>");
        return ExitCode::from(2);
    };
    let markdown = match std::fs::read_to_string(path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match configcheck::loki::derive_key_list(&markdown) {
        Ok(body) => {
            let version = tag.trim_start_matches('v');
            print!(
                "\
# Configuration keys Loki {version} accepts, one per line: <path> TAB <kind>.
# Derived from grafana/loki tag {tag} (commit {commit}), docs/sources/shared/configuration.md,
# which Loki generates from its Go config structs. Do not edit; regenerate with:
#   git -C <loki checkout> show {tag}:docs/sources/shared/configuration.md > /tmp/configuration.md
#   cargo run -p configcheck --example derive_loki_keys -- /tmp/configuration.md {tag} <commit> \\
#       > crates/configcheck/data/loki-{version}-keys.txt
# Kinds: block = mapping of the keys below it; list = sequence of blocks (items under path[]);
# map = string-keyed blocks (values under path.*); anything else is a value of that type.
{body}"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

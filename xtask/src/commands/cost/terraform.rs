//! Values read from the Terraform sources, so that sizes and formulas live in one place (the
//! Terraform) and the cost model and property tests follow it. Line-based, for the simple
//! `name = <number>` shapes these files use; anything else is an error that names the file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{format_err, Context};

/// A container's reservation: CPU units (1024 = one vCPU) and memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    pub cpu: f64,
    pub memory: f64,
}

/// What the cost model needs from the Terraform.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizes {
    /// `var.alloy_cpu` / `var.alloy_memory`: the rendered tfvars' value, else the default.
    pub alloy: Size,
    /// The ADOT sidecar's size in `infra/adot-sidecar.tf`; `None` once that file is pruned.
    pub adot: Option<Size>,
    /// `desired_count` of each service in `var.temporal_service_sizes` (tfvars, else default).
    pub desired_counts: BTreeMap<String, u32>,
}

pub fn read_sizes(root: &Path, tfvars: &str) -> anyhow::Result<Sizes> {
    let variables_path = root.join("infra/variables.tf");
    let variables = read(&variables_path)?;
    let number = |name: &str| -> anyhow::Result<f64> {
        assignment(tfvars, name)
            .or_else(|| variable_default(&variables, name))
            .ok_or_else(|| format_err!("{}: no numeric default for variable `{name}`", variables_path.display()))
    };
    let alloy = Size { cpu: number("alloy_cpu")?, memory: number("alloy_memory")? };

    let adot_path = root.join("infra/adot-sidecar.tf");
    let adot = if adot_path.is_file() {
        let text = read(&adot_path)?;
        let anchors = ["adot_sidecars = {", "container = {"];
        let get = |key| {
            number_after(&text, &anchors, key).ok_or_else(|| {
                format_err!("{}: no `{key} = <number>` in local.adot_sidecars' container", adot_path.display())
            })
        };
        Some(Size { cpu: get("cpu")?, memory: get("memory")? })
    } else {
        None
    };

    let sizes_block = block_after(tfvars, "temporal_service_sizes = {")
        .or_else(|| block_after(variable_block(&variables, "temporal_service_sizes")?, "default = {"))
        .ok_or_else(|| format_err!("{}: no default for variable `temporal_service_sizes`", variables_path.display()))?;
    let mut desired_counts = BTreeMap::new();
    for (service, attributes) in object_entries(sizes_block) {
        let count = attributes.get("desired_count").copied().ok_or_else(|| {
            format_err!("{}: temporal_service_sizes.{service} has no desired_count", variables_path.display())
        })?;
        desired_counts.insert(service, count as u32);
    }
    Ok(Sizes { alloy, adot, desired_counts })
}

/// Used by the lifecycle property test (`crate::checks::proptests`).
#[cfg(test)]
/// N in the chunk expiration rule's `days = var.loki_retention_days + N` (infra/loki-s3.tf): the
/// days the lifecycle rule waits beyond retention (req 2.3).
pub fn lifecycle_margin_days(root: &Path) -> anyhow::Result<u32> {
    let path = root.join("infra/loki-s3.tf");
    let text = read(&path)?;
    let expiration = block_after(&text, "expiration {")
        .ok_or_else(|| format_err!("{}: no `expiration {{` block in the lifecycle rule", path.display()))?;
    let days = expiration
        .lines()
        .find_map(|line| line.trim().strip_prefix("days").map(|rest| rest.trim_start().trim_start_matches('=').trim()))
        .ok_or_else(|| format_err!("{}: the expiration block has no `days`", path.display()))?;
    let margin = days
        .strip_prefix("var.loki_retention_days")
        .map(|rest| rest.trim())
        .and_then(|rest| rest.strip_prefix('+'))
        .and_then(|n| n.trim().parse::<u32>().ok());
    match margin {
        Some(margin) => Ok(margin),
        None => anyhow::bail!(
            "{}: expiration days is `{days}`; expected `var.loki_retention_days + <days>` (req 2.3: retention + 2 or more)",
            path.display()
        ),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A top-level `name = <number>` (tfvars).
pub fn assignment(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// The text of `variable "<name>" {` up to the next top-level block.
fn variable_block<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let start = text.find(&format!("variable \"{name}\" {{"))?;
    let body = &text[start..];
    let end = body[1..].find("\nvariable \"").map(|i| i + 1).unwrap_or(body.len());
    Some(&body[..end])
}

fn variable_default(text: &str, name: &str) -> Option<f64> {
    assignment(variable_block(text, name)?, "default")
}

/// The first `key = <number>` after each anchor in turn has been found.
fn number_after(text: &str, anchors: &[&str], key: &str) -> Option<f64> {
    let mut rest = text;
    for anchor in anchors {
        rest = &rest[rest.find(anchor)? + anchor.len()..];
    }
    assignment(rest, key)
}

/// The body between the `{` that ends `opening` and its matching `}`.
fn block_after<'t>(text: &'t str, opening: &str) -> Option<&'t str> {
    let start = text.find(opening)? + opening.len();
    let mut depth = 1;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `key = { a = 1, b = 2 }` lines of an object body: key → attribute → number.
fn object_entries(body: &str) -> Vec<(String, BTreeMap<String, f64>)> {
    body.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let inner = value.trim().strip_prefix('{')?.strip_suffix('}')?;
            let attributes = inner
                .split(',')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.trim().to_string(), v.trim().parse().ok()?))
                })
                .collect();
            Some((key.trim().trim_matches('"').to_string(), attributes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is in the repository")
    }

    #[test]
    fn reads_the_committed_terraform() {
        let sizes = read_sizes(repo_root(), "").unwrap();
        assert!(sizes.alloy.cpu >= 64.0 && sizes.alloy.memory >= 128.0, "{sizes:?}");
        assert_eq!(sizes.desired_counts.len(), 5, "{sizes:?}");
        assert!(lifecycle_margin_days(repo_root()).unwrap() >= 2);
    }

    #[test]
    fn tfvars_override_the_defaults() {
        let tfvars = "alloy_cpu    = 256\nalloy_memory = 512\ntemporal_service_sizes = {\n  history = { cpu = 1024, memory = 2048, desired_count = 3 }\n}\n";
        let sizes = read_sizes(repo_root(), tfvars).unwrap();
        assert_eq!(sizes.alloy, Size { cpu: 256.0, memory: 512.0 });
        assert_eq!(sizes.desired_counts.get("history"), Some(&3));
    }

    #[test]
    fn object_entries_read_quoted_keys() {
        let body = "\n  worker = { cpu = 512, memory = 1024, desired_count = 2 }\n  \"benchmark-worker\" = { cpu = 512, memory = 1024, desired_count = 0 }\n";
        let entries = object_entries(body);
        assert_eq!(entries[1].0, "benchmark-worker");
        assert_eq!(entries[0].1["desired_count"], 2.0);
    }
}

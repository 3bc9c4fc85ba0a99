//! Renders `templates/*.tera` and `terraform.tfvars` for every environment in `envs/` into
//! `rendered/<env>/`, each file with a header naming the command that made it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use settings::{Environment, SERVICE_NAMES};

mod tfvars;
pub use tfvars::tfvars;

/// The environment whose rendered tfvars are also published as `infra/terraform.tfvars.example`.
pub const EXAMPLE_ENV: &str = "example";

/// Templates rendered once per sidecar: the output name with `{service}` filled in.
const PER_SERVICE: &[(&str, &str)] = &[("alloy-sidecar.alloy.tera", "alloy-{service}.alloy")];

/// Services that get a per-service file: the Temporal services and Loki's own sidecar (req 9.2).
pub fn sidecar_services() -> impl Iterator<Item = &'static str> {
    SERVICE_NAMES.into_iter().chain(["loki"])
}

/// A file the render produces: its path relative to the repository root and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
}

/// Everything the render produces for all environments.
pub fn render_all(root: &Path) -> anyhow::Result<Vec<RenderedFile>> {
    let templates = Templates::load(root)?;
    let mut files = Vec::new();
    for env in settings::load_all(root)? {
        files.extend(templates.render_env(&env)?);
        if env.name == EXAMPLE_ENV {
            files.push(RenderedFile {
                path: PathBuf::from("infra/terraform.tfvars.example"),
                contents: with_header(&tfvars(&env), "# ", "envs/example.toml"),
            });
        }
    }
    Ok(files)
}

/// The rendered templates of one environment.
pub fn render_env(root: &Path, env: &Environment) -> anyhow::Result<Vec<RenderedFile>> {
    Templates::load(root)?.render_env(env)
}

struct Templates {
    tera: tera::Tera,
    names: Vec<String>,
}

impl Templates {
    fn load(root: &Path) -> anyhow::Result<Templates> {
        let dir = root.join("templates");
        let mut tera = tera::Tera::default();
        // Output is YAML, Alloy and HCL, not HTML.
        tera.autoescape_on(vec![]);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if !name.ends_with(".tera") {
                continue;
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            tera.add_raw_template(name, &text)
                .map_err(|err| anyhow::format_err!("templates/{name}: {}", tera_error_chain(&err)))?;
            names.push(name.to_string());
        }
        names.sort();
        Ok(Templates { tera, names })
    }

    fn render_env(&self, env: &Environment) -> anyhow::Result<Vec<RenderedFile>> {
        let out_dir = Path::new("rendered").join(&env.name);
        let source = format!("envs/{}.toml", env.name);
        let mut context = tera::Context::from_serialize(&env.settings)?;
        context.insert("env_name", &env.name);
        context.insert("loki_container_memory", &env.settings.loki_container_memory());
        context.insert("task_memory_headroom", &settings::TASK_MEMORY_HEADROOM);
        let budget = settings::capacity::Capacity::of_env(&env.settings).memory;
        context.insert("loki_memory_budget", &budget);
        context.insert("loki_caches_mb", &budget.caches());
        context.insert("query_reserve_mb", &settings::capacity::QUERY_RESERVE_MB);
        let mut files = Vec::new();
        for name in &self.names {
            let targets: Vec<(String, Option<&str>)> = match PER_SERVICE.iter().find(|(t, _)| t == name) {
                Some((_, pattern)) => sidecar_services().map(|s| (pattern.replace("{service}", s), Some(s))).collect(),
                None => vec![(name.trim_end_matches(".tera").to_string(), None)],
            };
            for (output, service) in targets {
                let mut context = context.clone();
                if let Some(service) = service {
                    context.insert("service", service);
                }
                let text = self.tera.render(name, &context).map_err(|err| {
                    anyhow::format_err!("rendering templates/{name} for {source}: {}", tera_error_chain(&err))
                })?;
                let prefix = comment_prefix(&output)?;
                files.push(RenderedFile {
                    path: out_dir.join(&output),
                    contents: with_header(&text, prefix, &format!("templates/{name} and {source}")),
                });
            }
        }
        files.push(RenderedFile {
            path: out_dir.join("terraform.tfvars"),
            contents: with_header(&tfvars(env), "# ", &source),
        });
        Ok(files)
    }
}

fn comment_prefix(output: &str) -> anyhow::Result<&'static str> {
    let ext = output.rsplit('.').next().unwrap_or("");
    Ok(match ext {
        "yaml" | "yml" | "tfvars" | "hcl" | "conf" => "# ",
        "alloy" => "// ",
        _ => {
            bail!("{output}: no comment syntax known for `.{ext}` files, so it cannot carry the generated-file header")
        }
    })
}

/// The first line of every rendered file.
pub fn header(prefix: &str, source: &str) -> String {
    format!("{prefix}Generated by `cargo xtask render` from {source}; do not edit.\n")
}

fn with_header(text: &str, prefix: &str, source: &str) -> String {
    let mut out = header(prefix, source);
    out.push_str(text.trim_end());
    out.push('\n');
    out
}

/// Tera hides the useful part of a failure in its source chain.
fn tera_error_chain(err: &tera::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

/// What differs between the render and the files on disk.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Files whose contents differ or that are missing.
    pub stale: Vec<PathBuf>,
    /// Files under `rendered/` that the render no longer produces.
    pub orphans: Vec<PathBuf>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.stale.is_empty() && self.orphans.is_empty()
    }
}

/// Compares the render with the files on disk.
pub fn drift(root: &Path, files: &[RenderedFile]) -> anyhow::Result<Drift> {
    let mut drift = Drift::default();
    for file in files {
        let on_disk = std::fs::read_to_string(root.join(&file.path)).ok();
        if on_disk.as_deref() != Some(file.contents.as_str()) {
            drift.stale.push(file.path.clone());
        }
    }
    let expected: BTreeSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    for path in files_below(root, Path::new("rendered"))? {
        if !expected.contains(path.as_path()) {
            drift.orphans.push(path);
        }
    }
    Ok(drift)
}

/// Writes the render: changed files are replaced, orphans removed. Returns what changed.
pub fn write(root: &Path, files: &[RenderedFile]) -> anyhow::Result<Drift> {
    let drift = drift(root, files)?;
    for file in files.iter().filter(|f| drift.stale.contains(&f.path)) {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        settings::write_atomically(&path, &file.contents)?;
    }
    for orphan in &drift.orphans {
        let path = root.join(orphan);
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(drift)
}

fn files_below(root: &Path, rel: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let dir = root.join(rel);
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let rel_path = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            out.extend(files_below(root, &rel_path)?);
        } else {
            out.push(rel_path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;

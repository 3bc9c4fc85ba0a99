//! `cargo xtask cleanup-adot`: plan phase 4 (8.1). Removes the ADOT resources of an environment
//! once every service runs Alloy and checkpoint 5 passes; the CloudWatch log groups stay (8.3, 8.5).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use settings::{Collector, Environment};

use crate::checks::report::Report;
use crate::commands::verify::{
    checkpoints::{run_checkpoint, Checkpoint},
    parity,
};
use crate::commands::Target;
use crate::live::Live;
use crate::phase::{self, Change, Outcome, PhaseSpec, Scope};
use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub target: Target,
    /// Also delete the ADOT Terraform and template from the repository (only when no env uses ADOT)
    #[arg(long)]
    pub prune_code: bool,
}

/// Files that exist only for ADOT; `--prune-code` deletes them.
const ADOT_FILES: &[&str] = &["infra/adot-sidecar.tf", "templates/adot-sidecar-config.yaml.tera"];
/// Files with ADOT blocks between these marker lines; `--prune-code` deletes the blocks.
const BLOCK_START: &str = "# >>> adot";
const BLOCK_END: &str = "# <<< adot";

impl CleanupArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let env = Environment::load(&project.root, &self.target.env).map_err(usage)?;
        if self.prune_code {
            // Before the cleanup's own dry run or apply: it cleans this env, not the others.
            others_without_adot(project, Some(&env.name))?;
        }
        if env.settings.adot.enabled {
            let spec = spec(project, &env);
            if !self.target.execute {
                phase::dry_run(project, &env, &spec)?;
            } else {
                spec.ready()?;
                remove_adot(project, env.clone(), &spec)?;
            }
        } else {
            println!("The ADOT resources of `{}` are already removed (adot.enabled = false).", env.name);
        }
        if self.prune_code {
            prune_code(project, self.target.execute)?;
        }
        Ok(())
    }
}

/// Phase 4. Waits only for the enabled services: a disabled one has no task and no sidecar, so
/// its collector moves to alloy in the same edit as `adot.enabled = false`. Refused without a
/// recent passing parity run (`verify parity`): ADOT goes only once Loki has held every line.
fn spec(project: &Project, env: &Environment) -> PhaseSpec {
    let parity = parity::gate(project, env);
    let disabled_on_adot: Vec<&'static str> = env
        .settings
        .services
        .iter()
        .filter(|(_, s)| !s.enabled && s.collector == Collector::Adot)
        .map(|(n, _)| n)
        .collect();
    PhaseSpec {
        title: "cleanup adot".into(),
        scope: Scope::Adot { disabled: disabled_on_adot.clone() },
        change: Change::DisableAdot { to_alloy: disabled_on_adot },
        ecs_service_output: None,
        checkpoint_name: format!(
            "checkpoint 5 for every enabled service first (parity: {}); after: no ADOT SSM parameter left, log groups untouched",
            parity.as_ref().unwrap_or_else(|why| why)
        ),
        timeout: Duration::from_secs(0),
        not_yet: phase::order::out_of_order(env).or_else(|| phase::order::services_migrated(env).err()).or_else(|| parity.err()),
    }
}

fn remove_adot(project: &Project, env: Environment, spec: &PhaseSpec) -> anyhow::Result<()> {
    let live = Live::connect(project, env)?;
    let before = run_checkpoint(&live, Checkpoint::Five { service: None })?;
    eprint!("{}", before.table());
    if !before.passed() {
        bail!(
            "refusing: checkpoint 5 fails (table above), so Alloy is not yet a full replacement; nothing was removed"
        );
    }
    let log_groups_before = log_groups(&live)?;
    let verify_cleanup = |live: &Live| {
        let mut report = Report::new("cleanup-adot");
        report.check("no ADOT SSM parameter left", no_adot_parameters(live));
        report.check("CloudWatch log groups untouched", {
            log_groups(live).and_then(|after| {
                let missing: Vec<&String> = log_groups_before.iter().filter(|g| !after.contains(g)).collect();
                if missing.is_empty() {
                    Ok(format!("{} log groups still there", log_groups_before.len()))
                } else {
                    let names: Vec<&str> = missing.iter().map(|g| g.as_str()).collect();
                    Err(anyhow::format_err!("log groups disappeared: {}", names.join(", ")))
                }
            })
        });
        Ok(report)
    };
    let outcome = phase::execute(&live, spec, &verify_cleanup, &|| Ok(()))?;
    match outcome {
        Outcome::Recorded => {
            println!("ADOT is gone from `{}`; the CloudWatch log groups stay for rollback.", live.env.name);
            Ok(())
        }
        Outcome::CheckFailed => {
            bail!("the cleanup did not verify (table above); {} is unchanged", project.rel(&live.env.path).display())
        }
    }
}

/// The services' CloudWatch log groups as Terraform knows them.
fn log_groups(live: &Live) -> anyhow::Result<Vec<String>> {
    let services = live.outputs()?["temporal_services"].as_object().cloned().unwrap_or_default();
    let names: Vec<String> =
        services.values().filter_map(|s| s["log_group_name"].as_str().map(str::to_string)).collect();
    let mut found = Vec::new();
    for name in names {
        let answer = live.api.json_all(
            format!("look up log group {name}"),
            &probes::aws::LOGS,
            "DescribeLogGroups",
            serde_json::json!({"logGroupNamePrefix": name}),
            "logGroups",
        )?;
        let exists = answer["logGroups"]
            .as_array()
            .is_some_and(|groups| groups.iter().any(|g| g["logGroupName"] == name.as_str()));
        if exists {
            found.push(name);
        }
    }
    Ok(found)
}

fn no_adot_parameters(live: &Live) -> anyhow::Result<String> {
    let path = format!("/{}/adot", live.env.settings.project.name);
    let answer = live.api.json_all(
        format!("list SSM parameters under {path}"),
        &probes::aws::SSM,
        "GetParametersByPath",
        serde_json::json!({"Path": path, "Recursive": true}),
        "Parameters",
    )?;
    let left: Vec<&str> = answer["Parameters"]
        .as_array()
        .map(|p| p.iter().filter_map(|x| x["Name"].as_str()).collect())
        .unwrap_or_default();
    if left.is_empty() {
        Ok(format!("nothing under {path}"))
    } else {
        bail!("still there: {}", left.join(", "))
    }
}

/// The committed examples (`example`, the template `init` copies, and `*-example`) are deployed
/// nowhere: `--prune-code` edits them rather than waiting for their cleanup.
fn is_example(name: &str) -> bool {
    name == "example" || name.ends_with("-example")
}

/// Every environment (but the examples and `except`) has ADOT off, or which ones still have it.
fn others_without_adot(project: &Project, except: Option<&str>) -> anyhow::Result<Vec<Environment>> {
    let envs = settings::load_all(&project.root).map_err(usage)?;
    let still: Vec<&str> = envs
        .iter()
        .filter(|e| e.settings.adot.enabled && !is_example(&e.name) && Some(e.name.as_str()) != except)
        .map(|e| e.name.as_str())
        .collect();
    if !still.is_empty() {
        bail!(usage(format!(
            "refusing --prune-code: environments {} still have ADOT (adot.enabled = true); run cleanup-adot for each first",
            still.join(", ")
        )));
    }
    Ok(envs)
}

/// Deletes the ADOT code once no environment uses it; all or nothing, validated after.
fn prune_code(project: &Project, execute: bool) -> anyhow::Result<()> {
    let envs = others_without_adot(project, None)?;
    let mut edits = pruned_files(&project.root)?;
    // The examples go to Alloy with the code, so `init` starts new environments without ADOT.
    for example in envs.iter().filter(|e| is_example(&e.name) && e.settings.adot.enabled) {
        let to_alloy = example.settings.services.iter().filter(|(_, s)| s.collector == Collector::Adot);
        let change = Change::DisableAdot { to_alloy: to_alloy.map(|(n, _)| n).collect() };
        edits.push((example.path.clone(), Some(change.edited(&example.path)?)));
    }
    edits.sort();
    if !execute {
        println!("--prune-code would delete or edit:");
        for (path, new) in &edits {
            println!("  {} {}", if new.is_some() { "edit  " } else { "delete" }, project.rel(path).display());
        }
        return Ok(());
    }
    let originals: Vec<(PathBuf, String)> =
        edits.iter().map(|(p, _)| Ok((p.clone(), std::fs::read_to_string(p)?))).collect::<anyhow::Result<_>>()?;
    let result = (|| {
        for (path, new) in &edits {
            match new {
                Some(text) => settings::write_atomically(path, text)?,
                None => std::fs::remove_file(path).with_context(|| format!("deleting {}", path.display()))?,
            }
        }
        let files = render::render_all(&project.root)?;
        render::write(&project.root, &files)?;
        phase::validate_offline(project)
    })();
    if let Err(err) = result {
        for (path, text) in &originals {
            settings::write_atomically(path, text)?;
        }
        render::write(&project.root, &render::render_all(&project.root)?)?;
        return Err(err.context("pruning the ADOT code broke the configuration; every file was restored"));
    }
    println!("ADOT code removed; review and commit the change");
    Ok(())
}

/// Each file the prune touches: `None` to delete it, or its text without the ADOT blocks.
fn pruned_files(root: &Path) -> anyhow::Result<Vec<(PathBuf, Option<String>)>> {
    let mut edits: Vec<(PathBuf, Option<String>)> =
        ADOT_FILES.iter().map(|f| root.join(f)).filter(|p| p.exists()).map(|p| (p, None)).collect();
    for dir in ["infra", "infra/modules/temporal-service", "infra/tests", "templates"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for entry in entries {
            let path = entry?.path();
            if !path.is_file() || edits.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains(BLOCK_START) {
                edits.push((path.clone(), Some(without_blocks(&text).with_context(|| format!("{}", path.display()))?)));
            }
        }
    }
    edits.sort();
    Ok(edits)
}

/// The text without its `# >>> adot` … `# <<< adot` blocks (marker lines included).
fn without_blocks(text: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(BLOCK_START) {
            if inside {
                bail!("nested `{BLOCK_START}` marker");
            }
            inside = true;
        } else if trimmed.starts_with(BLOCK_END) {
            if !inside {
                bail!("`{BLOCK_END}` without `{BLOCK_START}`");
            }
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    if inside {
        bail!("`{BLOCK_START}` without `{BLOCK_END}`");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{is_example, without_blocks};

    #[test]
    fn the_committed_examples_are_known_by_name() {
        assert!(is_example("example") && is_example("ha-example"));
        assert!(!is_example("dev") && !is_example("examples") && !is_example("example-prod"));
    }

    #[test]
    fn blocks_go_with_their_markers() {
        let text = "a\n  # >>> adot: why\n  adot = 1\n  # <<< adot\nb\n";
        assert_eq!(without_blocks(text).unwrap(), "a\nb\n");
        assert!(without_blocks("# >>> adot\nx\n").is_err());
        assert!(without_blocks("# <<< adot\n").is_err());
    }
}

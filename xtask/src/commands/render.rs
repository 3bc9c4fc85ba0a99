//! `cargo xtask render [--check]`

use anyhow::bail;
use clap::Args;

use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Don't write: fail (exit 1) when a rendered file is stale, missing or left over
    #[arg(long)]
    pub check: bool,
    /// Environment name: envs/<ENV>.toml must load (every env is rendered: they share templates)
    #[arg(long, short)]
    pub env: Option<String>,
}

impl RenderArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        // `--env` as every other command takes it: that env must load; all are rendered.
        if let Some(env) = &self.env {
            settings::Environment::load(&project.root, env).map_err(usage)?;
        }
        if self.check {
            return check_rendered(project);
        }
        let files = render::render_all(&project.root).map_err(usage)?;
        let changed = render::write(&project.root, &files)?;
        for path in &changed.stale {
            println!("updated {}", path.display());
        }
        for path in &changed.orphans {
            println!("removed {} (no longer rendered)", path.display());
        }
        println!("{} files rendered, {} changed", files.len(), changed.stale.len() + changed.orphans.len());
        Ok(())
    }
}

/// Fails when a rendered file differs from what the templates and env files produce now.
pub fn check_rendered(project: &Project) -> anyhow::Result<()> {
    let files = render::render_all(&project.root).map_err(usage)?;
    let drift = render::drift(&project.root, &files)?;
    if drift.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = drift.stale.iter().map(|p| format!("stale or missing: {}", p.display())).collect();
    lines.extend(drift.orphans.iter().map(|p| format!("no longer rendered: {}", p.display())));
    bail!("rendered files are out of date:\n  {}\nrun `cargo xtask render` and commit the result", lines.join("\n  "))
}

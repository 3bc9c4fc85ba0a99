//! `cargo xtask deploy loki|grafana`: plan phases 1 and 3.

use std::time::Duration;

use anyhow::bail;
use settings::Environment;

use crate::cli::{DeployArgs, DeployTarget};
use crate::live::Live;
use crate::phase::{self, Change, Outcome, PhaseSpec, Scope};
use crate::project::{usage, Project};
use crate::verify::{run_checkpoint, Checkpoint};

impl DeployArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let env = Environment::load(&project.root, &self.target.env).map_err(usage)?;
        let timeout = Duration::from_secs(self.timeout);
        match self.what {
            DeployTarget::Loki => deploy_loki(project, env, self.target.execute, timeout),
            DeployTarget::Grafana => deploy_grafana(project, env, self.target.execute, timeout),
        }
    }
}

fn loki_spec(timeout: Duration) -> PhaseSpec {
    PhaseSpec {
        title: "deploy loki".into(),
        change: Change::EnableLoki,
        scope: Scope::Loki,
        ecs_service_output: Some("loki_service_name".into()),
        checkpoint_name: "checkpoint 2 (Loki stable and ready, S3 writes proven)".into(),
        timeout,
    }
}

fn deploy_loki(project: &Project, env: Environment, execute: bool, timeout: Duration) -> anyhow::Result<()> {
    let spec = loki_spec(timeout);
    if !execute {
        return phase::dry_run(project, &env, &spec);
    }
    phase::render_status(project, &env, true)?;
    let live = Live::connect(project, env)?;
    match phase::execute(&live, &spec, &|live| run_checkpoint(live, Checkpoint::Two))? {
        Outcome::Recorded => {
            println!("Loki is deployed and passed checkpoint 2. Next: `cargo xtask migrate-sidecars --env {}`", live.env.name);
            Ok(())
        }
        Outcome::CheckFailed => bail!(
            "checkpoint 2 failed (table above); Loki stays deployed and {} is unchanged; fix the cause and rerun `cargo xtask deploy loki --env {} --execute`",
            project.rel(&live.env.path).display(),
            live.env.name
        ),
    }
}

fn deploy_grafana(_project: &Project, _env: Environment, _execute: bool, _timeout: Duration) -> anyhow::Result<()> {
    bail!("deploy grafana is not wired yet")
}

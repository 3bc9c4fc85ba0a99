//! `cargo xtask deploy loki|grafana`: plan phases 1 and 3.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use settings::Environment;

use crate::commands::verify::checkpoints::{run_checkpoint, Checkpoint};
use crate::commands::Target;
use crate::live::Live;
use crate::phase::{self, Change, Outcome, PhaseSpec, Scope};
use crate::project::{usage, Project};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeployTarget {
    /// The fleet as the env file describes it (Temporal services with their current collectors,
    /// Grafana's repository and secret): the state the migration starts from
    Baseline,
    /// Loki: bucket, roles, security group, task, service (plan phase 1, then checkpoint 2)
    Loki,
    /// Grafana: image already pushed with build-grafana, service (then checkpoint 7)
    Grafana,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    pub what: DeployTarget,
    #[command(flatten)]
    pub target: Target,
    /// Longest wait for the ECS service to become stable, in seconds (1-86400)
    #[arg(long, default_value_t = 900, allow_negative_numbers = true, value_parser = clap::builder::RangedI64ValueParser::<u64>::new().range(1..=86_400))]
    pub timeout: u64,
}

impl DeployArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let env = Environment::load(&project.root, &self.target.env).map_err(usage)?;
        let timeout = Duration::from_secs(self.timeout);
        match self.what {
            DeployTarget::Baseline => deploy_baseline(project, env, self.target.execute, timeout),
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
        not_yet: None,
    }
}

fn deploy_loki(project: &Project, env: Environment, execute: bool, timeout: Duration) -> anyhow::Result<()> {
    let spec = loki_spec(timeout);
    if !execute {
        return phase::dry_run(project, &env, &spec);
    }
    phase::render_status(project, &env, true)?;
    let live = Live::connect(project, env)?;
    match phase::execute(&live, &spec, &|live| run_checkpoint(live, Checkpoint::Two), &|| Ok(()))? {
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

fn baseline_spec(timeout: Duration) -> PhaseSpec {
    PhaseSpec {
        title: "deploy baseline".into(),
        change: Change::Baseline,
        scope: Scope::Everything,
        ecs_service_output: None,
        checkpoint_name: "no checkpoint (the fleet as it was: CloudWatch and ADOT)".into(),
        timeout,
        not_yet: None,
    }
}

/// Brings AWS to what the env file says: how a new environment starts, and how an existing fleet
/// is brought in line before the migration. Still refuses to delete a log group.
fn deploy_baseline(project: &Project, env: Environment, execute: bool, timeout: Duration) -> anyhow::Result<()> {
    let spec = baseline_spec(timeout);
    if !execute {
        return phase::dry_run(project, &env, &spec);
    }
    phase::render_status(project, &env, true)?;
    let live = Live::connect(project, env)?;
    phase::execute(&live, &spec, &|_| Ok(crate::checks::report::Report::new("baseline")), &|| Ok(()))?;
    println!(
        "The fleet matches {}. Next: `cargo xtask deploy loki --env {}`",
        project.rel(&live.env.path).display(),
        live.env.name
    );
    Ok(())
}

/// The image `build-grafana` pushes for this commit, in the env's repository.
fn grafana_tag(project: &Project) -> anyhow::Result<String> {
    let version = crate::commands::build_grafana::grafana_version(project, &project.root.join("grafana"))?;
    let commit = crate::commands::build_grafana::commit(&project.root, false)?;
    Ok(format!("{version}-{commit}"))
}

fn grafana_spec(env: &Environment, image: String, timeout: Duration) -> PhaseSpec {
    PhaseSpec {
        title: "deploy grafana".into(),
        change: Change::Image { key: "grafana_image".into(), image },
        scope: Scope::Grafana,
        ecs_service_output: Some("grafana_service_name".into()),
        checkpoint_name: "checkpoint 7 (Loki datasource by uid, a LogQL query through Grafana returns lines)".into(),
        timeout,
        // Grafana's datasource is Loki: without it checkpoint 7 cannot pass.
        not_yet: phase::order::loki_deployed(env).err(),
    }
}

/// The image `build-grafana --execute` pushed for this commit, or why it cannot be deployed yet.
fn pushed_image(live: &Live, tag: &str) -> anyhow::Result<Result<String, String>> {
    let repository = live.output_str("grafana_ecr_repository_url", "cargo xtask deploy baseline")?;
    let name = repository.rsplit('/').next().unwrap_or(&repository).to_string();
    let asked = live.api.json(
        format!("check that {repository}:{tag} was pushed"),
        &probes::aws::ECR,
        "DescribeImages",
        serde_json::json!({"repositoryName": name, "imageIds": [{"imageTag": tag}]}),
    );
    match asked {
        Ok(_) => Ok(Ok(format!("{repository}:{tag}"))),
        Err(err)
            if err.downcast_ref::<probes::aws::Refused>().is_some_and(|refused| {
                ["ImageNotFoundException", "RepositoryNotFoundException"].contains(&refused.kind.as_str())
            }) =>
        {
            Ok(Err(format!(
                "{repository}:{tag} is not in ECR; run `cargo xtask build-grafana --env {} --execute` first",
                live.env.name
            )))
        }
        // Access denied, an expired session, …: not an answer about the image.
        Err(err) => Err(err),
    }
}

/// Plan phase 3: runs the image `build-grafana --execute` pushed for this commit.
fn deploy_grafana(project: &Project, env: Environment, execute: bool, timeout: Duration) -> anyhow::Result<()> {
    let tag = grafana_tag(project)?;
    let preview = grafana_spec(&env, format!("<output grafana_ecr_repository_url>:{tag}"), timeout);
    if !execute {
        return phase::dry_run_with(project, &env, &preview, &|live| Ok(pushed_image(live, &tag)?.map(drop)));
    }
    preview.ready()?;
    phase::render_status(project, &env, true)?;
    let live = Live::connect(project, env)?;
    let image = pushed_image(&live, &tag)?.map_err(|why| usage(format!("{} cannot run yet: {why}", preview.title)))?;
    let spec = grafana_spec(&live.env, image.clone(), timeout);
    match phase::execute(&live, &spec, &|live| run_checkpoint(live, Checkpoint::Seven), &|| Ok(()))? {
        Outcome::Recorded => {
            let next = match phase::order::enabled_on_adot(&live.env).is_empty() {
                true => format!("`cargo xtask cleanup-adot --env {}`", live.env.name),
                false => format!("`cargo xtask migrate-sidecars --env {}`", live.env.name),
            };
            println!("Grafana runs {image} and passed checkpoint 7. Next: {next}");
            Ok(())
        }
        Outcome::CheckFailed => bail!(
            "checkpoint 7 failed (table above); {} still names the previous image; fix the cause and rerun",
            project.rel(&live.env.path).display()
        ),
    }
}

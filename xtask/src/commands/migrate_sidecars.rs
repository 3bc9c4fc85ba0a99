//! `cargo xtask migrate-sidecars`: plan phase 2, one service at a time (req 8.2).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use settings::{check_service_name, Collector, Environment};

use crate::commands::verify::checkpoints::{run_checkpoint, Checkpoint};
use crate::commands::Target;
use crate::live::Live;
use crate::phase::{self, Change, Outcome, PhaseSpec, Scope};
use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub target: Target,
    /// Migrate only this service (history, matching, frontend, worker, benchmark-worker)
    #[arg(long, conflicts_with = "all")]
    pub service: Option<String>,
    /// Migrate every remaining service, one after another (worker first)
    #[arg(long)]
    pub all: bool,
    /// Longest wait for each ECS service to become stable, in seconds (1-86400)
    #[arg(long, default_value_t = 900, allow_negative_numbers = true, value_parser = clap::builder::RangedI64ValueParser::<u64>::new().range(1..=86_400))]
    pub timeout: u64,
}

impl MigrateArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        // Offline first: the arguments, the env file, the phase order; credentials last.
        let asked = self.service.as_deref().map(check_service_name).transpose().map_err(usage)?;
        let env = Environment::load(&project.root, &self.target.env).map_err(usage)?;
        let not_yet = phase::order::loki_deployed(&env).err();
        let journal = Journal::new(project, &env);
        let in_flight = journal.read()?;
        let Some(services) = self.services(&env, asked, in_flight.as_deref()) else {
            return Ok(());
        };
        if services.is_empty() {
            println!(
                "Every enabled service in `{}` already runs Alloy. Next: {}",
                env.name,
                phase::order::next_after_migration(&env)
            );
            return Ok(());
        }
        if let Some(service) = &in_flight {
            eprintln!("Resuming: the last run stopped while moving {service} to Alloy; it goes first.");
        }
        let timeout = Duration::from_secs(self.timeout);
        let specs: Vec<PhaseSpec> =
            services.iter().map(|service| PhaseSpec { not_yet: not_yet.clone(), ..spec(service, timeout) }).collect();
        if !self.target.execute {
            for spec in &specs {
                phase::dry_run(project, &env, spec)?;
            }
            return Ok(());
        }
        specs[0].ready()?;
        phase::render_status(project, &env, true)?;
        let mut live = Live::connect(project, env)?;
        for service in services {
            migrate_one(&live, &journal, service, timeout)?;
            // The env file changed: later services plan from what it says now.
            live.env = Environment::load(&project.root, &live.env.name)?;
        }
        Ok(())
    }

    /// The services to move, in order: the one a stopped run left half-done, then the asked ones
    /// (`--service`, every remaining one with `--all`, else the next one in migration order).
    /// `None` when the asked service needs no move (said why).
    fn services(
        &self,
        env: &Environment,
        asked: Option<&'static str>,
        in_flight: Option<&str>,
    ) -> Option<Vec<&'static str>> {
        let remaining = phase::order::enabled_on_adot(env);
        let mut chosen: Vec<&'static str> = match (asked, self.all) {
            (Some(name), _) => {
                let service = env.settings.services.get(name).expect("known name");
                if !service.enabled {
                    println!(
                        "{name} is disabled in `{}` (services.{name}.enabled = false): it has no task, so there is no sidecar to move; \
                         cleanup-adot records it on alloy with the ADOT resources. Next: {}",
                        env.name,
                        next_step(env, &remaining)
                    );
                    return None;
                }
                if service.collector == Collector::Alloy {
                    println!("{name} already runs Alloy in `{}`.", env.name);
                    // Unless a stopped run left another service half-done: that one resumes.
                    if in_flight.is_none_or(|n| !remaining.contains(&n)) {
                        println!("Next: {}", next_step(env, &remaining));
                        return None;
                    }
                    vec![]
                } else {
                    vec![name]
                }
            }
            (None, true) => remaining.clone(),
            (None, false) => remaining.first().copied().into_iter().collect(),
        };
        if let Some(name) = in_flight.and_then(|n| remaining.iter().copied().find(|r| *r == n)) {
            chosen.retain(|s| *s != name);
            chosen.insert(0, name);
        }
        Some(chosen)
    }
}

/// What to run next once the asked service needs no move.
fn next_step(env: &Environment, remaining: &[&str]) -> String {
    if remaining.is_empty() {
        return phase::order::next_after_migration(env);
    }
    format!("`cargo xtask migrate-sidecars --env {} --all` (still on ADOT: {})", env.name, remaining.join(", "))
}

fn spec(service: &'static str, timeout: Duration) -> PhaseSpec {
    PhaseSpec {
        title: format!("migrate {service} to alloy"),
        change: Change::Collector { service, collector: Collector::Alloy },
        scope: Scope::Service(service),
        ecs_service_output: Some(format!("temporal_services.{service}.service_name")),
        checkpoint_name: format!(
            "checkpoint 5 for {service} (logs in Loki with labels, metrics in AMP, quiet sidecar)"
        ),
        timeout,
        not_yet: None,
    }
}

/// Moves one service; on a failed check puts it back on ADOT and stops.
fn migrate_one(live: &Live, journal: &Journal, service: &'static str, timeout: Duration) -> anyhow::Result<()> {
    let spec = spec(service, timeout);
    crate::commands::verify::properties::snapshot_series(live, service)
        .unwrap_or_else(|err| eprintln!("  warning: no metrics snapshot of {service} for P3: {err:#}"));
    let checkpoint = |live: &Live| run_checkpoint(live, Checkpoint::Five { service: Some(service.to_string()) });
    let outcome = phase::execute(live, &spec, &checkpoint, &|| journal.start(service))?;
    match outcome {
        Outcome::Recorded => {
            journal.finish()?;
            println!("{service} runs Alloy and passed checkpoint 5.");
            Ok(())
        }
        Outcome::CheckFailed => {
            eprintln!("checkpoint 5 failed for {service}: rolling it back to ADOT");
            let rollback = PhaseSpec {
                title: format!("roll {service} back to adot"),
                change: Change::Collector { service, collector: Collector::Adot },
                ..spec
            };
            let plan = phase::plan(live, &rollback.change, &rollback.scope)?;
            phase::apply(live, &plan)?;
            if let Some(output) = &rollback.ecs_service_output {
                let name = live.output_str(output, &rollback.title)?;
                crate::live::ecs::wait_stable(&live.api, &live.env.settings.platform.ecs_cluster_name, &name, timeout)?;
            }
            journal.finish()?;
            bail!(
                "checkpoint 5 failed for {service} (table above); it is back on ADOT and {} is unchanged; fix the cause and rerun",
                live.project.rel(&live.env.path).display()
            )
        }
    }
}

/// Remembers the service being moved, so a rerun after Ctrl-C or a crash takes it up first.
struct Journal {
    path: PathBuf,
}

impl Journal {
    fn new(project: &Project, env: &Environment) -> Journal {
        Journal { path: project.root.join("infra/.terraform/envs").join(&env.name).join("migrating") }
    }

    fn read(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text.trim().to_string()).filter(|s| !s.is_empty())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    fn start(&self, service: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.path.parent().expect("journal has a folder"))?;
        settings::write_atomically(&self.path, service)
    }

    fn finish(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing {}", self.path.display()))
            }
            _ => Ok(()),
        }
    }
}

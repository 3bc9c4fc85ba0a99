//! `cargo xtask migrate-sidecars`: plan phase 2, one service at a time (req 8.2).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use settings::{check_service_name, Collector, Environment};

use crate::cli::MigrateArgs;
use crate::live::Live;
use crate::phase::{self, Change, Outcome, PhaseSpec, Scope};
use crate::project::{usage, Project};
use crate::verify::{run_checkpoint, Checkpoint};

impl MigrateArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let env = Environment::load(&project.root, &self.target.env).map_err(usage)?;
        if !env.settings.loki.enabled {
            bail!(usage(format!(
                "Loki is not deployed in `{}` (loki.enabled = false); run `cargo xtask deploy loki --env {} --execute` first",
                env.name, env.name
            )));
        }
        let journal = Journal::new(project, &env);
        let in_flight = journal.read()?;
        let services = self.services(&env, in_flight.as_deref())?;
        if services.is_empty() {
            println!(
                "Every enabled service in `{}` already runs Alloy. Next: `cargo xtask cleanup-adot --env {}`",
                env.name, env.name
            );
            return Ok(());
        }
        if let Some(service) = &in_flight {
            eprintln!("Resuming: the last run stopped while moving {service} to Alloy; it goes first.");
        }
        let timeout = Duration::from_secs(self.timeout);
        if !self.target.execute {
            for service in &services {
                phase::dry_run(project, &env, &spec(service, timeout))?;
            }
            return Ok(());
        }
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
    fn services(&self, env: &Environment, in_flight: Option<&str>) -> anyhow::Result<Vec<&'static str>> {
        let remaining: Vec<&'static str> = env
            .settings
            .services
            .iter()
            .filter(|(_, s)| s.enabled && s.collector == Collector::Adot)
            .map(|(name, _)| name)
            .collect();
        let mut chosen: Vec<&'static str> = match (&self.service, self.all) {
            (Some(name), _) => {
                let name = check_service_name(name).map_err(usage)?;
                let service = env.settings.services.get(name).expect("known name");
                if !service.enabled {
                    bail!(usage(format!("{name} is disabled in `{}` (services.{name}.enabled = false)", env.name)));
                }
                if service.collector == Collector::Alloy {
                    println!("{name} already runs Alloy in `{}`.", env.name);
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
        Ok(chosen)
    }
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
    }
}

/// Moves one service; on a failed check puts it back on ADOT and stops.
fn migrate_one(live: &Live, journal: &Journal, service: &'static str, timeout: Duration) -> anyhow::Result<()> {
    let spec = spec(service, timeout);
    crate::verify::properties::snapshot_series(live, service)
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
                crate::ecs::wait_stable(&live.api, &live.env.settings.platform.ecs_cluster_name, &name, timeout)?;
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

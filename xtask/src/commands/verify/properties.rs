//! `cargo xtask verify properties`: the plan's properties P1, P2, P3 and P5 checked against a
//! deployed environment, on the services the env file has on Alloy. A child of `verify`: it
//! shares its tunnels, AMP access and label checks. Not part of `verify all`: P1 writes lines
//! into a service's log and P5 restarts one of its sidecars.
//!
//! - **P1, ingestion completeness.** Through ECS Exec, `N` numbered lines carrying a unique run
//!   id are written to the stdout of the main container of one running task per service
//!   (`… > /proc/1/fd/1`: PID 1's stdout is the container's log stream, the one Docker hands to
//!   awslogs and to Alloy's `loki.source.docker`). All `N` must be queryable in Loki within 30 s.
//!   Why not a one-off `run-task`: Service Connect serves only tasks an ECS service starts, so a
//!   standalone task's Alloy could not resolve `loki:3100` and the check would test nothing real.
//!   The exec changes nothing in the task (no restart, no config); the lines land in the
//!   service's own stream, marked `xtask-p1 <run id>`. Nothing is left running: the session ends
//!   with the command.
//! - **P2, label consistency.** A sample of recent entries per service (up to 100): the stream
//!   labels `service_name`, `cluster` and `container` (one of the task definition's containers),
//!   and `task_id` (one of the service's tasks) on every entry; `task_id` is a stream label
//!   exactly when `alloy.task_id_label` says so, else structured metadata.
//! - **P3, metrics continuity.** The metric names of the service's job from its current (Alloy)
//!   tasks against the snapshot [`snapshot_series`] took under ADOT, before `migrate-sidecars`
//!   switched it; a name that disappeared fails the check.
//! - **P5, sidecar resilience.** One task of the first service: its `alloy` container gets
//!   SIGTERM through ECS Exec (`kill 1`: Alloy is PID 1 there, its start script `exec`s it, and
//!   SIGKILL from inside a PID namespace never reaches init). The main container must keep
//!   running, the same container throughout, and ECS's restart policy must bring the sidecar back:
//!   RUNNING again with a new start-up line in its CloudWatch stream (`ecs/alloy/<task>`), since
//!   DescribeTasks reports no restart count.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use probes::aws::{ECS, LOGS};
use probes::logql;
use serde_json::{json, Value};
use settings::{Collector, Environment};

use super::checkpoints::{print_verdict, Checks};
use crate::checks::report::Report;
use crate::live::ecs::poll_interval;
use crate::live::session::{require_plugin, Session};
use crate::live::Live;
use crate::project::{usage, Project};

/// The sidecar's container name in every service's task definition (infra/alloy-sidecar.tf).
pub const ALLOY_CONTAINER: &str = "alloy";
/// What a failed ECS Exec needs.
const EXEC_NEEDS: &str =
    "ECS Exec needs enable_execute_command on the service and the SSM agent's permissions in the task role";
/// P1: lines written per service, and how long they may take to be queryable.
const P1_LINES: usize = 20;
const P1_WITHIN: Duration = Duration::from_secs(30);

/// P1's deadline: the requirement's 30 s, or `XTASK_P1_SECONDS` (tests of a failing P1).
fn p1_within() -> Duration {
    std::env::var("XTASK_P1_SECONDS").ok().and_then(|s| s.parse().ok()).map_or(P1_WITHIN, Duration::from_secs)
}
/// P3: the window of the snapshot (ADOT's last hour) and of the current names (Alloy's tasks).
const SNAPSHOT_WINDOW: Duration = Duration::from_secs(3600);
const CURRENT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// P3: series a collector adds itself rather than scrapes (OpenTelemetry's resource info).
const COLLECTOR_ONLY: &[&str] = &["target_info"];
/// P5: longest wait for the sidecar to be running again.
const SIDECAR_RETURN: Duration = Duration::from_secs(180);
const P3_NO_SNAPSHOT: &str = "no snapshot: it is taken by migrate-sidecars before the switch";

/// Runs the property checks and prints the report; exit 1 when one fails, 2 when they cannot run.
pub fn verify(project: &Project, env: &str, service: Option<String>, json: bool) -> anyhow::Result<()> {
    let env = Environment::load(&project.root, env).map_err(usage)?;
    crate::phase::order::loki_deployed(&env)
        .map_err(|why| usage(format!("the properties cannot be checked yet: {why}")))?;
    let services = migrated_services(&env, service.as_deref())?;
    let live = Live::connect(project, env)?;
    let checks = Checks::new(&live)?;
    live.output_str("loki_service_name", super::checkpoints::DEPLOY_LOKI)?;
    for name in &services {
        checks.service_outputs(name)?;
    }
    require_plugin()?;
    let mut report = Report::new("properties");
    let run_id = run_id();
    for name in &services {
        report.check(format!("P1 {name}: every stdout line reaches loki"), checks.p1_ingestion(name, &run_id));
    }
    for name in &services {
        report.check(format!("P2 {name}: labels on every entry"), checks.p2_labels(name));
    }
    for name in &services {
        report.check(format!("P3 {name}: metric names as under adot"), checks.p3_metric_names(name));
    }
    // Last, and on one service only: it restarts a sidecar.
    report.check(
        format!("P5 {}: sidecar failure leaves the main container running", services[0]),
        checks.p5_sidecar_restart(services[0]),
    );
    drop(checks); // closes the tunnel before the verdict
    print_verdict(&report, json)
}

/// The services the properties apply to: on Alloy and enabled, in migration order.
pub(crate) fn migrated_services(env: &Environment, only: Option<&str>) -> anyhow::Result<Vec<&'static str>> {
    let on_alloy: Vec<&'static str> = env
        .settings
        .services
        .iter()
        .filter(|(_, s)| s.enabled && s.collector == Collector::Alloy)
        .map(|(n, _)| n)
        .collect();
    let chosen = match only {
        Some(name) => {
            let name = settings::check_service_name(name).map_err(usage)?;
            if !on_alloy.contains(&name) {
                bail!(usage(format!("{name} does not run Alloy in `{}` (or is disabled); the properties hold for migrated services only", env.name)));
            }
            vec![name]
        }
        None => on_alloy,
    };
    if chosen.is_empty() {
        bail!(usage(format!(
            "the properties are checked on the services on Alloy, and no enabled service of `{}` uses it yet; run `cargo xtask migrate-sidecars` first",
            env.name
        )));
    }
    Ok(chosen)
}

/// Unique per run: the probe lines of one run never match another's.
fn run_id() -> String {
    format!("{:x}{:x}", probes::loki::now_ns() / 1_000_000, std::process::id())
}

/// `infra/.terraform/envs/<env>/series-<service>.json`: the env's git-ignored working dir.
fn snapshot_path(live: &Live, service: &str) -> PathBuf {
    live.project.root.join("infra/.terraform/envs").join(&live.env.name).join(format!("series-{service}.json"))
}

/// Before `migrate-sidecars` switches `service`: the metric names of its job in AMP over the last
/// hour (ADOT's), for P3 to compare with after the switch. A service whose running task
/// definition already has the Alloy sidecar (a resumed migration) keeps the snapshot it has.
pub fn snapshot_series(live: &Live, service: &str) -> anyhow::Result<()> {
    let checks = Checks::new(live)?;
    let path = snapshot_path(live, service);
    let ecs_service = checks.service_outputs(service)?.ecs_service;
    let definition = checks.service_task_definition(&ecs_service)?;
    if container(&definition, ALLOY_CONTAINER).is_some() {
        match path.is_file() {
            true => eprintln!(
                "  {service} already runs Alloy: keeping the metrics snapshot {}",
                live.project.rel(&path).display()
            ),
            false => eprintln!(
                "  warning: {service} already runs Alloy, too late for a metrics snapshot; P3 cannot check it"
            ),
        }
        return Ok(());
    }
    let selector = job_selector(service, &checks.cluster, None);
    let (amp, credentials) = checks.amp()?;
    let names = amp.label_values("__name__", &selector, SNAPSHOT_WINDOW, &credentials)?;
    let taken_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let snapshot = json!({
        "service": service,
        "selector": selector,
        "window_seconds": SNAPSHOT_WINDOW.as_secs(),
        "taken_at": taken_at,
        "names": names,
    });
    std::fs::create_dir_all(path.parent().context("the snapshot path has a folder")?)?;
    settings::write_atomically(&path, &serde_json::to_string_pretty(&snapshot)?)?;
    if names.is_empty() {
        eprintln!(
            "  warning: AMP has no series for {selector} in the last hour; the snapshot is empty and P3 will say so"
        );
    }
    eprintln!(
        "  snapshot of {} metric name(s) of {selector} for P3: {}",
        names.len(),
        live.project.rel(&path).display()
    );
    Ok(())
}

/// `{job="<service>", cluster="<cluster>"}`, optionally restricted to some tasks.
fn job_selector(service: &str, cluster: &str, task_ids: Option<&[String]>) -> String {
    let mut selector = format!("{{job={}, cluster={}", logql::quote(service), logql::quote(cluster));
    if let Some(ids) = task_ids {
        selector.push_str(&format!(", task_id=~{}", logql::quote(&ids.join("|"))));
    }
    selector.push('}');
    selector
}

/// The container definition (of a task definition) or container (of a task) named `name`.
fn container<'v>(holder: &'v Value, name: &str) -> Option<&'v Value> {
    let list = holder.get("containerDefinitions").or_else(|| holder.get("containers"))?;
    list.as_array()?.iter().find(|c| c["name"] == name)
}

/// The main container: the essential one that is not the sidecar.
fn main_container(definition: &Value) -> anyhow::Result<String> {
    definition["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] != ALLOY_CONTAINER && c["essential"].as_bool() != Some(false))
        .and_then(|c| c["name"].as_str())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "task definition {} has no essential container besides {ALLOY_CONTAINER}",
                definition["taskDefinitionArn"]
            )
        })
}

/// The P1 command: `n` numbered lines onto the container's stdout (PID 1's), no tool but `sh`.
fn p1_command(marker: &str, n: usize) -> String {
    let numbers: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    format!("/bin/sh -c 'for i in {}; do echo {marker} $i/{n}; done > /proc/1/fd/1'", numbers.join(" "))
}

impl Checks<'_, '_> {
    // ---- P1 -----------------------------------------------------------------------------------

    fn p1_ingestion(&self, service: &str, run_id: &str) -> anyhow::Result<String> {
        let ecs_service = self.service_outputs(service)?.ecs_service;
        let task = self
            .task_ids(&ecs_service, "RUNNING")?
            .into_iter()
            .next()
            .with_context(|| format!("ECS service {ecs_service} has no running task"))?;
        let main = main_container(&self.service_task_definition(&ecs_service)?)?;
        let marker = format!("xtask-p1 {run_id}");
        let purpose = format!("write {P1_LINES} numbered lines to the stdout of {main} in task {task} (ECS Exec)");
        let out = self
            .exec(&purpose, &task, &main, &p1_command(&marker, P1_LINES))
            .with_context(|| format!("ECS Exec into {main} of task {task} failed; {EXEC_NEEDS}"))?;
        if !out.success() {
            bail!("ECS Exec into {main} of task {task} failed: {}; {EXEC_NEEDS}", out.stderr.trim());
        }
        let written = Instant::now();
        let loki = self.loki()?;
        let query = format!(
            "{} |= {}",
            logql::selector(&[("service_name", service), ("cluster", &self.cluster)]),
            logql::quote(&format!("{marker} "))
        );
        loop {
            let lines = loki.query_range(&query, Duration::from_secs(300), (P1_LINES * 2) as u32)?;
            let seen: BTreeSet<&str> =
                lines.iter().filter_map(|l| l.line.trim().strip_prefix(&marker)).map(str::trim).collect();
            let missing: Vec<String> =
                (1..=P1_LINES).map(|i| format!("{i}/{P1_LINES}")).filter(|n| !seen.contains(n.as_str())).collect();
            if missing.is_empty() {
                return Ok(format!(
                    "all {P1_LINES} lines written to {main} (task {task}) queryable {:.1}s later ({query})",
                    written.elapsed().as_secs_f32()
                ));
            }
            if written.elapsed() >= p1_within() {
                let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
                bail!(
                    "{} of {P1_LINES} lines written to {main} (task {task}) reached Loki within {}s; missing {}{}: check the Alloy sidecar's logs (CloudWatch, stream prefix ecs/alloy/) ({query})",
                    P1_LINES - missing.len(),
                    p1_within().as_secs(),
                    shown.join(", "),
                    if missing.len() > shown.len() { ", …" } else { "" }
                );
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    }

    // ---- P2 -----------------------------------------------------------------------------------

    fn p2_labels(&self, service: &str) -> anyhow::Result<String> {
        let lines = self.recent_lines(service)?;
        self.labels_ok(service, &lines)?;
        let ecs_service = self.service_outputs(service)?.ecs_service;
        let definition = self.service_task_definition(&ecs_service)?;
        let containers: BTreeSet<&str> = definition["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .filter(|name| *name != ALLOY_CONTAINER)
            .collect();
        // Entries of the sample window come from running tasks or ones stopped since (ECS lists
        // stopped tasks for an hour at least).
        let mut tasks: BTreeSet<String> = self.task_ids(&ecs_service, "RUNNING")?.into_iter().collect();
        tasks.extend(self.task_ids(&ecs_service, "STOPPED")?);
        for line in &lines {
            let container = line.labels.get("container").map(String::as_str).unwrap_or("");
            if !containers.contains(container) {
                bail!(
                    "an entry has container={container:?}, not a container of {ecs_service} ({}); its labels: {}",
                    join(&containers),
                    super::checkpoints::show_labels(&line.labels)
                );
            }
            match line.labels.get("task_id") {
                None => bail!(
                    "an entry of {container} has no task_id (neither label nor structured metadata); its labels: {}",
                    super::checkpoints::show_labels(&line.labels)
                ),
                Some(id) if !tasks.contains(id) => {
                    bail!(
                        "an entry of {container} has task_id={id:?}, not a task of {ecs_service}; its labels: {}",
                        super::checkpoints::show_labels(&line.labels)
                    )
                }
                Some(_) => {}
            }
        }
        // Structured metadata comes back with the stream labels of a query; the label API lists
        // only indexed (stream) labels.
        let stream_labels =
            self.loki()?.labels(&logql::selector(&[("service_name", service)]), super::checkpoints::RECENT)?;
        let as_label = stream_labels.iter().any(|l| l == "task_id");
        let wanted = self.live.env.settings.alloy.task_id_label;
        if as_label != wanted {
            bail!(
                "task_id is {} but alloy.task_id_label = {wanted} wants it {}",
                if as_label { "a stream label" } else { "not a stream label" },
                if wanted { "a stream label" } else { "structured metadata (req 3.8)" }
            );
        }
        let tasks_seen: BTreeSet<&str> =
            lines.iter().filter_map(|l| l.labels.get("task_id").map(String::as_str)).collect();
        Ok(format!(
            "{} entries: service_name, cluster, container of the task definition, task_id of {} task(s) as {}",
            lines.len(),
            tasks_seen.len(),
            if wanted { "stream label" } else { "structured metadata" }
        ))
    }

    // ---- P3 -----------------------------------------------------------------------------------

    fn p3_metric_names(&self, service: &str) -> anyhow::Result<String> {
        let path = snapshot_path(self.live, service);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                bail!("{P3_NO_SNAPSHOT} ({} is missing)", self.live.project.rel(&path).display())
            }
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        let snapshot: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        let before: BTreeSet<&str> = snapshot["names"]
            .as_array()
            .context("the snapshot has no `names` list")?
            .iter()
            .filter_map(Value::as_str)
            .filter(|n| !COLLECTOR_ONLY.contains(n))
            .collect();
        let age = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .saturating_sub(snapshot["taken_at"].as_u64().unwrap_or(0));
        if before.is_empty() {
            bail!("the snapshot ({}) holds no metric name: AMP had no series of job {service} before the switch, nothing to compare", self.live.project.rel(&path).display());
        }
        // Only the current tasks: ADOT's series of the job stay queryable for a while.
        let ecs_service = self.service_outputs(service)?.ecs_service;
        let tasks = self.task_ids(&ecs_service, "RUNNING")?;
        if tasks.is_empty() {
            bail!("ECS service {ecs_service} has no running task");
        }
        let selector = job_selector(service, &self.cluster, Some(&tasks));
        let (amp, credentials) = self.amp()?;
        let now: BTreeSet<String> =
            amp.label_values("__name__", &selector, CURRENT_WINDOW, &credentials)?.into_iter().collect();
        let missing: Vec<&str> = before.iter().copied().filter(|n| !now.contains(*n)).collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().copied().take(20).collect();
            bail!(
                "{} of {} metric name(s) of the snapshot ({}m old) are gone under Alloy ({selector}): {}{}",
                missing.len(),
                before.len(),
                age / 60,
                shown.join(", "),
                if missing.len() > shown.len() { ", …" } else { "" }
            );
        }
        let added = now.iter().filter(|n| !before.contains(n.as_str())).count();
        Ok(format!(
            "all {} metric name(s) of the snapshot ({}m old) present for {selector} ({added} new)",
            before.len(),
            age / 60
        ))
    }

    // ---- P5 -----------------------------------------------------------------------------------

    fn p5_sidecar_restart(&self, service: &str) -> anyhow::Result<String> {
        let outputs = self.service_outputs(service)?;
        let ecs_service = outputs.ecs_service;
        let task = self
            .task_ids(&ecs_service, "RUNNING")?
            .into_iter()
            .next()
            .with_context(|| format!("ECS service {ecs_service} has no running task"))?;
        let described = self.describe_task(&task)?;
        let definition = crate::live::ecs::task_definition(
            &self.live.api,
            described["taskDefinitionArn"].as_str().unwrap_or_default(),
        )?;
        let sidecar = container(&definition, ALLOY_CONTAINER)
            .with_context(|| format!("task {task} has no {ALLOY_CONTAINER} container"))?;
        // Stopping an essential sidecar would stop the task: refuse, that is the failure itself.
        if sidecar["essential"].as_bool() != Some(false) {
            bail!("the {ALLOY_CONTAINER} container of {ecs_service} is essential: its failure stops the task (req 3.11); not stopping it");
        }
        if sidecar["restartPolicy"]["enabled"].as_bool() != Some(true) {
            bail!("the {ALLOY_CONTAINER} container of {ecs_service} has no enabled restartPolicy: once stopped it stays stopped (req 3.11); not stopping it");
        }
        let main = main_container(&definition)?;
        let main_runtime = container(&described, &main)
            .with_context(|| format!("task {task} has no {main} container"))?["runtimeId"]
            .clone();
        // ECS reports no restart count (only the task metadata endpoint inside the task does):
        // each start of Alloy logs this line to the sidecar's own stream in CloudWatch.
        let stream = format!("ecs/{ALLOY_CONTAINER}/{task}");
        let starts_before = self.sidecar_starts(&outputs.log_group, &stream)?;

        // The session dies with the container it runs in: a failed exit is expected, judged below.
        let purpose = format!("stop the {ALLOY_CONTAINER} sidecar of task {task} (SIGTERM to its PID 1 through ECS Exec); {main} is not touched");
        let exec_said = match self.exec(&purpose, &task, ALLOY_CONTAINER, "/bin/sh -c 'kill 1'") {
            Ok(out) if out.success() => String::new(),
            Ok(out) => format!("; the exec said: {}", out.stderr.trim()),
            Err(err) => format!("; the exec said: {err:#}"),
        };

        let started = Instant::now();
        eprintln!(
            "  waiting for the {ALLOY_CONTAINER} sidecar of task {task} to start again (up to {}s)",
            SIDECAR_RETURN.as_secs()
        );
        loop {
            std::thread::sleep(poll_interval().min(Duration::from_secs(5)));
            let now = self.describe_task(&task)?;
            let main_now = container(&now, &main);
            let main_status = main_now.map_or("absent", |c| c["lastStatus"].as_str().unwrap_or("unknown"));
            if now["lastStatus"] != "RUNNING" || now["desiredStatus"] != "RUNNING" || main_status != "RUNNING" {
                bail!(
                    "task {task} is {} (desired {}), {main} is {main_status} after its {ALLOY_CONTAINER} sidecar was stopped: {}",
                    now["lastStatus"],
                    now["desiredStatus"],
                    now["stoppedReason"].as_str().unwrap_or("no reason given")
                );
            }
            if main_now.map(|c| &c["runtimeId"]) != Some(&main_runtime) {
                bail!(
                    "{main} of task {task} was replaced (runtime id {main_runtime} → {}) after its sidecar was stopped",
                    main_now.map_or(&Value::Null, |c| &c["runtimeId"])
                );
            }
            let status =
                container(&now, ALLOY_CONTAINER).map_or("absent", |c| c["lastStatus"].as_str().unwrap_or("unknown"));
            let starts = self.sidecar_starts(&outputs.log_group, &stream)?;
            if starts > starts_before && status == "RUNNING" {
                return Ok(format!(
                    "task {task}: {ALLOY_CONTAINER} started again {}s after SIGTERM (start-up {starts} in {} {stream}) and is RUNNING; {main} kept running, same container",
                    started.elapsed().as_secs(),
                    outputs.log_group
                ));
            }
            if started.elapsed() >= SIDECAR_RETURN {
                bail!(
                    "the {ALLOY_CONTAINER} sidecar of task {task} is {status} and logged no new start-up in {} {stream} {}s after it was stopped; ECS did not restart it (the restart policy needs ECS agent 1.86.0+, and skips a container that ran less than restartAttemptPeriod){exec_said}",
                    outputs.log_group,
                    SIDECAR_RETURN.as_secs()
                );
            }
            eprintln!(
                "  … {ALLOY_CONTAINER}: {status}, {starts} start-up(s) logged; {main}: RUNNING ({}s)",
                started.elapsed().as_secs()
            );
        }
    }

    /// How many times Alloy logged its start-up line in the sidecar's log stream.
    fn sidecar_starts(&self, log_group: &str, stream: &str) -> anyhow::Result<usize> {
        let found = self.live.api.json_all(
            format!("count the start-ups of the Alloy sidecar in {log_group} {stream}"),
            &LOGS,
            "FilterLogEvents",
            json!({"logGroupName": log_group, "logStreamNames": [stream],
                   "filterPattern": "\"now listening for http traffic\""}),
            "events",
        )?;
        Ok(found["events"].as_array().map_or(0, Vec::len))
    }

    // ---- ECS ----------------------------------------------------------------------------------

    /// One command in `container` of `task` through ECS Exec, to its end: the ExecuteCommand
    /// call, then the Session Manager plugin on its session, output captured.
    fn exec(&self, purpose: &str, task: &str, container: &str, command: &str) -> anyhow::Result<tools::Output> {
        let session = Session::execute_command(&self.live.api, purpose, &self.cluster, task, container, command)?;
        session.run(&self.live.api, format!("carry ECS Exec session {} into {container} of task {task}", session.id))
    }

    fn describe_task(&self, task: &str) -> anyhow::Result<Value> {
        let answer = self.live.api.json(
            format!("read the containers of task {task}"),
            &ECS,
            "DescribeTasks",
            json!({"cluster": self.cluster, "tasks": [task]}),
        )?;
        answer["tasks"]
            .as_array()
            .and_then(|t| t.first())
            .cloned()
            .with_context(|| format!("task {task} is not in cluster {}", self.cluster))
    }

    /// The task definition the ECS service runs now.
    fn service_task_definition(&self, ecs_service: &str) -> anyhow::Result<Value> {
        let answer = self.live.api.json(
            format!("read the task definition of ECS service {ecs_service}"),
            &ECS,
            "DescribeServices",
            json!({"cluster": self.cluster, "services": [ecs_service]}),
        )?;
        let arn = answer["services"][0]["taskDefinition"]
            .as_str()
            .with_context(|| format!("ECS service {ecs_service} does not exist in cluster {}", self.cluster))?;
        crate::live::ecs::task_definition(&self.live.api, arn)
    }
}

fn join(names: &BTreeSet<&str>) -> String {
    names.iter().copied().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p1_command_needs_only_sh_and_numbers_every_line() {
        let command = p1_command("xtask-p1 abc", 3);
        assert_eq!(command, "/bin/sh -c 'for i in 1 2 3; do echo xtask-p1 abc $i/3; done > /proc/1/fd/1'");
    }

    #[test]
    fn job_selectors_quote_and_restrict_to_tasks() {
        assert_eq!(job_selector("worker", "c", None), r#"{job="worker", cluster="c"}"#);
        assert_eq!(
            job_selector("worker", "c", Some(&["a".into(), "b".into()])),
            r#"{job="worker", cluster="c", task_id=~"a|b"}"#
        );
    }

    #[test]
    fn the_main_container_is_the_essential_one_besides_the_sidecar() {
        let definition = json!({"containerDefinitions": [
            {"name": "alloy", "essential": false},
            {"name": "temporal-worker", "essential": true},
        ]});
        assert_eq!(main_container(&definition).unwrap(), "temporal-worker");
        assert!(main_container(&json!({"containerDefinitions": [{"name": "alloy", "essential": false}]})).is_err());
        assert_eq!(container(&definition, "alloy").unwrap()["essential"], false);
    }
}

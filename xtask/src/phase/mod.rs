//! What a phase is: its change, scope, plan check, plan, apply and record (here), its order
//! (`order`), its task definitions. May use `live`, `checks::report`, the parity and capacity gates.
//!
//! What every phase shares. A phase is one settings change (enable Loki, move a service to Alloy,
//! a new Grafana image, ADOT off) carried through Terraform: show exactly what will run; with
//! `--execute` plan, refuse a plan that reaches outside the phase, apply, wait for ECS, run the
//! checkpoint, and only when it passes record the change in the env file. Rerunning after a
//! failure or Ctrl-C continues: the env file still holds the old value, Terraform finds what is
//! already applied, and the checkpoint runs again.

pub mod order;
pub mod task_definitions;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use settings::{Collector, Environment, Settings, TomlValue};
use tools::terraform::Terraform;
use tools::Cmd;

use crate::checks::report::Report;
use crate::live::{backend_args, terraform_for_env, Live};
use crate::project::{usage, Project};

/// A settings change a phase applies first and records only after its checkpoint passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to change: apply the env file as it is.
    Baseline,
    EnableLoki,
    Collector {
        service: &'static str,
        collector: Collector,
    },
    /// `versions.<key> = <image>`
    Image {
        key: String,
        image: String,
    },
    /// `adot.enabled = false`, and these services on `alloy` in the same edit (the only collector
    /// left once ADOT is gone): the disabled ones, which have no task and so no sidecar to move.
    DisableAdot {
        to_alloy: Vec<&'static str>,
    },
}

impl Change {
    /// The env-file keys this change sets, with their new values.
    fn edits(&self) -> Vec<(Vec<&str>, TomlValue)> {
        match self {
            Change::Baseline => vec![],
            Change::EnableLoki => vec![(vec!["loki", "enabled"], true.into())],
            Change::Collector { service, collector } => {
                vec![(vec!["services", service, "collector"], collector.as_str().into())]
            }
            Change::Image { key, image } => vec![(vec!["versions", key], image.as_str().into())],
            Change::DisableAdot { to_alloy } => to_alloy
                .iter()
                .map(|service| (vec!["services", service, "collector"], Collector::Alloy.as_str().into()))
                .chain([(vec!["adot", "enabled"], false.into())])
                .collect(),
        }
    }

    pub fn describe(&self) -> String {
        let edits = self.edits();
        if edits.is_empty() {
            return "the env file as it is".to_string();
        }
        let parts: Vec<String> = edits.iter().map(|(keys, value)| format!("{} = {value}", keys.join("."))).collect();
        parts.join(", ")
    }

    /// The settings with this change made.
    pub fn applied_to(&self, settings: &Settings) -> Settings {
        let mut after = settings.clone();
        match self {
            Change::Baseline => {}
            Change::EnableLoki => after.loki.enabled = true,
            Change::Collector { service, collector } => set_collector(&mut after, service, *collector),
            Change::Image { key, image } => {
                after.versions.insert(key.clone(), image.clone());
            }
            Change::DisableAdot { to_alloy } => {
                for service in to_alloy {
                    set_collector(&mut after, service, Collector::Alloy);
                }
                after.adot.enabled = false;
            }
        }
        after
    }

    /// Writes the change into the env file in one atomic edit (comments kept, the result
    /// validated first) and re-renders the env.
    pub fn record(&self, project: &Project, env: &Environment) -> anyhow::Result<()> {
        let edits = self.edits();
        if edits.is_empty() {
            return Ok(());
        }
        let path = &env.path;
        let new_text = self.edited(path)?;
        settings::write_atomically(path, &new_text)?;
        let files = render::render_all(&project.root)?;
        render::write(&project.root, &files)?;
        eprintln!("  recorded {} in {}", self.describe(), project.rel(path).display());
        Ok(())
    }

    /// The env file at `path` with this change made (comments kept), checked to be valid settings.
    pub fn edited(&self, path: &std::path::Path) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut doc: settings::TomlDocument = text.parse().with_context(|| format!("parsing {}", path.display()))?;
        for (keys, value) in self.edits() {
            settings::set_in_document(&mut doc, &keys, value).with_context(|| format!("editing {}", path.display()))?;
        }
        let new_text = doc.to_string();
        settings::parse(&new_text)
            .with_context(|| format!("{}: recording {} would make it invalid", path.display(), self.describe()))?;
        Ok(new_text)
    }
}

fn set_collector(settings: &mut Settings, service: &str, collector: Collector) {
    let services = &mut settings.services;
    let service = match service {
        "history" => &mut services.history,
        "matching" => &mut services.matching,
        "frontend" => &mut services.frontend,
        "worker" => &mut services.worker,
        _ => &mut services.benchmark_worker,
    };
    service.collector = collector;
}

/// Which resources a phase's plan may touch; anything else stops the phase before it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Anything (the baseline: the env file's whole fleet).
    Everything,
    Loki,
    Grafana,
    Service(&'static str),
    /// The ADOT resources, and the disabled services whose collector moves to alloy with them
    /// (their task definitions exist, without a running task).
    Adot {
        disabled: Vec<&'static str>,
    },
}

impl Scope {
    /// Resource addresses name what they serve (`aws_ecs_service.loki`, `module.temporal_worker…`,
    /// `aws_ssm_parameter.alloy["worker/<config hash>"]`, `…["worker"]` from before the hashes),
    /// so a name test is enough to keep phases apart.
    pub fn allows(&self, address: &str) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Loki => address.contains("loki"),
            Scope::Grafana => address.contains("grafana"),
            Scope::Service(service) => {
                let module = match *service {
                    "benchmark-worker" => "module.benchmark_worker".to_string(),
                    other => format!("module.temporal_{other}"),
                };
                address == module
                    || address.starts_with(&format!("{module}."))
                    || address.starts_with(&format!("{module}["))
                    || address.ends_with(&format!("[\"{service}\"]"))
                    || address.contains(&format!("[\"{service}/"))
                    || address == "terraform_data.collector_choice"
            }
            Scope::Adot { disabled } => {
                address.contains("adot")
                    || address == "terraform_data.collector_choice"
                    || disabled.iter().any(|service| Scope::Service(service).allows(address))
            }
        }
    }

    /// The dry run's step that enforces the scope, in the operator's words.
    fn step(&self) -> String {
        let what = match self {
            Scope::Everything => return "stop if the plan deletes a CloudWatch log group (any other change is allowed: this is the whole fleet)".to_string(),
            Scope::Loki => "Loki's resources (or a roll of a service that pushes to Loki, when Loki's service is new)".to_string(),
            Scope::Grafana => "Grafana's resources".to_string(),
            Scope::Service(service) => format!("{service}'s resources (its task, service, Alloy parameter, the collector choice)"),
            Scope::Adot { disabled } if disabled.is_empty() => "the ADOT resources".to_string(),
            Scope::Adot { disabled } => {
                format!("the ADOT resources or the task definitions of {} (disabled)", disabled.join(", "))
            }
        };
        format!("stop unless every planned change is one of {what} and no CloudWatch log group is deleted")
    }
}

/// One resource the plan changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    pub address: String,
    pub actions: Vec<String>,
    /// The top-level attributes an update changes (known or not); empty for other actions.
    pub attributes: Vec<String>,
}

impl ResourceChange {
    /// An update of a service that only drops the `triggers` and `force_new_deployment` earlier
    /// versions of this code set: it rolls nothing (the update sends forceNewDeployment false),
    /// so any phase may apply it.
    fn only_drops_the_roll_trigger(&self) -> bool {
        let service =
            self.address.contains("aws_ecs_service.this") || self.address.starts_with("aws_ecs_service.grafana");
        service
            && self.actions == ["update"]
            && !self.attributes.is_empty()
            && self.attributes.iter().all(|a| a == "triggers" || a == "force_new_deployment")
    }

    /// Whether this change creates Loki's ECS service, new or as a replacement.
    fn creates_loki_service(&self) -> bool {
        self.address.starts_with("aws_ecs_service.loki[") && self.actions.iter().any(|a| a == "create")
    }
}

/// Whether a plan's `after_unknown` marks anything in `value` unknown.
fn has_unknown(value: &Value) -> bool {
    match value {
        Value::Bool(unknown) => *unknown,
        Value::Array(items) => items.iter().any(has_unknown),
        Value::Object(fields) => fields.values().any(has_unknown),
        _ => false,
    }
}

fn changed_attributes(change: &Value) -> Vec<String> {
    let (Some(before), Some(after)) = (change["before"].as_object(), change["after"].as_object()) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k) || has_unknown(&change["after_unknown"][k.as_str()]))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The changes in `terraform show -json <plan>` output, without no-ops and reads.
pub fn changes_in(plan_json: &Value) -> Vec<ResourceChange> {
    plan_json["resource_changes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|rc| {
            let actions: Vec<String> =
                rc["change"]["actions"].as_array()?.iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
            if actions.iter().all(|a| a == "no-op" || a == "read") {
                return None;
            }
            let attributes = if actions == ["update"] { changed_attributes(&rc["change"]) } else { Vec::new() };
            Some(ResourceChange { address: rc["address"].as_str()?.to_string(), actions, attributes })
        })
        .collect()
}

/// A plan the phase may apply: every change inside its scope.
pub struct Plan {
    pub file: PathBuf,
    pub changes: Vec<ResourceChange>,
}

impl Plan {
    /// Whether applying it creates or replaces Loki's ECS service: the services that push to
    /// Loki then roll once, since `loki` resolves only in tasks started after its endpoint.
    pub fn creates_loki_service(&self) -> bool {
        self.changes.iter().any(ResourceChange::creates_loki_service)
    }

    pub fn summary(&self) -> String {
        if self.changes.is_empty() {
            return "no changes (already applied)".to_string();
        }
        let lines: Vec<String> =
            self.changes.iter().map(|c| format!("    {:<16} {}", c.actions.join("+"), c.address)).collect();
        format!("{} change(s):\n{}", self.changes.len(), lines.join("\n"))
    }
}

/// The env's data dir, where plans and the phase tfvars live (git-ignored, never shared).
fn data_dir(project: &Project, env: &Environment) -> PathBuf {
    project.root.join("infra/.terraform/envs").join(&env.name)
}

/// Writes the tfvars of the settings after the change, for the plan, with the config parameters
/// the live deployments read (`config_parameters_in_use`: Terraform keeps them for a rollback).
fn phase_tfvars(project: &Project, env: &Environment, change: &Change, in_use: &[String]) -> anyhow::Result<PathBuf> {
    let after = Environment { settings: change.applied_to(&env.settings), ..env.clone() };
    let dir = data_dir(project, env);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("phase.tfvars");
    let text = format!("{}\n{}", render::tfvars(&after).trim_end(), in_use_tfvars(in_use));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The `config_parameters_in_use` line of a tfvars file.
pub fn in_use_tfvars(in_use: &[String]) -> String {
    format!("config_parameters_in_use = {}\n", serde_json::json!(in_use))
}

/// The config parameters a rollback of the deployed services may need (see
/// [`crate::live::ecs::config_parameters_in_use`]): what a plan passes so Terraform keeps them.
pub fn config_parameters_in_use(live: &Live) -> anyhow::Result<Vec<String>> {
    let settings = &live.env.settings;
    crate::live::ecs::config_parameters_in_use(
        &live.api,
        &settings.platform.ecs_cluster_name,
        &deployed_services(live)?,
        &settings.project.name,
    )
}

/// The ECS service names in the Terraform outputs: the Temporal services `temporal` keeps, and
/// the one named by the output `also` (a service not deployed has none).
fn ecs_services(outputs: &Value, temporal: impl Fn(&Value) -> bool, also: &str) -> Vec<String> {
    let services = outputs["temporal_services"].as_object().into_iter().flat_map(|services| services.values());
    services
        .filter(|s| temporal(s))
        .map(|s| &s["service_name"])
        .chain([&outputs[also]])
        .filter_map(|name| name.as_str().filter(|n| !n.is_empty()).map(str::to_string))
        .collect()
}

/// The running ECS services that reach Loki through Service Connect, by the Terraform outputs:
/// the Temporal services whose sidecar pushes to it, and Grafana.
fn loki_clients(outputs: &Value) -> Vec<String> {
    ecs_services(outputs, |s| s["loki_client"] == true, "grafana_service_name")
}

/// The ECS services this stack runs now, by the Terraform outputs (none before the first apply).
fn deployed_services(live: &Live) -> anyhow::Result<Vec<String>> {
    Ok(ecs_services(&*live.outputs()?, |_| true, "loki_service_name"))
}

fn plan_cmd(terraform: &Terraform, project: &Project, var_file: &std::path::Path, plan_file: &std::path::Path) -> Cmd {
    terraform
        .cmd("plan the phase's changes")
        .args(["plan", "-input=false", "-no-color", "-lock-timeout=120s"])
        .arg(format!("-var-file={}", var_file.display()))
        .arg(format!("-out={}", plan_file.display()))
        .dir(project.root.join("infra"))
}

fn apply_cmd(terraform: &Terraform, project: &Project, plan_file: &std::path::Path) -> Cmd {
    terraform
        .cmd("apply the reviewed plan")
        .args(["apply", "-input=false", "-no-color", "-lock-timeout=120s"])
        .arg(plan_file)
        .dir(project.root.join("infra"))
}

/// Plans `change`; refuses, before anything is applied, a plan that reaches outside `scope`.
pub fn plan(live: &Live, change: &Change, scope: &Scope) -> anyhow::Result<Plan> {
    let in_use = config_parameters_in_use(live)?;
    let var_file = phase_tfvars(live.project, &live.env, change, &in_use)?;
    let file = data_dir(live.project, &live.env).join("phase.tfplan");
    let out = plan_cmd(&live.terraform, live.project, &var_file, &file).output()?;
    if !out.success() {
        return Err(terraform_failure("terraform plan", &out.stdout, &out.stderr, &live.env));
    }
    let shown = live
        .terraform
        .cmd("read the plan")
        .args(["show", "-json", "-no-color"])
        .arg(&file)
        .dir(live.infra_dir())
        .read()?;
    let json: Value = serde_json::from_str(&shown).context("`terraform show -json` did not print JSON")?;
    let changes = changes_in(&json);
    check_plan(change, scope, &changes)?;
    if crate::commands::verify::parity::turns_off_parallel_run(&json) {
        // Whether Loki carries the rate, shown before CloudWatch goes: informative, not a gate.
        eprintln!("  {}", crate::commands::verify::capacity::latest(&live.env));
        let outputs = live.outputs()?;
        crate::commands::verify::parity::gate(live.project, &live.env)
            .and_then(|_| {
                crate::commands::verify::parity::counted_the_live_log_groups(&live.env, &outputs["temporal_services"])
            })
            .map_err(|why| {
                usage(format!("refusing: this plan turns cloudwatch_parallel_run off, and {why}; nothing was applied"))
            })?;
    }
    Ok(Plan { file, changes })
}

/// Refuses a plan that deletes a CloudWatch log group (req 8.3, 8.5) or reaches outside `scope`.
pub fn check_plan(change: &Change, scope: &Scope, changes: &[ResourceChange]) -> anyhow::Result<()> {
    let deleted_log_groups: Vec<&str> = changes
        .iter()
        .filter(|c| c.address.contains("aws_cloudwatch_log_group") && c.actions.iter().any(|a| a == "delete"))
        .map(|c| c.address.as_str())
        .collect();
    if !deleted_log_groups.is_empty() {
        bail!(
            "the plan for `{}` would delete CloudWatch log groups ({}); they stay for rollback (req 8.3, 8.5), so nothing was applied",
            change.describe(),
            deleted_log_groups.join(", ")
        );
    }
    let outside: Vec<&ResourceChange> =
        changes.iter().filter(|c| !scope.allows(&c.address) && !c.only_drops_the_roll_trigger()).collect();
    if !outside.is_empty() {
        let list: Vec<String> = outside.iter().map(|c| format!("{} ({})", c.address, c.actions.join("+"))).collect();
        bail!(
            "the plan for `{}` would also change resources outside this phase:\n  {}\nnothing was applied; bring the environment in line first (review with `terraform plan`), then rerun",
            change.describe(),
            list.join("\n  ")
        );
    }
    Ok(())
}

pub fn apply(live: &Live, plan: &Plan) -> anyhow::Result<()> {
    if plan.changes.is_empty() {
        return Ok(());
    }
    let out = apply_cmd(&live.terraform, live.project, &plan.file).output()?;
    live.forget_outputs();
    eprint!("{}", out.stdout);
    if !out.success() {
        return Err(terraform_failure("terraform apply", &out.stdout, &out.stderr, &live.env));
    }
    Ok(())
}

/// Terraform's failure, with the fix for the common one: a state lock held elsewhere.
fn terraform_failure(what: &str, stdout: &str, stderr: &str, env: &Environment) -> anyhow::Error {
    let text = format!("{stdout}{stderr}");
    if text.contains("Error acquiring the state lock") {
        let id = text.lines().find_map(|l| l.trim().strip_prefix("ID:")).map(str::trim).unwrap_or("<lock id>");
        return usage(format!(
            "{what}: the Terraform state of `{}` is locked by another run (lock ID {id}); wait for it to finish, or if it died: \
             TF_DATA_DIR=infra/.terraform/envs/{} terraform -chdir=infra force-unlock {id}",
            env.name, env.name
        ));
    }
    anyhow::format_err!("{what} failed:\n{}", text.trim_end())
}

/// A phase as the commands describe it.
pub struct PhaseSpec {
    pub title: String,
    pub change: Change,
    pub scope: Scope,
    /// Terraform output naming the ECS service to wait for after the apply (none: no service changes).
    pub ecs_service_output: Option<String>,
    /// What the checkpoint is, for the dry run's list.
    pub checkpoint_name: String,
    pub timeout: Duration,
    /// Why `--execute` would refuse now: an earlier phase has not run (from the env file alone).
    pub not_yet: Option<String>,
}

impl PhaseSpec {
    /// Refuses (exit 2) before anything runs when an earlier phase must come first.
    pub fn ready(&self) -> anyhow::Result<()> {
        match &self.not_yet {
            Some(why) => Err(usage(format!("{} cannot run yet: {why}", self.title))),
            None => Ok(()),
        }
    }
}

/// Runs the checkpoint against the live environment.
pub type Checkpoint<'a> = &'a dyn Fn(&Live) -> anyhow::Result<Report>;

/// What happened to a phase that ran with `--execute`.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Recorded,
    CheckFailed,
}

/// The dry run: render state, offline validation, and the exact steps; with credentials also the
/// real plan. Changes nothing in AWS, the state, or the env file.
pub fn dry_run(project: &Project, env: &Environment, spec: &PhaseSpec) -> anyhow::Result<()> {
    dry_run_with(project, env, spec, &|_| Ok(Ok(())))
}

/// What only the live environment can say stops `--execute` now (an image not pushed yet).
pub type LiveCheck<'a> = &'a dyn Fn(&Live) -> anyhow::Result<Result<(), String>>;

/// The dry run, also asking the live environment (with credentials) whether `--execute` could go.
pub fn dry_run_with(
    project: &Project,
    env: &Environment,
    spec: &PhaseSpec,
    live_check: LiveCheck,
) -> anyhow::Result<()> {
    println!("{} (env `{}`): dry run, nothing will change", spec.title, env.name);
    render_status(project, env, false)?;
    validate_offline(project)?;
    let terraform = terraform_for_env(project, env)?;
    let var_file = data_dir(project, env).join("phase.tfvars");
    let plan_file = data_dir(project, env).join("phase.tfplan");
    println!("\nWith --execute this runs:");
    let steps = [
        terraform.cmd("").args(backend_args(env)).dir(project.root.join("infra")).display(),
        format!(
            "list the Alloy and Loki config parameters that the services' live deployments and each family's {} newest revisions read (ECS DescribeServices, ListTaskDefinitions, DescribeTaskDefinition) and still exist (SSM GetParameters): Terraform keeps them, so a rollback starts with its own config",
            crate::live::ecs::ROLLBACK_REVISIONS
        ),
        format!("write {} with {} and those parameters", project.rel(&var_file).display(), spec.change.describe()),
        plan_cmd(&terraform, project, &var_file, &plan_file).display(),
        spec.scope.step(),
        apply_cmd(&terraform, project, &plan_file).display(),
        match &spec.ecs_service_output {
            Some(output) => format!(
                "wait for the ECS service in output `{output}` to be stable (up to {}s)",
                spec.timeout.as_secs()
            ),
            None => "no ECS service to wait for".to_string(),
        },
        if spec.scope.allows("aws_ecs_service.loki[0]") {
            "if the plan creates or replaces Loki's ECS service: roll each service that pushes to Loki once (ECS UpdateService forceNewDeployment: the Temporal services with output temporal_services[*].loki_client, and Grafana) and wait for it to be stable".to_string()
        } else {
            "no Loki service change: roll no other service".to_string()
        },
        format!("run {}", spec.checkpoint_name),
        if spec.change == Change::Baseline {
            "nothing to record: the env file already says this".to_string()
        } else {
            format!("only if it passes: record {} in {}", spec.change.describe(), project.rel(&env.path).display())
        },
    ];
    for (n, step) in steps.iter().enumerate() {
        println!("  {}. {step}", n + 1);
    }
    if let Some(why) = &spec.not_yet {
        // The preview is shown; the live plan would plan from a state this phase cannot follow.
        return not_yet(spec, why);
    }
    // Ids no account has: --execute would fail at the plan's first lookup. Promise nothing.
    let made_up = settings::placeholder_ids(&env.settings);
    if !made_up.is_empty() {
        if settings::is_example(&env.name) {
            println!(
                "\nThis is an example env: {} are placeholders, so --execute cannot run here. `cargo xtask init <env>` makes an env of your own.",
                made_up.join(", ")
            );
            return Ok(());
        }
        return not_yet(spec, &order::placeholders_why(env, &made_up));
    }
    let identity = tools::aws::Aws::find(&env.settings.aws.region)
        .and_then(|aws| crate::live::api::Api::connect(&aws))
        .and_then(|api| api.identity());
    match identity {
        Err(err) => println!(
            "\nNo AWS access ({}), so no live plan; the steps above are the plan.",
            first_line(&format!("{err:#}"))
        ),
        Ok(_) => {
            let live = Live::connect(project, env.clone())?;
            if let Err(why) = live_check(&live)? {
                return not_yet(spec, &why);
            }
            let plan = plan(&live, &spec.change, &spec.scope)?;
            println!("\nTerraform plan: {}", plan.summary());
        }
    }
    println!("\nRun again with --execute to do it.");
    Ok(())
}

/// Ends a dry run whose `--execute` would refuse: why, in its output and as the error (exit 2).
fn not_yet(spec: &PhaseSpec, why: &str) -> anyhow::Result<()> {
    println!("\nNot yet: --execute would refuse now, because {why}.");
    Err(usage(format!("{} cannot run yet: {why}", spec.title)))
}

/// The real thing: plan, apply, wait, check, then record (or report and leave the env file as is).
/// `before_apply` runs once the plan is accepted, right before anything changes.
pub fn execute(
    live: &Live,
    spec: &PhaseSpec,
    checkpoint: Checkpoint,
    before_apply: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    eprintln!("{} (env `{}`, account {})", spec.title, live.env.name, live.identity.account);
    let plan = plan(live, &spec.change, &spec.scope)?;
    eprintln!("  plan: {}", plan.summary());
    before_apply()?;
    apply(live, &plan)?;
    let cluster = &live.env.settings.platform.ecs_cluster_name;
    if let Some(output) = &spec.ecs_service_output {
        let service = live.output_str(output, &spec.title)?;
        crate::live::ecs::wait_stable(&live.api, cluster, &service, spec.timeout)?;
    }
    if plan.creates_loki_service() {
        let clients = loki_clients(&*live.outputs()?);
        for service in &clients {
            crate::live::ecs::force_new_deployment(
                &live.api,
                cluster,
                service,
                "Loki's ECS service was created or replaced, and `loki` resolves only in tasks started after that",
            )?;
        }
        for service in &clients {
            crate::live::ecs::wait_stable(&live.api, cluster, service, spec.timeout)?;
        }
    }
    let report = checkpoint(live)?;
    eprint!("{}", report.table());
    if !report.passed() {
        return Ok(Outcome::CheckFailed);
    }
    spec.change.record(live.project, &live.env)?;
    Ok(Outcome::Recorded)
}

/// Every phase starts here, before any AWS call: the env file's phase order, then its files;
/// with `write` (an `--execute`), ids no account has stop it too.
pub fn render_status(project: &Project, env: &Environment, write: bool) -> anyhow::Result<()> {
    if let Some(why) = order::out_of_order(env) {
        return Err(usage(why));
    }
    let made_up = settings::placeholder_ids(&env.settings);
    if write && !made_up.is_empty() {
        return Err(usage(order::placeholders_why(env, &made_up)));
    }
    let files = render::render_all(&project.root).map_err(usage)?;
    let prefix = PathBuf::from("rendered").join(&env.name);
    let drift = render::drift(&project.root, &files)?;
    let stale: Vec<&PathBuf> = drift.stale.iter().chain(&drift.orphans).filter(|p| p.starts_with(&prefix)).collect();
    if stale.is_empty() {
        println!("  rendered/{}: up to date", env.name);
    } else if write {
        render::write(&project.root, &files)?;
        println!("  rendered/{}: re-rendered {} file(s); commit them", env.name, stale.len());
    } else {
        let names: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
        println!("  rendered/{}: {} file(s) would be re-rendered: {}", env.name, stale.len(), names.join(", "));
    }
    Ok(())
}

/// `terraform validate` of infra/ with whichever provider can be had (offline where needed).
pub fn validate_offline(project: &Project) -> anyhow::Result<()> {
    let terraform = project.terraform()?;
    terraform.validate(&project.root.join("infra"))?;
    println!("  terraform validate: ok ({})", terraform.describe());
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_keep_phases_apart() {
        assert!(Scope::Loki.allows("aws_ecs_service.loki"));
        assert!(Scope::Loki.allows("aws_ssm_parameter.alloy[\"loki\"]"));
        assert!(!Scope::Loki.allows("module.temporal_worker.aws_ecs_service.this"));
        let worker = Scope::Service("worker");
        assert!(worker.allows("module.temporal_worker.aws_ecs_task_definition.this"));
        assert!(worker.allows("aws_ssm_parameter.alloy[\"worker\"]"));
        assert!(!worker.allows("module.temporal_history.aws_ecs_task_definition.this"));
        assert!(!worker.allows("aws_ssm_parameter.alloy[\"benchmark-worker\"]"));
        assert!(Scope::Service("benchmark-worker").allows("module.benchmark_worker[0].aws_ecs_service.this"));
        assert!(!Scope::Adot { disabled: vec![] }.allows("aws_cloudwatch_log_group.loki"));
    }

    fn change(address: &str, actions: &[&str]) -> ResourceChange {
        ResourceChange {
            address: address.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            attributes: Vec::new(),
        }
    }

    #[test]
    fn req_8_5_no_phase_deletes_a_log_group() {
        let replace = [change("module.temporal_worker.aws_cloudwatch_log_group.this", &["delete", "create"])];
        let err = check_plan(&Change::Baseline, &Scope::Everything, &replace).unwrap_err().to_string();
        assert!(err.contains("would delete CloudWatch log groups"), "{err}");
        let update = [change("module.temporal_worker.aws_cloudwatch_log_group.this", &["update"])];
        assert!(check_plan(&Change::Baseline, &Scope::Everything, &update).is_ok());
    }

    #[test]
    fn a_plan_outside_the_phase_is_refused_and_named() {
        let worker = Change::Collector { service: "worker", collector: Collector::Alloy };
        let plan = [
            change("module.temporal_worker.aws_ecs_service.this", &["update"]),
            change("module.temporal_history.aws_ecs_service.this", &["update"]),
        ];
        let err = check_plan(&worker, &Scope::Service("worker"), &plan).unwrap_err().to_string();
        assert!(err.contains("module.temporal_history.aws_ecs_service.this (update)"), "{err}");
        assert!(!err.contains("temporal_worker"), "{err}");
        assert!(check_plan(&worker, &Scope::Service("worker"), &plan[..1]).is_ok());
    }

    // A config change creates the parameter named by its hash and deletes the one no deployment
    // reads any more; both are the service's, as Loki's sidecar's are Loki's.
    #[test]
    fn versioned_config_parameters_belong_to_their_service() {
        let worker = Scope::Service("worker");
        assert!(worker.allows("aws_ssm_parameter.alloy[\"worker/0123456789ab\"]"));
        assert!(worker.allows("aws_ssm_parameter.alloy[\"worker\"]"), "the name from before the hashes");
        assert!(!worker.allows("aws_ssm_parameter.alloy[\"history/0123456789ab\"]"));
        assert!(!worker.allows("aws_ssm_parameter.alloy[\"benchmark-worker/0123456789ab\"]"));
        assert!(!Scope::Service("benchmark-worker").allows("aws_ssm_parameter.alloy[\"worker/0123456789ab\"]"));
        assert!(Scope::Loki.allows("aws_ssm_parameter.alloy[\"loki/0123456789ab\"]"));
        assert!(Scope::Loki.allows("aws_ssm_parameter.loki_config[\"config-0123456789ab.yaml\"]"));
        assert!(!Scope::Loki.allows("aws_ssm_parameter.alloy[\"worker/0123456789ab\"]"));
    }

    // Earlier versions set force_new_deployment and triggers on Loki's clients; the update that
    // drops them rolls nothing, so any phase may apply it, and nothing else about those services.
    #[test]
    fn any_phase_may_drop_the_old_roll_trigger_and_nothing_more() {
        let plan = json!({"resource_changes": [
            {"address": "aws_ecs_service.loki[0]", "change": {"actions": ["delete", "create"], "before": {}, "after": {}}},
            {"address": "module.temporal_worker.aws_ecs_service.this[0]", "change": {"actions": ["update"],
                "before": {"name": "w", "triggers": {"loki_service": "arn"}, "force_new_deployment": true},
                "after": {"name": "w", "triggers": null, "force_new_deployment": false}}},
            {"address": "aws_ecs_service.grafana[0]", "change": {"actions": ["update"],
                "before": {"triggers": {"loki_service": "arn"}}, "after": {"triggers": null}}},
            {"address": "module.temporal_history.aws_ecs_service.this[0]", "change": {"actions": ["update"],
                "before": {"triggers": {}, "desired_count": 1}, "after": {"triggers": null, "desired_count": 2}}},
        ]});
        let changes = changes_in(&plan);
        assert_eq!(changes[1].attributes, ["force_new_deployment", "triggers"]);
        assert_eq!(changes[3].attributes, ["desired_count", "triggers"]);
        let err = check_plan(&Change::EnableLoki, &Scope::Loki, &changes).unwrap_err().to_string();
        assert!(err.contains("module.temporal_history.aws_ecs_service.this[0] (update)"), "{err}");
        assert!(!err.contains("temporal_worker") && !err.contains("grafana"), "{err}");
        assert!(check_plan(&Change::EnableLoki, &Scope::Loki, &changes[..3]).is_ok());
        let history = Change::Collector { service: "history", collector: Collector::Alloy };
        assert!(check_plan(&history, &Scope::Service("history"), &changes[1..3]).is_ok());
        assert!(check_plan(&history, &Scope::Service("history"), &changes[..1]).is_err());
    }

    #[test]
    fn a_plan_that_creates_or_replaces_lokis_service_rolls_its_clients() {
        let plan = |actions: &[&str]| Plan {
            file: PathBuf::new(),
            changes: vec![ResourceChange {
                address: "aws_ecs_service.loki[0]".into(),
                actions: actions.iter().map(|a| a.to_string()).collect(),
                attributes: vec![],
            }],
        };
        assert!(plan(&["create"]).creates_loki_service());
        assert!(plan(&["delete", "create"]).creates_loki_service());
        assert!(plan(&["create", "delete"]).creates_loki_service());
        assert!(!plan(&["update"]).creates_loki_service());
        assert!(!plan(&["delete"]).creates_loki_service());
        let outputs = json!({
            "temporal_services": {
                "worker": {"service_name": "w", "loki_client": true},
                "history": {"service_name": "h", "loki_client": false},
                "benchmark-worker": {"service_name": null, "loki_client": false},
            },
            "grafana_service_name": "g",
        });
        assert_eq!(loki_clients(&outputs), ["w", "g"]);
        assert!(loki_clients(&json!({"temporal_services": {}, "grafana_service_name": null})).is_empty());
    }

    #[test]
    fn no_ops_and_reads_are_not_changes() {
        let plan = json!({"resource_changes": [
            {"address": "aws_s3_bucket.loki", "change": {"actions": ["create"]}},
            {"address": "aws_iam_role.loki_task", "change": {"actions": ["no-op"]}},
            {"address": "data.aws_iam_policy_document.x", "change": {"actions": ["read"]}},
            {"address": "aws_ecs_task_definition.loki", "change": {"actions": ["delete", "create"]}},
        ]});
        let changes = changes_in(&plan);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].actions, vec!["delete", "create"]);
    }

    #[test]
    fn a_change_applies_to_settings_and_describes_itself() {
        let settings = settings::parse(include_str!("../../../envs/example.toml")).unwrap();
        let change = Change::Collector { service: "worker", collector: Collector::Alloy };
        assert_eq!(change.describe(), "services.worker.collector = \"alloy\"");
        let after = change.applied_to(&settings);
        assert_eq!(after.services.worker.collector, Collector::Alloy);
        assert_eq!(after.services.history.collector, Collector::Adot);
        assert!(Change::EnableLoki.applied_to(&settings).loki.enabled);
    }

    // A disabled service has no sidecar: the cleanup moves its collector with ADOT, in one edit
    // that the settings accept, and its plan may touch the collector choice.
    // req: 8.1
    #[test]
    fn disabling_adot_moves_disabled_services_to_alloy_in_the_same_edit() {
        let mut settings = settings::parse(include_str!("../../../envs/example.toml")).unwrap();
        for service in ["history", "matching", "frontend", "worker"] {
            set_collector(&mut settings, service, Collector::Alloy);
        }
        let change = Change::DisableAdot { to_alloy: vec!["benchmark-worker"] };
        assert_eq!(change.describe(), "services.benchmark-worker.collector = \"alloy\", adot.enabled = false");
        let after = change.applied_to(&settings);
        assert!(!after.adot.enabled);
        assert!(after.services.iter().all(|(_, s)| s.collector == Collector::Alloy));
        let scope = Scope::Adot { disabled: vec!["benchmark-worker"] };
        assert!(scope.allows("terraform_data.collector_choice"));
        assert!(scope.allows("module.benchmark_worker.aws_ecs_task_definition.this"));
        assert!(!scope.allows("module.temporal_worker.aws_ecs_task_definition.this"));
        assert!(!Scope::Adot { disabled: vec![] }.allows("module.benchmark_worker.aws_ecs_task_definition.this"));
    }

    #[test]
    fn dry_run_steps_name_scopes_in_words() {
        assert!(Scope::Service("worker").step().contains("one of worker's resources"));
        assert!(Scope::Everything.step().starts_with("stop if the plan deletes a CloudWatch log group"));
        for scope in
            [Scope::Everything, Scope::Loki, Scope::Grafana, Scope::Service("worker"), Scope::Adot { disabled: vec![] }]
        {
            assert!(!scope.step().contains("scope") && !scope.step().contains("Service("), "{}", scope.step());
        }
    }

    #[test]
    fn a_held_state_lock_gets_its_own_message() {
        let env = Environment {
            name: "dev".into(),
            path: "envs/dev.toml".into(),
            settings: settings::parse(include_str!("../../../envs/example.toml")).unwrap(),
        };
        let err =
            terraform_failure("terraform plan", "", "Error acquiring the state lock\n  ID:        1234-abcd\n", &env);
        let text = format!("{err:#}");
        assert!(text.contains("locked by another run (lock ID 1234-abcd)"), "{text}");
        assert!(text.contains("force-unlock 1234-abcd"), "{text}");
    }
}

//! Every ECS container definition Terraform plans, for each env and each phase's settings,
//! against the `ContainerDefinition` shape of ECS's botocore model (what RegisterTaskDefinition
//! takes): member names, types, enums, bounds and required members; and each env's Loki outage
//! budget against the README's table ([`crate::checks::outage_budget`]). One `terraform test -verbose`
//! plans them all offline (mock provider); its JSON output carries each run's plan.

use std::path::Path;

use anyhow::{bail, Context};
use configcheck::botocore::Models;
use serde_json::Value;
use settings::{Collector, Environment};
use tools::terraform::Terraform;

use crate::phase::Change;
use crate::project::Project;

/// Written next to `infra/tests/` for the run (one per process) and removed after, so
/// `terraform test` of `infra/` never runs it twice.
const TEST_DIR: &str = ".container-definitions";

/// The plan's data sources, mocked as `infra/tests/` mocks them, and the one computed value a
/// container definition reads (Grafana's secret, by ARN).
const MOCKS: &str = r#"mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  mock_data "aws_vpc_endpoint" {
    defaults = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = true }
  }

  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:grafana-admin-AbCdEf" }
  }
}
"#;

/// Plans every env and phase and checks their container definitions; the summary line, or
/// every problem (Terraform's own errors first).
pub fn check(project: &Project, terraform: &Terraform, venv: &Path) -> anyhow::Result<String> {
    let models = Models::in_venv(venv)?;
    let grafana_version = crate::commands::build_grafana::grafana_version(project, &project.root.join("grafana"))?;
    let mut runs = Vec::new();
    // The run of each env as its file is, whose plan the README's outage table states.
    let mut baselines = Vec::new();
    let mut planned_settings = std::collections::BTreeMap::new();
    for env in settings::load_all(&project.root)? {
        for (phase, settings) in phase_settings(&env, &grafana_version) {
            let after = Environment { settings, ..env.clone() };
            let run = format!("{}_{phase}", env.name.replace('-', "_"));
            planned_settings.insert(run.clone(), after.settings.clone());
            if phase == "baseline" {
                baselines.push((run.clone(), env.name.clone()));
            }
            runs.push((run, render::tfvars(&after)));
        }
    }
    let mut file = MOCKS.to_string();
    for (name, tfvars) in &runs {
        file.push_str(&format!("\nrun \"{name}\" {{\n  command = plan\n\n  variables {{\n{tfvars}\n  }}\n}}\n"));
    }
    let infra = project.root.join("infra");
    let test_dir = format!("{TEST_DIR}-{}", std::process::id());
    let dir = infra.join(&test_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = std::fs::write(dir.join("phases.tftest.hcl"), &file);
    let out = written.map_err(anyhow::Error::from).and_then(|()| {
        terraform.test_cmd(&infra).args(["-json", "-verbose", &format!("-test-directory={test_dir}")]).output()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let mut errors = Vec::new();
    let mut problems = Vec::new();
    let mut outage_rows = Vec::new();
    let mut buffers = Vec::new();
    let mut disagreements = Vec::new();
    let mut planned = 0;
    for line in out.stdout.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else { continue };
        let run = message["@testrun"].as_str().unwrap_or_default();
        match message["type"].as_str() {
            Some("test_plan") => {
                planned += 1;
                problems.extend(container_definition_problems(&models, run, &message["test_plan"])?);
                if let Some(settings) = planned_settings.get(run) {
                    disagreements.extend(model_problems(run, settings, &message["test_plan"]));
                }
                if let Some(buffer) = crate::checks::outage_budget::planned_buffer(
                    run,
                    planned_settings.get(run).map(|s| f64::from(s.loki.ingestion_mb_per_s)),
                    &message["test_plan"],
                )? {
                    if !buffers.iter().any(|b: &crate::checks::outage_budget::PlannedBuffer| b.same_shape(&buffer)) {
                        buffers.push(buffer);
                    }
                }
                if let Some((_, env)) = baselines.iter().find(|(name, _)| name == run) {
                    let budget = &message["test_plan"]["output_changes"]["loki_outage_budget"]["after"];
                    outage_rows.push((env.clone(), crate::checks::outage_budget::row(env, budget)?));
                }
            }
            Some("diagnostic") if message["diagnostic"]["severity"] == "error" => {
                let diagnostic = &message["diagnostic"];
                let (summary, detail) = (diagnostic["summary"].as_str(), diagnostic["detail"].as_str());
                errors.push(format!("{run}: {}: {}", summary.unwrap_or_default(), detail.unwrap_or_default()));
            }
            _ => {}
        }
    }
    if !errors.is_empty() || !out.success() {
        bail!(
            "terraform could not plan every env and phase (`{}`):\n  {}\n{}",
            out.code.map_or("killed".to_string(), |c| format!("exit {c}")),
            errors.join("\n  "),
            out.stderr.trim()
        );
    }
    if planned != runs.len() {
        bail!("terraform test planned {planned} of {} env/phase runs", runs.len());
    }
    if !problems.is_empty() {
        bail!("container definitions ECS's RegisterTaskDefinition would refuse:\n  {}", problems.join("\n  "));
    }
    if !disagreements.is_empty() {
        bail!("the plans and the capacity model disagree:\n  {}", disagreements.join("\n  "));
    }
    let readme_path = project.root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).with_context(|| format!("reading {}", readme_path.display()))?;
    let stale = crate::checks::outage_budget::readme_problems(&readme, &outage_rows);
    if !stale.is_empty() {
        bail!("the README's Loki outage budget is not what the plans say:\n  {}", stale.join("\n  "));
    }
    // The README's survival figures, on a real dockerd: each planned json-file shape, scaled.
    let engine = docker_rig::Engine::connect_or_start()?;
    let image = docker_rig::writer_image(&engine)?;
    for buffer in &buffers {
        eprintln!("    {}", buffer.confirm(&engine, &image)?);
    }
    Ok(format!(
        "{planned} env/phase plans: every container definition is one ECS's ContainerDefinition accepts; the README's outage budget is each env's plan's, and a real dockerd loses no line of it ({} json-file shape(s))",
        buffers.len()
    ))
}

/// Where Terraform and the capacity model (settings::capacity) state the same figure, the plan
/// must agree with the model: Loki's GOMEMLIMIT, and the planned restart the catch-up counts.
fn model_problems(run: &str, settings: &settings::Settings, plan: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let restart = plan["output_changes"]["loki_outage_budget"]["after"]["restart_seconds"].as_f64();
    if restart != Some(settings::capacity::PLANNED_RESTART_SECONDS) {
        problems.push(format!(
            "{run}: loki_outage_budget.restart_seconds is {restart:?}, settings::capacity::PLANNED_RESTART_SECONDS {}: make them one figure",
            settings::capacity::PLANNED_RESTART_SECONDS
        ));
    }
    let want = format!("{}MiB", settings::capacity::Capacity::of_env(settings).memory.gomemlimit);
    for change in plan["resource_changes"].as_array().into_iter().flatten() {
        if change["address"] != "aws_ecs_task_definition.loki[0]" {
            continue;
        }
        let containers: Value = change["change"]["after"]["container_definitions"]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let have = containers
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == "loki")
            .flat_map(|c| c["environment"].as_array().cloned().unwrap_or_default())
            .find(|e| e["name"] == "GOMEMLIMIT")
            .and_then(|e| e["value"].as_str().map(str::to_string));
        if have.as_deref() != Some(want.as_str()) {
            problems.push(format!(
                "{run}: Loki's GOMEMLIMIT is {have:?} in the plan and {want} in settings::capacity: infra/loki.tf and GOMEMLIMIT_SHARE must agree"
            ));
        }
    }
    problems
}

/// The settings of each phase in turn: the env file as it is, then Loki, every enabled service on
/// Alloy, a Grafana image, ADOT off (the disabled services on Alloy with it), the parallel run over.
fn phase_settings(env: &Environment, grafana_version: &str) -> Vec<(&'static str, settings::Settings)> {
    let s = &env.settings;
    let loki = Change::EnableLoki.applied_to(s);
    let alloy = s.services.iter().filter(|(_, service)| service.enabled).fold(loki.clone(), |now, (service, _)| {
        Change::Collector { service, collector: Collector::Alloy }.applied_to(&now)
    });
    // As build-grafana tags it: `<grafana version>-<commit>`.
    let (account, region, project) = (&s.aws.account_id, &s.aws.region, &s.project.name);
    let image = format!("{account}.dkr.ecr.{region}.amazonaws.com/{project}-grafana:{grafana_version}-0000000");
    let grafana = Change::Image { key: "grafana_image".into(), image }.applied_to(&alloy);
    let to_alloy = grafana.services.iter().filter(|(_, v)| v.collector == Collector::Adot).map(|(n, _)| n).collect();
    let adot_off = Change::DisableAdot { to_alloy }.applied_to(&grafana);
    // After the parallel run: the main containers log to json-file, the buffer the rig tries.
    let mut cloudwatch_off = adot_off.clone();
    cloudwatch_off.migration.cloudwatch_parallel_run = false;
    vec![
        ("baseline", s.clone()),
        ("loki", loki),
        ("collectors", alloy),
        ("grafana", grafana),
        ("adot_off", adot_off),
        ("cloudwatch_off", cloudwatch_off),
    ]
}

/// Every problem of the `aws_ecs_task_definition` changes in one run's plan (`terraform test
/// -json -verbose`'s `test_plan`, or `terraform show -json`: both list `resource_changes`).
pub fn container_definition_problems(models: &Models, run: &str, plan: &Value) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for change in plan["resource_changes"].as_array().into_iter().flatten() {
        if change["type"] != "aws_ecs_task_definition" {
            continue;
        }
        let address = change["address"].as_str().unwrap_or_default();
        let Some(text) = change["change"]["after"]["container_definitions"].as_str() else {
            problems.push(format!("{run}: {address} plans no container_definitions"));
            continue;
        };
        let containers: Value = serde_json::from_str(text)
            .with_context(|| format!("{run}: {address}: container_definitions is not JSON"))?;
        let Some(containers) = containers.as_array() else {
            problems.push(format!("{run}: {address}: container_definitions is not a list"));
            continue;
        };
        for (i, container) in containers.iter().enumerate() {
            let name = container["name"].as_str().map_or(format!("[{i}]"), |n| format!("`{n}`"));
            problems.extend(models.check_input(
                "ecs",
                "ContainerDefinition",
                container,
                &format!("{run}: {address} {name}"),
            )?);
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn models() -> Models {
        Models::in_venv(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv")).unwrap()
    }

    fn plan(containers: Value) -> Value {
        json!({"resource_changes": [{"address": "module.x.aws_ecs_task_definition.this", "type": "aws_ecs_task_definition",
            "change": {"after": {"container_definitions": containers.to_string()}}}]})
    }

    #[test]
    fn container_definitions_are_checked_against_ecs_s_model() {
        let models = models();
        let good = json!([{"name": "loki", "image": "grafana/loki:3.7.6", "essential": true, "memoryReservation": 256,
            "portMappings": [{"containerPort": 3100, "protocol": "tcp"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/loki"}},
            "healthCheck": {"command": ["CMD", "true"], "interval": 30}, "environment": [{"name": "A", "value": "1"}],
            "dependsOn": null}]);
        assert_eq!(container_definition_problems(&models, "r", &plan(good)).unwrap(), Vec::<String>::new());
        let bad = json!([{"name": "loki", "image": "i", "essential": "yes", "memoryReservaton": 256,
            "portMappings": [{"containerPort": 3100, "protocol": "sctp"}],
            "logConfiguration": {"options": {}}, "healthCheck": {"command": ["CMD"], "interval": 1}}]);
        let found = container_definition_problems(&models, "r", &plan(bad)).unwrap();
        let prefix = "r: module.x.aws_ecs_task_definition.this `loki`";
        for expected in [
            format!("{prefix}: unknown member `memoryReservaton` (shape ContainerDefinition), did you mean `memoryReservation`?"),
            format!("{prefix}.essential: \"yes\" is not a boolean (shape BoxedBoolean)"),
            format!("{prefix}.portMappings[0].protocol: `sctp` is not one of [\"tcp\", \"udp\"] (shape TransportProtocol)"),
            format!("{prefix}.logConfiguration: required member `logDriver` is missing (shape LogConfiguration)"),
        ] {
            assert!(found.contains(&expected), "{expected}\nnot in\n{found:#?}");
        }
    }
}

//! The project's own config checks over what `render` produced and the Grafana image's files.

use std::fmt::Display;
use std::path::Path;

use anyhow::bail;
use configcheck::loki::Expected;

use crate::project::Project;

/// Environment variables the Alloy sidecar's task definition sets (see infra/alloy-sidecar.tf;
/// the terraform test `req_3_3_sys_env_is_set_by_the_task` keeps the two in step).
const ALLOY_TASK_ENV: &[&str] = &["ALLOY_CONFIG", "GOMEMLIMIT"];

/// Loki configs (keys Loki 3.7 accepts, values that agree with the env file), Alloy configs
/// (grammar, component graph, arguments, env), Grafana provisioning and Dockerfile.
pub fn check_configs(project: &Project) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut checked = 0;
    for env in settings::load_all(&project.root)? {
        let dir = project.root.join("rendered").join(&env.name);
        let loki = dir.join("loki-config.yaml");
        let expected = Expected {
            retention_days: env.settings.loki.retention_days,
            replicas: env.settings.loki.count,
            memory_mib: env.settings.loki.memory,
        };
        checked += check_file(project, &loki, &mut problems, |text| configcheck::loki::check_loki_config_for(text, &expected));
        for service in render::sidecar_services() {
            let alloy = dir.join(format!("alloy-{service}.alloy"));
            checked += check_file(project, &alloy, &mut problems, |text| configcheck::alloy::check_alloy_config(text, ALLOY_TASK_ENV));
        }
    }
    let grafana = project.root.join("grafana");
    if grafana.is_dir() {
        checked += 1;
        report(project, &grafana, configcheck::grafana::check_grafana_dir(&grafana), &mut problems);
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    eprintln!("    {checked} configs checked");
    Ok(())
}

fn check_file<F: Display>(project: &Project, path: &Path, problems: &mut Vec<String>, check: impl FnOnce(&str) -> Vec<F>) -> usize {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            report(project, path, check(&text), problems);
            1
        }
        Err(err) => {
            problems.push(format!("{}: {err}; run `cargo xtask render`", project.rel(path).display()));
            0
        }
    }
}

fn report<F: Display>(project: &Project, path: &Path, findings: Vec<F>, problems: &mut Vec<String>) {
    problems.extend(findings.iter().map(|f| format!("{}: {f}", project.rel(path).display())));
}

//! The project's own config checks over what `render` produced and the Grafana image's files.

use std::fmt::Display;
use std::path::{Path, PathBuf};

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
    // What the Loki container sets, read from the Terraform that sets it (not a second list).
    let loki_tf = project.root.join("infra/loki.tf");
    let loki_env = std::fs::read_to_string(&loki_tf)
        .map_err(|e| e.to_string())
        .and_then(|tf| configcheck::loki::task_env_from_terraform(&tf, "loki"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", project.rel(&loki_tf).display()))?;
    // How long Grafana waits for Loki: Loki must not give up sooner.
    let grafana = project.root.join("grafana");
    let datasource_timeout = configcheck::grafana::loki_datasource_timeout(&grafana).map_err(anyhow::Error::msg)?;
    for env in settings::load_all(&project.root)? {
        let dir = project.root.join("rendered").join(&env.name);
        let loki = dir.join("loki-config.yaml");
        let expected = Expected {
            retention_days: env.settings.loki.retention_days,
            replicas: env.settings.loki.count,
            memory_mib: env.settings.loki.memory,
            sidecar_memory_mib: env.settings.alloy.memory,
            ingestion_mb_per_s: env.settings.loki.ingestion_mb_per_s,
        };
        checked += check_file(project, &loki, &mut problems, |text| {
            let mut findings = configcheck::loki::check_loki_config_deployed(text, &expected, &loki_env);
            findings.extend(configcheck::loki::check_query_timeouts(text, datasource_timeout));
            findings
        });
        for service in render::sidecar_services() {
            let alloy = dir.join(format!("alloy-{service}.alloy"));
            checked += check_file(project, &alloy, &mut problems, |text| {
                configcheck::alloy::check_alloy_config(text, ALLOY_TASK_ENV)
            });
        }
    }
    if grafana.is_dir() {
        checked += 1;
        report(project, &grafana, configcheck::grafana::check_grafana_dir(&grafana), &mut problems);
    }
    // Every ECS service waits for the policies of its task roles (read from the Terraform source).
    for dir in terraform_dirs(project)? {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "tf") {
                files.push((project.rel(&path).display().to_string(), std::fs::read_to_string(&path)?));
            }
        }
        files.sort();
        checked += files.len();
        problems.extend(configcheck::terraform::service_start_order(&project.rel(&dir).display().to_string(), &files));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    eprintln!("    {checked} configs and Terraform files checked");
    Ok(())
}

fn check_file<F: Display>(
    project: &Project,
    path: &Path,
    problems: &mut Vec<String>,
    check: impl FnOnce(&str) -> Vec<F>,
) -> usize {
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

/// Where a Docker engine runs: the pinned Loki image's own `-verify-config` (strict parsing, the
/// authoritative check) and Alloy's `validate` on every rendered config. `Some(reason)` when
/// this machine cannot run them.
pub fn verify_in_images(project: &Project) -> anyhow::Result<Option<String>> {
    let Ok(docker) = which::which("docker") else {
        return Ok(Some("no `docker` on PATH; install Docker to add the images' own config checks".into()));
    };
    let engine = tools::Cmd::new(&docker, "see whether a Docker engine answers")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .quiet()
        .output()?;
    if !engine.success() {
        return Ok(Some("the Docker engine does not answer; start it to add the images' own config checks".into()));
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    // An image the engine does not have and cannot pull (no registry) is not run: that says
    // nothing of the config. Only an image that ran and refused a config fails the stage.
    let mut availability: std::collections::BTreeMap<String, Result<(), String>> = Default::default();
    // The env's ECR image, else the Docker Hub image it caches (same name and tag below the
    // cache's prefix): an engine without the account's ECR login still checks the configs.
    let mut available = |image: &str| -> anyhow::Result<Option<String>> {
        for candidate in [Some(image.to_string()), docker_hub_original(image)].into_iter().flatten() {
            if !availability.contains_key(&candidate) {
                let found = image_at_hand(&docker, None, &candidate)?;
                availability.insert(candidate.clone(), found);
            }
            if availability[&candidate].is_ok() {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    };
    for env in settings::load_all(&project.root)? {
        let dir = project.root.join("rendered").join(&env.name);
        let mount = format!("{}:/cfg:ro", dir.display());
        let image = |key: &str| env.settings.versions.get(key).cloned().unwrap_or_default();
        let mut runs = Vec::new();
        if let Some(loki) = available(&image("loki_image"))? {
            runs.push(
                tools::Cmd::new(&docker, format!("verify rendered/{}/loki-config.yaml with {loki}", env.name))
                    .args(["run", "--rm", "-v", &mount])
                    // Values the task definition sets at deploy time; -verify-config builds no client.
                    .args([
                        "-e",
                        "LOKI_S3_BUCKET=verify-config",
                        "-e",
                        &format!("AWS_REGION={}", env.settings.aws.region),
                    ])
                    .args(["-e", "LOKI_MEMBERLIST_JOIN=dns+peers.invalid:7946"])
                    .arg(&loki)
                    .args(["-config.file=/cfg/loki-config.yaml", "-config.expand-env=true", "-verify-config"]),
            );
        }
        if let Some(alloy) = available(&image("alloy_image"))? {
            for service in render::sidecar_services() {
                runs.push(
                    tools::Cmd::new(
                        &docker,
                        format!("validate rendered/{}/alloy-{service}.alloy with {alloy}", env.name),
                    )
                    .args(["run", "--rm", "-v", &mount, "-e", "ALLOY_CONFIG=set", "-e", "GOMEMLIMIT=300MiB"])
                    .arg(&alloy)
                    .args(["validate".to_string(), format!("/cfg/alloy-{service}.alloy")]),
                );
            }
        }
        for run in runs {
            checked += 1;
            if let Err(err) = run.checked_output() {
                problems.push(format!("{err:#}"));
            }
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    let missing: Vec<String> = availability
        .iter()
        .filter_map(|(image, found)| found.as_ref().err().map(|why| format!("{image} ({why})")))
        .collect();
    if !missing.is_empty() {
        let ran = if checked > 0 { format!("{checked} configs accepted; ") } else { String::new() };
        return Ok(Some(format!("{ran}the engine has not got, and cannot pull, {}", missing.join(", "))));
    }
    eprintln!("    {checked} configs accepted by the pinned Loki and Alloy images");
    Ok(None)
}

/// The Docker Hub image an ECR pull-through cache or mirror serves as `image`
/// (`<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/grafana/loki:3.7.6` → `grafana/loki:3.7.6`).
fn docker_hub_original(image: &str) -> Option<String> {
    let (host, path) = image.split_once('/')?;
    let ecr = host.contains(".dkr.ecr.") && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    let start = path.find("grafana/")?;
    (ecr && (start == 0 || path[..start].ends_with('/'))).then(|| path[start..].to_string())
}

/// Whether the engine (at `docker_host`, else DOCKER_HOST's) has `image` or can pull it; the
/// reason when not.
fn image_at_hand(
    docker: &std::path::Path,
    docker_host: Option<&str>,
    image: &str,
) -> anyhow::Result<Result<(), String>> {
    let docker = |purpose: String| {
        let cmd = tools::Cmd::new(docker, purpose).quiet();
        match docker_host {
            Some(host) => cmd.env("DOCKER_HOST", host),
            None => cmd,
        }
    };
    let inspect = docker(format!("see whether the engine has {image}"))
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()?;
    if inspect.success() {
        return Ok(Ok(()));
    }
    let pull = docker(format!("pull {image}")).args(["pull", "--quiet", image]).output()?;
    if pull.success() {
        return Ok(Ok(()));
    }
    let why =
        pull.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("docker pull failed").trim().to_string();
    Ok(Err(why))
}

/// The root module and every module below `infra/modules/`.
pub fn terraform_dirs(project: &Project) -> anyhow::Result<Vec<PathBuf>> {
    let infra = project.root.join("infra");
    let mut dirs = Vec::new();
    if has_tf_files(&infra) {
        dirs.push(infra.clone());
    }
    let modules = infra.join("modules");
    if modules.is_dir() {
        let mut found: Vec<PathBuf> =
            std::fs::read_dir(&modules)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| has_tf_files(p)).collect();
        found.sort();
        dirs.extend(found);
    }
    Ok(dirs)
}

fn has_tf_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).any(|e| e.path().extension().is_some_and(|x| x == "tf")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    // On the suite's real engine: an image it has runs; one it cannot have (no such registry) is
    // named with the engine's reason, so the stage says NOT RUN instead of failing every config.
    #[test]
    fn an_ecr_image_falls_back_to_the_docker_hub_image_it_caches() {
        let original = |image: &str| super::docker_hub_original(image);
        assert_eq!(
            original("123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/loki:3.7.6").as_deref(),
            Some("grafana/loki:3.7.6")
        );
        assert_eq!(
            original("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/grafana/alloy:v1.21.2").as_deref(),
            Some("grafana/alloy:v1.21.2")
        );
        assert_eq!(original("grafana/loki:3.7.6"), None, "already Docker Hub's");
        assert_eq!(original("registry.example/docker-hub/grafana/loki:3.7.6"), None, "not ECR");
        assert_eq!(original("123456789012.dkr.ecr.eu-west-1.amazonaws.com/mygrafana/loki:3.7.6"), None);
    }

    #[test]
    fn an_image_the_engine_cannot_have_is_named_with_the_reason() {
        let engine = docker_rig::Engine::connect_or_start().unwrap_or_else(|err| panic!("{err:#}"));
        let present = docker_rig::writer_image(&engine).unwrap_or_else(|err| panic!("{err:#}"));
        let docker = which::which("docker").expect("the docker CLI is needed (Debian's docker.io installs it)");
        let host = engine.docker_host();
        assert_eq!(super::image_at_hand(&docker, Some(&host), &present).unwrap(), Ok(()));
        let missing = super::image_at_hand(&docker, Some(&host), "rig-missing.invalid/none:0").unwrap();
        let why = missing.expect_err("an image from a registry that does not exist cannot be had");
        assert!(why.contains("rig-missing.invalid"), "{why}");
    }
}

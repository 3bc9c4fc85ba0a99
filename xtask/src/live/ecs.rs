//! Waiting for ECS services, with progress and a clear timeout.

use std::time::{Duration, Instant};

use anyhow::bail;
use probes::aws::ECS;
use serde_json::{json, Value};

use crate::live::api::Api;

/// Seconds between polls; `XTASK_POLL_SECONDS` (fractions too, e.g. 0.2) shortens it (tests,
/// impatient operators); anything but a number from 0.05 to 600 leaves the default 10.
pub fn poll_interval() -> Duration {
    let secs = std::env::var("XTASK_POLL_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|secs| (0.05..=600.0).contains(secs))
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs)
}

/// What one `describe-services` says about a service's rollout.
#[derive(Debug, PartialEq, Eq)]
pub enum Rollout {
    Stable,
    InProgress(String),
    Failed(String),
}

/// Stable as `aws ecs wait services-stable` means it: one deployment, all its tasks running.
pub fn rollout(service: &Value) -> Rollout {
    let status = service["status"].as_str().unwrap_or("");
    if status != "ACTIVE" {
        return Rollout::Failed(format!("service status is {status:?}, not ACTIVE"));
    }
    let deployments = service["deployments"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if let Some(failed) = deployments.iter().find(|d| d["rolloutState"] == "FAILED") {
        return Rollout::Failed(format!(
            "deployment failed: {}",
            failed["rolloutStateReason"].as_str().unwrap_or("no reason given")
        ));
    }
    let running = service["runningCount"].as_i64().unwrap_or(0);
    let desired = service["desiredCount"].as_i64().unwrap_or(0);
    let progress = format!("{running}/{desired} tasks running, {} deployment(s)", deployments.len());
    if deployments.len() == 1 && running == desired {
        Rollout::Stable
    } else {
        Rollout::InProgress(progress)
    }
}

/// Starts a new deployment of `service` with its current task definition (ECS UpdateService
/// `forceNewDeployment`), saying `why`; its tasks are replaced as its deployment settings say.
pub fn force_new_deployment(api: &Api, cluster: &str, service: &str, why: &str) -> anyhow::Result<()> {
    eprintln!("  rolling ECS service {service} once: {why}");
    api.json(
        format!("start a new deployment of ECS service {service}"),
        &ECS,
        "UpdateService",
        json!({"cluster": cluster, "service": service, "forceNewDeployment": true}),
    )?;
    Ok(())
}

/// One poll's answer, or `None` when AWS throttled it or failed transiently even after the
/// SDK retries: a poll goes on until its own deadline, as the SDKs' waiters do.
pub fn polled<T>(what: &str, answer: anyhow::Result<T>) -> anyhow::Result<Option<T>> {
    match answer {
        Err(err) if probes::aws::is_retryable(&err) => {
            eprintln!("  … {what}: no answer this time ({err:#}); polling on");
            Ok(None)
        }
        answer => answer.map(Some),
    }
}

/// Polls until the service is stable; prints progress; fails on a failed rollout or the timeout.
pub fn wait_stable(api: &Api, cluster: &str, service: &str, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    eprintln!("  waiting for ECS service {service} in {cluster} to become stable (up to {}s)", timeout.as_secs());
    let purpose = format!("read the state of ECS service {service}");
    let mut progress = "no answer from ECS yet".to_string();
    loop {
        let input = json!({"cluster": cluster, "services": [service]});
        if let Some(answer) = polled(&purpose, api.json_quietly(&purpose, &ECS, "DescribeServices", input))? {
            let Some(found) = answer["services"].as_array().and_then(|s| s.first()) else {
                bail!("ECS service {service} does not exist in cluster {cluster}");
            };
            match rollout(found) {
                Rollout::Stable => {
                    eprintln!("  {service} is stable after {}s", start.elapsed().as_secs());
                    return Ok(());
                }
                Rollout::Failed(why) => bail!("ECS service {service}: {why}"),
                Rollout::InProgress(now) => progress = now,
            }
        }
        if start.elapsed() >= timeout {
            bail!(
                "ECS service {service} was not stable after {}s ({progress}); look at its events with `aws ecs describe-services --cluster {cluster} --services {service}`",
                timeout.as_secs()
            );
        }
        eprintln!("  … {service}: {progress} ({}s)", start.elapsed().as_secs());
        std::thread::sleep(poll_interval());
    }
}

/// A task definition by ARN (DescribeTaskDefinition).
pub fn task_definition(api: &Api, arn: &str) -> anyhow::Result<Value> {
    let answer = api.json(
        format!("read the task definition {arn}"),
        &ECS,
        "DescribeTaskDefinition",
        json!({"taskDefinition": arn}),
    )?;
    Ok(answer["taskDefinition"].clone())
}

/// The Alloy, Loki and ADOT config parameters (`/<project>/alloy/…`, `/<project>/loki/…`,
/// `/<project>/adot/…`) whose names the task definition's containers take secrets from, in
/// order, once each.
pub fn config_parameters(task_definition: &Value, project: &str) -> Vec<String> {
    let prefixes = ["alloy", "loki", "adot"].map(|kind| format!("/{project}/{kind}/"));
    let mut names = Vec::new();
    let containers = task_definition["containerDefinitions"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for secret in containers.iter().flat_map(|c| c["secrets"].as_array().map(Vec::as_slice).unwrap_or(&[])) {
        let Some(from) = secret["valueFrom"].as_str() else { continue };
        // An ARN (`arn:…:parameter/name`) or, in the same region, the name itself.
        let name = match from.split_once(":parameter/") {
            Some((_, name)) => format!("/{name}"),
            None => from.to_string(),
        };
        if prefixes.iter().any(|p| name.starts_with(p)) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// How many of a family's newest registered revisions keep their config for a manual rollback.
pub const ROLLBACK_REVISIONS: usize = 5;

/// `family` and revision of a task definition ARN (`…:task-definition/<family>:<revision>`) or
/// of `<family>:<revision>`.
fn family_and_revision(arn: &str) -> Option<(&str, u64)> {
    let (family, revision) = arn.rsplit('/').next()?.rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

/// The `keep` newest revisions of `family` among `arns`, newest first.
fn newest_revisions<'a>(arns: &[&'a str], family: &str, keep: usize) -> Vec<&'a str> {
    let mut mine: Vec<(u64, &str)> = arns
        .iter()
        .filter_map(|arn| family_and_revision(arn).filter(|(f, _)| *f == family).map(|(_, r)| (r, *arn)))
        .collect();
    mine.sort_by(|a, b| b.0.cmp(&a.0));
    mine.into_iter().take(keep).map(|(_, arn)| arn).collect()
}

/// The config parameters that the task definitions of `services` a rollback may start read: their
/// live deployments' (the one rolling out and the one a circuit breaker rolls back to) and their
/// families' [`ROLLBACK_REVISIONS`] newest. Terraform keeps them as they are.
pub fn config_parameters_in_use(
    api: &Api,
    cluster: &str,
    services: &[String],
    project: &str,
) -> anyhow::Result<Vec<String>> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let purpose = format!("read the deployments of ECS services {}", services.join(", "));
    let answer = match api.json(&purpose, &ECS, "DescribeServices", json!({"cluster": cluster, "services": services})) {
        // No cluster, no deployment: Terraform reports the missing cluster itself.
        Err(err)
            if err.downcast_ref::<probes::aws::Refused>().is_some_and(|r| r.kind == "ClusterNotFoundException") =>
        {
            return Ok(Vec::new())
        }
        answer => answer?,
    };
    let mut revisions = std::collections::BTreeSet::new();
    for service in answer["services"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let deployments = service["deployments"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let live: Vec<&str> = deployments
            .iter()
            .filter_map(|d| d["taskDefinition"].as_str())
            .chain(service["taskDefinition"].as_str())
            .collect();
        revisions.extend(live.iter().map(|arn| arn.to_string()));
        let Some((family, _)) = live.first().and_then(|arn| family_and_revision(arn)) else { continue };
        let listed = api.json(
            format!("list the newest revisions of task definition family {family}"),
            &ECS,
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "status": "ACTIVE", "sort": "DESC", "maxResults": ROLLBACK_REVISIONS}),
        )?;
        let arns: Vec<&str> = listed["taskDefinitionArns"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        revisions.extend(newest_revisions(&arns, family, ROLLBACK_REVISIONS).into_iter().map(str::to_string));
    }
    // Each name with the first revision that reads it, for the warning below.
    let mut read_by = std::collections::BTreeMap::new();
    for arn in &revisions {
        for name in config_parameters(&task_definition(api, arn)?, project) {
            read_by.entry(name).or_insert_with(|| arn.clone());
        }
    }
    let names: Vec<String> = read_by.keys().cloned().collect();
    let mut existing = Vec::new();
    // Terraform cannot keep what is gone (its read would fail the plan): keep what exists.
    for chunk in names.chunks(10) {
        let answer = api.json(
            format!("check that the {} config parameter(s) a rollback may read exist", chunk.len()),
            &probes::aws::SSM,
            "GetParameters",
            json!({"Names": chunk}),
        )?;
        for missing in
            answer["InvalidParameters"].as_array().map(Vec::as_slice).unwrap_or(&[]).iter().filter_map(Value::as_str)
        {
            eprintln!(
                "  warning: SSM parameter {missing}, which {} reads, no longer exists: a rollback to that revision fails at launch",
                read_by.get(missing).map(String::as_str).unwrap_or("a revision")
            );
        }
        existing.extend(
            answer["Parameters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(|p| p["Name"].as_str().map(str::to_string)),
        );
    }
    existing.sort();
    Ok(existing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stable_needs_one_deployment_and_all_tasks_running() {
        let stable = json!({"status": "ACTIVE", "runningCount": 1, "desiredCount": 1, "deployments": [{"rolloutState": "COMPLETED"}]});
        assert_eq!(rollout(&stable), Rollout::Stable);
        let rolling = json!({"status": "ACTIVE", "runningCount": 1, "desiredCount": 1, "deployments": [{}, {}]});
        assert!(matches!(rollout(&rolling), Rollout::InProgress(p) if p.contains("2 deployment")));
        let starting = json!({"status": "ACTIVE", "runningCount": 0, "desiredCount": 1, "deployments": [{}]});
        assert!(matches!(rollout(&starting), Rollout::InProgress(p) if p.contains("0/1")));
        let failed = json!({"status": "ACTIVE", "deployments": [{"rolloutState": "FAILED", "rolloutStateReason": "circuit breaker"}]});
        assert!(matches!(rollout(&failed), Rollout::Failed(p) if p.contains("circuit breaker")));
    }

    #[test]
    fn config_parameters_are_this_projects_alloy_loki_and_adot_secrets() {
        let definition = json!({"containerDefinitions": [
            {"name": "loki-init", "secrets": [{"name": "LOKI_CONFIG", "valueFrom": "arn:aws:ssm:eu-west-1:1:parameter/temporal-dev/loki/config-0123456789ab.yaml"}]},
            {"name": "temporal", "secrets": [{"name": "DB", "valueFrom": "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf"}]},
            {"name": "alloy", "secrets": [
                {"name": "ALLOY_CONFIG", "valueFrom": "/temporal-dev/alloy/history"},
                {"name": "OTHER", "valueFrom": "arn:aws:ssm:eu-west-1:1:parameter/other-project/alloy/history"},
                {"name": "ADOT", "valueFrom": "arn:aws:ssm:eu-west-1:1:parameter/temporal-dev/adot/sidecar"},
                {"name": "AGAIN", "valueFrom": "arn:aws-cn:ssm:cn-north-1:1:parameter/temporal-dev/alloy/history"}]},
            {"name": "no-secrets"}
        ]});
        assert_eq!(
            config_parameters(&definition, "temporal-dev"),
            [
                "/temporal-dev/loki/config-0123456789ab.yaml",
                "/temporal-dev/alloy/history",
                "/temporal-dev/adot/sidecar"
            ]
        );
        assert!(config_parameters(&json!({}), "temporal-dev").is_empty());
    }

    // The README and the Terraform variable state how many revisions keep their config.
    #[test]
    fn the_docs_name_the_number_of_rollback_revisions() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let said = format!("the {ROLLBACK_REVISIONS} newest revisions");
        for file in ["README.md", "infra/variables.tf"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap().replace('\n', " ");
            assert!(text.contains(&said), "{file} must say {said:?}");
        }
    }

    #[test]
    fn the_newest_revisions_of_the_family_only() {
        let arn = |family: &str, revision: u32| format!("arn:aws:ecs:eu-west-1:1:task-definition/{family}:{revision}");
        let listed: Vec<String> = [("loki", 9), ("loki", 10), ("loki", 2), ("loki-x", 11), ("loki", 7)]
            .iter()
            .map(|(f, r)| arn(f, *r))
            .chain(["not-an-arn".to_string()])
            .collect();
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        assert_eq!(newest_revisions(&listed, "loki", 3), [arn("loki", 10), arn("loki", 9), arn("loki", 7)]);
        assert_eq!(
            family_and_revision(&arn("temporal-dev-temporal-worker", 42)),
            Some(("temporal-dev-temporal-worker", 42))
        );
    }
}

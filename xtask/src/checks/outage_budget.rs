//! The README's table of how long a Loki outage each env survives without losing a line, checked
//! against what each env's plan says (`output.loki_outage_budget`, infra/log-buffer.tf): the
//! figures an operator reads are the ones Terraform sizes the Docker log files from.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde_json::Value;

/// A plan's json-file for the Temporal main containers, with the outage it claims to outlast.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBuffer {
    run: String,
    options: BTreeMap<String, String>,
    file_mb: f64,
    rate_mb_per_s: f64,
    /// The outage the README states it survives, plus Alloy's retry gap: how long lines wait.
    wait_seconds: f64,
}

/// Lines the rig writes while its reader is stalled, standing for the planned wait: far more than
/// dockerd's own buffer of 4,096 lines (crates/docker-rig).
const RIG_STALL_LINES: u64 = 15_000;

impl PlannedBuffer {
    pub fn same_shape(&self, other: &PlannedBuffer) -> bool {
        (self.options.clone(), self.file_mb / (self.rate_mb_per_s * self.wait_seconds))
            == (other.options.clone(), other.file_mb / (other.rate_mb_per_s * other.wait_seconds))
    }

    /// Runs the rig with the planned options, the file scaled by the rig's rate and stall against
    /// the plan's rate and wait: the README's figure holds only if no line is lost.
    pub fn confirm(&self, engine: &docker_rig::Engine, image: &str) -> anyhow::Result<String> {
        let rig_stall_bytes = (RIG_STALL_LINES * docker_rig::Case::LINE_BYTES) as f64;
        let scaled = self.file_mb * 1e6 * rig_stall_bytes / (self.rate_mb_per_s * 1e6 * self.wait_seconds);
        let mut options: Vec<(&str, String)> = self.options.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        for (key, value) in &mut options {
            if *key == "max-size" {
                *value = format!("{}", scaled.floor() as u64);
            }
        }
        let borrowed: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let case = docker_rig::Case::outage("json-file", &borrowed, RIG_STALL_LINES);
        let outcome = docker_rig::rig::run(engine, image, &case)?;
        if outcome.lost_lines() > 0 || outcome.stuck {
            bail!(
                "{}: the planned json-file ({:?}, scaled to max-size {} bytes) does not outlast the stated outage on dockerd: {outcome}",
                self.run,
                self.options,
                scaled.floor()
            );
        }
        Ok(format!(
            "{}: {:?} scaled to {} bytes for a stall of {RIG_STALL_LINES} lines: {outcome}",
            self.run,
            self.options,
            scaled.floor()
        ))
    }
}

/// The json-file the plan gives the Temporal main containers (none while CloudWatch runs beside).
/// `rate` is the run's `loki.ingestion_mb_per_s` (a test plan does not list its variables).
pub fn planned_buffer(run: &str, rate: Option<f64>, plan: &Value) -> anyhow::Result<Option<PlannedBuffer>> {
    let budget = &plan["output_changes"]["loki_outage_budget"]["after"];
    for change in plan["resource_changes"].as_array().into_iter().flatten() {
        let address = change["address"].as_str().unwrap_or_default();
        if !address.starts_with("module.temporal_history.") || change["type"] != "aws_ecs_task_definition" {
            continue;
        }
        let Some(text) = change["change"]["after"]["container_definitions"].as_str() else { continue };
        let containers: Value = serde_json::from_str(text).with_context(|| format!("{run}: {address}"))?;
        let log = &containers[0]["logConfiguration"];
        if log["logDriver"] != "json-file" {
            return Ok(None);
        }
        let options: BTreeMap<String, String> = serde_json::from_value(log["options"].clone())?;
        let number =
            |key: &str| budget[key].as_f64().with_context(|| format!("{run}: loki_outage_budget has no {key}"));
        let rate = rate.with_context(|| format!("{run}: no env's loki.ingestion_mb_per_s for this run"))?;
        return Ok(Some(PlannedBuffer {
            run: run.to_string(),
            options,
            file_mb: number("ring_file_mb")?,
            rate_mb_per_s: rate,
            wait_seconds: number("survival_seconds")? + number("retry_gap_seconds")?,
        }));
    }
    Ok(None)
}

pub const BEGIN: &str = "<!-- outage-budget: one row per env, checked against its plan by `cargo xtask test` -->";
pub const END: &str = "<!-- /outage-budget -->";

/// The row the README must hold for `env`, from its plan's `loki_outage_budget` output.
pub fn row(env: &str, budget: &Value) -> anyhow::Result<String> {
    let number = |key: &str| {
        budget[key].as_u64().ok_or_else(|| anyhow::format_err!("the plan of {env}: loki_outage_budget has no {key}"))
    };
    let (files, file_mb) = (number("ring_files")?, number("ring_file_mb")?);
    Ok(format!(
        "| {env} | {files} × {file_mb} MB | {} | {} | {} |",
        duration(number("survival_seconds")?),
        duration(number("survival_seconds_at_1_mb_per_s")?),
        duration(number("restart_seconds")?)
    ))
}

fn duration(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

/// What is wrong with the README's table, given every env's expected row (env, row).
pub fn readme_problems(readme: &str, expected: &[(String, String)]) -> Vec<String> {
    let Some(table) = readme.split_once(BEGIN).and_then(|(_, rest)| rest.split_once(END)).map(|(t, _)| t) else {
        return vec![format!("README.md has no outage table between `{BEGIN}` and `{END}`")];
    };
    let rows: Vec<&str> =
        table.lines().map(str::trim).filter(|l| l.starts_with("| ") && !l.starts_with("| env ")).collect();
    let env_of = |row: &str| row.trim_start_matches("| ").split(" |").next().unwrap_or_default().to_string();
    let mut problems = Vec::new();
    for (env, want) in expected {
        match rows.iter().find(|r| env_of(r) == *env) {
            Some(have) if have == want => {}
            Some(have) => problems.push(format!(
                "README.md's outage table says `{have}`; the plan of {env} says `{want}`: update the row"
            )),
            None => problems.push(format!("README.md's outage table has no row for {env}; add `{want}`")),
        }
    }
    for row in &rows {
        if !expected.iter().any(|(env, _)| *env == env_of(row)) {
            problems.push(format!(
                "README.md's outage table has a row for {}, which is not an env in envs/: remove it",
                env_of(row)
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_must_hold_each_envs_figures_and_no_other_env() {
        let budget = json!({"survival_seconds": 142, "survival_seconds_at_1_mb_per_s": 1510, "restart_seconds": 138, "ring_files": 2, "ring_file_mb": 1900});
        let want = row("dev", &budget).unwrap();
        assert_eq!(want, "| dev | 2 × 1900 MB | 2 min 22 s | 25 min 10 s | 2 min 18 s |");
        let expected = vec![("dev".to_string(), want.clone())];
        let readme = |rows: &str| {
            format!("intro\n{BEGIN}\n| env | ring | survives | restart |\n|---|---|---|---|\n{rows}{END}\n")
        };
        assert_eq!(readme_problems(&readme(&format!("{want}\n")), &expected), Vec::<String>::new());

        let stale = readme("| dev | 5 × 20 MB | 10 s | 7 min 30 s |\n| old | 5 × 20 MB | 10 s | 7 min 30 s |\n");
        assert_eq!(
            readme_problems(&stale, &expected),
            [
                format!("README.md's outage table says `| dev | 5 × 20 MB | 10 s | 7 min 30 s |`; the plan of dev says `{want}`: update the row"),
                "README.md's outage table has a row for old, which is not an env in envs/: remove it".to_string(),
            ]
        );
        assert_eq!(
            readme_problems(&readme(""), &expected),
            [format!("README.md's outage table has no row for dev; add `{want}`")]
        );
        assert!(readme_problems("no table", &expected)[0].contains("has no outage table"));
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(45), "45 s");
    }
}

//! The README's table of how long a Loki outage each env survives without losing a line, checked
//! against what each env's plan says (`output.loki_outage_budget`, infra/log-buffer.tf): the
//! figures an operator reads are the ones Terraform sizes the Docker log files from.

use serde_json::Value;

pub const BEGIN: &str = "<!-- outage-budget: one row per env, checked against its plan by `cargo xtask test` -->";
pub const END: &str = "<!-- /outage-budget -->";

/// The row the README must hold for `env`, from its plan's `loki_outage_budget` output.
pub fn row(env: &str, budget: &Value) -> anyhow::Result<String> {
    let number = |key: &str| {
        budget[key].as_u64().ok_or_else(|| anyhow::format_err!("the plan of {env}: loki_outage_budget has no {key}"))
    };
    let (files, file_mb) = (number("ring_files")?, number("ring_file_mb")?);
    Ok(format!(
        "| {env} | {files} × {file_mb} MB | {} | {} |",
        duration(number("survival_seconds")?),
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
        let budget = json!({"survival_seconds": 590, "restart_seconds": 450, "ring_files": 5, "ring_file_mb": 1200});
        let want = row("dev", &budget).unwrap();
        assert_eq!(want, "| dev | 5 × 1200 MB | 9 min 50 s | 7 min 30 s |");
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

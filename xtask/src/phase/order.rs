//! The phase order as the env file records it: which phases have run, what a hand edit put out
//! of order, and ids still the example's. Reads settings only (no Terraform, no AWS).

use settings::{Collector, Environment};

/// Loki is deployed (phase 1), or which command deploys it.
pub fn loki_deployed(env: &Environment) -> Result<(), String> {
    if env.settings.loki.enabled {
        return Ok(());
    }
    Err(format!(
        "Loki is not deployed in `{}` (loki.enabled = false); run `cargo xtask deploy loki --env {} --execute` first",
        env.name, env.name
    ))
}

/// Loki is deployed and CloudWatch still gets every line beside it (the parallel run), or why
/// not; `needs` says what the command needs the parallel run for.
pub fn parallel_run_on(env: &Environment, needs: &str) -> Result<(), String> {
    loki_deployed(env)?;
    if env.settings.migration.cloudwatch_parallel_run {
        return Ok(());
    }
    Err(format!("`{}` has migration.cloudwatch_parallel_run = false: {needs}", env.name))
}

/// What the env file says that no phase order gives (a hand edit): services on Alloy, or a
/// Grafana image, while Loki is not deployed. Every phase refuses it before anything runs.
pub fn out_of_order(env: &Environment) -> Option<String> {
    let s = &env.settings;
    if s.loki.enabled {
        return None;
    }
    let on_alloy: Vec<&str> =
        s.services.iter().filter(|(_, v)| v.collector == Collector::Alloy).map(|(n, _)| n).collect();
    let mut found = Vec::new();
    if !on_alloy.is_empty() {
        found.push(format!("{} use(s) the alloy collector", on_alloy.join(", ")));
    }
    if s.versions.contains_key("grafana_image") {
        found.push("versions.grafana_image is set".to_string());
    }
    (!found.is_empty()).then(|| {
        format!(
            "{} in envs/{}.toml while loki.enabled = false: Alloy and Grafana come after Loki; set collector = \"adot\" and remove grafana_image, then run `cargo xtask deploy loki --env {} --execute` first",
            found.join(" and "),
            env.name,
            env.name
        )
    })
}

/// Grafana is deployed (phase 3), or which commands deploy it.
pub fn grafana_deployed(env: &Environment) -> Result<(), String> {
    loki_deployed(env)?;
    if env.settings.versions.contains_key("grafana_image") {
        return Ok(());
    }
    Err(format!(
        "Grafana is not deployed in `{}` (versions.grafana_image is unset); run `cargo xtask build-grafana --env {} --execute` and `cargo xtask deploy grafana --env {} --execute` first",
        env.name, env.name, env.name
    ))
}

/// Enabled services still on ADOT, in migration order. A disabled service has no task, so it
/// carries no sidecar and never counts.
pub fn enabled_on_adot(env: &Environment) -> Vec<&'static str> {
    env.settings.services.iter().filter(|(_, s)| s.enabled && s.collector == Collector::Adot).map(|(n, _)| n).collect()
}

/// Every enabled service runs Alloy (phase 2), or which command moves the rest.
pub fn services_migrated(env: &Environment) -> Result<(), String> {
    loki_deployed(env)?;
    let on_adot = enabled_on_adot(env);
    if on_adot.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} still {} ADOT in `{}`; move {} first: `cargo xtask migrate-sidecars --env {} --all --execute`",
        on_adot.join(", "),
        if on_adot.len() == 1 { "uses" } else { "use" },
        env.name,
        if on_adot.len() == 1 { "it" } else { "them" },
        env.name
    ))
}

/// The next command of the migration, for "Next:" lines (after phase 2).
pub fn next_after_migration(env: &Environment) -> String {
    let name = &env.name;
    match grafana_deployed(env) {
        Err(_) => format!(
            "`cargo xtask build-grafana --env {name} --execute`, `cargo xtask deploy grafana --env {name} --execute`, then `cargo xtask cleanup-adot --env {name}`"
        ),
        Ok(()) if env.settings.adot.enabled => format!("`cargo xtask cleanup-adot --env {name}`"),
        Ok(()) => format!("nothing: the migration is done; `cargo xtask verify 9 --env {name}` checks it end to end"),
    }
}

/// Why `--execute` cannot run with the example's made-up ids.
pub fn placeholders_why(env: &Environment, made_up: &[&str]) -> String {
    format!(
        "{} in envs/{}.toml are still the example's placeholders; set your own ids there",
        made_up.join(", "),
        env.name
    )
}

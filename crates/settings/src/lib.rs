//! Environment files (`envs/<name>.toml`): typed reads, comment-keeping edits, atomic writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, format_err, Context};
use serde::{Deserialize, Serialize};

pub mod capacity;
mod edit;
pub mod hint;
pub mod rules;
pub use edit::{retarget, set, set_collector, set_in_document, write_atomically};
pub use toml_edit::{DocumentMut as TomlDocument, Value as TomlValue};

/// One environment: its name (the file stem) and its typed settings.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub path: PathBuf,
    pub settings: Settings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub aws: Aws,
    pub project: Project,
    pub state: State,
    pub platform: Platform,
    /// Container images, each pinned to a version (`<repo>:<tag>` or `<repo>@sha256:…`).
    pub versions: BTreeMap<String, String>,
    pub loki: Loki,
    #[serde(default)]
    pub alloy: Alloy,
    #[serde(default)]
    pub adot: Adot,
    #[serde(default)]
    pub migration: Migration,
    pub temporal: Temporal,
    pub services: Services,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aws {
    pub region: String,
    pub account_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
}

/// Terraform S3 backend of the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub private_subnet_ids: Vec<String>,
    pub ecs_cluster_name: String,
    pub capacity_provider_name: String,
    pub instance_security_group_id: String,
    pub service_connect_namespace_arn: String,
    pub s3_prefix_list_id: String,
    pub amp_workspace_id: String,
    /// Disk (MB) each EC2 host has for Docker's container log files (`host_log_disk_mb`): the
    /// Temporal containers' json-files must fit it (infra/log-buffer.tf).
    #[serde(default = "host_log_disk_mb_default")]
    pub host_log_disk_mb: u32,
}

/// `infra/variables.tf`'s `host_log_disk_mb` default: what the ECS-optimized AMI's 30 GiB root
/// volume leaves for container logs.
fn host_log_disk_mb_default() -> u32 {
    20_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loki {
    /// Whether Loki is deployed: `cargo xtask deploy loki` records `true` once checkpoint 2 passes.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub cpu: u32,
    pub memory: u32,
    pub count: u32,
    pub retention_days: u32,
    /// Log volume the tenant must accept, MB/s: Loki's ingestion limits are sized from it (the
    /// non-functional requirement is 10 MB/s).
    #[serde(default = "required_ingestion_mb_per_s")]
    pub ingestion_mb_per_s: u32,
}

/// The non-functional requirement's ingestion figure (../shared/requirements.md).
pub const REQUIRED_INGESTION_MB_PER_S: u32 = 10;

fn required_ingestion_mb_per_s() -> u32 {
    REQUIRED_INGESTION_MB_PER_S
}

/// `infra/variables.tf`'s `alloy_memory` default.
fn alloy_memory_default() -> u32 {
    384
}

/// The smallest share of the Loki task its container may get next to the Alloy sidecar, MiB.
pub const LOKI_CONTAINER_MIN_MEMORY: u32 = 512;

/// Task memory no container of ours may claim (MiB): the Service Connect proxy ECS adds to every
/// task (AWS asks for at least 64 MiB) and the ECS Exec agent. `local.task_memory_headroom` in
/// infra/locals.tf; its preconditions compare the rendered Loki config with it.
pub const TASK_MEMORY_HEADROOM: u32 = 128;

/// Loki's hard share of its task (MiB): the task minus its Alloy sidecar and the headroom.
pub fn loki_container_memory(task_mib: u32, sidecar_mib: u32) -> u32 {
    task_mib.saturating_sub(sidecar_mib + TASK_MEMORY_HEADROOM)
}

impl Settings {
    pub fn loki_container_memory(&self) -> u32 {
        loki_container_memory(self.loki.memory, self.alloy.memory)
    }
}

/// The Alloy sidecars' rendered config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alloy {
    /// Keep the task id as a stream label instead of structured metadata (amendment 3.8: opt-in).
    #[serde(default)]
    pub task_id_label: bool,
    /// Hard memory limit (MiB) of every Alloy sidecar (`alloy_memory`); in Loki's task it is
    /// memory Loki cannot use.
    #[serde(default = "alloy_memory_default")]
    pub memory: u32,
}

impl Default for Alloy {
    fn default() -> Alloy {
        Alloy { task_id_label: false, memory: alloy_memory_default() }
    }
}

/// How the move from CloudWatch runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// Keep the `awslogs` driver while Alloy also ships to Loki (req 8.1).
    pub cloudwatch_parallel_run: bool,
    /// Hours of closed windows a passing `verify parity` must cover before ADOT or CloudWatch
    /// is switched off.
    #[serde(default = "default_parity_hours")]
    pub parity_hours: u32,
}

/// At most Loki's longest default query (30 days).
pub const MAX_PARITY_HOURS: u32 = 720;

fn default_parity_hours() -> u32 {
    24
}

impl Default for Migration {
    fn default() -> Migration {
        Migration { cloudwatch_parallel_run: true, parity_hours: default_parity_hours() }
    }
}

/// Temporal's existing persistence store (PostgreSQL-compatible).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Temporal {
    pub db_host: String,
    #[serde(default = "default_db_port")]
    pub db_port: u16,
    #[serde(default = "default_db_name")]
    pub db_name: String,
    #[serde(default = "default_visibility_db_name")]
    pub visibility_db_name: String,
    #[serde(default = "default_db_name")]
    pub db_user: String,
    /// Secrets Manager secret (or SSM parameter) ARN holding the password: never the password.
    pub db_password_secret_arn: String,
    #[serde(default = "enabled_by_default")]
    pub db_tls_enabled: bool,
}

fn default_db_port() -> u16 {
    5432
}

fn default_db_name() -> String {
    "temporal".into()
}

fn default_visibility_db_name() -> String {
    "temporal_visibility".into()
}

/// The ADOT sidecars' shared resources; `cargo xtask cleanup-adot` records `enabled = false`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adot {
    pub enabled: bool,
}

impl Default for Adot {
    fn default() -> Adot {
        Adot { enabled: true }
    }
}

/// The Temporal services, each with the collector its task carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub history: Service,
    pub matching: Service,
    pub frontend: Service,
    pub worker: Service,
    #[serde(rename = "benchmark-worker")]
    pub benchmark_worker: Service,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub collector: Collector,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collector {
    Adot,
    Alloy,
}

impl Collector {
    pub fn as_str(self) -> &'static str {
        match self {
            Collector::Adot => "adot",
            Collector::Alloy => "alloy",
        }
    }
}

impl fmt::Display for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Service names as they appear in env files, in migration order (worker first: it is the least
/// critical, so a broken collector shows there before it can hurt the request path).
pub const SERVICE_NAMES: [&str; 5] = ["worker", "benchmark-worker", "matching", "history", "frontend"];

impl Services {
    /// Every service with its name, in migration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Service)> {
        SERVICE_NAMES.into_iter().map(move |name| (name, self.get(name).expect("known name")))
    }

    pub fn get(&self, name: &str) -> Option<&Service> {
        match name {
            "history" => Some(&self.history),
            "matching" => Some(&self.matching),
            "frontend" => Some(&self.frontend),
            "worker" => Some(&self.worker),
            "benchmark-worker" => Some(&self.benchmark_worker),
            _ => None,
        }
    }
}

/// Checks a service name and says which ones exist when it is not one of them.
pub fn check_service_name(name: &str) -> anyhow::Result<&'static str> {
    SERVICE_NAMES
        .into_iter()
        .find(|known| *known == name)
        .ok_or_else(|| format_err!("unknown service `{name}`; expected one of: {}", SERVICE_NAMES.join(", ")))
}

impl Environment {
    /// Reads `envs/<name>.toml` below `root`.
    pub fn load(root: &Path, name: &str) -> anyhow::Result<Environment> {
        check_env_name(name)?;
        let path = root.join("envs").join(format!("{name}.toml"));
        if let (Ok(target), false) = (std::fs::read_link(&path), path.exists()) {
            bail!(
                "{} is a link to {}, which does not exist: point it at an env file or remove it",
                path.display(),
                target.display()
            );
        }
        if !path.is_file() {
            let known = list(root).unwrap_or_default();
            bail!(
                "no environment `{name}`: {} does not exist (known: {}); create it with `cargo xtask init {name}`",
                path.display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            );
        }
        Self::from_file(name, &path)
    }

    pub fn from_file(name: &str, path: &Path) -> anyhow::Result<Environment> {
        // One message with its cause: callers show the outermost error only.
        let text = std::fs::read_to_string(path).map_err(|err| match err.kind() {
            std::io::ErrorKind::InvalidData => {
                format_err!("{} is not UTF-8 text: save it as UTF-8 (TOML files are UTF-8)", path.display())
            }
            _ => format_err!("reading {}: {err}", path.display()),
        })?;
        if text.trim().is_empty() {
            bail!(
                "{} is empty: copy envs/example.toml to it and set your values, or run `cargo xtask init {name}`",
                path.display()
            );
        }
        let settings = parse_env(Some(name), &text).map_err(|err| format_err!("{}: {err:#}", path.display()))?;
        if let Some(other) = path.parent().and_then(|dir| env_on_the_same_state(dir, path, &settings.state)) {
            bail!(
                "{} and {} name the same Terraform state (s3://{}/{}): a plan of one would destroy what the other applied; give each env its own state.key, e.g. loki-migration/{name}.tfstate",
                path.display(),
                other.display(),
                settings.state.bucket,
                settings.state.key
            );
        }
        Ok(Environment { name: name.to_string(), path: path.to_path_buf(), settings })
    }
}

/// Every key the env file format knows, as `table.key` (`services.<name>.key` for a service):
/// those of the committed example, which sets them all.
fn known_keys() -> &'static BTreeSet<String> {
    static KNOWN: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let example: toml::Table = include_str!("../../../envs/example.toml").parse().expect("the example is TOML");
        let mut keys = BTreeSet::new();
        for (table, value) in &example {
            for (key, inner) in value.as_table().into_iter().flatten() {
                match inner.as_table() {
                    Some(service) if table == "services" => {
                        keys.extend(service.keys().map(|k| format!("services.{key}.{k}")));
                    }
                    _ => {
                        keys.insert(format!("{table}.{key}"));
                    }
                }
            }
        }
        keys
    })
}

/// Every key the format does not know, at once (serde stops at the first), each with the key
/// it most likely meant; a dotted key that TOML put under the table above it is named as such.
/// `[versions]` takes any image name (the rules check them).
fn unknown_keys(doc: &TomlDocument) -> Vec<String> {
    let known = known_keys();
    let mut found = Vec::new();
    let mut check = |path: String, line_hint: &str| {
        if known.contains(&path) {
            return;
        }
        let (table, key) = path.rsplit_once('.').unwrap_or(("", &path));
        let misplaced = path.split_once('.').map(|(_, rest)| rest).filter(|rest| known.contains(*rest));
        let message = match misplaced {
            Some(meant) => format!(
                "{path}: unknown key; `{line_hint}` under [{}] sets {path}: put `{}` under [{}]",
                path.split('.').next().unwrap_or(""),
                meant.rsplit_once('.').map_or(meant, |(_, k)| k),
                meant.rsplit_once('.').map_or("", |(t, _)| t)
            ),
            None => {
                let siblings: Vec<&str> = known
                    .iter()
                    .filter_map(|k| k.rsplit_once('.').filter(|(t, _)| *t == table).map(|(_, k)| k))
                    .collect();
                match crate::hint::did_you_mean(key, siblings.iter().copied()) {
                    Some(near) => format!("{path}: unknown key; did you mean {table}.{near}?"),
                    None if siblings.is_empty() => {
                        format!("{path}: unknown key (no such table in the env file format)")
                    }
                    None => format!("{path}: unknown key; [{table}] takes {}", siblings.join(", ")),
                }
            }
        };
        found.push(message);
    };
    for (table, item) in doc.iter() {
        let Some(entries) = item.as_table_like() else {
            check(table.to_string(), table);
            continue;
        };
        if table == "versions" {
            continue;
        }
        for (key, value) in entries.iter() {
            match (table, value.as_table_like()) {
                ("services", Some(service)) => {
                    for (field, _) in service.iter() {
                        check(format!("services.{key}.{field}"), field);
                    }
                }
                (_, Some(inner)) => {
                    for (field, _) in inner.iter() {
                        check(format!("{table}.{key}.{field}"), &format!("{key}.{field} = …"));
                    }
                }
                (_, None) => check(format!("{table}.{key}"), key),
            }
        }
    }
    found
}

/// The keys of `s` that still hold the example's placeholder ids (`cargo xtask init` moves the
/// example's ARNs and host names to the env's region and account; their ids stay the example's).
pub fn placeholders(s: &Settings) -> Vec<&'static str> {
    static EXAMPLE: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
    let example =
        EXAMPLE.get_or_init(|| parse(include_str!("../../../envs/example.toml")).expect("the example parses"));
    // What stays of an id when its region and account move: an ARN's resource, a host's first labels.
    let id = |value: &str| -> String {
        match value.strip_prefix("arn:") {
            Some(rest) => rest.splitn(5, ':').nth(4).unwrap_or(rest).to_string(),
            None => value.split('.').take(2).collect::<Vec<_>>().join("."),
        }
    };
    let (p, e) = (&s.platform, &example.platform);
    let pairs: [(&'static str, String, String); 9] = [
        ("platform.vpc_id", p.vpc_id.clone(), e.vpc_id.clone()),
        ("platform.private_subnet_ids", p.private_subnet_ids.join(","), e.private_subnet_ids.join(",")),
        ("platform.ecs_cluster_name", p.ecs_cluster_name.clone(), e.ecs_cluster_name.clone()),
        ("platform.capacity_provider_name", p.capacity_provider_name.clone(), e.capacity_provider_name.clone()),
        (
            "platform.instance_security_group_id",
            p.instance_security_group_id.clone(),
            e.instance_security_group_id.clone(),
        ),
        (
            "platform.service_connect_namespace_arn",
            id(&p.service_connect_namespace_arn),
            id(&e.service_connect_namespace_arn),
        ),
        ("platform.amp_workspace_id", p.amp_workspace_id.clone(), e.amp_workspace_id.clone()),
        ("temporal.db_host", id(&s.temporal.db_host), id(&example.temporal.db_host)),
        (
            "temporal.db_password_secret_arn",
            id(&s.temporal.db_password_secret_arn),
            id(&example.temporal.db_password_secret_arn),
        ),
    ];
    pairs.into_iter().filter(|(_, mine, example)| mine == example).map(|(key, ..)| key).collect()
}

/// Of [`placeholders`], the ids no real account has (the example's made-up hex and letters):
/// `--execute` with one of them fails at the plan's first lookup.
pub fn placeholder_ids(s: &Settings) -> Vec<&'static str> {
    const MADE_UP: [&str; 6] = [
        "platform.vpc_id",
        "platform.private_subnet_ids",
        "platform.instance_security_group_id",
        "platform.service_connect_namespace_arn",
        "platform.amp_workspace_id",
        "temporal.db_host",
    ];
    placeholders(s).into_iter().filter(|key| MADE_UP.contains(key)).collect()
}

/// Whether `name` is one of the committed example envs (`example`, `<x>-example`): documentation
/// of the format, not an account's.
pub fn is_example(name: &str) -> bool {
    name == "example" || name.ends_with("-example")
}

/// Another env file beside `path` whose `[state]` is `state` (files that do not parse are
/// reported when they are loaded themselves).
fn env_on_the_same_state(dir: &Path, path: &Path, state: &State) -> Option<PathBuf> {
    let mut others: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p != path && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    others.sort();
    others.into_iter().find(|other| {
        let Some(table) = std::fs::read_to_string(other).ok().and_then(|t| t.parse::<toml::Table>().ok()) else {
            return false;
        };
        let field =
            |key: &str| table.get("state").and_then(|s| s.get(key)).and_then(|v| v.as_str()).map(str::to_string);
        field("bucket").as_deref() == Some(state.bucket.as_str()) && field("key").as_deref() == Some(state.key.as_str())
    })
}

/// Parses and validates an env file's text. Errors name the key and the allowed values.
pub fn parse(text: &str) -> anyhow::Result<Settings> {
    parse_env(None, text)
}

/// [`parse`] for the env file named `env` (its name is a setting too: Terraform's `environment`).
/// Reports every problem at once; a type or unknown-key error ends the list.
pub fn parse_env(env: Option<&str>, text: &str) -> anyhow::Result<Settings> {
    let mut doc: TomlDocument = text.parse().map_err(|err: toml_edit::TomlError| {
        let message = err.to_string();
        if message.contains("unexpected leading zero") {
            return format_err!(
                "{}\nA number cannot start with 0: quote it, e.g. account_id = \"012345678901\" (an account id is text)",
                message.trim_end()
            );
        }
        format_err!("{}", message.trim_end())
    })?;
    let unknown = unknown_keys(&doc);
    if !unknown.is_empty() {
        bail!("invalid settings:\n  - {}", unknown.join("\n  - "));
    }
    let mut problems = rules::check_numbers(&mut doc);
    // Parsed from text (the patched one after bad numbers) so serde's errors keep line and key.
    let patched = if problems.is_empty() { text.to_string() } else { doc.to_string() };
    match toml::from_str::<Settings>(&patched) {
        Ok(settings) => {
            let reported: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
            let moot = |p: &rules::Problem| {
                reported.contains(&p.key) || p.inputs.iter().any(|input| reported.iter().any(|r| r == input))
            };
            problems.extend(rules::check(env, &settings).into_iter().filter(|p| !moot(p)));
            if problems.is_empty() {
                return Ok(settings);
            }
        }
        Err(err) => problems.push(rules::Problem {
            key: String::new(),
            message: err.to_string().trim_end().into(),
            inputs: &[],
        }),
    }
    problems.sort_by_key(|p| line_of(text, &p.key));
    let lines: Vec<String> = problems.into_iter().map(|p| p.message).collect();
    bail!("invalid settings:\n  - {}", lines.join("\n  - "))
}

/// The line of `section.field` in an env file, so problems are listed in the file's order
/// (keys not found, and serde's own errors, last).
fn line_of(text: &str, key: &str) -> usize {
    let Some((section, field)) = key.split_once('.') else { return usize::MAX };
    let mut in_section = false;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == format!("[{section}]");
        } else if in_section && line.split('=').next().is_some_and(|name| name.trim() == field) {
            return number;
        }
    }
    usize::MAX
}

/// Retention values CloudWatch Logs accepts, within the 1-3650 days Loki's retention may take
/// (infra/variables.tf `loki_retention_days`).
pub fn cloudwatch_retention_days() -> Vec<u32> {
    let allowed = rules::TERRAFORM["loki_retention_days"].one_of.as_ref().expect("a contains() list");
    allowed.iter().map(|&n| u32::try_from(n).expect("positive")).collect()
}

/// An image reference must name a version: a tag other than `latest`, or a digest.
pub fn check_pinned_image(image: &str) -> Result<(), String> {
    if image.contains("@sha256:") {
        return Ok(());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) => Err("`latest` is not a version; pin a release tag such as `3.7.6`".into()),
        Some((_, tag)) if !tag.is_empty() => Ok(()),
        _ => Err("no tag; pin a release tag (`repo:1.2.3`) or a digest".into()),
    }
}

/// Environment names become file and directory names and Terraform's `environment`.
pub fn check_env_name(name: &str) -> anyhow::Result<()> {
    rules::check_env_name(name).map_err(|why| format_err!("invalid environment name `{name}`: {why}"))
}

/// Names of the environments in `envs/`, sorted.
pub fn list(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join("envs");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Loads every environment in `envs/`.
pub fn load_all(root: &Path) -> anyhow::Result<Vec<Environment>> {
    list(root)?.iter().map(|name| Environment::load(root, name)).collect()
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

//! Environment files (`envs/<name>.toml`): typed reads, comment-keeping edits, atomic writes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, format_err, Context};
use serde::{Deserialize, Serialize};

mod edit;
pub use edit::{set, set_collector, set_in_document, write_atomically};
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
}

impl Default for Migration {
    fn default() -> Migration {
        Migration { cloudwatch_parallel_run: true }
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
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let settings = parse(&text).map_err(|err| format_err!("{}: {err:#}", path.display()))?;
        Ok(Environment { name: name.to_string(), path: path.to_path_buf(), settings })
    }
}

/// Parses and validates an env file's text. Errors name the key and the allowed values.
pub fn parse(text: &str) -> anyhow::Result<Settings> {
    let settings: Settings = toml::from_str(text).map_err(|err| format_err!("{}", err.to_string().trim_end()))?;
    settings.validate()?;
    Ok(settings)
}

impl Settings {
    fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if !(self.aws.account_id.len() == 12 && self.aws.account_id.bytes().all(|b| b.is_ascii_digit())) {
            problems.push(format!("aws.account_id = {:?}: expected 12 digits", self.aws.account_id));
        }
        if !self.project.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || self.project.name.is_empty()
            || self.project.name.len() > 24
        {
            problems.push(format!(
                "project.name = {:?}: expected 1-24 characters of a-z, 0-9 and '-' (it prefixes resource names)",
                self.project.name
            ));
        }
        for (key, image) in &self.versions {
            if let Err(why) = check_pinned_image(image) {
                problems.push(format!("versions.{key} = {image:?}: {why}"));
            }
        }
        if !CLOUDWATCH_RETENTION_DAYS.contains(&self.loki.retention_days) {
            problems.push(format!(
                "loki.retention_days = {}: expected one of {CLOUDWATCH_RETENTION_DAYS:?} (it is also the CloudWatch log groups' retention, req 5.5)",
                self.loki.retention_days
            ));
        }
        if !self.adot.enabled {
            let on_adot: Vec<&str> =
                self.services.iter().filter(|(_, s)| s.collector == Collector::Adot).map(|(name, _)| name).collect();
            if !on_adot.is_empty() {
                problems.push(format!(
                    "adot.enabled = false while {} still use the adot collector; migrate them first (`cargo xtask migrate-sidecars`)",
                    on_adot.join(", ")
                ));
            }
        }
        if !(self.loki.count == 1 || (3..=9).contains(&self.loki.count)) {
            problems.push(format!(
                "loki.count = {}: expected 1 (single replica) or 3 to 9 (memberlist ring with replication factor 3)",
                self.loki.count
            ));
        }
        if !(128..=2048).contains(&self.alloy.memory) {
            problems.push(format!("alloy.memory = {}: expected 128 to 2048 MiB", self.alloy.memory));
        }
        if self.loki.memory < self.alloy.memory + LOKI_CONTAINER_MIN_MEMORY {
            problems.push(format!(
                "loki.memory = {}: the task also holds the {} MiB Alloy sidecar (alloy.memory), leaving Loki less than {LOKI_CONTAINER_MIN_MEMORY} MiB",
                self.loki.memory, self.alloy.memory
            ));
        }
        if self.loki.ingestion_mb_per_s == 0 || self.loki.ingestion_mb_per_s > 1000 {
            problems.push(format!(
                "loki.ingestion_mb_per_s = {}: expected 1 to 1000 (the requirement is {REQUIRED_INGESTION_MB_PER_S})",
                self.loki.ingestion_mb_per_s
            ));
        }
        let arn = &self.temporal.db_password_secret_arn;
        if !(arn.starts_with("arn:aws:secretsmanager:") || arn.starts_with("arn:aws:ssm:")) {
            problems.push(format!(
                "temporal.db_password_secret_arn = {arn:?}: expected a Secrets Manager or SSM parameter ARN (never the password itself)"
            ));
        }
        if self.platform.private_subnet_ids.is_empty() {
            problems.push("platform.private_subnet_ids is empty: Loki needs at least one private subnet".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("invalid settings:\n  - {}", problems.join("\n  - "))
        }
    }
}

/// Retention values CloudWatch Logs accepts, within the 1-3650 days Loki's retention may take.
pub const CLOUDWATCH_RETENTION_DAYS: [u32; 21] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288];

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

/// Environment names become file and directory names.
pub fn check_env_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        bail!("invalid environment name `{name}`: use 1-32 characters of a-z, 0-9, '-' and '_'");
    }
    Ok(())
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
